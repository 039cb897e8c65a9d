package shift_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/audit"
	"github.com/cutoverhq/cutover/audit/audittest"
	_ "github.com/cutoverhq/cutover/audit/file"
	"github.com/cutoverhq/cutover/internal/admin"
	"github.com/cutoverhq/cutover/metrics/embedded"
	"github.com/cutoverhq/cutover/plan"
	dataplane "github.com/cutoverhq/cutover/proxy"
	"github.com/cutoverhq/cutover/router"
	routerproxy "github.com/cutoverhq/cutover/router/proxy"
	"github.com/cutoverhq/cutover/shift"
)

// rig is a real embedded proxy between two real backends, with load.
type rig struct {
	t        *testing.T
	legacy   *httptest.Server
	newer    *httptest.Server
	failing  atomic.Bool
	proxy    *dataplane.Proxy
	url      string
	router   *countingRouter
	provider *embedded.Provider
	sent     atomic.Int64
	failed   atomic.Int64
	stop     func()
}

// countingRouter wraps the real proxy router to count and optionally
// interrupt weight changes; the data plane underneath is the real one.
type countingRouter struct {
	*routerproxy.Router
	mu      sync.Mutex
	sets    []int
	failSet func(w int) error
}

func (c *countingRouter) SetWeights(ctx context.Context, w router.Weights) error {
	c.mu.Lock()
	f := c.failSet
	c.mu.Unlock()
	if f != nil {
		if err := f(w.New); err != nil {
			return err
		}
	}
	if err := c.Router.SetWeights(ctx, w); err != nil {
		return err
	}
	c.mu.Lock()
	c.sets = append(c.sets, w.New)
	c.mu.Unlock()
	return nil
}

func (c *countingRouter) setCalls() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]int(nil), c.sets...)
}

func newRig(t *testing.T) *rig {
	r := &rig{t: t}
	r.legacy = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		io.Copy(io.Discard, req.Body)
		time.Sleep(2 * time.Millisecond)
		io.WriteString(w, "legacy")
	}))
	r.newer = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		io.Copy(io.Discard, req.Body)
		if r.failing.Load() {
			http.Error(w, "broken", http.StatusInternalServerError)
			return
		}
		time.Sleep(time.Millisecond)
		io.WriteString(w, "new")
	}))
	t.Cleanup(r.legacy.Close)
	t.Cleanup(r.newer.Close)
	p, err := dataplane.New(dataplane.Config{
		Legacy: []string{r.legacy.URL}, New: []string{r.newer.URL},
		Weights: dataplane.Weights{Legacy: 100}, StickyHeader: "X-User", RetryBudget: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go p.Serve(ln)
	t.Cleanup(func() { p.Close() })
	r.proxy = p
	r.url = "http://" + ln.Addr().String()
	r.router = &countingRouter{Router: routerproxy.NewLocal(p, "")}
	r.provider = embedded.NewFor(p)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	hc := &http.Client{Timeout: 5 * time.Second}
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for n := 0; ctx.Err() == nil; n++ {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.url+"/x", nil)
				req.Header.Set("X-User", fmt.Sprintf("u%d-%d", i, n%500))
				resp, err := hc.Do(req)
				if ctx.Err() != nil {
					return
				}
				r.sent.Add(1)
				if err != nil {
					r.failed.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					r.failed.Add(1)
				}
				time.Sleep(2 * time.Millisecond)
			}
		}(i)
	}
	r.stop = func() { cancel(); wg.Wait() }
	t.Cleanup(r.stop)
	return r
}

func rigPlan(t *testing.T, extra string) *plan.Plan {
	t.Helper()
	src := `apiVersion: cutover.dev/v1alpha1
kind: ShiftPlan
metadata: {name: rig}
spec:
  service: rig
  legacy: {addresses: ["http://127.0.0.1:1"]}
  new: {addresses: ["http://127.0.0.1:2"]}
  router: {type: proxy}
  slo: {errorRate: {max: 1%}}
  analysis: {interval: 50ms, window: 2s, minRequests: 10}
  steps:
    - {weight: 10, hold: 400ms}
    - {weight: 50, hold: 400ms}
    - {weight: 100, hold: 200ms}
` + extra
	p, err := plan.Parse("rig.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (r *rig) runner(p *plan.Plan, store shift.Store, obs ...shift.Observer) *shift.Runner {
	return &shift.Runner{Plan: p, Router: r.router, Provider: r.provider, Store: store, Observers: obs, StartedBy: "alice"}
}

func TestRunnerCompletesAHealthyShift(t *testing.T) {
	r := newRig(t)
	hist := &shift.History{}
	final, err := r.runner(rigPlan(t, ""), nil, hist).Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if final.Phase != shift.Completed || final.Weight != 100 {
		t.Fatalf("final %s at %d: %s", final.Phase, final.Weight, final.Reason)
	}
	if got := r.proxy.Weights(); got.New != 100 {
		t.Errorf("proxy weights %+v", got)
	}
	steps := hist.Steps()
	if len(steps) != 3 || steps[1].Outcome != "passed" || !(steps[1].New.Requests > 0) {
		t.Errorf("step summaries %+v", steps)
	}
	if r.failed.Load() != 0 {
		t.Errorf("%d of %d client requests failed", r.failed.Load(), r.sent.Load())
	}
}

func TestRunnerRollsBackWithinASecondAndClientsSeeNothing(t *testing.T) {
	r := newRig(t)
	var failedAt atomic.Int64
	inject := observerFunc(func(e shift.Event, s shift.State) {
		if e.Type == "weight-confirmed" && s.Weight == 50 {
			failedAt.Store(time.Now().UnixNano())
			r.failing.Store(true)
		}
	})
	final, err := r.runner(rigPlan(t, ""), nil, inject).Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if final.Phase != shift.RolledBack || r.proxy.Weights().New != 0 {
		t.Fatalf("final %s, proxy %+v", final.Phase, r.proxy.Weights())
	}
	took := final.Updated.Sub(time.Unix(0, failedAt.Load()))
	if took >= time.Second {
		t.Errorf("rollback took %v from the first failure, want < 1s", took)
	}
	r.stop()
	if r.failed.Load() != 0 {
		t.Errorf("%d of %d idempotent client requests failed; the proxy should have replayed them on legacy", r.failed.Load(), r.sent.Load())
	}
	t.Logf("rollback %v, %d requests, 0 failed", took, r.sent.Load())
}

type observerFunc func(e shift.Event, s shift.State)

func (f observerFunc) OnEvent(ctx context.Context, e shift.Event, s shift.State) { f(e, s) }
func (f observerFunc) OnSample(ctx context.Context, smp shift.Sample)            {}

// A runner killed between saving "set 50 %" and setting it resumes by
// setting 50 % again: the traffic goes 0 → 10 → 50 → 100, never back and
// forth, and no step is repeated.
func TestRunnerResumesAfterACrashWithoutMovingTrafficTwice(t *testing.T) {
	r := newRig(t)
	store := &shift.FileStore{Path: filepath.Join(t.TempDir(), "state.json")}
	p := rigPlan(t, "")
	ctx, crash := context.WithCancel(context.Background())
	r.router.failSet = func(w int) error {
		if w == 50 {
			crash() // the process dies as it is about to set 50 %
			return errors.New("killed")
		}
		return nil
	}
	_, err := r.runner(p, store).Run(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("first run: %v", err)
	}
	saved, err := store.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if saved.State.Phase != shift.Setting || saved.State.Target != 50 || saved.State.Weight != 10 {
		t.Fatalf("saved state %+v, want Setting 10 → 50", saved.State)
	}
	r.router.failSet = nil
	final, err := r.runner(p, store).Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if final.Phase != shift.Completed {
		t.Fatalf("resumed run ended %s: %s", final.Phase, final.Reason)
	}
	sets := r.router.setCalls()
	prev := -1
	for _, w := range sets {
		if w < prev {
			t.Fatalf("traffic moved back: %v", sets)
		}
		prev = w
	}
	if got := count(sets, 10); got != 1 {
		t.Errorf("step 10%% set %d times: %v", got, sets)
	}
	// A finished shift resumed again does nothing.
	before := len(r.router.setCalls())
	again, err := r.runner(p, store).Run(context.Background())
	if err != nil || again.Phase != shift.Completed || len(r.router.setCalls()) != before {
		t.Errorf("re-running a completed shift: %v %s, sets %v", err, again.Phase, r.router.setCalls())
	}
}

func count(xs []int, v int) int {
	n := 0
	for _, x := range xs {
		if x == v {
			n++
		}
	}
	return n
}

func TestRunnerPausesWhenTheRouterDriftedWhileItWasDown(t *testing.T) {
	r := newRig(t)
	store := &shift.FileStore{Path: filepath.Join(t.TempDir(), "state.json")}
	p := rigPlan(t, "")
	p.Spec.Steps[0].Hold = plan.Duration(time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	stopAtHold := observerFunc(func(e shift.Event, s shift.State) {
		if e.Type == "weight-confirmed" {
			cancel()
		}
	})
	r.runner(p, store, stopAtHold).Run(ctx)
	// Someone sends everything back to legacy by hand.
	r.proxy.SetWeights(dataplane.Weights{Legacy: 100})
	ctx2, cancel2 := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel2()
	run := r.runner(p, store)
	go run.Run(ctx2)
	deadline := time.Now().Add(time.Second)
	for run.State().Phase != shift.Paused && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	st := run.State()
	if st.Phase != shift.Paused || !strings.Contains(st.Reason, "router reads back new 0%") {
		t.Fatalf("state %s: %s", st.Phase, st.Reason)
	}
	if r.proxy.Weights().New != 0 {
		t.Errorf("the runner overrode the manual change")
	}
}

// TestRunnerPausesWhenTheRouterDriftsDuringAHold: the runner reads the
// router's weights back on every tick of a hold; traffic moved behind its
// back (here through the proxy directly, as a reload or a hand edit would)
// pauses the shift and is recorded, and resume sets the weight again.
func TestRunnerPausesWhenTheRouterDriftsDuringAHold(t *testing.T) {
	r := newRig(t)
	p := rigPlan(t, "")
	p.Spec.Steps[0].Hold = plan.Duration(time.Hour)
	var mu sync.Mutex
	var seen []string
	holding := make(chan struct{}, 1)
	obs := observerFunc(func(e shift.Event, s shift.State) {
		mu.Lock()
		seen = append(seen, e.Type)
		mu.Unlock()
		if e.Type == "weight-confirmed" {
			select {
			case holding <- struct{}{}:
			default:
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	logLoc := "file:" + filepath.Join(t.TempDir(), "audit.log")
	alog, err := audit.Open(ctx, logLoc, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	trail := shift.NewAuditTrail(ctx, alog, p, "alice", false, nil)
	run := r.runner(p, nil, obs, trail)
	ran := make(chan struct{})
	go func() { run.Run(ctx); close(ran) }()
	<-holding
	r.proxy.SetWeights(dataplane.Weights{Legacy: 100})
	deadline := time.Now().Add(2 * time.Second)
	for run.State().Phase != shift.Paused && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	st := run.State()
	if st.Phase != shift.Paused || !st.Drifted || !strings.Contains(st.Reason, "reads back new 0%, the shift set 10%") {
		t.Fatalf("state %s (drifted %v): %s", st.Phase, st.Drifted, st.Reason)
	}
	time.Sleep(200 * time.Millisecond) // a few more ticks: still paused, router untouched
	if got := r.proxy.Weights().New; got != 0 || run.State().Phase != shift.Paused {
		t.Fatalf("while paused the router reads %d%%, phase %s", got, run.State().Phase)
	}
	mu.Lock()
	drifts := 0
	for _, e := range seen {
		if e == "router-drift" {
			drifts++
		}
	}
	mu.Unlock()
	if drifts != 1 {
		t.Fatalf("router-drift recorded %d times: %v", drifts, seen)
	}
	if _, err := run.Submit(ctx, shift.Command{Kind: shift.CmdResume, Actor: "bob"}); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(2 * time.Second)
	for (run.State().Phase != shift.Holding || r.proxy.Weights().New != 10) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if st := run.State(); st.Phase != shift.Holding || r.proxy.Weights().New != 10 {
		t.Fatalf("after resume: %s, router new %d%%", st.Phase, r.proxy.Weights().New)
	}
	cancel()
	<-ran
	if err := trail.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	var drift []audit.WeightData
	for _, e := range audittest.Entries(t, logLoc) {
		if e.Record.Kind == audit.KindRouterDrift {
			var d audit.WeightData
			e.Record.DecodeData(&d)
			drift = append(drift, d)
		}
	}
	if len(drift) != 1 || drift[0].Want != 10 || drift[0].Got == nil || *drift[0].Got != 0 {
		t.Fatalf("router-drift records %+v, want one: want 10, got 0", drift)
	}
}

func TestRunnerRefusesAStateOfAnotherPlan(t *testing.T) {
	r := newRig(t)
	store := &shift.FileStore{Path: filepath.Join(t.TempDir(), "state.json")}
	store.Save(context.Background(), shift.Saved{Plan: "rig", PlanDigest: "0123456789abcdef", State: shift.NewState("x")})
	_, err := r.runner(rigPlan(t, ""), store).Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "another version of plan") {
		t.Fatalf("got %v", err)
	}
}

func TestAdminAPIAuthenticatesAndRecordsTheActor(t *testing.T) {
	r := newRig(t)
	p := rigPlan(t, "")
	p.Spec.Steps[0].Approval = &plan.Approval{Count: 1, Group: "leads", FourEyes: true}
	hist := &shift.History{}
	run := r.runner(p, nil, hist)
	tokens := admin.Single("bob-token-0123456789", admin.Identity{Name: "bob", Groups: []string{"leads"}})
	srv := httptest.NewServer(run.AdminHandler(tokens, hist))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan shift.State, 1)
	go func() { s, _ := run.Run(ctx); done <- s }()

	call := func(method, path, token string) (*http.Response, []byte) {
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	if resp, _ := call("GET", "/v1/shift", ""); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no token: %d", resp.StatusCode)
	}
	if resp, _ := call("POST", "/v1/shift/approve", "wrong-token-0123456789"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d", resp.StatusCode)
	}
	deadline := time.Now().Add(2 * time.Second)
	for run.State().Phase != shift.WaitingApproval && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	resp, body := call("GET", "/v1/shift", "bob-token-0123456789")
	var st shift.Status
	if err := json.Unmarshal(body, &st); err != nil || resp.StatusCode != 200 || st.State.Phase != shift.WaitingApproval {
		t.Fatalf("status %d %s: %v", resp.StatusCode, body, err)
	}
	resp, body = call("POST", "/v1/shift/approve", "bob-token-0123456789")
	var res shift.CommandResult
	if err := json.Unmarshal(body, &res); err != nil || resp.StatusCode != 200 {
		t.Fatalf("approve %d %s", resp.StatusCode, body)
	}
	approved := false
	for _, e := range res.Events {
		if e.Type == "approved" && e.Actor == "bob" {
			approved = true
		}
	}
	if !approved {
		t.Errorf("no approval by bob in %+v", res.Events)
	}
	if s := <-done; s.Phase != shift.Completed {
		t.Errorf("shift ended %s: %s", s.Phase, s.Reason)
	}
	if resp, _ := call("POST", "/v1/shift/pause", "bob-token-0123456789"); resp.StatusCode != http.StatusConflict {
		t.Errorf("command after the end: %d", resp.StatusCode)
	}
}
