package lambda

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the runtime's Prometheus series. Names follow Lambda's own
// CloudWatch metrics (Invocations, Errors, Duration, Throttles,
// ConcurrentExecutions) so dashboards translate one to one.
type metrics struct {
	invocations  prometheus.Counter
	errors       *prometheus.CounterVec
	duration     prometheus.Histogram
	throttles    prometheus.Counter
	coldStarts   prometheus.Counter
	initErrors   prometheus.Counter
	initDuration prometheus.Histogram
	busy         prometheus.Gauge
	processes    prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		invocations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cutover_lambda_invocations_total",
			Help: "Invocations handed to a function process.",
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cutover_lambda_errors_total",
			Help: "Invocations that failed, by kind: error (the function reported one), timeout, crash (the process exited or failed its init).",
		}, []string{"kind"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cutover_lambda_duration_seconds",
			Help:    "Time from handing an invocation to a process to its answer.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900},
		}),
		throttles: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cutover_lambda_throttles_total",
			Help: "Invocations refused because every function process stayed busy for the throttle wait.",
		}),
		coldStarts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cutover_lambda_cold_starts_total",
			Help: "Invocations that were the first of their process.",
		}),
		initErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cutover_lambda_init_errors_total",
			Help: "Function processes that failed before asking for their first invocation.",
		}),
		initDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cutover_lambda_init_duration_seconds",
			Help:    "Time from starting a function process to its first request for an invocation.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		busy: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cutover_lambda_concurrent_executions",
			Help: "Invocations running now (Lambda's ConcurrentExecutions); a KEDA prometheus trigger can scale on it.",
		}),
		processes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cutover_lambda_processes",
			Help: "Function processes started and not yet exited.",
		}),
	}
	for _, k := range []string{"error", "timeout", "crash"} {
		m.errors.WithLabelValues(k)
	}
	if reg != nil {
		reg.MustRegister(m.invocations, m.errors, m.duration, m.throttles, m.coldStarts, m.initErrors, m.initDuration, m.busy, m.processes)
	}
	return m
}

// observe counts a finished invocation.
func (m *metrics) observe(resp Response) {
	if resp.Duration > 0 {
		m.duration.Observe(resp.Duration.Seconds())
	}
	if resp.Err != nil {
		m.errors.WithLabelValues(outcome(resp.Err)).Inc()
	}
}
