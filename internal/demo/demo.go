// Package demo runs cutover's first-minutes demonstration: a legacy and a
// new backend in process, steady load through the embedded proxy, a shift
// 0 → 10 → 50 → 100 whose new side starts failing at 50 % (and is rolled
// back automatically), then the same shift again, healthy, to completion.
package demo

import (
	"context"
	"embed"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/cutoverhq/cutover/audit"
	"github.com/cutoverhq/cutover/internal/sim"
	"github.com/cutoverhq/cutover/metrics/embedded"
	"github.com/cutoverhq/cutover/plan"
	dataplane "github.com/cutoverhq/cutover/proxy"
	routerproxy "github.com/cutoverhq/cutover/router/proxy"
	"github.com/cutoverhq/cutover/shift"
)

// Options configure the demo.
type Options struct {
	// RPS is the steady load in requests per second; zero means 300.
	RPS int
	// Observers hear the shifts' events (the terminal display).
	Observers func(run string, p *plan.Plan, r *shift.Runner) []shift.Observer
	// Audit opens the audit log each run records to; nil records nothing.
	Audit func(ctx context.Context) (audit.Log, error)
	// Log receives diagnostics; nil discards them.
	Log *slog.Logger
	// FailAfter is how long the 50 % step of the first run holds before
	// the new side starts failing; zero means 2s.
	FailAfter time.Duration
}

// Result is what the demo measured.
type Result struct {
	// Requests sent by the load generator, and ClientErrors the ones that
	// failed as the client saw them (a non-2xx answer or a transport
	// error).
	Requests     int64 `json:"requests"`
	ClientErrors int64 `json:"client_errors"`
	// RollbackSeconds is the time from the new side's first failing
	// request to the router confirming 100 % legacy.
	RollbackSeconds float64 `json:"rollback_seconds"`
	// Completed is true when the second, healthy run completed.
	Completed bool `json:"completed"`
	// RolledBack is true when the first run rolled back by itself.
	RolledBack bool `json:"rolled_back"`
	// Replays are requests the new side failed that the proxy replayed on
	// legacy, so that no client saw the failure.
	Replays uint64 `json:"replays"`
	// Runs holds each run's report.
	Runs []Run `json:"-"`
}

// Run is one shift of the demo.
type Run struct {
	Name   string
	Report *shift.Report
}

// PlanYAML is the demo's plan; the proxy address is filled in at run time.
const PlanYAML = `apiVersion: cutover.dev/v1alpha1
kind: ShiftPlan
metadata:
  name: demo-payments-%s
spec:
  service: payments-api
  legacy: {addresses: ["%s"]}
  new: {addresses: ["%s"]}
  router:
    type: proxy
    listen: "%s"
    stickyHeader: X-User-Id
    # Legacy served all the traffic before the shift, so it can take back
    # every request the new side fails: replay them all.
    retryBudget: 1
  metrics: {type: embedded}
  steps:
    - {weight: 0, hold: 1s}
    - {weight: 10, hold: 3s}
    - {weight: 50, hold: 5s%s}
    - {weight: 100, hold: 2s}
  slo:
    errorRate: {max: 1%%, maxIncrease: 0.5%%}
    # An absolute latency limit only: on a busy laptop a relative p99
    # limit over a few seconds of samples flaps with the machine's noise.
    latencyP99: {max: 500ms}
  analysis:
    interval: 100ms
    window: 3s
    minRequests: 20
`

// Demo runs the demonstration.
func Demo(ctx context.Context, o Options) (*Result, error) {
	if o.RPS == 0 {
		o.RPS = 300
	}
	if o.FailAfter == 0 {
		o.FailAfter = 2 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	legacy, err := sim.StartBackend("legacy", 12*time.Millisecond, 6*time.Millisecond)
	if err != nil {
		return nil, err
	}
	defer legacy.Close()
	newer, err := sim.StartBackend("new", 5*time.Millisecond, 3*time.Millisecond)
	if err != nil {
		return nil, err
	}
	defer newer.Close()
	p, err := dataplane.New(dataplane.Config{
		Legacy:       []string{legacy.URL},
		New:          []string{newer.URL},
		Weights:      dataplane.Weights{Legacy: 100},
		StickyHeader: "X-User-Id",
		RetryBudget:  1,
	})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go p.Serve(ln)
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p.Shutdown(sctx)
	}()
	proxyURL := "http://" + ln.Addr().String()

	load := &sim.Load{URL: proxyURL, RPS: o.RPS}
	lctx, stopLoad := context.WithCancel(ctx)
	var lwg sync.WaitGroup
	lwg.Add(1)
	go func() { defer lwg.Done(); load.Run(lctx) }()
	stopAndWait := func() { stopLoad(); lwg.Wait() }
	defer stopAndWait()

	// Let the load warm the connection pools before the first step.
	time.Sleep(500 * time.Millisecond)

	res := &Result{}
	rt := routerproxy.NewLocal(p, "")
	prov := embedded.NewFor(p)
	for _, run := range []string{"rollback", "healthy"} {
		// The healthy run asks a second person to approve 50 %: the demo's
		// reviewer approves it (four-eyes: whoever started the shift may
		// not), so the audit log shows an approval.
		approval := ""
		if run == "healthy" {
			approval = ", approval: {count: 1, group: payments-leads, fourEyes: true}"
		}
		pl, err := plan.Parse("demo-plan.yaml", fmt.Appendf(nil, PlanYAML, run, legacy.URL, newer.URL, ln.Addr().String(), approval))
		if err != nil {
			return nil, fmt.Errorf("demo plan: %w", err)
		}
		hist := &shift.History{}
		r := &shift.Runner{Plan: pl, Router: rt, Provider: prov, Log: o.Log, StartedBy: "demo"}
		inject := &injector{backend: newer, after: o.FailAfter, enabled: run == "rollback"}
		r.Observers = []shift.Observer{hist, inject, &reviewer{runner: r}}
		if o.Observers != nil {
			r.Observers = append(r.Observers, o.Observers(run, pl, r)...)
		}
		var trail *shift.AuditTrail
		if o.Audit != nil {
			l, err := o.Audit(ctx)
			if err != nil {
				return nil, err
			}
			trail = shift.NewAuditTrail(ctx, l, pl, r.StartedBy, false, o.Log)
			r.Observers = append(r.Observers, trail)
		}
		newer.Heal()
		final, err := r.Run(ctx)
		if trail != nil {
			if cerr := trail.Close(ctx); cerr != nil && err == nil {
				err = cerr
			}
		}
		if err != nil {
			return nil, err
		}
		rep := shift.NewReport(pl, final, hist)
		if run == "rollback" {
			// Rolled back by itself means: because of the failure the demo
			// injected, not because a busy machine made a step look slow.
			res.RolledBack = final.Phase == shift.RolledBack && !newer.FirstFailure().IsZero()
			if first := newer.FirstFailure(); !first.IsZero() && !inject.confirmed.IsZero() {
				took := inject.confirmed.Sub(first)
				res.RollbackSeconds = took.Seconds()
				rep.Rollbacks = append(rep.Rollbacks, shift.RollbackTiming{FirstFailure: first, Confirmed: inject.confirmed, Took: took, Reason: final.Reason})
			}
			newer.Heal()
			// A moment at 100 % legacy before the second run.
			time.Sleep(time.Second)
		} else {
			res.Completed = final.Phase == shift.Completed
			// Keep the load on the new side for a moment at 100 %.
			time.Sleep(500 * time.Millisecond)
		}
		res.Runs = append(res.Runs, Run{Name: run, Report: rep})
	}
	stopAndWait()
	counts := load.Counts()
	res.Requests = counts.Requests
	res.ClientErrors = counts.Errors
	res.Replays = p.Stats().Counters(dataplane.SideNew).Replays
	for i := range res.Runs {
		res.Runs[i].Report.Extra = [][2]string{
			{"demo load", fmt.Sprintf("%d requests/s (GET and POST with Idempotency-Key), users sticky by X-User-Id", o.RPS)},
			{"requests (whole demo)", strconv.FormatInt(res.Requests, 10)},
			{"client-visible errors (whole demo)", strconv.FormatInt(res.ClientErrors, 10)},
			{"new-side failures replayed on legacy", strconv.FormatUint(res.Replays, 10)},
		}
	}
	return res, nil
}

// Reviewer is the identity that approves the demo's 50 % step.
const Reviewer = "demo-reviewer"

// reviewer approves a step that waits for approval, as a second person
// would from the dashboard or `cutover shift approve`.
type reviewer struct{ runner *shift.Runner }

func (v *reviewer) OnEvent(ctx context.Context, e shift.Event, s shift.State) {
	if e.Type != "approval-needed" {
		return
	}
	go func() {
		time.Sleep(500 * time.Millisecond) // a person takes a moment
		v.runner.Submit(context.WithoutCancel(ctx), shift.Command{Kind: shift.CmdApprove, Actor: Reviewer, Groups: []string{"payments-leads"}, Reason: "dashboards look fine"})
	}()
}

func (v *reviewer) OnSample(ctx context.Context, smp shift.Sample) {}

// injector makes the new side fail once the 50 % step has held a while,
// and notes when the rollback is confirmed.
type injector struct {
	backend   *sim.Backend
	after     time.Duration
	enabled   bool
	once      sync.Once
	confirmed time.Time
}

func (in *injector) OnEvent(ctx context.Context, e shift.Event, s shift.State) {
	switch {
	case in.enabled && e.Type == "weight-confirmed" && s.Weight == 50:
		in.once.Do(func() { time.AfterFunc(in.after, in.backend.Fail) })
	case e.Type == "rolled-back" && in.confirmed.IsZero():
		in.confirmed = time.Now()
	}
}

func (in *injector) OnSample(ctx context.Context, smp shift.Sample) {}

// ExampleInputs are the ECS definitions of the demo's service, embedded so
// the demo converts them wherever the binary runs.
//
//go:embed example/*.json
var ExampleInputs embed.FS
