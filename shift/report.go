package shift

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"math"
	"strings"
	"time"

	"github.com/cutoverhq/cutover/metrics"
	"github.com/cutoverhq/cutover/plan"
)

// Report is the end-of-shift report: a table per step comparing both
// sides, every decision, and the rollback times.
type Report struct {
	Plan   *plan.Plan
	State  State
	Steps  []StepSummary
	Events []TimedEvent
	// Rollbacks are measured rollback times, if the caller measured them
	// (the demo does: from the first failing request to 100 % legacy).
	Rollbacks []RollbackTiming
	// Extra lines for the summary (the demo's request counts).
	Extra [][2]string
}

// RollbackTiming is one measured rollback.
type RollbackTiming struct {
	FirstFailure time.Time     `json:"firstFailure"`
	Confirmed    time.Time     `json:"confirmed"`
	Took         time.Duration `json:"took"`
	Reason       string        `json:"reason"`
}

// NewReport builds a report from a runner's history.
func NewReport(p *plan.Plan, s State, h *History) *Report {
	return &Report{Plan: p, State: s, Steps: h.Steps(), Events: h.Events()}
}

// Markdown renders the report as Markdown.
func (r *Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Shift report: %s\n\n", r.Plan.Metadata.Name)
	fmt.Fprintf(&b, "| | |\n|---|---|\n")
	for _, kv := range r.summary() {
		fmt.Fprintf(&b, "| %s | %s |\n", kv[0], kv[1])
	}
	b.WriteString("\n## Steps\n\n")
	b.WriteString("| step | new weight | held | outcome | requests legacy / new | error rate legacy / new | p99 legacy | p99 new | p99 change |\n")
	b.WriteString("|---:|---:|---|---|---|---|---:|---:|---:|\n")
	for _, st := range r.Steps {
		held := "-"
		if !st.Ended.IsZero() {
			held = st.Ended.Sub(st.Started).Round(time.Millisecond).String()
		}
		outcome := st.Outcome
		if outcome == "" {
			outcome = "running"
		}
		fmt.Fprintf(&b, "| %d | %d%% | %s | %s | %s / %s | %s / %s | %s | %s | %s |\n",
			st.Step+1, st.Weight, held, outcome,
			count(st.Legacy.Requests), count(st.New.Requests),
			rate(st.Legacy), rate(st.New),
			ms(st.Legacy.P99), ms(st.New.P99), delta(st.New.P99, st.Legacy.P99))
	}
	if len(r.Rollbacks) > 0 {
		b.WriteString("\n## Rollbacks\n\n| first failing request | 100 % legacy confirmed | took | why |\n|---|---|---:|---|\n")
		for _, rb := range r.Rollbacks {
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", rb.FirstFailure.UTC().Format("15:04:05.000"), rb.Confirmed.UTC().Format("15:04:05.000"), rb.Took.Round(time.Millisecond), mdCell(rb.Reason))
		}
	}
	b.WriteString("\n## Decisions\n\n| time (UTC) | step | event | by | what |\n|---|---:|---|---|---|\n")
	for _, e := range r.Events {
		actor := e.Event.Actor
		if actor == "" {
			actor = "cutover"
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s |\n", e.Time.UTC().Format("15:04:05.000"), e.Event.Step+1, e.Event.Type, actor, mdCell(e.Event.Message))
	}
	return b.String()
}

func (r *Report) summary() [][2]string {
	out := [][2]string{
		{"service", r.Plan.Spec.Service},
		{"plan digest", r.Plan.Digest[:min(12, len(r.Plan.Digest))]},
		{"outcome", string(r.State.Phase) + reasonSuffix(r.State.Reason)},
		{"final weight", fmt.Sprintf("new %d%%", r.State.Weight)},
		{"started", r.State.Started.UTC().Format(time.RFC3339)},
		{"ended", r.State.Updated.UTC().Format(time.RFC3339)},
	}
	return append(out, r.Extra...)
}

func reasonSuffix(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}

//go:embed report.html.tmpl
var reportHTML string

var reportTmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"count": count, "rate": rate, "ms": ms, "delta": delta,
	"held": func(st StepSummary) string {
		if st.Ended.IsZero() {
			return "-"
		}
		return st.Ended.Sub(st.Started).Round(time.Millisecond).String()
	},
	"clock": func(t time.Time) string { return t.UTC().Format("15:04:05.000") },
	"plus1": func(i int) int { return i + 1 },
	"dur":   func(d time.Duration) string { return d.Round(time.Millisecond).String() },
	"actor": func(a string) string {
		if a == "" {
			return "cutover"
		}
		return a
	},
}).Parse(reportHTML))

// HTML renders the report as a self-contained HTML page.
func (r *Report) HTML() ([]byte, error) {
	var buf bytes.Buffer
	err := reportTmpl.Execute(&buf, struct {
		*Report
		Summary [][2]string
	}{r, r.summary()})
	return buf.Bytes(), err
}

func count(f float64) string {
	if math.IsNaN(f) {
		return "n/a"
	}
	return thousands(int64(f))
}

func thousands(n int64) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + thousands(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func rate(o metrics.Observation) string {
	r := o.ErrorRate()
	if math.IsNaN(r) {
		return "n/a"
	}
	return fmt.Sprintf("%.2f%%", r*100)
}

// ms formats seconds as "1,240 ms" (or "0.85 ms" below 10 ms).
func ms(sec float64) string {
	if math.IsNaN(sec) {
		return "n/a"
	}
	v := sec * 1000
	if v < 10 {
		return fmt.Sprintf("%.2f ms", v)
	}
	return thousands(int64(math.Round(v))) + " ms"
}

// delta formats the change from base to v as "−28 %".
func delta(v, base float64) string {
	if math.IsNaN(v) || math.IsNaN(base) || base == 0 {
		return "n/a"
	}
	d := (v/base - 1) * 100
	if math.Round(d) < 0 {
		return fmt.Sprintf("−%.0f %%", -d)
	}
	return fmt.Sprintf("+%.0f %%", d)
}

func mdCell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}
