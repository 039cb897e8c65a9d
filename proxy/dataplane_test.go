package proxy

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The tests here cover what an event loop (loop_linux.go) does on its own
// (hand-overs to the goroutine path mid-connection, backpressure, its
// timers, half closes, clients that leave) and pass on both data planes:
// hack/test.sh runs the package again with CUTOVER_DATAPLANE=goroutine.

func dialProxy(t *testing.T, url string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// TestPipelinedMixHandsOverInOrder: plain requests, then one the loop does
// not take (a chunked body), then plain ones again, all in one write: every
// answer comes back in order on the one connection.
func TestPipelinedMixHandsOverInOrder(t *testing.T) {
	legacy := newSide(t, "legacy", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		io.WriteString(w, r.Method+" "+r.URL.Path+" "+string(b))
	})
	_, url := startProxy(t, Config{Legacy: []string{legacy.url()}})
	c := dialProxy(t, url)
	io.WriteString(c, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"+
		"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"+
		"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"+
		"GET /d HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	for _, want := range []string{"GET /a ", "POST /b hello", "POST /c abc", "GET /d "} {
		resp, body := rawResponse(t, br, "GET")
		if resp.StatusCode != 200 || body != want {
			t.Fatalf("got %d %q, want 200 %q", resp.StatusCode, body, want)
		}
	}
}

// TestSlowClientBackpressure: a client that does not read a large answer
// stops the proxy from reading the upstream (the upstream's writes block)
// instead of the proxy buffering it; once the client reads, the whole
// answer arrives intact.
func TestSlowClientBackpressure(t *testing.T) {
	const size = 128 << 20
	var written atomic.Int64
	sum := sha256.New()
	chunk := make([]byte, 64<<10)
	for i := range chunk {
		chunk[i] = byte(i * 7)
	}
	for i := 0; i < size/len(chunk); i++ {
		sum.Write(chunk)
	}
	want := sum.Sum(nil)
	legacy := newSide(t, "legacy", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "134217728")
		for i := 0; i < size/len(chunk); i++ {
			n, err := w.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
	})
	_, url := startProxy(t, Config{Legacy: []string{legacy.url()}})
	c := dialProxy(t, url)
	c.SetDeadline(time.Now().Add(60 * time.Second))
	io.WriteString(c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
	// The upstream writes until the sockets between it and the client
	// are full; then it must stay blocked.
	var last int64
	for i := 0; i < 40; i++ {
		time.Sleep(50 * time.Millisecond)
		n := written.Load()
		if i > 5 && n == last {
			break
		}
		last = n
	}
	if n := written.Load(); n >= size/2 {
		t.Fatalf("the upstream wrote %d of %d bytes to a client that reads nothing: the proxy buffers instead of pushing back", n, size)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	if err != nil || n != size || string(h.Sum(nil)) != string(want) {
		t.Fatalf("read %d bytes (%v), want %d with the upstream's digest", n, err, size)
	}
}

// TestPartialHeadTimesOut: a client that sends part of a head and stops
// gets 408 after ReadHeaderTimeout and the connection ends; a quiet one is
// closed after IdleTimeout.
func TestPartialHeadTimesOut(t *testing.T) {
	legacy := newSide(t, "legacy", nil)
	_, url := startProxy(t, Config{Legacy: []string{legacy.url()},
		ReadHeaderTimeout: 150 * time.Millisecond, IdleTimeout: 300 * time.Millisecond})
	c := dialProxy(t, url)
	io.WriteString(c, "GET / HTTP/1.1\r\nHo")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 408 {
		t.Fatalf("partial head: %v %v, want 408", resp, err)
	}
	if _, err := io.ReadAll(br); err != nil {
		t.Errorf("connection after 408: %v, want a close", err)
	}

	quiet := dialProxy(t, url)
	start := time.Now()
	if _, err := quiet.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("quiet connection: %v, want EOF", err)
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("quiet connection closed after %s, before IdleTimeout", d)
	}
}

// TestHalfClosedClientGetsItsAnswer: a client that sends its request and
// shuts its writing side still gets the whole answer.
func TestHalfClosedClientGetsItsAnswer(t *testing.T) {
	legacy := newSide(t, "legacy", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(50 * time.Millisecond)
		io.WriteString(w, "late")
	})
	_, url := startProxy(t, Config{Legacy: []string{legacy.url()}})
	c := dialProxy(t, url)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	c.(*net.TCPConn).CloseWrite()
	resp, body := rawResponse(t, bufio.NewReader(c), "GET")
	if resp.StatusCode != 200 || body != "late" {
		t.Errorf("half-closed client: %d %q", resp.StatusCode, body)
	}
}

// TestClientLeavingReleasesTheAttempt: a client that disconnects while its
// request waits on the upstream leaves no request counted in flight.
func TestClientLeavingReleasesTheAttempt(t *testing.T) {
	if os.Getenv("CUTOVER_DATAPLANE") == "goroutine" || !loopEnabled() {
		t.Skip("the goroutine data plane notices a client that left only when the answer comes")
	}
	release := make(chan struct{})
	legacy := newSide(t, "legacy", func(w http.ResponseWriter, r *http.Request) {
		<-release
		io.WriteString(w, "late")
	})
	defer close(release)
	p, url := startProxy(t, Config{Legacy: []string{legacy.url()}})
	c := dialProxy(t, url)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	b := p.sides[SideLegacy].backends[0]
	waitFor(t, "the request in flight", func() bool { return b.inflight.Load() == 1 })
	c.(*net.TCPConn).SetLinger(0)
	c.Close()
	waitFor(t, "the attempt released", func() bool {
		return b.inflight.Load() == 0 && p.stats.sides[SideLegacy].inflight.Load() == 0
	})
}

// TestUpstreamByName: an upstream given by name is looked up (the event
// loops resolve it off their threads and keep the answer for a while).
func TestUpstreamByName(t *testing.T) {
	legacy := newSide(t, "legacy", nil)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(legacy.url(), "http://"))
	_, url := startProxy(t, Config{Legacy: []string{"http://localhost:" + port}})
	c := newClient()
	for i := 0; i < 3; i++ {
		if resp, body := get(t, c, url+"/"); resp.StatusCode != 200 || body != "legacy" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
	}
	_, bad := startProxy(t, Config{Legacy: []string{"http://no-such-host.invalid:80"}})
	if resp, _ := get(t, c, bad+"/"); resp.StatusCode != 502 {
		t.Errorf("unknown upstream host: %d, want 502", resp.StatusCode)
	}
}

// TestRandomFramingsAndSplits: answers of every framing (Content-Length,
// chunked with random chunk sizes, close-delimited, bodiless) and sizes
// from 0 to 200 KiB, written by a raw upstream in random fragments with
// pauses, come through byte for byte on keep-alive connections, with
// requests sometimes pipelined two at a time.
func TestRandomFramingsAndSplits(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serveFramings(c)
		}
	}()
	_, url := startProxy(t, Config{Legacy: []string{"http://" + ln.Addr().String()}})
	rng := rand.New(rand.NewPCG(1, 2))
	modes := []string{"cl", "chunked", "close", "none", "head"}
	var c net.Conn
	var br *bufio.Reader
	for i := 0; i < 300; i++ {
		if c == nil {
			c = dialProxy(t, url)
			br = bufio.NewReader(c)
		}
		n := 1 + rng.IntN(2) // sometimes two requests in one write
		type want struct {
			mode string
			size int
			seed uint64
		}
		var reqs []byte
		var wants []want
		for k := 0; k < n; k++ {
			w := want{modes[rng.IntN(len(modes))], rng.IntN(200 << 10), rng.Uint64()}
			if rng.IntN(3) == 0 {
				w.size = rng.IntN(100)
			}
			method := "GET"
			if w.mode == "head" {
				method = "HEAD"
			}
			reqs = fmt.Appendf(reqs, "%s /%s/%d/%d HTTP/1.1\r\nHost: x\r\n\r\n", method, w.mode, w.size, w.seed)
			wants = append(wants, w)
			if w.mode == "close" {
				break // nothing after a close-delimited answer
			}
		}
		if _, err := c.Write(reqs); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		for _, w := range wants {
			method := "GET"
			if w.mode == "head" {
				method = "HEAD"
			}
			resp, err := http.ReadResponse(br, &http.Request{Method: method})
			if err != nil {
				t.Fatalf("request %d (%s, %d bytes): %v", i, w.mode, w.size, err)
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			wantBody := framingBody(w.size, w.seed)
			if w.mode == "none" || w.mode == "head" {
				wantBody = nil
			}
			if err != nil || string(got) != string(wantBody) {
				t.Fatalf("request %d (%s, %d bytes): %d bytes back (%v), not the upstream's", i, w.mode, w.size, len(got), err)
			}
			if resp.Close {
				c.Close()
				c = nil
				break
			}
		}
	}
}

func framingBody(size int, seed uint64) []byte {
	b := make([]byte, size)
	r := rand.New(rand.NewPCG(seed, 7))
	for i := range b {
		b[i] = 'a' + byte(r.IntN(26))
	}
	return b
}

// serveFramings answers GET /MODE/SIZE/SEED in the framing named, writing
// in random fragments.
func serveFramings(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
	write := func(b []byte) error {
		for len(b) > 0 {
			k := min(len(b), 1+rng.IntN(20000))
			if _, err := c.Write(b[:k]); err != nil {
				return err
			}
			b = b[k:]
			if rng.IntN(4) == 0 {
				time.Sleep(time.Duration(rng.IntN(500)) * time.Microsecond)
			}
		}
		return nil
	}
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		var mode string
		var size int
		var seed uint64
		fmt.Sscanf(strings.ReplaceAll(req.URL.Path, "/", " "), "%s %d %d", &mode, &size, &seed)
		body := framingBody(size, seed)
		var out []byte
		switch mode {
		case "cl", "head":
			out = fmt.Appendf(out, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", size)
			if mode == "cl" {
				out = append(out, body...)
			}
		case "chunked":
			out = append(out, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"...)
			for rest := body; len(rest) > 0; {
				k := min(len(rest), 1+rng.IntN(9000))
				out = fmt.Appendf(out, "%x\r\n", k)
				out = append(out, rest[:k]...)
				out = append(out, "\r\n"...)
				rest = rest[k:]
			}
			out = append(out, "0\r\n\r\n"...)
		case "close":
			out = append(out, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"...)
			out = append(out, body...)
		case "none":
			out = append(out, "HTTP/1.1 204 No Content\r\n\r\n"...)
		}
		if write(out) != nil || mode == "close" {
			return
		}
	}
}

// TestLargeBodiesAreKeptForRetries: request bodies far larger than a read
// buffer, sent in pieces, reach the upstream whole, and when the first
// side refuses the connection they go whole to the other side.
func TestLargeBodiesAreKeptForRetries(t *testing.T) {
	echo := func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%d %x", len(b), sha256.Sum256(b))
	}
	newer := newSide(t, "new", echo)
	_, url := startProxy(t, Config{Legacy: []string{refusedURL(t)}, New: []string{newer.url()}})
	c := dialProxy(t, url)
	br := bufio.NewReader(c)
	for _, size := range []int{9 << 10, 100 << 10, 900 << 10, 10} {
		body := framingBody(size, uint64(size))
		fmt.Fprintf(c, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", size)
		for rest := body; len(rest) > 0; {
			k := min(len(rest), 30000)
			c.Write(rest[:k])
			rest = rest[k:]
		}
		resp, got := rawResponse(t, br, "POST")
		if want := fmt.Sprintf("%d %x", size, sha256.Sum256(body)); resp.StatusCode != 200 || got != want {
			t.Fatalf("%d-byte body: %d %q, want 200 %q", size, resp.StatusCode, got, want)
		}
	}
}

// TestConnectionsComeBackToLoops: while a mirror share is set, a loop
// hands connections to the goroutine path (which mirrors); once it is
// cleared, a connection goes back to a loop between requests. Seen from
// outside: only a loop releases a request at once when its client leaves.
func TestConnectionsComeBackToLoops(t *testing.T) {
	if os.Getenv("CUTOVER_DATAPLANE") == "goroutine" || !loopEnabled() {
		t.Skip("no event loops in the goroutine data plane")
	}
	release := make(chan struct{})
	defer close(release)
	legacy := newSide(t, "legacy", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
		io.WriteString(w, "legacy")
	})
	newer := newSide(t, "new", nil)
	p, url := startProxy(t, Config{Legacy: []string{legacy.url()}, New: []string{newer.url()}})
	if err := p.SetMirror(100); err != nil {
		t.Fatal(err)
	}
	c := dialProxy(t, url)
	br := bufio.NewReader(c)
	io.WriteString(c, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, body := rawResponse(t, br, "GET"); resp.StatusCode != 200 || body != "legacy" {
		t.Fatalf("mirrored request: %d %q", resp.StatusCode, body)
	}
	waitFor(t, "the mirrored copy", func() bool { return newer.hits.Load() == 1 })
	p.SetMirror(0)
	// This request is still the goroutine's; the connection then goes
	// back to a loop.
	io.WriteString(c, "GET /b HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, body := rawResponse(t, br, "GET"); resp.StatusCode != 200 || body != "legacy" {
		t.Fatalf("request after the mirror: %d %q", resp.StatusCode, body)
	}
	io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	b := p.sides[SideLegacy].backends[0]
	waitFor(t, "the slow request in flight", func() bool { return b.inflight.Load() == 1 })
	c.(*net.TCPConn).SetLinger(0)
	c.Close()
	waitFor(t, "a loop releasing the request of the client that left", func() bool { return b.inflight.Load() == 0 })
}

// TestConcurrentFailuresDropNothing: 16 clients send GETs while the new
// side resets a fifth of its connections mid-request and answers 503 to a
// tenth: every client gets legacy's or new's 200, and when the load stops
// nothing is counted in flight.
func TestConcurrentFailuresDropNothing(t *testing.T) {
	var n atomic.Int64
	newer := newRawUpstream(t, func(c net.Conn, br *bufio.Reader) {
		for {
			if _, _, err := readReq(br); err != nil {
				return
			}
			switch k := n.Add(1) % 10; {
			case k < 2:
				c.(*net.TCPConn).SetLinger(0) // a reset, the request unanswered
				return
			case k == 2:
				io.WriteString(c, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy")
			default:
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nnew")
			}
		}
	})
	legacy := newSide(t, "legacy", nil)
	p, url := startProxy(t, Config{Legacy: []string{legacy.url()}, New: []string{newer.url()},
		Weights: Weights{Legacy: 50, New: 50}, RetryBudget: 1})
	errs := make(chan error, 16)
	for g := 0; g < 16; g++ {
		go func() {
			c := newClient()
			for i := 0; i < 150; i++ {
				resp, err := c.Get(url + "/")
				if err != nil {
					errs <- err
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || (string(b) != "new" && string(b) != "legacy") {
					errs <- fmt.Errorf("got %d %q", resp.StatusCode, b)
					return
				}
			}
			errs <- nil
		}()
	}
	for g := 0; g < 16; g++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n.Load() < 100 {
		t.Fatalf("the new side saw %d requests: the split did not reach it", n.Load())
	}
	// The last answers are out before the proxy counts them done.
	waitFor(t, "nothing in flight after the load", func() bool {
		k := int64(0)
		for _, s := range []Side{SideLegacy, SideNew} {
			k += p.stats.sides[s].inflight.Load()
			for _, b := range p.sides[s].backends {
				k += b.inflight.Load()
			}
		}
		return k == 0
	})
}
