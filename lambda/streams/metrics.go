package streams

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cutoverhq/cutover/lambda/internal/promreg"
)

// metrics are the source's own Prometheus metrics
// (cutover_lambda_kinesis_… or cutover_lambda_dynamodb_…, labelled
// stream); the runtime counts invocations, errors and durations.
type metrics struct {
	records          *prometheus.CounterVec
	retries          prometheus.Counter
	readErrors       prometheus.Counter
	readThrottled    prometheus.Counter
	throttled        prometheus.Counter
	trimmed          prometheus.Counter
	checkpointErrors prometheus.Counter
	shards           prometheus.Gauge
	leader           prometheus.Gauge
	iteratorAge      *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer, kind, stream string, log *slog.Logger) *metrics {
	labels := prometheus.Labels{"stream": stream}
	name := func(n string) string { return "cutover_lambda_" + kind + "_" + n }
	m := &metrics{
		records: prometheus.NewCounterVec(prometheus.CounterOpts{Name: name("records_total"),
			Help:        "Records by what became of them: checkpointed (the function handled them), skipped (after --max-retries), expired (older than --max-record-age).",
			ConstLabels: labels}, []string{"outcome"}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{Name: name("batch_retries_total"),
			Help: "Failed batches retried (or skipped at their limit).", ConstLabels: labels}),
		readErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: name("read_errors_total"),
			Help: "Failed ListShards/DescribeStream, GetShardIterator and GetRecords calls, throttling aside.", ConstLabels: labels}),
		readThrottled: prometheus.NewCounter(prometheus.CounterOpts{Name: name("read_throttled_total"),
			Help: "Reads the service throttled after the SDK's own retries.", ConstLabels: labels}),
		throttled: prometheus.NewCounter(prometheus.CounterOpts{Name: name("throttled_total"),
			Help: "Batches that found no free function process and waited.", ConstLabels: labels}),
		trimmed: prometheus.NewCounter(prometheus.CounterOpts{Name: name("trimmed_total"),
			Help: "Times a shard's position had passed the stream's retention: records were lost unread.", ConstLabels: labels}),
		checkpointErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: name("checkpoint_errors_total"),
			Help: "Checkpoint saves that failed; records after the last saved one are invoked again after a restart.", ConstLabels: labels}),
		shards: prometheus.NewGauge(prometheus.GaugeOpts{Name: name("shards"),
			Help: "Shards being read now.", ConstLabels: labels}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{Name: name("leader"),
			Help: "1 while this process reads the stream (with --checkpoint-configmap: holds its Lease), 0 while it stands by; summed over replicas, 1.", ConstLabels: labels}),
		iteratorAge: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name("iterator_age_seconds"),
			Help: "Per shard, how far the last read was behind the newest record (Lambda's IteratorAge).", ConstLabels: labels}, []string{"shard"}),
	}
	m.records = promreg.Use(reg, log, m.records)
	m.retries = promreg.Use(reg, log, m.retries)
	m.readErrors = promreg.Use(reg, log, m.readErrors)
	m.readThrottled = promreg.Use(reg, log, m.readThrottled)
	m.throttled = promreg.Use(reg, log, m.throttled)
	m.trimmed = promreg.Use(reg, log, m.trimmed)
	m.checkpointErrors = promreg.Use(reg, log, m.checkpointErrors)
	m.shards = promreg.Use(reg, log, m.shards)
	m.leader = promreg.Use(reg, log, m.leader)
	m.iteratorAge = promreg.Use(reg, log, m.iteratorAge)
	return m
}
