package source

import (
	"sort"
	"strings"

	"github.com/cutoverhq/cutover/service"
)

// Tracker records what became of each field of one input file, so that the
// report lists every field: the importer calls Mapped, Warn, Drop, Fill or
// Use as it reads, and Finish reports every remaining field with a value as
// dropped. Null and empty fields (console exports are full of them) are not
// reported.
type Tracker struct {
	File   string
	Pos    *Positions
	Report *service.Report
	// Prefix is prepended to every field path given to the Tracker's
	// methods, for files whose interesting part is nested (the
	// "taskDefinition" of describe-task-definition output). Paths in the
	// report are the full paths.
	Prefix string
	used   map[string]bool
}

// NewTracker returns a tracker for file, indexed by pos, writing to r.
func NewTracker(file string, pos *Positions, r *service.Report) *Tracker {
	return &Tracker{File: file, Pos: pos, Report: r, used: map[string]bool{}}
}

// At returns a tracker that shares t's records but prefixes paths with
// prefix (relative to t's own prefix).
func (t *Tracker) At(prefix string) *Tracker {
	c := *t
	c.Prefix = JoinPath(t.Prefix, prefix)
	return &c
}

// JoinPath joins a field path and a child field ("a.b" + "c" = "a.b.c",
// "a" + "[0]" = "a[0]"), the way Positions and the report spell paths.
func JoinPath(prefix, field string) string {
	switch {
	case prefix == "":
		return field
	case field == "":
		return prefix
	case strings.HasPrefix(field, "["):
		return prefix + field
	default:
		return prefix + "." + field
	}
}

func (t *Tracker) full(field string) string {
	f := JoinPath(t.Prefix, field)
	t.used[f] = true
	return f
}

// Line returns the line of field.
func (t *Tracker) Line(field string) int { return t.Pos.Line(JoinPath(t.Prefix, field)) }

// Holds reports whether the input holds field at all (whatever its
// value): a row on a field it does not hold must say it was not set.
func (t *Tracker) Holds(field string) bool { return t.Pos.Holds(JoinPath(t.Prefix, field)) }

// Has reports whether the input gave field a non-null, non-empty value
// (or any children).
func (t *Tracker) Has(field string) bool {
	f := JoinPath(t.Prefix, field)
	if t.Pos == nil {
		return false
	}
	if t.Pos.leaves[f] {
		return true
	}
	for k := range t.Pos.leaves {
		if strings.HasPrefix(k, f+".") || strings.HasPrefix(k, f+"[") {
			return true
		}
	}
	return false
}

// Mapped records field as mapped exactly to target.
func (t *Tracker) Mapped(field, target string) {
	f := t.full(field)
	t.Report.Mapped(t.File, t.Pos.Line(f), f, target)
}

// Warn records field as mapped to target with a caveat.
func (t *Tracker) Warn(field, target, msg string) {
	f := t.full(field)
	t.Report.Warn(t.File, t.Pos.Line(f), f, target, msg)
}

// Drop records field as having no place on Kubernetes, and why.
func (t *Tracker) Drop(field, msg string) {
	f := t.full(field)
	t.Report.Drop(t.File, t.Pos.Line(f), f, msg)
}

// DropForeign records field as dropped by this importer because it is
// another importer's to convert (see service.Finding.Foreign).
func (t *Tracker) DropForeign(field, msg string) {
	f := t.full(field)
	t.Report.Add(service.Finding{File: t.File, Line: t.Pos.Line(f), Field: f, Status: service.Dropped, Message: msg, Foreign: true})
}

// Fill records field as a value the user fills at target.
func (t *Tracker) Fill(field, target, msg string) {
	f := t.full(field)
	t.Report.Fill(t.File, t.Pos.Line(f), f, target, msg)
}

// Use marks field as handled without a finding of its own (a container
// whose fields are reported one by one, an identifier).
func (t *Tracker) Use(field string) { t.full(field) }

// Reported reports whether a call has covered field: the field itself,
// an ancestor of it, or a field below it. What no call covered is what
// Finish would report.
func (t *Tracker) Reported(field string) bool {
	f := JoinPath(t.Prefix, field)
	return t.covered(f) || t.hasUsedDescendant(f)
}

// Finish reports every field under the tracker's prefix that has a value
// and that no call covered (neither the field nor an ancestor) as dropped,
// and returns how many it reported.
func (t *Tracker) Finish() int {
	if t.Pos == nil {
		return 0
	}
	var left []string
	for leaf := range t.Pos.leaves {
		if t.Prefix != "" && leaf != t.Prefix && !strings.HasPrefix(leaf, t.Prefix+".") && !strings.HasPrefix(leaf, t.Prefix+"[") {
			continue
		}
		if !t.covered(leaf) {
			left = append(left, leaf)
		}
	}
	sort.Strings(left)
	// Report a whole unknown object once, at its top-most unknown ancestor
	// below a covered or root path, rather than leaf by leaf.
	reported := map[string]bool{}
	n := 0
	for _, leaf := range left {
		top := t.topUncovered(leaf)
		if reported[top] {
			continue
		}
		reported[top] = true
		t.Report.Drop(t.File, t.Pos.Line(top), top, "cutover does not map this field")
		n++
	}
	return n
}

func (t *Tracker) covered(path string) bool {
	for p := path; p != ""; p = ParentPath(p) {
		if t.used[p] {
			return true
		}
	}
	return false
}

// topUncovered returns the highest ancestor of path (below the prefix)
// that is not covered and whose children are all uncovered. For
// simplicity it stops at the first ancestor that has a covered sibling
// subtree, i.e. the child of the deepest path with a used descendant.
func (t *Tracker) topUncovered(path string) string {
	best := path
	for p := ParentPath(path); p != "" && p != t.Prefix; p = ParentPath(p) {
		if t.hasUsedDescendant(p) {
			break
		}
		best = p
	}
	return best
}

func (t *Tracker) hasUsedDescendant(p string) bool {
	for u := range t.used {
		if u == p || strings.HasPrefix(u, p+".") || strings.HasPrefix(u, p+"[") {
			return true
		}
	}
	return false
}

// ParentPath strips the last element of a field path: "a.b[0].c" →
// "a.b[0]" → "a.b" → "a" → "".
func ParentPath(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i <= 0 {
		return ""
	}
	return path[:i]
}
