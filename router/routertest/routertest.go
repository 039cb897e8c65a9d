// Package routertest is the conformance suite every router.Router passes:
// weights set are weights read back, setting is idempotent, bad weights are
// refused without changing anything, a cancelled context is honoured, and,
// when the test can send traffic through the data plane, the traffic
// really splits as the weights say.
//
// Each router package calls Run from its own test with a Harness that
// builds the router against real servers (the embedded proxy, HAProxy,
// NGINX, a kube-apiserver, or the AWS protocol stub).
package routertest

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/router"
)

// Harness tells the suite how to reach one router implementation.
type Harness struct {
	// New returns a router for a fresh pair of sides. It is called once per
	// subtest; the router starts at whatever weights its data plane has.
	New func(t *testing.T) router.Router
	// Send, when not nil, sends n requests through the data plane and
	// returns how many each side answered. Routers whose data plane the
	// test cannot reach (Gateway API without a controller, the ALB stub)
	// leave it nil.
	Send func(t *testing.T, r router.Router, n int) (legacy, new int)
	// Weights are the new-side weights the suite sets; nil means
	// 0, 10, 33, 50, 90, 100, 0. Routers that only take some weights (a
	// static HAProxy balance algorithm: 0 and 100) name them here.
	Weights []int
	// Settle waits until a weight change is visible in the traffic (NGINX
	// reloads, ALB propagation); zero means no wait.
	Settle time.Duration
	// External, when not nil, moves the data plane's weights to w the way
	// something outside cutover would (an operator on the runtime API, a
	// hand edit of the rule, another field manager). The suite then checks
	// that Weights reads the change back rather than what the router last
	// set: a shift finds traffic moved behind its back only so.
	External func(t *testing.T, r router.Router, w router.Weights)
}

// Run runs the suite.
func Run(t *testing.T, h Harness) {
	weights := h.Weights
	if weights == nil {
		weights = []int{0, 10, 33, 50, 90, 100, 0}
	}
	ctx := context.Background()

	t.Run("WeightsReadBack", func(t *testing.T) {
		r := h.New(t)
		for _, w := range weights {
			want := router.ForNew(w)
			if err := r.SetWeights(ctx, want); err != nil {
				t.Fatalf("SetWeights(%v): %v", want, err)
			}
			got, err := r.Weights(ctx)
			if err != nil {
				t.Fatalf("Weights after %v: %v", want, err)
			}
			if got != want {
				t.Fatalf("set %v, read back %v", want, got)
			}
		}
	})

	t.Run("ReadsWhatChangedOutside", func(t *testing.T) {
		if h.External == nil {
			t.Skip("the harness cannot change the data plane outside the router")
		}
		r := h.New(t)
		set := router.ForNew(weights[0])
		if err := r.SetWeights(ctx, set); err != nil {
			t.Fatalf("SetWeights(%v): %v", set, err)
		}
		moved := set
		for _, w := range weights {
			if w != weights[0] {
				moved = router.ForNew(w)
				break
			}
		}
		h.External(t, r, moved)
		got, err := r.Weights(ctx)
		if err != nil {
			t.Fatalf("Weights after the change outside: %v", err)
		}
		if got != moved {
			t.Fatalf("set %v, moved outside to %v, read back %v", set, moved, got)
		}
	})

	t.Run("SetIsIdempotent", func(t *testing.T) {
		r := h.New(t)
		w := router.ForNew(weights[len(weights)/2])
		for i := 0; i < 3; i++ {
			if err := r.SetWeights(ctx, w); err != nil {
				t.Fatalf("SetWeights #%d: %v", i+1, err)
			}
		}
		if got, err := r.Weights(ctx); err != nil || got != w {
			t.Fatalf("after setting %v three times: %v %v", w, got, err)
		}
	})

	t.Run("BadWeightsRefusedAndNothingChanges", func(t *testing.T) {
		r := h.New(t)
		start := router.ForNew(weights[0])
		if err := r.SetWeights(ctx, start); err != nil {
			t.Fatal(err)
		}
		for _, bad := range []router.Weights{{Legacy: 60, New: 60}, {Legacy: -10, New: 110}, {Legacy: 0, New: 0}} {
			if err := r.SetWeights(ctx, bad); err == nil {
				t.Errorf("SetWeights(%v) accepted", bad)
			}
		}
		if got, err := r.Weights(ctx); err != nil || got != start {
			t.Fatalf("weights after refused changes: %v %v, want %v", got, err, start)
		}
	})

	t.Run("CancelledContext", func(t *testing.T) {
		r := h.New(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := r.SetWeights(cctx, router.ForNew(weights[1])); err == nil {
			// An in-process router may finish before it looks at the
			// context; then the change must at least be whole.
			if got, err := r.Weights(ctx); err != nil || got != router.ForNew(weights[1]) {
				t.Fatalf("a set that returned nil left %v %v", got, err)
			}
		}
	})

	if h.Send == nil {
		return
	}
	t.Run("TrafficFollowsTheWeights", func(t *testing.T) {
		r := h.New(t)
		const n = 400
		for _, w := range []int{weights[0], weights[len(weights)/2], 100} {
			if !contains(weights, w) {
				continue
			}
			if err := r.SetWeights(ctx, router.ForNew(w)); err != nil {
				t.Fatal(err)
			}
			if h.Settle > 0 {
				time.Sleep(h.Settle)
			}
			legacy, newer := h.Send(t, r, n)
			if legacy+newer != n {
				t.Fatalf("at %d%%: %d of %d requests answered", w, legacy+newer, n)
			}
			share := float64(newer) / n * 100
			// Four binomial standard deviations, at least 2 points.
			tol := math.Max(2, 4*math.Sqrt(float64(w)*(100-float64(w))/n))
			if math.Abs(share-float64(w)) > tol {
				t.Errorf("at %d%% the new side answered %.1f%% (%d of %d), tolerance %.1f", w, share, newer, n, tol)
			}
		}
	})
}

func contains(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// Send is a Harness.Send for data planes whose servers answer with their
// side's name, "legacy" or "new": it sends n GETs to url, each to its own
// path, on a client of its own, and fails the test on any other answer.
func Send(t *testing.T, url string, n int) (legacy, newer int) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{}}
	defer c.CloseIdleConnections()
	for i := 0; i < n; i++ {
		resp, err := c.Get(url + "/" + fmt.Sprint(i))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch string(b) {
		case "legacy":
			legacy++
		case "new":
			newer++
		default:
			t.Fatalf("request %d: %s %q", i, resp.Status, b)
		}
	}
	return legacy, newer
}
