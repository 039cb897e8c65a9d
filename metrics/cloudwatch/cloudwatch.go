// Package cloudwatch is the metrics provider that reads an Application
// Load Balancer's per-target-group metrics from Amazon CloudWatch
// (namespace AWS/ApplicationELB, dimensions LoadBalancer and TargetGroup)
// through GetMetricData: RequestCount, HTTPCode_Target_5XX_Count and
// TargetConnectionErrorCount for errors, and TargetResponseTime p50/p99.
//
// ALB metrics have a resolution of 60 s and reach CloudWatch a minute or
// more after the fact, so a shift judged on them reacts in minutes, not in
// the second the embedded proxy's own metrics allow. Missing data is never
// read as zero traffic or zero latency: it makes the observation NaN
// (inconclusive). The one exception follows CloudWatch's reporting rule
// for ALB counters, which are published only when non-zero: when requests
// were counted in the window, a missing 5XX or connection-error count is
// zero.
package cloudwatch

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	cw "github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/cutoverhq/cutover/metrics"
	"github.com/cutoverhq/cutover/router/alb"
)

func init() { metrics.Register("cloudwatch", New) }

// Namespace is where ALBs publish their metrics.
const Namespace = "AWS/ApplicationELB"

// Settings are the plan's metrics settings for type "cloudwatch". With the
// alb router, none is required: the load balancer and target groups are the
// router's.
type Settings struct {
	// Region is the AWS region; "" means the alb router's region, else the
	// AWS configuration's.
	Region string `yaml:"region"`
	// Endpoint overrides the CloudWatch endpoint URL (a VPC interface
	// endpoint, a local stub in tests); "" means the region's.
	Endpoint string `yaml:"endpoint"`
	// Profile names a shared-config profile; "" means the default
	// credential chain.
	Profile string `yaml:"profile"`
	// LoadBalancer is the load balancer's ARN or its dimension value
	// ("app/payments/50dc6c495c0c9188"); "" means the alb router's.
	LoadBalancer string `yaml:"loadBalancer"`
	// LegacyTargetGroup and NewTargetGroup are the target groups' ARNs or
	// dimension values ("targetgroup/payments-ec2/73e2d6bc24d8a067"); ""
	// means the alb router's (the plan's addresses).
	LegacyTargetGroup string `yaml:"legacyTargetGroup"`
	NewTargetGroup    string `yaml:"newTargetGroup"`
	// Namespace is the metrics' namespace; "" means AWS/ApplicationELB.
	// Another namespace serves metrics of the same names and dimensions
	// that you publish yourself, at high resolution.
	Namespace string `yaml:"namespace"`
	// Period is the metrics' resolution: 1s, 5s, 10s, 30s or a multiple
	// of 60s; "" means 60s, the resolution of ALB metrics. Windows are
	// aligned to it.
	Period string `yaml:"period"`
	// MaxAttempts, MaxBackoff and Timeout bound retries as for the alb
	// router: zero or "" mean 5 attempts, 5s and 10s (a metrics query
	// that fails is retried by the next analysis anyway).
	MaxAttempts int    `yaml:"maxAttempts"`
	MaxBackoff  string `yaml:"maxBackoff"`
	Timeout     string `yaml:"timeout"`
}

// Targets is what the alb router tells the provider (*alb.Router).
type Targets interface {
	Targets() (region, loadBalancer, legacy, new string)
}

// Provider reads one ALB's per-target-group metrics.
type Provider struct {
	client    *cw.Client
	region    string
	namespace string
	period    time.Duration
	lb        string
	tg        map[metrics.Side]string
}

var (
	_ metrics.Provider = (*Provider)(nil)
	_ metrics.Checker  = (*Provider)(nil)
)

// dims resolves the dimensions and the region from settings and router.
func dims(s Settings, rt any) (region, lb, legacy, newer string, err error) {
	region, lb, legacy, newer = s.Region, s.LoadBalancer, s.LegacyTargetGroup, s.NewTargetGroup
	if t, ok := rt.(Targets); ok {
		rr, rl, rlegacy, rnew := t.Targets()
		region = cmp.Or(region, rr)
		lb, legacy, newer = cmp.Or(lb, rl), cmp.Or(legacy, rlegacy), cmp.Or(newer, rnew)
	}
	var missing []string
	for _, m := range []struct{ name, v string }{{"loadBalancer", lb}, {"legacyTargetGroup", legacy}, {"newTargetGroup", newer}} {
		if m.v == "" {
			missing = append(missing, m.name)
		}
	}
	if len(missing) > 0 {
		return "", "", "", "", fmt.Errorf("set %s (or use the alb router, which names them)", strings.Join(missing, ", "))
	}
	if lb, err = dimension(lb, "loadbalancer/", "app/", "loadBalancer"); err != nil {
		return
	}
	if legacy, err = dimension(legacy, "", "targetgroup/", "legacyTargetGroup"); err != nil {
		return
	}
	if newer, err = dimension(newer, "", "targetgroup/", "newTargetGroup"); err != nil {
		return
	}
	if legacy == newer {
		return "", "", "", "", errors.New("the legacy and new target groups are the same")
	}
	return region, lb, legacy, newer, nil
}

// dimension turns an ARN into CloudWatch's dimension value: the ARN's
// resource without strip ("loadbalancer/app/x/y" → "app/x/y"); a value
// that already starts with want is taken as it is.
func dimension(v, strip, want, field string) (string, error) {
	if strings.HasPrefix(v, "arn:") {
		a, err := arn.Parse(v)
		if err != nil || a.Service != "elasticloadbalancing" {
			return "", fmt.Errorf("%s %q is not an Elastic Load Balancing ARN", field, v)
		}
		v = strings.TrimPrefix(a.Resource, strip)
	}
	parts := strings.Split(v, "/")
	if !strings.HasPrefix(v, want) || len(parts) != 3 || parts[1] == "" || parts[2] == "" {
		return "", fmt.Errorf("%s %q is neither an ARN nor a dimension value such as %s<name>/<id>", field, v, want)
	}
	return v, nil
}

// validPeriod reports whether CloudWatch takes p as a period.
func validPeriod(p time.Duration) bool {
	s := int64(p / time.Second)
	return p%time.Second == 0 && (s == 1 || s == 5 || s == 10 || s == 30 || (s > 0 && s%60 == 0))
}

// New builds the provider.
func New(ctx context.Context, env metrics.Env, decode func(v any) error) (metrics.Provider, error) {
	var s Settings
	if err := decode(&s); err != nil {
		return nil, err
	}
	region, lb, legacy, newer, err := dims(s, env.Local)
	if err != nil {
		return nil, err
	}
	p := &Provider{region: region, namespace: cmp.Or(s.Namespace, Namespace), period: time.Minute, lb: lb,
		tg: map[metrics.Side]string{metrics.Legacy: legacy, metrics.New: newer}}
	if s.Period != "" {
		if p.period, err = time.ParseDuration(s.Period); err != nil || !validPeriod(p.period) {
			return nil, fmt.Errorf("period %q must be 1s, 5s, 10s, 30s or a multiple of 60s", s.Period)
		}
	}
	if s.MaxAttempts < 0 {
		return nil, errors.New("maxAttempts cannot be negative")
	}
	rc := alb.Retry{Region: region, Profile: s.Profile, MaxAttempts: s.MaxAttempts, MaxBackoff: 5 * time.Second, Timeout: 10 * time.Second}
	if rc.MaxAttempts == 0 {
		rc.MaxAttempts = 5
	}
	for _, d := range []struct {
		name, v string
		dst     *time.Duration
	}{{"maxBackoff", s.MaxBackoff, &rc.MaxBackoff}, {"timeout", s.Timeout, &rc.Timeout}} {
		if d.v == "" {
			continue
		}
		v, err := time.ParseDuration(d.v)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("%s %q is not a positive duration such as 5s", d.name, d.v)
		}
		*d.dst = v
	}
	if s.Endpoint != "" {
		u, err := url.Parse(s.Endpoint)
		if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
			return nil, fmt.Errorf("endpoint %q is not an http(s) URL", s.Endpoint)
		}
	}
	cfg, err := alb.LoadConfig(ctx, rc)
	if err != nil {
		return nil, err
	}
	if cfg.Region == "" {
		return nil, errors.New("no AWS region: set region, or AWS_REGION")
	}
	p.region = cfg.Region
	p.client = cw.NewFromConfig(cfg, func(o *cw.Options) {
		if s.Endpoint != "" {
			o.BaseEndpoint = aws.String(s.Endpoint)
		}
	})
	return p, nil
}

// window aligns [start, end) to the period: the start moves forward to a
// period boundary, so no period that began before the window (a previous
// step's traffic, a previous run's failures) is counted; the end moves
// forward too, so the period in progress counts with what it has so far.
func (p *Provider) window(start, end time.Time) (time.Time, time.Time) {
	ceil := func(t time.Time) time.Time {
		tr := t.Truncate(p.period)
		if tr.Before(t) {
			tr = tr.Add(p.period)
		}
		return tr
	}
	return ceil(start), ceil(end)
}

// The metric queries of one observation.
const (
	idRequests = "requests"
	idTarget5x = "target5xx"
	idConnErr  = "connerrors"
	idP50      = "p50"
	idP99      = "p99"
)

// Observe returns one side's requests, errors and latency percentiles over
// the query's window, aligned to the period. When the window is one valid
// CloudWatch period long, CloudWatch computes the percentiles over the
// whole window; otherwise the window is read period by period and the p99
// is the highest period's p99 (an upper bound) and the p50 the
// request-weighted mean of the periods' p50s. Latencies are nil:
// CloudWatch has no samples for the Mann–Whitney test.
func (p *Provider) Observe(ctx context.Context, q metrics.Query) (metrics.Observation, error) {
	tg, ok := p.tg[q.Side]
	if !ok {
		return metrics.NoData(), fmt.Errorf("unknown side %q", q.Side)
	}
	start, end := p.window(q.Start, q.End)
	if !end.After(start) {
		// Shorter than one period after alignment: nothing to read.
		return metrics.NoData(), nil
	}
	period := p.period
	if span := end.Sub(start); validPeriod(span) {
		period = span
	}
	res, err := p.query(ctx, tg, start, end, period)
	if err != nil {
		return metrics.NoData(), err
	}
	return combine(res), nil
}

// combine folds per-period values (keyed by query id) into an
// observation.
func combine(res map[string]map[int64]float64) metrics.Observation {
	o := metrics.NoData()
	reqs := res[idRequests]
	if len(reqs) == 0 {
		return o
	}
	o.Requests, o.Errors = 0, 0
	for _, v := range reqs {
		o.Requests += v
	}
	for _, id := range []string{idTarget5x, idConnErr} {
		for _, v := range res[id] {
			o.Errors += v
		}
	}
	if p99 := res[idP99]; len(p99) > 0 {
		o.P99 = math.Inf(-1)
		for _, v := range p99 {
			o.P99 = math.Max(o.P99, v)
		}
	}
	var sum, weight float64
	for t, v := range res[idP50] {
		w := reqs[t]
		if len(res[idP50]) == 1 {
			w = 1
		}
		sum += v * w
		weight += w
	}
	if weight > 0 {
		o.P50 = sum / weight
	}
	return o
}

func (p *Provider) queries(tg string, period time.Duration) []types.MetricDataQuery {
	d := []types.Dimension{{Name: aws.String("LoadBalancer"), Value: aws.String(p.lb)}, {Name: aws.String("TargetGroup"), Value: aws.String(tg)}}
	q := func(id, metric, stat string) types.MetricDataQuery {
		return types.MetricDataQuery{Id: aws.String(id), ReturnData: aws.Bool(true), MetricStat: &types.MetricStat{
			Metric: &types.Metric{Namespace: aws.String(p.namespace), MetricName: aws.String(metric), Dimensions: d},
			Period: aws.Int32(int32(period / time.Second)), Stat: aws.String(stat)}}
	}
	return []types.MetricDataQuery{
		q(idRequests, "RequestCount", "Sum"),
		q(idTarget5x, "HTTPCode_Target_5XX_Count", "Sum"),
		q(idConnErr, "TargetConnectionErrorCount", "Sum"),
		q(idP50, "TargetResponseTime", "p50"),
		q(idP99, "TargetResponseTime", "p99"),
	}
}

// query runs GetMetricData over every page and returns each query's
// values by period start (Unix seconds).
func (p *Provider) query(ctx context.Context, tg string, start, end time.Time, period time.Duration) (map[string]map[int64]float64, error) {
	in := &cw.GetMetricDataInput{StartTime: aws.Time(start), EndTime: aws.Time(end), MetricDataQueries: p.queries(tg, period),
		ScanBy: types.ScanByTimestampAscending}
	out := map[string]map[int64]float64{}
	pg := cw.NewGetMetricDataPaginator(p.client, in)
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			return nil, &alb.CallError{Op: "GetMetricData", Err: err}
		}
		for _, r := range page.MetricDataResults {
			switch r.StatusCode {
			case types.StatusCodeComplete, types.StatusCodePartialData, "":
			default:
				var msgs []string
				for _, m := range r.Messages {
					msgs = append(msgs, aws.ToString(m.Value))
				}
				return nil, fmt.Errorf("GetMetricData: query %s: %s %s", aws.ToString(r.Id), r.StatusCode, strings.Join(msgs, "; "))
			}
			id := aws.ToString(r.Id)
			if len(r.Timestamps) != len(r.Values) {
				return nil, fmt.Errorf("GetMetricData: query %s answered %d timestamps for %d values", id, len(r.Timestamps), len(r.Values))
			}
			m := out[id]
			if m == nil {
				m = map[int64]float64{}
				out[id] = m
			}
			for i, t := range r.Timestamps {
				if v := r.Values[i]; !math.IsNaN(v) && !math.IsInf(v, 0) {
					m[t.Unix()] = v
				}
			}
		}
	}
	return out, nil
}

// Check reads the last hour of both target groups' request counts: an
// error says what AWS refused, in one line, and a legacy target group
// without a single request in an hour (it takes all traffic before a
// shift) means the dimensions name the wrong load balancer or group.
func (p *Provider) Check(ctx context.Context) error {
	end := time.Now().Truncate(time.Minute)
	start := end.Add(-time.Hour)
	res, err := p.query(ctx, p.tg[metrics.Legacy], start, end, time.Hour)
	if err != nil {
		return err
	}
	if len(res[idRequests]) == 0 {
		return fmt.Errorf("no RequestCount in %s for LoadBalancer=%s TargetGroup=%s in the last hour, though legacy takes all traffic before the shift: check the load balancer and target group (region %s)", p.namespace, p.lb, p.tg[metrics.Legacy], p.region)
	}
	return nil
}
