package shift

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/judge"
	"github.com/cutoverhq/cutover/plan"
)

var t0 = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)

func testPlan(t *testing.T, extra string) *plan.Plan {
	t.Helper()
	src := `apiVersion: cutover.dev/v1alpha1
kind: ShiftPlan
spec:
  service: payments
  legacy: {addresses: ["http://10.0.0.1:8080"]}
  new: {addresses: ["http://10.0.0.2:8080"]}
  router: {type: proxy}
  slo:
    errorRate: {max: 1%}
  steps:
    - {weight: 10, hold: 1m}
    - {weight: 50, hold: 1m}
    - {weight: 100}
` + extra
	p, err := plan.Parse("plan.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// driver feeds the pure engine one tick at a time and keeps what it did.
type driver struct {
	t    *testing.T
	p    *plan.Plan
	s    State
	now  time.Time
	acts []Action
}

func newDriver(t *testing.T, p *plan.Plan) *driver {
	return &driver{t: t, p: p, s: NewState("alice"), now: t0}
}

func (d *driver) tick(in Input) []Action {
	d.t.Helper()
	s, acts := Step(d.p, d.s, in, d.now)
	// Purity: the same call gives the same result.
	s2, acts2 := Step(d.p, d.s, in, d.now)
	if !reflect.DeepEqual(s, s2) || !reflect.DeepEqual(acts, acts2) {
		d.t.Fatalf("Step is not deterministic")
	}
	d.s = s
	d.acts = append(d.acts, acts...)
	return acts
}

func (d *driver) advance(dt time.Duration) { d.now = d.now.Add(dt) }

func (d *driver) confirm() []Action { w := d.s.Target; return d.tick(Input{ReadBack: &w}) }

func (d *driver) verdict(r judge.Result) []Action {
	return d.tick(Input{Verdict: &judge.Verdict{Result: r, Reason: "test " + string(r)}})
}

func (d *driver) cmd(c Command) []Action { return d.tick(Input{Commands: []Command{c}}) }

func (d *driver) want(ph Phase, weight int) {
	d.t.Helper()
	if d.s.Phase != ph || d.s.Weight != weight {
		d.t.Fatalf("state = %s at %d%% (target %d, reason %q), want %s at %d%%", d.s.Phase, d.s.Weight, d.s.Target, d.s.Reason, ph, weight)
	}
}

func setWeights(acts []Action) []int {
	var out []int
	for _, a := range acts {
		if a.Kind == ActSetWeight {
			out = append(out, a.Weight)
		}
	}
	return out
}

// wantSet fails unless acts set exactly these weights.
func (d *driver) wantSet(acts []Action, want ...int) {
	d.t.Helper()
	if got := setWeights(acts); !reflect.DeepEqual(got, want) {
		d.t.Fatalf("set %v, want %v", got, want)
	}
}

func events(acts []Action) []string {
	var out []string
	for _, a := range acts {
		if a.Kind == ActRecord {
			out = append(out, a.Event.Type)
		}
	}
	return out
}

func TestHappyPathRunsEveryStepToCompletion(t *testing.T) {
	d := newDriver(t, testPlan(t, ""))
	acts := d.tick(Input{})
	if got := setWeights(acts); !reflect.DeepEqual(got, []int{10}) {
		t.Fatalf("first tick set %v, want [10]", got)
	}
	d.want(Setting, 0)

	wrong := 0
	d.tick(Input{ReadBack: &wrong})
	d.want(Setting, 0) // a read-back that does not match is not a confirmation

	d.confirm()
	d.want(Holding, 10)
	for _, w := range []int{10, 50} {
		d.advance(30 * time.Second)
		d.verdict(judge.Pass)
		d.want(Holding, w) // hold not over
		d.advance(31 * time.Second)
		d.tick(Input{})
		d.want(Setting, w)
		d.confirm()
	}
	d.want(Holding, 100)
	// The last step has no hold: it completes once it has a passing verdict.
	d.verdict(judge.Pass)
	d.want(Completed, 100)
	if got := setWeights(d.acts); !reflect.DeepEqual(got, []int{10, 50, 100}) {
		t.Errorf("weights set %v, want [10 50 100]", got)
	}
	if ev := events(d.acts); ev[0] != "shift-started" || ev[len(ev)-1] != "completed" {
		t.Errorf("events %v", ev)
	}
}

func TestHoldNeverCompletesWithoutAPassingAnalysis(t *testing.T) {
	d := newDriver(t, testPlan(t, ""))
	d.tick(Input{})
	d.confirm()
	d.advance(10 * time.Minute)
	d.verdict(judge.Inconclusive)
	d.tick(Input{})
	d.want(Holding, 10)
	d.verdict(judge.Pass)
	d.want(Setting, 10)
}

func TestFailureRollsBackToZeroAndWaitsForReadBack(t *testing.T) {
	d := newDriver(t, testPlan(t, ""))
	d.tick(Input{})
	d.confirm()
	d.advance(time.Minute + time.Second)
	d.verdict(judge.Pass)
	d.confirm()
	d.want(Holding, 50)
	acts := d.verdict(judge.Fail)
	if got := setWeights(acts); !reflect.DeepEqual(got, []int{0}) {
		t.Fatalf("rollback set %v, want [0]", got)
	}
	d.want(RollingBack, 50)
	if d.s.RollbackStarted != d.now {
		t.Errorf("rollback start not recorded")
	}
	// Commands other than abort cannot interrupt a rollback.
	d.cmd(Command{Kind: CmdPause, Actor: "bob"})
	d.want(RollingBack, 50)
	d.confirm()
	d.want(RolledBack, 0)
	acts = d.cmd(Command{Kind: CmdResume, Actor: "bob"})
	if ev := events(acts); len(ev) != 1 || ev[0] != "command-refused" {
		t.Errorf("command after the end: %v", ev)
	}
}

func TestConsecutiveAndCumulativeFailureLimits(t *testing.T) {
	p := testPlan(t, "  analysis: {failureLimit: 2, cumulativeFailureLimit: 3}\n")
	d := newDriver(t, p)
	d.tick(Input{})
	d.confirm()
	d.verdict(judge.Fail)
	d.want(Holding, 10)
	d.verdict(judge.Pass) // resets the consecutive count
	d.verdict(judge.Fail)
	d.want(Holding, 10)
	if d.s.Consecutive != 1 || d.s.Cumulative != 2 {
		t.Fatalf("counts %d/%d, want 1/2", d.s.Consecutive, d.s.Cumulative)
	}
	d.verdict(judge.Pass)
	d.verdict(judge.Fail) // third in all: cumulative limit
	d.want(RollingBack, 10)

	d2 := newDriver(t, p)
	d2.tick(Input{})
	d2.confirm()
	d2.verdict(judge.Fail)
	d2.verdict(judge.Fail) // two in a row
	d2.want(RollingBack, 10)
}

func TestInconclusiveLimitPausesAndResumeKeepsHeldTime(t *testing.T) {
	d := newDriver(t, testPlan(t, "  analysis: {inconclusiveLimit: 3}\n"))
	d.tick(Input{})
	d.confirm()
	d.verdict(judge.Pass)
	d.advance(40 * time.Second)
	d.verdict(judge.Inconclusive)
	d.verdict(judge.Inconclusive)
	d.want(Holding, 10)
	d.verdict(judge.Inconclusive)
	d.want(Paused, 10)
	if !strings.Contains(d.s.Reason, "no verdict") {
		t.Errorf("reason %q", d.s.Reason)
	}
	d.advance(time.Hour) // paused time does not count as held
	d.cmd(Command{Kind: CmdResume, Actor: "bob"})
	d.want(Holding, 10)
	d.advance(15 * time.Second)
	d.tick(Input{})
	d.want(Holding, 10) // 55 s held of 60
	d.advance(6 * time.Second)
	d.tick(Input{})
	d.want(Setting, 10)
}

func TestProviderErrorsPauseTheShift(t *testing.T) {
	d := newDriver(t, testPlan(t, "  analysis: {providerErrorLimit: 2}\n"))
	d.tick(Input{})
	d.confirm()
	d.tick(Input{ProviderError: "connection refused"})
	d.want(Holding, 10)
	d.tick(Input{ProviderError: "connection refused"})
	d.want(Paused, 10)
	if !strings.Contains(d.s.Reason, "connection refused") {
		t.Errorf("reason %q does not say why", d.s.Reason)
	}
}

func TestPausedShiftStillRollsBackOnFailure(t *testing.T) {
	d := newDriver(t, testPlan(t, ""))
	d.tick(Input{})
	d.confirm()
	d.cmd(Command{Kind: CmdPause, Actor: "bob"})
	d.want(Paused, 10)
	d.verdict(judge.Fail)
	d.want(RollingBack, 10)
}

func TestApprovalsWithGroupsAndFourEyes(t *testing.T) {
	p := testPlan(t, "")
	p.Spec.Steps[1].Approval = &plan.Approval{Count: 2, Group: "payments-leads", FourEyes: true}
	d := newDriver(t, p)
	d.tick(Input{})
	d.confirm()
	d.advance(2 * time.Minute)
	d.verdict(judge.Pass)
	d.want(WaitingApproval, 10)

	refused := func(c Command, why string) {
		t.Helper()
		acts := d.cmd(c)
		if ev := events(acts); len(ev) != 1 || ev[0] != "command-refused" || !strings.Contains(acts[0].Event.Message, why) {
			t.Fatalf("%+v: want refusal containing %q, got %+v", c, why, acts)
		}
	}
	refused(Command{Kind: CmdApprove, Actor: "mallory", Groups: []string{"devs"}}, "not in group")
	refused(Command{Kind: CmdApprove, Actor: "alice", Groups: []string{"payments-leads"}}, "four-eyes")
	d.cmd(Command{Kind: CmdApprove, Actor: "bob", Groups: []string{"payments-leads"}})
	d.want(WaitingApproval, 10)
	refused(Command{Kind: CmdApprove, Actor: "bob", Groups: []string{"payments-leads"}}, "already approved")
	refused(Command{Kind: CmdPromote, Actor: "bob"}, "approvals")
	acts := d.cmd(Command{Kind: CmdApprove, Actor: "carol", Groups: []string{"payments-leads"}})
	if got := setWeights(acts); !reflect.DeepEqual(got, []int{50}) {
		t.Fatalf("after the second approval set %v, want [50]", got)
	}
	d.want(Setting, 10)
}

func TestRejectPausesUntilResumeAsksAgain(t *testing.T) {
	p := testPlan(t, "")
	p.Spec.Steps[0].Approval = &plan.Approval{Count: 1}
	d := newDriver(t, p)
	d.tick(Input{})
	d.want(WaitingApproval, 0)
	d.cmd(Command{Kind: CmdReject, Actor: "bob", Reason: "peak traffic"})
	d.want(Paused, 0)
	d.cmd(Command{Kind: CmdResume, Actor: "bob"})
	d.want(WaitingApproval, 0)
	d.cmd(Command{Kind: CmdApprove, Actor: "bob"})
	d.want(Setting, 0)
}

func TestBlackoutHoldsBackAStepButNotARollback(t *testing.T) {
	p := testPlan(t, `  blackouts:
    - name: lunch peak
      start: "09:01"
      end: "10:00"
`)
	d := newDriver(t, p)
	d.tick(Input{}) // 09:00: outside the window
	d.confirm()
	d.advance(61 * time.Second) // 09:01:01: inside
	d.verdict(judge.Pass)
	d.want(Blackout, 10)
	if !strings.Contains(d.s.Reason, "lunch peak") {
		t.Errorf("reason %q", d.s.Reason)
	}
	// A failure during the blackout still rolls back at once.
	d2 := *d
	d2.s.Phase = Holding
	acts := d2.verdict(judge.Fail)
	if got := setWeights(acts); !reflect.DeepEqual(got, []int{0}) {
		t.Fatalf("rollback in blackout set %v", got)
	}
	d.advance(time.Hour)
	acts = d.tick(Input{})
	if got := setWeights(acts); !reflect.DeepEqual(got, []int{50}) {
		t.Fatalf("after the window set %v, want [50]", got)
	}
}

func TestPromoteSkipsTheHold(t *testing.T) {
	d := newDriver(t, testPlan(t, ""))
	d.tick(Input{})
	d.confirm()
	acts := d.cmd(Command{Kind: CmdPromote, Actor: "bob"})
	if got := setWeights(acts); !reflect.DeepEqual(got, []int{50}) {
		t.Fatalf("promote set %v, want [50]", got)
	}
	if ev := events(acts); ev[0] != "promoted" {
		t.Errorf("events %v", ev)
	}
}

func TestAbortReturnsToLegacyAndEnds(t *testing.T) {
	d := newDriver(t, testPlan(t, ""))
	d.tick(Input{})
	d.confirm()
	acts := d.cmd(Command{Kind: CmdAbort, Actor: "bob", Reason: "pager"})
	if got := setWeights(acts); !reflect.DeepEqual(got, []int{0}) {
		t.Fatalf("abort set %v", got)
	}
	d.confirm()
	d.want(Aborted, 0)
	if !strings.Contains(d.s.Reason, "bob") || !strings.Contains(d.s.Reason, "pager") {
		t.Errorf("reason %q", d.s.Reason)
	}
	// Aborting before any traffic moved ends at once.
	p := testPlan(t, "")
	p.Spec.Steps[0].Approval = &plan.Approval{Count: 1}
	d2 := newDriver(t, p)
	d2.tick(Input{})
	d2.cmd(Command{Kind: CmdAbort, Actor: "bob"})
	d2.want(Aborted, 0)
}

func TestPreviousStepRollbackRetreatsHoldsAndPauses(t *testing.T) {
	d := newDriver(t, testPlan(t, "  rollback: {mode: previousStep}\n"))
	d.tick(Input{})
	d.confirm()
	d.advance(61 * time.Second)
	d.verdict(judge.Pass)
	d.confirm()
	d.want(Holding, 50)
	acts := d.verdict(judge.Fail)
	if got := setWeights(acts); !reflect.DeepEqual(got, []int{10}) {
		t.Fatalf("retreat set %v, want [10]", got)
	}
	d.confirm()
	d.want(Holding, 10)
	d.advance(61 * time.Second)
	d.verdict(judge.Pass)
	d.want(Paused, 10)
	acts = d.cmd(Command{Kind: CmdResume, Actor: "bob"})
	if got := setWeights(acts); !reflect.DeepEqual(got, []int{50}) {
		t.Fatalf("retry set %v, want [50]", got)
	}
	// A failure while retreated goes to zero.
	d2 := newDriver(t, testPlan(t, "  rollback: {mode: previousStep}\n"))
	d2.tick(Input{})
	d2.confirm()
	d2.advance(61 * time.Second)
	d2.verdict(judge.Pass)
	d2.confirm()
	d2.verdict(judge.Fail)
	d2.confirm()
	acts = d2.verdict(judge.Fail)
	if got := setWeights(acts); !reflect.DeepEqual(got, []int{0}) {
		t.Fatalf("second failure set %v, want [0]", got)
	}
}

func TestZeroWeightStepPassesOnTimeAlone(t *testing.T) {
	src := `apiVersion: cutover.dev/v1alpha1
kind: ShiftPlan
spec:
  service: payments
  legacy: {addresses: ["http://10.0.0.1:8080"]}
  new: {addresses: ["http://10.0.0.2:8080"]}
  router: {type: proxy}
  slo: {errorRate: {max: 1%}}
  steps:
    - {weight: 0, hold: 10s}
    - {weight: 100}
`
	p, err := plan.Parse("p.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	d := newDriver(t, p)
	d.tick(Input{})
	d.confirm()
	d.want(Holding, 0)
	d.advance(11 * time.Second)
	acts := d.tick(Input{})
	if got := setWeights(acts); !reflect.DeepEqual(got, []int{100}) {
		t.Fatalf("set %v, want [100]", got)
	}
}

func TestRevisionCountsTransitionsOnly(t *testing.T) {
	d := newDriver(t, testPlan(t, ""))
	d.tick(Input{})
	r := d.s.Revision
	d.tick(Input{}) // nothing happens while waiting for the read-back
	if d.s.Revision != r {
		t.Errorf("revision moved without a transition: %d → %d", r, d.s.Revision)
	}
	d.confirm()
	if d.s.Revision == r {
		t.Errorf("revision did not move on confirmation")
	}
}

// TestDriftInAHoldPausesAndResumeSetsTheWeightAgain: a router that reads
// back another weight while nothing is being set (a reload restored the
// configuration's weights, someone edited the rule by hand) pauses the
// shift without touching the router; resume sets the shift's weight again
// and holds the step from the start.
func TestDriftInAHoldPausesAndResumeSetsTheWeightAgain(t *testing.T) {
	d := newDriver(t, testPlan(t, ""))
	d.tick(Input{})
	d.confirm()
	d.advance(50 * time.Second)
	d.verdict(judge.Pass)
	d.want(Holding, 10)

	same := 10
	if acts := d.tick(Input{ReadBack: &same}); len(acts) != 0 || d.s.Drifted {
		t.Fatalf("a read-back that matches did %+v (drifted %v)", acts, d.s.Drifted)
	}
	moved := 0
	acts := d.tick(Input{ReadBack: &moved})
	d.want(Paused, 10)
	if ev := events(acts); !reflect.DeepEqual(ev, []string{"router-drift"}) || len(setWeights(acts)) != 0 {
		t.Fatalf("drift did %+v, want one router-drift record and no weight change", acts)
	}
	if !d.s.Drifted || !strings.Contains(d.s.Reason, "reads back new 0%, the shift set 10%") {
		t.Fatalf("state %+v", d.s)
	}
	// Seen again while paused: said once.
	if acts := d.tick(Input{ReadBack: &moved}); len(events(acts)) != 0 {
		t.Fatalf("second read-back recorded %v", events(acts))
	}
	// Analyses still run while paused (a failure still rolls back), but
	// one on traffic the shift did not set is no pass for the step.
	d.s.Passed = false
	if acts := d.verdict(judge.Pass); len(events(acts)) != 0 || d.s.Passed {
		t.Fatalf("a passing analysis after the drift did %v (passed %v)", events(acts), d.s.Passed)
	}
	// The hold is not promoted from where it was: resume sets 10 % again
	// and the step is held for its whole time once confirmed.
	d.advance(time.Minute)
	acts = d.cmd(Command{Kind: CmdResume, Actor: "bob"})
	d.wantSet(acts, 10)
	d.want(Setting, 10)
	d.tick(Input{ReadBack: &moved}) // not applied yet: no second drift
	d.want(Setting, 10)
	d.confirm()
	d.want(Holding, 10)
	if d.s.Drifted {
		t.Fatal("still drifted after the read-back confirmed the weight")
	}
	d.advance(50 * time.Second)
	d.verdict(judge.Pass)
	d.want(Holding, 10) // 50 s of a 1 m hold: the time before the drift does not count
	d.advance(11 * time.Second)
	d.tick(Input{})
	d.want(Setting, 10)
	if d.s.Target != 50 {
		t.Fatalf("target %d, want the next step's 50", d.s.Target)
	}
}

// TestDriftWhileWaitingForApprovalKeepsTheApprovalsAsked: a drift while
// a step waits for approval pauses; resume sets the weight again and the
// step still waits for its approvals.
func TestDriftWhileWaitingForApprovalKeepsTheApprovalsAsked(t *testing.T) {
	p := testPlan(t, "")
	p.Spec.Steps[1].Approval = &plan.Approval{Count: 1}
	d := newDriver(t, p)
	d.tick(Input{})
	d.confirm()
	d.advance(2 * time.Minute)
	d.verdict(judge.Pass)
	d.want(WaitingApproval, 10)
	full := 100
	d.tick(Input{ReadBack: &full})
	d.want(Paused, 10)
	acts := d.cmd(Command{Kind: CmdResume, Actor: "bob"})
	d.wantSet(acts, 10)
	d.want(WaitingApproval, 10)
	d.confirm()
	d.want(WaitingApproval, 10)
	d.wantSet(d.cmd(Command{Kind: CmdApprove, Actor: "bob"}), 50)
}

// TestDriftDuringAnOperatorPauseIsRecordedOnce: a shift paused by hand
// notes the drift, and resume sets the weight again.
func TestDriftDuringAnOperatorPauseIsRecordedOnce(t *testing.T) {
	d := newDriver(t, testPlan(t, ""))
	d.tick(Input{})
	d.confirm()
	d.cmd(Command{Kind: CmdPause, Actor: "bob"})
	d.want(Paused, 10)
	moved := 30
	if ev := events(d.tick(Input{ReadBack: &moved})); !reflect.DeepEqual(ev, []string{"router-drift"}) {
		t.Fatalf("events %v", ev)
	}
	if ev := events(d.tick(Input{ReadBack: &moved})); len(ev) != 0 {
		t.Fatalf("events %v", ev)
	}
	d.wantSet(d.cmd(Command{Kind: CmdResume, Actor: "bob"}), 10)
	d.want(Setting, 10)
}
