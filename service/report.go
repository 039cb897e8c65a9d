package service

import (
	"fmt"
	"sort"
)

// Status says what became of one input field.
type Status string

const (
	// Mapped: the field has an exact Kubernetes counterpart.
	Mapped Status = "mapped"
	// Warning: the field was mapped, but not exactly; the message says how
	// the result differs, or what the user should check.
	Warning Status = "warning"
	// Dropped: Kubernetes has no place for the field; the message says why
	// and what to do instead.
	Dropped Status = "dropped"
	// Fill: the input left a placeholder or nothing; the result is a value
	// the user fills.
	Fill Status = "fill"
)

// Finding is one line of the mapping report.
type Finding struct {
	// File is the input file, as the user named it.
	File string
	// Line is the 1-based line of the field in File; zero when unknown.
	Line int
	// Field is the field's path in the input, in the input's own terms
	// ("containerDefinitions[0].memoryReservation").
	Field  string
	Status Status
	// Target is where the field went ("Deployment .spec.template...
	// resources.requests.memory", "values fill.image"); "" when dropped.
	Target string
	// Message explains a warning, a drop or a value to fill.
	Message string
	// Foreign marks a drop of what another importer's format holds (an
	// ECS template's Lambda functions): convert removes it when that
	// importer read the same file and reported on the field itself.
	Foreign bool `json:",omitempty"`
}

func (f Finding) String() string {
	loc := f.File
	if f.Line > 0 {
		loc = fmt.Sprintf("%s:%d", f.File, f.Line)
	}
	s := fmt.Sprintf("%s: %s: %s", loc, f.Field, f.Status)
	if f.Target != "" {
		s += " → " + f.Target
	}
	if f.Message != "" {
		s += ": " + f.Message
	}
	return s
}

// Report is the list of findings of one service.
type Report struct {
	Findings []Finding
}

// Add appends a finding.
func (r *Report) Add(f Finding) { r.Findings = append(r.Findings, f) }

// Mapped records a field mapped exactly.
func (r *Report) Mapped(file string, line int, field, target string) {
	r.Add(Finding{File: file, Line: line, Field: field, Status: Mapped, Target: target})
}

// Warn records a field mapped with a caveat.
func (r *Report) Warn(file string, line int, field, target, msg string) {
	r.Add(Finding{File: file, Line: line, Field: field, Status: Warning, Target: target, Message: msg})
}

// Drop records a field Kubernetes has no place for.
func (r *Report) Drop(file string, line int, field, msg string) {
	r.Add(Finding{File: file, Line: line, Field: field, Status: Dropped, Message: msg})
}

// Fill records a value the user must fill.
func (r *Report) Fill(file string, line int, field, target, msg string) {
	r.Add(Finding{File: file, Line: line, Field: field, Status: Fill, Target: target, Message: msg})
}

// Count returns how many findings have the status.
func (r *Report) Count(s Status) int {
	n := 0
	for _, f := range r.Findings {
		if f.Status == s {
			n++
		}
	}
	return n
}

// Sorted returns the findings ordered by file, line and field, so the
// report is stable whatever order an importer visited fields in.
func (r *Report) Sorted() []Finding {
	out := append([]Finding(nil), r.Findings...)
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Field < b.Field
	})
	return out
}
