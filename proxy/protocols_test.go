package proxy

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/net/http2"
)

// TestStreamingFlushesIncrementally: each piece of a chunked answer (and
// of an SSE stream) reaches the client before the upstream writes the
// next one.
func TestStreamingFlushesIncrementally(t *testing.T) {
	step := make(chan struct{})
	legacy := newSide(t, "legacy", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/sse" {
			w.Header().Set("Content-Type", "text/event-stream")
		}
		for i := 0; i < 3; i++ {
			fmt.Fprintf(w, "data: event %d\n\n", i)
			w.(http.Flusher).Flush()
			select {
			case <-step:
			case <-time.After(5 * time.Second):
				return
			}
		}
	})
	_, url := startProxy(t, Config{Legacy: []string{legacy.url()}})
	for _, path := range []string{"/chunked", "/sse"} {
		resp, err := newClient().Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		if resp.TransferEncoding == nil || resp.TransferEncoding[0] != "chunked" {
			t.Errorf("%s: transfer encoding %v", path, resp.TransferEncoding)
		}
		br := bufio.NewReader(resp.Body)
		for i := 0; i < 3; i++ {
			done := make(chan string, 1)
			go func() {
				line, _ := br.ReadString('\n')
				br.ReadString('\n')
				done <- line
			}()
			select {
			case line := <-done:
				if line != fmt.Sprintf("data: event %d\n", i) {
					t.Fatalf("%s: event %d: %q", path, i, line)
				}
			case <-time.After(2 * time.Second):
				t.Fatalf("%s: event %d was held back by the proxy", path, i)
			}
			step <- struct{}{}
		}
		resp.Body.Close()
	}
}

func TestWebSocketEcho(t *testing.T) {
	up := websocket.Upgrader{}
	legacy := newSide(t, "legacy", func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			mt, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(mt, append([]byte("echo: "), msg...)); err != nil {
				return
			}
		}
	})
	p, url := startProxy(t, Config{Legacy: []string{legacy.url()}})
	ws, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(url, "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Cookies()) != 1 {
		t.Errorf("handshake answer lacks the sticky cookie: %v", resp.Header)
	}
	for i := 0; i < 5; i++ {
		msg := strings.Repeat(fmt.Sprint(i), 1+i*10000)
		if err := ws.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_, got, err := ws.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != "echo: "+msg {
			t.Fatalf("message %d: got %d bytes", i, len(got))
		}
	}
	if n := p.Stats().Counters(SideLegacy).InFlight; n != 1 {
		t.Errorf("in flight during the session = %d, want 1", n)
	}
	ws.Close()
	waitFor(t, "the tunnel to end", func() bool { return p.Stats().Counters(SideLegacy).InFlight == 0 })
}

func h2Side(t *testing.T) *side {
	return newSide(t, "legacy", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Upstream-Proto", r.Proto)
		fmt.Fprintf(w, "%s %s %s %s", r.Method, r.URL.RequestURI(), r.Header.Get("Cookie"), b)
	})
}

func TestH2CPriorKnowledge(t *testing.T) {
	legacy := h2Side(t)
	_, url := startProxy(t, Config{Legacy: []string{legacy.url()}})
	tr := &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			return net.Dial(network, addr)
		},
	}
	c := &http.Client{Transport: tr}
	for i := 0; i < 3; i++ {
		req, _ := http.NewRequest("POST", url+"/h2?q=1", strings.NewReader(fmt.Sprint("body", i)))
		req.Header.Add("Cookie", "a=1")
		req.Header.Add("Cookie", "b=2")
		resp, body := do(t, c, req)
		if resp.ProtoMajor != 2 || resp.StatusCode != 200 {
			t.Fatalf("got %s %d", resp.Proto, resp.StatusCode)
		}
		if want := fmt.Sprint("POST /h2?q=1 a=1; b=2 body", i); body != want {
			t.Errorf("body %q, want %q", body, want)
		}
		if resp.Header.Get("X-Upstream-Proto") != "HTTP/1.1" {
			t.Errorf("upstream spoke %q", resp.Header.Get("X-Upstream-Proto"))
		}
		if len(resp.Cookies()) != 1 {
			t.Errorf("no sticky cookie on the h2 path: %v", resp.Header)
		}
	}
}

func TestH2OverTLS(t *testing.T) {
	legacy := h2Side(t)
	cert := selfSigned(t)
	_, url := startProxy(t, Config{Legacy: []string{legacy.url()}, TLS: &tls.Config{Certificates: []tls.Certificate{cert}}})
	url = "https" + strings.TrimPrefix(url, "http")
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	for _, h2 := range []bool{true, false} {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: h2}
		if !h2 {
			tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		}
		resp, body := get(t, &http.Client{Transport: tr}, url+"/tls")
		wantMajor := 1
		if h2 {
			wantMajor = 2
		}
		if resp.ProtoMajor != wantMajor || body != "GET /tls  " {
			t.Errorf("h2=%v: %s %q", h2, resp.Proto, body)
		}
		if c := resp.Cookies(); len(c) != 1 || !c[0].Secure {
			t.Errorf("h2=%v: want a Secure sticky cookie, got %v", h2, resp.Header["Set-Cookie"])
		}
	}
}

func selfSigned(t *testing.T) tls.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

func TestSmugglingRejected(t *testing.T) {
	legacy := newSide(t, "legacy", nil)
	p, url := startProxy(t, Config{Legacy: []string{legacy.url()}})
	for _, tc := range []struct {
		name, req string
		status    int
	}{
		{"CL and TE", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"TE and CL", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n", 400},
		{"two CL", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nabcd", 400},
		{"CL list", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4, 4\r\n\r\nabcd", 400},
		{"CL sign", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +4\r\n\r\nabcd", 400},
		{"CL hex", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x4\r\n\r\nabcd", 400},
		{"CL huge", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n", 400},
		{"TE gzip", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
		{"TE chunked twice", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", 501},
		{"two TE fields", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"space before colon", "GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n", 400},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", 400},
		{"bare CR", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", 400},
		{"NUL in value", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", 400},
		{"no Host", "GET / HTTP/1.1\r\n\r\n", 400},
		{"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
		{"bad chunk size", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n\r\n", 400},
		{"chunk size bare LF", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n", 400},
		{"chunk data bare LF", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\n0\r\n\r\n", 400},
		{"space in target", "GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"HTTP/2 line", "GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505},
		{"CONNECT", "CONNECT x:443 HTTP/1.1\r\nHost: x\r\n\r\n", 405},
		{"bad method", "G(T / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"huge head", "GET / HTTP/1.1\r\nHost: x\r\nX-A: " + strings.Repeat("a", 70<<10) + "\r\n\r\n", 431},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := legacy.hits.Load()
			out := rawExchange(t, url, tc.req)
			want := fmt.Sprintf("HTTP/1.1 %d ", tc.status)
			if !strings.HasPrefix(out, want) {
				t.Errorf("got %q, want %s", firstLine(out), want)
			}
			if !strings.Contains(out, "Connection: close") {
				t.Errorf("connection not closed after a rejected request")
			}
			if legacy.hits.Load() != before {
				t.Errorf("the request reached the upstream")
			}
		})
	}
	if p.Stats().badHeads.Load() == 0 {
		t.Error("rejections not counted")
	}
	// Bare LF line ends in the head are normalised, not rejected.
	out := rawExchange(t, url, "GET /lf HTTP/1.1\nHost: x\nConnection: close\n\n")
	if !strings.HasPrefix(out, "HTTP/1.1 200") {
		t.Errorf("bare LF head: %q", firstLine(out))
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func TestAbsoluteFormTarget(t *testing.T) {
	var host, uri string
	legacy := newSide(t, "legacy", func(w http.ResponseWriter, r *http.Request) {
		host, uri = r.Host, r.RequestURI
	})
	_, url := startProxy(t, Config{Legacy: []string{legacy.url()}})
	out := rawExchange(t, url, "GET http://example.com/p?q=1 HTTP/1.1\r\nHost: other\r\nConnection: close\r\n\r\n")
	if !strings.HasPrefix(out, "HTTP/1.1 200") || host != "example.com" || uri != "/p?q=1" {
		t.Errorf("got %q; upstream saw Host %q target %q", firstLine(out), host, uri)
	}
}

func TestHTTPSUpstream(t *testing.T) {
	up := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "tls %v host %s", r.TLS != nil, r.Host)
	}))
	defer up.Close()
	roots := up.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	_, url := startProxy(t, Config{Legacy: []string{up.URL}, UpstreamTLS: &tls.Config{RootCAs: roots}, RewriteHost: true})
	c := newClient()
	for i := 0; i < 3; i++ {
		resp, body := get(t, c, url+"/")
		if want := "tls true host " + strings.TrimPrefix(up.URL, "https://"); resp.StatusCode != 200 || body != want {
			t.Fatalf("got %d %q, want %q", resp.StatusCode, body, want)
		}
	}
	// An upstream whose certificate is not trusted is a transport error.
	_, url = startProxy(t, Config{Legacy: []string{up.URL}})
	if resp, _ := get(t, c, url+"/"); resp.StatusCode != 502 {
		t.Errorf("untrusted upstream: %d, want 502", resp.StatusCode)
	}
}

func TestShutdownWithH2CConnection(t *testing.T) {
	legacy := h2Side(t)
	p, url := startProxy(t, Config{Legacy: []string{legacy.url()}})
	tr := &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			return net.Dial(network, addr)
		},
	}
	c := &http.Client{Transport: tr}
	if resp, _ := get(t, c, url+"/"); resp.ProtoMajor != 2 {
		t.Fatalf("proto %s", resp.Proto)
	}
	start := time.Now()
	if err := p.Shutdown(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatalf("Shutdown with an idle h2c connection: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Shutdown took %s", d)
	}
}
