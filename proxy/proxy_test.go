package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"
)

func TestRoundTripBasics(t *testing.T) {
	var got *http.Request
	var gotBody []byte
	legacy := newSide(t, "legacy", func(w http.ResponseWriter, r *http.Request) {
		got = r.Clone(r.Context())
		gotBody, _ = io.ReadAll(r.Body)
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("Connection", "X-Secret")
		w.Header().Set("X-Secret", "hop")
		w.Header().Set("X-End", "kept")
		io.WriteString(w, "hello "+r.Method)
	})
	_, url := startProxy(t, Config{Legacy: []string{legacy.url()}})
	c := newClient()

	req, _ := http.NewRequest("POST", url+"/a/b?c=d", strings.NewReader("payload"))
	req.Header.Set("Connection", "X-Drop")
	req.Header.Set("X-Drop", "must not arrive")
	req.Header.Set("X-Forwarded-For", "10.1.1.1")
	req.Header.Set("Proxy", "http://evil") // httpoxy
	req.Header.Set("Proxy-Authorization", "Basic c2VjcmV0")
	req.Header.Set("X-Keep", "yes")
	resp, body := do(t, c, req)
	if resp.StatusCode != 200 || body != "hello POST" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	if got.URL.RequestURI() != "/a/b?c=d" || string(gotBody) != "payload" {
		t.Errorf("upstream got %s %q", got.URL.RequestURI(), gotBody)
	}
	if v := got.Header.Get("X-Drop"); v != "" {
		t.Errorf("field named by Connection was forwarded: %q", v)
	}
	if v := got.Header.Get("Proxy") + got.Header.Get("Proxy-Authorization"); v != "" {
		t.Errorf("Proxy fields were forwarded: %q", v)
	}
	if v := got.Header.Get("X-Keep"); v != "yes" {
		t.Errorf("X-Keep = %q", v)
	}
	if v := got.Header.Get("X-Forwarded-For"); v != "10.1.1.1, 127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q", v)
	}
	if v := got.Header.Get("X-Forwarded-Proto"); v != "http" {
		t.Errorf("X-Forwarded-Proto = %q", v)
	}
	if resp.Header.Get("X-Secret") != "" || resp.Header.Get("Keep-Alive") != "" {
		t.Errorf("hop-by-hop response fields reached the client: %v", resp.Header)
	}
	if resp.Header.Get("X-End") != "kept" {
		t.Errorf("end-to-end field lost: %v", resp.Header)
	}
	if len(resp.Cookies()) != 1 || resp.Cookies()[0].Name != "cutover-user" {
		t.Errorf("want the sticky cookie set, got %v", resp.Header["Set-Cookie"])
	}
	// Keep-alive: many requests, few connections upstream.
	for i := 0; i < 50; i++ {
		resp, body := get(t, c, url+"/x")
		if resp.StatusCode != 200 || body != "hello GET" {
			t.Fatalf("got %d %q", resp.StatusCode, body)
		}
	}
	// HEAD has no body even with a Content-Length.
	req, _ = http.NewRequest("HEAD", url+"/h", nil)
	resp, body = do(t, c, req)
	if resp.StatusCode != 200 || body != "" {
		t.Fatalf("HEAD: %d %q", resp.StatusCode, body)
	}
}

func TestHTTP10AndPipelining(t *testing.T) {
	legacy := newSide(t, "legacy", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/chunked" {
			io.WriteString(w, "part1 ")
			w.(http.Flusher).Flush()
			io.WriteString(w, "part2")
			return
		}
		io.WriteString(w, "path "+r.URL.Path)
	})
	_, url := startProxy(t, Config{Legacy: []string{legacy.url()}})
	addr := strings.TrimPrefix(url, "http://")

	// HTTP/1.0 with a chunked upstream answer: decoded, then closed.
	out := rawExchange(t, addr, "GET /chunked HTTP/1.0\r\n\r\n")
	if !strings.HasPrefix(out, "HTTP/1.1 200") || !strings.HasSuffix(out, "\r\n\r\npart1 part2") || strings.Contains(out, "chunked") {
		t.Errorf("HTTP/1.0 answer:\n%s", out)
	}

	// Three pipelined requests on one connection, answered in order.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\nPOST /3 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
	br := bufio.NewReader(c)
	for i := 1; i <= 3; i++ {
		method := "GET"
		if i == 3 {
			method = "POST"
		}
		resp, body := rawResponse(t, br, method)
		if resp.StatusCode != 200 || body != fmt.Sprintf("path /%d", i) {
			t.Fatalf("pipelined %d: %d %q", i, resp.StatusCode, body)
		}
	}
}

func TestExpectContinue(t *testing.T) {
	legacy := newSide(t, "legacy", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %q", r.Header.Get("Expect"), b)
	})
	_, url := startProxy(t, Config{Legacy: []string{legacy.url()}})
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "PUT /e HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100") {
		t.Fatalf("want 100 Continue first, got %q %v", line, err)
	}
	br.ReadString('\n')
	io.WriteString(c, "hello")
	resp, body := rawResponse(t, br, "PUT")
	if resp.StatusCode != 200 || body != ` "hello"` {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
}

func TestChunkedRequestBody(t *testing.T) {
	legacy := newSide(t, "legacy", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%d %v %s", r.ContentLength, r.TransferEncoding, b)
	})
	_, url := startProxy(t, Config{Legacy: []string{legacy.url()}, MaxReplayBody: 16})
	addr := strings.TrimPrefix(url, "http://")
	// Fits the buffer: sent with a Content-Length.
	out := rawExchange(t, addr, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n")
	if !strings.HasSuffix(out, "5 [] abcde") {
		t.Errorf("small chunked body:\n%s", out)
	}
	// Larger than the buffer: streamed chunked.
	big := strings.Repeat("z", 40)
	out = rawExchange(t, addr, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n14\r\n"+big[:20]+"\r\n14\r\n"+big[20:]+"\r\n0\r\n\r\n")
	if !strings.HasSuffix(out, "-1 [chunked] "+big) {
		t.Errorf("large chunked body:\n%s", out)
	}
}

func TestSplitRatio(t *testing.T) {
	legacy := newSide(t, "legacy", nil)
	newer := newSide(t, "new", nil)
	_, url := startProxy(t, Config{Legacy: []string{legacy.url()}, New: []string{newer.url()}, Weights: Weights{Legacy: 90, New: 10}})
	c := newClient()
	const n = 3000
	for i := 0; i < n; i++ {
		resp, _ := get(t, c, url+"/")
		if resp.StatusCode != 200 {
			t.Fatal(resp.Status)
		}
	}
	// Binomial(3000, 0.1): sd ≈ 16.4; allow 4 sd.
	got := newer.hits.Load()
	if got < 300-66 || got > 300+66 || legacy.hits.Load()+got != n {
		t.Errorf("new got %d of %d, legacy %d; want about 300", got, n, legacy.hits.Load())
	}
}

func TestStickyCookieKeepsUserOnSide(t *testing.T) {
	legacy := newSide(t, "legacy", nil)
	newer := newSide(t, "new", nil)
	_, url := startProxy(t, Config{Legacy: []string{legacy.url()}, New: []string{newer.url()}, Weights: Weights{Legacy: 50, New: 50}})
	for u := 0; u < 20; u++ {
		jar, _ := cookiejar.New(nil)
		c := newClient()
		c.Jar = jar
		_, first := get(t, c, url+"/")
		for i := 0; i < 10; i++ {
			resp, body := get(t, c, url+"/")
			if body != first {
				t.Fatalf("user %d moved from %s to %s", u, first, body)
			}
			if len(resp.Header["Set-Cookie"]) != 0 {
				t.Fatalf("cookie set again for a user who has one")
			}
		}
	}
	// A client-chosen cookie maps to its bucket.
	c := newClient()
	for _, key := range []string{"alice", "bob", "carol", "dave"} {
		_, body := get(t, c, url+"/", "Cookie", "other=1; cutover-user="+key)
		want := "legacy"
		if BucketOf(key) < 5000 {
			want = "new"
		}
		if body != want {
			t.Errorf("key %s (bucket %d) went %s, want %s", key, BucketOf(key), body, want)
		}
	}
}

func TestRaisingWeightMovesOnlyLegacyToNew(t *testing.T) {
	legacy := newSide(t, "legacy", nil)
	newer := newSide(t, "new", nil)
	p, url := startProxy(t, Config{Legacy: []string{legacy.url()}, New: []string{newer.url()}, Weights: Weights{Legacy: 90, New: 10}, StickyHeader: "X-User-Id"})
	c := newClient()
	const users = 1000
	sideAt := func() []string {
		out := make([]string, users)
		for u := range out {
			resp, body := get(t, c, url+"/", "X-User-Id", fmt.Sprintf("user-%d", u))
			if len(resp.Header["Set-Cookie"]) != 0 {
				t.Fatal("cookie set although the header carried the key")
			}
			out[u] = body
		}
		return out
	}
	count := func(s []string) (n int) {
		for _, v := range s {
			if v == "new" {
				n++
			}
		}
		return n
	}
	at10 := sideAt()
	if err := p.SetWeights(Weights{Legacy: 50, New: 50}); err != nil {
		t.Fatal(err)
	}
	at50 := sideAt()
	for u := range at10 {
		if at10[u] == "new" && at50[u] != "new" {
			t.Fatalf("user-%d moved back from new to legacy", u)
		}
	}
	if n := count(at10); n < 60 || n > 140 {
		t.Errorf("at 10%%: %d of %d users on new", n, users)
	}
	if n := count(at50); n < 430 || n > 570 {
		t.Errorf("at 50%%: %d of %d users on new", n, users)
	}
	if err := p.SetWeights(Weights{Legacy: 0, New: 100}); err != nil {
		t.Fatal(err)
	}
	if n := count(sideAt()); n != users {
		t.Errorf("at 100%%: %d of %d users on new", n, users)
	}
}

func TestConfigErrors(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no upstreams":        {},
		"bad scheme":          {Legacy: []string{"ftp://x"}},
		"path":                {Legacy: []string{"http://x/y"}},
		"weights sum":         {Legacy: []string{"http://x"}, New: []string{"http://y"}, Weights: Weights{Legacy: 50, New: 60}},
		"weight on empty":     {Legacy: []string{"http://x"}, Weights: Weights{Legacy: 90, New: 10}},
		"mirror percent":      {Legacy: []string{"http://x"}, MirrorPercent: 101},
		"sticky cookie token": {Legacy: []string{"http://x"}, StickyCookie: "a b"},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	p, err := New(Config{Legacy: []string{"http://x"}, New: []string{"http://y"}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if w := p.Weights(); w != (Weights{Legacy: 100}) {
		t.Errorf("zero weights = %v, want all legacy", w)
	}
	if err := p.SetWeights(Weights{Legacy: 10, New: 10}); err == nil {
		t.Error("SetWeights accepted weights not summing to 100")
	}
}

func TestLargeResponseAndHash(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	legacy := newSide(t, "legacy", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/chunked" {
			for i := 0; i < len(big); i += 1000 {
				w.Write(big[i:min(i+1000, len(big))])
			}
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(big)))
		w.Write(big)
	})
	_, url := startProxy(t, Config{Legacy: []string{legacy.url()}})
	c := newClient()
	for _, path := range []string{"/cl", "/chunked", "/cl", "/chunked"} {
		_, body := get(t, c, url+path)
		if body != string(big) {
			t.Fatalf("%s: body of %d bytes differs", path, len(body))
		}
	}
	_ = time.Second
}
