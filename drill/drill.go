// Package drill runs resilience experiments against a shift on cutover's
// embedded proxy and judges them, so that a team can show (DORA:
// resilience testing) that a failing new side is detected and rolled back
// within the limits it names, and that clients do not notice.
//
// A drill breaks one thing for a while — the new side's process "dies"
// (refuse), answers slowly (latency), answers errors (errors), resets
// connections (drop), never answers (blackhole), or the proxy restarts
// (restart) — while its own probe load goes through the proxy. It watches
// the shift engine's events for the failing analysis (detection) and the
// confirmed rollback, ends the fault, and compares what it measured with
// the limits: detection and rollback time from the moment the fault
// began, client-visible errors (5xx answers and transport failures) and
// refused connections of the probe load.
//
// Faults are injected inside the data plane (package proxy, Faults) and
// go through the proxy's real failure handling, so a passing drill proves
// the real paths: retries of refused connections, replays of idempotent
// requests on legacy within the retry budget, the judge, the rollback.
//
// Run drives a drill against any Target: a shift running in this process
// (RunPlan: the plan's shift on an in-process proxy, demo backends when
// the plan's do not answer) or a running `cutover shift run` through its
// admin API (Remote).
package drill

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/cutoverhq/cutover/internal/sim"
	"github.com/cutoverhq/cutover/judge"
	"github.com/cutoverhq/cutover/proxy"
	"github.com/cutoverhq/cutover/shift"
)

// Kind is what a drill breaks.
type Kind string

// The drills. The first five are faults of one side (proxy.FaultKind);
// Restart restarts a `cutover proxy` process by SIGHUP.
const (
	Refuse    Kind = "refuse"
	Latency   Kind = "latency"
	Errors    Kind = "errors"
	Drop      Kind = "drop"
	Blackhole Kind = "blackhole"
	Restart   Kind = "restart"
)

// Kinds lists every drill.
var Kinds = []Kind{Refuse, Latency, Errors, Drop, Blackhole, Restart}

// Expect is the outcome a drill expects of the shift.
type Expect string

const (
	// ExpectRollback: the shift must detect the fault and roll back.
	ExpectRollback Expect = "rollback"
	// ExpectNoRollback: the shift must ride the fault out.
	ExpectNoRollback Expect = "no-rollback"
)

// Spec is one drill.
type Spec struct {
	// Kind is what breaks. Required.
	Kind Kind `json:"fault"`
	// Side is the side a fault hits, "new" or "legacy"; "" means new.
	// Ignored by Restart, which hits the proxy.
	Side string `json:"side"`
	// For is the longest the fault lasts (and the longest a restart may
	// take); it ends earlier once a rollback it expects is confirmed.
	// Zero means 10s.
	For time.Duration `json:"-"`
	// Latency is the delay of a Latency drill; zero means 500ms.
	Latency time.Duration `json:"-"`
	// Status is the answer of an Errors drill; zero means 503.
	Status int `json:"status,omitempty"`
	// Share is the percentage of the side's requests that fail, in (0,
	// 100]; zero means 100.
	Share float64 `json:"share"`
	// Expect is the outcome required; "" means a rollback for a fault on
	// the new side and none otherwise (legacy faults, restarts).
	Expect Expect `json:"expect"`
	// MaxDetection is the longest allowed from the fault's start to the
	// first failed analysis; zero means 1s.
	MaxDetection time.Duration `json:"-"`
	// MaxRollback is the longest allowed from the fault's start to the
	// router confirming the rollback; zero means 1s.
	MaxRollback time.Duration `json:"-"`
	// MaxClientErrors is how many probe requests may fail as a client
	// sees it (a 5xx or no answer), and how many connections may be
	// refused; zero means none.
	MaxClientErrors int `json:"max_client_errors"`
}

// WithDefaults returns s with its zero fields set to their defaults.
func (s Spec) WithDefaults() Spec {
	if s.Side == "" {
		s.Side = "new"
	}
	if s.Kind == Restart {
		s.Side = "proxy"
	}
	if s.For == 0 {
		s.For = 10 * time.Second
	}
	if s.Kind == Latency && s.Latency == 0 {
		s.Latency = 500 * time.Millisecond
	}
	if s.Kind == Errors && s.Status == 0 {
		s.Status = 503
	}
	if s.Share == 0 {
		s.Share = 100
	}
	if s.Expect == "" {
		s.Expect = ExpectNoRollback
		if s.Side == "new" {
			s.Expect = ExpectRollback
		}
	}
	if s.MaxDetection == 0 {
		s.MaxDetection = time.Second
	}
	if s.MaxRollback == 0 {
		s.MaxRollback = time.Second
	}
	return s
}

// Validate checks s (after WithDefaults).
func (s Spec) Validate() error {
	known := false
	for _, k := range Kinds {
		known = known || s.Kind == k
	}
	if !known {
		return fmt.Errorf("unknown fault %q: want one of %s", s.Kind, kindList())
	}
	if s.Kind != Restart && s.Side != "new" && s.Side != "legacy" {
		return fmt.Errorf("side %q: want new or legacy", s.Side)
	}
	if s.Expect != ExpectRollback && s.Expect != ExpectNoRollback {
		return fmt.Errorf("expect %q: want rollback or no-rollback", s.Expect)
	}
	if s.For < 0 || s.MaxDetection < 0 || s.MaxRollback < 0 || s.MaxClientErrors < 0 || s.Latency < 0 {
		return errors.New("durations and limits must not be negative")
	}
	if s.Kind != Restart {
		if err := s.fault().Validate(); err != nil {
			return err
		}
	}
	return nil
}

func kindList() string {
	var ks []string
	for _, k := range Kinds {
		ks = append(ks, string(k))
	}
	return strings.Join(ks, ", ")
}

// fault is the proxy fault of a fault drill. It expires on its own a
// little after the drill's end, so that a drill that dies (a killed
// process, a lost connection) cannot leave a side broken.
func (s Spec) fault() *proxy.Fault {
	f := &proxy.Fault{Kind: proxy.FaultKind(s.Kind), Percent: s.Share, For: s.For + 5*time.Second}
	switch s.Kind {
	case Latency:
		f.Latency = s.Latency
	case Errors:
		f.Status = s.Status
	}
	return f
}

func (s Spec) faults() proxy.Faults {
	if s.Side == "legacy" {
		return proxy.Faults{Legacy: s.fault()}
	}
	return proxy.Faults{New: s.fault()}
}

// Describe says in words what the drill does.
func (s Spec) Describe() string {
	share := ""
	if s.Share < 100 {
		share = fmt.Sprintf(" on %g %% of requests", s.Share)
	}
	switch s.Kind {
	case Refuse:
		return fmt.Sprintf("the %s side refuses connections (its process died)%s, up to %s", s.Side, share, s.For)
	case Latency:
		return fmt.Sprintf("the %s side answers %s late%s, up to %s", s.Side, s.Latency, share, s.For)
	case Errors:
		return fmt.Sprintf("the %s side answers %d%s, up to %s", s.Side, s.Status, share, s.For)
	case Drop:
		return fmt.Sprintf("the %s side's connections are reset after the request%s, up to %s", s.Side, share, s.For)
	case Blackhole:
		return fmt.Sprintf("the %s side never answers (the response timeout fires)%s, up to %s", s.Side, share, s.For)
	case Restart:
		return fmt.Sprintf("the proxy restarts (SIGHUP: socket hand-over to a new process), within %s", s.For)
	}
	return string(s.Kind)
}

// Target is a running shift a drill acts on.
type Target interface {
	// Status is the shift's status (GET /v1/shift).
	Status(ctx context.Context) (shift.Status, error)
	// SetFaults injects faults into the proxy and returns those in force.
	SetFaults(ctx context.Context, fs proxy.Faults) (proxy.FaultsState, error)
	// Faults returns the faults in force, with their injection counts.
	Faults(ctx context.Context) (proxy.FaultsState, error)
	// ClearFaults removes every fault.
	ClearFaults(ctx context.Context) error
	// Events returns the shift's events after since, oldest first.
	Events(ctx context.Context, since time.Time) ([]shift.TimedEvent, error)
}

// Restarter restarts a proxy process and tells when a new one took over.
type Restarter interface {
	// Restart asks the proxy to restart and returns the process it asked.
	Restart(ctx context.Context) (old int, err error)
	// TakenOver reports the serving process and whether it replaced old
	// and old has exited.
	TakenOver(old int) (cur int, done bool, err error)
}

// Options are what Run needs besides the drill.
type Options struct {
	// Load is the probe load, already running against the proxy's traffic
	// address. Required.
	Load *sim.Load
	// Restarter restarts the proxy; required by Restart drills.
	Restarter Restarter
	// Mode and Target name where the drill ran, for the result ("plan"
	// and the plan file, or "admin" and the admin URL).
	Mode, Target string
	// Poll is how often the shift's events are read; zero means 25ms.
	Poll time.Duration
	// Tail is how long the probe load goes on after the fault ends, for
	// stragglers; zero means 300ms.
	Tail time.Duration
	// Log receives progress; nil discards it.
	Log *slog.Logger
	// Recorder, when set, is given the result before Run returns (the
	// audit log); its error is returned with the result.
	Recorder func(ctx context.Context, r *Result) error
	// Notes go into the result's notes first.
	Notes []string
}

// NotRunnableError says why a drill cannot run on a target as it is; no
// fault was injected.
type NotRunnableError struct{ Reason string }

func (e *NotRunnableError) Error() string { return "the drill cannot run: " + e.Reason }

func notRunnable(format string, args ...any) error {
	return &NotRunnableError{Reason: fmt.Sprintf(format, args...)}
}

// Check is one measurement against its limit.
type Check struct {
	// Name: detection, rollback, no rollback, client errors, refused
	// connections, hand-over.
	Name string `json:"name"`
	// Value is what was measured, in words ("0.212 s", "0 of 1840").
	Value string `json:"value"`
	// Limit is what was allowed ("≤ 1s").
	Limit string `json:"limit"`
	Pass  bool   `json:"pass"`
}

// Result is what a drill did, measured and concluded: the evidence.
type Result struct {
	Spec
	// ForSeconds, LatencySeconds and the Max* fields restate the Spec's
	// durations in seconds for JSON readers.
	ForSeconds          float64 `json:"for_seconds"`
	LatencySeconds      float64 `json:"latency_seconds,omitempty"`
	MaxDetectionSeconds float64 `json:"max_detection_seconds"`
	MaxRollbackSeconds  float64 `json:"max_rollback_seconds"`
	// Description says what the drill broke, in words.
	Description string `json:"description"`
	// Mode is "plan" (the plan's shift in this process) or "admin" (a
	// running shift through its admin API); Target the plan file or URL.
	Mode   string `json:"mode"`
	Target string `json:"target"`
	// Plan, Service and PlanDigest identify the shift's plan.
	Plan       string `json:"plan"`
	Service    string `json:"service"`
	PlanDigest string `json:"plan_digest"`
	// Step (1-based) and Weight are the shift's step and new-side weight
	// when the fault began.
	Step   int `json:"step"`
	Weight int `json:"weight"`
	// Started is when the drill began; Injected when the fault took
	// effect (the proxy's clock); Cleared when it was removed; Ended when
	// the measurement stopped.
	Started  time.Time `json:"started"`
	Injected time.Time `json:"injected"`
	Cleared  time.Time `json:"cleared"`
	Ended    time.Time `json:"ended"`
	// DetectionSeconds is from Injected to the first failed analysis;
	// RollbackSeconds to the router confirming the rollback. Nil when it
	// did not happen.
	DetectionSeconds *float64 `json:"detection_seconds,omitempty"`
	RollbackSeconds  *float64 `json:"rollback_seconds,omitempty"`
	// RollbackReason is the engine's reason for rolling back.
	RollbackReason string `json:"rollback_reason,omitempty"`
	// Requests, ClientErrors and RefusedConnections count the probe
	// load from Injected until nothing sent before the end was in flight.
	Requests           int64 `json:"requests"`
	ClientErrors       int64 `json:"client_errors"`
	RefusedConnections int64 `json:"refused_connections"`
	// BaselineErrors are probe failures before the fault (none expected).
	BaselineErrors int64 `json:"baseline_errors"`
	// ClientP50Seconds, ClientP99Seconds and ClientMaxSeconds are the
	// probe's latencies during the drill.
	ClientP50Seconds float64 `json:"client_p50_seconds"`
	ClientP99Seconds float64 `json:"client_p99_seconds"`
	ClientMaxSeconds float64 `json:"client_max_seconds"`
	// Injections is how many attempts the fault hit (the proxy's count);
	// nil when the proxy could not be asked at the end (its process had
	// ended with the shift).
	Injections *uint64 `json:"injections,omitempty"`
	// Failures are the first probe failures, to show what clients saw.
	Failures []sim.Failure `json:"failures,omitempty"`
	// OldPID and NewPID are the proxy processes of a restart drill.
	OldPID int `json:"old_pid,omitempty"`
	NewPID int `json:"new_pid,omitempty"`
	// FinalPhase is the shift's phase when the drill ended.
	FinalPhase shift.Phase `json:"final_phase"`
	// Checks are each measurement against its limit.
	Checks []Check `json:"checks"`
	// Passed is true when every check passed; Verdict says "pass" or
	// "fail", Reason the first failed check.
	Passed  bool   `json:"passed"`
	Verdict string `json:"verdict"`
	Reason  string `json:"reason,omitempty"`
	// Events are the shift's events during the drill.
	Events []shift.TimedEvent `json:"events"`
	// Notes say what the drill set up or assumed (demo backends, the
	// response timeout bounding a blackhole's detection…).
	Notes []string `json:"notes,omitempty"`
}

// Run runs the drill s against t: it checks that the shift runs with
// traffic on the new side, injects the fault (or restarts the proxy),
// watches the shift's events, ends the fault and judges. The probe load
// must already run. A *NotRunnableError means nothing was injected.
func Run(ctx context.Context, t Target, s Spec, o Options) (*Result, error) {
	s = s.WithDefaults()
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if o.Load == nil {
		return nil, errors.New("drill: no probe load")
	}
	if s.Kind == Restart && o.Restarter == nil {
		return nil, notRunnable("a restart drill needs the proxy's pid file (--pid-file): the proxy must run as its own process, `cutover proxy`")
	}
	if o.Poll <= 0 {
		o.Poll = 25 * time.Millisecond
	}
	if o.Tail <= 0 {
		o.Tail = 300 * time.Millisecond
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	res := &Result{Spec: s, Description: s.Describe(), Mode: o.Mode, Target: o.Target, Started: time.Now(),
		ForSeconds: s.For.Seconds(), LatencySeconds: s.Latency.Seconds(),
		MaxDetectionSeconds: s.MaxDetection.Seconds(), MaxRollbackSeconds: s.MaxRollback.Seconds(), Events: []shift.TimedEvent{},
		Notes: append([]string(nil), o.Notes...)}
	if s.Kind == Blackhole && o.Mode != "plan" {
		res.Notes = append(res.Notes, "a blackholed request fails only when the proxy's upstream response timeout fires: detection is no faster than that timeout")
	}

	st, err := t.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("cannot read the shift's status: %w", err)
	}
	res.Plan, res.Service, res.PlanDigest = st.Plan.Name, st.Plan.Service, st.Plan.Digest
	res.Step, res.Weight, res.FinalPhase = st.State.Step+1, st.State.Weight, st.State.Phase
	switch {
	case st.State.Phase.Final():
		return res, notRunnable("the shift has ended (%s)", st.State.Phase)
	case st.State.Phase == shift.RollingBack:
		return res, notRunnable("the shift is rolling back")
	case st.State.Weight <= 0:
		return res, notRunnable("the new side takes no traffic (phase %s, new %d %%): start the drill once a step with weight > 0 holds", st.State.Phase, st.State.Weight)
	}
	if c := o.Load.Counts(); c.Requests == 0 {
		return res, notRunnable("the probe load has had no answer yet: check the traffic URL")
	}
	res.BaselineErrors = o.Load.Counts().Errors
	if w, ok := t.(interface {
		Watch(context.Context) (func(), error)
	}); ok {
		stop, err := w.Watch(ctx)
		if err != nil {
			log.Warn("cannot stream the shift's events; polling them", "err", err)
		}
		defer stop()
	}

	// Inject.
	switch s.Kind {
	case Restart:
		res.Injected = time.Now()
		old, err := o.Restarter.Restart(ctx)
		if err != nil {
			return res, notRunnable("cannot restart the proxy: %v", err)
		}
		res.OldPID = old
	default:
		in, err := t.SetFaults(ctx, s.faults())
		if err != nil {
			return res, fmt.Errorf("cannot inject the fault: %w", err)
		}
		res.Injected = time.Now()
		if fs := sideState(in, s.Side); fs != nil && !fs.Since.IsZero() {
			res.Injected = fs.Since
		}
	}
	log.Info("fault injected", "fault", s.Kind, "side", s.Side, "at", res.Injected)

	// Clear the fault whatever happens next: a fault left behind would
	// break the service after the drill.
	cleared := s.Kind == Restart
	clear := func() {
		if cleared {
			return
		}
		cleared = true // once: a failure is noted, and the fault expires
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		res.Cleared = time.Now()
		if err := t.ClearFaults(cctx); err != nil {
			log.Error("cannot clear the fault; it expires by itself", "err", err, "after", s.For+5*time.Second)
			res.Notes = append(res.Notes, fmt.Sprintf("the fault could not be cleared (%v): it ends by itself %s after it began, or with the proxy's process", err, s.For+5*time.Second))
			return
		}
		log.Info("fault cleared")
	}
	defer clear()

	watchErr := watch(ctx, t, s, o, res)
	if s.Kind != Restart {
		// The injection count before clearing: it is gone after.
		if fs, err := t.Faults(ctx); err == nil {
			var n uint64
			if f := sideState(fs, s.Side); f != nil {
				n = f.Injected
			}
			res.Injections = &n
		}
	}
	clear()

	stopped := time.Now()
	evs, evErr := t.Events(ctx, res.Injected.Add(-time.Millisecond))
	if evErr == nil {
		res.Events = evs
		analyseEvents(res, evs)
	}
	if st, err := t.Status(ctx); err == nil {
		res.FinalPhase = st.State.Phase
	} else if n := len(res.Events); n > 0 {
		res.FinalPhase = res.Events[n-1].Phase
	}

	if gone := goneAt(t); !gone.IsZero() {
		// `shift run` exits as soon as its shift ends, and the event that
		// said how may be cut off with its admin API. After a rollback
		// decision the only way it ends by itself is a confirmed
		// rollback, which therefore came no later than the stream's end:
		// an upper bound, so the check stays honest.
		switch {
		case res.RollbackSeconds == nil && res.RollbackReason != "":
			secs := gone.Sub(res.Injected).Seconds()
			res.RollbackSeconds = &secs
			res.FinalPhase = shift.RolledBack
			res.Notes = append(res.Notes, fmt.Sprintf("the shift's process ended %.3f s after the fault began, after deciding the rollback: the confirmation came no later (its event was cut off with the admin API)", secs))
		case !finalIn(res.Events):
			res.Notes = append(res.Notes, fmt.Sprintf("the shift's admin API went away %.3f s after the fault began", gone.Sub(res.Injected).Seconds()))
		}
		res.Events = append(res.Events, shift.TimedEvent{Time: gone, Phase: res.FinalPhase,
			Event: shift.Event{Type: "process-ended", Step: res.Step - 1, Weight: res.Weight, Message: "the shift's admin API closed its event stream (observed by the drill)"}})
	}

	// The window the probe is judged on: requests that ended after the
	// fault began and were sent before the fault ended (and a short tail,
	// for stragglers), or before the shift ended: a shift's end is not the
	// fault's doing (and "shift run" stops its in-process proxy then).
	end := stopped.Add(o.Tail)
	if !res.Cleared.IsZero() {
		end = res.Cleared.Add(o.Tail)
	}
	for _, e := range res.Events {
		if (e.Phase.Final() || e.Event.Type == "process-ended") && !e.Time.Before(res.Injected) {
			if e.Time.Before(end) {
				end = e.Time
				res.Notes = append(res.Notes, fmt.Sprintf("the shift ended (%s) %.3f s after the fault began: the probe counts the requests sent until then", e.Phase, e.Time.Sub(res.Injected).Seconds()))
			}
			break
		}
	}
	if wait := time.Until(end); wait > 0 {
		select {
		case <-time.After(wait):
		case <-ctx.Done():
		}
	}
	// Requests sent before the end finish (a blackholed one waits for the
	// response timeout), then the counts are final.
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	o.Load.Settle(sctx, end)
	cancel()
	res.Ended = end
	c := o.Load.Window(res.Injected, end)
	res.Requests, res.ClientErrors, res.RefusedConnections = c.Requests, c.Errors, c.Refused
	if qs, n := o.Load.Quantiles(res.Injected, end, 0.5, 0.99, 1); n > 0 {
		res.ClientP50Seconds, res.ClientP99Seconds, res.ClientMaxSeconds = qs[0].Seconds(), qs[1].Seconds(), qs[2].Seconds()
	}
	for _, f := range o.Load.Failures() {
		if !f.Time.Before(res.Injected) && f.Start.Before(end) {
			res.Failures = append(res.Failures, f)
		}
	}
	if watchErr != nil {
		return res, watchErr
	}
	judgeResult(res)
	if o.Recorder != nil {
		if err := o.Recorder(ctx, res); err != nil {
			return res, fmt.Errorf("cannot record the drill: %w", err)
		}
	}
	return res, nil
}

func sideState(fs proxy.FaultsState, side string) *proxy.FaultState {
	if side == "legacy" {
		return fs.Legacy
	}
	return fs.New
}

// watch waits until the drill has seen what it came for: the confirmed
// rollback when one is expected, the new proxy process serving for a
// restart, or the fault's full length.
func watch(ctx context.Context, t Target, s Spec, o Options, res *Result) error {
	deadline := res.Injected.Add(s.For)
	tick := time.NewTicker(o.Poll)
	defer tick.Stop()
	var tookOver time.Time
	for {
		if time.Now().After(deadline) {
			return nil
		}
		if s.Kind == Restart {
			cur, done, err := o.Restarter.TakenOver(res.OldPID)
			if err == nil && done {
				if tookOver.IsZero() {
					tookOver = time.Now()
					res.NewPID = cur
				}
				// The old process has gone; keep probing a moment on the
				// new one alone.
				if time.Since(tookOver) >= time.Second {
					return nil
				}
			}
		} else {
			// A rollback ends the drill whether it was expected or not:
			// afterwards the new side takes no traffic to break.
			evs, err := t.Events(ctx, res.Injected.Add(-time.Millisecond))
			if err == nil {
				for _, e := range evs {
					if e.Event.Type == "rolled-back" || e.Phase.Final() {
						return nil
					}
				}
			}
			if !goneAt(t).IsZero() {
				return nil // the shift's process ended: nothing more to see
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// goneAt is when the target's process ended its event stream, if it can
// tell; zero otherwise.
func goneAt(t Target) time.Time {
	if g, ok := t.(interface{ Gone() time.Time }); ok {
		return g.Gone()
	}
	return time.Time{}
}

func finalIn(evs []shift.TimedEvent) bool {
	for _, e := range evs {
		if e.Phase.Final() {
			return true
		}
	}
	return false
}

// analyseEvents finds detection and rollback in the events.
func analyseEvents(res *Result, evs []shift.TimedEvent) {
	for _, e := range evs {
		if e.Time.Before(res.Injected) {
			continue
		}
		since := e.Time.Sub(res.Injected).Seconds()
		switch e.Event.Type {
		case "analysis":
			if e.Event.Verdict != nil && e.Event.Verdict.Result == judge.Fail && res.DetectionSeconds == nil {
				res.DetectionSeconds = &since
			}
		case "rollback":
			if res.RollbackReason == "" {
				res.RollbackReason = e.Event.Message
			}
		case "rolled-back":
			if res.RollbackSeconds == nil {
				res.RollbackSeconds = &since
			}
		}
	}
}

// judgeResult compares the measurements with the limits.
func judgeResult(res *Result) {
	s := res.Spec
	add := func(name, value, limit string, pass bool) {
		res.Checks = append(res.Checks, Check{Name: name, Value: value, Limit: limit, Pass: pass})
	}
	secs := func(p *float64) string {
		if p == nil {
			return "none"
		}
		return fmt.Sprintf("%.3f s", *p)
	}
	switch {
	case s.Kind == Restart:
		add("hand-over", handover(res), "a new process serving within "+s.For.String(), res.NewPID != 0)
		add("no rollback", rolledBack(res), "none", res.RollbackSeconds == nil && res.RollbackReason == "")
	case s.Expect == ExpectRollback:
		add("detection", secs(res.DetectionSeconds), "≤ "+s.MaxDetection.String(),
			res.DetectionSeconds != nil && *res.DetectionSeconds <= s.MaxDetection.Seconds())
		add("rollback", secs(res.RollbackSeconds), "≤ "+s.MaxRollback.String(),
			res.RollbackSeconds != nil && *res.RollbackSeconds <= s.MaxRollback.Seconds())
	default:
		add("no rollback", rolledBack(res), "none", res.RollbackSeconds == nil && res.RollbackReason == "")
	}
	lim := fmt.Sprintf("≤ %d", s.MaxClientErrors)
	add("client errors", fmt.Sprintf("%d of %d", res.ClientErrors, res.Requests), lim, res.ClientErrors <= int64(s.MaxClientErrors))
	add("refused connections", fmt.Sprint(res.RefusedConnections), lim, res.RefusedConnections <= int64(s.MaxClientErrors))
	if res.Requests == 0 {
		add("probe load", "no request ended during the drill", "> 0", false)
	}
	res.Passed = true
	for _, c := range res.Checks {
		if !c.Pass {
			res.Passed = false
			res.Reason = fmt.Sprintf("%s: %s, limit %s", c.Name, c.Value, c.Limit)
			break
		}
	}
	res.Verdict = "pass"
	if !res.Passed {
		res.Verdict = "fail"
	}
}

func rolledBack(res *Result) string {
	if res.RollbackSeconds == nil && res.RollbackReason == "" {
		return "none"
	}
	if res.RollbackSeconds != nil {
		return fmt.Sprintf("rolled back after %.3f s: %s", *res.RollbackSeconds, res.RollbackReason)
	}
	return "rolling back: " + res.RollbackReason
}

func handover(res *Result) string {
	if res.NewPID == 0 {
		return fmt.Sprintf("process %d still serving", res.OldPID)
	}
	return fmt.Sprintf("process %d → %d", res.OldPID, res.NewPID)
}
