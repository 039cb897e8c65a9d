// Package promreg registers the event sources' own Prometheus metrics.
package promreg

import (
	"errors"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers cs with reg, which may be nil (no metrics). A metric
// already registered (a second source for the same queue, group or
// stream) is silently kept: the collector passed here then counts unseen.
// Any other refusal is logged; a source runs without its metrics rather
// than not at all.
func Register(reg prometheus.Registerer, log *slog.Logger, cs ...prometheus.Collector) {
	if reg == nil {
		return
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			var dup prometheus.AlreadyRegisteredError
			if !errors.As(err, &dup) {
				log.Warn("cannot register metric", "error", err.Error())
			}
		}
	}
}
