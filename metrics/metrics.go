// Package metrics declares what the shift judge asks of a metrics source,
// and the registry that maps a plan's metrics type to a provider.
//
// Each provider lives in its own package (metrics/embedded,
// metrics/prometheus, metrics/cloudwatch) and registers itself at init.
package metrics

import (
	"context"
	"encoding/json"
	"math"
	"time"

	"github.com/cutoverhq/cutover/internal/registry"
)

// Side names one side of a shift.
type Side string

const (
	Legacy Side = "legacy"
	New    Side = "new"
)

// Query asks about one side of one service over one window.
type Query struct {
	Service string
	Side    Side
	// Start and End bound the window; End is usually now.
	Start, End time.Time
}

// Observation is what a provider saw on one side in one window. NaN in a
// field means the provider could not tell; the judge treats it as no data,
// never as a pass.
type Observation struct {
	// Requests answered (or failed) in the window.
	Requests float64
	// Errors: 5xx answers and transport failures.
	Errors float64
	// P50 and P99 latency in seconds; NaN when unknown.
	P50, P99 float64
	// Latencies is a sample of request latencies in seconds (for the
	// Mann–Whitney test); nil when the provider has no samples.
	Latencies []float64
}

// NoData returns an observation that says nothing.
func NoData() Observation {
	return Observation{Requests: math.NaN(), Errors: math.NaN(), P50: math.NaN(), P99: math.NaN()}
}

// ErrorRate returns Errors/Requests, or NaN without requests.
func (o Observation) ErrorRate() float64 {
	if !(o.Requests > 0) || math.IsNaN(o.Errors) {
		return math.NaN()
	}
	return o.Errors / o.Requests
}

// Provider answers the judge's questions about one side.
type Provider interface {
	Observe(ctx context.Context, q Query) (Observation, error)
}

// Checker is implemented by providers that can tell at validation time
// whether they are reachable and configured right.
type Checker interface {
	Check(ctx context.Context) error
}

// Factory builds a provider from its decoded settings. decode decodes the
// plan's settings for the provider strictly into the value it is given.
type Factory func(ctx context.Context, env Env, decode func(v any) error) (Provider, error)

// Env is what a provider may need from the runner.
type Env struct {
	// Service is the plan's service name.
	Service string
	// Local is the in-process source of the embedded proxy's metrics; nil
	// when the router is not the embedded proxy.
	Local any
}

var factories = registry.New[Factory]("metrics provider")

// Register makes a provider available under name; a duplicate panics.
func Register(name string, f Factory) { factories.Register(name, f) }

// Lookup returns the factory for name, or an error listing the known
// names. It never falls back to a default provider.
func Lookup(name string) (Factory, error) { return factories.Lookup(name) }

// Known returns nil when name is registered.
func Known(name string) error {
	_, err := Lookup(name)
	return err
}

// MarshalJSON writes NaN as null: JSON has no NaN, and "unknown" must
// survive the trip to the dashboard and the audit log.
func (o Observation) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Requests  *float64  `json:"requests"`
		Errors    *float64  `json:"errors"`
		P50       *float64  `json:"p50"`
		P99       *float64  `json:"p99"`
		Latencies []float64 `json:"latencies,omitempty"`
	}{NullNaN(o.Requests), NullNaN(o.Errors), NullNaN(o.P50), NullNaN(o.P99), nil})
}

// UnmarshalJSON reads null as NaN.
func (o *Observation) UnmarshalJSON(b []byte) error {
	var v struct {
		Requests, Errors, P50, P99 *float64
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	o.Requests, o.Errors, o.P50, o.P99 = NaNNull(v.Requests), NaNNull(v.Errors), NaNNull(v.P50), NaNNull(v.P99)
	return nil
}

// NullNaN returns nil for NaN or ±Inf, else &f.
func NullNaN(f float64) *float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil
	}
	return &f
}

// NaNNull returns NaN for nil, else *f.
func NaNNull(f *float64) float64 {
	if f == nil {
		return math.NaN()
	}
	return *f
}
