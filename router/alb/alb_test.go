package alb

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/cutoverhq/cutover/internal/awsstub"
	"github.com/cutoverhq/cutover/router"
	"github.com/cutoverhq/cutover/router/routertest"
)

// fixture is one ALB in the stub: a load balancer with a listener whose
// default action and one rule forward to the legacy target group.
type fixture struct {
	stub                          *awsstub.Server
	lb, listener, rule            string
	legacy, new                   string
	legacyType, newType, vpc      string
	ruleActions, listenerDefaults []awsstub.Action
}

var fixtures int

func newFixture(t *testing.T, stub *awsstub.Server, mod func(f *fixture)) *fixture {
	t.Helper()
	f := &fixture{stub: stub, legacyType: "instance", newType: "ip", vpc: "vpc-0a1b2c3d"}
	if mod != nil {
		mod(f)
	}
	fixtures++
	name := fmt.Sprintf("payments-%d", fixtures)
	f.lb = stub.AddLoadBalancer(name, f.vpc)
	f.legacy = stub.AddTargetGroup(name+"-ec2", f.legacyType, f.vpc)
	f.new = stub.AddTargetGroup(name+"-eks", f.newType, f.vpc)
	if f.listenerDefaults == nil {
		f.listenerDefaults = []awsstub.Action{awsstub.ForwardTo(awsstub.TargetWeight{Arn: f.legacy, Weight: 1})}
	}
	f.listener = stub.AddListener(f.lb, 443, f.listenerDefaults...)
	if f.ruleActions == nil {
		f.ruleActions = []awsstub.Action{awsstub.ForwardTo(awsstub.TargetWeight{Arn: f.legacy, Weight: 1})}
	}
	f.rule = stub.AddRule(f.listener, 10, "/api/*", f.ruleActions...)
	return f
}

// settings returns plan settings for the fixture; rule "" means its rule.
func (f *fixture) settings(extra string) string {
	return fmt.Sprintf("listenerArn: %s\nruleArn: %s\nendpoint: %s\nmaxBackoff: 20ms\n%s", f.listener, f.rule, f.stub.URL(), extra)
}

func build(t *testing.T, legacy, new, settings string) (*Router, error) {
	t.Helper()
	decode := func(v any) error {
		dec := yaml.NewDecoder(strings.NewReader(settings))
		dec.KnownFields(true)
		return dec.Decode(v)
	}
	r, err := New(context.Background(), router.Backends{Service: "payments", Legacy: []string{legacy}, New: []string{new}}, decode)
	if err != nil {
		return nil, err
	}
	return r.(*Router), nil
}

func mustBuild(t *testing.T, f *fixture, extra string) *Router {
	t.Helper()
	r, err := build(t, f.legacy, f.new, f.settings(extra))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestProtocolConformance runs the router conformance suite against the
// stub, on a listener rule and on a listener's default action. The stub
// has no data plane, so the suite cannot send traffic through it.
func TestProtocolConformance(t *testing.T) {
	awsstub.FakeEnv(t)
	stub := awsstub.Start(t)
	fixtures := map[router.Router]*fixture{}
	// Another client of the ELB API (the console, a script, Terraform).
	external := func(t *testing.T, r router.Router, w router.Weights) {
		if err := mustBuild(t, fixtures[r], "").SetWeights(context.Background(), w); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("Rule", func(t *testing.T) {
		routertest.Run(t, routertest.Harness{New: func(t *testing.T) router.Router {
			f := newFixture(t, stub, nil)
			r := mustBuild(t, f, "")
			fixtures[r] = f
			return r
		}, External: external})
	})
	t.Run("DefaultAction", func(t *testing.T) {
		routertest.Run(t, routertest.Harness{New: func(t *testing.T) router.Router {
			f := newFixture(t, stub, nil)
			f.rule = DefaultRule
			r := mustBuild(t, f, "")
			fixtures[r] = f
			return r
		}, External: external})
	})
}

func TestProtocolWeightsMapExactly(t *testing.T) {
	awsstub.FakeEnv(t)
	stub := awsstub.Start(t)
	f := newFixture(t, stub, nil)
	r := mustBuild(t, f, "")
	ctx := context.Background()
	if err := r.SetWeights(ctx, router.Weights{Legacy: 90, New: 10}); err != nil {
		t.Fatal(err)
	}
	got := stub.Weights(f.rule)
	if got[f.legacy] != 90 || got[f.new] != 10 || len(got) != 2 {
		t.Fatalf("ALB weights after 90/10: %v", got)
	}
	// The listener's default action is not touched by a rule's shift.
	if d := stub.Weights(f.listener); d[f.legacy] != 1 || len(d) != 1 {
		t.Fatalf("default action changed: %v", d)
	}
	// At 100 % the legacy group stays in the action with weight 0, ready
	// for a rollback.
	if err := r.SetWeights(ctx, router.ForNew(100)); err != nil {
		t.Fatal(err)
	}
	if got := stub.Weights(f.rule); got[f.legacy] != 0 || got[f.new] != 100 || len(got) != 2 {
		t.Fatalf("ALB weights at 100%%: %v", got)
	}
}

// TestProtocolSetIsOneWriteAndIdempotent pins that a change is one
// ModifyRule and that setting the weights the rule already has writes
// nothing.
func TestProtocolSetIsOneWriteAndIdempotent(t *testing.T) {
	awsstub.FakeEnv(t)
	stub := awsstub.Start(t)
	f := newFixture(t, stub, nil)
	r := mustBuild(t, f, "")
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if err := r.SetWeights(ctx, router.ForNew(50)); err != nil {
			t.Fatal(err)
		}
	}
	if n := stub.Calls("ModifyRule"); n != 1 {
		t.Fatalf("three sets of the same weights made %d ModifyRule calls, want 1", n)
	}
}

func TestProtocolReadsForeignScaleAndSimpleForward(t *testing.T) {
	awsstub.FakeEnv(t)
	stub := awsstub.Start(t)
	ctx := context.Background()

	// A rule created as a simple forward (TargetGroupArn only) is all legacy.
	f2 := newFixture(t, stub, nil)
	if err := stub.SetActions(f2.rule, awsstub.Action{Type: "forward", TargetGroupArn: f2.legacy}); err != nil {
		t.Fatal(err)
	}
	r := mustBuild(t, f2, "")
	if w, err := r.Weights(ctx); err != nil || w != router.ForNew(0) {
		t.Fatalf("simple forward to legacy reads %v %v", w, err)
	}
	if err := r.SetWeights(ctx, router.ForNew(10)); err != nil {
		t.Fatal(err)
	}
	if a := stub.Actions(f2.rule); len(a) != 1 || a[0].TargetGroupArn != "" || a[0].Forward == nil {
		t.Fatalf("after a weighted set the action is %+v", a)
	}
	// Someone set 900/100 in the console: that is 10 %.
	if err := stub.SetActions(f2.rule, awsstub.ForwardTo(awsstub.TargetWeight{Arn: f2.legacy, Weight: 900}, awsstub.TargetWeight{Arn: f2.new, Weight: 100})); err != nil {
		t.Fatal(err)
	}
	if w, err := r.Weights(ctx); err != nil || w != router.ForNew(10) {
		t.Fatalf("900/100 reads %v %v", w, err)
	}
}

func TestProtocolKeepsOtherActionsAndStickiness(t *testing.T) {
	awsstub.FakeEnv(t)
	stub := awsstub.Start(t)
	ctx := context.Background()
	oidc := awsstub.Action{Type: "authenticate-oidc", Order: 1, OIDC: &awsstub.OIDC{
		Issuer: "https://idp.example.com", AuthorizationEndpoint: "https://idp.example.com/auth",
		TokenEndpoint: "https://idp.example.com/token", UserInfoEndpoint: "https://idp.example.com/userinfo",
		ClientID: "payments", ClientSecret: "s3cr3t-held-by-aws"}}
	f := newFixture(t, stub, nil)
	if err := stub.SetActions(f.rule, oidc, awsstub.Action{Type: "forward", Order: 2, Forward: &awsstub.Forward{
		TargetGroups: []awsstub.TargetWeight{{Arn: f.legacy, Weight: 1}},
		Stickiness:   awsstub.Stickiness{Enabled: true, DurationSeconds: 3600}}}); err != nil {
		t.Fatal(err)
	}

	r := mustBuild(t, f, "")
	if err := r.SetWeights(ctx, router.ForNew(10)); err != nil {
		t.Fatal(err)
	}
	a := stub.Actions(f.rule)
	if len(a) != 2 || a[0].Type != "authenticate-oidc" || a[0].OIDC.ClientSecret != "s3cr3t-held-by-aws" || a[0].Order != 1 {
		t.Fatalf("the authenticate action did not survive: %+v", a[0])
	}
	if st := a[1].Forward.Stickiness; !st.Enabled || st.DurationSeconds != 3600 {
		t.Fatalf("stickiness not kept: %+v", st)
	}

	// Stickiness from the plan replaces what is there.
	r = mustBuild(t, f, "stickiness: {enabled: true, duration: 10m}\n")
	if err := r.SetWeights(ctx, router.ForNew(50)); err != nil {
		t.Fatal(err)
	}
	if st := stub.Actions(f.rule)[1].Forward.Stickiness; !st.Enabled || st.DurationSeconds != 600 {
		t.Fatalf("stickiness from the plan: %+v", st)
	}
	r = mustBuild(t, f, "stickiness: {enabled: false}\n")
	if err := r.SetWeights(ctx, router.ForNew(50)); err != nil {
		t.Fatal(err)
	}
	if st := stub.Actions(f.rule)[1].Forward.Stickiness; st.Enabled {
		t.Fatalf("stickiness not turned off: %+v", st)
	}
}

// TestProtocolThrottlingIsRetried: AWS throttles control-plane calls per
// account; a shift must ride it out with backoff, not fail the step.
func TestProtocolThrottlingIsRetried(t *testing.T) {
	awsstub.FakeEnv(t)
	stub := awsstub.Start(t)
	f := newFixture(t, stub, nil)
	r := mustBuild(t, f, "")
	ctx := context.Background()
	stub.Throttle("DescribeRules", 2)
	stub.Throttle("ModifyRule", 3)
	if err := r.SetWeights(ctx, router.ForNew(10)); err != nil {
		t.Fatalf("SetWeights under throttling: %v", err)
	}
	if n := stub.Calls("ModifyRule"); n != 4 {
		t.Fatalf("ModifyRule calls: %d, want 3 throttled and 1 applied", n)
	}
	if w, err := r.Weights(ctx); err != nil || w != router.ForNew(10) {
		t.Fatalf("read back %v %v", w, err)
	}
}

func TestProtocolThrottlingPastMaxAttemptsFailsAndChangesNothing(t *testing.T) {
	awsstub.FakeEnv(t)
	stub := awsstub.Start(t)
	f := newFixture(t, stub, nil)
	r := mustBuild(t, f, "maxAttempts: 3\n")
	ctx := context.Background()
	stub.Throttle("ModifyRule", 5)
	err := r.SetWeights(ctx, router.ForNew(10))
	var ce *CallError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "Throttling") || !strings.Contains(err.Error(), "after 3 attempts") {
		t.Fatalf("want a one-line throttling error naming the attempts, got %v", err)
	}
	if w := stub.Weights(f.rule); w[f.new] != 0 {
		t.Fatalf("a throttled set changed the weights: %v", w)
	}
	// The next set (throttling over after two more calls) goes through.
	if err := r.SetWeights(ctx, router.ForNew(10)); err != nil {
		t.Fatalf("set after throttling: %v", err)
	}
	if w, err := r.Weights(ctx); err != nil || w != router.ForNew(10) {
		t.Fatalf("read back %v %v", w, err)
	}
}

// TestProtocolModifyRuleAppliedButAnswerLostThenRollback pins the
// half-way failure: ModifyRule applied 50 % but the connection died before
// the answer, every attempt. The step failed; the rollback to 0 % must go
// through and read back 0 %, not be blocked by the lost call.
func TestProtocolModifyRuleAppliedButAnswerLostThenRollback(t *testing.T) {
	awsstub.FakeEnv(t)
	stub := awsstub.Start(t)
	f := newFixture(t, stub, nil)
	r := mustBuild(t, f, "maxAttempts: 2\n")
	ctx := context.Background()
	if err := r.SetWeights(ctx, router.ForNew(10)); err != nil {
		t.Fatal(err)
	}
	stub.OnApplied("ModifyRule", func(string, int) awsstub.Outcome { return awsstub.Drop })
	if err := r.SetWeights(ctx, router.ForNew(50)); err == nil {
		t.Fatal("SetWeights returned nil although no answer came back")
	}
	if w := stub.Weights(f.rule); w[f.new] != 50 {
		t.Fatalf("the stub should hold the half-way change: %v", w)
	}
	stub.OnApplied("ModifyRule", nil)
	if err := r.SetWeights(ctx, router.ForNew(0)); err != nil {
		t.Fatalf("rollback after a lost ModifyRule: %v", err)
	}
	if w, err := r.Weights(ctx); err != nil || w != router.ForNew(0) {
		t.Fatalf("after rollback: %v %v", w, err)
	}
}

// TestProtocolModifyRuleInternalFailureAfterApplyIsRetriedSafely: AWS
// answered 500 after applying; the SDK retries the same absolute change,
// which is harmless.
func TestProtocolModifyRuleInternalFailureAfterApplyIsRetriedSafely(t *testing.T) {
	awsstub.FakeEnv(t)
	stub := awsstub.Start(t)
	f := newFixture(t, stub, nil)
	r := mustBuild(t, f, "")
	stub.OnApplied("ModifyRule", func(_ string, n int) awsstub.Outcome {
		if n == 1 {
			return awsstub.Fail
		}
		return awsstub.Answer
	})
	if err := r.SetWeights(context.Background(), router.ForNew(33)); err != nil {
		t.Fatal(err)
	}
	if n := stub.Calls("ModifyRule"); n != 2 {
		t.Fatalf("ModifyRule calls: %d, want 2", n)
	}
	if w := stub.Weights(f.rule); w[f.legacy] != 67 || w[f.new] != 33 {
		t.Fatalf("weights %v", w)
	}
}

func TestProtocolSlowCallTimesOut(t *testing.T) {
	awsstub.FakeEnv(t)
	stub := awsstub.Start(t)
	f := newFixture(t, stub, nil)
	r := mustBuild(t, f, "timeout: 200ms\nmaxAttempts: 2\n")
	stub.Latency("DescribeRules", 2*time.Second)
	start := time.Now()
	if _, err := r.Weights(context.Background()); err == nil {
		t.Fatal("a call slower than the timeout succeeded")
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Fatalf("two attempts of 200ms took %v", d)
	}
}

func TestProtocolThirdTargetGroupIsRefused(t *testing.T) {
	awsstub.FakeEnv(t)
	stub := awsstub.Start(t)
	f := newFixture(t, stub, nil)
	other := stub.AddTargetGroup("batch", "ip", f.vpc)
	if err := stub.SetActions(f.rule, awsstub.ForwardTo(
		awsstub.TargetWeight{Arn: f.legacy, Weight: 95}, awsstub.TargetWeight{Arn: other, Weight: 5})); err != nil {
		t.Fatal(err)
	}
	r := mustBuild(t, f, "")
	ctx := context.Background()
	if _, err := r.Weights(ctx); err == nil || !strings.Contains(err.Error(), other) {
		t.Fatalf("Weights with a third target group: %v", err)
	}
	if err := r.SetWeights(ctx, router.ForNew(10)); err == nil {
		t.Fatal("SetWeights took traffic from a third target group")
	}
	if n := stub.Calls("ModifyRule"); n != 0 {
		t.Fatalf("%d ModifyRule calls", n)
	}
	// A third group at weight 0 is harmless and kept.
	if err := stub.SetActions(f.rule, awsstub.ForwardTo(
		awsstub.TargetWeight{Arn: f.legacy, Weight: 1}, awsstub.TargetWeight{Arn: other, Weight: 0})); err != nil {
		t.Fatal(err)
	}
	if err := r.SetWeights(ctx, router.ForNew(10)); err != nil {
		t.Fatal(err)
	}
	if w := stub.Weights(f.rule); len(w) != 3 || w[other] != 0 || w[f.new] != 10 {
		t.Fatalf("weights %v", w)
	}
}

func TestProtocolCheck(t *testing.T) {
	awsstub.FakeEnv(t)
	stub := awsstub.Start(t)
	ctx := context.Background()
	otherLB := stub.AddLoadBalancer("other", "vpc-0a1b2c3d")
	cases := []struct {
		name string
		// mod changes the fixture before the router is built; edit
		// changes the router's view (settings) after.
		mod  func(f *fixture)
		edit func(f *fixture) (legacy, new, rule, listener string)
		want string
	}{
		{name: "ok"},
		{name: "default action ok", edit: func(f *fixture) (string, string, string, string) {
			return f.legacy, f.new, DefaultRule, f.listener
		}},
		{name: "listener missing", edit: func(f *fixture) (string, string, string, string) {
			l := f.listener[:len(f.listener)-4] + "beef"
			return f.legacy, f.new, DefaultRule, l
		}, want: "listener arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/"},
		{name: "rule missing", edit: func(f *fixture) (string, string, string, string) {
			return f.legacy, f.new, f.rule[:len(f.rule)-4] + "beef", f.listener
		}, want: "not found on listener"},
		{name: "new target group missing", edit: func(f *fixture) (string, string, string, string) {
			return f.legacy, f.new[:len(f.new)-4] + "beef", f.rule, f.listener
		}, want: "new target group arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/"},
		{name: "lambda target group", mod: func(f *fixture) { f.newType = "lambda" }, want: "has target type lambda"},
		{name: "target group of another load balancer", edit: func(f *fixture) (string, string, string, string) {
			tg := stub.AddTargetGroup("elsewhere", "ip", "vpc-0a1b2c3d")
			stub.AddListener(otherLB, 80, awsstub.ForwardTo(awsstub.TargetWeight{Arn: tg, Weight: 1}))
			return f.legacy, tg, f.rule, f.listener
		}, want: "belongs to load balancer " + otherLB},
		{name: "target group in another VPC", edit: func(f *fixture) (string, string, string, string) {
			tg := stub.AddTargetGroup("othervpc", "ip", "vpc-99999999")
			return f.legacy, tg, f.rule, f.listener
		}, want: "is in vpc-99999999, the load balancer in vpc-0a1b2c3d"},
		{name: "rule forwards elsewhere", edit: func(f *fixture) (string, string, string, string) {
			tg := stub.AddTargetGroup("stray", "ip", f.vpc)
			if err := stub.SetActions(f.rule, awsstub.ForwardTo(awsstub.TargetWeight{Arn: tg, Weight: 1})); err != nil {
				t.Fatal(err)
			}
			return f.legacy, f.new, f.rule, f.listener
		}, want: "which is neither the plan's legacy nor its new target group"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, stub, c.mod)
			legacy, newer, rule, listener := f.legacy, f.new, f.rule, f.listener
			if c.edit != nil {
				legacy, newer, rule, listener = c.edit(f)
			}
			settings := fmt.Sprintf("listenerArn: %s\nruleArn: %s\nendpoint: %s\nmaxBackoff: 20ms\n", listener, rule, stub.URL())
			r, err := build(t, legacy, newer, settings)
			if err != nil {
				t.Fatal(err)
			}
			err = r.Check(ctx)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("Check: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("Check: %v, want it to say %q", err, c.want)
			case err != nil && strings.Contains(err.Error(), "\n"):
				t.Fatalf("Check's message is not one line: %q", err)
			}
		})
	}
}

func TestProtocolCheckPagesThroughRules(t *testing.T) {
	awsstub.FakeEnv(t)
	stub := awsstub.Start(t)
	f := newFixture(t, stub, nil)
	var last string
	for i := 0; i < 5; i++ {
		last = stub.AddRule(f.listener, 20+i, fmt.Sprintf("/v%d/*", i), awsstub.ForwardTo(awsstub.TargetWeight{Arn: f.legacy, Weight: 1}))
	}
	stub.SetPageSize(2)
	f.rule = last
	r := mustBuild(t, f, "")
	if err := r.Check(context.Background()); err != nil {
		t.Fatalf("Check of the last rule on page 3: %v", err)
	}
}

func TestSettingsRefused(t *testing.T) {
	const (
		listener = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/pay/50dc6c495c0c9188/f2f7dc8efc522ab2"
		rule     = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener-rule/app/pay/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee"
		legacy   = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/pay-ec2/73e2d6bc24d8a067"
		newer    = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/pay-eks/2453ed029918f21f"
	)
	ok := Settings{ListenerArn: listener, RuleArn: rule}
	if _, err := resolve(ok, router.Backends{Legacy: []string{legacy}, New: []string{newer}}); err != nil {
		t.Fatalf("good settings refused: %v", err)
	}
	cases := []struct {
		name   string
		s      Settings
		legacy []string
		new    []string
		want   string
	}{
		{"no listener", Settings{RuleArn: DefaultRule}, nil, nil, "listenerArn is required"},
		{"no rule", Settings{ListenerArn: listener}, nil, nil, `ruleArn is required`},
		{"nlb", Settings{ListenerArn: strings.Replace(listener, "/app/", "/net/", 1), RuleArn: DefaultRule}, nil, nil, "Network Load Balancer"},
		{"not an arn", Settings{ListenerArn: "payments-listener", RuleArn: DefaultRule}, nil, nil, "is not an ARN"},
		{"rule of another listener", Settings{ListenerArn: listener, RuleArn: strings.Replace(rule, "f2f7dc8efc522ab2", "0000000000000000", 1)}, nil, nil, "rule of another listener"},
		{"region mismatch", Settings{ListenerArn: listener, RuleArn: DefaultRule, Region: "us-east-1"}, nil, nil, "differs from the listener's region"},
		{"two legacy groups", ok, []string{legacy, legacy}, nil, "exactly one target group ARN"},
		{"url not arn", ok, []string{"http://10.0.0.1:8080"}, nil, "is not an ARN"},
		{"same groups", ok, nil, []string{legacy}, "are the same"},
		{"group in another account", ok, nil, []string{strings.Replace(newer, "123456789012", "210987654321", 1)}, "is in 210987654321/eu-west-1"},
		{"sticky without duration", Settings{ListenerArn: listener, RuleArn: DefaultRule, Stickiness: &Stickiness{Enabled: true}}, nil, nil, "stickiness.duration"},
		{"sticky too long", Settings{ListenerArn: listener, RuleArn: DefaultRule, Stickiness: &Stickiness{Enabled: true, Duration: "200h"}}, nil, nil, "between 1s and 168h"},
		{"bad backoff", Settings{ListenerArn: listener, RuleArn: DefaultRule, MaxBackoff: "soon"}, nil, nil, "maxBackoff"},
		{"bad endpoint", Settings{ListenerArn: listener, RuleArn: DefaultRule, Endpoint: "localhost:4566"}, nil, nil, "endpoint"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := router.Backends{Legacy: []string{legacy}, New: []string{newer}}
			if c.legacy != nil {
				b.Legacy = c.legacy
			}
			if c.new != nil {
				b.New = c.new
			}
			_, err := resolve(c.s, b)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error saying %q", err, c.want)
			}
		})
	}
}

func TestLoadBalancerOfListener(t *testing.T) {
	got := loadBalancerOf("arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/pay/50dc6c495c0c9188/f2f7dc8efc522ab2")
	if want := "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/pay/50dc6c495c0c9188"; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

// FuzzResolve feeds arbitrary ARNs to the settings check: it must never
// panic, and what it accepts must be two distinct target groups of the
// listener's account and region.
func FuzzResolve(f *testing.F) {
	f.Add("arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/pay/50dc6c495c0c9188/f2f7dc8efc522ab2",
		"arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener-rule/app/pay/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee",
		"arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/pay-ec2/73e2d6bc24d8a067",
		"arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/pay-eks/2453ed029918f21f", "1h")
	f.Add("arn:aws:elasticloadbalancing:eu-west-1:1:listener/app/a/b/c", "default", "arn:aws:elasticloadbalancing:eu-west-1:1:targetgroup/a/b", "arn:aws:elasticloadbalancing:eu-west-1:1:targetgroup/a/c", "")
	f.Add("arn:::::", "arn:aws:elasticloadbalancing:::listener-rule/app////", ":", "", "-1s")
	f.Fuzz(func(t *testing.T, listener, rule, legacy, newer, sticky string) {
		s := Settings{ListenerArn: listener, RuleArn: rule, Stickiness: &Stickiness{Enabled: sticky != "", Duration: sticky}}
		tg, err := resolve(s, router.Backends{Legacy: []string{legacy}, New: []string{newer}})
		if err != nil {
			return
		}
		if tg.legacy == tg.new || tg.region == "" {
			t.Fatalf("accepted %+v", tg)
		}
		if loadBalancerOf(tg.listener) == "" {
			t.Fatalf("accepted listener %q has no load balancer", tg.listener)
		}
	})
}

// TestProtocolAdaptiveRetryMode: the SDK's adaptive mode rides out
// throttling too, only slower.
func TestProtocolAdaptiveRetryMode(t *testing.T) {
	awsstub.FakeEnv(t)
	stub := awsstub.Start(t)
	f := newFixture(t, stub, nil)
	r := mustBuild(t, f, "retryMode: adaptive\n")
	stub.Throttle("ModifyRule", 1)
	if err := r.SetWeights(context.Background(), router.ForNew(10)); err != nil {
		t.Fatal(err)
	}
	if n := stub.Calls("ModifyRule"); n != 2 {
		t.Fatalf("ModifyRule calls: %d", n)
	}
	if _, err := build(t, f.legacy, f.new, f.settings("retryMode: eager\n")); err == nil || !strings.Contains(err.Error(), "retryMode") {
		t.Fatalf("unknown retry mode: %v", err)
	}
}
