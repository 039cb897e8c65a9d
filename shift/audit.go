package shift

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"

	"github.com/cutoverhq/cutover/audit"
	"github.com/cutoverhq/cutover/plan"
)

// AuditTrail is an Observer that writes every decision, weight change,
// read-back, approval and measurement of a shift to an audit log.
//
// Records are written by a goroutine of their own, in order: an fsync must
// never stand between a failing analysis and the rollback it triggers. The
// queue is bounded and blocks when full rather than drop evidence. Close
// waits until every queued record is durable.
type AuditTrail struct {
	log     audit.Log
	plan    *plan.Plan
	commit  string
	started string
	logger  *slog.Logger

	queue chan audit.Record
	done  chan struct{}
	mu    sync.Mutex
	err   error
}

var _ Observer = (*AuditTrail)(nil)

// NewAuditTrail starts writing to l for the shift of p, started by
// startedBy. It writes the plan-loaded record at once.
func NewAuditTrail(ctx context.Context, l audit.Log, p *plan.Plan, startedBy string, resumed bool, logger *slog.Logger) *AuditTrail {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	a := &AuditTrail{log: l, plan: p, started: startedBy, logger: logger, queue: make(chan audit.Record, 4096), done: make(chan struct{})}
	if c := p.GitCommit(ctx); c != "" && !strings.HasSuffix(c, "+dirty") {
		a.commit = c
	}
	go a.write(context.WithoutCancel(ctx))
	steps := make([]float64, len(p.Spec.Steps))
	for i, s := range p.Spec.Steps {
		steps[i] = float64(s.Weight)
	}
	a.add(audit.KindPlanLoaded, startedBy, audit.PlanData{
		Steps: steps, Router: p.Spec.Router.Type, Metrics: p.Spec.Metrics.Type, Resumed: resumed, StartedBy: startedBy,
	})
	return a
}

func (a *AuditTrail) write(ctx context.Context) {
	defer close(a.done)
	for r := range a.queue {
		if _, err := a.log.Append(ctx, r); err != nil {
			a.mu.Lock()
			if a.err == nil {
				a.err = fmt.Errorf("audit log: %w", err)
			}
			a.mu.Unlock()
			a.logger.Error("cannot append to the audit log", "kind", r.Kind, "err", err)
		}
	}
}

func (a *AuditTrail) add(kind, actor string, data any) {
	r := audit.Record{
		Kind: kind, Actor: actor, Service: a.plan.Spec.Service,
		Plan: a.plan.File, PlanDigest: "sha256:" + a.plan.Digest, PlanCommit: a.commit,
	}
	if err := r.SetData(data); err != nil {
		a.logger.Error("audit record data", "kind", kind, "err", err)
	}
	a.queue <- r
}

// Close flushes the queue, writes the final signed checkpoint and closes
// the log; it returns the first error any append met.
func (a *AuditTrail) Close(ctx context.Context) error {
	close(a.queue)
	<-a.done
	err := a.log.Close(ctx)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.err != nil {
		return a.err
	}
	return err
}

// OnEvent implements Observer.
func (a *AuditTrail) OnEvent(ctx context.Context, e Event, s State) {
	actor := e.Actor
	if actor == "" {
		// The engine acted on behalf of whoever started the shift.
		actor = a.started
	}
	stepWeight := func(i int) float64 {
		if i >= 0 && i < len(a.plan.Spec.Steps) {
			return float64(a.plan.Spec.Steps[i].Weight)
		}
		return 0
	}
	step := audit.StepData{Step: e.Step, Weight: stepWeight(e.Step), Reason: e.Message}
	router := a.plan.Spec.Router.Type
	switch e.Type {
	case "step-started":
		a.add(audit.KindStepStarted, actor, step)
		a.add(audit.KindWeightSet, actor, audit.WeightData{Step: e.Step, Want: float64(s.Target), Router: router})
	case "weight-confirmed":
		got := float64(s.Weight)
		a.add(audit.KindWeightConfirmed, actor, audit.WeightData{Step: e.Step, Want: float64(s.Target), Got: &got, Router: router})
	case "router-drift":
		a.add(audit.KindRouterDrift, actor, audit.WeightData{Step: e.Step, Want: float64(s.Weight), Got: intFloat(e.ReadBack), Router: router})
		a.add(audit.KindPause, actor, step)
	case "rollback":
		a.add(audit.KindRollback, actor, audit.RollbackData{Step: e.Step, Reason: e.Message, FromWeight: float64(e.Weight)})
		a.add(audit.KindWeightSet, actor, audit.WeightData{Step: e.Step, Want: float64(s.Target), Router: router})
	case "rolled-back":
		got := float64(s.Weight)
		a.add(audit.KindWeightConfirmed, actor, audit.WeightData{Step: e.Step, Want: float64(s.Target), Got: &got, Router: router})
		rb := audit.RollbackData{Step: e.Step, Reason: s.Reason, FromWeight: float64(e.Weight)}
		if !s.RollbackStarted.IsZero() {
			secs := s.Updated.Sub(s.RollbackStarted).Seconds()
			rb.RollbackSeconds = &secs
		}
		a.add(audit.KindRolledBack, actor, rb)
	case "approved", "rejected":
		st := a.plan.Spec.Steps[e.Step]
		d := audit.ApprovalData{Step: e.Step, StartedBy: a.started, Reason: e.Message}
		if st.Approval != nil {
			d.Group, d.Required = st.Approval.Group, st.Approval.Count
		}
		kind := audit.KindApproval
		if e.Type == "rejected" {
			kind = audit.KindRefusal
		} else {
			d.Satisfied = s.Phase != WaitingApproval
		}
		a.add(kind, actor, d)
	case "paused":
		a.add(audit.KindPause, actor, step)
	case "resumed":
		a.add(audit.KindResume, actor, step)
	case "promoted":
		a.add(audit.KindPromote, actor, step)
	case "aborted":
		a.add(audit.KindAbort, actor, step)
	case "completed":
		a.add(audit.KindCompleted, actor, step)
	case "analysis":
		// The measurements themselves come through OnSample.
	default:
		// shift-started, step-passed, approval-needed, blackout,
		// command-refused: recorded under their own names.
		a.add(e.Type, actor, step)
	}
}

// OnSample implements Observer: one record per check of the verdict, with
// its value, threshold and result, or the provider's error.
func (a *AuditTrail) OnSample(ctx context.Context, smp Sample) {
	window := a.plan.Spec.Analysis.Window.String()
	if smp.Error != "" {
		a.add(audit.KindAnalysis, a.started, map[string]any{"step": smp.Step, "metric": "provider", "verdict": "inconclusive", "error": smp.Error})
		return
	}
	if smp.Verdict == nil {
		return
	}
	reqs := int64(0)
	if !math.IsNaN(smp.New.Requests) {
		reqs = int64(smp.New.Requests)
	}
	for _, c := range smp.Verdict.Checks {
		d := audit.AnalysisData{Step: smp.Step, Metric: c.Name, Side: "new", Value: finite(c.Value), Verdict: string(c.Result), Window: window, Requests: reqs, Op: "<="}
		if !math.IsNaN(c.Baseline) {
			b := c.Baseline
			d.Baseline = &b
		}
		if !math.IsNaN(c.Limit) {
			l := c.Limit
			d.Threshold = &l
		}
		if c.Name == "success rate" {
			d.Op = ">="
		}
		if c.Unit == "p" {
			d.Op = ">=" // a p-value passes above alpha
		}
		a.add(audit.KindAnalysis, a.started, struct {
			audit.AnalysisData
			Unit   string `json:"unit,omitempty"`
			Reason string `json:"reason,omitempty"`
		}{d, c.Unit, c.Reason})
	}
}

// intFloat converts an optional int.
func intFloat(p *int) *float64 {
	if p == nil {
		return nil
	}
	f := float64(*p)
	return &f
}
