// Package promreg registers the event sources' own Prometheus metrics.
package promreg

import (
	"errors"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
)

// Use registers c with reg, which may be nil (no metrics), and returns
// the collector to count with: c, or the one already registered under the
// same name and labels (a second source for the same queue, group or
// stream), so that both sources' counts are exported together instead of
// one counting unseen. Any other refusal is logged; a source runs without
// its metrics rather than not at all.
func Use[T prometheus.Collector](reg prometheus.Registerer, log *slog.Logger, c T) T {
	if reg == nil {
		return c
	}
	err := reg.Register(c)
	if err == nil {
		return c
	}
	var dup prometheus.AlreadyRegisteredError
	if errors.As(err, &dup) {
		if existing, ok := dup.ExistingCollector.(T); ok {
			return existing
		}
	}
	log.Warn("cannot register metric", "error", err.Error())
	return c
}
