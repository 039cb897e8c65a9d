// Package prometheus is the metrics provider that asks a Prometheus server
// (or anything serving its HTTP API: Thanos, Mimir, VictoriaMetrics) about
// each side of a shift, with PromQL templates for the service, the side,
// the side's name in the data plane and the window.
//
// Two query sets are built in: "embedded" for the embedded proxy's own
// metrics and "haproxy" for HAProxy's built-in exporter; users can write
// their own or override one query of a set. No data is never a pass: NaN,
// ±Inf and empty results are NaN in the Observation (the judge calls that
// inconclusive), and a query that fails or times out is an error, which
// the shift counts towards analysis.providerErrorLimit and names when it
// pauses.
//
// The plan's settings (docs/metrics.md):
//
//	metrics:
//	  type: prometheus
//	  address: http://prometheus.monitoring:9090
//	  preset: haproxy
//	  legacy: {backend: be_payments, servers: [legacy1, legacy2]}
//	  new:    {backend: be_payments, servers: [new1]}
//	  scrapeInterval: 15s
package prometheus

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/cutoverhq/cutover/metrics"
)

func init() { metrics.Register("prometheus", New) }

// Settings are the plan's metrics settings for type "prometheus".
type Settings struct {
	// Address is the base URL of the Prometheus HTTP API, with the path
	// prefix it is served under if any (".../prometheus" for Mimir).
	// Required.
	Address string `yaml:"address"`
	// Preset is a built-in query set: "embedded" or "haproxy". "" means
	// none: Queries must then give at least requests and errors.
	Preset string `yaml:"preset"`
	// Queries are the user's PromQL templates; each one set replaces the
	// preset's. The zero value keeps the preset's.
	Queries Queries `yaml:"queries"`
	// Labels are extra label matchers ANDed into every preset query (and
	// available to user queries as {{.Labels}}), to pick this service's
	// targets in a shared Prometheus: {job: payments-haproxy}. Empty means
	// none.
	Labels map[string]string `yaml:"labels"`
	// Legacy and New name each side in the data plane. Required for the
	// haproxy preset (the backend); optional otherwise.
	Legacy SideSettings `yaml:"legacy"`
	New    SideSettings `yaml:"new"`
	// ScrapeInterval is how often Prometheus scrapes the data plane; ""
	// means 15s. It only sets the default MinWindow.
	ScrapeInterval string `yaml:"scrapeInterval"`
	// MinWindow is the shortest window a query covers: a verdict's window
	// (and the one-second "recent" burst check) is widened to it, because
	// increase() needs at least two samples. "" means 4 × ScrapeInterval,
	// which survives one missed scrape.
	MinWindow string `yaml:"minWindow"`
	// Timeout bounds each query; "" means 5s. A query that takes longer is
	// a provider error.
	Timeout string `yaml:"timeout"`
	// BearerTokenEnv names an environment variable holding a bearer token;
	// BearerTokenFile a file holding one, read on every query (rotated
	// tokens are picked up). "" means none. At most one of the two.
	BearerTokenEnv  string `yaml:"bearerTokenEnv"`
	BearerTokenFile string `yaml:"bearerTokenFile"`
	// Username and PasswordEnv (the variable holding the password) set
	// HTTP basic auth; "" means none.
	Username    string `yaml:"username"`
	PasswordEnv string `yaml:"passwordEnv"`
	// Headers are sent with every query (X-Scope-OrgID for a Mimir or
	// Cortex tenant). Not for secrets: use the token or password settings.
	Headers map[string]string `yaml:"headers"`
	// CAFile is a PEM bundle that verifies an https address; "" means the
	// system roots.
	CAFile string `yaml:"caFile"`
}

// SideSettings name one side in the data plane.
type SideSettings struct {
	// Backend is the side's name in the data plane ({{.Backend}}): the
	// HAProxy backend holding its servers, a job, a service. "" means
	// none (required by the haproxy preset).
	Backend string `yaml:"backend"`
	// Servers are the side's server names ({{.Servers}}, a regex
	// alternation); empty means every server of Backend.
	Servers []string `yaml:"servers"`
}

// Provider queries Prometheus for one service's two sides.
type Provider struct {
	c         *client
	service   string
	preset    string
	labels    map[string]string
	queries   []*compiled // requests, errors, then p50 and p99 when set
	sides     map[metrics.Side]SideSettings
	minWindow time.Duration
}

var (
	_ metrics.Provider = (*Provider)(nil)
	_ metrics.Checker  = (*Provider)(nil)
)

// New builds the provider from the plan's settings.
func New(ctx context.Context, env metrics.Env, decode func(v any) error) (metrics.Provider, error) {
	var s Settings
	if err := decode(&s); err != nil {
		return nil, err
	}
	return NewFromSettings(env.Service, s)
}

// NewFromSettings builds the provider for service; every error names the
// setting that is wrong.
func NewFromSettings(service string, s Settings) (*Provider, error) {
	if strings.TrimSpace(s.Address) == "" {
		return nil, errors.New("address: the Prometheus URL is required (http://prometheus:9090)")
	}
	base, err := url.Parse(strings.TrimSpace(s.Address))
	if err != nil || base.Host == "" || (base.Scheme != "http" && base.Scheme != "https") {
		return nil, fmt.Errorf("address: %q is not an http(s) URL with a host", s.Address)
	}
	if base.User != nil {
		return nil, errors.New("address: put no credentials in the URL; use username and passwordEnv, or bearerTokenEnv")
	}
	if base.RawQuery != "" || base.Fragment != "" {
		return nil, fmt.Errorf("address: %q has a query or fragment; give the API's base URL", s.Address)
	}
	if strings.HasSuffix(strings.TrimRight(base.Path, "/"), "/api/v1") {
		return nil, fmt.Errorf("address: %q ends in /api/v1; give the base URL without it", s.Address)
	}

	var qs Queries
	if s.Preset != "" {
		p, ok := Presets[s.Preset]
		if !ok {
			return nil, fmt.Errorf("preset: unknown query set %q (known: %s)", s.Preset, presetNames())
		}
		qs = p
	}
	for _, o := range []struct {
		dst *string
		v   string
	}{{&qs.Requests, s.Queries.Requests}, {&qs.Errors, s.Queries.Errors}, {&qs.P50, s.Queries.P50}, {&qs.P99, s.Queries.P99}} {
		if strings.TrimSpace(o.v) != "" {
			*o.dst = o.v
		}
	}
	if strings.TrimSpace(qs.Requests) == "" || strings.TrimSpace(qs.Errors) == "" {
		return nil, fmt.Errorf("queries: requests and errors are required without a preset (%s)", presetNames())
	}
	p := &Provider{service: service, preset: s.Preset, labels: s.Labels,
		sides: map[metrics.Side]SideSettings{metrics.Legacy: s.Legacy, metrics.New: s.New}}
	for _, q := range []struct{ name, text string }{{"requests", qs.Requests}, {"errors", qs.Errors}, {"p50", qs.P50}, {"p99", qs.P99}} {
		if strings.TrimSpace(q.text) == "" {
			continue
		}
		c, err := compile(q.name, q.text)
		if err != nil {
			return nil, err
		}
		p.queries = append(p.queries, c)
	}
	for k := range s.Labels {
		if !labelName.MatchString(k) {
			return nil, fmt.Errorf("labels: %q is not a Prometheus label name", k)
		}
	}
	if s.Preset == "haproxy" {
		for _, side := range []struct {
			name string
			s    SideSettings
		}{{"legacy", s.Legacy}, {"new", s.New}} {
			if side.s.Backend == "" {
				return nil, fmt.Errorf("%s.backend: the haproxy preset needs the HAProxy backend of each side (the part before the slash in %s addresses)", side.name, side.name)
			}
		}
	}
	for _, side := range []struct {
		name string
		s    SideSettings
	}{{"legacy", s.Legacy}, {"new", s.New}} {
		for i, srv := range side.s.Servers {
			if strings.TrimSpace(srv) == "" {
				return nil, fmt.Errorf("%s.servers[%d]: empty server name", side.name, i)
			}
		}
	}

	scrape, err := duration("scrapeInterval", s.ScrapeInterval, 15*time.Second)
	if err != nil {
		return nil, err
	}
	p.minWindow, err = duration("minWindow", s.MinWindow, 4*scrape)
	if err != nil {
		return nil, err
	}
	timeout, err := duration("timeout", s.Timeout, 5*time.Second)
	if err != nil {
		return nil, err
	}

	c := &client{base: base, timeout: timeout, headers: s.Headers, tokenFile: s.BearerTokenFile, username: s.Username}
	for k := range s.Headers {
		if strings.EqualFold(k, "Authorization") {
			return nil, errors.New("headers: Authorization is not a header to write in a plan; use bearerTokenEnv, bearerTokenFile or username and passwordEnv")
		}
	}
	auths := 0
	for _, a := range []string{s.BearerTokenEnv, s.BearerTokenFile, s.Username} {
		if a != "" {
			auths++
		}
	}
	if auths > 1 {
		return nil, errors.New("bearerTokenEnv, bearerTokenFile and username: set at most one")
	}
	if s.BearerTokenEnv != "" {
		c.token = strings.TrimSpace(os.Getenv(s.BearerTokenEnv))
		if c.token == "" {
			return nil, fmt.Errorf("bearerTokenEnv: $%s is not set or empty", s.BearerTokenEnv)
		}
	}
	if s.BearerTokenFile != "" {
		if _, err := os.Stat(s.BearerTokenFile); err != nil {
			return nil, fmt.Errorf("bearerTokenFile: %w", err)
		}
	}
	if s.PasswordEnv != "" && s.Username == "" {
		return nil, errors.New("passwordEnv: set username too")
	}
	if s.Username != "" {
		if s.PasswordEnv == "" {
			return nil, errors.New("username: set passwordEnv, the variable holding the password")
		}
		c.password = os.Getenv(s.PasswordEnv)
		if c.password == "" {
			return nil, fmt.Errorf("passwordEnv: $%s is not set or empty", s.PasswordEnv)
		}
	}
	tr, err := newTransport(s.CAFile)
	if err != nil {
		return nil, err
	}
	c.hc = &http.Client{Transport: tr}
	p.c = c
	return p, nil
}

func duration(name, v string, def time.Duration) (time.Duration, error) {
	if strings.TrimSpace(v) == "" {
		return def, nil
	}
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s: %q is not a positive duration such as 15s", name, v)
	}
	if d < time.Millisecond {
		return 0, fmt.Errorf("%s: %q is below Prometheus' resolution of 1ms", name, v)
	}
	return d, nil
}

// MinWindow returns the shortest window the provider queries.
func (p *Provider) MinWindow() time.Duration { return p.minWindow }

func (p *Provider) vars(side metrics.Side, window time.Duration) Vars {
	ss := p.sides[side]
	return Vars{
		Service: quote(p.service),
		Side:    quote(string(side)),
		Backend: quote(ss.Backend),
		Servers: serverRegex(ss.Servers),
		Window:  promDuration(window),
		Labels:  labelMatchers(p.labels),
	}
}

// QueryError says which query failed, for which side, and why.
type QueryError struct {
	// Name is "requests", "errors", "p50" or "p99".
	Name string
	// Side is the side asked about.
	Side metrics.Side
	// Query is the PromQL sent (the rendered template).
	Query string
	// Err is what went wrong: an *APIError, ErrTimeout, ErrUnauthorized
	// or a transport error.
	Err error
}

func (e *QueryError) Error() string {
	return fmt.Sprintf("prometheus %s query for %s: %v (query: %s)", e.Name, e.Side, e.Err, e.Query)
}

func (e *QueryError) Unwrap() error { return e.Err }

// Observe asks Prometheus for one side over the query's window, widened
// to MinWindow, evaluated at the window's end. The queries run in
// parallel; any failure fails the observation.
func (p *Provider) Observe(ctx context.Context, q metrics.Query) (metrics.Observation, error) {
	if q.Side != metrics.Legacy && q.Side != metrics.New {
		return metrics.NoData(), fmt.Errorf("unknown side %q", q.Side)
	}
	end := q.End
	if end.IsZero() {
		end = time.Now()
	}
	window := max(end.Sub(q.Start), p.minWindow)
	if q.Start.IsZero() {
		window = p.minWindow
	}
	res, err := p.run(ctx, q.Side, window, end)
	o := metrics.NoData()
	if err != nil {
		return o, err
	}
	for i, c := range p.queries {
		v := res[i].Value
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			// Unknown, never a pass. Neither counts nor latencies can
			// be negative: such a query measures something else.
			continue
		}
		switch c.name {
		case "requests":
			o.Requests = v
		case "errors":
			o.Errors = v
		case "p50":
			o.P50 = v
		case "p99":
			o.P99 = v
		}
	}
	// increase() extrapolates, and HAProxy counts some retries twice:
	// more errors than requests means every request failed.
	if o.Errors > o.Requests {
		o.Errors = o.Requests
	}
	return o, nil
}

// run renders and runs every query for one side.
func (p *Provider) run(ctx context.Context, side metrics.Side, window time.Duration, at time.Time) ([]result, error) {
	v := p.vars(side, window)
	res := make([]result, len(p.queries))
	errs := make([]error, len(p.queries))
	var wg sync.WaitGroup
	for i, c := range p.queries {
		text, err := c.render(v)
		if err != nil {
			errs[i] = &QueryError{Name: c.name, Side: side, Query: c.text, Err: err}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := p.c.query(ctx, text, at)
			if err != nil {
				err = &QueryError{Name: c.name, Side: side, Query: text, Err: err}
			}
			res[i], errs[i] = r, err
		}()
	}
	wg.Wait()
	return res, joinOneLine(errs)
}

// joinOneLine joins errors with "; " so that they stay on one line (the
// shift's pause reason, a line of `shift validate`); errors.Is and
// errors.As still see every one.
func joinOneLine(errs []error) error {
	var out []error
	for _, e := range errs {
		if e != nil {
			out = append(out, e)
		}
	}
	switch len(out) {
	case 0:
		return nil
	case 1:
		return out[0]
	}
	// Several queries failing the same way (Prometheus down) say it once.
	if first := rootCause(out[0]); first != "" {
		same := true
		for _, e := range out[1:] {
			if rootCause(e) != first {
				same = false
				break
			}
		}
		if same {
			var qe *QueryError
			errors.As(out[0], &qe)
			return &multiError{errs: out, msg: fmt.Sprintf("prometheus %s queries for %s: %s", names(out), qe.Side, first)}
		}
	}
	var parts []string
	for _, e := range out {
		parts = append(parts, e.Error())
	}
	return &multiError{errs: out, msg: strings.Join(parts, "; ")}
}

// rootCause is the message of a query error's cause when it is not about
// the query (Prometheus unreachable, credentials refused, timeouts); ""
// when the cause is the query itself.
func rootCause(err error) string {
	var qe *QueryError
	if !errors.As(err, &qe) {
		return ""
	}
	var ae *APIError
	if errors.As(qe.Err, &ae) && !errors.Is(ae, ErrTimeout) {
		return ""
	}
	return qe.Err.Error()
}

func names(errs []error) string {
	var n []string
	for _, e := range errs {
		var qe *QueryError
		if errors.As(e, &qe) {
			n = append(n, qe.Name)
		}
	}
	return strings.Join(n, ", ")
}

type multiError struct {
	errs []error
	msg  string
}

func (m *multiError) Error() string   { return m.msg }
func (m *multiError) Unwrap() []error { return m.errs }

// checkWindow is the window Check's queries cover: long enough to find
// traffic on a quiet service.
const checkWindow = time.Minute

// Check runs every query once for both sides and says, in one line, what
// is wrong: Prometheus unreachable, credentials refused, a query
// Prometheus refuses, or one that returns nothing (a target not scraped,
// labels that match nothing). The new side may have no series before it
// takes traffic, except under a preset, whose series exist from the start.
func (p *Provider) Check(ctx context.Context) error {
	now := time.Now()
	window := max(checkWindow, p.minWindow)
	var problems []string
	var causes []error
	for _, side := range []metrics.Side{metrics.Legacy, metrics.New} {
		res, err := p.run(ctx, side, window, now)
		if err != nil {
			var ae *APIError
			if !errors.As(err, &ae) || errors.Is(err, ErrTimeout) {
				// Unreachable, refused, timed out: the other side would
				// say the same.
				return &multiError{errs: []error{err}, msg: oneLine(err.Error())}
			}
			problems = append(problems, oneLine(err.Error()))
			causes = append(causes, err)
			continue
		}
		for i, c := range p.queries {
			if !res[i].Empty {
				continue
			}
			if side == metrics.New && p.preset == "" {
				continue
			}
			text, _ := c.render(p.vars(side, window))
			msg := fmt.Sprintf("prometheus %s query for %s returns no series", c.name, side)
			if c.name == "requests" {
				msg += p.whyEmpty(ctx, now)
			}
			if c.name == "errors" && p.preset == "" {
				msg += " (when the error series may not exist yet, end the query with `or vector(0)`)"
			}
			problems = append(problems, fmt.Sprintf("%s (query: %s)", msg, text))
		}
	}
	if len(problems) == 0 {
		return nil
	}
	return &multiError{errs: causes, msg: strings.Join(problems, "; ")}
}

// whyEmpty looks for the reason a preset's requests query is empty: no
// target matching the labels, targets down, or targets up that export
// nothing under the expected name.
func (p *Provider) whyEmpty(ctx context.Context, now time.Time) string {
	sel := strings.TrimPrefix(labelMatchers(p.labels), ",")
	if sel != "" {
		r, err := p.c.query(ctx, "count(up{"+sel+"})", now)
		if err == nil && r.Empty {
			return fmt.Sprintf(": no scrape target matches {%s}", sel)
		}
		r, err = p.c.query(ctx, "count(up{"+sel+"} == 0)", now)
		if err == nil && !r.Empty && r.Value > 0 {
			return fmt.Sprintf(": %v scrape target(s) matching {%s} are down", r.Value, sel)
		}
	}
	metric, ok := presetMetric[p.preset]
	if !ok {
		return ": check that the target is scraped and the labels match"
	}
	r, err := p.c.query(ctx, "count("+metric+"{"+sel+"})", now)
	if err == nil && r.Empty {
		return fmt.Sprintf(": no target exports %s{%s}; is it scraped?", metric, sel)
	}
	if p.preset == "haproxy" {
		return ": HAProxy is scraped, but not the backend and servers named in the settings"
	}
	return ": the targets are scraped, but not with these labels"
}
