package awsstub

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	cw "github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/aws/smithy-go"
)

func clients(s *Server) (*elbv2.Client, *cw.Client) {
	cfg := aws.Config{Region: s.Region, Credentials: credentials.NewStaticCredentialsProvider("AKIDSTUB", "secret", ""),
		RetryMaxAttempts: 1}
	e := elbv2.NewFromConfig(cfg, func(o *elbv2.Options) { o.BaseEndpoint = aws.String(s.URL()) })
	c := cw.NewFromConfig(cfg, func(o *cw.Options) { o.BaseEndpoint = aws.String(s.URL()) })
	return e, c
}

func code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// TestProtocolListenerRulesInPriorityOrderDefaultLast: DescribeRules by
// listener answers as AWS does, the default rule last and marked.
func TestProtocolListenerRulesInPriorityOrderDefaultLast(t *testing.T) {
	s := Start(t)
	lb := s.AddLoadBalancer("pay", "vpc-1")
	tg := s.AddTargetGroup("pay-ec2", "instance", "vpc-1")
	l := s.AddListener(lb, 443, ForwardTo(TargetWeight{Arn: tg, Weight: 1}))
	r20 := s.AddRule(l, 20, "/b/*", ForwardTo(TargetWeight{Arn: tg, Weight: 1}))
	r10 := s.AddRule(l, 10, "/a/*", ForwardTo(TargetWeight{Arn: tg, Weight: 1}))
	e, _ := clients(s)
	out, err := e.DescribeRules(context.Background(), &elbv2.DescribeRulesInput{ListenerArn: aws.String(l)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Rules) != 3 || aws.ToString(out.Rules[0].RuleArn) != r10 || aws.ToString(out.Rules[1].RuleArn) != r20 ||
		!aws.ToBool(out.Rules[2].IsDefault) || aws.ToString(out.Rules[2].Priority) != "default" {
		t.Fatalf("rules: %+v", out.Rules)
	}
	if c := out.Rules[0].Conditions; len(c) != 1 || aws.ToString(c[0].Field) != "path-pattern" || c[0].Values[0] != "/a/*" {
		t.Fatalf("conditions: %+v", c)
	}
	fc := out.Rules[0].Actions[0].ForwardConfig
	if fc == nil || aws.ToString(fc.TargetGroups[0].TargetGroupArn) != tg || aws.ToInt32(fc.TargetGroups[0].Weight) != 1 {
		t.Fatalf("forward: %+v", out.Rules[0].Actions[0])
	}
}

// TestProtocolModifyRuleValidates: the stub refuses what AWS refuses, with
// AWS's error codes, and changes nothing.
func TestProtocolModifyRuleValidates(t *testing.T) {
	s := Start(t)
	lb := s.AddLoadBalancer("pay", "vpc-1")
	other := s.AddLoadBalancer("other", "vpc-1")
	legacy := s.AddTargetGroup("pay-ec2", "instance", "vpc-1")
	newer := s.AddTargetGroup("pay-eks", "ip", "vpc-1")
	taken := s.AddTargetGroup("taken", "ip", "vpc-1")
	s.AddListener(other, 80, ForwardTo(TargetWeight{Arn: taken, Weight: 1}))
	l := s.AddListener(lb, 443, ForwardTo(TargetWeight{Arn: legacy, Weight: 1}))
	r := s.AddRule(l, 10, "/*", ForwardTo(TargetWeight{Arn: legacy, Weight: 1}))
	e, _ := clients(s)
	fwd := func(tgs ...types.TargetGroupTuple) []types.Action {
		return []types.Action{{Type: types.ActionTypeEnumForward, ForwardConfig: &types.ForwardActionConfig{TargetGroups: tgs}}}
	}
	tuple := func(arn string, w int32) types.TargetGroupTuple {
		return types.TargetGroupTuple{TargetGroupArn: aws.String(arn), Weight: aws.Int32(w)}
	}
	for _, c := range []struct {
		name    string
		actions []types.Action
		want    string
	}{
		{"weight above 999", fwd(tuple(legacy, 1000), tuple(newer, 0)), "ValidationError"},
		{"missing group", fwd(tuple(legacy, 1), tuple(legacy[:len(legacy)-4]+"beef", 1)), "TargetGroupNotFound"},
		{"group of another load balancer", fwd(tuple(legacy, 1), tuple(taken, 1)), "TargetGroupAssociationLimit"},
		{"TargetGroupArn beside two groups", []types.Action{{Type: types.ActionTypeEnumForward, TargetGroupArn: aws.String(legacy),
			ForwardConfig: &types.ForwardActionConfig{TargetGroups: []types.TargetGroupTuple{tuple(legacy, 1), tuple(newer, 1)}}}}, "ValidationError"},
		{"oidc without secret", []types.Action{{Type: types.ActionTypeEnumAuthenticateOidc, Order: aws.Int32(1), AuthenticateOidcConfig: &types.AuthenticateOidcActionConfig{
			Issuer: aws.String("https://idp"), ClientId: aws.String("c"), AuthorizationEndpoint: aws.String("https://idp/a"),
			TokenEndpoint: aws.String("https://idp/t"), UserInfoEndpoint: aws.String("https://idp/u")}},
			{Type: types.ActionTypeEnumForward, Order: aws.Int32(2), TargetGroupArn: aws.String(legacy)}}, "ValidationError"},
	} {
		_, err := e.ModifyRule(context.Background(), &elbv2.ModifyRuleInput{RuleArn: aws.String(r), Actions: c.actions})
		if code(err) != c.want {
			t.Errorf("%s: got %v, want %s", c.name, err, c.want)
		}
	}
	if w := s.Weights(r); len(w) != 1 || w[legacy] != 1 {
		t.Fatalf("refused changes changed the rule: %v", w)
	}
	if _, err := e.ModifyRule(context.Background(), &elbv2.ModifyRuleInput{RuleArn: aws.String(r + "x"), Actions: fwd(tuple(legacy, 1))}); code(err) != "RuleNotFound" {
		t.Fatalf("unknown rule: %v", err)
	}
}

func TestProtocolFaults(t *testing.T) {
	s := Start(t)
	lb := s.AddLoadBalancer("pay", "vpc-1")
	l := s.AddListener(lb, 443, ForwardTo(TargetWeight{Arn: s.AddTargetGroup("a", "ip", "vpc-1"), Weight: 1}))
	e, _ := clients(s)
	ctx := context.Background()
	in := &elbv2.DescribeListenersInput{ListenerArns: []string{l}}
	s.Throttle("DescribeListeners", 1)
	if _, err := e.DescribeListeners(ctx, in); code(err) != "Throttling" {
		t.Fatalf("throttled call: %v", err)
	}
	if _, err := e.DescribeListeners(ctx, in); err != nil {
		t.Fatalf("after the throttle: %v", err)
	}
	s.Latency("DescribeListeners", 300*time.Millisecond)
	start := time.Now()
	if _, err := e.DescribeListeners(ctx, in); err != nil || time.Since(start) < 300*time.Millisecond {
		t.Fatalf("latency: %v after %v", err, time.Since(start))
	}
	s.Latency("DescribeListeners", 0)
	if n := s.Calls("DescribeListeners"); n != 3 {
		t.Fatalf("calls: %d", n)
	}
	if log := s.Log(); log[0].Err != "Throttling" || log[1].Err != "" {
		t.Fatalf("log: %+v", log)
	}
}

func TestRefusesUnsignedAndUnknownCalls(t *testing.T) {
	s := Start(t)
	post := func(body string, auth string) (int, string) {
		return Post(t, s.URL(), "", "application/x-www-form-urlencoded", body, auth)
	}
	if code, body := post("Action=DescribeRules&Version=2015-12-01", ""); code != http.StatusForbidden || !strings.Contains(body, "<Code>IncompleteSignature</Code>") {
		t.Fatalf("unsigned: %d %s", code, body)
	}
	wrongScope := "AWS4-HMAC-SHA256 Credential=AKID/20260101/eu-west-1/monitoring/aws4_request, SignedHeaders=host, Signature=00"
	if code, _ := post("Action=DescribeRules&Version=2015-12-01", wrongScope); code != http.StatusForbidden {
		t.Fatalf("signed for CloudWatch, sent to ELB: %d", code)
	}
	good := strings.Replace(wrongScope, "monitoring", "elasticloadbalancing", 1)
	if code, body := post("Action=DeleteLoadBalancer&Version=2015-12-01", good); code != http.StatusBadRequest || !strings.Contains(body, "InvalidAction") {
		t.Fatalf("unknown action: %d %s", code, body)
	}
}

func TestProtocolGetMetricDataValidates(t *testing.T) {
	s := Start(t)
	_, c := clients(s)
	t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	q := func(period int32) *cw.GetMetricDataInput {
		return &cw.GetMetricDataInput{StartTime: aws.Time(t0), EndTime: aws.Time(t0.Add(time.Hour)), MetricDataQueries: []cwtypes.MetricDataQuery{{
			Id: aws.String("m1"), MetricStat: &cwtypes.MetricStat{Period: aws.Int32(period), Stat: aws.String("Sum"),
				Metric: &cwtypes.Metric{Namespace: aws.String("AWS/ApplicationELB"), MetricName: aws.String("RequestCount")}}}}}
	}
	if _, err := c.GetMetricData(context.Background(), q(45)); code(err) != "InvalidParameterValue" {
		t.Fatalf("period 45: %v", err)
	}
	s.Put(Datapoint{Namespace: "AWS/ApplicationELB", MetricName: "RequestCount", Time: t0.Add(time.Minute), Stats: map[string]float64{"Sum": 3}},
		Datapoint{Namespace: "AWS/ApplicationELB", MetricName: "RequestCount", Time: t0.Add(2 * time.Minute), Stats: map[string]float64{"Sum": 4}})
	out, err := c.GetMetricData(context.Background(), q(60))
	if err != nil {
		t.Fatal(err)
	}
	r := out.MetricDataResults[0]
	// Newest first, as CloudWatch answers by default.
	if len(r.Values) != 2 || r.Values[0] != 4 || !r.Timestamps[0].Equal(t0.Add(2*time.Minute)) || r.StatusCode != cwtypes.StatusCodeComplete {
		t.Fatalf("result: %+v", r)
	}
	s.Throttle("GetMetricData", 1)
	if _, err := c.GetMetricData(context.Background(), q(60)); code(err) != "Throttling" {
		t.Fatalf("throttled: %v", err)
	}
}

// FuzzELBQuery sends arbitrary Query-protocol bodies to the stub: it
// answers every one, and never panics.
func FuzzELBQuery(f *testing.F) {
	f.Add("Action=ModifyRule&Version=2015-12-01&RuleArn=x&Actions.member.1.Type=forward&Actions.member.1.ForwardConfig.TargetGroups.member.1.TargetGroupArn=y&Actions.member.1.ForwardConfig.TargetGroups.member.1.Weight=5")
	f.Add("Action=DescribeRules&Version=2015-12-01&ListenerArn=l&PageSize=2&Marker=1")
	f.Add("Action=ModifyListener&Version=2015-12-01&ListenerArn=l&DefaultActions.member.1.Type=authenticate-oidc&DefaultActions.member.1.AuthenticateOidcConfig.UseExistingClientSecret=true")
	s := New()
	lb := s.AddLoadBalancer("pay", "vpc-1")
	tg := s.AddTargetGroup("a", "ip", "vpc-1")
	l := s.AddListener(lb, 443, ForwardTo(TargetWeight{Arn: tg, Weight: 1}))
	s.AddRule(l, 1, "/*", ForwardTo(TargetWeight{Arn: tg, Weight: 1}))
	h := s.Handler()
	f.Fuzz(func(t *testing.T, body string) {
		body = strings.NewReplacer("=l&", "="+url.QueryEscape(l)+"&", "=y&", "="+url.QueryEscape(tg)+"&").Replace(body)
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKID/20260101/eu-west-1/elasticloadbalancing/aws4_request, SignedHeaders=host, Signature=00")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code == 0 || w.Body.Len() == 0 {
			t.Fatalf("no answer to %q", body)
		}
	})
}
