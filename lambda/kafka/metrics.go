package kafka

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cutoverhq/cutover/lambda/internal/promreg"
)

// metrics are the source's own Prometheus metrics; the runtime counts
// invocations, errors and durations.
type metrics struct {
	records      *prometheus.CounterVec
	retries      prometheus.Counter
	commitErrors prometheus.Counter
	fetchErrors  prometheus.Counter
	throttled    prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, group string, log *slog.Logger) *metrics {
	labels := prometheus.Labels{"group": group}
	m := &metrics{
		records: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cutover_lambda_kafka_records_total",
			Help:        "Records by what became of them: committed (the function handled them), skipped (after --max-retries), expired (older than --max-record-age).",
			ConstLabels: labels}, []string{"outcome"}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{Name: "cutover_lambda_kafka_batch_retries_total",
			Help: "Failed batches retried (or skipped at their limit).", ConstLabels: labels}),
		commitErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "cutover_lambda_kafka_commit_errors_total",
			Help: "Offset commits that failed; their records may be invoked again.", ConstLabels: labels}),
		fetchErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "cutover_lambda_kafka_fetch_errors_total",
			Help: "Fetch errors the client reported.", ConstLabels: labels}),
		throttled: prometheus.NewCounter(prometheus.CounterOpts{Name: "cutover_lambda_kafka_throttled_total",
			Help: "Batches that found no free function process and waited.", ConstLabels: labels}),
	}
	m.records = promreg.Use(reg, log, m.records)
	m.retries = promreg.Use(reg, log, m.retries)
	m.commitErrors = promreg.Use(reg, log, m.commitErrors)
	m.fetchErrors = promreg.Use(reg, log, m.fetchErrors)
	m.throttled = promreg.Use(reg, log, m.throttled)
	return m
}
