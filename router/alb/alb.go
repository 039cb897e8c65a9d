// Package alb is the router for an AWS Application Load Balancer: it moves
// traffic between the legacy and the new target group by setting the
// weights of a weighted forward action, on a listener rule (ModifyRule) or
// on the listener's default action (ModifyListener), through the AWS SDK
// for Go v2.
//
// Every weight change is one ModifyRule (or ModifyListener) call that
// replaces the rule's actions with the same actions and new weights, so a
// change is applied whole or not at all; the runner then reads the weights
// back with DescribeRules (DescribeListeners). Nothing is cached between
// calls: a call that failed half-way (applied, but its answer lost) leaves
// no state here that could block or distort the next one, which is what
// lets a rollback reset the weights after an interrupted step.
//
// Throttling (Throttling, TooManyRequests…) and transient errors are
// retried by the SDK's standard retryer: exponential backoff with jitter,
// up to maxAttempts, capped at maxBackoff. The SDK's adaptive mode is
// available (retryMode: adaptive) but not the default: its client-side
// rate limiter measures the client's own call rate, which for a shift is a
// few calls a minute, and after a throttle it then sleeps seconds before
// each attempt; ELB throttling is per account, so slowing this one client
// helps little, while the sleep delays a rollback.
package alb

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/aws/smithy-go"

	"github.com/cutoverhq/cutover/router"
)

func init() { router.Register("alb", New) }

// DefaultRule is the ruleArn setting that means the listener's default
// action.
const DefaultRule = "default"

// Settings are the plan's router settings for type "alb". The legacy and
// new target group ARNs are the plan's spec.legacy.addresses and
// spec.new.addresses (one each).
type Settings struct {
	// Region is the AWS region; "" means the region of ListenerArn.
	Region string `yaml:"region"`
	// ListenerArn is the ALB listener whose rule (or default action)
	// forwards to the two target groups (required).
	ListenerArn string `yaml:"listenerArn"`
	// RuleArn is the listener rule to drive, or "default" for the
	// listener's default action (required: there is no safe guess).
	RuleArn string `yaml:"ruleArn"`
	// Endpoint overrides the ELBv2 endpoint URL (a VPC interface endpoint,
	// or a local stub in tests); "" means the region's public endpoint.
	Endpoint string `yaml:"endpoint"`
	// Profile names a profile of the shared AWS config files; "" means the
	// default credential chain (environment, AWS_PROFILE, web identity /
	// IRSA, container and instance roles).
	Profile string `yaml:"profile"`
	// Stickiness, when set, is written into the forward action with every
	// weight change; nil keeps the stickiness the action already has.
	Stickiness *Stickiness `yaml:"stickiness"`
	// MaxAttempts bounds the attempts of one API call under throttling and
	// transient errors; zero means 10.
	MaxAttempts int `yaml:"maxAttempts"`
	// MaxBackoff caps the wait between attempts ("20s"); "" means 20s.
	MaxBackoff string `yaml:"maxBackoff"`
	// Timeout bounds one HTTP attempt ("10s"); "" means 10s.
	Timeout string `yaml:"timeout"`
	// RetryMode is "standard" or "adaptive" (the SDK's retry modes); ""
	// means standard.
	RetryMode string `yaml:"retryMode"`
}

// Stickiness is the forward action's target group stickiness: with it, a
// client that reached one target group stays there for Duration, so a
// weight change moves new clients first.
type Stickiness struct {
	// Enabled turns stickiness on or off.
	Enabled bool `yaml:"enabled"`
	// Duration is how long a client sticks ("1h", 1s..168h); required when
	// Enabled.
	Duration string `yaml:"duration"`
}

// Router drives one ALB forward action.
type Router struct {
	client   *elbv2.Client
	region   string
	listener string
	// rule is the rule ARN, or "" for the listener's default action.
	rule        string
	legacy, new string
	// stick is the stickiness to write; nil keeps the action's own.
	stick *types.TargetGroupStickinessConfig
}

var (
	_ router.Router  = (*Router)(nil)
	_ router.Checker = (*Router)(nil)
)

// target is what the settings and backends resolve to, before any call.
type target struct {
	region, listener, rule, legacy, new string
	endpoint, profile                   string
	stick                               *types.TargetGroupStickinessConfig
	maxAttempts                         int
	maxBackoff, timeout                 time.Duration
	retryMode                           aws.RetryMode
}

// resolve checks the settings and backends without calling AWS.
func resolve(s Settings, b router.Backends) (*target, error) {
	t := &target{endpoint: s.Endpoint, profile: s.Profile, maxAttempts: s.MaxAttempts}
	if s.ListenerArn == "" {
		return nil, errors.New("listenerArn is required: the ALB listener that forwards to both target groups")
	}
	l, err := parseELB(s.ListenerArn, "listenerArn")
	if err != nil {
		return nil, err
	}
	lparts := strings.Split(l.Resource, "/")
	switch {
	case len(lparts) == 5 && lparts[0] == "listener" && lparts[1] == "app":
	case len(lparts) == 5 && lparts[0] == "listener" && lparts[1] == "net":
		return nil, fmt.Errorf("listenerArn %s is a Network Load Balancer listener; the alb router drives Application Load Balancers", s.ListenerArn)
	default:
		return nil, fmt.Errorf("listenerArn %q is not an ALB listener ARN (…:listener/app/<name>/<id>/<id>)", s.ListenerArn)
	}
	t.listener = s.ListenerArn
	switch s.RuleArn {
	case "":
		return nil, errors.New(`ruleArn is required: the listener rule's ARN, or "default" for the listener's default action`)
	case DefaultRule:
	default:
		r, err := parseELB(s.RuleArn, "ruleArn")
		if err != nil {
			return nil, err
		}
		rparts := strings.Split(r.Resource, "/")
		if len(rparts) != 6 || rparts[0] != "listener-rule" || rparts[1] != "app" {
			return nil, fmt.Errorf("ruleArn %q is not an ALB listener rule ARN (…:listener-rule/app/<name>/<id>/<id>/<id>)", s.RuleArn)
		}
		if strings.Join(rparts[1:5], "/") != strings.Join(lparts[1:5], "/") || r.Region != l.Region || r.AccountID != l.AccountID {
			return nil, fmt.Errorf("ruleArn %s is a rule of another listener than listenerArn %s", s.RuleArn, s.ListenerArn)
		}
		t.rule = s.RuleArn
	}
	t.region = s.Region
	if t.region == "" {
		t.region = l.Region
	} else if t.region != l.Region {
		return nil, fmt.Errorf("region %s differs from the listener's region %s", t.region, l.Region)
	}
	for _, side := range []struct {
		name  string
		addrs []string
		dst   *string
	}{{"legacy", b.Legacy, &t.legacy}, {"new", b.New, &t.new}} {
		if len(side.addrs) != 1 {
			return nil, fmt.Errorf("spec.%s.addresses must hold exactly one target group ARN for the alb router, not %d", side.name, len(side.addrs))
		}
		a, err := parseELB(side.addrs[0], "spec."+side.name+".addresses[0]")
		if err != nil {
			return nil, err
		}
		if p := strings.Split(a.Resource, "/"); len(p) != 3 || p[0] != "targetgroup" {
			return nil, fmt.Errorf("spec.%s.addresses[0] %q is not a target group ARN (…:targetgroup/<name>/<id>)", side.name, side.addrs[0])
		}
		if a.Region != l.Region || a.AccountID != l.AccountID {
			return nil, fmt.Errorf("spec.%s.addresses[0] %s is in %s/%s, the listener in %s/%s", side.name, side.addrs[0], a.AccountID, a.Region, l.AccountID, l.Region)
		}
		*side.dst = side.addrs[0]
	}
	if t.legacy == t.new {
		return nil, errors.New("the legacy and new target groups are the same")
	}
	if st := s.Stickiness; st != nil {
		t.stick = &types.TargetGroupStickinessConfig{Enabled: aws.Bool(st.Enabled)}
		if st.Enabled || st.Duration != "" {
			d, err := time.ParseDuration(st.Duration)
			if err != nil || d < time.Second || d > 7*24*time.Hour || d%time.Second != 0 {
				return nil, fmt.Errorf("stickiness.duration %q must be whole seconds between 1s and 168h", st.Duration)
			}
			if st.Enabled {
				t.stick.DurationSeconds = aws.Int32(int32(d / time.Second))
			}
		}
	}
	if t.maxAttempts < 0 {
		return nil, errors.New("maxAttempts cannot be negative")
	}
	if t.maxAttempts == 0 {
		t.maxAttempts = 10
	}
	if t.maxBackoff, err = duration(s.MaxBackoff, "maxBackoff", 20*time.Second); err != nil {
		return nil, err
	}
	if t.timeout, err = duration(s.Timeout, "timeout", 10*time.Second); err != nil {
		return nil, err
	}
	switch s.RetryMode {
	case "", "standard":
		t.retryMode = aws.RetryModeStandard
	case "adaptive":
		t.retryMode = aws.RetryModeAdaptive
	default:
		return nil, fmt.Errorf("retryMode %q is not standard or adaptive", s.RetryMode)
	}
	if s.Endpoint != "" {
		u, err := url.Parse(s.Endpoint)
		if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
			return nil, fmt.Errorf("endpoint %q is not an http(s) URL", s.Endpoint)
		}
	}
	return t, nil
}

func parseELB(s, field string) (arn.ARN, error) {
	a, err := arn.Parse(s)
	if err != nil {
		return a, fmt.Errorf("%s %q is not an ARN", field, s)
	}
	if a.Service != "elasticloadbalancing" || a.Region == "" || a.AccountID == "" {
		return a, fmt.Errorf("%s %q is not an Elastic Load Balancing ARN with a region and account", field, s)
	}
	return a, nil
}

func duration(s, field string, def time.Duration) (time.Duration, error) {
	if s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s %q is not a positive duration such as 20s", field, s)
	}
	return d, nil
}

// New builds the router from the plan's settings. It makes no API call;
// Check does.
func New(ctx context.Context, b router.Backends, decode func(v any) error) (router.Router, error) {
	var s Settings
	if err := decode(&s); err != nil {
		return nil, err
	}
	t, err := resolve(s, b)
	if err != nil {
		return nil, err
	}
	cfg, err := LoadConfig(ctx, Retry{Region: t.region, Profile: t.profile, MaxAttempts: t.maxAttempts, MaxBackoff: t.maxBackoff, Timeout: t.timeout, Mode: t.retryMode})
	if err != nil {
		return nil, err
	}
	client := elbv2.NewFromConfig(cfg, func(o *elbv2.Options) {
		if t.endpoint != "" {
			o.BaseEndpoint = aws.String(t.endpoint)
		}
	})
	return &Router{client: client, region: t.region, listener: t.listener, rule: t.rule, legacy: t.legacy, new: t.new, stick: t.stick}, nil
}

// Retry is where and how LoadConfig's clients call AWS.
type Retry struct {
	// Region is the AWS region (required).
	Region string
	// Profile is a shared-config profile; "" means the default chain.
	Profile string
	// MaxAttempts bounds attempts per call (required, at least 1).
	MaxAttempts int
	// MaxBackoff caps the backoff between attempts (required).
	MaxBackoff time.Duration
	// Timeout bounds each HTTP attempt (required).
	Timeout time.Duration
	// Mode is the SDK's retry mode; "" means standard.
	Mode aws.RetryMode
}

// LoadConfig loads the AWS configuration (credentials from the default
// chain or profile) with the retry policy cutover uses for control-plane
// calls: MaxAttempts attempts with exponential backoff and jitter capped at
// MaxBackoff, and no client-side retry quota (a shift makes a few calls a
// minute; a quota that runs dry during a long spell of throttling would
// turn a slow rollback into a failed one).
func LoadConfig(ctx context.Context, rc Retry) (aws.Config, error) {
	standard := func(so *retry.StandardOptions) {
		so.MaxAttempts = rc.MaxAttempts
		so.MaxBackoff = rc.MaxBackoff
		so.RateLimiter = ratelimit.None
	}
	opts := []func(*config.LoadOptions) error{
		config.WithRegion(rc.Region),
		config.WithHTTPClient(awshttp.NewBuildableClient().WithTimeout(rc.Timeout)),
		config.WithRetryer(func() aws.Retryer {
			if rc.Mode == aws.RetryModeAdaptive {
				return retry.NewAdaptiveMode(func(o *retry.AdaptiveModeOptions) {
					o.StandardOptions = append(o.StandardOptions, standard)
				})
			}
			return retry.NewStandard(standard)
		}),
	}
	if rc.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(rc.Profile))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return cfg, fmt.Errorf("cannot load the AWS configuration: %w", err)
	}
	return cfg, nil
}

// Targets returns what the CloudWatch provider needs to find this ALB's
// metrics: the region, the load balancer's ARN (derived from the
// listener's, as AWS builds them) and the two target group ARNs.
func (r *Router) Targets() (region, loadBalancer, legacy, new string) {
	return r.region, loadBalancerOf(r.listener), r.legacy, r.new
}

// loadBalancerOf derives the load balancer ARN from a listener ARN
// (…:listener/app/<name>/<id>/<listener-id> → …:loadbalancer/app/<name>/<id>).
func loadBalancerOf(listener string) string {
	a, err := arn.Parse(listener)
	if err != nil {
		return ""
	}
	p := strings.Split(a.Resource, "/")
	if len(p) != 5 {
		return ""
	}
	a.Resource = "loadbalancer/" + strings.Join(p[1:4], "/")
	return a.String()
}

// what names the driven action in messages.
func (r *Router) what() string {
	if r.rule == "" {
		return "the default action of listener " + r.listener
	}
	return "rule " + r.rule
}

// actions reads the rule's actions, or the listener's default actions.
func (r *Router) actions(ctx context.Context) ([]types.Action, error) {
	if r.rule == "" {
		out, err := r.client.DescribeListeners(ctx, &elbv2.DescribeListenersInput{ListenerArns: []string{r.listener}})
		if err != nil {
			return nil, callError("DescribeListeners", err)
		}
		if len(out.Listeners) != 1 {
			return nil, fmt.Errorf("DescribeListeners answered %d listeners for %s", len(out.Listeners), r.listener)
		}
		return out.Listeners[0].DefaultActions, nil
	}
	out, err := r.client.DescribeRules(ctx, &elbv2.DescribeRulesInput{RuleArns: []string{r.rule}})
	if err != nil {
		return nil, callError("DescribeRules", err)
	}
	if len(out.Rules) != 1 {
		return nil, fmt.Errorf("DescribeRules answered %d rules for %s", len(out.Rules), r.rule)
	}
	return out.Rules[0].Actions, nil
}

// forward returns the index of the forward action: the action that ends
// the rule (authenticate actions may come before it).
func (r *Router) forward(actions []types.Action) (int, error) {
	idx := -1
	for i, a := range actions {
		if a.Type == types.ActionTypeEnumForward {
			if idx >= 0 {
				return -1, fmt.Errorf("%s has more than one forward action", r.what())
			}
			idx = i
		}
	}
	if idx < 0 {
		var kinds []string
		for _, a := range actions {
			kinds = append(kinds, string(a.Type))
		}
		return -1, fmt.Errorf("%s does not forward (its actions: %s); make it forward to the legacy target group first", r.what(), strings.Join(kinds, ", "))
	}
	return idx, nil
}

// split reads the legacy and new weights of a forward action; other target
// groups must have weight 0.
func (r *Router) split(a types.Action) (legacy, new int32, err error) {
	var groups []types.TargetGroupTuple
	if a.ForwardConfig != nil && len(a.ForwardConfig.TargetGroups) > 0 {
		groups = a.ForwardConfig.TargetGroups
	} else if a.TargetGroupArn != nil {
		groups = []types.TargetGroupTuple{{TargetGroupArn: a.TargetGroupArn, Weight: aws.Int32(1)}}
	}
	for _, g := range groups {
		w := int32(1) // AWS's default when a tuple has no weight
		if g.Weight != nil {
			w = *g.Weight
		}
		switch aws.ToString(g.TargetGroupArn) {
		case r.legacy:
			legacy = w
		case r.new:
			new = w
		default:
			if w != 0 {
				return 0, 0, fmt.Errorf("%s also sends traffic (weight %d) to target group %s, which is neither the plan's legacy nor its new target group", r.what(), w, aws.ToString(g.TargetGroupArn))
			}
		}
	}
	if legacy+new == 0 {
		return 0, 0, fmt.Errorf("%s forwards to neither the legacy target group %s nor the new one %s", r.what(), r.legacy, r.new)
	}
	return legacy, new, nil
}

// percent turns ALB weights (0..999, any scale) into the new side's
// percentage; ALB splits in proportion to the weights.
func percent(legacy, new int32) router.Weights {
	n := int(math.Round(100 * float64(new) / float64(legacy+new)))
	return router.ForNew(n)
}

// Weights reads the split back from the ALB.
func (r *Router) Weights(ctx context.Context) (router.Weights, error) {
	actions, err := r.actions(ctx)
	if err != nil {
		return router.Weights{}, err
	}
	i, err := r.forward(actions)
	if err != nil {
		return router.Weights{}, err
	}
	l, n, err := r.split(actions[i])
	if err != nil {
		return router.Weights{}, err
	}
	return percent(l, n), nil
}

// SetWeights writes the split with one ModifyRule (ModifyListener for the
// default action). Percentages map onto ALB weights one to one (90/10 is
// written as weights 90 and 10), so the read-back is exact.
func (r *Router) SetWeights(ctx context.Context, w router.Weights) error {
	if err := w.Validate(); err != nil {
		return err
	}
	actions, err := r.actions(ctx)
	if err != nil {
		return err
	}
	i, err := r.forward(actions)
	if err != nil {
		return err
	}
	if _, _, err := r.split(actions[i]); err != nil {
		return err
	}
	want := r.forwardConfig(actions[i], w)
	if sameForward(actions[i].ForwardConfig, want) && actions[i].TargetGroupArn == nil {
		return nil // already so: setting is idempotent, and costs no write
	}
	next := make([]types.Action, len(actions))
	for j, a := range actions {
		next[j] = resend(a)
	}
	next[i].TargetGroupArn = nil
	next[i].ForwardConfig = want
	if r.rule == "" {
		_, err = r.client.ModifyListener(ctx, &elbv2.ModifyListenerInput{ListenerArn: aws.String(r.listener), DefaultActions: next})
		return callError("ModifyListener", err)
	}
	_, err = r.client.ModifyRule(ctx, &elbv2.ModifyRuleInput{RuleArn: aws.String(r.rule), Actions: next})
	return callError("ModifyRule", err)
}

// forwardConfig is the forward action's configuration for w: both target
// groups always listed (weight 0 keeps a side attached, ready for a
// rollback), other zero-weight groups kept, stickiness as configured or as
// it was.
func (r *Router) forwardConfig(a types.Action, w router.Weights) *types.ForwardActionConfig {
	fc := &types.ForwardActionConfig{TargetGroups: []types.TargetGroupTuple{
		{TargetGroupArn: aws.String(r.legacy), Weight: aws.Int32(int32(w.Legacy))},
		{TargetGroupArn: aws.String(r.new), Weight: aws.Int32(int32(w.New))},
	}}
	if a.ForwardConfig != nil {
		for _, g := range a.ForwardConfig.TargetGroups {
			if arn := aws.ToString(g.TargetGroupArn); arn != r.legacy && arn != r.new {
				fc.TargetGroups = append(fc.TargetGroups, types.TargetGroupTuple{TargetGroupArn: g.TargetGroupArn, Weight: aws.Int32(0)})
			}
		}
		if st := a.ForwardConfig.TargetGroupStickinessConfig; st != nil {
			fc.TargetGroupStickinessConfig = &types.TargetGroupStickinessConfig{Enabled: st.Enabled, DurationSeconds: st.DurationSeconds}
			if !aws.ToBool(st.Enabled) {
				// A disabled stickiness has no duration to keep.
				fc.TargetGroupStickinessConfig.DurationSeconds = nil
			}
		}
	}
	if r.stick != nil {
		fc.TargetGroupStickinessConfig = &types.TargetGroupStickinessConfig{Enabled: r.stick.Enabled, DurationSeconds: r.stick.DurationSeconds}
	}
	return fc
}

// sameForward reports whether the action already forwards as want.
func sameForward(have, want *types.ForwardActionConfig) bool {
	if have == nil || len(have.TargetGroups) != len(want.TargetGroups) {
		return false
	}
	weights := map[string]int32{}
	for _, g := range have.TargetGroups {
		weights[aws.ToString(g.TargetGroupArn)] = aws.ToInt32(g.Weight)
	}
	for _, g := range want.TargetGroups {
		if w, ok := weights[aws.ToString(g.TargetGroupArn)]; !ok || w != aws.ToInt32(g.Weight) {
			return false
		}
	}
	hs, ws := have.TargetGroupStickinessConfig, want.TargetGroupStickinessConfig
	if ws == nil {
		return true
	}
	if hs == nil {
		return !aws.ToBool(ws.Enabled)
	}
	if aws.ToBool(hs.Enabled) != aws.ToBool(ws.Enabled) {
		return false
	}
	return !aws.ToBool(ws.Enabled) || aws.ToInt32(hs.DurationSeconds) == aws.ToInt32(ws.DurationSeconds)
}

// resend prepares an action read from AWS to be sent back unchanged.
// Describe answers never carry an OIDC client secret; ModifyRule refuses
// an authenticate-oidc action without one unless told to keep the
// existing secret.
func resend(a types.Action) types.Action {
	if a.AuthenticateOidcConfig != nil && a.AuthenticateOidcConfig.ClientSecret == nil {
		c := *a.AuthenticateOidcConfig
		c.UseExistingClientSecret = aws.Bool(true)
		a.AuthenticateOidcConfig = &c
	}
	return a
}

// Check verifies, in one line, that the listener and rule exist, that both
// target groups exist, take ip or instance targets and belong to the
// listener's load balancer (or to none yet), and that the rule forwards
// only to them.
func (r *Router) Check(ctx context.Context) error {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	lout, err := r.client.DescribeListeners(ctx, &elbv2.DescribeListenersInput{ListenerArns: []string{r.listener}})
	if err != nil {
		if isCode(err, "ListenerNotFound") {
			return fmt.Errorf("listener %s not found in %s", r.listener, r.region)
		}
		return callError("DescribeListeners", err)
	}
	if len(lout.Listeners) != 1 {
		return fmt.Errorf("DescribeListeners answered %d listeners for %s", len(lout.Listeners), r.listener)
	}
	lb := aws.ToString(lout.Listeners[0].LoadBalancerArn)
	vpc := ""
	if out, err := r.client.DescribeLoadBalancers(ctx, &elbv2.DescribeLoadBalancersInput{LoadBalancerArns: []string{lb}}); err != nil {
		add("load balancer %s: %v", lb, callError("DescribeLoadBalancers", err))
	} else if len(out.LoadBalancers) == 1 {
		vpc = aws.ToString(out.LoadBalancers[0].VpcId)
		if t := out.LoadBalancers[0].Type; t != types.LoadBalancerTypeEnumApplication {
			add("load balancer %s is of type %s, not application", lb, t)
		}
	}
	if r.rule != "" {
		found, err := r.ruleOnListener(ctx)
		switch {
		case err != nil:
			add("%v", err)
		case !found:
			add("rule %s not found on listener %s", r.rule, r.listener)
		}
	}
	for _, side := range []struct{ name, arn string }{{"legacy", r.legacy}, {"new", r.new}} {
		out, err := r.client.DescribeTargetGroups(ctx, &elbv2.DescribeTargetGroupsInput{TargetGroupArns: []string{side.arn}})
		if err != nil {
			if isCode(err, "TargetGroupNotFound") {
				add("%s target group %s not found", side.name, side.arn)
			} else {
				add("%s target group: %v", side.name, callError("DescribeTargetGroups", err))
			}
			continue
		}
		if len(out.TargetGroups) != 1 {
			add("%s target group %s: DescribeTargetGroups answered %d groups", side.name, side.arn, len(out.TargetGroups))
			continue
		}
		tg := out.TargetGroups[0]
		switch tg.TargetType {
		case types.TargetTypeEnumIp, types.TargetTypeEnumInstance:
		default:
			add("%s target group %s has target type %s; the alb router shifts between ip or instance target groups", side.name, side.arn, tg.TargetType)
		}
		if len(tg.LoadBalancerArns) > 0 && !slices.Contains(tg.LoadBalancerArns, lb) {
			add("%s target group %s belongs to load balancer %s, not to the listener's %s", side.name, side.arn, strings.Join(tg.LoadBalancerArns, ", "), lb)
		}
		if vpc != "" && aws.ToString(tg.VpcId) != vpc {
			add("%s target group %s is in %s, the load balancer in %s", side.name, side.arn, aws.ToString(tg.VpcId), vpc)
		}
	}
	if len(problems) == 0 {
		// Only now is the action worth reading: a missing rule or target
		// group has already said what is wrong.
		if _, err := r.Weights(ctx); err != nil {
			add("%v", err)
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// ruleOnListener pages through the listener's rules looking for ours.
func (r *Router) ruleOnListener(ctx context.Context) (bool, error) {
	p := elbv2.NewDescribeRulesPaginator(r.client, &elbv2.DescribeRulesInput{ListenerArn: aws.String(r.listener), PageSize: aws.Int32(100)})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return false, callError("DescribeRules", err)
		}
		for _, rule := range out.Rules {
			if aws.ToString(rule.RuleArn) == r.rule {
				return true, nil
			}
		}
	}
	return false, nil
}

func isCode(err error, code string) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == code
}

// CallError is an AWS call that failed; its message is one line (the
// call, the error code and AWS's message, and the attempts when retries
// ran out), and it unwraps to the SDK's error.
type CallError struct {
	// Op is the API action.
	Op string
	// Err is the SDK's error.
	Err error
}

func (e *CallError) Error() string {
	msg := e.Err.Error()
	var ae smithy.APIError
	if errors.As(e.Err, &ae) {
		msg = ae.ErrorCode() + ": " + ae.ErrorMessage()
	}
	var me *retry.MaxAttemptsError
	if errors.As(e.Err, &me) {
		msg += fmt.Sprintf(" (gave up after %d attempts)", me.Attempt)
	}
	return e.Op + ": " + msg
}

func (e *CallError) Unwrap() error { return e.Err }

func callError(op string, err error) error {
	if err == nil {
		return nil
	}
	return &CallError{Op: op, Err: err}
}
