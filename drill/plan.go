package drill

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/cutoverhq/cutover/internal/sim"
	"github.com/cutoverhq/cutover/judge"
	"github.com/cutoverhq/cutover/metrics"
	"github.com/cutoverhq/cutover/metrics/embedded"
	"github.com/cutoverhq/cutover/plan"
	dataplane "github.com/cutoverhq/cutover/proxy"
	"github.com/cutoverhq/cutover/router"
	routerproxy "github.com/cutoverhq/cutover/router/proxy"
	"github.com/cutoverhq/cutover/shift"
)

// PlanOptions configure RunPlan.
type PlanOptions struct {
	// Plan is the shift to run. Its router must be "proxy". Required.
	Plan *plan.Plan
	// AtWeight picks the step the fault hits: the first step whose weight
	// is at least AtWeight; the fault starts once that step holds and
	// passed an analysis. Zero means 50.
	AtWeight int
	// UpstreamTimeout is the in-process proxy's response timeout
	// (proxy.Config.ResponseHeaderTimeout); a blackhole is detected no
	// sooner. Zero means the proxy's default, 60s.
	UpstreamTimeout time.Duration
	// Traffic is the traffic URL of the proxy process a plan with router
	// setting "admin" drives; required then, unused otherwise.
	Traffic string
	// RPS, ProbePath and PostEvery shape the probe load (sim.Load's RPS,
	// Path and PostEvery); zero values mean 200 requests/s, the demo API's
	// paths and a POST every fifth request.
	RPS       int
	ProbePath string
	PostEvery int
	// Restarter restarts the proxy process, for Restart drills.
	Restarter Restarter
	// Log receives progress; nil discards it.
	Log *slog.Logger
	// Observers, when set, adds observers of the shift (the terminal
	// display).
	Observers func(p *plan.Plan, r *shift.Runner) []shift.Observer
	// Recorder is passed to Run (Options.Recorder).
	Recorder func(ctx context.Context, r *Result) error
}

// RunPlan runs the plan's shift in this process, on an in-process proxy
// (router setting "listen") or on the proxy process the plan drives
// (setting "admin"), with the drill's probe load as its traffic; once the
// chosen step holds it runs the drill and returns its result. A side whose
// addresses do not answer is stood in for by a simulated backend, so a
// plan runs as a drill on a laptop or in staging alike. The shift is
// stopped when the drill ends (it is a drill, not a migration).
func RunPlan(ctx context.Context, s Spec, o PlanOptions) (*Result, error) {
	p := o.Plan
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if p.Spec.Router.Type != "proxy" {
		return nil, notRunnable("%s: drills run on cutover's embedded proxy (router type proxy); this plan uses router %q", p.File, p.Spec.Router.Type)
	}
	var set routerproxy.Settings
	if err := p.DecodeSettings(&p.Spec.Router, "spec.router", &set); err != nil {
		return nil, err
	}
	if err := s.WithDefaults().Validate(); err != nil {
		return nil, err
	}
	if s.Kind == Restart {
		switch {
		case set.Admin == "":
			return nil, notRunnable("%s: the restart drill needs the proxy run as its own process (`cutover proxy`, router setting admin): an in-process proxy shares the shift's process, and restarting it would prove nothing about a real restart", p.File)
		case o.Restarter == nil:
			return nil, notRunnable("a restart drill needs the proxy's pid file (--pid-file)")
		}
	}
	at := o.AtWeight
	if at == 0 {
		at = 50
	}
	step := -1
	var wait time.Duration
	for i, st := range p.Spec.Steps {
		wait += st.Hold.D()
		if st.Weight >= at && st.Weight > 0 {
			step = i
			break
		}
	}
	if step < 0 {
		return nil, notRunnable("%s: no step has a weight ≥ %d %%", p.File, at)
	}
	var notes []string
	if p.Spec.Metrics.Type != "embedded" {
		notes = append(notes, fmt.Sprintf("the plan's metrics are %q; the drill judges on the embedded proxy's own metrics", p.Spec.Metrics.Type))
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		rt      router.Router
		prov    metrics.Provider
		flt     faulter
		traffic string
	)
	if set.Admin != "" {
		if o.Traffic == "" {
			return nil, notRunnable("the plan drives the proxy process at %s (router setting admin): give its traffic URL with --traffic", set.Admin)
		}
		r, err := routerproxy.New(ctx, router.Backends{Service: p.Spec.Service, Legacy: p.Spec.Legacy.Addresses, New: p.Spec.New.Addresses},
			func(v any) error { return p.DecodeSettings(&p.Spec.Router, "spec.router", v) })
		if err != nil {
			return nil, notRunnable("%s: spec.router: %v", p.File, err)
		}
		rt = r
		if prov, err = embedded.New(ctx, metrics.Env{Service: p.Spec.Service, Local: r}, func(any) error { return nil }); err != nil {
			return nil, err
		}
		env := set.TokenEnv
		if env == "" {
			env = "CUTOVER_PROXY_TOKEN"
		}
		flt = adminFaults{newClient(set.Admin, os.Getenv(env))}
		traffic = o.Traffic
		notes = append(notes, fmt.Sprintf("the shift ran in the drill's process and drove the proxy process at %s", set.Admin))
	} else {
		if set.Listen == "" {
			return nil, notRunnable("%s: spec.router: set listen (an in-process proxy) or admin (a proxy process)", p.File)
		}
		legacy, n1, err := backendsFor(ctx, "legacy", p.Spec.Legacy, 12*time.Millisecond, 6*time.Millisecond)
		if err != nil {
			return nil, err
		}
		defer closeAll(legacy)
		newer, n2, err := backendsFor(ctx, "new", p.Spec.New, 5*time.Millisecond, 3*time.Millisecond)
		if err != nil {
			return nil, err
		}
		defer closeAll(newer)
		notes = append(notes, n1...)
		notes = append(notes, n2...)
		cfg := dataplane.Config{
			Legacy: addrs(p.Spec.Legacy.Addresses, legacy), New: addrs(p.Spec.New.Addresses, newer),
			Weights:      dataplane.Weights{Legacy: 100},
			StickyCookie: set.StickyCookie, StickyHeader: set.StickyHeader,
			MaxReplayBody: set.MaxReplayBody, RetryBudget: set.RetryBudget,
			ResponseHeaderTimeout: o.UpstreamTimeout,
			Logger:                log,
		}
		if set.UpstreamIdleTimeout != "" {
			d, err := time.ParseDuration(set.UpstreamIdleTimeout)
			if err != nil {
				return nil, fmt.Errorf("%s: spec.router.upstreamIdleTimeout: %w", p.File, err)
			}
			cfg.UpstreamIdleTimeout = d
		}
		px, err := dataplane.New(cfg)
		if err != nil {
			return nil, fmt.Errorf("%s: spec.router: %w", p.File, err)
		}
		ln, err := net.Listen("tcp", set.Listen)
		if err != nil {
			px.Close()
			return nil, notRunnable("%s: spec.router.listen %s: %v", p.File, set.Listen, err)
		}
		go px.Serve(ln)
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			px.Shutdown(sctx)
		}()
		rt, prov, flt = routerproxy.NewLocal(px, ""), embedded.NewFor(px), localFaults{px}
		traffic = "http://" + ln.Addr().String()
		timeout := o.UpstreamTimeout
		if timeout == 0 {
			timeout = 60 * time.Second
		}
		if s.Kind == Blackhole {
			notes = append(notes, fmt.Sprintf("the in-process proxy's upstream response timeout is %s: a blackholed request fails no sooner", timeout))
		}
	}

	load := &sim.Load{URL: traffic, RPS: o.RPS, Path: o.ProbePath, PostEvery: o.PostEvery, FreshEvery: 4}
	lctx, stopLoad := context.WithCancel(context.WithoutCancel(ctx))
	var lwg sync.WaitGroup
	lwg.Add(1)
	go func() { defer lwg.Done(); load.Run(lctx) }()
	defer func() { stopLoad(); lwg.Wait() }()

	hist := &shift.History{}
	g := &gate{step: step, ready: make(chan struct{})}
	r := &shift.Runner{Plan: p, Router: rt, Provider: prov, Log: log.With("component", "shift"), StartedBy: "drill"}
	r.Observers = []shift.Observer{hist, g}
	if o.Observers != nil {
		r.Observers = append(r.Observers, o.Observers(p, r)...)
	}
	rctx, stopShift := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := r.Run(rctx)
		done <- err
	}()
	defer func() {
		stopShift()
		<-done
	}()
	limit := wait + time.Minute
	timer := time.NewTimer(limit)
	defer timer.Stop()
	select {
	case <-g.ready:
	case err := <-done:
		done <- err // for the deferred wait
		st := r.State()
		if err != nil && !errors.Is(err, context.Canceled) {
			return nil, fmt.Errorf("the shift stopped before step %d: %w", step+1, err)
		}
		return nil, notRunnable("the shift ended (%s: %s) before step %d (%d %%) held", st.Phase, st.Reason, step+1, p.Spec.Steps[step].Weight)
	case <-timer.C:
		st := r.State()
		return nil, notRunnable("step %d (%d %%) did not hold with a passing analysis within %s (the shift is %s: %s): a drill needs a healthy step to break",
			step+1, p.Spec.Steps[step].Weight, limit, st.Phase, shift.Waiting(p, st, time.Now()))
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	log.Info("step holds; starting the drill", "step", step+1, "weight", p.Spec.Steps[step].Weight)
	return Run(ctx, &local{faulter: flt, runner: r, hist: hist}, s, Options{
		Load: load, Restarter: o.Restarter, Mode: "plan", Target: p.File, Log: log, Recorder: o.Recorder, Notes: notes,
	})
}

// gate opens when the drill's step holds and passed an analysis.
type gate struct {
	step  int
	ready chan struct{}
	once  sync.Once
}

func (g *gate) OnEvent(ctx context.Context, e shift.Event, s shift.State) {
	if e.Type == "analysis" && e.Step == g.step && s.Phase == shift.Holding && e.Verdict != nil && e.Verdict.Result == judge.Pass {
		g.once.Do(func() { close(g.ready) })
	}
}

func (g *gate) OnSample(ctx context.Context, smp shift.Sample) {}

// backendsFor returns nil when every address of b answers, else a
// simulated backend standing in for the side, and a note saying so.
func backendsFor(ctx context.Context, side string, b plan.Backend, base, jitter time.Duration) (*sim.Backend, []string, error) {
	var why string
	if len(b.Addresses) == 0 {
		why = "the plan names no address"
	}
	for _, a := range b.Addresses {
		if why != "" {
			break
		}
		if err := answers(ctx, a, b.HealthPath); err != nil {
			why = fmt.Sprintf("%s does not answer (%v)", a, err)
		}
	}
	if why == "" {
		return nil, nil, nil
	}
	sb, err := sim.StartBackend(side, base, jitter)
	if err != nil {
		return nil, nil, err
	}
	return sb, []string{fmt.Sprintf("%s: %s; a simulated backend stood in for it at %s", side, why, sb.URL)}, nil
}

// answers sends a GET to a backend's health path; any answer below 500
// counts.
func answers(ctx context.Context, base, path string) error {
	if path == "" {
		path = "/"
	}
	if !strings.Contains(base, "://") {
		return errors.New("not a URL")
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		var ue interface{ Unwrap() error }
		if errors.As(err, &ue) && ue.Unwrap() != nil {
			err = ue.Unwrap()
		}
		return err
	}
	resp.Body.Close()
	if resp.StatusCode >= 500 {
		return fmt.Errorf("answers %s", resp.Status)
	}
	return nil
}

func addrs(plan []string, stand *sim.Backend) []string {
	if stand != nil {
		return []string{stand.URL}
	}
	return plan
}

func closeAll(b *sim.Backend) {
	if b != nil {
		b.Close()
	}
}
