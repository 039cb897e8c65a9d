package lint

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Severity orders findings; --fail-on compares against it.
type Severity int

const (
	// Warning: worth fixing; does not fail lint by default.
	Warning Severity = iota + 1
	// Error: would break or endanger the service; fails lint by default.
	Error
)

func (s Severity) String() string {
	switch s {
	case Warning:
		return "warning"
	case Error:
		return "error"
	}
	return fmt.Sprintf("severity(%d)", int(s))
}

// MarshalText writes the severity as its name in JSON.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a severity name.
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// ParseSeverity reads "error" or "warning".
func ParseSeverity(s string) (Severity, error) {
	switch strings.ToLower(s) {
	case "error":
		return Error, nil
	case "warning":
		return Warning, nil
	}
	return 0, fmt.Errorf("unknown severity %q (error, warning)", s)
}

// Where a finding comes from.
const (
	SourceCutover   = "cutover"
	SourceKubeScore = "kube-score"
)

// Finding is one problem in one service and environment.
type Finding struct {
	Severity Severity `json:"severity"`
	Service  string   `json:"service"`
	// Env is the environment; "" means every environment alike (a value
	// left unfilled in the service's own file).
	Env string `json:"env"`
	// Check is the check's id: kube-score's ("container-resources") or
	// cutover's (the Check* constants).
	Check string `json:"check"`
	// Source is SourceCutover or SourceKubeScore.
	Source string `json:"source"`
	// Object is the rendered object, "Kind/name"; "" for findings on
	// values (drift, unfilled values, a failed render).
	Object  string `json:"object,omitempty"`
	Message string `json:"message"`
	// File is the layout file to change, relative to the layout and
	// slash-separated; "" when no one file is to blame.
	File string `json:"file,omitempty"`
	// Line is the line in File; zero when unknown.
	Line int `json:"line,omitempty"`
}

// String is the text form: `SEVERITY service/env: check: message (file)`.
func (f Finding) String() string {
	env := f.Env
	if env == "" {
		env = "*"
	}
	s := fmt.Sprintf("%s %s/%s: %s: ", strings.ToUpper(f.Severity.String()), f.Service, env, f.Check)
	if f.Object != "" {
		s += f.Object + ": "
	}
	s += f.Message
	if f.File != "" && f.Line > 0 {
		s += fmt.Sprintf(" (%s:%d)", f.File, f.Line)
	} else if f.File != "" {
		s += " (" + f.File + ")"
	}
	return s
}

// Result is what lint found in a layout.
type Result struct {
	// Services and Envs are what was linted, in order.
	Services []string `json:"services"`
	Envs     []string `json:"envs"`
	// Findings are sorted by service, environment, severity (errors
	// first), check and message.
	Findings []Finding `json:"findings"`
}

// Count returns how many findings are at or above min.
func (r *Result) Count(min Severity) int {
	n := 0
	for _, f := range r.Findings {
		if f.Severity >= min {
			n++
		}
	}
	return n
}

// sortFindings orders findings by service, then environment in promotion
// order (findings for every environment first), then errors first.
func sortFindings(fs []Finding, envs []string) {
	rank := map[string]int{"": -1}
	for i, e := range envs {
		rank[e] = i
	}
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if a.Service != b.Service {
			return a.Service < b.Service
		}
		if a.Env != b.Env {
			return rank[a.Env] < rank[b.Env]
		}
		if a.Severity != b.Severity {
			return a.Severity > b.Severity
		}
		if a.Check != b.Check {
			return a.Check < b.Check
		}
		if a.Object != b.Object {
			return a.Object < b.Object
		}
		return a.Message < b.Message
	})
}

// WriteText writes one line per finding.
func (r *Result) WriteText(w io.Writer) error {
	for _, f := range r.Findings {
		if _, err := fmt.Fprintln(w, f.String()); err != nil {
			return err
		}
	}
	return nil
}

// WriteJSON writes the result as one indented JSON document.
func (r *Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
