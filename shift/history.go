package shift

import (
	"context"
	"sync"
	"time"

	"github.com/cutoverhq/cutover/judge"
	"github.com/cutoverhq/cutover/metrics"
)

// History is an Observer that remembers a shift's events, a bounded series
// of samples for charts, and a summary of every step for the report.
type History struct {
	// MaxSamples bounds the sample series; zero means 7200.
	MaxSamples int

	mu      sync.Mutex
	events  []TimedEvent
	samples []Sample
	steps   []StepSummary
	subs    map[chan TimedEvent]struct{}
}

var _ Observer = (*History)(nil)

// TimedEvent is an event with the time it happened and the state after it.
type TimedEvent struct {
	Time  time.Time `json:"time"`
	Event Event     `json:"event"`
	Phase Phase     `json:"phase"`
}

// StepSummary is what the report says about one step (or one visit of a
// step: a retried step appears twice).
type StepSummary struct {
	Step    int       `json:"step"`
	Weight  int       `json:"weight"`
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended,omitzero"`
	// Outcome: "passed", "rolled back", "aborted", "promoted", "completed"
	// or "" while running.
	Outcome string `json:"outcome"`
	// Legacy and New are the last judged window of the step.
	Legacy metrics.Observation `json:"legacy"`
	New    metrics.Observation `json:"new"`
	// Verdict is the last verdict of the step.
	Verdict *judge.Verdict `json:"verdict,omitempty"`
	// Analyses counts the verdicts of the step by result.
	Analyses map[judge.Result]int `json:"analyses"`
}

// OnEvent implements Observer.
func (h *History) OnEvent(ctx context.Context, e Event, s State) {
	h.mu.Lock()
	defer h.mu.Unlock()
	te := TimedEvent{Time: s.Updated, Event: e, Phase: s.Phase}
	if te.Time.IsZero() {
		te.Time = time.Now()
	}
	h.events = append(h.events, te)
	cur := h.current()
	switch e.Type {
	case "step-started":
		h.steps = append(h.steps, StepSummary{Step: e.Step, Weight: s.Target, Started: te.Time, Analyses: map[judge.Result]int{},
			Legacy: metrics.NoData(), New: metrics.NoData()})
	case "step-passed":
		h.end(cur, te.Time, "passed")
	case "promoted":
		h.end(cur, te.Time, "promoted")
	case "rollback":
		h.end(cur, te.Time, "rolled back")
	case "aborted":
		h.end(cur, te.Time, "aborted")
	case "completed":
		h.end(cur, te.Time, "completed")
	}
	for ch := range h.subs {
		select {
		case ch <- te:
		default: // a slow subscriber misses events rather than stall the shift
		}
	}
}

func (h *History) current() *StepSummary {
	if len(h.steps) == 0 {
		return nil
	}
	return &h.steps[len(h.steps)-1]
}

func (h *History) end(st *StepSummary, at time.Time, outcome string) {
	if st == nil || st.Outcome != "" {
		return
	}
	st.Ended = at
	st.Outcome = outcome
}

// OnSample implements Observer.
func (h *History) OnSample(ctx context.Context, smp Sample) {
	h.mu.Lock()
	defer h.mu.Unlock()
	max := h.MaxSamples
	if max == 0 {
		max = 7200
	}
	if len(h.samples) >= max {
		// Keep every other old sample: the chart keeps its whole span at
		// half the resolution.
		kept := h.samples[:0]
		for i := 0; i < len(h.samples); i += 2 {
			kept = append(kept, h.samples[i])
		}
		h.samples = kept
	}
	h.samples = append(h.samples, smp)
	if st := h.current(); st != nil && st.Outcome == "" && smp.Verdict != nil {
		st.Legacy, st.New, st.Verdict = smp.Legacy, smp.New, smp.Verdict
		st.Analyses[smp.Verdict.Result]++
	}
}

// Events returns the events so far.
func (h *History) Events() []TimedEvent {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]TimedEvent(nil), h.events...)
}

// Samples returns the sample series.
func (h *History) Samples() []Sample {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Sample(nil), h.samples...)
}

// Steps returns the step summaries.
func (h *History) Steps() []StepSummary {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]StepSummary, len(h.steps))
	copy(out, h.steps)
	return out
}

// Subscribe returns a channel of events from now on, and a cancel func.
func (h *History) Subscribe() (<-chan TimedEvent, func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.subs == nil {
		h.subs = map[chan TimedEvent]struct{}{}
	}
	ch := make(chan TimedEvent, 64)
	h.subs[ch] = struct{}{}
	return ch, func() {
		h.mu.Lock()
		delete(h.subs, ch)
		h.mu.Unlock()
	}
}
