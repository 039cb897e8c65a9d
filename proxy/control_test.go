package proxy

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestWeightZeroDrains(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 10)
	legacy := newSide(t, "legacy", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			started <- struct{}{}
			<-release
		}
		io.WriteString(w, "legacy")
	})
	newer := newSide(t, "new", nil)
	p, url := startProxy(t, Config{Legacy: []string{legacy.url()}, New: []string{newer.url()}, Weights: Weights{Legacy: 100}})
	c := newClient()
	var wg sync.WaitGroup
	results := make(chan string, 3)
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := c.Get(url + "/slow")
			if err != nil {
				results <- err.Error()
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			results <- fmt.Sprint(resp.StatusCode, " ", string(b))
		}()
	}
	for i := 0; i < 3; i++ {
		<-started
	}
	if err := p.SetWeights(Weights{Legacy: 0, New: 100}); err != nil {
		t.Fatal(err)
	}
	before := legacy.hits.Load()
	for i := 0; i < 100; i++ {
		// Sticky users of legacy too: weight 0 means none.
		_, body := get(t, c, url+"/", "Cookie", fmt.Sprintf("cutover-user=u%d", i))
		if body != "new" {
			t.Fatalf("request %d went to %s at weight 0", i, body)
		}
	}
	if legacy.hits.Load() != before {
		t.Errorf("legacy got %d new requests at weight 0", legacy.hits.Load()-before)
	}
	if n := p.Stats().Counters(SideLegacy).InFlight; n != 3 {
		t.Errorf("legacy in flight = %d, want 3", n)
	}
	close(release)
	wg.Wait()
	close(results)
	for r := range results {
		if r != "200 legacy" {
			t.Errorf("in-flight request on the drained side: %s", r)
		}
	}
}

func TestShutdownDrains(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	legacy := newSide(t, "legacy", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			started <- struct{}{}
			<-release
		}
		io.WriteString(w, "done")
	})
	p, url := startProxy(t, Config{Legacy: []string{legacy.url()}})
	addr := strings.TrimPrefix(url, "http://")

	// An idle keep-alive connection, and one that will be busy.
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	io.WriteString(idle, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	idleBR := bufio.NewReader(idle)
	if resp, _ := rawResponse(t, idleBR, "GET"); resp.StatusCode != 200 {
		t.Fatal(resp.Status)
	}
	busy, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	io.WriteString(busy, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	<-started

	shut := make(chan error, 1)
	go func() { shut <- p.Shutdown(ctxTimeout(t, 10*time.Second)) }()
	waitFor(t, "the listener to close", func() bool {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	// The idle connection may still bring one last request, answered
	// with Connection: close.
	io.WriteString(idle, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, body := rawResponse(t, idleBR, "GET")
	if resp.StatusCode != 200 || body != "done" || !resp.Close {
		t.Errorf("last request on an idle connection: %d %q close=%v", resp.StatusCode, body, resp.Close)
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a request in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	resp, body = rawResponse(t, bufio.NewReader(busy), "GET")
	if resp.StatusCode != 200 || body != "done" || !resp.Close {
		t.Errorf("in-flight request: %d %q close=%v", resp.StatusCode, body, resp.Close)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if n := p.sides[SideLegacy].backends[0].idleCount(); n != 0 {
		t.Errorf("%d pooled upstream connections left open", n)
	}
}

func TestShutdownClosesQuietIdleConnections(t *testing.T) {
	legacy := newSide(t, "legacy", nil)
	p, url := startProxy(t, Config{Legacy: []string{legacy.url()}})
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	rawResponse(t, br, "GET")
	start := time.Now()
	if err := p.Shutdown(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < drainGrace/2 || d > 3*drainGrace {
		t.Errorf("Shutdown took %s with one quiet idle connection, want about %s", d, drainGrace)
	}
	c.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Errorf("idle connection not closed: %v", err)
	}
}

func TestShutdownDeadlineAbortsStuckRequests(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	legacy := newSide(t, "legacy", func(w http.ResponseWriter, r *http.Request) { <-release })
	p, url := startProxy(t, Config{Legacy: []string{legacy.url()}})
	go http.Get(url + "/stuck")
	waitFor(t, "the request", func() bool { return p.Stats().Counters(SideLegacy).InFlight == 1 })
	start := time.Now()
	err := p.Shutdown(ctxTimeout(t, 200*time.Millisecond))
	if err == nil || time.Since(start) > 2*time.Second {
		t.Errorf("Shutdown = %v after %s; want the context's error soon after 200ms", err, time.Since(start))
	}
}

func adminReq(t *testing.T, h http.Handler, method, path, token, body string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

func TestAdminAPI(t *testing.T) {
	legacy := newSide(t, "legacy", nil)
	newer := newSide(t, "new", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) })
	p, url := startProxy(t, Config{Legacy: []string{legacy.url()}, New: []string{newer.url()}, AdminToken: "s3cret", RetryBudget: -1, RetryFloor: -1})
	h := p.AdminHandler()
	for _, path := range []string{"/v1/weights", "/v1/mirror", "/v1/stats", "/metrics"} {
		for _, tok := range []string{"", "wrong", "s3cre", "s3cret "} {
			if code, _ := adminReq(t, h, "GET", path, tok, ""); code != 401 {
				t.Errorf("GET %s with token %q: %d, want 401", path, tok, code)
			}
		}
	}
	if code, _ := adminReq(t, h, "PUT", "/v1/weights", "", `{"legacy":0,"new":100}`); code != 401 || p.Weights().New != 0 {
		t.Errorf("PUT without token: %d, weights %v", code, p.Weights())
	}
	if code, body := adminReq(t, h, "GET", "/healthz", "", ""); code != 200 || body != "ok\n" {
		t.Errorf("healthz: %d %q", code, body)
	}
	if code, body := adminReq(t, h, "GET", "/v1/weights", "s3cret", ""); code != 200 || !strings.Contains(body, `"legacy": 100`) {
		t.Errorf("GET weights: %d %s", code, body)
	}
	if code, body := adminReq(t, h, "PUT", "/v1/weights", "s3cret", `{"legacy":60,"new":40}`); code != 200 || p.Weights() != (Weights{60, 40}) {
		t.Errorf("PUT weights: %d %s", code, body)
	}
	for _, bad := range []string{`{"legacy":60,"new":50}`, `{"legacy":-1,"new":101}`, `{"legacy":60,"new":40,"x":1}`, `nope`} {
		if code, _ := adminReq(t, h, "PUT", "/v1/weights", "s3cret", bad); code != 400 && code != 422 {
			t.Errorf("PUT weights %s: %d", bad, code)
		}
	}
	if p.Weights() != (Weights{60, 40}) {
		t.Errorf("a refused PUT changed the weights to %v", p.Weights())
	}
	if code, body := adminReq(t, h, "PUT", "/v1/mirror", "s3cret", `{"percent":25}`); code != 200 || p.Mirror() != 25 {
		t.Errorf("PUT mirror: %d %s", code, body)
	}
	if code, _ := adminReq(t, h, "PUT", "/v1/mirror", "s3cret", `{"percent":250}`); code != 422 {
		t.Errorf("PUT mirror 250: %d", code)
	}
	p.SetMirror(0)

	// Traffic, then the stats and metrics.
	p.SetWeights(Weights{Legacy: 50, New: 50})
	c := newClient()
	for i := 0; i < 40; i++ {
		get(t, c, url+"/", "Cookie", fmt.Sprintf("cutover-user=%d", i))
	}
	// Attempts are recorded after the answer went out.
	waitFor(t, "requests to be recorded", func() bool {
		return p.Stats().Counters(SideLegacy).Requests+p.Stats().Counters(SideNew).Requests == 40
	})
	waitFor(t, "requests to end", func() bool {
		return p.Stats().Counters(SideLegacy).InFlight+p.Stats().Counters(SideNew).InFlight == 0
	})
	code, body := adminReq(t, h, "GET", "/v1/stats?window=10s&samples=1", "s3cret", "")
	if code != 200 {
		t.Fatalf("stats: %d %s", code, body)
	}
	var st statsView
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	l, n := st.Sides["legacy"], st.Sides["new"]
	if l.Requests+n.Requests != 40 || n.Errors5xx != n.Requests || l.Errors != 0 || len(l.Samples) != int(l.Latencies) {
		t.Errorf("stats: %s", body)
	}
	if code, _ := adminReq(t, h, "GET", "/v1/stats?window=1h", "s3cret", ""); code != 400 {
		t.Errorf("window=1h: %d", code)
	}
	code, body = adminReq(t, h, "GET", "/metrics", "s3cret", "")
	for _, want := range []string{
		fmt.Sprintf(`cutover_proxy_requests_total{side="legacy"} %d`, l.Requests),
		fmt.Sprintf(`cutover_proxy_errors_total{kind="5xx",side="new"} %d`, n.Requests),
		`cutover_proxy_errors_total{kind="transport",side="new"} 0`,
		`cutover_proxy_latency_seconds_bucket{side="legacy",le="60"} ` + fmt.Sprint(l.Requests),
		`cutover_proxy_latency_seconds_count{side="new"} ` + fmt.Sprint(n.Requests),
		`cutover_proxy_weight_percent{side="new"} 50`,
		`cutover_proxy_retries_total{side="new"} 0`,
		`cutover_proxy_replays_total{side="new"} 0`,
		`cutover_proxy_in_flight{side="legacy"} 0`,
		`cutover_proxy_mirror_percent 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q in\n%s", want, body)
		}
	}
	if code != 200 {
		t.Errorf("metrics: %d", code)
	}

	// Public metrics behind the flag.
	p2, err := New(Config{Legacy: []string{legacy.url()}, MetricsPublic: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	if code, _ := adminReq(t, p2.AdminHandler(), "GET", "/metrics", "", ""); code != 200 {
		t.Errorf("public metrics: %d", code)
	}
	if code, _ := adminReq(t, p2.AdminHandler(), "GET", "/v1/weights", "", ""); code != 401 {
		t.Errorf("no AdminToken configured: weights answered %d, want 401", code)
	}
	p.Shutdown(ctxTimeout(t, 5*time.Second))
	if code, _ := adminReq(t, h, "GET", "/healthz", "", ""); code != 503 {
		t.Errorf("healthz while draining: %d", code)
	}
}

func TestWindow(t *testing.T) {
	st := newStats()
	// The clock starts with the process; keep every time below positive.
	now := nanotime() + int64(2*time.Second)
	// 1000 legacy requests over the last second: latency i µs for i in
	// 1..1000, ten 5xx, five transport failures without latency.
	for i := 1; i <= 1000; i++ {
		at := now - int64(time.Second) + int64(i)*int64(time.Millisecond)
		status := 200
		if i%100 == 0 {
			status = 503
		}
		st.record(SideLegacy, at, int64(i)*1000, status, false)
	}
	for i := 0; i < 5; i++ {
		st.record(SideLegacy, now, -1, 0, true)
	}
	st.record(SideNew, now, int64(5*time.Millisecond), 200, false)
	end := clockTime(now + 1)
	w := st.window(SideLegacy, end.Add(-2*time.Second), end, now)
	if w.Requests != 1005 || w.Errors5xx != 10 || w.ErrorsTransport != 5 || w.Errors != 15 || w.Latencies != 1000 {
		t.Errorf("window counts %+v", w)
	}
	near := func(got time.Duration, want float64) bool {
		return float64(got) > want*0.98*1e3 && float64(got) < want*1.02*1e3
	}
	if !near(w.P50, 500) || !near(w.P90, 900) || !near(w.P99, 990) {
		t.Errorf("quantiles p50 %s p90 %s p99 %s, want 500µs 900µs 990µs ±2%%", w.P50, w.P90, w.P99)
	}
	// Reservoirs: 32 per 100 ms slot, ten full slots.
	if len(w.Samples) < 300 || len(w.Samples) > 330 {
		t.Errorf("%d samples", len(w.Samples))
	}
	var sum time.Duration
	for _, s := range w.Samples {
		if s < time.Microsecond || s > time.Millisecond {
			t.Fatalf("sample %s out of range", s)
		}
		sum += s
	}
	if mean := sum / time.Duration(len(w.Samples)); mean < 420*time.Microsecond || mean > 580*time.Microsecond {
		t.Errorf("sample mean %s, want about 500µs: not uniform", mean)
	}
	// A narrower window sees only its slots, and none that began before
	// it: 1 request a millisecond, the first slot rounded up.
	w = st.window(SideLegacy, end.Add(-150*time.Millisecond), end, now)
	if w.Requests < 50 || w.Requests > 155 || w.Since.Before(end.Add(-150*time.Millisecond)) {
		t.Errorf("last 150ms: %d requests since %s", w.Requests, w.Since)
	}
	if w := st.window(SideNew, end.Add(-time.Second), end, now); w.Requests != 1 || w.P50 < 4900*time.Microsecond || w.P50 > 5100*time.Microsecond {
		t.Errorf("new window %+v", w)
	}
	// Nothing in an empty window, and nothing from the future.
	if w := st.window(SideLegacy, end.Add(time.Second), end.Add(2*time.Second), now); w.Requests != 0 {
		t.Errorf("future window: %+v", w)
	}
}

func TestWindowCoarseSlots(t *testing.T) {
	st := newStats()
	now := nanotime()
	if now < int64(12*time.Minute) {
		// The clock starts at process start; pretend it is older.
		now += int64(12 * time.Minute)
	}
	// One request per second for ten minutes, without going through the
	// clock: record at explicit times.
	for s := 0; s < 600; s++ {
		st.record(SideNew, now-int64(s)*int64(time.Second), int64(time.Millisecond), 200, false)
	}
	got := windowAt(st, SideNew, now, 5*time.Minute)
	// Coarse slots at the old end widen the window by up to 10 s.
	if got.Requests < 300 || got.Requests > 311 {
		t.Errorf("5 min window: %d requests, want 300..311", got.Requests)
	}
	if got.P50 < 980*time.Microsecond || got.P50 > 1020*time.Microsecond || len(got.Samples) < 250 {
		t.Errorf("5 min window: p50 %s, %d samples", got.P50, len(got.Samples))
	}
}

// windowAt is Window over the d before clock time now.
func windowAt(st *Stats, side Side, now int64, d time.Duration) Window {
	end := clockTime(now + 1)
	return st.window(side, end.Add(-d), end, now)
}

func TestMirrorComparesWithoutAffectingClients(t *testing.T) {
	legacy := newSide(t, "legacy", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "same answer")
	})
	var mirrored sync.Map
	newer := newSide(t, "new", func(w http.ResponseWriter, r *http.Request) {
		mirrored.Store(r.Method+" "+r.URL.Path, r.Header.Get("X-Cutover-Mirror"))
		switch r.URL.Path {
		case "/users/42/same", "/users/43/same":
			io.WriteString(w, "same answer")
		case "/diff":
			for i := 0; i < 3; i++ {
				io.WriteString(w, "different") // chunked
				w.(http.Flusher).Flush()
			}
		case "/slow":
			time.Sleep(300 * time.Millisecond)
			io.WriteString(w, "same answer")
		}
	})
	p, url := startProxy(t, Config{Legacy: []string{legacy.url()}, New: []string{newer.url()}, MirrorPercent: 100})
	c := newClient()
	start := time.Now()
	for _, path := range []string{"/users/42/same", "/users/43/same", "/diff", "/slow"} {
		resp, body := get(t, c, url+path)
		if resp.Header.Get("X-Side") != "legacy" || body != "same answer" {
			t.Fatalf("%s: client saw %q from %q", path, body, resp.Header.Get("X-Side"))
		}
	}
	if d := time.Since(start); d > 250*time.Millisecond {
		t.Errorf("mirroring delayed clients: %s", d)
	}
	req, _ := http.NewRequest("POST", url+"/users/42/same", strings.NewReader("x"))
	do(t, c, req)
	waitFor(t, "mirror results", func() bool {
		routes, _ := p.Stats().Mirror()
		var n uint64
		for _, r := range routes {
			n += r.Match + r.Mismatch + r.Errors
		}
		return n == 4
	})
	routes, dropped := p.Stats().Mirror()
	want := []MirrorRoute{
		{Route: "GET /diff", Mismatch: 1},
		{Route: "GET /slow", Match: 1},
		{Route: "GET /users/:id", Match: 2},
	}
	if fmt.Sprint(routes) != fmt.Sprint(want) || dropped != 0 {
		t.Errorf("mirror routes %+v dropped %d, want %+v", routes, dropped, want)
	}
	if _, ok := mirrored.Load("POST /users/42/same"); ok {
		t.Error("a POST was mirrored without MirrorUnsafe")
	}
	if v, _ := mirrored.Load("GET /diff"); v != "1" {
		t.Errorf("mirrored request lacks X-Cutover-Mirror: %q", v)
	}
	if n := p.Stats().Counters(SideNew).Requests; n != 0 {
		t.Errorf("mirrors counted as %d new-side requests", n)
	}
}

// TestWindowSeesFailureFast: the shift engine polls Window every 100–250
// ms and must see a failing new side within a few hundred ms.
func TestWindowSeesFailureFast(t *testing.T) {
	var failing atomic.Bool
	legacy := newSide(t, "legacy", nil)
	newer := newSide(t, "new", func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			w.WriteHeader(500)
		}
	})
	p, url := startProxy(t, Config{Legacy: []string{legacy.url()}, New: []string{newer.url()}, Weights: Weights{Legacy: 50, New: 50}, RetryBudget: -1, RetryFloor: -1})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := newClient()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if resp, err := c.Get(url + "/"); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()
	time.Sleep(300 * time.Millisecond)
	failAt := time.Now()
	failing.Store(true)
	for {
		now := time.Now()
		w := p.Stats().Window(SideNew, now.Add(-250*time.Millisecond), now)
		if w.Errors5xx > 0 {
			if d := now.Sub(failAt); d > 400*time.Millisecond {
				t.Errorf("errors visible after %s", d)
			}
			break
		}
		if now.Sub(failAt) > 2*time.Second {
			t.Fatal("the failing new side never showed in the window")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
