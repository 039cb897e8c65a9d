package drill

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/internal/sim"
	"github.com/cutoverhq/cutover/plan"
	"github.com/cutoverhq/cutover/shift"
)

// planYAML is a staging-like plan: a 50 % step held long enough for any
// drill, the SLOs of the demo, analysis every 100 ms on the embedded
// metrics, and a retry budget that lets legacy take back every request the
// new side fails (legacy served all of them before the shift).
const planYAML = `apiVersion: cutover.dev/v1alpha1
kind: ShiftPlan
metadata:
  name: drill-test
spec:
  service: payments-api
  legacy: {addresses: ["%s"]}
  new: {addresses: ["%s"]}
  router:
    type: proxy
    listen: "127.0.0.1:0"
    stickyHeader: X-User-Id
    retryBudget: 1
  metrics: {type: embedded}
  steps:
    - {weight: 0, hold: 200ms}
    - {weight: 50, hold: 2m}
    - {weight: 100, hold: 1s}
  slo:
%s
  analysis:
    interval: 100ms
    window: 3s
    minRequests: 20
`

const sloWithLatency = `    errorRate: {max: 1%, maxIncrease: 0.5%}
    latencyP99: {max: 250ms}`

// testPlan parses planYAML with real backends for both sides.
func testPlan(t *testing.T, slo string) *plan.Plan {
	t.Helper()
	return parsePlan(t, testPlanSource(t, slo))
}

// testPlanSource is planYAML with real backends for both sides.
func testPlanSource(t *testing.T, slo string) string {
	t.Helper()
	legacy, err := sim.StartBackend("legacy", 12*time.Millisecond, 6*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(legacy.Close)
	newer, err := sim.StartBackend("new", 5*time.Millisecond, 3*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(newer.Close)
	return fmt.Sprintf(planYAML, legacy.URL, newer.URL, slo)
}

func parsePlan(t *testing.T, src string) *plan.Plan {
	t.Helper()
	p, err := plan.Parse("drill-plan.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func runPlan(t *testing.T, p *plan.Plan, s Spec, o PlanOptions) *Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	o.Plan = p
	res, err := RunPlan(ctx, s, o)
	if err != nil {
		t.Fatalf("drill: %v", err)
	}
	return res
}

func logResult(t *testing.T, res *Result) {
	t.Helper()
	t.Logf("started %s, injected +%s, cleared +%s, ended +%s", res.Started.Format("15:04:05.000"),
		res.Injected.Sub(res.Started), res.Cleared.Sub(res.Started), res.Ended.Sub(res.Started))
	for _, c := range res.Checks {
		t.Logf("%-20s %-40s %-10s %v", c.Name, c.Value, c.Limit, c.Pass)
	}
	for _, e := range res.Events {
		t.Logf("+%6.3fs %-16s %s", e.Time.Sub(res.Injected).Seconds(), e.Event.Type, e.Event.Message)
	}
	for _, f := range res.Failures {
		t.Logf("client failure %+v", f)
	}
}

// TestDrillsRollBackWithinASecondAndClientsSeeNothing runs each fault on
// the new side against the plan's shift in process: the engine must see
// it and confirm the rollback within 1 s of the fault's start, on the
// embedded metrics, while the idempotent probe load (GETs and POSTs with
// an Idempotency-Key) sees no error at all.
func TestDrillsRollBackWithinASecondAndClientsSeeNothing(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec Spec
		opts PlanOptions
	}{
		{"refuse", Spec{Kind: Refuse}, PlanOptions{}},
		{"errors", Spec{Kind: Errors}, PlanOptions{}},
		{"latency", Spec{Kind: Latency, Latency: 400 * time.Millisecond}, PlanOptions{}},
		{"blackhole", Spec{Kind: Blackhole}, PlanOptions{UpstreamTimeout: 300 * time.Millisecond}},
		{"drop", Spec{Kind: Drop}, PlanOptions{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := testPlan(t, sloWithLatency)
			tc.spec.For = 5 * time.Second
			res := runPlan(t, p, tc.spec, tc.opts)
			logResult(t, res)
			if !res.Passed || res.Verdict != "pass" {
				t.Fatalf("verdict %s: %s", res.Verdict, res.Reason)
			}
			if res.DetectionSeconds == nil || *res.DetectionSeconds >= 1 || res.RollbackSeconds == nil || *res.RollbackSeconds >= 1 {
				t.Errorf("detection %v s, rollback %v s: want both under 1 s", deref(res.DetectionSeconds), deref(res.RollbackSeconds))
			}
			if *res.RollbackSeconds < *res.DetectionSeconds {
				t.Errorf("rolled back (%.3f s) before the detection (%.3f s)", *res.RollbackSeconds, *res.DetectionSeconds)
			}
			if res.ClientErrors != 0 || res.RefusedConnections != 0 || res.Requests < 10 {
				t.Errorf("clients: %d errors, %d refused of %d requests; want 0 of many", res.ClientErrors, res.RefusedConnections, res.Requests)
			}
			if res.Injections == nil || *res.Injections == 0 {
				t.Error("the fault never struck")
			}
			if res.FinalPhase != shift.RolledBack || res.Weight != 50 || res.Step != 2 {
				t.Errorf("shift %s, fault at step %d weight %d", res.FinalPhase, res.Step, res.Weight)
			}
			if res.PlanDigest != p.Digest || res.Mode != "plan" || res.Target != "drill-plan.yaml" || res.Service != "payments-api" {
				t.Errorf("identity: %q %q %q %q", res.PlanDigest, res.Mode, res.Target, res.Service)
			}
			if res.Cleared.IsZero() || res.Cleared.Before(res.Injected) {
				t.Errorf("fault cleared at %v, injected %v", res.Cleared, res.Injected)
			}
			if tc.spec.Kind == Latency && res.ClientP99Seconds < 0.4 {
				t.Errorf("client p99 %.3f s during a 400ms latency fault", res.ClientP99Seconds)
			}
		})
	}
}

func deref(p *float64) any {
	if p == nil {
		return "none"
	}
	return *p
}

// TestDrillFailsWhenThePlanDoesNotCatchTheFault: a latency fault against a
// plan without a latency SLO is never detected; the drill says so.
func TestDrillFailsWhenThePlanDoesNotCatchTheFault(t *testing.T) {
	p := testPlan(t, `    errorRate: {max: 1%}`)
	res := runPlan(t, p, Spec{Kind: Latency, Latency: 300 * time.Millisecond, For: 1500 * time.Millisecond}, PlanOptions{})
	logResult(t, res)
	if res.Passed || res.Verdict != "fail" || !strings.HasPrefix(res.Reason, "detection: none") {
		t.Fatalf("verdict %s (%s): want a failed detection", res.Verdict, res.Reason)
	}
	if res.FinalPhase == shift.RolledBack || res.RollbackSeconds != nil {
		t.Errorf("the shift rolled back: %s", res.FinalPhase)
	}
	if took := res.Ended.Sub(res.Injected); took < 1500*time.Millisecond {
		t.Errorf("the fault lasted %s, want its full 1.5s", took)
	}
}

// TestDrillCountsWhatClientsSee: errors on the legacy side are never
// replayed (the new side may not be ready for everyone): clients see
// them. The drill counts them, names the side, and fails on client
// errors, while the shift rightly does not roll back.
func TestDrillCountsWhatClientsSee(t *testing.T) {
	p := testPlan(t, sloWithLatency)
	res := runPlan(t, p, Spec{Kind: Errors, Side: "legacy", Status: 500, For: time.Second}, PlanOptions{})
	logResult(t, res)
	if res.Passed || !strings.HasPrefix(res.Reason, "client errors") || res.ClientErrors == 0 {
		t.Fatalf("verdict %s (%s), %d client errors: want a failure on client errors", res.Verdict, res.Reason, res.ClientErrors)
	}
	if len(res.Failures) == 0 || res.Failures[0].Status != 500 || res.Failures[0].Side != "legacy" {
		t.Errorf("failures %+v: want the injected 500s, naming the legacy side", res.Failures)
	}
	if res.RollbackSeconds != nil || res.Checks[0].Name != "no rollback" || !res.Checks[0].Pass {
		t.Errorf("checks %+v", res.Checks)
	}
	// About half the probe goes to legacy at 50 %: the count is real.
	if lo, hi := res.Requests/4, res.Requests*3/4; res.ClientErrors < lo || res.ClientErrors > hi {
		t.Errorf("%d client errors of %d requests at 50 %%", res.ClientErrors, res.Requests)
	}
}

// TestDrillOnLegacyExpectsNoRollback: a fault on the legacy side must not
// roll the new side back; a refused legacy costs clients nothing (the
// proxy retries on new).
func TestDrillOnLegacyExpectsNoRollback(t *testing.T) {
	p := testPlan(t, sloWithLatency)
	res := runPlan(t, p, Spec{Kind: Refuse, Side: "legacy", For: time.Second}, PlanOptions{})
	logResult(t, res)
	if res.Expect != ExpectNoRollback || !res.Passed {
		t.Fatalf("expect %s, verdict %s (%s)", res.Expect, res.Verdict, res.Reason)
	}
	if res.Checks[0].Name != "no rollback" || res.ClientErrors != 0 {
		t.Errorf("checks %+v", res.Checks)
	}
}

func TestDrillStandsInForDeadBackends(t *testing.T) {
	p := parsePlan(t, fmt.Sprintf(planYAML, "http://127.0.0.1:1", "http://127.0.0.1:1", sloWithLatency))
	res := runPlan(t, p, Spec{Kind: Errors, For: 3 * time.Second}, PlanOptions{RPS: 150})
	if !res.Passed {
		logResult(t, res)
		t.Fatalf("verdict %s: %s", res.Verdict, res.Reason)
	}
	notes := strings.Join(res.Notes, "\n")
	if !strings.Contains(notes, "legacy: http://127.0.0.1:1 does not answer") || !strings.Contains(notes, "new: http://127.0.0.1:1 does not answer") {
		t.Errorf("notes: %s", notes)
	}
}

func TestDrillCannotRun(t *testing.T) {
	ok := fmt.Sprintf(planYAML, "http://127.0.0.1:1", "http://127.0.0.1:1", sloWithLatency)
	for _, tc := range []struct {
		name, plan string
		spec       Spec
		opts       PlanOptions
		want       string
	}{
		{"other router", strings.Replace(ok, "type: proxy", "type: alb", 1), Spec{Kind: Errors}, PlanOptions{}, `router "alb"`},
		{"no such step", ok, Spec{Kind: Errors}, PlanOptions{AtWeight: 101}, "no step has a weight ≥ 101"},
		{"restart of an in-process proxy", ok, Spec{Kind: Restart}, PlanOptions{}, "its own process"},
		{"restart without pid file", strings.Replace(ok, `listen: "127.0.0.1:0"`, `admin: "http://127.0.0.1:1"`, 1), Spec{Kind: Restart}, PlanOptions{Traffic: "http://127.0.0.1:1"}, "pid file"},
		{"remote proxy without traffic URL", strings.Replace(ok, `listen: "127.0.0.1:0"`, `admin: "http://127.0.0.1:1"`, 1), Spec{Kind: Errors}, PlanOptions{}, "--traffic"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			tc.opts.Plan = parsePlan(t, tc.plan)
			_, err := RunPlan(ctx, tc.spec, tc.opts)
			var nr *NotRunnableError
			if !errors.As(err, &nr) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v: want a NotRunnableError mentioning %q", err, tc.want)
			}
		})
	}
}

func TestSpecDefaultsAndValidation(t *testing.T) {
	s := Spec{Kind: Latency}.WithDefaults()
	if s.Side != "new" || s.For != 10*time.Second || s.Latency != 500*time.Millisecond || s.Share != 100 ||
		s.Expect != ExpectRollback || s.MaxDetection != time.Second || s.MaxRollback != time.Second {
		t.Errorf("defaults %+v", s)
	}
	if s := (Spec{Kind: Errors, Side: "legacy"}).WithDefaults(); s.Expect != ExpectNoRollback || s.Status != 503 {
		t.Errorf("legacy defaults %+v", s)
	}
	if s := (Spec{Kind: Restart}).WithDefaults(); s.Expect != ExpectNoRollback || s.Side != "proxy" {
		t.Errorf("restart defaults %+v", s)
	}
	for _, bad := range []Spec{
		{Kind: "explode"},
		{Kind: Errors, Side: "both"},
		{Kind: Errors, Status: 200},
		{Kind: Errors, Share: 150},
		{Kind: Errors, Expect: "maybe"},
		{Kind: Refuse, MaxClientErrors: -1},
	} {
		if err := bad.WithDefaults().Validate(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
