package proxy

import (
	"bufio"
	"crypto/sha256"
	"io"
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
