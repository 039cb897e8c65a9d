package judge

import (
	"math"
	"math/rand"
	"strings"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/metrics"
	"github.com/cutoverhq/cutover/plan"
)

func obs(req, errs float64, p99 time.Duration) metrics.Observation {
	return metrics.Observation{Requests: req, Errors: errs, P50: p99.Seconds() / 2, P99: p99.Seconds()}
}

var analysis = plan.Analysis{MinRequests: 20}

func TestThresholds(t *testing.T) {
	slo := plan.SLO{
		ErrorRate:   plan.RateLimit{Max: 1, MaxIncrease: 0.5},
		SuccessRate: 98,
		LatencyP99:  plan.LatencyLimit{Max: plan.Duration(500 * time.Millisecond), MaxIncrease: 20},
	}
	cases := []struct {
		name        string
		legacy, new metrics.Observation
		want        Result
		reason      string
	}{
		{"healthy", obs(1000, 1, 200*time.Millisecond), obs(100, 0, 180*time.Millisecond), Pass, "all checks pass"},
		{"error rate over the absolute limit", obs(1000, 0, 200*time.Millisecond), obs(100, 2, 180*time.Millisecond), Fail, "above the 1% limit"},
		{"error rate over legacy by more than allowed", obs(1000, 1, 200*time.Millisecond), obs(1000, 7, 180*time.Millisecond), Fail, "exceeds legacy"},
		{"p99 over the absolute limit", obs(1000, 0, 600*time.Millisecond), obs(100, 0, 510*time.Millisecond), Fail, "above the 500ms limit"},
		{"p99 20% slower than legacy", obs(1000, 0, 100*time.Millisecond), obs(100, 0, 130*time.Millisecond), Fail, "above legacy"},
		{"too few new requests", obs(1000, 0, 100*time.Millisecond), obs(5, 0, 100*time.Millisecond), Inconclusive, "fewer than the 20"},
		{"no baseline", obs(3, 0, 100*time.Millisecond), obs(100, 0, 100*time.Millisecond), Inconclusive, "legacy side has 3"},
		{"NaN is no data", metrics.NoData(), metrics.NoData(), Inconclusive, "fewer than"},
		{"a failure beats no baseline", obs(3, 0, 100*time.Millisecond), obs(100, 50, 100*time.Millisecond), Fail, "above the 1% limit"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := Judge(slo, analysis, Input{Legacy: c.legacy, New: c.new})
			if v.Result != c.want || !strings.Contains(v.Reason, c.reason) {
				t.Fatalf("got %s (%q), want %s containing %q", v.Result, v.Reason, c.want, c.reason)
			}
		})
	}
}

func TestNoBaselineSkipsRelativeChecksAtFullWeight(t *testing.T) {
	slo := plan.SLO{ErrorRate: plan.RateLimit{Max: 1, MaxIncrease: 0.5}, LatencyP99: plan.LatencyLimit{MaxIncrease: 10}}
	v := Judge(slo, analysis, Input{Legacy: obs(0, 0, 0), New: obs(500, 0, 90*time.Millisecond), NoBaseline: true})
	if v.Result != Pass {
		t.Fatalf("got %s: %s", v.Result, v.Reason)
	}
	for _, c := range v.Checks {
		if strings.Contains(c.Name, "legacy") {
			t.Errorf("relative check %q ran without a baseline", c.Name)
		}
	}
}

func TestRecentErrorBurstFailsBeforeTheWindowMoves(t *testing.T) {
	slo := plan.SLO{ErrorRate: plan.RateLimit{Max: 1}}
	in := Input{Legacy: obs(10000, 0, 0), New: obs(2000, 6, 0), Recent: metrics.Observation{Requests: 8, Errors: 6}}
	v := Judge(slo, analysis, in)
	if v.Result != Fail || !strings.Contains(v.Reason, "just now") {
		t.Fatalf("got %s: %s", v.Result, v.Reason)
	}
	// Fewer than MinRecentErrors errors do not decide on their own.
	in.Recent = metrics.Observation{Requests: 4, Errors: 4}
	if v := Judge(slo, analysis, in); v.Result != Pass {
		t.Fatalf("four recent errors decided: %s %s", v.Result, v.Reason)
	}
}

func TestMannWhitneyHandComputed(t *testing.T) {
	// x all above y: U = n1*n2 = 6, mean 3, sigma sqrt(3), z = (6-3-0.5)/sqrt(3).
	p := MannWhitneyGreater([]float64{3, 4, 5}, []float64{1, 2})
	want := 0.5 * math.Erfc((2.5/math.Sqrt(3))/math.Sqrt2)
	if math.Abs(p-want) > 1e-12 {
		t.Fatalf("p = %v, want %v", p, want)
	}
	// All ties: no evidence either way.
	if p := MannWhitneyGreater([]float64{1, 1, 1}, []float64{1, 1}); p != 0.5 {
		t.Errorf("all ties p = %v, want 0.5", p)
	}
}

func TestMannWhitneyAgainstExactPermutation(t *testing.T) {
	// For small samples the exact distribution of U is computable by
	// enumeration; the normal approximation must be close to it.
	x := []float64{12, 15, 19, 22, 25, 31}
	y := []float64{10, 11, 14, 16, 18, 20}
	all := append(append([]float64{}, x...), y...)
	uOf := func(xs, ys []float64) int {
		u := 0
		for _, a := range xs {
			for _, b := range ys {
				if a > b {
					u++
				}
			}
		}
		return u
	}
	obsU := uOf(x, y)
	n, k := len(all), len(x)
	greater, total := 0, 0
	for mask := 0; mask < 1<<n; mask++ {
		if popcount(mask) != k {
			continue
		}
		var xs, ys []float64
		for i := 0; i < n; i++ {
			if mask&(1<<i) != 0 {
				xs = append(xs, all[i])
			} else {
				ys = append(ys, all[i])
			}
		}
		total++
		if uOf(xs, ys) >= obsU {
			greater++
		}
	}
	exact := float64(greater) / float64(total)
	approx := MannWhitneyGreater(x, y)
	if math.Abs(exact-approx) > 0.01 {
		t.Fatalf("approx p %v, exact %v", approx, exact)
	}
}

func popcount(x int) int {
	n := 0
	for ; x != 0; x &= x - 1 {
		n++
	}
	return n
}

func TestMannWhitneyCheck(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	sample := func(n int, mean float64) []float64 {
		out := make([]float64, n)
		for i := range out {
			out[i] = mean * (0.8 + 0.4*r.Float64())
		}
		return out
	}
	slo := plan.SLO{MannWhitney: &plan.MannWhitney{Confidence: 99, MinSamples: 50, MinEffect: 10}}
	in := Input{Legacy: obs(1000, 0, 0), New: obs(1000, 0, 0)}
	in.Legacy.Latencies, in.New.Latencies = sample(200, 0.100), sample(200, 0.100)
	if v := Judge(slo, analysis, in); v.Result != Pass {
		t.Errorf("same distribution: %s %s", v.Result, v.Reason)
	}
	in.New.Latencies = sample(200, 0.150)
	if v := Judge(slo, analysis, in); v.Result != Fail || !strings.Contains(v.Reason, "higher than legacy") {
		t.Errorf("50%% slower: %s %s", v.Result, v.Reason)
	}
	in.New.Latencies = sample(200, 0.070)
	if v := Judge(slo, analysis, in); v.Result != Pass {
		t.Errorf("faster: %s %s", v.Result, v.Reason)
	}
	in.New.Latencies = sample(10, 0.300)
	if v := Judge(slo, analysis, in); v.Result != Inconclusive {
		t.Errorf("10 samples: %s %s", v.Result, v.Reason)
	}
}
