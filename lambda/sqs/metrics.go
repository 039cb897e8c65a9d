package sqs

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cutoverhq/cutover/lambda/internal/promreg"
)

// metrics are the source's own Prometheus metrics; the runtime counts
// invocations, errors and durations.
type metrics struct {
	received      prometheus.Counter
	messages      *prometheus.CounterVec
	extensions    prometheus.Counter
	receiveErrors prometheus.Counter
	throttled     prometheus.Counter
	batchSize     prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer, queue string, log *slog.Logger) *metrics {
	labels := prometheus.Labels{"queue": queue}
	m := &metrics{
		received: prometheus.NewCounter(prometheus.CounterOpts{Name: "cutover_lambda_sqs_received_messages_total",
			Help: "Messages received from the queue.", ConstLabels: labels}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cutover_lambda_sqs_messages_total",
			Help:        "Messages by what became of them: deleted (handled), failed (left to return after their visibility timeout), released (not invoked, made visible at once), undeleted (handled but the delete failed: will come again).",
			ConstLabels: labels}, []string{"outcome"}),
		extensions: prometheus.NewCounter(prometheus.CounterOpts{Name: "cutover_lambda_sqs_visibility_extensions_total",
			Help: "Visibility timeout extensions of held messages.", ConstLabels: labels}),
		receiveErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "cutover_lambda_sqs_receive_errors_total",
			Help: "ReceiveMessage calls that failed after the SDK's retries.", ConstLabels: labels}),
		throttled: prometheus.NewCounter(prometheus.CounterOpts{Name: "cutover_lambda_sqs_throttled_total",
			Help: "Batches that found no free function process and waited.", ConstLabels: labels}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "cutover_lambda_sqs_batch_size",
			Help: "Messages per invocation.", ConstLabels: labels, Buckets: []float64{1, 2, 5, 10, 25, 50, 100, 250, 1000, 10000}}),
	}
	m.received = promreg.Use(reg, log, m.received)
	m.messages = promreg.Use(reg, log, m.messages)
	m.extensions = promreg.Use(reg, log, m.extensions)
	m.receiveErrors = promreg.Use(reg, log, m.receiveErrors)
	m.throttled = promreg.Use(reg, log, m.throttled)
	m.batchSize = promreg.Use(reg, log, m.batchSize)
	return m
}
