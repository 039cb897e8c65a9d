package cli

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/cutoverhq/cutover/metrics"
	"github.com/cutoverhq/cutover/plan"
	"github.com/cutoverhq/cutover/shift"
)

// display shows a running shift in the terminal: one line per event, and a
// status block (step, weights, per-side p50/p99/error rate, what the engine
// waits for) redrawn in place on a terminal, or printed every few seconds
// when the output is a file or a pipe.
type display struct {
	w        io.Writer
	p        *plan.Plan
	runner   *shift.Runner
	tty      bool
	interval time.Duration

	mu       sync.Mutex
	drawn    int // lines of the status block on screen
	lastDraw time.Time
}

var _ shift.Observer = (*display)(nil)

func newDisplay(w io.Writer, p *plan.Plan, r *shift.Runner) *display {
	d := &display{w: w, p: p, runner: r, interval: 5 * time.Second}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 && os.Getenv("TERM") != "dumb" {
			d.tty = true
			d.interval = 250 * time.Millisecond
		}
	}
	return d
}

func (d *display) OnEvent(ctx context.Context, e shift.Event, s shift.State) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.clear()
	who := ""
	if e.Actor != "" {
		who = " [" + e.Actor + "]"
	}
	fmt.Fprintf(d.w, "%s  %-16s %s%s\n", time.Now().Format("15:04:05.000"), e.Type, e.Message, who)
	if d.tty {
		d.draw(s, d.runner.LastSample())
	}
}

func (d *display) OnSample(ctx context.Context, smp shift.Sample) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if time.Since(d.lastDraw) < d.interval {
		return
	}
	d.clear()
	d.draw(d.runner.State(), &smp)
}

// clear erases the status block on a terminal.
func (d *display) clear() {
	if d.tty && d.drawn > 0 {
		fmt.Fprintf(d.w, "\x1b[%dA\x1b[J", d.drawn)
	}
	d.drawn = 0
}

func (d *display) draw(s shift.State, smp *shift.Sample) {
	d.lastDraw = time.Now()
	lines := statusLines(d.p, s, smp, time.Now())
	if !d.tty {
		// In a log, one compact line.
		fmt.Fprintf(d.w, "%s  %-16s %s\n", time.Now().Format("15:04:05.000"), "status", strings.Join(lines, " | "))
		return
	}
	for _, l := range lines {
		fmt.Fprintln(d.w, "  "+l)
	}
	d.drawn = len(lines)
}

func statusLines(p *plan.Plan, s shift.State, smp *shift.Sample, now time.Time) []string {
	step := "-"
	if s.Step >= 0 {
		step = fmt.Sprintf("%d/%d", s.Step+1, len(p.Spec.Steps))
	}
	lines := []string{
		fmt.Sprintf("%s  step %s  weights legacy %d%% / new %d%%  waiting for: %s", s.Phase, step, 100-s.Weight, s.Weight, shift.Waiting(p, s, now)),
	}
	if smp != nil && smp.Verdict != nil {
		lines = append(lines,
			sideLine("legacy", smp.Legacy),
			sideLine("new", smp.New),
			fmt.Sprintf("verdict %s: %s", smp.Verdict.Result, smp.Verdict.Reason))
	} else if smp != nil && smp.Error != "" {
		lines = append(lines, "metrics error: "+smp.Error)
	}
	return lines
}

func sideLine(name string, o metrics.Observation) string {
	return fmt.Sprintf("%-6s %8s req  p50 %9s  p99 %9s  errors %s", name, num0(o.Requests), msec(o.P50), msec(o.P99), errRate(o))
}

func num0(f float64) string {
	if math.IsNaN(f) {
		return "n/a"
	}
	return fmt.Sprintf("%.0f", f)
}

func msec(sec float64) string {
	if math.IsNaN(sec) {
		return "n/a"
	}
	return fmt.Sprintf("%.2fms", sec*1000)
}

func errRate(o metrics.Observation) string {
	r := o.ErrorRate()
	if math.IsNaN(r) {
		return "n/a"
	}
	return fmt.Sprintf("%.2f%%", r*100)
}
