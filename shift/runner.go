package shift

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/cutoverhq/cutover/judge"
	"github.com/cutoverhq/cutover/metrics"
	"github.com/cutoverhq/cutover/plan"
	"github.com/cutoverhq/cutover/router"
)

// Observer hears about everything the runner does: the terminal display,
// the report, the dashboard and the audit log are observers.
type Observer interface {
	// OnEvent is called for every event the engine records, after the
	// state that follows it was saved.
	OnEvent(ctx context.Context, e Event, s State)
	// OnSample is called after every analysis with what was measured.
	OnSample(ctx context.Context, smp Sample)
}

// Sample is one analysis tick's measurements.
type Sample struct {
	Time    time.Time           `json:"time"`
	Step    int                 `json:"step"`
	Weight  int                 `json:"weight"`
	Phase   Phase               `json:"phase"`
	Legacy  metrics.Observation `json:"legacy"`
	New     metrics.Observation `json:"new"`
	Verdict *judge.Verdict      `json:"verdict,omitempty"`
	Error   string              `json:"error,omitempty"`
}

// Runner runs a plan against a router and a metrics provider, saving the
// engine's state after every transition.
type Runner struct {
	Plan     *plan.Plan
	Router   router.Router
	Provider metrics.Provider
	// Store keeps the state; nil keeps it in memory only.
	Store Store
	// Log receives the runner's own diagnostics; nil discards them.
	Log *slog.Logger
	// Observers hear every event and sample.
	Observers []Observer
	// StartedBy is who started the shift (four-eyes approvals refuse them).
	StartedBy string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// RecentWindow is the short window whose error burst fails a verdict
	// at once; zero means 1s.
	RecentWindow time.Duration

	mu    sync.Mutex
	state State
	last  *Sample
	cmds  chan pending
	once  sync.Once
}

// pending is a submitted command and where its outcome goes.
type pending struct {
	c    Command
	done chan []Event
}

func (r *Runner) init() {
	r.once.Do(func() {
		r.cmds = make(chan pending, 64)
		if r.Log == nil {
			r.Log = slog.New(slog.DiscardHandler)
		}
		if r.Now == nil {
			r.Now = time.Now
		}
		if r.RecentWindow == 0 {
			r.RecentWindow = time.Second
		}
	})
}

// ErrEnded is returned by Submit when the shift is over.
var ErrEnded = errors.New("the shift has ended")

// Submit hands an operator command to the engine and returns the events
// of the engine step that decided on it (a refusal says why).
func (r *Runner) Submit(ctx context.Context, c Command) ([]Event, error) {
	r.init()
	if r.State().Phase.Final() {
		return nil, ErrEnded
	}
	p := pending{c: c, done: make(chan []Event, 1)}
	select {
	case r.cmds <- p:
	case <-ctx.Done():
		return nil, ctx.Err()
	default:
		return nil, errors.New("too many commands queued; try again")
	}
	select {
	case ev := <-p.done:
		return ev, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// State returns a copy of the current state.
func (r *Runner) State() State {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.state
	s.Approvals = append([]Approval(nil), s.Approvals...)
	return s
}

// LastSample returns the latest analysis sample, or nil.
func (r *Runner) LastSample() *Sample {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last == nil {
		return nil
	}
	c := *r.last
	return &c
}

// Run drives the shift until it ends (Completed, RolledBack, Aborted) or
// ctx is cancelled. A saved state for the same plan is resumed where it
// stopped: a weight that was requested but not confirmed is requested
// again (setting weights is idempotent, so traffic never moves twice).
func (r *Runner) Run(ctx context.Context) (State, error) {
	r.init()
	s := NewState(r.StartedBy)
	var in Input
	if r.Store != nil {
		saved, err := r.Store.Load(ctx)
		switch {
		case errors.Is(err, ErrNoState):
		case err != nil:
			return s, err
		case saved.PlanDigest != r.Plan.Digest:
			return s, fmt.Errorf("the state was saved for another version of plan %q (digest %.12s, this plan %.12s): start with a new state file", saved.Plan, saved.PlanDigest, r.Plan.Digest)
		default:
			s = saved.State
			r.Log.Info("resuming shift", "phase", s.Phase, "step", s.Step+1, "weight", s.Weight, "target", s.Target)
			if s.Phase.Final() {
				r.setState(s)
				return s, nil
			}
			if in, err = r.reconcile(ctx, s); err != nil {
				return s, err
			}
		}
	}
	r.setState(s)

	interval := r.Plan.Spec.Analysis.Interval.D()
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	var waiting []pending
	defer func() {
		for _, p := range r.drain(nil) {
			p.done <- nil
		}
	}()
	for {
		s2, events, err := r.tick(ctx, s, in)
		for _, p := range waiting {
			p.done <- events
		}
		waiting = nil
		if err != nil {
			return s, err
		}
		s = s2
		if s.Phase.Final() {
			return s, nil
		}
		in = Input{}
		select {
		case <-ctx.Done():
			return s, ctx.Err()
		case p := <-r.cmds:
			waiting = r.drain([]pending{p})
		case <-ticker.C:
			waiting = r.drain(nil)
			r.observe(ctx, s, &in)
		}
		for _, p := range waiting {
			in.Commands = append(in.Commands, p.c)
		}
	}
}

func (r *Runner) drain(got []pending) []pending {
	for {
		select {
		case p := <-r.cmds:
			got = append(got, p)
		default:
			return got
		}
	}
}

// reconcile checks, on resume, that the router does what the state says,
// and returns the first tick's input: a weight that was being set is set
// again; in a steady phase, the router's weight is read back for the
// engine, which pauses the shift when someone moved the traffic while the
// runner was down (see the engine's drift).
func (r *Runner) reconcile(ctx context.Context, s State) (Input, error) {
	switch s.Phase {
	case Setting, RollingBack:
		// The weight may or may not have been applied before the stop;
		// applying it again is idempotent. The read-back confirms it.
		return Input{}, r.apply(ctx, s.Target, s.Mirror)
	case Holding, Paused, WaitingApproval, Blackout:
		w, err := r.Router.Weights(ctx)
		if err != nil {
			return Input{}, fmt.Errorf("cannot read the router's weights back: %w", err)
		}
		if w.New != s.Weight {
			r.Log.Warn("router drift on resume", "router", w.New, "state", s.Weight)
		}
		return Input{ReadBack: &w.New}, nil
	}
	return Input{}, nil
}

// observe fills in the read-back and the analysis for this tick.
func (r *Runner) observe(ctx context.Context, s State, in *Input) {
	switch s.Phase {
	case Setting, RollingBack:
		// The set may have failed earlier: apply again, then read back.
		if err := r.apply(ctx, s.Target, s.Mirror); err != nil {
			r.Log.Warn("setting weights failed; will retry", "target", s.Target, "err", err)
			return
		}
		if w, err := r.Router.Weights(ctx); err == nil {
			in.ReadBack = &w.New
		}
	case Holding, WaitingApproval, Blackout, Paused:
		// Nothing is being set: a weight other than the state's means
		// the traffic was moved outside the shift (the engine pauses).
		if w, err := r.Router.Weights(ctx); err == nil {
			in.ReadBack = &w.New
		} else {
			r.Log.Warn("reading weights back failed", "err", err)
		}
	}
	if s.Phase == RollingBack || s.Phase.Final() {
		return
	}
	if s.Weight == 0 && s.Target == 0 {
		return // no traffic on the new side: nothing to judge
	}
	r.analyse(ctx, s, in)
}

func (r *Runner) analyse(ctx context.Context, s State, in *Input) {
	now := r.Now()
	a := r.Plan.Spec.Analysis
	q := func(side metrics.Side, span time.Duration) (metrics.Observation, error) {
		qctx, cancel := context.WithTimeout(ctx, max(a.Interval.D(), 2*time.Second))
		defer cancel()
		return r.Provider.Observe(qctx, metrics.Query{Service: r.Plan.Spec.Service, Side: side, Start: now.Add(-span), End: now})
	}
	smp := Sample{Time: now, Step: s.Step, Weight: s.Weight, Phase: s.Phase}
	// A step is judged on its own traffic only: the window never reaches
	// back before the weight was confirmed, or the previous step's (or a
	// previous run's) failures would be held against it.
	window, recentSpan := a.Window.D(), r.RecentWindow
	if s.Phase == Holding && !s.Since.IsZero() {
		held := now.Sub(s.Since)
		window, recentSpan = min(window, held), min(recentSpan, held)
	}
	legacy, err1 := q(metrics.Legacy, window)
	newer, err2 := q(metrics.New, window)
	recent, err3 := q(metrics.New, recentSpan)
	if msg := joinErrors(err1, err2, err3); msg != "" {
		in.ProviderError = msg
		smp.Error = in.ProviderError
	} else {
		v := judge.Judge(r.Plan.Spec.SLO, a, judge.Input{Legacy: legacy, New: newer, Recent: recent, NoBaseline: s.Weight >= 100})
		in.Verdict = &v
		smp.Legacy, smp.New, smp.Verdict = legacy, newer, &v
	}
	r.mu.Lock()
	r.last = &smp
	r.mu.Unlock()
	for _, o := range r.Observers {
		o.OnSample(ctx, smp)
	}
}

// tick runs the engine, saves, applies and records. A weight change is
// followed at once by a read-back and a second engine step, so a rollback
// is confirmed in the same tick it was decided in.
func (r *Runner) tick(ctx context.Context, s State, in Input) (State, []Event, error) {
	var events []Event
	for round := 0; round < 3; round++ {
		next, acts := Step(r.Plan, s, in, r.Now())
		if next.Revision != s.Revision {
			// Write-ahead: the state that asks for a weight is saved
			// before the weight is set, so a crash in between resumes by
			// setting it again, never by forgetting it.
			if err := r.save(ctx, next); err != nil {
				return s, events, err
			}
		}
		s = next
		r.setState(s)
		set := false
		for _, a := range acts {
			switch a.Kind {
			case ActRecord:
				events = append(events, a.Event)
				for _, o := range r.Observers {
					o.OnEvent(ctx, a.Event, s)
				}
				r.Log.Debug(a.Event.Message, "event", a.Event.Type, "step", a.Event.Step+1)
			case ActSetWeight:
				if err := r.apply(ctx, a.Weight, a.Mirror); err != nil {
					r.Log.Warn("setting weights failed; will retry", "target", a.Weight, "err", err)
					continue
				}
				set = true
			}
		}
		if !set {
			return s, events, nil
		}
		w, err := r.Router.Weights(ctx)
		if err != nil {
			r.Log.Warn("reading weights back failed; will retry", "err", err)
			return s, events, nil
		}
		in = Input{ReadBack: &w.New}
	}
	return s, events, nil
}

func (r *Runner) apply(ctx context.Context, weight, mirror int) error {
	if err := r.Router.SetWeights(ctx, router.ForNew(weight)); err != nil {
		return err
	}
	if m, ok := r.Router.(router.Mirrorer); ok {
		if err := m.SetMirror(ctx, mirror); err != nil {
			return err
		}
	}
	return nil
}

func (r *Runner) setState(s State) {
	r.mu.Lock()
	r.state = s
	r.mu.Unlock()
}

func (r *Runner) save(ctx context.Context, s State) error {
	if r.Store == nil {
		return nil
	}
	return r.Store.Save(ctx, Saved{Plan: r.Plan.Metadata.Name, PlanDigest: r.Plan.Digest, State: s})
}

// joinErrors joins the distinct messages of the errors on one line: the
// three queries of a tick usually fail for one reason, and the pause
// reason must say it once.
func joinErrors(errs ...error) string {
	var out []string
	seen := map[string]bool{}
	for _, err := range errs {
		if err == nil || seen[err.Error()] {
			continue
		}
		seen[err.Error()] = true
		out = append(out, err.Error())
	}
	return strings.Join(out, "; ")
}

// finite returns f, or 0 for NaN, for display.
func finite(f float64) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return f
}
