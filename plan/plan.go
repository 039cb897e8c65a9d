// Package plan reads, defaults and validates the migration plan file: which
// service moves, from which backend to which, through which router, judged
// on which metrics, in which steps, under which SLOs, and what rollback
// does. A Plan is data only; the shift engine interprets it.
//
// The file is versioned YAML:
//
//	apiVersion: cutover.dev/v1alpha1
//	kind: ShiftPlan
//
// schema.json (embedded, see Schema) is its JSON Schema; docs/plan.md
// documents every field.
package plan

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/cutoverhq/cutover/source"
)

// APIVersion and Kind are the only ones this version reads.
const (
	APIVersion = "cutover.dev/v1alpha1"
	Kind       = "ShiftPlan"
)

//go:embed schema.json
var schema []byte

// Schema returns the plan's JSON Schema.
func Schema() []byte { return append([]byte(nil), schema...) }

// Plan is a parsed migration plan.
type Plan struct {
	APIVersion string   `yaml:"apiVersion"`
	Kind       string   `yaml:"kind"`
	Metadata   Metadata `yaml:"metadata"`
	Spec       Spec     `yaml:"spec"`

	// File is the path the plan was read from; "" when parsed from bytes.
	File string `yaml:"-"`
	// Digest is the SHA-256 of the file's bytes, hex: the audit log ties
	// every record to the plan it acted under.
	Digest string `yaml:"-"`

	pos *source.Positions
}

// Metadata names the plan.
type Metadata struct {
	// Name identifies the shift; "" means the service name.
	Name string `yaml:"name"`
	// Labels are free-form and copied to audit records.
	Labels map[string]string `yaml:"labels,omitempty"`
}

// Spec is the plan proper.
type Spec struct {
	// Service is the name of the service being moved (required).
	Service string `yaml:"service"`
	// Legacy and New are the two sides.
	Legacy Backend `yaml:"legacy"`
	New    Backend `yaml:"new"`
	// Router moves the traffic (required).
	Router Component `yaml:"router"`
	// Metrics answers the judge; the zero value means the embedded
	// proxy's own metrics (type "embedded").
	Metrics Component `yaml:"metrics"`
	// Steps are the new side's traffic weights, rising (required).
	Steps []Step `yaml:"steps"`
	// SLO is what the new side must meet at every step.
	SLO SLO `yaml:"slo"`
	// Analysis says how often and on how much data the judge decides.
	Analysis Analysis `yaml:"analysis"`
	// Blackouts are windows in which no step starts.
	Blackouts []Blackout `yaml:"blackouts,omitempty"`
	// Rollback says what happens when the new side fails.
	Rollback Rollback `yaml:"rollback"`
}

// Backend is one side of the shift.
type Backend struct {
	// Addresses are base URLs (http://10.0.1.12:8080) or, for routers that
	// name backends their own way, names (an HAProxy server, a target group
	// ARN, a Kubernetes Service). At least one.
	Addresses []string `yaml:"addresses"`
	// HealthPath is checked at start by `cutover shift validate` and run;
	// "" means "/".
	HealthPath string `yaml:"healthPath,omitempty"`
}

// Component names an implementation from a registry and carries its
// settings, which the implementation decodes itself (DecodeSettings).
type Component struct {
	// Type is the registered name ("proxy", "haproxy", "prometheus", …).
	Type string
	// Settings is the component's whole YAML mapping, type included; the
	// zero Node means no settings.
	Settings yaml.Node
}

// UnmarshalYAML keeps the mapping for the implementation to decode.
func (c *Component) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: want a mapping with a type", n.Line)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "type" {
			c.Type = n.Content[i+1].Value
		}
	}
	c.Settings = *n
	return nil
}

// MarshalYAML writes the mapping back.
func (c Component) MarshalYAML() (any, error) {
	if c.Settings.Kind == 0 {
		return map[string]string{"type": c.Type}, nil
	}
	return &c.Settings, nil
}

// Step is one traffic weight and how long it is held.
type Step struct {
	// Weight is the new side's share of traffic in percent, 0..100.
	Weight int `yaml:"weight"`
	// Hold is how long the step is held under analysis before the next
	// one; zero means the plan's analysis.defaultHold (for the last step,
	// 100 %, zero means "done as soon as the weight is confirmed").
	Hold Duration `yaml:"hold,omitempty"`
	// Approval, when set, must be given before the step starts.
	Approval *Approval `yaml:"approval,omitempty"`
	// Mirror is the percentage of legacy's requests copied to the new side
	// during this step (answers compared, never returned); zero means none.
	Mirror int `yaml:"mirror,omitempty"`
}

// Approval is a manual gate before a step.
type Approval struct {
	// Count is how many distinct people must approve; zero means 1.
	Count int `yaml:"count,omitempty" json:"count"`
	// Group is the group the approvers must belong to; "" means anyone with
	// an admin token.
	Group string `yaml:"group,omitempty" json:"group,omitempty"`
	// FourEyes forbids the person who started the shift from approving.
	FourEyes bool `yaml:"fourEyes,omitempty" json:"fourEyes,omitempty"`
}

// SLO are the limits the new side must meet. A zero limit is not checked.
type SLO struct {
	// LatencyP99 limits the new side's p99 latency.
	LatencyP99 LatencyLimit `yaml:"latencyP99,omitempty"`
	// ErrorRate limits the share of requests answered with a 5xx or a
	// transport error.
	ErrorRate RateLimit `yaml:"errorRate,omitempty"`
	// SuccessRate is the minimum share of non-error answers (a 2xx, 3xx or
	// 4xx). Zero is not checked.
	SuccessRate Percent `yaml:"successRate,omitempty"`
	// MannWhitney compares the two sides' latency distributions.
	MannWhitney *MannWhitney `yaml:"mannWhitney,omitempty"`
}

// LatencyLimit is an absolute and a relative limit on a latency.
type LatencyLimit struct {
	// Max is the absolute limit; zero is not checked.
	Max Duration `yaml:"max,omitempty"`
	// MaxIncrease is how much slower than the legacy side, in the same
	// window, the new side may be, in percent (20 = 1.2× legacy); zero is
	// not checked.
	MaxIncrease Percent `yaml:"maxIncrease,omitempty"`
}

// RateLimit is an absolute and a relative limit on a rate.
type RateLimit struct {
	// Max is the absolute limit in percent; zero is not checked.
	Max Percent `yaml:"max,omitempty"`
	// MaxIncrease is how many percentage points above the legacy side's
	// rate in the same window the new side may be; zero is not checked.
	MaxIncrease Percent `yaml:"maxIncrease,omitempty"`
}

// MannWhitney configures the rank test on latency samples, as Kayenta's
// judge does: the new side fails when its latencies are higher than
// legacy's with the given confidence and by more than the effect size.
type MannWhitney struct {
	// Confidence is 1-α in percent; zero means 99.
	Confidence Percent `yaml:"confidence,omitempty"`
	// MinSamples per side before the test decides; zero means 50.
	MinSamples int `yaml:"minSamples,omitempty"`
	// MinEffect is the smallest ratio of medians (new/legacy) that counts
	// as worse, in percent above 100; zero means 10 (1.1×).
	MinEffect Percent `yaml:"minEffect,omitempty"`
}

// Analysis says how the judge runs.
type Analysis struct {
	// Interval is how often the runner asks the metrics and the judge;
	// zero means 250ms for the embedded metrics, 5s for Prometheus, 1m for
	// CloudWatch, 15s otherwise.
	Interval Duration `yaml:"interval,omitempty"`
	// Window is the span of metrics each verdict looks at; zero means 30s
	// (5m for CloudWatch, whose ALB metrics come by the minute).
	Window Duration `yaml:"window,omitempty"`
	// MinRequests on the new side in the window before a verdict; below it
	// the analysis is inconclusive. Zero means 20.
	MinRequests int `yaml:"minRequests,omitempty"`
	// FailureLimit is how many consecutive failed analyses roll back;
	// zero means 1 (the first failure rolls back).
	FailureLimit int `yaml:"failureLimit,omitempty"`
	// CumulativeFailureLimit is how many failed analyses in the whole
	// shift roll back even when not consecutive; zero means 5.
	CumulativeFailureLimit int `yaml:"cumulativeFailureLimit,omitempty"`
	// InconclusiveLimit is how many consecutive inconclusive analyses
	// pause the shift (no data is never a pass); zero means 0: never pause,
	// but a hold never completes without a passing analysis.
	InconclusiveLimit int `yaml:"inconclusiveLimit,omitempty"`
	// DefaultHold applies to steps without a hold; zero means 1m.
	DefaultHold Duration `yaml:"defaultHold,omitempty"`
	// ProviderErrorLimit is how many consecutive metrics-provider errors
	// pause the shift; zero means 5.
	ProviderErrorLimit int `yaml:"providerErrorLimit,omitempty"`
}

// Blackout is a window in which no step starts. Either From/To (one
// window) or Days/Start/End (a weekly window) is set.
type Blackout struct {
	// Name is shown when a step waits for the window to end.
	Name string `yaml:"name,omitempty"`
	// From and To bound a one-off window (RFC 3339).
	From time.Time `yaml:"from,omitempty"`
	To   time.Time `yaml:"to,omitempty"`
	// Days are weekday names (mon..sun) of a weekly window; empty means
	// every day.
	Days []string `yaml:"days,omitempty"`
	// Start and End are "HH:MM" in TimeZone; End before Start spans
	// midnight.
	Start string `yaml:"start,omitempty"`
	End   string `yaml:"end,omitempty"`
	// TimeZone is an IANA zone name; "" means UTC.
	TimeZone string `yaml:"timeZone,omitempty"`
}

// RollbackMode is where a rollback moves the traffic.
type RollbackMode string

const (
	// RollbackToZero sends all traffic back to legacy (the default).
	RollbackToZero RollbackMode = "zero"
	// RollbackPreviousStep returns to the previous step's weight and holds
	// it; a second failure there goes to zero.
	RollbackPreviousStep RollbackMode = "previousStep"
)

// Rollback says what a failure does.
type Rollback struct {
	// Mode; "" means zero.
	Mode RollbackMode `yaml:"mode,omitempty"`
}

// Parse reads a plan from data; file names it in errors. Every error for
// bad content is a *source.InputError naming the file, line and field.
func Parse(file string, data []byte) (*Plan, error) {
	pos, err := source.ParsePositions(file, data)
	if err != nil {
		return nil, err
	}
	p := &Plan{File: file, pos: pos}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(p); err != nil {
		if errors.Is(err, errEOF) || err.Error() == "EOF" {
			return nil, &source.InputError{File: file, Err: errors.New("the plan is empty")}
		}
		return nil, decodeError(file, pos, err)
	}
	sum := sha256.Sum256(data)
	p.Digest = hex.EncodeToString(sum[:])
	p.applyDefaults()
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return p, nil
}

var errEOF = errors.New("EOF")

// Load reads and parses a plan file.
func Load(file string) (*Plan, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, &source.InputError{File: file, Err: fmt.Errorf("cannot read plan: %w", err)}
	}
	return Parse(file, data)
}

// decodeError turns a yaml.v3 type error ("line 12: field foo not found in
// type plan.Spec") into an InputError with the line and the field.
func decodeError(file string, pos *source.Positions, err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg := te.Errors[0]
		line := 0
		if strings.HasPrefix(msg, "line ") {
			rest := msg[5:]
			if i := strings.Index(rest, ":"); i > 0 {
				line, _ = strconv.Atoi(rest[:i])
				msg = strings.TrimSpace(rest[i+1:])
			}
		}
		field := pos.FieldAt(line)
		if strings.HasPrefix(msg, "field ") {
			if i := strings.Index(msg[6:], " "); i > 0 {
				msg = "unknown field (check its spelling and indentation)"
			}
		}
		return &source.InputError{File: file, Line: line, Field: field, Err: errors.New(msg)}
	}
	// Errors from our own UnmarshalYAML methods carry "line N: ...".
	msg := err.Error()
	if strings.HasPrefix(msg, "line ") {
		rest := msg[5:]
		if i := strings.Index(rest, ":"); i > 0 {
			if line, convErr := strconv.Atoi(rest[:i]); convErr == nil {
				return &source.InputError{File: file, Line: line, Field: pos.FieldAt(line), Err: errors.New(strings.TrimSpace(rest[i+1:]))}
			}
		}
	}
	return source.SyntaxError(file, err)
}

func (p *Plan) applyDefaults() {
	s := &p.Spec
	if p.Metadata.Name == "" {
		p.Metadata.Name = s.Service
	}
	if s.Metrics.Type == "" {
		s.Metrics.Type = "embedded"
	}
	a := &s.Analysis
	if a.Interval == 0 {
		// As often as the source has something new to say: the proxy's
		// own counters at once, Prometheus every scrape, CloudWatch's ALB
		// metrics once a minute.
		switch s.Metrics.Type {
		case "embedded":
			a.Interval = Duration(250 * time.Millisecond)
		case "prometheus":
			a.Interval = Duration(5 * time.Second)
		case "cloudwatch":
			a.Interval = Duration(time.Minute)
		default:
			a.Interval = Duration(15 * time.Second)
		}
	}
	if a.Window == 0 && s.Metrics.Type == "cloudwatch" {
		a.Window = Duration(5 * time.Minute)
	}
	if a.Window == 0 {
		a.Window = Duration(30 * time.Second)
	}
	if a.MinRequests == 0 {
		a.MinRequests = 20
	}
	if a.FailureLimit == 0 {
		a.FailureLimit = 1
	}
	if a.CumulativeFailureLimit == 0 {
		a.CumulativeFailureLimit = 5
	}
	if a.DefaultHold == 0 {
		a.DefaultHold = Duration(time.Minute)
	}
	if a.ProviderErrorLimit == 0 {
		a.ProviderErrorLimit = 5
	}
	if s.Rollback.Mode == "" {
		s.Rollback.Mode = RollbackToZero
	}
	if mw := s.SLO.MannWhitney; mw != nil {
		if mw.Confidence == 0 {
			mw.Confidence = 99
		}
		if mw.MinSamples == 0 {
			mw.MinSamples = 50
		}
		if mw.MinEffect == 0 {
			mw.MinEffect = 10
		}
	}
	for i := range s.Steps {
		st := &s.Steps[i]
		if st.Hold == 0 && st.Weight < 100 {
			st.Hold = a.DefaultHold
		}
		if st.Approval != nil && st.Approval.Count == 0 {
			st.Approval.Count = 1
		}
	}
}

// RouterNames and MetricsNames are set by the router and metrics
// registries (package router, package metrics) so that Validate can refuse
// names nobody registered without importing them.
var (
	RouterKnown  func(name string) error
	MetricsKnown func(name string) error
)

// Validate checks the plan and returns the first problem as an
// *source.InputError naming the field.
func (p *Plan) Validate() error {
	bad := func(field, format string, args ...any) error {
		return source.Errorf(p.File, p.pos, field, format, args...)
	}
	if p.APIVersion != APIVersion {
		return bad("apiVersion", "want %q, got %q", APIVersion, p.APIVersion)
	}
	if p.Kind != Kind {
		return bad("kind", "want %q, got %q", Kind, p.Kind)
	}
	s := &p.Spec
	if s.Service == "" {
		return bad("spec.service", "the service name is required")
	}
	for _, side := range []struct {
		name string
		b    Backend
	}{{"legacy", s.Legacy}, {"new", s.New}} {
		f := "spec." + side.name + ".addresses"
		if len(side.b.Addresses) == 0 {
			return bad(f, "at least one address is required")
		}
		for i, a := range side.b.Addresses {
			if strings.TrimSpace(a) == "" {
				return bad(fmt.Sprintf("%s[%d]", f, i), "empty address")
			}
			if strings.Contains(a, "://") {
				u, err := url.Parse(a)
				if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
					return bad(fmt.Sprintf("%s[%d]", f, i), "%q is not an http(s) URL with a host", a)
				}
			}
		}
	}
	if s.Router.Type == "" {
		return bad("spec.router.type", "the router type is required")
	}
	if RouterKnown != nil {
		if err := RouterKnown(s.Router.Type); err != nil {
			return bad("spec.router.type", "%v", err)
		}
	}
	if MetricsKnown != nil {
		if err := MetricsKnown(s.Metrics.Type); err != nil {
			return bad("spec.metrics.type", "%v", err)
		}
	}
	if len(s.Steps) == 0 {
		return bad("spec.steps", "at least one step is required")
	}
	prev := -1
	for i, st := range s.Steps {
		f := fmt.Sprintf("spec.steps[%d]", i)
		if st.Weight < 0 || st.Weight > 100 {
			return bad(f+".weight", "weight %d is outside 0..100", st.Weight)
		}
		if st.Weight <= prev {
			return bad(f+".weight", "weights must rise: %d after %d", st.Weight, prev)
		}
		prev = st.Weight
		if st.Hold < 0 {
			return bad(f+".hold", "negative hold")
		}
		if st.Mirror < 0 || st.Mirror > 100 {
			return bad(f+".mirror", "mirror %d is outside 0..100", st.Mirror)
		}
		if st.Approval != nil && st.Approval.Count < 1 {
			return bad(f+".approval.count", "count must be at least 1")
		}
	}
	slo := s.SLO
	if slo.LatencyP99.Max < 0 || slo.LatencyP99.MaxIncrease < 0 || slo.ErrorRate.Max < 0 || slo.ErrorRate.MaxIncrease < 0 {
		return bad("spec.slo", "limits cannot be negative")
	}
	for _, pc := range []struct {
		f string
		v Percent
	}{{"spec.slo.errorRate.max", slo.ErrorRate.Max}, {"spec.slo.successRate", slo.SuccessRate}} {
		if pc.v > 100 {
			return bad(pc.f, "%v is over 100%%", pc.v)
		}
	}
	if slo.LatencyP99 == (LatencyLimit{}) && slo.ErrorRate == (RateLimit{}) && slo.SuccessRate == 0 && slo.MannWhitney == nil {
		return bad("spec.slo", "no SLO is set: the judge would pass anything; set at least errorRate or latencyP99")
	}
	if mw := slo.MannWhitney; mw != nil {
		if mw.Confidence <= 50 || mw.Confidence >= 100 {
			return bad("spec.slo.mannWhitney.confidence", "confidence must be between 50%% and 100%%, got %v", mw.Confidence)
		}
		if mw.MinSamples < 8 {
			return bad("spec.slo.mannWhitney.minSamples", "at least 8 samples per side are needed, got %d", mw.MinSamples)
		}
	}
	a := s.Analysis
	if a.Interval < Duration(10*time.Millisecond) {
		return bad("spec.analysis.interval", "interval %v is below 10ms", a.Interval)
	}
	if a.Window < a.Interval {
		return bad("spec.analysis.window", "window %v is shorter than the interval %v", a.Window, a.Interval)
	}
	for _, n := range []struct {
		f string
		v int
	}{{"minRequests", a.MinRequests}, {"failureLimit", a.FailureLimit}, {"cumulativeFailureLimit", a.CumulativeFailureLimit}, {"inconclusiveLimit", a.InconclusiveLimit}, {"providerErrorLimit", a.ProviderErrorLimit}} {
		if n.v < 0 {
			return bad("spec.analysis."+n.f, "cannot be negative")
		}
	}
	for i, b := range s.Blackouts {
		if err := b.validate(); err != nil {
			return bad(fmt.Sprintf("spec.blackouts[%d]", i), "%v", err)
		}
	}
	switch s.Rollback.Mode {
	case RollbackToZero, RollbackPreviousStep:
	default:
		return bad("spec.rollback.mode", "unknown mode %q (zero, previousStep)", s.Rollback.Mode)
	}
	return nil
}

// Line returns the line of a field path in the plan file, or 0.
func (p *Plan) Line(field string) int { return p.pos.Line(field) }

// Hold returns the hold of step i.
func (p *Plan) Hold(i int) time.Duration { return time.Duration(p.Spec.Steps[i].Hold) }

// DecodeSettings decodes a component's settings into v, strictly, naming
// the plan's file and line in errors.
func (p *Plan) DecodeSettings(c *Component, field string, v any) error {
	if c.Settings.Kind == 0 {
		return nil
	}
	// Settings hold the whole component mapping (inline); drop "type".
	n := c.Settings
	if n.Kind == yaml.MappingNode {
		cp := n
		cp.Content = nil
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == "type" {
				continue
			}
			cp.Content = append(cp.Content, n.Content[i], n.Content[i+1])
		}
		n = cp
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	if err := enc.Encode(&n); err != nil {
		return err
	}
	dec := yaml.NewDecoder(&buf)
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil && err.Error() != "EOF" {
		var te *yaml.TypeError
		msg := err.Error()
		if errors.As(err, &te) && len(te.Errors) > 0 {
			msg = te.Errors[0]
			if i := strings.Index(msg, ": "); strings.HasPrefix(msg, "line ") && i > 0 {
				msg = msg[i+2:]
			}
		}
		// The re-encoded document has its own line numbers; find the
		// field in the plan file by name instead.
		if strings.HasPrefix(msg, "field ") {
			if i := strings.Index(msg[6:], " "); i > 0 {
				field += "." + msg[6:6+i]
				msg = "unknown setting (check its spelling)"
			}
		}
		return &source.InputError{File: p.File, Line: p.pos.Line(field), Field: field, Err: errors.New(msg)}
	}
	return nil
}
