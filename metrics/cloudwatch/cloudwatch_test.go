package cloudwatch

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/cutoverhq/cutover/internal/awsstub"
	"github.com/cutoverhq/cutover/metrics"
	"github.com/cutoverhq/cutover/router"
	"github.com/cutoverhq/cutover/router/alb"
)

const (
	lbARN     = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/pay/50dc6c495c0c9188"
	lbDim     = "app/pay/50dc6c495c0c9188"
	legacyARN = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/pay-ec2/73e2d6bc24d8a067"
	legacyDim = "targetgroup/pay-ec2/73e2d6bc24d8a067"
	newARN    = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/pay-eks/2453ed029918f21f"
	newDim    = "targetgroup/pay-eks/2453ed029918f21f"
)

func decoder(settings string) func(v any) error {
	return func(v any) error {
		dec := yaml.NewDecoder(strings.NewReader(settings))
		dec.KnownFields(true)
		if err := dec.Decode(v); err != nil && err.Error() != "EOF" {
			return err
		}
		return nil
	}
}

func newProvider(t *testing.T, stub *awsstub.Server, extra string) *Provider {
	t.Helper()
	settings := fmt.Sprintf("region: eu-west-1\nendpoint: %s\nloadBalancer: %s\nlegacyTargetGroup: %s\nnewTargetGroup: %s\nmaxBackoff: 20ms\n%s",
		stub.URL(), lbARN, legacyARN, newDim, extra)
	p, err := New(context.Background(), metrics.Env{Service: "payments"}, decoder(settings))
	if err != nil {
		t.Fatal(err)
	}
	return p.(*Provider)
}

// put stores one period of ALB metrics for a target group.
func put(stub *awsstub.Server, tg string, at time.Time, requests, target5xx, connErrors, p50, p99 float64) {
	dims := []awsstub.Dimension{{Name: "LoadBalancer", Value: lbDim}, {Name: "TargetGroup", Value: tg}}
	pt := func(name string, stats map[string]float64) awsstub.Datapoint {
		return awsstub.Datapoint{Namespace: Namespace, MetricName: name, Dimensions: dims, Time: at, Stats: stats}
	}
	var pts []awsstub.Datapoint
	if requests > 0 {
		pts = append(pts, pt("RequestCount", map[string]float64{"Sum": requests}))
	}
	// ALB publishes these only when they are non-zero.
	if target5xx > 0 {
		pts = append(pts, pt("HTTPCode_Target_5XX_Count", map[string]float64{"Sum": target5xx}))
	}
	if connErrors > 0 {
		pts = append(pts, pt("TargetConnectionErrorCount", map[string]float64{"Sum": connErrors}))
	}
	if p50 > 0 {
		pts = append(pts, pt("TargetResponseTime", map[string]float64{"p50": p50, "p99": p99}))
	}
	stub.Put(pts...)
}

func observe(t *testing.T, p *Provider, side metrics.Side, start, end time.Time) metrics.Observation {
	t.Helper()
	o, err := p.Observe(context.Background(), metrics.Query{Service: "payments", Side: side, Start: start, End: end})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

// TestProtocolNumbersFromDatapoints reads five minutes of both sides
// through the SDK's GetMetricData against the stub.
func TestProtocolNumbersFromDatapoints(t *testing.T) {
	awsstub.FakeEnv(t)
	stub := awsstub.Start(t)
	p := newProvider(t, stub, "")
	t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	for i := 0; i < 5; i++ {
		at := t0.Add(time.Duration(i) * time.Minute)
		put(stub, legacyDim, at, 900, 1, 0, 0.020, 0.090)
		put(stub, newDim, at, 100, 2, 1, 0.030, 0.120+float64(i)/100)
	}
	// Another load balancer's target group of the same name must not count.
	stub.Put(awsstub.Datapoint{Namespace: Namespace, MetricName: "RequestCount", Time: t0,
		Dimensions: []awsstub.Dimension{{Name: "LoadBalancer", Value: "app/other/1111111111111111"}, {Name: "TargetGroup", Value: newDim}},
		Stats:      map[string]float64{"Sum": 1e6}})

	// The window starts 20 s before t0 and ends 10 s before t0+5m: it is
	// aligned to [t0, t0+5m), one 300 s period.
	lo := observe(t, p, metrics.Legacy, t0.Add(-20*time.Second), t0.Add(5*time.Minute-10*time.Second))
	if lo.Requests != 4500 || lo.Errors != 5 || !near(lo.P50, 0.020) || !near(lo.P99, 0.090) {
		t.Fatalf("legacy: %+v", lo)
	}
	no := observe(t, p, metrics.New, t0.Add(-20*time.Second), t0.Add(5*time.Minute-10*time.Second))
	if no.Requests != 500 || no.Errors != 15 || !near(no.P50, 0.030) || !near(no.P99, 0.160) {
		t.Fatalf("new: %+v", no)
	}
	if !near(no.ErrorRate(), 0.03) {
		t.Fatalf("error rate %v", no.ErrorRate())
	}
	if no.Latencies != nil {
		t.Fatalf("CloudWatch has no latency samples, got %d", len(no.Latencies))
	}
	var one int
	for _, c := range stub.Log() {
		if c.Action == "GetMetricData" {
			one++
		}
	}
	if one != 2 {
		t.Fatalf("%d GetMetricData calls for two observations", one)
	}
}

// TestProtocolNoDataIsNaN: an empty window is inconclusive, never a pass
// with zero errors.
func TestProtocolNoDataIsNaN(t *testing.T) {
	awsstub.FakeEnv(t)
	stub := awsstub.Start(t)
	p := newProvider(t, stub, "")
	t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	o := observe(t, p, metrics.New, t0, t0.Add(3*time.Minute))
	if !math.IsNaN(o.Requests) || !math.IsNaN(o.Errors) || !math.IsNaN(o.P50) || !math.IsNaN(o.P99) || !math.IsNaN(o.ErrorRate()) {
		t.Fatalf("no datapoints gave %+v", o)
	}
	// Requests without 5XX datapoints: zero errors (ALB publishes those
	// counts only when non-zero), but no latency datapoint stays NaN.
	put(stub, newDim, t0, 50, 0, 0, 0, 0)
	o = observe(t, p, metrics.New, t0, t0.Add(3*time.Minute))
	if o.Requests != 50 || o.Errors != 0 || !math.IsNaN(o.P99) || !math.IsNaN(o.P50) {
		t.Fatalf("requests only: %+v", o)
	}
}

// TestProtocolWindowNeverReachesBack: a period that began before the
// window (the previous step's failures) is not held against it.
func TestProtocolWindowNeverReachesBack(t *testing.T) {
	awsstub.FakeEnv(t)
	stub := awsstub.Start(t)
	p := newProvider(t, stub, "")
	t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	put(stub, newDim, t0, 100, 80, 0, 0.5, 2)
	put(stub, newDim, t0.Add(time.Minute), 100, 0, 0, 0.03, 0.1)
	o := observe(t, p, metrics.New, t0.Add(30*time.Second), t0.Add(90*time.Second))
	if o.Requests != 100 || o.Errors != 0 || !near(o.P99, 0.1) {
		t.Fatalf("window from t0+30s counted the period at t0: %+v", o)
	}
	// Shorter than a period once aligned: nothing to read, and no call.
	before := stub.Calls("GetMetricData")
	o = observe(t, p, metrics.New, t0.Add(10*time.Second), t0.Add(50*time.Second))
	if !math.IsNaN(o.Requests) || stub.Calls("GetMetricData") != before {
		t.Fatalf("a 40 s window inside one minute: %+v, %d calls", o, stub.Calls("GetMetricData")-before)
	}
}

// TestProtocolHighResolutionPeriods: with period 10s, a 20 s window is not
// a CloudWatch period, so it is read as two periods and combined.
func TestProtocolHighResolutionPeriods(t *testing.T) {
	awsstub.FakeEnv(t)
	stub := awsstub.Start(t)
	stub.SetMetricPageSize(3) // and the answer comes in pages
	p := newProvider(t, stub, "period: 10s\nnamespace: Payments/ALB\n")
	p.namespace = Namespace // the stub's datapoints use the ALB namespace
	t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	put(stub, newDim, t0, 30, 3, 0, 0.010, 0.050)
	put(stub, newDim, t0.Add(10*time.Second), 10, 0, 1, 0.050, 0.300)
	o := observe(t, p, metrics.New, t0, t0.Add(20*time.Second))
	if o.Requests != 40 || o.Errors != 4 || !near(o.P99, 0.300) || !near(o.P50, (30*0.010+10*0.050)/40) {
		t.Fatalf("two 10 s periods: %+v", o)
	}
}

func TestProtocolThrottlingIsRetried(t *testing.T) {
	awsstub.FakeEnv(t)
	stub := awsstub.Start(t)
	p := newProvider(t, stub, "")
	t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	put(stub, legacyDim, t0, 10, 0, 0, 0.01, 0.02)
	stub.Throttle("GetMetricData", 2)
	if o := observe(t, p, metrics.Legacy, t0, t0.Add(time.Minute)); o.Requests != 10 {
		t.Fatalf("%+v", o)
	}
	stub.Throttle("GetMetricData", 10)
	_, err := p.Observe(context.Background(), metrics.Query{Side: metrics.Legacy, Start: t0, End: t0.Add(time.Minute)})
	if err == nil || !strings.Contains(err.Error(), "GetMetricData: Throttling: Rate exceeded (gave up after 5 attempts)") {
		t.Fatalf("throttled past the attempts: %v", err)
	}
}

func TestProtocolCheck(t *testing.T) {
	awsstub.FakeEnv(t)
	stub := awsstub.Start(t)
	p := newProvider(t, stub, "")
	ctx := context.Background()
	err := p.Check(ctx)
	if err == nil || !strings.Contains(err.Error(), "no RequestCount in AWS/ApplicationELB for LoadBalancer="+lbDim+" TargetGroup="+legacyDim) || strings.Contains(err.Error(), "\n") {
		t.Fatalf("Check without data: %v", err)
	}
	put(stub, legacyDim, time.Now().Add(-10*time.Minute).Truncate(time.Minute), 1000, 0, 0, 0.01, 0.05)
	if err := p.Check(ctx); err != nil {
		t.Fatalf("Check with data: %v", err)
	}
}

// TestProtocolTargetsFromTheALBRouter: with the alb router, the provider
// needs no dimensions of its own.
func TestProtocolTargetsFromTheALBRouter(t *testing.T) {
	awsstub.FakeEnv(t)
	stub := awsstub.Start(t)
	lb := stub.AddLoadBalancer("pay", "vpc-1")
	legacy := stub.AddTargetGroup("pay-ec2", "instance", "vpc-1")
	newer := stub.AddTargetGroup("pay-eks", "ip", "vpc-1")
	l := stub.AddListener(lb, 443, awsstub.ForwardTo(awsstub.TargetWeight{Arn: legacy, Weight: 1}))
	rt, err := alb.New(context.Background(), router.Backends{Legacy: []string{legacy}, New: []string{newer}},
		decoder(fmt.Sprintf("listenerArn: %s\nruleArn: default\nendpoint: %s\n", l, stub.URL())))
	if err != nil {
		t.Fatal(err)
	}
	prov, err := New(context.Background(), metrics.Env{Local: rt}, decoder("endpoint: "+stub.URL()+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	p := prov.(*Provider)
	lbd := strings.SplitN(lb, "loadbalancer/", 2)[1]
	nd := "targetgroup/" + strings.SplitN(newer, "targetgroup/", 2)[1]
	if p.lb != lbd || p.tg[metrics.New] != nd || p.region != awsstub.Region {
		t.Fatalf("dimensions from the router: %s %v %s", p.lb, p.tg, p.region)
	}
	t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	stub.Put(awsstub.Datapoint{Namespace: Namespace, MetricName: "RequestCount", Time: t0,
		Dimensions: []awsstub.Dimension{{Name: "TargetGroup", Value: nd}, {Name: "LoadBalancer", Value: lbd}},
		Stats:      map[string]float64{"Sum": 7}})
	if o := observe(t, p, metrics.New, t0, t0.Add(time.Minute)); o.Requests != 7 {
		t.Fatalf("%+v", o)
	}
}

func TestSettingsRefused(t *testing.T) {
	awsstub.FakeEnv(t)
	cases := []struct{ settings, want string }{
		{"region: eu-west-1\n", "set loadBalancer, legacyTargetGroup, newTargetGroup (or use the alb router"},
		{"region: eu-west-1\nloadBalancer: pay\nlegacyTargetGroup: " + legacyARN + "\nnewTargetGroup: " + newARN + "\n", `loadBalancer "pay" is neither an ARN nor a dimension value such as app/<name>/<id>`},
		{"region: eu-west-1\nloadBalancer: " + lbARN + "\nlegacyTargetGroup: " + legacyARN + "\nnewTargetGroup: " + legacyDim + "\n", "are the same"},
		{"region: eu-west-1\nloadBalancer: " + lbARN + "\nlegacyTargetGroup: arn:aws:sqs:eu-west-1:1:q\nnewTargetGroup: " + newARN + "\n", "not an Elastic Load Balancing ARN"},
		{"region: eu-west-1\nloadBalancer: " + lbARN + "\nlegacyTargetGroup: " + legacyARN + "\nnewTargetGroup: " + newARN + "\nperiod: 45s\n", "must be 1s, 5s, 10s, 30s or a multiple of 60s"},
		{"loadBalancer: " + lbARN + "\nlegacyTargetGroup: " + legacyARN + "\nnewTargetGroup: " + newARN + "\n", "no AWS region"},
		{"region: eu-west-1\nloadBalancer: " + lbARN + "\nlegacyTargetGroup: " + legacyARN + "\nnewTargetGroup: " + newARN + "\nmetric: x\n", "field metric not found"},
	}
	for _, c := range cases {
		_, err := New(context.Background(), metrics.Env{}, decoder(c.settings))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want %q", c.settings, err, c.want)
		}
	}
}

func TestWindowAlignment(t *testing.T) {
	p := &Provider{period: time.Minute}
	t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	for _, c := range []struct{ start, end, ws, we time.Time }{
		{t0, t0.Add(time.Minute), t0, t0.Add(time.Minute)},
		{t0.Add(time.Second), t0.Add(61 * time.Second), t0.Add(time.Minute), t0.Add(2 * time.Minute)},
		{t0.Add(-time.Nanosecond), t0.Add(5 * time.Minute), t0, t0.Add(5 * time.Minute)},
	} {
		s, e := p.window(c.start, c.end)
		if !s.Equal(c.ws) || !e.Equal(c.we) {
			t.Errorf("window(%v, %v) = %v, %v; want %v, %v", c.start, c.end, s, e, c.ws, c.we)
		}
	}
}

// FuzzDimensions feeds arbitrary names to the dimension resolution: no
// panic, and what it accepts has the shapes CloudWatch's ALB dimensions
// have.
func FuzzDimensions(f *testing.F) {
	f.Add(lbARN, legacyARN, newDim)
	f.Add(lbDim, legacyDim, newARN)
	f.Add("arn:aws:elasticloadbalancing:::loadbalancer/app//", "targetgroup//", "arn:")
	f.Fuzz(func(t *testing.T, lb, legacy, newer string) {
		_, l, a, b, err := dims(Settings{LoadBalancer: lb, LegacyTargetGroup: legacy, NewTargetGroup: newer}, nil)
		if err != nil {
			return
		}
		if !strings.HasPrefix(l, "app/") || !strings.HasPrefix(a, "targetgroup/") || !strings.HasPrefix(b, "targetgroup/") || a == b {
			t.Fatalf("accepted %q %q %q", l, a, b)
		}
	})
}
