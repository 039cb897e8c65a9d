// Package sim is a simulated service and its clients, shared by the demo
// and the drills: backends that answer like a small payments API (or fail
// on demand), and steady open-loop load that records what its clients
// saw — answers, failures by kind, refused connections and latencies.
package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Backend is a demo service: it answers after a latency, or fails.
type Backend struct {
	// Name is what it answers as ("served_by").
	Name string
	// URL is its base URL, set by StartBackend.
	URL string

	base, jitter  time.Duration
	srv           *http.Server
	failing       atomic.Bool
	firstFailNano atomic.Int64
}

// StartBackend serves a backend on a loopback port that answers after base
// plus up to jitter.
func StartBackend(name string, base, jitter time.Duration) (*Backend, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b := &Backend{Name: name, URL: "http://" + ln.Addr().String(), base: base, jitter: jitter}
	b.srv = &http.Server{Handler: b, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 90 * time.Second}
	go b.srv.Serve(ln)
	return b, nil
}

// Close stops the backend at once.
func (b *Backend) Close() { b.srv.Close() }

// Fail makes every later request fail with a 500.
func (b *Backend) Fail() { b.failing.Store(true) }

// Heal ends Fail and forgets the first failure.
func (b *Backend) Heal() { b.failing.Store(false); b.firstFailNano.Store(0) }

// FirstFailure is when the backend first failed a request since the last
// Heal; zero if it has not.
func (b *Backend) FirstFailure() time.Time {
	n := b.firstFailNano.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

func (b *Backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	if b.failing.Load() {
		b.firstFailNano.CompareAndSwap(0, time.Now().UnixNano())
		http.Error(w, `{"error":"database connection pool exhausted"}`, http.StatusInternalServerError)
		return
	}
	d := b.base
	if b.jitter > 0 {
		d += time.Duration(rand.Int64N(int64(b.jitter)))
	}
	time.Sleep(d)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]string{"served_by": b.Name, "path": r.URL.Path})
}

// Load sends steady open-loop load: GETs, and POSTs carrying an
// Idempotency-Key, from users identified by a random X-User-Id. Set the
// fields, then Run; the counters can be read at any time.
type Load struct {
	// URL is the base URL the load goes to.
	URL string
	// RPS is the request rate; zero means 200.
	RPS int
	// Path is the path of every request; "" means /v1/balance for GETs
	// and /v1/payments for POSTs (the demo backends' API).
	Path string
	// PostEvery makes every n-th request a POST with an Idempotency-Key;
	// zero means 5, negative means none.
	PostEvery int
	// FreshEvery sends every n-th request on a new connection, so that a
	// listener refusing connections shows; zero means never (keep-alive
	// only).
	FreshEvery int
	// Workers bounds requests in flight; zero means 32. When all are busy
	// a tick is skipped, as an open-loop client at its limit would.
	Workers int
	// Timeout bounds each request; zero means 10s.
	Timeout time.Duration
	// MaxFailures bounds the failures kept for Failures; zero means 20.
	MaxFailures int

	requests, errors, refused, rejected atomic.Int64
	inflight                            atomic.Int64

	mu       sync.Mutex
	failures []Failure
	log      []outcome
	// started holds the start of each request in flight, by sequence.
	started map[int64]time.Time
	seq     int64
}

// Failure is one request that failed as its client saw it.
type Failure struct {
	// Start is when the request was sent, Time when it failed.
	Start  time.Time `json:"start"`
	Time   time.Time `json:"time"`
	Method string    `json:"method"`
	// Status is the answer's status; zero for a transport error.
	Status int `json:"status,omitempty"`
	// Side is the answer's X-Cutover-Side: the side whose failure the
	// proxy reports.
	Side string `json:"side,omitempty"`
	// Error is the transport error.
	Error string `json:"error,omitempty"`
}

// Counts are cumulative counts of a Load.
type Counts struct {
	// Requests that ended (answered or failed).
	Requests int64 `json:"requests"`
	// Errors are requests answered with a 5xx or not answered at all.
	Errors int64 `json:"errors"`
	// Refused are the Errors whose connection was refused.
	Refused int64 `json:"refused"`
	// Rejected are requests answered with a 4xx: the service refused
	// them, it did not fail.
	Rejected int64 `json:"rejected"`
}

// Sub returns c - o.
func (c Counts) Sub(o Counts) Counts {
	return Counts{c.Requests - o.Requests, c.Errors - o.Errors, c.Refused - o.Refused, c.Rejected - o.Rejected}
}

// outcome is one ended request, kept so that a window of requests can be
// counted by when they were sent.
type outcome struct {
	start, end time.Time
	err        bool // a 5xx or no answer
	refused    bool
	rejected   bool // a 4xx
}

// maxOutcomes bounds the kept outcomes (about 15 minutes at 200/s); the
// oldest half goes when it is reached.
const maxOutcomes = 200_000

// Counts returns the counts so far.
func (l *Load) Counts() Counts {
	return Counts{l.requests.Load(), l.errors.Load(), l.refused.Load(), l.rejected.Load()}
}

// InFlight is the number of requests sent and not yet ended.
func (l *Load) InFlight() int64 { return l.inflight.Load() }

// Failures returns the first failures, oldest first.
func (l *Load) Failures() []Failure {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.failures)
}

// in reports whether o belongs to the window [from, until): it ended at
// or after from and was sent before until.
func (o *outcome) in(from, until time.Time) bool {
	return !o.end.Before(from) && o.start.Before(until)
}

// Window counts the requests that ended at or after from and were sent
// before until; call Settle(until) first so that all of them have ended.
func (l *Load) Window(from, until time.Time) Counts {
	l.mu.Lock()
	defer l.mu.Unlock()
	var c Counts
	for i := range l.log {
		o := &l.log[i]
		if !o.in(from, until) {
			continue
		}
		c.Requests++
		switch {
		case o.err:
			c.Errors++
			if o.refused {
				c.Refused++
			}
		case o.rejected:
			c.Rejected++
		}
	}
	return c
}

// Quantiles returns the latencies at quantiles qs of the requests of the
// window [from, until) (as Window counts them), and how many there were.
// Failed requests count with the time they took to fail.
func (l *Load) Quantiles(from, until time.Time, qs ...float64) ([]time.Duration, int) {
	l.mu.Lock()
	var ds []time.Duration
	for i := range l.log {
		if o := &l.log[i]; o.in(from, until) {
			ds = append(ds, o.end.Sub(o.start))
		}
	}
	l.mu.Unlock()
	out := make([]time.Duration, len(qs))
	if len(ds) == 0 {
		return out, 0
	}
	slices.Sort(ds)
	for i, q := range qs {
		k := int(q*float64(len(ds))+0.5) - 1
		out[i] = ds[min(max(k, 0), len(ds)-1)]
	}
	return out, len(ds)
}

// Settle waits until every request sent before t has ended, or ctx
// ends; a request stuck past its timeout ends by it.
func (l *Load) Settle(ctx context.Context, t time.Time) {
	now := t
	for {
		l.mu.Lock()
		older := false
		for _, t := range l.started {
			if t.Before(now) {
				older = true
				break
			}
		}
		l.mu.Unlock()
		if !older {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func (l *Load) begin() (int64, time.Time) {
	l.inflight.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.started == nil {
		l.started = map[int64]time.Time{}
	}
	l.seq++
	t := time.Now()
	l.started[l.seq] = t
	return l.seq, t
}

func (l *Load) end(id int64) {
	l.inflight.Add(-1)
	l.mu.Lock()
	delete(l.started, id)
	l.mu.Unlock()
}

// Run sends the load until ctx ends, then waits for the requests in
// flight.
func (l *Load) Run(ctx context.Context) {
	rps, workers, timeout := l.RPS, l.Workers, l.Timeout
	if rps <= 0 {
		rps = 200
	}
	if workers <= 0 {
		workers = 32
	}
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	tr := &http.Transport{MaxIdleConnsPerHost: workers, IdleConnTimeout: 60 * time.Second}
	defer tr.CloseIdleConnections()
	keep := &http.Client{Transport: tr, Timeout: timeout}
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: timeout}
	tick := time.NewTicker(time.Second / time.Duration(rps))
	defer tick.Stop()
	jobs := make(chan int, workers)
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range jobs {
				hc := keep
				if l.FreshEvery > 0 && n%l.FreshEvery == 1 {
					hc = fresh
				}
				l.one(ctx, hc, n)
			}
		}()
	}
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			close(jobs)
			wg.Wait()
			return
		case <-tick.C:
			select {
			case jobs <- n:
			default: // all workers busy: the service is slow; skip
			}
		}
	}
}

func (l *Load) one(ctx context.Context, hc *http.Client, n int) {
	every := l.PostEvery
	if every == 0 {
		every = 5
	}
	getPath, postPath := "/v1/balance", "/v1/payments"
	if l.Path != "" {
		getPath, postPath = l.Path, l.Path
	}
	base := strings.TrimRight(l.URL, "/")
	var req *http.Request
	var err error
	if every > 0 && n%every == 0 {
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, base+postPath, strings.NewReader(`{"amount":1250,"currency":"EUR"}`))
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Idempotency-Key", fmt.Sprintf("sim-%d-%d", time.Now().UnixNano(), n))
		}
	} else {
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, base+getPath, nil)
	}
	if err != nil {
		return
	}
	req.Header.Set("X-User-Id", strconv.Itoa(rand.IntN(10000)))
	id, start := l.begin()
	defer l.end(id)
	resp, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return // the run is ending: not a failure of the service
		}
		refused := errors.Is(err, syscall.ECONNREFUSED)
		l.record(outcome{start: start, end: time.Now(), err: true, refused: refused},
			Failure{Start: start, Time: time.Now(), Method: req.Method, Error: err.Error()})
		return
	}
	_, rerr := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	end := time.Now()
	if rerr != nil && ctx.Err() != nil {
		return
	}
	o := outcome{start: start, end: end}
	f := Failure{Start: start, Time: end, Method: req.Method, Status: resp.StatusCode, Side: resp.Header.Get("X-Cutover-Side")}
	switch {
	case rerr != nil:
		o.err, f.Error = true, "reading the body: "+rerr.Error()
	case resp.StatusCode >= 500:
		o.err = true
	case resp.StatusCode >= 400:
		o.rejected = true
	}
	l.record(o, f)
}

// record counts an ended request; f describes it when it failed.
func (l *Load) record(o outcome, f Failure) {
	l.requests.Add(1)
	switch {
	case o.err:
		l.errors.Add(1)
		if o.refused {
			l.refused.Add(1)
		}
	case o.rejected:
		l.rejected.Add(1)
	}
	max := l.MaxFailures
	if max <= 0 {
		max = 20
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if o.err && len(l.failures) < max {
		l.failures = append(l.failures, f)
	}
	if len(l.log) >= maxOutcomes {
		n := copy(l.log, l.log[len(l.log)/2:])
		l.log = l.log[:n]
	}
	l.log = append(l.log, o)
}
