package promreg

import (
	"io"
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestSecondSourceCountsIntoTheRegisteredMetric: a second source for the
// same queue gets the collector already registered, so what it counts is
// exported instead of lost.
func TestSecondSourceCountsIntoTheRegisteredMetric(t *testing.T) {
	reg := prometheus.NewRegistry()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	opts := prometheus.CounterOpts{Name: "x_total", Help: "x", ConstLabels: prometheus.Labels{"queue": "q"}}
	first := Use(reg, log, prometheus.NewCounter(opts))
	second := Use(reg, log, prometheus.NewCounter(opts))
	first.Inc()
	second.Inc()
	mfs, err := reg.Gather()
	if err != nil || len(mfs) != 1 || len(mfs[0].GetMetric()) != 1 {
		t.Fatalf("gathered %v (%v), want one series", mfs, err)
	}
	if got := mfs[0].GetMetric()[0].GetCounter().GetValue(); got != 2 {
		t.Fatalf("the registered counter holds %v, want both sources' 2", got)
	}
}

// TestNilRegistry: without a registry the collector is used as it is.
func TestNilRegistry(t *testing.T) {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "y_total", Help: "y"})
	if Use(nil, slog.Default(), c) != c {
		t.Fatal("Use(nil, …) replaced the collector")
	}
}
