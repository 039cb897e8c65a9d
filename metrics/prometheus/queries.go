package prometheus

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"text/template"
	"text/template/parse"
)

// Queries are PromQL templates, one per measurement. Each must return one
// series (aggregate with sum, max, …) or a scalar. "" in a preset's
// override keeps the preset's query.
type Queries struct {
	// Requests answered or failed on the side in the window (a count, not
	// a rate: increase(...[{{.Window}}])).
	Requests string `yaml:"requests"`
	// Errors among them: 5xx answers and transport failures.
	Errors string `yaml:"errors"`
	// P50 and P99 latency in seconds; "" means unknown (NaN), which makes
	// latency SLOs inconclusive.
	P50 string `yaml:"p50"`
	P99 string `yaml:"p99"`
}

// Vars are what a query template can use. Every string is escaped for use
// inside a double-quoted PromQL string ("…"), which is where label values
// go.
type Vars struct {
	// Service is the plan's spec.service.
	Service string
	// Side is "legacy" or "new".
	Side string
	// Backend is the side's name in the data plane (the setting
	// legacy.backend or new.backend): an HAProxy backend, a job, a
	// Kubernetes service; "" when not set.
	Backend string
	// Servers matches the side's servers (legacy.servers / new.servers) as
	// a regular expression for =~ ("legacy1|legacy2"); ".+" when none are
	// set.
	Servers string
	// Window is the span the verdict looks at, as a Prometheus duration
	// ("30s", "1500ms"): never less than the provider's minimum window.
	Window string
	// Labels are the setting labels as extra matchers with a leading
	// comma (`,job="haproxy",env="prod"`), to put last inside a selector's
	// braces; "" when none are set.
	Labels string
}

// Presets are the built-in query sets, by name.
var Presets = map[string]Queries{
	// The embedded proxy's own metrics (proxy/collector.go), scraped from
	// its admin /metrics: attempts and failures by side, and a latency
	// histogram from a request's arrival to its upstream's response head.
	"embedded": {
		Requests: `sum(increase(cutover_proxy_requests_total{side="{{.Side}}"{{.Labels}}}[{{.Window}}]))`,
		Errors:   `sum(increase(cutover_proxy_errors_total{side="{{.Side}}"{{.Labels}}}[{{.Window}}]))`,
		P50:      `histogram_quantile(0.5, sum by (le) (increase(cutover_proxy_latency_seconds_bucket{side="{{.Side}}"{{.Labels}}}[{{.Window}}])))`,
		P99:      `histogram_quantile(0.99, sum by (le) (increase(cutover_proxy_latency_seconds_bucket{side="{{.Side}}"{{.Labels}}}[{{.Window}}])))`,
	},
	// HAProxy's built-in exporter (`http-request use-service
	// prometheus-exporter`), per server of the side's backend.
	//
	// Requests are the servers' sessions: every attempt, retries included.
	// Errors are the attempts that failed: 5xx answers, connection and
	// response errors, retries and redispatches (failures the client never
	// saw, as the embedded proxy counts them too).
	//
	// HAProxy 2.6 has no latency histogram: it exports each server's mean
	// response time over its last 1024 requests. P50 is that mean averaged
	// over the window and P99 its highest value in the window: latency
	// SLOs then limit the mean, not a percentile (docs/metrics.md).
	"haproxy": {
		Requests: `sum(increase(haproxy_server_sessions_total{proxy="{{.Backend}}",server=~"{{.Servers}}"{{.Labels}}}[{{.Window}}]))`,
		Errors: `sum(increase(haproxy_server_http_responses_total{proxy="{{.Backend}}",server=~"{{.Servers}}",code="5xx"{{.Labels}}}[{{.Window}}]))` +
			` + sum(increase(haproxy_server_connection_errors_total{proxy="{{.Backend}}",server=~"{{.Servers}}"{{.Labels}}}[{{.Window}}]))` +
			` + sum(increase(haproxy_server_response_errors_total{proxy="{{.Backend}}",server=~"{{.Servers}}"{{.Labels}}}[{{.Window}}]))` +
			` + sum(increase(haproxy_server_retry_warnings_total{proxy="{{.Backend}}",server=~"{{.Servers}}"{{.Labels}}}[{{.Window}}]))` +
			` + sum(increase(haproxy_server_redispatch_warnings_total{proxy="{{.Backend}}",server=~"{{.Servers}}"{{.Labels}}}[{{.Window}}]))`,
		P50: `avg(avg_over_time(haproxy_server_response_time_average_seconds{proxy="{{.Backend}}",server=~"{{.Servers}}"{{.Labels}}}[{{.Window}}]))`,
		P99: `max(max_over_time(haproxy_server_response_time_average_seconds{proxy="{{.Backend}}",server=~"{{.Servers}}"{{.Labels}}}[{{.Window}}]))`,
	},
}

// presetMetric is a metric every series of the preset's requests query
// comes from: when that query returns nothing, Check says whether any
// target exports it at all.
var presetMetric = map[string]string{
	"embedded": "cutover_proxy_requests_total",
	"haproxy":  "haproxy_server_sessions_total",
}

func presetNames() string {
	var n []string
	for k := range Presets {
		n = append(n, k)
	}
	sort.Strings(n)
	return strings.Join(n, ", ")
}

// compiled is one parsed query.
type compiled struct {
	name string // "requests", "errors", "p50", "p99"
	text string
	tmpl *template.Template
}

func compile(name, text string) (*compiled, error) {
	t, err := template.New(name).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, fmt.Errorf("queries.%s: %s", name, oneLine(strings.TrimPrefix(err.Error(), "template: ")))
	}
	if len(t.Templates()) > 1 {
		return nil, fmt.Errorf("queries.%s: {{define}} and {{block}} are not supported in a query", name)
	}
	if err := plainTemplate(t.Tree.Root); err != nil {
		return nil, fmt.Errorf("queries.%s: %w", name, err)
	}
	c := &compiled{name: name, text: text, tmpl: t}
	// Execute once now, so that {{.Nonsense}} is a settings error at
	// validation, not a provider error in the middle of a shift.
	if _, err := c.render(Vars{Service: "svc", Side: "legacy", Backend: "be", Servers: ".+", Window: "30s"}); err != nil {
		return nil, fmt.Errorf("queries.%s: %w", name, err)
	}
	return c, nil
}

// plainTemplate refuses what a query has no use for and what could make
// rendering loop for long: {{range}} (over an integer it runs that many
// times) and {{template}} (it may recurse).
func plainTemplate(n parse.Node) error {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return nil
		}
		for _, c := range n.Nodes {
			if err := plainTemplate(c); err != nil {
				return err
			}
		}
	case *parse.IfNode:
		return plainBranch(&n.BranchNode)
	case *parse.WithNode:
		return plainBranch(&n.BranchNode)
	case *parse.RangeNode:
		return errors.New("{{range}} is not supported in a query")
	case *parse.TemplateNode:
		return errors.New("{{template}} is not supported in a query")
	}
	return nil
}

func plainBranch(b *parse.BranchNode) error {
	if err := plainTemplate(b.List); err != nil {
		return err
	}
	return plainTemplate(b.ElseList)
}

func (c *compiled) render(v Vars) (string, error) {
	var b strings.Builder
	if err := c.tmpl.Execute(&b, v); err != nil {
		return "", fmt.Errorf("%s", oneLine(strings.TrimPrefix(err.Error(), "template: ")))
	}
	return b.String(), nil
}

// quote escapes s for use inside a double-quoted PromQL string.
func quote(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}

// serverRegex matches exactly the given server names.
func serverRegex(servers []string) string {
	if len(servers) == 0 {
		return quote(".+")
	}
	parts := make([]string, len(servers))
	for i, s := range servers {
		parts[i] = regexp.QuoteMeta(s)
	}
	return quote(strings.Join(parts, "|"))
}

// labelMatchers renders labels as `,k="v"` matchers in a stable order.
func labelMatchers(labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, `,%s="%s"`, k, quote(labels[k]))
	}
	return b.String()
}

// labelName is what Prometheus accepts as a label name.
var labelName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
