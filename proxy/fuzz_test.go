package proxy

import (
	"bytes"
	"testing"
)

var requestSeeds = []string{
	"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET /a?b=c HTTP/1.1\r\nHost: example.com\r\nCookie: a=1; cutover-user=abc\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n",
	"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
	"POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive, X-A\r\nX-A: 1\r\n\r\n",
	"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
	"GET http://h:8/p HTTP/1.1\r\nHost: x\r\n\r\n",
	"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET / HTTP/1.0\r\n\r\n",
	"\r\nGET / HTTP/1.1\nHost: x\n\n",
	"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nTE: trailers\r\nProxy: p\r\nIdempotency-Key: k\r\n\r\n",
}

// FuzzParseRequestHead: the parser never panics; what it accepts is
// well-formed; and the head the proxy sends upstream for it parses back
// to the same request.
func FuzzParseRequestHead(f *testing.F) {
	for _, s := range requestSeeds {
		f.Add([]byte(s))
	}
	p, err := New(Config{Legacy: []string{"http://127.0.0.1:1"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { p.Close() })
	f.Fuzz(func(t *testing.T, b []byte) {
		n := headEnd(b)
		if n == 0 {
			return
		}
		var h reqHead
		if err := parseRequestHead(b[:n], &h); err != nil {
			if _, ok := err.(*errHead); !ok {
				t.Fatalf("error of type %T", err)
			}
			return
		}
		checkHead(t, &h.common)
		for _, c := range h.method {
			if !isToken[c] {
				t.Fatalf("method %q", h.method)
			}
		}
		for _, c := range h.target {
			if c <= ' ' || c == 0x7f {
				t.Fatalf("target %q", h.target)
			}
		}
		if h.hostCount > 1 {
			t.Fatal("two Hosts accepted")
		}
		// Round trip through the upstream head.
		out := p.appendRequestHead(nil, &h, []byte("127.0.0.1"), false)
		if h.hostCount == 0 && h.absHost == nil {
			out = append(out, "Host: up\r\n"...)
		}
		if h.contentLength >= 0 {
			out = append(out, "Content-Length: 7\r\n"...)
		}
		out = append(out, '\r', '\n')
		if headEnd(out) != len(out) {
			t.Fatalf("upstream head is not one head:\n%q", out)
		}
		var h2 reqHead
		if err := parseRequestHead(out, &h2); err != nil {
			t.Fatalf("upstream head does not parse: %v\n%q", err, out)
		}
		if !bytes.Equal(h.method, h2.method) || !bytes.Equal(h.target, h2.target) || h2.chunked || h2.minor != 1 {
			t.Fatalf("upstream head changed the request:\n%q\n%q", b[:n], out)
		}
		if h2.connUpgrade != (h.connUpgrade && len(h.upgrade) > 0) {
			t.Fatalf("upgrade changed: %q", out)
		}
	})
}

var responseSeeds = []string{
	"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n",
	"HTTP/1.0 200 OK\r\nKeep-Alive: timeout=5, max=100\r\nConnection: keep-alive\r\n\r\n",
	"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
	"HTTP/1.1 204\r\n\r\n",
	"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 3\r\nContent-Length: 3\r\nConnection: close, X-A\r\nX-A: 1\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
}

// FuzzParseResponseHead: never panics; accepted heads are well-formed, and
// the head relayed to the client parses back.
func FuzzParseResponseHead(f *testing.F) {
	for _, s := range responseSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		n := headEnd(b)
		if n == 0 {
			return
		}
		var h respHead
		if err := parseResponseHead(b[:n], &h); err != nil {
			return
		}
		checkHead(t, &h.common)
		if h.status < 100 || h.status > 599 {
			t.Fatalf("status %d", h.status)
		}
		if h.chunked && h.contentLength >= 0 {
			t.Fatal("both framings kept")
		}
		out := append([]byte("HTTP/1.1 "), h.statusLine...)
		out = append(out, '\r', '\n')
		out = appendRespFields(out, &h, h.chunked)
		out = append(out, '\r', '\n')
		var h2 respHead
		if err := parseResponseHead(out, &h2); err != nil {
			t.Fatalf("relayed head does not parse: %v\n%q", err, out)
		}
		if h2.status != h.status || h2.connClose || h2.connUpgrade || h2.chunked {
			t.Fatalf("relayed head changed meaning:\n%q\n%q", b[:n], out)
		}
	})
}

func checkHead(t *testing.T, c *common) {
	t.Helper()
	if c.contentLength < -1 {
		t.Fatalf("content length %d", c.contentLength)
	}
	for _, f := range c.fields {
		if len(f.name) == 0 {
			t.Fatal("empty field name")
		}
		for _, ch := range f.name {
			if !isToken[ch] {
				t.Fatalf("field name %q", f.name)
			}
		}
		for _, ch := range f.value {
			if ch == '\r' || ch == '\n' || ch == 0 {
				t.Fatalf("field value %q", f.value)
			}
		}
	}
}

// FuzzChunkScanner: the scanner's verdict and payload do not depend on
// how the input is split across reads.
func FuzzChunkScanner(f *testing.F) {
	for _, s := range []string{
		"3\r\nabc\r\n0\r\n\r\n",
		"a;x=y\r\n0123456789\r\n0\r\nT: v\r\n\r\nextra",
		"3\nabc\r\n0\r\n\r\n",
		"fffffffffffffffff\r\n",
	} {
		f.Add([]byte(s), uint8(1))
	}
	f.Fuzz(func(t *testing.T, in []byte, step uint8) {
		whole := func(split int) (n int, data []byte, done bool, failed bool) {
			var cs chunkScanner
			for n < len(in) && !cs.done() {
				end := len(in)
				if split > 0 && n+split < end {
					end = n + split
				}
				k, d, err := cs.next(in[n:end])
				data = append(data, d...)
				n += k
				if err != nil {
					return n, data, false, true
				}
				if k == 0 {
					break
				}
			}
			return n, data, cs.done(), false
		}
		n1, d1, done1, err1 := whole(0)
		n2, d2, done2, err2 := whole(int(step%16) + 1)
		if err1 != err2 || done1 != done2 || !bytes.Equal(d1, d2) || (done1 && n1 != n2) {
			t.Fatalf("split changes the verdict: (%d %q %v %v) vs (%d %q %v %v)", n1, d1, done1, err1, n2, d2, done2, err2)
		}
		if done1 && n1 > len(in) {
			t.Fatal("consumed past the input")
		}
	})
}

func BenchmarkParseRequestHead(b *testing.B) {
	req := []byte("GET /api/v1/users/42?expand=orders HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: bench/1.0\r\nAccept: application/json\r\nAccept-Encoding: gzip\r\nCookie: session=abc; cutover-user=0123456789abcdef\r\nX-Request-Id: 5f0c6b1e\r\n\r\n")
	var h reqHead
	b.ReportAllocs()
	b.SetBytes(int64(len(req)))
	for i := 0; i < b.N; i++ {
		if headEnd(req) != len(req) {
			b.Fatal("head end")
		}
		if err := parseRequestHead(req, &h); err != nil {
			b.Fatal(err)
		}
	}
}
