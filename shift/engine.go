// Package shift moves traffic from the legacy backend to the new one in the
// steps a plan names. Its heart is Step, a pure function from (plan, state,
// input, now) to (state, actions): no I/O, no clock. The Runner around it
// does the I/O: it reads the router's weights back, asks the metrics
// provider and the judge, applies the actions, saves the state after every
// transition, and appends audit records.
package shift

import (
	"fmt"
	"time"

	"github.com/cutoverhq/cutover/judge"
	"github.com/cutoverhq/cutover/plan"
)

// Phase is where a shift stands.
type Phase string

const (
	// Pending: nothing done yet.
	Pending Phase = "Pending"
	// Setting: a step's weight was requested and is not yet confirmed by
	// reading the router back.
	Setting Phase = "Setting"
	// Holding: the weight is confirmed and the step is held under analysis.
	Holding Phase = "Holding"
	// WaitingApproval: the next step needs approvals before it starts.
	WaitingApproval Phase = "WaitingApproval"
	// Blackout: the next step waits for a blackout window to end.
	Blackout Phase = "Blackout"
	// Paused: an operator or the engine paused; nothing moves until resume.
	Paused Phase = "Paused"
	// RollingBack: a rollback's weight was requested, not yet confirmed.
	RollingBack Phase = "RollingBack"
	// RolledBack: all traffic is back on legacy after a failure. Final.
	RolledBack Phase = "RolledBack"
	// Aborted: an operator aborted; all traffic is back on legacy. Final.
	Aborted Phase = "Aborted"
	// Completed: the last step held and passed. Final.
	Completed Phase = "Completed"
)

// Final reports whether the phase ends the shift.
func (p Phase) Final() bool { return p == RolledBack || p == Aborted || p == Completed }

// State is everything the engine remembers. The runner persists it after
// every transition; a restarted runner loads it and goes on.
type State struct {
	Phase Phase `json:"phase"`
	// Step is the index of the step being set, held or waited for; -1
	// before the first.
	Step int `json:"step"`
	// Weight is the new side's weight last confirmed by read-back.
	Weight int `json:"weight"`
	// Target is the weight requested from the router.
	Target int `json:"target"`
	// Mirror is the mirror percentage requested.
	Mirror int `json:"mirror"`
	// Since is when the current phase began; for Holding, when the hold
	// (re)started, adjusted for pauses.
	Since time.Time `json:"since"`
	// Resume is the phase a Paused shift returns to.
	Resume Phase `json:"resume,omitempty"`
	// Consecutive and Cumulative count failed analyses; Inconclusive
	// counts consecutive inconclusive ones; ProviderErrors consecutive
	// metrics errors.
	Consecutive    int `json:"consecutiveFailures"`
	Cumulative     int `json:"cumulativeFailures"`
	Inconclusive   int `json:"inconclusive"`
	ProviderErrors int `json:"providerErrors"`
	// Passed is true once an analysis passed in the current hold: a hold
	// never completes on time alone when there is traffic to judge.
	Passed bool `json:"passed"`
	// Approvals given for the step being waited for.
	Approvals []Approval `json:"approvals,omitempty"`
	// Retreated is the step a previousStep rollback retreated from; -1
	// when none.
	Retreated int `json:"retreated"`
	// StartedBy is the identity that started the shift (four-eyes).
	StartedBy string `json:"startedBy,omitempty"`
	// Reason says why the shift is in its phase, for people.
	Reason string `json:"reason,omitempty"`
	// Revision counts transitions.
	Revision int64 `json:"revision"`
	// Started and Updated are wall times of the first and last transition.
	Started time.Time `json:"started"`
	Updated time.Time `json:"updated"`
	// Held is how long the current step had been held when it was paused.
	Held time.Duration `json:"held,omitempty"`
	// Aborting is true while an abort's rollback awaits confirmation.
	Aborting bool `json:"aborting,omitempty"`
	// Drifted is true when the router read back another weight than
	// Weight while nothing was being set: someone or something else (a
	// reload, a hand edit, another controller) moved the traffic. The
	// shift pauses, and resuming sets Weight again before it goes on.
	Drifted bool `json:"drifted,omitempty"`
	// RollbackStarted is when the latest rollback was requested; the
	// runner reports rollback time from the first failing observation to
	// the confirmed read-back.
	RollbackStarted time.Time `json:"rollbackStarted,omitzero"`
}

// Approval is one person's approval of a step.
type Approval struct {
	Step  int       `json:"step"`
	Actor string    `json:"actor"`
	At    time.Time `json:"at"`
}

// NewState is the state of a shift that has not started.
func NewState(startedBy string) State {
	return State{Phase: Pending, Step: -1, Retreated: -1, StartedBy: startedBy}
}

// CommandKind is what an operator asks for.
type CommandKind string

const (
	CmdPause   CommandKind = "pause"
	CmdResume  CommandKind = "resume"
	CmdPromote CommandKind = "promote"
	CmdApprove CommandKind = "approve"
	CmdReject  CommandKind = "reject"
	CmdAbort   CommandKind = "abort"
)

// Command is an operator's request, with who asked.
type Command struct {
	Kind   CommandKind `json:"kind"`
	Actor  string      `json:"actor"`
	Groups []string    `json:"groups,omitempty"`
	Reason string      `json:"reason,omitempty"`
}

// Input is what the runner observed since the last call.
type Input struct {
	// ReadBack is the new side's weight read from the router; nil when
	// the runner did not read it this time.
	ReadBack *int
	// Verdict is the judge's verdict on the latest window; nil when no
	// analysis ran this time.
	Verdict *judge.Verdict
	// ProviderError is set when the metrics provider failed this time.
	ProviderError string
	// Commands are operator requests, in arrival order.
	Commands []Command
}

// ActionKind is what the runner must do.
type ActionKind string

const (
	// ActSetWeight: set the router to Weight (new side) and Mirror, then
	// read it back and report it in the next Input.
	ActSetWeight ActionKind = "set-weight"
	// ActRecord: write Event to the audit log and the display.
	ActRecord ActionKind = "record"
)

// Action is one thing for the runner to do.
type Action struct {
	Kind   ActionKind `json:"kind"`
	Weight int        `json:"weight,omitempty"`
	Mirror int        `json:"mirror,omitempty"`
	Event  Event      `json:"event,omitzero"`
}

// Event is a decision or observation worth recording.
type Event struct {
	// Type: shift-started, step-started, weight-confirmed, analysis,
	// step-passed, approval-needed, approved, rejected, blackout, paused,
	// resumed, promoted, rollback, rolled-back, aborted, completed,
	// command-refused, router-drift.
	Type    string         `json:"type"`
	Step    int            `json:"step"`
	Weight  int            `json:"weight"`
	Actor   string         `json:"actor,omitempty"`
	Message string         `json:"message"`
	Verdict *judge.Verdict `json:"verdict,omitempty"`
	// ReadBack is the new side's weight the router read back, for a
	// router-drift.
	ReadBack *int `json:"readBack,omitempty"`
}

// Step advances the shift. It is pure: the same arguments always give the
// same result, and it never blocks.
func Step(p *plan.Plan, s State, in Input, now time.Time) (State, []Action) {
	e := &stepper{p: p, s: s, now: now}
	if e.s.Started.IsZero() {
		e.s.Started = now
	}
	e.run(in)
	if e.changed {
		e.s.Revision++
		e.s.Updated = now
	}
	return e.s, e.acts
}

type stepper struct {
	p       *plan.Plan
	s       State
	now     time.Time
	acts    []Action
	changed bool
}

func (e *stepper) record(typ, actor, format string, args ...any) {
	e.acts = append(e.acts, Action{Kind: ActRecord, Event: Event{
		Type: typ, Step: e.s.Step, Weight: e.s.Weight, Actor: actor, Message: fmt.Sprintf(format, args...),
	}})
}

func (e *stepper) phase(ph Phase, reason string) {
	e.s.Phase = ph
	e.s.Since = e.now
	e.s.Reason = reason
	e.changed = true
}

func (e *stepper) setWeight(w, mirror int) {
	e.s.Drifted = false
	e.s.Target = w
	e.s.Mirror = mirror
	e.acts = append(e.acts, Action{Kind: ActSetWeight, Weight: w, Mirror: mirror})
	e.changed = true
}

func (e *stepper) steps() []plan.Step { return e.p.Spec.Steps }

func (e *stepper) run(in Input) {
	// Commands first: an abort or pause wins over anything observed.
	for _, c := range in.Commands {
		e.command(c)
	}
	if in.ReadBack != nil {
		e.readBack(*in.ReadBack)
	}
	switch e.s.Phase {
	case Pending:
		e.record("shift-started", e.s.StartedBy, "shift of %s started: %d steps", e.p.Spec.Service, len(e.steps()))
		e.s.Step = -1
		e.next()
	case Holding:
		e.hold(in)
	case WaitingApproval:
		e.tryStart()
	case Blackout:
		e.tryStart()
	case Setting, RollingBack:
		// Waiting for the read-back; a verdict during a rollback is not
		// acted on, the rollback is already under way. A verdict while
		// setting a rising weight still counts: the new side may fail at
		// the old weight.
		if e.s.Phase == Setting {
			e.analyse(in)
		}
	case Paused:
		// A paused shift keeps watching: a failing new side still rolls
		// back, since traffic may still reach it.
		if e.s.Weight > 0 || e.s.Target > 0 {
			e.analyse(in)
		}
	}
}

// readBack confirms a requested weight, or finds that the router's weight
// moved while none was requested.
func (e *stepper) readBack(w int) {
	if e.s.Target == e.s.Weight && w != e.s.Weight {
		e.drift(w)
		return
	}
	if w != e.s.Target {
		return // not there yet; the runner retries the set
	}
	if w == e.s.Weight && e.s.Phase != Setting && e.s.Phase != RollingBack {
		return
	}
	e.s.Weight = w
	e.changed = true
	switch e.s.Phase {
	case Setting:
		e.record("weight-confirmed", "", "router reads back new %d%%", w)
		e.s.Passed = false
		e.s.Consecutive = 0
		e.s.Inconclusive = 0
		e.phase(Holding, fmt.Sprintf("holding step %d at %d%%", e.s.Step+1, w))
	case RollingBack:
		e.record("rolled-back", "", "router reads back new %d%%: rollback confirmed", w)
		if e.s.Retreated >= 0 && w > 0 {
			e.s.Passed = false
			e.s.Consecutive = 0
			e.s.Inconclusive = 0
			e.phase(Holding, fmt.Sprintf("retreated to step %d at %d%% after step %d failed", e.s.Step+1, w, e.s.Retreated+1))
			return
		}
		final := RolledBack
		if e.s.Aborting {
			final = Aborted
		}
		e.s.Aborting = false
		e.phase(final, e.s.Reason)
	}
}

// drift pauses a shift whose router reads back new w% though the shift
// set another weight and is not setting one now. The traffic was moved
// outside the shift: a reload that restored the configuration's weights,
// a hand edit, another controller. Moving it back at once could undo an
// emergency action, and going on would judge a step on traffic it did not
// set, so the shift stops and asks; resume sets the shift's weight again
// and holds the step from the start.
func (e *stepper) drift(w int) {
	switch e.s.Phase {
	case Holding, WaitingApproval, Blackout:
	case Paused:
		if e.s.Drifted {
			return // said already
		}
	default:
		return
	}
	e.record("router-drift", "", "the router reads back new %d%%, the shift set %d%%: the traffic was moved outside the shift (a reload, a hand edit, another controller)", w, e.s.Weight)
	e.acts[len(e.acts)-1].Event.ReadBack = &w
	reason := fmt.Sprintf("the router reads back new %d%%, the shift set %d%%: check who changed it, then resume (the router is set to %d%% again) or abort", w, e.s.Weight, e.s.Weight)
	if e.s.Phase == Paused {
		e.s.Reason = reason
	} else {
		e.pause(reason)
	}
	e.s.Drifted = true
	e.s.Held = 0
	e.changed = true
}

// next moves to the step after the current one, or completes.
func (e *stepper) next() {
	if e.s.Step+1 >= len(e.steps()) {
		e.record("completed", "", "shift completed: new side takes %d%%", e.s.Weight)
		e.phase(Completed, "all steps passed")
		return
	}
	e.s.Step++
	e.s.Approvals = nil
	e.tryStart()
}

// tryStart starts e.s.Step when its approvals and the blackout windows
// allow.
func (e *stepper) tryStart() {
	st := e.steps()[e.s.Step]
	if st.Approval != nil && len(e.approvalsFor(e.s.Step)) < st.Approval.Count {
		if e.s.Phase != WaitingApproval {
			e.record("approval-needed", "", "step %d (%d%%) needs %d approval(s)%s", e.s.Step+1, st.Weight, st.Approval.Count, groupNote(st.Approval))
			e.phase(WaitingApproval, fmt.Sprintf("step %d needs %d approval(s)%s", e.s.Step+1, st.Approval.Count, groupNote(st.Approval)))
		}
		return
	}
	// Blackouts stop a step from starting, never a rollback. A step that
	// does not raise the weight is not held back either.
	if st.Weight > e.s.Weight {
		if in, name, until := e.p.InBlackout(e.now); in {
			if e.s.Phase != Blackout {
				e.record("blackout", "", "step %d waits for blackout %q to end at %s", e.s.Step+1, name, until.UTC().Format(time.RFC3339))
				e.phase(Blackout, fmt.Sprintf("blackout %q until %s", name, until.UTC().Format(time.RFC3339)))
			}
			return
		}
	}
	e.record("step-started", "", "step %d: new side to %d%%%s", e.s.Step+1, st.Weight, mirrorNote(st.Mirror))
	e.setWeight(st.Weight, st.Mirror)
	e.phase(Setting, fmt.Sprintf("setting step %d to %d%%", e.s.Step+1, st.Weight))
}

func groupNote(a *plan.Approval) string {
	s := ""
	if a.Group != "" {
		s += " from group " + a.Group
	}
	if a.FourEyes {
		s += ", not by who started the shift"
	}
	return s
}

func mirrorNote(m int) string {
	if m == 0 {
		return ""
	}
	return fmt.Sprintf(", mirroring %d%%", m)
}

func (e *stepper) approvalsFor(step int) []Approval {
	var out []Approval
	for _, a := range e.s.Approvals {
		if a.Step == step {
			out = append(out, a)
		}
	}
	return out
}

// hold runs the analysis of a held step and ends the hold when due.
func (e *stepper) hold(in Input) {
	if !e.analyse(in) {
		return
	}
	st := e.steps()[e.s.Step]
	elapsed := e.now.Sub(e.s.Since)
	if elapsed < time.Duration(st.Hold) {
		return
	}
	// With no traffic to judge (weight 0 and no mirror) time is enough;
	// otherwise a passing analysis is required: no data is never a pass.
	needsVerdict := e.s.Weight > 0 || st.Mirror > 0
	if needsVerdict && !e.s.Passed {
		return
	}
	if e.s.Retreated >= 0 {
		e.record("paused", "", "step %d held after retreating from step %d; resume to retry it, abort to end", e.s.Step+1, e.s.Retreated+1)
		e.s.Resume = Holding
		e.phase(Paused, fmt.Sprintf("retreated from step %d; resume to retry", e.s.Retreated+1))
		return
	}
	e.record("step-passed", "", "step %d (%d%%) held %s and passed", e.s.Step+1, e.s.Weight, elapsed.Round(time.Millisecond))
	e.next()
}

// analyse applies a verdict or a provider error. It returns false when the
// shift left its phase (rolled back or paused).
func (e *stepper) analyse(in Input) bool {
	a := e.p.Spec.Analysis
	if in.ProviderError != "" {
		e.s.ProviderErrors++
		e.changed = true
		if e.s.ProviderErrors >= a.ProviderErrorLimit && e.s.Phase != Paused {
			e.record("paused", "", "metrics provider failed %d times in a row: %s", e.s.ProviderErrors, in.ProviderError)
			e.pause(fmt.Sprintf("metrics provider failing: %s", in.ProviderError))
			return false
		}
		return true
	}
	v := in.Verdict
	if v == nil {
		return true
	}
	e.s.ProviderErrors = 0
	e.changed = true
	switch v.Result {
	case judge.Pass:
		e.s.Consecutive = 0
		e.s.Inconclusive = 0
		if e.s.Drifted {
			// Traffic the shift did not set: no pass for the step (the
			// step is held again once resume sets the weight).
			break
		}
		if !e.s.Passed {
			e.acts = append(e.acts, Action{Kind: ActRecord, Event: Event{Type: "analysis", Step: e.s.Step, Weight: e.s.Weight, Message: "first passing analysis of this step", Verdict: v}})
		}
		e.s.Passed = true
	case judge.Inconclusive:
		e.s.Inconclusive++
		if a.InconclusiveLimit > 0 && e.s.Inconclusive >= a.InconclusiveLimit && e.s.Phase != Paused {
			e.acts = append(e.acts, Action{Kind: ActRecord, Event: Event{Type: "paused", Step: e.s.Step, Weight: e.s.Weight, Message: fmt.Sprintf("%d inconclusive analyses in a row: %s", e.s.Inconclusive, v.Reason), Verdict: v}})
			e.pause("no verdict: " + v.Reason)
			return false
		}
	case judge.Fail:
		e.s.Consecutive++
		e.s.Cumulative++
		e.acts = append(e.acts, Action{Kind: ActRecord, Event: Event{Type: "analysis", Step: e.s.Step, Weight: e.s.Weight,
			Message: fmt.Sprintf("analysis failed (%d in a row, %d in all): %s", e.s.Consecutive, e.s.Cumulative, v.Reason), Verdict: v}})
		if e.s.Consecutive >= a.FailureLimit || e.s.Cumulative >= a.CumulativeFailureLimit {
			e.rollback(v.Reason)
			return false
		}
	}
	return true
}

func (e *stepper) pause(reason string) {
	if e.s.Phase == Paused || e.s.Phase.Final() {
		return
	}
	e.s.Resume = e.s.Phase
	// Keep the time already held: the hold goes on from there on resume.
	e.s.Held = e.elapsed()
	e.s.Since = e.now
	e.s.Phase = Paused
	e.s.Reason = reason
	e.changed = true
}

func (e *stepper) elapsed() time.Duration {
	if e.s.Phase == Holding {
		return e.now.Sub(e.s.Since)
	}
	return 0
}

// rollback sends traffic back, to zero or one step back as the plan says.
func (e *stepper) rollback(reason string) {
	if e.s.Phase == RollingBack || e.s.Phase.Final() {
		return
	}
	e.s.RollbackStarted = e.now
	if e.p.Spec.Rollback.Mode == plan.RollbackPreviousStep && e.s.Retreated < 0 && e.s.Step > 0 {
		from := e.s.Step
		e.s.Retreated = from
		e.s.Step = from - 1
		w := e.steps()[e.s.Step].Weight
		e.record("rollback", "", "rolling back one step, to %d%%: %s", w, reason)
		e.setWeight(w, 0)
		e.phase(RollingBack, "rollback: "+reason)
		return
	}
	e.s.Retreated = -1
	e.record("rollback", "", "rolling back to legacy: %s", reason)
	e.setWeight(0, 0)
	e.phase(RollingBack, "rollback: "+reason)
}

func (e *stepper) command(c Command) {
	refuse := func(why string) {
		e.record("command-refused", c.Actor, "%s refused: %s", c.Kind, why)
	}
	if e.s.Phase.Final() {
		refuse("the shift has ended (" + string(e.s.Phase) + ")")
		return
	}
	switch c.Kind {
	case CmdAbort:
		reason := "aborted by " + c.Actor
		if c.Reason != "" {
			reason += ": " + c.Reason
		}
		e.record("aborted", c.Actor, "%s", reason)
		e.s.RollbackStarted = e.now
		e.s.Retreated = -1
		e.s.Aborting = true
		e.setWeight(0, 0)
		e.phase(RollingBack, reason)
		if e.s.Weight == 0 {
			e.s.Aborting = false
			// Nothing to move back: end now.
			e.phase(Aborted, reason)
		}
	case CmdPause:
		if e.s.Phase == Paused {
			refuse("already paused")
			return
		}
		if e.s.Phase == RollingBack {
			refuse("a rollback is under way")
			return
		}
		e.record("paused", c.Actor, "paused by %s%s", c.Actor, reasonNote(c.Reason))
		e.pause("paused by " + c.Actor)
	case CmdResume:
		if e.s.Phase != Paused {
			refuse("not paused")
			return
		}
		resume := e.s.Resume
		if resume == "" {
			resume = Holding
		}
		e.record("resumed", c.Actor, "resumed by %s", c.Actor)
		if e.s.Drifted {
			// Set the shift's weight again; a step being held is held
			// again from the start once the router reads it back.
			e.s.Held = 0
			if resume == Holding {
				resume = Setting
			}
			e.setWeight(e.s.Weight, e.s.Mirror)
		}
		e.s.Phase = resume
		e.s.Since = e.now.Add(-e.s.Held)
		e.s.Held = 0
		e.s.Resume = ""
		e.s.Reason = "resumed by " + c.Actor
		e.s.ProviderErrors = 0
		e.s.Inconclusive = 0
		e.changed = true
		if resume == Holding && e.s.Retreated >= 0 {
			// Retry the step we retreated from.
			e.s.Retreated = -1
			e.next()
			return
		}
		if resume == WaitingApproval || resume == Blackout {
			e.tryStart()
		}
	case CmdPromote:
		switch e.s.Phase {
		case Holding, Paused, WaitingApproval, Blackout:
		default:
			refuse("nothing to promote while " + string(e.s.Phase))
			return
		}
		if e.s.Phase == Paused && e.s.Resume != Holding {
			refuse("paused outside a hold")
			return
		}
		if e.s.Phase == WaitingApproval || e.s.Phase == Blackout {
			// Promotion skips a hold; it does not replace approvals or
			// blackout windows.
			refuse("promote skips a hold; approvals and blackouts still apply")
			return
		}
		e.record("promoted", c.Actor, "step %d promoted by %s, skipping the rest of its hold and analysis%s", e.s.Step+1, c.Actor, reasonNote(c.Reason))
		e.s.Phase = Holding
		e.s.Held = 0
		e.s.Retreated = -1
		e.next()
	case CmdApprove, CmdReject:
		if e.s.Phase != WaitingApproval {
			refuse("no step is waiting for approval")
			return
		}
		st := e.steps()[e.s.Step]
		if st.Approval.Group != "" && !contains(c.Groups, st.Approval.Group) {
			refuse(fmt.Sprintf("%s is not in group %s", c.Actor, st.Approval.Group))
			return
		}
		if st.Approval.FourEyes && c.Actor == e.s.StartedBy {
			refuse(fmt.Sprintf("four-eyes: %s started the shift and cannot approve it", c.Actor))
			return
		}
		if c.Kind == CmdReject {
			e.record("rejected", c.Actor, "step %d refused by %s%s", e.s.Step+1, c.Actor, reasonNote(c.Reason))
			e.s.Resume = WaitingApproval
			e.s.Approvals = nil
			e.s.Phase = Paused
			e.s.Reason = fmt.Sprintf("step %d refused by %s", e.s.Step+1, c.Actor)
			e.changed = true
			return
		}
		for _, a := range e.approvalsFor(e.s.Step) {
			if a.Actor == c.Actor {
				refuse(c.Actor + " already approved this step")
				return
			}
		}
		e.s.Approvals = append(e.s.Approvals, Approval{Step: e.s.Step, Actor: c.Actor, At: e.now})
		e.changed = true
		e.record("approved", c.Actor, "step %d approved by %s (%d of %d)%s", e.s.Step+1, c.Actor, len(e.approvalsFor(e.s.Step)), st.Approval.Count, reasonNote(c.Reason))
		e.tryStart()
	default:
		refuse("unknown command")
	}
}

func reasonNote(r string) string {
	if r == "" {
		return ""
	}
	return ": " + r
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
