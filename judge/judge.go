// Package judge decides, from one window of metrics of both sides, whether
// the new side meets the plan's SLOs: absolute thresholds, limits relative
// to the legacy side in the same window, and a Mann–Whitney U test on
// latency samples (as Kayenta's judge does).
//
// No data is never a pass: too few requests, NaN from a provider, or a
// missing baseline make a check inconclusive, and an inconclusive check
// makes the verdict inconclusive unless another check failed.
package judge

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/cutoverhq/cutover/metrics"
	"github.com/cutoverhq/cutover/plan"
)

// Result is a check's or a verdict's outcome.
type Result string

const (
	Pass         Result = "pass"
	Fail         Result = "fail"
	Inconclusive Result = "inconclusive"
)

// Check is one comparison the judge made.
type Check struct {
	// Name says what was checked: "error rate", "p99 latency vs legacy"...
	Name   string `json:"name"`
	Result Result `json:"result"`
	// Value is the new side's value, Limit the limit it was held to, and
	// Baseline legacy's value when the check is relative (NaN otherwise).
	Value    float64 `json:"value"`
	Limit    float64 `json:"limit"`
	Baseline float64 `json:"baseline"`
	// Unit is "s", "ratio" or "p" (a p-value).
	Unit string `json:"unit"`
	// Reason explains the result in a sentence.
	Reason string `json:"reason"`
}

// MarshalJSON writes NaN values as null.
func (c Check) MarshalJSON() ([]byte, error) {
	type plain struct {
		Name     string   `json:"name"`
		Result   Result   `json:"result"`
		Value    *float64 `json:"value"`
		Limit    *float64 `json:"limit"`
		Baseline *float64 `json:"baseline"`
		Unit     string   `json:"unit"`
		Reason   string   `json:"reason"`
	}
	return json.Marshal(plain{c.Name, c.Result, metrics.NullNaN(c.Value), metrics.NullNaN(c.Limit), metrics.NullNaN(c.Baseline), c.Unit, c.Reason})
}

// UnmarshalJSON reads null values as NaN.
func (c *Check) UnmarshalJSON(b []byte) error {
	var v struct {
		Name                   string
		Result                 Result
		Value, Limit, Baseline *float64
		Unit, Reason           string
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*c = Check{Name: v.Name, Result: v.Result, Value: metrics.NaNNull(v.Value), Limit: metrics.NaNNull(v.Limit), Baseline: metrics.NaNNull(v.Baseline), Unit: v.Unit, Reason: v.Reason}
	return nil
}

// Verdict is the outcome of one analysis.
type Verdict struct {
	Result Result  `json:"result"`
	Checks []Check `json:"checks"`
	// Legacy and New are the observations judged.
	Legacy metrics.Observation `json:"-"`
	New    metrics.Observation `json:"-"`
	// Reason is the first failing (or inconclusive) check's reason.
	Reason string `json:"reason"`
}

// Input is one window of both sides.
type Input struct {
	Legacy, New metrics.Observation
	// Recent is the new side over a short recent window (a second or
	// two). A burst of errors there fails the verdict before the long
	// window's rate has moved, which is what makes a rollback within a
	// second possible. The zero value (no requests) skips the check.
	Recent metrics.Observation
	// NoBaseline skips the checks relative to legacy: at 100 % the legacy
	// side has no traffic to compare with, and that must not hold the
	// last step forever.
	NoBaseline bool
}

// MinRecentErrors is how many errors the recent window needs before its
// error rate can fail a verdict on its own.
const MinRecentErrors = 5

// Judge applies the SLOs to the input.
func Judge(slo plan.SLO, a plan.Analysis, in Input) Verdict {
	v := Verdict{Legacy: in.Legacy, New: in.New}
	add := func(c Check) { v.Checks = append(v.Checks, c) }
	nan := math.NaN()
	newEnough := in.New.Requests >= float64(a.MinRequests) && !math.IsNaN(in.New.Requests)
	legacyEnough := in.Legacy.Requests >= float64(a.MinRequests) && !math.IsNaN(in.Legacy.Requests)
	tooFew := fmt.Sprintf("new side has %s requests in the window, fewer than the %d a verdict needs", num(in.New.Requests), a.MinRequests)
	noBaseline := fmt.Sprintf("legacy side has %s requests in the window, fewer than the %d a comparison needs", num(in.Legacy.Requests), a.MinRequests)

	// A burst of errors right now, judged before the long window catches up.
	if r := in.Recent; r.Requests > 0 && r.Errors >= MinRecentErrors && slo.ErrorRate.Max > 0 {
		rate := r.Errors / r.Requests
		if rate > slo.ErrorRate.Max.Fraction() {
			add(Check{Name: "error rate (recent)", Result: Fail, Value: rate, Limit: slo.ErrorRate.Max.Fraction(), Baseline: nan, Unit: "ratio",
				Reason: fmt.Sprintf("new side failed %s of %s requests just now (%s), above the %s limit", num(r.Errors), num(r.Requests), pct(rate), slo.ErrorRate.Max)})
		}
	}

	newRate := in.New.ErrorRate()
	legacyRate := in.Legacy.ErrorRate()
	if slo.ErrorRate.Max > 0 {
		c := Check{Name: "error rate", Value: newRate, Limit: slo.ErrorRate.Max.Fraction(), Baseline: nan, Unit: "ratio"}
		switch {
		case !newEnough || math.IsNaN(newRate):
			c.Result, c.Reason = Inconclusive, tooFew
		case newRate > c.Limit:
			c.Result, c.Reason = Fail, fmt.Sprintf("new side error rate %s is above the %s limit", pct(newRate), slo.ErrorRate.Max)
		default:
			c.Result, c.Reason = Pass, fmt.Sprintf("new side error rate %s is within %s", pct(newRate), slo.ErrorRate.Max)
		}
		add(c)
	}
	if slo.ErrorRate.MaxIncrease > 0 && !in.NoBaseline {
		c := Check{Name: "error rate vs legacy", Value: newRate, Baseline: legacyRate, Unit: "ratio"}
		c.Limit = legacyRate + slo.ErrorRate.MaxIncrease.Fraction()
		switch {
		case !newEnough || math.IsNaN(newRate):
			c.Result, c.Reason = Inconclusive, tooFew
		case !legacyEnough || math.IsNaN(legacyRate):
			c.Result, c.Reason = Inconclusive, noBaseline
		case newRate > c.Limit:
			c.Result, c.Reason = Fail, fmt.Sprintf("new side error rate %s exceeds legacy's %s by more than %s points", pct(newRate), pct(legacyRate), slo.ErrorRate.MaxIncrease)
		default:
			c.Result, c.Reason = Pass, fmt.Sprintf("new side error rate %s vs legacy %s", pct(newRate), pct(legacyRate))
		}
		add(c)
	}
	if slo.SuccessRate > 0 {
		success := 1 - newRate
		c := Check{Name: "success rate", Value: success, Limit: slo.SuccessRate.Fraction(), Baseline: nan, Unit: "ratio"}
		switch {
		case !newEnough || math.IsNaN(newRate):
			c.Result, c.Reason = Inconclusive, tooFew
		case success < c.Limit:
			c.Result, c.Reason = Fail, fmt.Sprintf("new side success rate %s is below the %s minimum", pct(success), slo.SuccessRate)
		default:
			c.Result, c.Reason = Pass, fmt.Sprintf("new side success rate %s meets %s", pct(success), slo.SuccessRate)
		}
		add(c)
	}
	if slo.LatencyP99.Max > 0 {
		limit := slo.LatencyP99.Max.D().Seconds()
		c := Check{Name: "p99 latency", Value: in.New.P99, Limit: limit, Baseline: nan, Unit: "s"}
		switch {
		case !newEnough || math.IsNaN(in.New.P99):
			c.Result, c.Reason = Inconclusive, tooFew
		case in.New.P99 > limit:
			c.Result, c.Reason = Fail, fmt.Sprintf("new side p99 %s is above the %s limit", dur(in.New.P99), dur(limit))
		default:
			c.Result, c.Reason = Pass, fmt.Sprintf("new side p99 %s is within %s", dur(in.New.P99), dur(limit))
		}
		add(c)
	}
	if slo.LatencyP99.MaxIncrease > 0 && !in.NoBaseline {
		c := Check{Name: "p99 latency vs legacy", Value: in.New.P99, Baseline: in.Legacy.P99, Unit: "s"}
		c.Limit = in.Legacy.P99 * (1 + slo.LatencyP99.MaxIncrease.Fraction())
		switch {
		case !newEnough || math.IsNaN(in.New.P99):
			c.Result, c.Reason = Inconclusive, tooFew
		case !legacyEnough || math.IsNaN(in.Legacy.P99):
			c.Result, c.Reason = Inconclusive, noBaseline
		case in.New.P99 > c.Limit:
			c.Result, c.Reason = Fail, fmt.Sprintf("new side p99 %s is more than %s above legacy's %s", dur(in.New.P99), slo.LatencyP99.MaxIncrease, dur(in.Legacy.P99))
		default:
			c.Result, c.Reason = Pass, fmt.Sprintf("new side p99 %s vs legacy %s (%s)", dur(in.New.P99), dur(in.Legacy.P99), change(in.New.P99, in.Legacy.P99))
		}
		add(c)
	}
	if mw := slo.MannWhitney; mw != nil && !in.NoBaseline {
		add(mannWhitneyCheck(mw, in.Legacy.Latencies, in.New.Latencies))
	}

	v.Result = Pass
	for _, c := range v.Checks {
		if c.Result == Fail {
			v.Result, v.Reason = Fail, c.Reason
			break
		}
		if c.Result == Inconclusive && v.Result == Pass {
			v.Result, v.Reason = Inconclusive, c.Reason
		}
	}
	if len(v.Checks) == 0 {
		v.Result, v.Reason = Inconclusive, "no SLO to check"
	}
	if v.Result == Pass {
		v.Reason = "all checks pass"
	}
	return v
}

func mannWhitneyCheck(mw *plan.MannWhitney, legacy, newer []float64) Check {
	c := Check{Name: "latency distribution (Mann–Whitney U)", Unit: "p", Limit: 1 - mw.Confidence.Fraction(), Baseline: median(legacy), Value: median(newer)}
	if len(legacy) < mw.MinSamples || len(newer) < mw.MinSamples {
		c.Result = Inconclusive
		c.Reason = fmt.Sprintf("latency samples legacy %d, new %d: the test needs %d per side", len(legacy), len(newer), mw.MinSamples)
		return c
	}
	p := MannWhitneyGreater(newer, legacy)
	effect := c.Value / c.Baseline
	alpha := c.Limit
	switch {
	case p < alpha && effect > 1+mw.MinEffect.Fraction():
		c.Result = Fail
		c.Reason = fmt.Sprintf("new side latencies are higher than legacy's (p=%.4f < %.4f; median %s vs %s, %s)", p, alpha, dur(c.Value), dur(c.Baseline), change(c.Value, c.Baseline))
	default:
		c.Result = Pass
		c.Reason = fmt.Sprintf("no significant latency regression (p=%.4f; median %s vs %s)", p, dur(c.Value), dur(c.Baseline))
	}
	c.Value = p
	return c
}

// MannWhitneyGreater returns the one-sided p-value of the Mann–Whitney U
// test for the hypothesis that values in x tend to be greater than values
// in y, by the normal approximation with tie correction and continuity
// correction (good for the sample sizes the judge requires).
func MannWhitneyGreater(x, y []float64) float64 {
	n1, n2 := float64(len(x)), float64(len(y))
	if n1 == 0 || n2 == 0 {
		return math.NaN()
	}
	type obs struct {
		v    float64
		from int
	}
	all := make([]obs, 0, len(x)+len(y))
	for _, v := range x {
		all = append(all, obs{v, 0})
	}
	for _, v := range y {
		all = append(all, obs{v, 1})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].v < all[j].v })
	n := n1 + n2
	var rankX, tieTerm float64
	for i := 0; i < len(all); {
		j := i
		for j < len(all) && all[j].v == all[i].v {
			j++
		}
		avg := float64(i+j+1) / 2 // ranks are 1-based: (i+1 + j) / 2
		t := float64(j - i)
		tieTerm += t*t*t - t
		for k := i; k < j; k++ {
			if all[k].from == 0 {
				rankX += avg
			}
		}
		i = j
	}
	u := rankX - n1*(n1+1)/2
	mean := n1 * n2 / 2
	sigma := math.Sqrt(n1 * n2 / 12 * ((n + 1) - tieTerm/(n*(n-1))))
	if sigma == 0 {
		return 0.5
	}
	z := (u - mean - 0.5) / sigma
	return 0.5 * math.Erfc(z/math.Sqrt2)
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

func num(f float64) string {
	if math.IsNaN(f) {
		return "no"
	}
	return fmt.Sprintf("%.0f", f)
}

func pct(f float64) string {
	if math.IsNaN(f) {
		return "n/a"
	}
	return fmt.Sprintf("%.2f%%", f*100)
}

func dur(seconds float64) string {
	if math.IsNaN(seconds) {
		return "n/a"
	}
	d := time.Duration(seconds * float64(time.Second))
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	default:
		return d.Round(time.Microsecond).String()
	}
}

func change(v, base float64) string {
	if math.IsNaN(v) || math.IsNaN(base) || base == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%+.0f%%", (v/base-1)*100)
}
