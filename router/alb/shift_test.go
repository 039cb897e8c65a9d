package alb

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/internal/awsstub"
	"github.com/cutoverhq/cutover/shift"
)

const proofPlan = `apiVersion: cutover.dev/v1alpha1
kind: ShiftPlan
metadata: {name: alb-proof}
spec:
  service: payments
  legacy: {addresses: ["%s"]}
  new: {addresses: ["%s"]}
  router:
    type: alb
    listenerArn: %s
    ruleArn: %s
    endpoint: %s
    maxBackoff: 50ms
  metrics:
    type: cloudwatch
    endpoint: %s
    # The stub's datapoints are fed every second; ALB's own are per minute.
    period: 1s
  steps:
    - {weight: 10, hold: 2s}
    - {weight: 50, hold: 2s}
    - {weight: 100}
  slo:
    errorRate: {max: 1%%}
    latencyP99: {max: 500ms}
  analysis: {interval: 250ms, window: 5s, minRequests: 10}
`

// runner is one `cutover shift run` process.
type runner struct {
	cmd  *exec.Cmd
	out  string
	done chan struct{}
}

func startRunner(t *testing.T, bin, planFile, state string) *runner {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	admin := ln.Addr().String()
	ln.Close()
	f, err := os.CreateTemp(t.TempDir(), "shift-run-")
	if err != nil {
		t.Fatal(err)
	}
	r := &runner{out: f.Name(), done: make(chan struct{})}
	r.cmd = exec.Command(bin, "shift", "run", planFile, "--state", state, "--admin", admin)
	r.cmd.Env = append(os.Environ(), "CUTOVER_ADMIN_TOKEN=alb-proof-token-0123456789", "CUTOVER_AUDIT=off")
	r.cmd.Stdout, r.cmd.Stderr = f, f
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.cmd.Wait(); f.Close(); close(r.done) }()
	t.Cleanup(func() {
		r.cmd.Process.Kill()
		<-r.done
		if t.Failed() || testing.Verbose() {
			b, _ := os.ReadFile(r.out)
			t.Logf("--- shift run (pid %d) output:\n%s", r.cmd.Process.Pid, b)
		}
	})
	return r
}

func loadState(t *testing.T, path string) shift.State {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var s shift.Saved
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s.State
}

// TestProtocolShiftSurvivesKillBetweenModifyRuleAndReadBack is the ALB
// proof of issue 4, with the real `cutover shift run` process against the
// protocol stub: the stub applies the ModifyRule of step 2 (50 %) and,
// before answering, SIGKILLs the runner, so the runner dies between the
// change and its read-back. The state file then says "setting 50 %,
// confirmed 10 %" while the ALB already splits 50/50. A new `shift run`
// with the same --state must confirm 50 % without writing it again and go
// on: to 100 % when the new side is healthy, back to 0 % when it fails
// after the restart. Either way the ALB's weights end where the state says.
func TestProtocolShiftSurvivesKillBetweenModifyRuleAndReadBack(t *testing.T) {
	if testing.Short() {
		t.Skip("builds cutover and runs two shifts, each killed once (about 40 s)")
	}
	awsstub.FakeEnv(t)
	bin := filepath.Join(t.TempDir(), "cutover")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/cutoverhq/cutover/cmd/cutover").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Run("ResumesAndCompletes", func(t *testing.T) { proveKill(t, bin, false) })
	t.Run("ResumesAndRollsBack", func(t *testing.T) { proveKill(t, bin, true) })
	t.Run("ValidateSaysWhatIsWrong", func(t *testing.T) { validate(t, bin) })
}

// validate runs `cutover shift validate` on an ALB plan: one line for the
// router's problem, one for the metrics', exit status 2; then, with both
// fixed, the plan is valid.
func validate(t *testing.T, bin string) {
	dir := t.TempDir()
	stub := awsstub.Start(t)
	f := newFixture(t, stub, nil)
	missing := f.new[:len(f.new)-4] + "beef"
	planFile := filepath.Join(dir, "plan.yaml")
	write := func(newTG string) {
		src := fmt.Sprintf(proofPlan, f.legacy, newTG, f.listener, f.rule, stub.URL(), stub.URL())
		if err := os.WriteFile(planFile, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(missing)
	out, err := exec.Command(bin, "shift", "validate", planFile).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("validate of a broken plan: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	wantRouter := planFile + ":8: spec.router: new target group " + missing + " not found"
	wantMetrics := planFile + ":14: spec.metrics: no RequestCount in AWS/ApplicationELB for LoadBalancer=" + lbDimension(f.lb) + " TargetGroup=" + tgDimension(f.legacy)
	if len(lines) != 3 || lines[0] != wantRouter || !strings.HasPrefix(lines[1], wantMetrics) || !strings.Contains(lines[2], "2 problem(s)") {
		t.Fatalf("validate said:\n%s\nwant the lines\n%s\n%s…", out, wantRouter, wantMetrics)
	}

	write(f.new)
	stub.Put(awsstub.Datapoint{Namespace: "AWS/ApplicationELB", MetricName: "RequestCount", Time: time.Now().Add(-5 * time.Minute).Truncate(time.Minute),
		Dimensions: []awsstub.Dimension{{Name: "LoadBalancer", Value: lbDimension(f.lb)}, {Name: "TargetGroup", Value: tgDimension(f.legacy)}},
		Stats:      map[string]float64{"Sum": 1200}})
	if out, err := exec.Command(bin, "shift", "validate", planFile).CombinedOutput(); err != nil || !strings.Contains(string(out), "is valid") {
		t.Fatalf("validate of a good plan: %v\n%s", err, out)
	}
}

// proveKill runs the proof; failAfterKill makes the new side answer 5xx
// from the restart on.
func proveKill(t *testing.T, bin string, failAfterKill bool) {
	dir := t.TempDir()
	stub := awsstub.Start(t)
	f := newFixture(t, stub, nil)
	planFile := filepath.Join(dir, "plan.yaml")
	src := fmt.Sprintf(proofPlan, f.legacy, f.new, f.listener, f.rule, stub.URL(), stub.URL())
	if err := os.WriteFile(planFile, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "alb-proof.state.json")

	// Metrics for both target groups, one datapoint per second: 50
	// requests each, and, once failing is set, 10 of the new side's 50
	// answered 5xx.
	var failing atomic.Bool
	stop := make(chan struct{})
	var feeding sync.WaitGroup
	feeding.Add(1)
	go func() {
		defer feeding.Done()
		var last time.Time
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case now := <-tick.C:
				sec := now.Truncate(time.Second)
				if !sec.After(last) {
					continue
				}
				last = sec
				for _, tg := range []string{f.legacy, f.new} {
					dims := []awsstub.Dimension{{Name: "LoadBalancer", Value: lbDimension(f.lb)}, {Name: "TargetGroup", Value: tgDimension(tg)}}
					pt := func(metric string, stats map[string]float64) awsstub.Datapoint {
						return awsstub.Datapoint{Namespace: "AWS/ApplicationELB", MetricName: metric, Dimensions: dims, Time: sec, Stats: stats}
					}
					stub.Put(pt("RequestCount", map[string]float64{"Sum": 50}), pt("TargetResponseTime", map[string]float64{"p50": 0.02, "p99": 0.08}))
					if tg == f.new && failing.Load() {
						stub.Put(pt("HTTPCode_Target_5XX_Count", map[string]float64{"Sum": 10}))
					}
				}
			}
		}
	}()
	t.Cleanup(func() { close(stop); feeding.Wait() })

	var mu sync.Mutex
	var victim *runner
	killed := make(chan struct{})
	stub.OnApplied("ModifyRule", func(_ string, n int) awsstub.Outcome {
		if n != 2 {
			return awsstub.Answer
		}
		mu.Lock()
		r := victim
		mu.Unlock()
		r.cmd.Process.Signal(syscall.SIGKILL)
		<-r.done
		close(killed)
		return awsstub.Drop
	})

	first := startRunner(t, bin, planFile, state)
	mu.Lock()
	victim = first
	mu.Unlock()
	select {
	case <-killed:
	case <-first.done:
		// The kill itself ends the run; wait for the hook to say so.
		select {
		case <-killed:
		case <-time.After(5 * time.Second):
			t.Fatal("the first run ended before the kill")
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the first run never reached step 2")
	}

	// Killed between ModifyRule and its read-back: the state asks for 50 %
	// and has confirmed 10 %; the ALB already does 50 %.
	s := loadState(t, state)
	if s.Phase != shift.Setting || s.Target != 50 || s.Weight != 10 {
		t.Fatalf("state after the kill: phase %s target %d weight %d", s.Phase, s.Target, s.Weight)
	}
	if w := stub.Weights(f.rule); w[f.legacy] != 50 || w[f.new] != 50 {
		t.Fatalf("ALB after the kill: %v", w)
	}
	modifies := stub.Calls("ModifyRule")
	failing.Store(failAfterKill)

	second := startRunner(t, bin, planFile, state)
	select {
	case <-second.done:
	case <-time.After(60 * time.Second):
		t.Fatal("the resumed shift did not finish")
	}
	code := second.cmd.ProcessState.ExitCode()
	s = loadState(t, state)
	w := stub.Weights(f.rule)
	// Whatever happened next, the resume confirmed the 50 % the killed run
	// had applied without writing it again: one more ModifyRule, for the
	// final weight.
	if n := stub.Calls("ModifyRule") - modifies; n != 1 {
		t.Fatalf("the resumed run made %d ModifyRule calls, want 1", n)
	}
	if failAfterKill {
		if code != 1 || s.Phase != shift.RolledBack || s.Weight != 0 {
			t.Fatalf("exit %d, final state: phase %s weight %d (%s); want a rollback to 0", code, s.Phase, s.Weight, s.Reason)
		}
		if w[f.legacy] != 100 || w[f.new] != 0 || len(w) != 2 {
			t.Fatalf("ALB after the rollback: %v, state says new 0%%", w)
		}
		return
	}
	if code != 0 || s.Phase != shift.Completed || s.Weight != 100 {
		t.Fatalf("exit %d, final state: phase %s weight %d (%s)", code, s.Phase, s.Weight, s.Reason)
	}
	if w[f.legacy] != 0 || w[f.new] != 100 || len(w) != 2 {
		t.Fatalf("ALB at the end: %v, state says new 100%%", w)
	}
}

// lbDimension and tgDimension are CloudWatch's dimension values for the
// stub's ARNs.
func lbDimension(lbArn string) string { return strings.SplitN(lbArn, ":loadbalancer/", 2)[1] }

func tgDimension(tgArn string) string {
	return "targetgroup/" + strings.SplitN(tgArn, ":targetgroup/", 2)[1]
}
