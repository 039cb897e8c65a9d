package proxy

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// echoSide answers "<side> <method> <sha256 of body> <len>".
func echoSide(t testing.TB, name string, status int) *side {
	return newSide(t, name, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.WriteHeader(status)
		fmt.Fprintf(w, "%s %s %x %d", name, r.Method, sha256.Sum256(b), len(b))
	})
}

func echoWant(name, method string, body []byte) string {
	return fmt.Sprintf("%s %s %x %d", name, method, sha256.Sum256(body), len(body))
}

func TestRetryOnOtherSideWhenRefused(t *testing.T) {
	legacy := echoSide(t, "legacy", 200)
	for _, tc := range []struct {
		name string
		body []byte
		max  int64
	}{
		{"small body", []byte("order=42"), 0},
		{"empty", nil, 0},
		{"buffered 200KiB", bytes.Repeat([]byte("x"), 200<<10), 0},
		// Larger than the buffer: streamed, but the stream had not
		// started when the dial failed, so the body is still whole.
		{"streamed 3MiB", bytes.Repeat([]byte("y"), 3<<20), 1 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, url := startProxy(t, Config{
				Legacy:        []string{legacy.url()},
				New:           []string{refusedURL(t)},
				Weights:       Weights{Legacy: 0, New: 100},
				MaxReplayBody: tc.max,
			})
			c := newClient()
			for _, method := range []string{"POST", "PATCH", "DELETE", "GET"} {
				req, _ := http.NewRequest(method, url+"/pay", bytes.NewReader(tc.body))
				resp, body := do(t, c, req)
				if resp.StatusCode != 200 || body != echoWant("legacy", method, tc.body) {
					t.Fatalf("%s: got %d %q", method, resp.StatusCode, body)
				}
			}
			if n := p.Stats().Counters(SideNew); n.Retries != 4 || n.ErrorsTransport != 4 {
				t.Errorf("new side counters %+v, want 4 retries and 4 transport errors", n)
			}
		})
	}
}

// TestRetryDoesNotReadClosedBody pins the net/http pitfall (golang/go
// issues 16036, 26408): a transport that fails to dial may already have
// closed the request body, and a retry then sends an empty or truncated
// one. Here the first attempt fails on a dial (the new side refuses) and
// the retry must carry the whole body, for buffered and streamed bodies,
// Content-Length and chunked.
func TestRetryDoesNotReadClosedBody(t *testing.T) {
	legacy := echoSide(t, "legacy", 200)
	p, url := startProxy(t, Config{
		Legacy:        []string{legacy.url()},
		New:           []string{refusedURL(t)},
		Weights:       Weights{Legacy: 0, New: 100},
		MaxReplayBody: 1 << 10,
	})
	_ = p
	addr := strings.TrimPrefix(url, "http://")
	for _, n := range []int{10, 1 << 10, 1<<10 + 1, 100 << 10} {
		body := bytes.Repeat([]byte("b"), n)
		// Content-Length.
		req, _ := http.NewRequest("POST", url+"/", bytes.NewReader(body))
		resp, got := do(t, newClient(), req)
		if resp.StatusCode != 200 || got != echoWant("legacy", "POST", body) {
			t.Fatalf("CL %d: %d %q", n, resp.StatusCode, got)
		}
		// Chunked, written slowly so the proxy has to stream it.
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
		for i := 0; i < n; i += 4096 {
			chunk := body[i:min(i+4096, n)]
			fmt.Fprintf(c, "%x\r\n%s\r\n", len(chunk), chunk)
		}
		io.WriteString(c, "0\r\n\r\n")
		r, got := rawResponse(t, bufio.NewReader(c), "POST")
		c.Close()
		if r.StatusCode != 200 || got != echoWant("legacy", "POST", body) {
			t.Fatalf("chunked %d: %d %q", n, r.StatusCode, got)
		}
	}
}

func TestReplayIdempotentOnLegacy(t *testing.T) {
	legacy := echoSide(t, "legacy", 200)
	var newHits atomic.Int64
	newer := newSide(t, "new", func(w http.ResponseWriter, r *http.Request) {
		newHits.Add(1)
		io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/reset" {
			// A crash mid-request: the connection drops without an answer.
			c, _, _ := w.(http.Hijacker).Hijack()
			c.(*net.TCPConn).SetLinger(0)
			c.Close()
			return
		}
		w.WriteHeader(503)
		io.WriteString(w, "new is down")
	})
	p, url := startProxy(t, Config{Legacy: []string{legacy.url()}, New: []string{newer.url()}, Weights: Weights{Legacy: 0, New: 100}})
	c := newClient()
	cases := []struct {
		method, path string
		hdr          []string
		replay       bool
	}{
		{"GET", "/5xx", nil, true},
		{"HEAD", "/5xx", nil, true},
		{"OPTIONS", "/5xx", nil, true},
		{"GET", "/reset", nil, true},
		{"POST", "/5xx", nil, false},
		{"PUT", "/5xx", nil, false},
		{"POST", "/5xx", []string{"Idempotency-Key", "k1"}, true},
		{"POST", "/reset", []string{"Idempotency-Key", "k2"}, true},
	}
	for _, tc := range cases {
		before := newHits.Load()
		req, _ := http.NewRequest(tc.method, url+tc.path, strings.NewReader("body"))
		if tc.method == "GET" || tc.method == "HEAD" || tc.method == "OPTIONS" {
			req, _ = http.NewRequest(tc.method, url+tc.path, nil)
		}
		for i := 0; i+1 < len(tc.hdr); i += 2 {
			req.Header.Set(tc.hdr[i], tc.hdr[i+1])
		}
		resp, body := do(t, c, req)
		if newHits.Load() != before+1 {
			t.Errorf("%s %s: new side saw %d requests, want 1", tc.method, tc.path, newHits.Load()-before)
		}
		if tc.replay {
			if resp.StatusCode != 200 || resp.Header.Get("X-Side") != "legacy" {
				t.Errorf("%s %s %v: want legacy's 200, got %d from %q: %q", tc.method, tc.path, tc.hdr, resp.StatusCode, resp.Header.Get("X-Side"), body)
			}
			if tc.method == "POST" && body != echoWant("legacy", "POST", []byte("body")) {
				t.Errorf("replayed body: %q", body)
			}
			continue
		}
		if resp.StatusCode != 503 || body != "new is down" {
			t.Errorf("%s %s: a non-idempotent request was replayed: %d %q", tc.method, tc.path, resp.StatusCode, body)
		}
	}
	// The last attempt of a request is recorded after its answer went out.
	waitFor(t, "requests to end", func() bool { return p.Stats().Counters(SideNew).InFlight == 0 })
	cn := p.Stats().Counters(SideNew)
	if cn.Replays != 6 || cn.Errors5xx != 6 || cn.ErrorsTransport != 2 {
		t.Errorf("new side counters %+v: want 6 replays, 6 5xx, 2 transport errors", cn)
	}
	// A reset on a non-idempotent request surfaces as a 502 that names
	// the side that failed.
	req, _ := http.NewRequest("POST", url+"/reset", strings.NewReader("x"))
	if resp, _ := do(t, c, req); resp.StatusCode != 502 || resp.Header.Get("X-Cutover-Side") != "new" {
		t.Errorf("POST reset: %d side %q, want 502 from new", resp.StatusCode, resp.Header.Get("X-Cutover-Side"))
	}
}

func TestRetryBudgetExhausted(t *testing.T) {
	legacy := echoSide(t, "legacy", 200)
	newer := echoSide(t, "new", 500)
	p, url := startProxy(t, Config{
		Legacy: []string{legacy.url()}, New: []string{newer.url()}, Weights: Weights{Legacy: 0, New: 100},
		RetryBudget: -1, RetryFloor: 3,
	})
	c := newClient()
	codes := map[int]int{}
	for i := 0; i < 10; i++ {
		resp, _ := get(t, c, url+"/")
		codes[resp.StatusCode]++
	}
	if codes[200] != 3 || codes[500] != 7 {
		t.Errorf("answers %v: want 3 replayed (200) and 7 passed through (500)", codes)
	}
	if r := p.Stats().Counters(SideNew).Replays; r != 3 {
		t.Errorf("replays = %d", r)
	}
}

func TestLargeBodyIsNotReplayed(t *testing.T) {
	legacy := echoSide(t, "legacy", 200)
	var got atomic.Value
	newer := newSide(t, "new", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.Store(b)
		w.WriteHeader(502)
	})
	_, url := startProxy(t, Config{Legacy: []string{legacy.url()}, New: []string{newer.url()}, Weights: Weights{Legacy: 0, New: 100}, MaxReplayBody: 1024})
	body := bytes.Repeat([]byte("L"), 4096)
	req, _ := http.NewRequest("POST", url+"/", bytes.NewReader(body))
	req.Header.Set("Idempotency-Key", "k")
	resp, _ := do(t, newClient(), req)
	if resp.StatusCode != 502 || resp.Header.Get("X-Side") != "new" {
		t.Errorf("got %d from %q: a streamed body was replayed", resp.StatusCode, resp.Header.Get("X-Side"))
	}
	if b, _ := got.Load().([]byte); !bytes.Equal(b, body) {
		t.Errorf("new side got %d bytes, want %d", len(b), len(body))
	}
}

// rawUpstream is an HTTP/1.1 server written on raw connections, to
// misbehave in ways net/http will not.
type rawUpstream struct {
	ln    net.Listener
	conns atomic.Int64
	wg    sync.WaitGroup
}

func newRawUpstream(t testing.TB, serve func(c net.Conn, br *bufio.Reader)) *rawUpstream {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &rawUpstream{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u.conns.Add(1)
			u.wg.Add(1)
			go func() {
				defer u.wg.Done()
				defer c.Close()
				serve(c, bufio.NewReader(c))
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return u
}

func (u *rawUpstream) url() string { return "http://" + u.ln.Addr().String() }

// readReq reads one request (head and Content-Length body) from br.
func readReq(br *bufio.Reader) (*http.Request, []byte, error) {
	req, err := http.ReadRequest(br)
	if err != nil {
		return nil, nil, err
	}
	b, err := io.ReadAll(req.Body)
	return req, b, err
}

func TestStalePooledConnection(t *testing.T) {
	// The upstream answers one request per connection, then closes it
	// while idle without saying so (no Connection: close), like a server
	// whose keep-alive timeout is shorter than the proxy's. The test waits
	// until the upstream has closed before the next request, so the proxy
	// always holds a stale connection (no race with the FIN: that case is
	// TestStaleConnectionRaceRetriesIdempotent's).
	closed := make(chan struct{}, 1)
	up := newRawUpstream(t, func(c net.Conn, br *bufio.Reader) {
		_, body, err := readReq(br)
		if err != nil {
			return
		}
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		time.Sleep(5 * time.Millisecond)
		c.Close()
		closed <- struct{}{}
	})
	p, url := startProxy(t, Config{Legacy: []string{up.url()}})
	c := newClient()
	for i := 0; i < 20; i++ {
		if i > 0 {
			select {
			case <-closed:
			case <-time.After(5 * time.Second):
				t.Fatal("the upstream did not close its connection")
			}
			time.Sleep(5 * time.Millisecond) // the FIN reaches the proxy's socket
		}
		req, _ := http.NewRequest("POST", url+"/", strings.NewReader(fmt.Sprint("payment ", i)))
		resp, body := do(t, c, req)
		if resp.StatusCode != 200 || body != fmt.Sprint("payment ", i) {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
	}
	waitFor(t, "requests to end", func() bool { return p.Stats().Counters(SideLegacy).InFlight == 0 })
	if n := p.Stats().Counters(SideLegacy); n.ErrorsTransport != 0 || n.Requests != 20 {
		t.Errorf("legacy counters %+v: a stale connection surfaced", n)
	}
}

func TestStaleConnectionRaceRetriesIdempotent(t *testing.T) {
	// Worse: the upstream closes right after answering, so the proxy may
	// write the next request onto a connection whose FIN is in flight.
	// Idempotent requests are retried on a fresh connection.
	up := newRawUpstream(t, func(c net.Conn, br *bufio.Reader) {
		if _, _, err := readReq(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	})
	_, url := startProxy(t, Config{Legacy: []string{up.url()}})
	c := newClient()
	for i := 0; i < 200; i++ {
		resp, body := get(t, c, url+"/")
		if resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
	}
}

func TestUpstreamResponseHeaderTimeout(t *testing.T) {
	legacy := echoSide(t, "legacy", 200)
	release := make(chan struct{})
	newer := newSide(t, "new", func(w http.ResponseWriter, r *http.Request) {
		<-release
	})
	defer close(release)
	p, url := startProxy(t, Config{Legacy: []string{legacy.url()}, New: []string{newer.url()}, Weights: Weights{Legacy: 0, New: 100}, ResponseHeaderTimeout: 200 * time.Millisecond})
	c := newClient()
	// Idempotent: replayed on legacy after the timeout.
	resp, _ := get(t, c, url+"/")
	if resp.StatusCode != 200 || resp.Header.Get("X-Side") != "legacy" {
		t.Errorf("GET: %d from %q", resp.StatusCode, resp.Header.Get("X-Side"))
	}
	req, _ := http.NewRequest("POST", url+"/", strings.NewReader("x"))
	if resp, _ := do(t, c, req); resp.StatusCode != 504 {
		t.Errorf("POST: %d, want 504", resp.StatusCode)
	}
	if n := p.Stats().Counters(SideNew).ErrorsTransport; n != 2 {
		t.Errorf("new transport errors = %d", n)
	}
}

func TestSeveralAddressesPerSide(t *testing.T) {
	a := echoSide(t, "a", 200)
	b := echoSide(t, "b", 200)
	dead := refusedURL(t)
	p, url := startProxy(t, Config{Legacy: []string{a.url(), dead, b.url()}})
	c := newClient()
	for i := 0; i < 60; i++ {
		req, _ := http.NewRequest("POST", url+"/", strings.NewReader("x"))
		resp, _ := do(t, c, req)
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
	}
	if a.hits.Load() < 10 || b.hits.Load() < 10 {
		t.Errorf("spread a=%d b=%d", a.hits.Load(), b.hits.Load())
	}
	// The dead address was tried, marked down, and skipped after.
	if n := p.Stats().Counters(SideLegacy).ErrorsTransport; n < 1 || n > 3 {
		t.Errorf("transport errors = %d, want the dead address tried about once", n)
	}
}

// TestPooledConnectionReusedAfterIdle: a connection idle longer than the
// response-header timeout (whose deadline expired while it was parked)
// is still reused, not taken for dead.
func TestPooledConnectionReusedAfterIdle(t *testing.T) {
	up := newRawUpstream(t, func(c net.Conn, br *bufio.Reader) {
		for {
			if _, _, err := readReq(br); err != nil {
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	_, url := startProxy(t, Config{Legacy: []string{up.url()}, ResponseHeaderTimeout: 100 * time.Millisecond})
	c := newClient()
	for i := 0; i < 3; i++ {
		if resp, body := get(t, c, url+"/"); resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if n := up.conns.Load(); n != 1 {
		t.Errorf("upstream saw %d connections, want 1 reused", n)
	}
}

// TestNoReplayToUnreachableSide: legacy refused the connection, new
// answered 503: the client gets new's answer, not a 502 from a replay to
// the side already known down.
func TestNoReplayToUnreachableSide(t *testing.T) {
	newer := echoSide(t, "new", 503)
	_, url := startProxy(t, Config{Legacy: []string{refusedURL(t)}, New: []string{newer.url()}, Weights: Weights{Legacy: 100}})
	resp, body := get(t, newClient(), url+"/")
	if resp.StatusCode != 503 || body != echoWant("new", "GET", nil) {
		t.Errorf("got %d %q", resp.StatusCode, body)
	}
}

// TestEarlyAnswerWins: the upstream answers 413 after the head and closes
// without reading a large body. The client gets the 413, and the request
// is not retried elsewhere (the upstream may have acted on the head).
func TestEarlyAnswerWins(t *testing.T) {
	var heads atomic.Int64
	up := newRawUpstream(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		heads.Add(1)
		io.WriteString(c, "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 8\r\nConnection: close\r\n\r\ntoo big\n")
		// Closing with the body unread resets the connection: the
		// proxy's write fails with the answer already on its way.
	})
	other := echoSide(t, "other", 200)
	for _, max := range []int64{64 << 20, 1 << 10} { // buffered, then streamed
		_, url := startProxy(t, Config{Legacy: []string{up.url()}, New: []string{other.url()}, MaxReplayBody: max})
		body := bytes.Repeat([]byte("B"), 32<<20)
		req, _ := http.NewRequest("POST", url+"/", bytes.NewReader(body))
		resp, err := newClient().Do(req)
		if err != nil {
			// The client may see its own write fail once the proxy closes
			// the connection; it must not see another side's answer.
			t.Logf("max %d: client: %v", max, err)
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 413 || string(b) != "too big\n" {
			t.Errorf("max %d: got %d %q, want the upstream's 413", max, resp.StatusCode, b)
		}
	}
	if other.hits.Load() != 0 {
		t.Errorf("the request was retried on the other side %d times", other.hits.Load())
	}
}
