package shift

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/cutoverhq/cutover/internal/admin"
	"github.com/cutoverhq/cutover/plan"
)

// Status is what GET /v1/shift answers.
type Status struct {
	Plan    PlanInfo      `json:"plan"`
	State   State         `json:"state"`
	Sample  *Sample       `json:"sample,omitempty"`
	Steps   []StepSummary `json:"steps"`
	Waiting string        `json:"waiting"`
}

// PlanInfo summarises the plan for clients.
type PlanInfo struct {
	Name    string     `json:"name"`
	Service string     `json:"service"`
	Digest  string     `json:"digest"`
	Router  string     `json:"router"`
	Metrics string     `json:"metrics"`
	Steps   []StepInfo `json:"steps"`
}

// StepInfo is one planned step.
type StepInfo struct {
	Weight   int            `json:"weight"`
	Hold     string         `json:"hold"`
	Mirror   int            `json:"mirror,omitempty"`
	Approval *plan.Approval `json:"approval,omitempty"`
}

// CommandResult is what a POST of a command answers.
type CommandResult struct {
	Events []Event `json:"events"`
	State  State   `json:"state"`
}

// Waiting says, in words, what the shift waits for now.
func Waiting(p *plan.Plan, s State, now time.Time) string {
	switch s.Phase {
	case Pending:
		return "starting"
	case Setting:
		return fmt.Sprintf("router to confirm new %d%%", s.Target)
	case RollingBack:
		return fmt.Sprintf("router to confirm rollback to new %d%%", s.Target)
	case Holding:
		st := p.Spec.Steps[s.Step]
		left := st.Hold.D() - now.Sub(s.Since)
		switch {
		case left > 0 && !s.Passed && s.Weight > 0:
			return fmt.Sprintf("hold: %s left, and a passing analysis", left.Round(time.Second))
		case left > 0:
			return fmt.Sprintf("hold: %s left", left.Round(time.Second))
		case !s.Passed:
			return "a passing analysis (no data is not a pass)"
		}
		return "next step"
	case WaitingApproval, Blackout, Paused:
		return s.Reason
	}
	return string(s.Phase)
}

// AdminHandler serves the shift's admin API under /v1/shift, each request
// authenticated by tokens; the caller's identity is the command's actor.
// hist may be nil.
func (r *Runner) AdminHandler(tokens *admin.Tokens, hist *History) http.Handler {
	r.init()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/shift", func(w http.ResponseWriter, req *http.Request) {
		writeJSON(w, http.StatusOK, r.Status(hist))
	})
	// ?since=RFC3339 returns only what happened after that time, so a
	// dashboard polling every second does not fetch the whole series.
	since := func(req *http.Request) (time.Time, bool) {
		v := req.URL.Query().Get("since")
		if v == "" {
			return time.Time{}, true
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		return t, err == nil
	}
	mux.HandleFunc("GET /v1/shift/events", func(w http.ResponseWriter, req *http.Request) {
		after, ok := since(req)
		if !ok {
			http.Error(w, "since: want an RFC 3339 time", http.StatusBadRequest)
			return
		}
		out := []TimedEvent{}
		if hist != nil {
			for _, e := range hist.Events() {
				if e.Time.After(after) {
					out = append(out, e)
				}
			}
		}
		writeJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("GET /v1/shift/samples", func(w http.ResponseWriter, req *http.Request) {
		after, ok := since(req)
		if !ok {
			http.Error(w, "since: want an RFC 3339 time", http.StatusBadRequest)
			return
		}
		out := []Sample{}
		if hist != nil {
			for _, s := range hist.Samples() {
				if s.Time.After(after) {
					out = append(out, s)
				}
			}
		}
		writeJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("GET /v1/shift/stream", func(w http.ResponseWriter, req *http.Request) {
		if hist == nil {
			http.Error(w, "no history", http.StatusNotFound)
			return
		}
		streamEvents(w, req, hist)
	})
	mux.HandleFunc("POST /v1/shift/{command}", func(w http.ResponseWriter, req *http.Request) {
		kind := CommandKind(req.PathValue("command"))
		switch kind {
		case CmdPause, CmdResume, CmdPromote, CmdApprove, CmdReject, CmdAbort:
		default:
			http.Error(w, "unknown command "+string(kind), http.StatusNotFound)
			return
		}
		var body struct {
			Reason string `json:"reason"`
		}
		if req.ContentLength != 0 {
			if err := json.NewDecoder(http.MaxBytesReader(w, req.Body, 1<<16)).Decode(&body); err != nil {
				http.Error(w, "bad JSON body: "+err.Error(), http.StatusBadRequest)
				return
			}
		}
		id, _ := admin.FromContext(req.Context())
		ctx, cancel := context.WithTimeout(req.Context(), 10*time.Second)
		defer cancel()
		events, err := r.Submit(ctx, Command{Kind: kind, Actor: id.Name, Groups: id.Groups, Reason: body.Reason})
		switch {
		case errors.Is(err, ErrEnded):
			http.Error(w, "the shift has ended: "+string(r.State().Phase), http.StatusConflict)
			return
		case err != nil:
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		status := http.StatusOK
		for _, e := range events {
			if e.Type == "command-refused" {
				status = http.StatusConflict
			}
		}
		if events == nil {
			events = []Event{}
		}
		writeJSON(w, status, CommandResult{Events: events, State: r.State()})
	})
	return tokens.Require(mux)
}

// Status returns what GET /v1/shift answers. hist may be nil.
func (r *Runner) Status(hist *History) Status {
	s := r.State()
	st := Status{State: s, Sample: r.LastSample(), Waiting: Waiting(r.Plan, s, r.Now()), Steps: []StepSummary{}}
	if hist != nil {
		st.Steps = hist.Steps()
	}
	p := r.Plan
	st.Plan = PlanInfo{Name: p.Metadata.Name, Service: p.Spec.Service, Digest: p.Digest, Router: p.Spec.Router.Type, Metrics: p.Spec.Metrics.Type}
	for _, step := range p.Spec.Steps {
		st.Plan.Steps = append(st.Plan.Steps, StepInfo{Weight: step.Weight, Hold: step.Hold.String(), Mirror: step.Mirror, Approval: step.Approval})
	}
	return st
}

func streamEvents(w http.ResponseWriter, req *http.Request, hist *History) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	ch, cancel := hist.Subscribe()
	defer cancel()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	fl.Flush()
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	for {
		select {
		case <-req.Context().Done():
			return
		case <-keepalive.C:
			fmt.Fprint(w, ": keep-alive\n\n")
			fl.Flush()
		case te := <-ch:
			b, err := json.Marshal(te)
			if err != nil {
				continue
			}
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", strings.ReplaceAll(te.Event.Type, "\n", ""), b)
			fl.Flush()
		}
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
