// Package kafka is the Kafka event source of `cutover lambda serve`: it
// feeds a Lambda function from Kafka topics (Amazon MSK or self-managed)
// as Lambda's Kafka event source mapping does, with the same event shape
// (eventSource "aws:kafka" or "SelfManagedKafka", records keyed
// "topic-partition" with base64 keys and values and signed-byte headers)
// and the same consumer group, so a moved function continues from the
// offsets Lambda committed.
//
// The source joins the consumer group with franz-go (cooperative-sticky
// balancing) and runs one worker per assigned partition:
//
//   - a partition's records are invoked in order, in batches of up to
//     --batch-size gathered within --batch-window (and the 6 MB
//     invocation payload), one invocation at a time per partition;
//     partitions run in parallel, up to the runtime's concurrency;
//   - the batch's offset is committed after the function succeeded, never
//     before: a crash or restart resumes at the last committed offset, so
//     nothing is lost and nothing committed is invoked again;
//   - a failed batch is retried, in place, with exponential backoff: the
//     partition does not move on. --max-retries N skips it after N
//     retries (logged with its offsets, counted in metrics),
//     --max-record-age drops records older than that, --bisect-on-error
//     splits a failing batch in halves, and --report-batch-item-failures
//     commits up to the first failed record the function reports and
//     retries from it, as Lambda does;
//   - on a rebalance, a revoked partition's worker finishes the batch it
//     is running and commits it before the partition goes to another
//     member; a lost partition (session expired) is dropped without a
//     commit.
//
// Delivery is at least once: a record whose batch succeeded but whose
// commit failed is invoked again by the next owner.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cutoverhq/cutover/lambda"
)

// Limits and defaults of Lambda's Kafka event source mapping.
const (
	// MaxBatchSize is the largest batch.
	MaxBatchSize = 10000
	// DefaultBatchSize is Lambda's default batch size for Kafka.
	DefaultBatchSize = 100
	// DefaultBatchWindow is Lambda's default batching window for Kafka.
	DefaultBatchWindow = 500 * time.Millisecond
	// MaxBatchWindow is the longest batching window.
	MaxBatchWindow = 300 * time.Second
	// MaxPayload is the largest event of a synchronous invocation.
	MaxPayload = 6 * 1024 * 1024
	// maxBackoff caps the wait between retries of a failed batch.
	maxBackoff = 30 * time.Second
)

// Starting positions, for a consumer group with no committed offset.
const (
	StartLatest      = "LATEST"
	StartTrimHorizon = "TRIM_HORIZON"
	StartAtTimestamp = "AT_TIMESTAMP"
)

// Config configures a Source.
type Config struct {
	// Brokers are the bootstrap servers, host:port. Required.
	Brokers []string
	// Topics are consumed. Required.
	Topics []string
	// ConsumerGroup is the group joined and committed to; the group
	// Lambda used continues from its offsets. Required.
	ConsumerGroup string
	// ClusterARN is the MSK cluster's ARN, the event's eventSourceArn.
	// Empty: none.
	ClusterARN string
	// Region is the MSK cluster's region (for IAM authentication). A
	// Region or a ClusterARN makes the source MSK (eventSource
	// "aws:kafka"). Empty with no ClusterARN: self-managed Kafka.
	Region string
	// StartingPosition is where a group without a committed offset
	// starts: LATEST, TRIM_HORIZON or AT_TIMESTAMP. Empty: LATEST.
	StartingPosition string
	// StartingTimestamp is the time AT_TIMESTAMP starts from.
	StartingTimestamp time.Time
	// BatchSize is the most records in one invocation, 1–10000. Zero:
	// 100, Lambda's default.
	BatchSize int
	// BatchWindow is how long a partition's batch gathers records after
	// its first one before it is invoked short of BatchSize, up to 300 s.
	// Zero: no wait (serve's flag defaults to Lambda's 500 ms).
	BatchWindow time.Duration
	// MaxRetries is how many times a failed batch is retried before it is
	// skipped. Nil: until it succeeds (Lambda's default, -1).
	MaxRetries *int
	// MaxRecordAge drops records older than this instead of invoking
	// them. Zero: no limit (Lambda's default, -1).
	MaxRecordAge time.Duration
	// BisectOnError splits a batch the function failed in two halves,
	// retried in order. False: the batch is retried whole.
	BisectOnError bool
	// ReportBatchItemFailures makes the function's batchItemFailures
	// answer count. False: any successful answer commits the batch.
	ReportBatchItemFailures bool
	// RetryBackoff is the wait before the first retry of a failed batch;
	// it doubles with each retry up to 30 s. Zero: 1 s.
	RetryBackoff time.Duration
	// Auth are the authentication settings. Empty: none, except for MSK
	// brokers on the IAM port (9098), which use AWS_MSK_IAM.
	Auth []Auth
	// TLS turns TLS on or off. Nil: on when there is any Auth or MSK
	// brokers are on a TLS port, off otherwise.
	TLS *bool
	// FunctionTimeout is the function's timeout: the consumer group's
	// rebalance timeout is set above it, so a member finishing a batch
	// before giving up its partition is not thrown out. Zero: 60 s.
	FunctionTimeout time.Duration
	// ClientOpts are added to the franz-go client's options (tests use
	// them for short timeouts). Nil: none.
	ClientOpts []kgo.Opt
	// Log receives the source's records. Nil: discarded.
	Log *slog.Logger
	// Registerer receives the source's metrics. Nil: none.
	Registerer prometheus.Registerer
}

// Source is the Kafka event source.
type Source struct {
	cfg         Config
	log         *slog.Logger
	metrics     *metrics
	eventSource string
	bootstrap   string

	// Set by Run.
	ctx context.Context
	inv lambda.Invoker

	mu      sync.Mutex
	workers map[string]*worker // by PartitionKey
}

var _ lambda.Source = (*Source)(nil)

// New checks cfg; it does no I/O.
func New(cfg Config) (*Source, error) {
	var brokers []string
	for _, b := range cfg.Brokers {
		for _, x := range strings.Split(b, ",") {
			if x = strings.TrimSpace(x); x != "" {
				brokers = append(brokers, x)
			}
		}
	}
	cfg.Brokers = brokers
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("no brokers (--brokers host:port,…)")
	}
	var topics []string
	for _, t := range cfg.Topics {
		for _, x := range strings.Split(t, ",") {
			if x = strings.TrimSpace(x); x != "" {
				topics = append(topics, x)
			}
		}
	}
	cfg.Topics = topics
	if len(cfg.Topics) == 0 {
		return nil, errors.New("no topic (--topic NAME)")
	}
	if cfg.ConsumerGroup == "" {
		return nil, errors.New("no consumer group (--consumer-group NAME)")
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.BatchSize < 1 || cfg.BatchSize > MaxBatchSize {
		return nil, fmt.Errorf("batch size %d is outside 1–%d", cfg.BatchSize, MaxBatchSize)
	}
	if cfg.BatchWindow < 0 || cfg.BatchWindow > MaxBatchWindow {
		return nil, fmt.Errorf("batch window %v is outside 0–%v", cfg.BatchWindow, MaxBatchWindow)
	}
	if cfg.MaxRetries != nil && *cfg.MaxRetries < 0 {
		cfg.MaxRetries = nil
	}
	if cfg.MaxRecordAge < 0 {
		cfg.MaxRecordAge = 0
	}
	switch cfg.StartingPosition = strings.ToUpper(cfg.StartingPosition); cfg.StartingPosition {
	case "":
		cfg.StartingPosition = StartLatest
	case StartLatest, StartTrimHorizon:
	case StartAtTimestamp:
		if cfg.StartingTimestamp.IsZero() {
			return nil, errors.New("AT_TIMESTAMP needs --starting-timestamp")
		}
	default:
		return nil, fmt.Errorf("starting position %q is not LATEST, TRIM_HORIZON or AT_TIMESTAMP", cfg.StartingPosition)
	}
	for _, a := range cfg.Auth {
		if a.Type != AuthMSKIAM && a.SecretEnv == "" {
			return nil, fmt.Errorf("--auth %s needs --auth-secret-env NAME", a.Type)
		}
	}
	if cfg.RetryBackoff <= 0 {
		cfg.RetryBackoff = time.Second
	}
	if cfg.FunctionTimeout <= 0 {
		cfg.FunctionTimeout = 60 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	s := &Source{cfg: cfg, workers: map[string]*worker{}, bootstrap: strings.Join(cfg.Brokers, ",")}
	s.eventSource = SourceSelfManaged
	if cfg.ClusterARN != "" || cfg.Region != "" {
		s.eventSource = SourceMSK
	}
	s.log = cfg.Log.With("source", "kafka", "group", cfg.ConsumerGroup, "topics", strings.Join(cfg.Topics, ","))
	s.metrics = newMetrics(cfg.Registerer, cfg.ConsumerGroup, s.log)
	return s, nil
}

// Run consumes until ctx ends; then running batches finish and are
// committed and the member leaves the group. It returns an error when the
// brokers cannot be reached or refuse the credentials at start, or
// authorization fails later.
func (s *Source) Run(ctx context.Context, inv lambda.Invoker) error {
	s.ctx, s.inv = ctx, inv
	opts := []kgo.Opt{
		kgo.SeedBrokers(s.cfg.Brokers...),
		kgo.ConsumerGroup(s.cfg.ConsumerGroup),
		kgo.ConsumeTopics(s.cfg.Topics...),
		kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(s.startOffset()),
		// Records of aborted transactions never reach the function.
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RebalanceTimeout(max(60*time.Second, s.cfg.FunctionTimeout+30*time.Second)),
		kgo.OnPartitionsAssigned(s.assigned),
		kgo.OnPartitionsRevoked(s.revoked),
		kgo.OnPartitionsLost(s.lost),
		kgo.WithLogger(kgoLogger{s.log}),
		kgo.ClientID("cutover-lambda"),
	}
	sec, err := s.security(ctx)
	if err != nil {
		return err
	}
	opts = append(append(opts, sec...), s.cfg.ClientOpts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = cl.Ping(pctx)
	cancel()
	if err != nil && ctx.Err() == nil {
		cl.Close()
		return fmt.Errorf("cannot reach brokers %s: %w", s.bootstrap, err)
	}
	s.log.Info("consuming", "eventSource", s.eventSource, "brokers", s.bootstrap, "batchSize", s.cfg.BatchSize,
		"batchWindow", s.cfg.BatchWindow.String(), "startingPosition", s.cfg.StartingPosition)

	var fatalErr error
	for ctx.Err() == nil && fatalErr == nil {
		fetches := cl.PollFetches(ctx)
		if fetches.IsClientClosed() {
			break
		}
		fetches.EachError(func(topic string, partition int32, err error) {
			if errors.Is(err, context.Canceled) || ctx.Err() != nil {
				return
			}
			if isFatal(err) {
				fatalErr = fmt.Errorf("kafka: %w", err)
				return
			}
			s.metrics.fetchErrors.Inc()
			s.log.Warn("fetch error", "topic", topic, "partition", partition, "error", err.Error())
		})
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			if len(p.Records) > 0 {
				s.dispatch(p.Topic, p.Partition, p.Records)
			}
		})
	}
	// Running batches finish and commit; then leave the group, which
	// hands the partitions over at once instead of after a session
	// timeout.
	s.stopWorkers(nil, true)
	cl.Close()
	return fatalErr
}

// isFatal says a fetch error is a refusal that retrying will not cure.
func isFatal(err error) bool {
	for _, e := range []error{kerr.SaslAuthenticationFailed, kerr.TopicAuthorizationFailed, kerr.GroupAuthorizationFailed, kerr.ClusterAuthorizationFailed} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func (s *Source) startOffset() kgo.Offset {
	switch s.cfg.StartingPosition {
	case StartTrimHorizon:
		return kgo.NewOffset().AtStart()
	case StartAtTimestamp:
		return kgo.NewOffset().AfterMilli(s.cfg.StartingTimestamp.UnixMilli())
	}
	return kgo.NewOffset().AtEnd()
}

func (s *Source) dispatch(topic string, partition int32, recs []*kgo.Record) {
	s.mu.Lock()
	w := s.workers[PartitionKey(topic, partition)]
	s.mu.Unlock()
	if w == nil {
		// Fetched just before the partition was revoked: its next owner
		// reads them from the committed offset.
		return
	}
	w.add(recs)
}

// assigned starts workers. The client is the callback's: group
// management can assign partitions before kgo.NewClient has returned.
func (s *Source) assigned(_ context.Context, cl *kgo.Client, m map[string][]int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for topic, parts := range m {
		for _, p := range parts {
			key := PartitionKey(topic, p)
			if s.workers[key] != nil {
				continue
			}
			w := newWorker(s, cl, topic, p)
			s.workers[key] = w
			go w.run()
		}
	}
	s.log.Info("partitions assigned", "partitions", fmt.Sprint(m))
}

func (s *Source) revoked(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	s.log.Info("partitions revoked; finishing their batches", "partitions", fmt.Sprint(m))
	s.stopWorkers(m, true)
}

func (s *Source) lost(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	s.log.Warn("partitions lost (session expired); their uncommitted records go to the next owner", "partitions", fmt.Sprint(m))
	s.stopWorkers(m, false)
}

// stopWorkers stops the workers of the given partitions (nil: all) and
// waits for them; with commit, a batch running to success is committed.
func (s *Source) stopWorkers(m map[string][]int32, commit bool) {
	var stopping []*worker
	s.mu.Lock()
	for key, w := range s.workers {
		if m != nil && !contains(m[w.topic], w.partition) {
			continue
		}
		delete(s.workers, key)
		stopping = append(stopping, w)
	}
	s.mu.Unlock()
	for _, w := range stopping {
		w.stopNow(commit)
	}
	for _, w := range stopping {
		<-w.done
	}
}

func contains(ps []int32, p int32) bool {
	for _, x := range ps {
		if x == p {
			return true
		}
	}
	return false
}

// worker runs one partition's batches, one at a time, in order.
type worker struct {
	s         *Source
	cl        *kgo.Client
	topic     string
	partition int32
	key       string

	mu     sync.Mutex
	buf    []*kgo.Record
	first  time.Time // when buf last turned non-empty
	paused bool

	wake     chan struct{} // cap 1
	stop     chan struct{}
	stopOnce sync.Once
	noCommit atomic.Bool
	done     chan struct{}
}

func newWorker(s *Source, cl *kgo.Client, topic string, partition int32) *worker {
	return &worker{s: s, cl: cl, topic: topic, partition: partition, key: PartitionKey(topic, partition),
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
}

func (w *worker) stopNow(commit bool) {
	if !commit {
		w.noCommit.Store(true)
	}
	w.stopOnce.Do(func() { close(w.stop) })
}

func (w *worker) stopped() bool {
	select {
	case <-w.stop:
		return true
	default:
		return false
	}
}

// pauseAt is how many buffered records pause fetching the partition;
// fetching resumes below half of it.
func (w *worker) pauseAt() int { return max(2*w.s.cfg.BatchSize, 1000) }

func (w *worker) add(recs []*kgo.Record) {
	w.mu.Lock()
	if len(w.buf) == 0 {
		w.first = time.Now()
	}
	w.buf = append(w.buf, recs...)
	if len(w.buf) >= w.pauseAt() && !w.paused {
		w.paused = true
		w.cl.PauseFetchPartitions(map[string][]int32{w.topic: {w.partition}})
		w.s.log.Debug("partition fetching paused: its worker is behind", "partition", w.key, "buffered", len(w.buf))
	}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *worker) run() {
	defer close(w.done)
	defer func() {
		w.mu.Lock()
		if w.paused {
			w.cl.ResumeFetchPartitions(map[string][]int32{w.topic: {w.partition}})
		}
		w.mu.Unlock()
	}()
	for {
		batch := w.next()
		if batch == nil {
			return
		}
		if !w.process(batch, 0) {
			return
		}
	}
}

// next waits for a batch: BatchSize records, the payload limit, or the
// window's end after the first record. Nil: the worker stopped.
func (w *worker) next() []*kgo.Record {
	cfg := w.s.cfg
	for {
		if w.stopped() {
			return nil
		}
		var wait time.Duration
		w.mu.Lock()
		if n := len(w.buf); n > 0 {
			left := cfg.BatchWindow - time.Since(w.first)
			take, size := 0, 0
			for take < n && take < cfg.BatchSize {
				rs := recordSize(w.buf[take])
				if take > 0 && size+rs > MaxPayload {
					break
				}
				size += rs
				take++
			}
			if take == cfg.BatchSize || take < n || left <= 0 {
				batch := w.buf[:take:take]
				w.buf = append([]*kgo.Record(nil), w.buf[take:]...)
				if len(w.buf) > 0 {
					w.first = time.Now()
				}
				if w.paused && len(w.buf) < w.pauseAt()/2 {
					w.paused = false
					w.cl.ResumeFetchPartitions(map[string][]int32{w.topic: {w.partition}})
					w.s.log.Debug("partition fetching resumed", "partition", w.key, "buffered", len(w.buf))
				}
				w.mu.Unlock()
				return batch
			}
			wait = left
		}
		w.mu.Unlock()
		var timer <-chan time.Time
		var t *time.Timer
		if wait > 0 {
			t = time.NewTimer(wait)
			timer = t.C
		}
		select {
		case <-w.wake:
		case <-timer:
		case <-w.stop:
		}
		if t != nil {
			t.Stop()
		}
	}
}

// process invokes one batch until it is committed or skipped; false means
// the worker stopped with the batch not done (its records go to the next
// owner from the committed offset).
func (w *worker) process(batch []*kgo.Record, attempt int) bool {
	s, cfg := w.s, w.s.cfg
	backoff := cfg.RetryBackoff
	// last is committed when the batch is done, covering records
	// dropped for their age.
	last := batch[len(batch)-1]
	for attempt := attempt; ; {
		if w.stopped() {
			return false
		}
		if cfg.MaxRecordAge > 0 {
			var young []*kgo.Record
			for _, r := range batch {
				if time.Since(r.Timestamp) <= cfg.MaxRecordAge {
					young = append(young, r)
				}
			}
			if dropped := len(batch) - len(young); dropped > 0 {
				s.log.Warn("records older than --max-record-age dropped", "partition", w.key, "dropped", dropped,
					"firstOffset", batch[0].Offset, "lastOffset", batch[len(batch)-1].Offset)
				s.metrics.records.WithLabelValues("expired").Add(float64(dropped))
			}
			if len(young) == 0 {
				w.commit(last)
				return true
			}
			batch = young
		}
		ev := Event{EventSource: s.eventSource, EventSourceARN: s.cfg.ClusterARN, BootstrapServers: s.bootstrap,
			Records: map[string][]Record{w.key: make([]Record, 0, len(batch))}}
		for _, r := range batch {
			ev.Records[w.key] = append(ev.Records[w.key], NewRecord(r))
		}
		payload, err := ev.Marshal()
		if err != nil {
			s.log.Error("cannot encode event", "partition", w.key, "error", err.Error())
			return false
		}
		resp, err := s.inv.Invoke(s.ctx, lambda.Invocation{Payload: payload})
		if errors.Is(err, lambda.ErrThrottled) && s.ctx.Err() == nil {
			s.metrics.throttled.Inc()
			if !w.sleep(200 * time.Millisecond) {
				return false
			}
			continue
		}
		if err != nil {
			// Never handed to the function: serve is stopping.
			return false
		}
		failure := ""
		bisect := false
		switch {
		case resp.Err != nil:
			failure = "function error: " + resp.Err.Error()
			bisect = cfg.BisectOnError
		case cfg.ReportBatchItemFailures:
			offsets := make(map[int64]bool, len(batch))
			for _, r := range batch {
				offsets[r.Offset] = true
			}
			resume, perr := ParseBatchResponse(resp.Payload, w.key, offsets)
			switch {
			case perr != nil:
				failure = perr.Error()
			case resume >= 0:
				i := 0
				for batch[i].Offset != resume {
					i++
				}
				if i > 0 {
					w.commit(batch[i-1])
					s.metrics.records.WithLabelValues("committed").Add(float64(i))
				}
				// The batch is cut at the reported offset, as Lambda
				// bisects it there; the rest is retried.
				failure = fmt.Sprintf("the function reported offset %d failed", resume)
				batch = batch[i:]
			}
		}
		if failure == "" {
			w.commit(last)
			s.metrics.records.WithLabelValues("committed").Add(float64(len(batch)))
			return true
		}
		if bisect && len(batch) > 1 {
			// Splitting does not count as a retry, as in Lambda; the
			// halves run in order.
			half := len(batch) / 2
			s.log.Warn("batch failed; bisecting it", "partition", w.key, "firstOffset", batch[0].Offset,
				"lastOffset", batch[len(batch)-1].Offset, "reason", failure)
			return w.process(batch[:half], attempt) && w.process(batch[half:], attempt)
		}
		attempt++
		s.metrics.retries.Inc()
		if cfg.MaxRetries != nil && attempt > *cfg.MaxRetries {
			s.log.Error("batch skipped after its retries", "partition", w.key, "retries", attempt-1,
				"firstOffset", batch[0].Offset, "lastOffset", batch[len(batch)-1].Offset, "records", len(batch), "reason", failure)
			s.metrics.records.WithLabelValues("skipped").Add(float64(len(batch)))
			w.commit(last)
			return true
		}
		s.log.Warn("batch failed; retrying it", "partition", w.key, "attempt", attempt,
			"firstOffset", batch[0].Offset, "lastOffset", batch[len(batch)-1].Offset, "retryIn", backoff.String(), "reason", failure)
		if !w.sleep(backoff) {
			return false
		}
		backoff = min(2*backoff, max(maxBackoff, cfg.RetryBackoff))
	}
}

// sleep waits d unless the worker stops; false means it stopped.
func (w *worker) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-w.stop:
		return false
	}
}

// commit commits the offset after r. It runs even while stopping, so a
// finished batch is not invoked again, except for a lost partition.
func (w *worker) commit(r *kgo.Record) {
	if r == nil || w.noCommit.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.cl.CommitRecords(ctx, r); err != nil {
		w.s.metrics.commitErrors.Inc()
		w.s.log.Warn("cannot commit offset; records after the last commit may be invoked again", "partition", w.key, "offset", r.Offset+1, "error", err.Error())
	}
}

// kgoLogger sends franz-go's logs to slog; its info is our debug.
type kgoLogger struct{ log *slog.Logger }

func (l kgoLogger) Level() kgo.LogLevel {
	if l.log.Enabled(context.Background(), slog.LevelDebug) {
		return kgo.LogLevelInfo
	}
	return kgo.LogLevelWarn
}

func (l kgoLogger) Log(level kgo.LogLevel, msg string, kv ...any) {
	lv := slog.LevelDebug
	switch level {
	case kgo.LogLevelError:
		lv = slog.LevelError
	case kgo.LogLevelWarn:
		lv = slog.LevelWarn
	}
	l.log.Log(context.Background(), lv, "kafka client: "+msg, kv...)
}
