// Package streams holds the Kinesis and DynamoDB Streams event sources of
// `cutover lambda serve` (--source kinesis, --source dynamodb). Both
// services have the same model, shards read through iterators, so one
// engine serves both; what differs (the API calls, the event shape) is a
// small backend each.
//
// Each source works as Lambda's stream event source mapping does, so a
// function moved to Kubernetes receives the same events with the same
// guarantees:
//
//   - one poller per shard; a shard's records are invoked in order, one
//     batch at a time, in batches of up to --batch-size gathered within
//     --batch-window and the 6 MB invocation payload; shards run in
//     parallel;
//   - after a batch succeeds, the shard's checkpoint (the sequence number
//     of its last record) is saved before the next batch; a restart
//     resumes after it (AFTER_SEQUENCE_NUMBER), so nothing is lost and
//     nothing checkpointed is invoked again;
//   - a failed batch (function error, crash, timeout) is retried in place
//     with backoff, and the shard waits: --max-retries skips it after N
//     retries, --max-record-age drops records older than that,
//     --bisect-on-error splits it in halves, and
//     --report-batch-item-failures checkpoints up to the first record the
//     function reports ({"batchItemFailures":[{"itemIdentifier":
//     "<sequenceNumber>"}]}) and retries from it;
//   - resharding (Kinesis splits and merges, DynamoDB's shard rotation): a
//     child shard starts only once its parents are read to their end and
//     checkpointed, so a partition key's records stay in order across it.
//
// Lambda keeps its checkpoints in the mapping; here they live in a Store:
// a local file by default, which makes one process per stream (two with
// their own files would each invoke every record). On Kubernetes,
// --checkpoint-configmap keeps it in a ConfigMap instead and elects, with
// a Lease of the same name, the one replica that reads the stream; the
// others stand by and take over when it stops (kube.go).
package streams

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/kubernetes"

	"github.com/cutoverhq/cutover/lambda"
)

// Kinds of stream, as --source names them.
const (
	Kinesis  = "kinesis"
	DynamoDB = "dynamodb"
)

// Starting positions: where reading starts in a stream with no checkpoint.
const (
	StartTrimHorizon = "TRIM_HORIZON"
	StartLatest      = "LATEST"
	StartAtTimestamp = "AT_TIMESTAMP"
)

// Limits and defaults of Lambda's stream event source mappings.
const (
	// MaxBatchSize is the largest batch.
	MaxBatchSize = 10000
	// DefaultBatchSize is Lambda's default batch size for streams.
	DefaultBatchSize = 100
	// MaxBatchWindow is the longest batching window.
	MaxBatchWindow = 300 * time.Second
	// MaxPayload is the largest event of a synchronous invocation.
	MaxPayload = 6 * 1024 * 1024
	// MaxRetries is the highest --max-retries.
	MaxRetries = 10000
	// MinRecordAge and MaxRecordAge bound --max-record-age.
	MinRecordAge = 60 * time.Second
	MaxRecordAge = 604800 * time.Second
	// DefaultCheckpointDir is where checkpoint files go by default: /tmp
	// is the writable volume converted workloads mount.
	DefaultCheckpointDir = "/tmp/cutover-checkpoints"
	// maxBackoff caps the wait between retries of a failed batch.
	maxBackoff = 30 * time.Second
	// kinesisReadGap keeps one shard's GetRecords within Kinesis's five
	// calls a second.
	kinesisReadGap = 200 * time.Millisecond
)

// Config configures a Source.
type Config struct {
	// Kind is Kinesis or DynamoDB. Required.
	Kind string
	// StreamARN is the Kinesis stream's ARN (a stream consumer's ARN is
	// read as its stream's), or the DynamoDB stream's
	// (…:table/<name>/stream/<label>). Required.
	StreamARN string
	// Region is the stream's region. Empty: the ARN's.
	Region string
	// EndpointURL is the service endpoint. Empty: the SDK's (AWS, or
	// AWS_ENDPOINT_URL_KINESIS / AWS_ENDPOINT_URL_DYNAMODB_STREAMS).
	EndpointURL string
	// StartingPosition is where a stream with no checkpoint starts:
	// TRIM_HORIZON, LATEST or AT_TIMESTAMP (for DynamoDB, which has no
	// such iterator, the shards are read from their trim horizon and
	// records created before the timestamp's second are skipped). Empty:
	// TRIM_HORIZON, so nothing is lost; records are at least once anyway.
	StartingPosition string
	// StartingTimestamp is AT_TIMESTAMP's time.
	StartingTimestamp time.Time
	// BatchSize is the most records in one invocation, 1–10000. Zero:
	// 100, Lambda's default.
	BatchSize int
	// BatchWindow is how long a shard's batch gathers records after its
	// first one before it is invoked short of BatchSize, up to 300 s.
	// Zero: a batch is what one read returns.
	BatchWindow time.Duration
	// MaxRetries is how many times a failed batch is retried before it
	// is skipped. Nil: until it succeeds (Lambda's -1).
	MaxRetries *int
	// MaxRecordAge drops records older than this instead of invoking
	// them. Zero: no limit (Lambda's -1).
	MaxRecordAge time.Duration
	// BisectOnError splits a batch the function failed in two halves,
	// run in order. False: the batch is retried whole.
	BisectOnError bool
	// ReportBatchItemFailures makes the function's batchItemFailures
	// answer count. False: any successful answer checkpoints the batch.
	ReportBatchItemFailures bool
	// CheckpointFile is the file store's path. Empty:
	// DefaultCheckpointDir/<kind>-<region>-<account>-<stream>.json, unless
	// CheckpointConfigMap is set; setting both is an error.
	CheckpointFile string
	// CheckpointConfigMap names the ConfigMap a KubeStore keeps the
	// checkpoint in, and the coordination.k8s.io Lease (the same name)
	// that elects the one replica reading the stream: Run waits, as a
	// standby, until it holds the Lease. Empty: a file, no election.
	CheckpointConfigMap string
	// CheckpointNamespace is the ConfigMap's and the Lease's namespace.
	// Required with CheckpointConfigMap: Run fails at once without it
	// (serve's flag defaults to the pod's own).
	CheckpointNamespace string
	// LeaseDuration is how long a standby waits after the leader's last
	// renewal before it takes the Lease over; RenewDeadline is how long
	// the leader keeps trying to renew before it stops reading;
	// RetryPeriod is the time between tries. LeaseDuration must exceed
	// RenewDeadline, which must exceed 1.2 × RetryPeriod. Zero: 15 s,
	// 10 s and 2 s, client-go's usual values.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// Kube reaches the ConfigMap and the Lease. Nil: the pod's service
	// account (in-cluster), else $KUBECONFIG or ~/.kube/config.
	Kube kubernetes.Interface
	// Identity is this replica's holder identity in the Lease and the
	// ConfigMap's writer annotation. Empty: $HOSTNAME (a pod's name) and
	// a random suffix, so a restarted container is a new holder.
	Identity string
	// Store keeps the checkpoint. Nil: a KubeStore when
	// CheckpointConfigMap is set, else a FileStore at CheckpointFile.
	Store Store
	// InvokeIdentityARN is the Kinesis event's invokeIdentityArn, the
	// role the function runs as. Empty: none (serve's flag defaults to
	// $AWS_ROLE_ARN, which IRSA sets).
	InvokeIdentityARN string
	// PollInterval is how long a shard with nothing new waits before it
	// reads again. Zero: 1 s for Kinesis, 250 ms for DynamoDB Streams, as
	// Lambda polls. Kinesis reads never come closer than 200 ms, its
	// five-a-second limit per shard.
	PollInterval time.Duration
	// DiscoveryInterval is how often the stream's shards are listed
	// again, to find new ones. Zero: 30 s. A shard's end triggers a
	// listing at once.
	DiscoveryInterval time.Duration
	// RetryBackoff is the wait before the first retry of a failed batch;
	// it doubles with each retry up to 30 s. Zero: 1 s.
	RetryBackoff time.Duration
	// Kinesis is the Kinesis client. Nil: one from the SDK's default
	// configuration with Region and EndpointURL.
	Kinesis KinesisAPI
	// DynamoDB is the DynamoDB Streams client. Nil: as for Kinesis.
	DynamoDB DynamoDBStreamsAPI
	// Log receives the source's records. Nil: discarded.
	Log *slog.Logger
	// Registerer receives the source's metrics. Nil: none.
	Registerer prometheus.Registerer
}

// Source is a Kinesis or DynamoDB Streams event source.
type Source struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	arn     arnParts
	name    string // the stream's name, for metrics and logs

	// Set by Run.
	ctx     context.Context
	halt    context.CancelCauseFunc // ends ctx with a cause: ErrCheckpointTaken
	inv     lambda.Invoker
	backend backend
	store   Store

	mu      sync.Mutex
	cp      *Checkpoint
	resumed map[string]bool // shards whose entry came from the store
	workers map[string]*worker
	// wake asks the coordinator to list shards now (a shard ended).
	wake chan struct{}
	wg   sync.WaitGroup
}

var _ lambda.Source = (*Source)(nil)

type arnParts struct {
	partition, service, region, account, resource string
}

func parseARN(s string) (arnParts, bool) {
	p := strings.SplitN(s, ":", 6)
	if len(p) != 6 || p[0] != "arn" || p[1] == "" || p[2] == "" || p[4] == "" || p[5] == "" {
		return arnParts{}, false
	}
	return arnParts{p[1], p[2], p[3], p[4], p[5]}, true
}

func (a arnParts) String() string {
	return strings.Join([]string{"arn", a.partition, a.service, a.region, a.account, a.resource}, ":")
}

// New checks cfg; it does no I/O.
func New(cfg Config) (*Source, error) {
	if cfg.Kind != Kinesis && cfg.Kind != DynamoDB {
		return nil, fmt.Errorf("stream kind %q is not %s or %s", cfg.Kind, Kinesis, DynamoDB)
	}
	if cfg.StreamARN == "" {
		return nil, errors.New("a stream ARN is required (--stream-arn)")
	}
	a, ok := parseARN(cfg.StreamARN)
	if !ok {
		return nil, fmt.Errorf("--stream-arn %q is not an ARN (arn:aws:%s:<region>:<account>:…)", cfg.StreamARN, service(cfg.Kind))
	}
	s := &Source{workers: map[string]*worker{}, resumed: map[string]bool{}, wake: make(chan struct{}, 1)}
	switch cfg.Kind {
	case Kinesis:
		// A stream consumer (enhanced fan-out) is read through its
		// stream with shared throughput.
		res, _, _ := strings.Cut(a.resource, "/consumer/")
		name, ok := strings.CutPrefix(res, "stream/")
		if a.service != "kinesis" || !ok || name == "" || strings.Contains(name, "/") {
			return nil, fmt.Errorf("--stream-arn %q is not a Kinesis stream ARN (arn:aws:kinesis:<region>:<account>:stream/<name>)", cfg.StreamARN)
		}
		a.resource = res
		s.name = name
	case DynamoDB:
		table, label, ok := strings.Cut(strings.TrimPrefix(a.resource, "table/"), "/stream/")
		if a.service != "dynamodb" || !strings.HasPrefix(a.resource, "table/") || !ok || table == "" || label == "" {
			return nil, fmt.Errorf("--stream-arn %q is not a DynamoDB stream ARN (arn:aws:dynamodb:<region>:<account>:table/<name>/stream/<label>)", cfg.StreamARN)
		}
		s.name = table
	}
	s.arn = a
	if cfg.Region == "" {
		cfg.Region = a.region
	}
	if cfg.Region == "" {
		return nil, fmt.Errorf("--stream-arn %q names no region: give --region", cfg.StreamARN)
	}
	if a.region != "" && a.region != cfg.Region {
		return nil, fmt.Errorf("--region %s is not the stream's region %s", cfg.Region, a.region)
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
	if cfg.MaxRetries != nil {
		switch n := *cfg.MaxRetries; {
		case n < 0:
			cfg.MaxRetries = nil
		case n > MaxRetries:
			return nil, fmt.Errorf("max retries %d is above %d (or -1: until it succeeds)", n, MaxRetries)
		}
	}
	if cfg.MaxRecordAge < 0 {
		cfg.MaxRecordAge = 0
	}
	if cfg.MaxRecordAge > 0 && (cfg.MaxRecordAge < MinRecordAge || cfg.MaxRecordAge > MaxRecordAge) {
		return nil, fmt.Errorf("max record age %v is outside %v–%v (or -1: no limit)", cfg.MaxRecordAge, MinRecordAge, MaxRecordAge)
	}
	switch cfg.StartingPosition = strings.ToUpper(cfg.StartingPosition); cfg.StartingPosition {
	case "":
		cfg.StartingPosition = StartTrimHorizon
	case StartTrimHorizon, StartLatest:
	case StartAtTimestamp:
		if cfg.StartingTimestamp.IsZero() {
			return nil, errors.New("AT_TIMESTAMP needs --starting-timestamp")
		}
	default:
		return nil, fmt.Errorf("starting position %q is not TRIM_HORIZON, LATEST or AT_TIMESTAMP", cfg.StartingPosition)
	}
	if cfg.Kind == DynamoDB && cfg.InvokeIdentityARN != "" {
		return nil, errors.New("--invoke-identity-arn is a Kinesis event field: DynamoDB events have none")
	}
	if cfg.CheckpointConfigMap != "" {
		if err := checkKube(&cfg); err != nil {
			return nil, err
		}
	} else if cfg.CheckpointFile == "" {
		cfg.CheckpointFile = DefaultCheckpointFile(cfg.Kind, a)
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
		if cfg.Kind == DynamoDB {
			cfg.PollInterval = 250 * time.Millisecond
		}
	}
	if cfg.Kind == Kinesis {
		cfg.PollInterval = max(cfg.PollInterval, kinesisReadGap)
	}
	if cfg.DiscoveryInterval <= 0 {
		cfg.DiscoveryInterval = 30 * time.Second
	}
	if cfg.RetryBackoff <= 0 {
		cfg.RetryBackoff = time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	s.cfg = cfg
	s.log = cfg.Log.With("source", cfg.Kind, "stream", s.name)
	s.metrics = newMetrics(cfg.Registerer, cfg.Kind, s.name, s.log)
	return s, nil
}

func service(kind string) string {
	if kind == DynamoDB {
		return "dynamodb"
	}
	return "kinesis"
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// DefaultCheckpointFile is where a stream's checkpoint goes when no
// --checkpoint-file is given: one file per stream, so several sources in
// one serve do not share one.
func DefaultCheckpointFile(kind string, a arnParts) string {
	name := strings.Join([]string{kind, a.region, a.account, unsafeChars.ReplaceAllString(a.resource, "_")}, "-")
	return filepath.Join(DefaultCheckpointDir, name+".json")
}

// StreamARN is the stream read (a consumer ARN given as --stream-arn is
// read as its stream's).
func (s *Source) StreamARN() string { return s.arn.String() }

// Run reads the stream until ctx ends; then the batches the function runs
// finish and are checkpointed. It returns an error when the stream cannot
// be read at start (missing, access denied), the checkpoint is another
// process's or unreadable, or, with CheckpointConfigMap, when another
// replica wrote the checkpoint (ErrCheckpointTaken) or this one lost the
// Lease (ErrLeaseLost): it then stops reading at once.
func (s *Source) Run(ctx context.Context, inv lambda.Invoker) error {
	if s.cfg.CheckpointConfigMap != "" {
		return s.runElected(ctx, inv)
	}
	return s.consume(ctx, inv)
}

// consume reads the stream as its only reader.
func (s *Source) consume(parent context.Context, inv lambda.Invoker) error {
	// A fenced save (ErrCheckpointTaken) ends ctx with its cause, so
	// every worker stops at once.
	ctx, halt := context.WithCancelCause(parent)
	defer halt(nil)
	s.ctx, s.halt, s.inv = ctx, halt, inv
	if err := s.open(ctx); err != nil {
		return err
	}
	defer s.store.Close()
	s.metrics.leader.Set(1)
	defer s.metrics.leader.Set(0)
	shards, err := s.backend.shards(ctx)
	for err != nil && !fatal(err) && ctx.Err() == nil {
		// The service may be briefly unavailable at start; a missing
		// stream or a refusal is the user's to fix.
		s.metrics.readErrors.Inc()
		s.log.Warn("cannot list shards; retrying", "error", err.Error())
		if !sleepCtx(ctx, 2*time.Second) {
			return stopCause(ctx)
		}
		shards, err = s.backend.shards(ctx)
	}
	if ctx.Err() != nil {
		return stopCause(ctx)
	}
	if err != nil {
		return fmt.Errorf("cannot read stream %s: %w", s.arn, err)
	}
	fresh := s.cp == nil
	if fresh {
		s.cp = &Checkpoint{Version: 1, StreamARN: s.arn.String(), Shards: map[string]*ShardCheckpoint{}}
	}
	s.log.Info("reading", "streamArn", s.arn.String(), "shards", len(shards), "startingPosition", s.cfg.StartingPosition,
		"resumed", !fresh, "batchSize", s.cfg.BatchSize, "batchWindow", s.cfg.BatchWindow.String(), "checkpoint", s.checkpointName())

	ticker := time.NewTicker(s.cfg.DiscoveryInterval)
	defer ticker.Stop()
	for {
		s.plan(shards, fresh)
		fresh = false
		s.startReady(shards)
		select {
		case <-ctx.Done():
			s.wg.Wait()
			if err := stopCause(ctx); err != nil {
				s.log.Error("stopped reading", "error", err.Error())
				return err
			}
			s.log.Info("stopped; checkpoints saved")
			return nil
		case <-ticker.C:
		case <-s.wake:
		}
		next, err := s.backend.shards(ctx)
		if err != nil {
			if ctx.Err() == nil {
				s.metrics.readErrors.Inc()
				s.log.Warn("cannot list shards; keeping the last list", "error", err.Error())
			}
			continue
		}
		shards = next
	}
}

// stopCause is why ctx ended when that is an error of the source's (a
// fenced save, a lost Lease); nil for a plain stop.
func stopCause(ctx context.Context) error {
	if c := context.Cause(ctx); errors.Is(c, ErrCheckpointTaken) || errors.Is(c, ErrLeaseLost) {
		return c
	}
	return nil
}

func (s *Source) checkpointName() string {
	switch st := s.store.(type) {
	case *FileStore:
		return st.Path()
	case *KubeStore:
		return st.Name()
	}
	return fmt.Sprintf("%T", s.store)
}

// open builds the client and the store and loads the checkpoint.
func (s *Source) open(ctx context.Context) error {
	switch s.cfg.Kind {
	case Kinesis:
		api := s.cfg.Kinesis
		if api == nil {
			awsCfg, err := loadAWS(ctx, s.cfg.Region)
			if err != nil {
				return err
			}
			api = kinesis.NewFromConfig(awsCfg, func(o *kinesis.Options) {
				if s.cfg.EndpointURL != "" {
					o.BaseEndpoint = &s.cfg.EndpointURL
				}
			})
		}
		s.backend = &kinesisBackend{api: api, arn: s.arn.String(), region: s.cfg.Region, identity: s.cfg.InvokeIdentityARN}
	case DynamoDB:
		api := s.cfg.DynamoDB
		if api == nil {
			awsCfg, err := loadAWS(ctx, s.cfg.Region)
			if err != nil {
				return err
			}
			api = dynamodbstreams.NewFromConfig(awsCfg, func(o *dynamodbstreams.Options) {
				if s.cfg.EndpointURL != "" {
					o.BaseEndpoint = &s.cfg.EndpointURL
				}
			})
		}
		s.backend = &dynamodbBackend{api: api, arn: s.arn.String()}
	}
	s.store = s.cfg.Store
	if s.store == nil {
		fs, err := OpenFileStore(s.cfg.CheckpointFile)
		if err != nil {
			return err
		}
		s.store = fs
	}
	cp, err := s.store.Load(ctx)
	if err != nil {
		s.store.Close()
		return fmt.Errorf("cannot load the checkpoint: %w", err)
	}
	if cp != nil && cp.StreamARN != s.arn.String() {
		s.store.Close()
		flag := "--checkpoint-file"
		if s.cfg.CheckpointConfigMap != "" {
			flag = "--checkpoint-configmap"
		}
		return fmt.Errorf("the checkpoint %s belongs to stream %s, not %s: give each stream its own %s", s.checkpointName(), cp.StreamARN, s.arn, flag)
	}
	s.cp = cp
	if cp != nil {
		for id := range cp.Shards {
			s.resumed[id] = true
		}
	}
	return nil
}

// plan gives every listed shard a checkpoint entry, forgets finished
// shards the stream no longer lists, and marks unfinished ones it no
// longer lists (expired past retention while serve was away) as lost.
func (s *Source) plan(shards []shardInfo, fresh bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now().UTC()
	listed := make(map[string]bool, len(shards))
	changed := false
	for _, sh := range shards {
		listed[sh.id] = true
		if s.cp.Shards[sh.id] != nil {
			continue
		}
		e := &ShardCheckpoint{Updated: now}
		switch {
		case !fresh:
			// A shard created since the first start (a split, a merge,
			// a rotation) is read whole.
			e.Start = StartTrimHorizon
		case s.cfg.StartingPosition == StartLatest && sh.closed:
			// Nothing will arrive in a closed shard after now.
			e.Finished = true
		case s.cfg.StartingPosition == StartLatest:
			e.Start, e.Timestamp = StartLatest, &now
		case s.cfg.StartingPosition == StartAtTimestamp:
			ts := s.cfg.StartingTimestamp.UTC()
			e.Start, e.Timestamp = StartAtTimestamp, &ts
		default:
			e.Start = StartTrimHorizon
		}
		s.cp.Shards[sh.id] = e
		changed = true
	}
	for id, e := range s.cp.Shards {
		if listed[id] || s.workers[id] != nil {
			continue
		}
		if !e.Finished {
			s.log.Error("shard expired before it was read to its end: its remaining records passed the stream's retention and are lost",
				"shard", id, "lastSequenceNumber", e.SequenceNumber)
			s.metrics.trimmed.Inc()
		}
		delete(s.cp.Shards, id)
		changed = true
	}
	if changed {
		s.saveLocked()
	}
}

// startReady starts a worker for each unfinished shard whose parents are
// finished or gone.
func (s *Source) startReady(shards []shardInfo) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx.Err() != nil {
		return
	}
	sort.Slice(shards, func(i, j int) bool { return shards[i].id < shards[j].id })
	for _, sh := range shards {
		e := s.cp.Shards[sh.id]
		if e == nil || e.Finished || s.workers[sh.id] != nil {
			continue
		}
		ready := true
		for _, p := range sh.parents {
			if pe := s.cp.Shards[p]; pe != nil && !pe.Finished {
				ready = false
			}
		}
		if !ready {
			continue
		}
		w := s.newWorker(sh.id, e)
		s.workers[sh.id] = w
		s.metrics.shards.Inc()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			w.run()
			s.mu.Lock()
			delete(s.workers, w.shard)
			s.mu.Unlock()
			s.metrics.shards.Dec()
			s.metrics.iteratorAge.DeleteLabelValues(w.shard)
		}()
	}
}

// newWorker decides where a shard's reading starts from its entry; the
// caller holds mu.
func (s *Source) newWorker(shard string, e *ShardCheckpoint) *worker {
	w := &worker{s: s, shard: shard}
	switch {
	case e.SequenceNumber != "":
		w.pos = position{typ: "AFTER_SEQUENCE_NUMBER", seq: e.SequenceNumber}
	case e.Start == StartAtTimestamp:
		w.at(*e.Timestamp)
	case e.Start == StartLatest && s.resumed[shard]:
		// Serve read this shard from LATEST before and stopped before its
		// first record: read from when it started (a second early, for
		// clock skew), so what came while it was away is not skipped.
		w.at(e.Timestamp.Add(-time.Second))
	case e.Start == StartLatest:
		w.pos = position{typ: StartLatest}
	default:
		w.pos = position{typ: StartTrimHorizon}
	}
	s.log.Debug("reading shard", "shard", shard, "from", w.pos.String())
	return w
}

// checkpoint records that the function is done with a shard's records up
// to seq and saves it.
func (s *Source) checkpoint(shard, seq string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.cp.Shards[shard]
	if e == nil {
		e = &ShardCheckpoint{}
		s.cp.Shards[shard] = e
	}
	e.SequenceNumber, e.Updated = seq, time.Now().UTC()
	s.saveLocked()
}

// finish marks a shard read to its end and wakes the coordinator, which
// starts its children.
func (s *Source) finish(shard string) {
	s.mu.Lock()
	if e := s.cp.Shards[shard]; e != nil {
		e.Finished, e.Updated = true, time.Now().UTC()
	}
	s.saveLocked()
	s.mu.Unlock()
	s.log.Info("shard read to its end", "shard", shard)
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// saveLocked saves the checkpoint; the caller holds mu, so saves are in
// order. It runs even while stopping, so a finished batch is not invoked
// again. A save fenced off by another replica's write stops the source:
// that replica reads the stream now.
func (s *Source) saveLocked() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := s.store.Save(ctx, s.cp.clone())
	switch {
	case err == nil:
	case errors.Is(err, ErrCheckpointTaken):
		s.metrics.checkpointErrors.Inc()
		if s.ctx.Err() == nil {
			s.log.Error("another replica wrote the checkpoint: stopping at once", "error", err.Error())
		}
		s.halt(err)
	default:
		s.metrics.checkpointErrors.Inc()
		s.log.Error("cannot save the checkpoint; records after the last saved one will be invoked again after a restart", "error", err.Error())
	}
}

// worker reads one shard and invokes its batches, one at a time, in
// order.
type worker struct {
	s     *Source
	shard string
	// pos is where a new iterator starts: the start, then after the last
	// record read.
	pos position
	// skipBefore drops records created before it (whole seconds): the
	// DynamoDB stand-in for AT_TIMESTAMP. Zero: none.
	skipBefore time.Time
	iter       string
	nextRead   time.Time // no read before it
	buf        []rec
	bufBytes   int
	first      time.Time // when buf last turned non-empty
	ended      bool      // the shard is closed and everything in it is in buf
}

// at starts reading at a time: an AT_TIMESTAMP iterator for Kinesis, the
// trim horizon with older records skipped for DynamoDB Streams.
func (w *worker) at(t time.Time) {
	if w.s.cfg.Kind == Kinesis {
		w.pos = position{typ: StartAtTimestamp, at: t}
		return
	}
	w.pos = position{typ: StartTrimHorizon}
	w.skipBefore = t.Truncate(time.Second)
}

func (w *worker) stopped() bool { return w.s.ctx.Err() != nil }

func (w *worker) sleep(d time.Duration) bool { return sleepCtx(w.s.ctx, d) }

func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func (w *worker) run() {
	s, cfg := w.s, w.s.cfg
	backoff := time.Second
	for !w.stopped() {
		if len(w.buf) > 0 {
			full := len(w.buf) >= cfg.BatchSize || eventSize(len(w.buf), w.bufBytes) >= MaxPayload
			if full || w.ended || time.Since(w.first) >= cfg.BatchWindow {
				if !w.process(w.take(), 0) {
					return
				}
				continue
			}
		}
		if w.ended {
			s.finish(w.shard)
			return
		}
		// Wait for the next read, or for the batch window to close.
		wake := w.nextRead
		if len(w.buf) > 0 {
			if due := w.first.Add(cfg.BatchWindow); due.Before(wake) {
				wake = due
			}
		}
		if wait := time.Until(wake); wait > 0 {
			if !w.sleep(wait) {
				return
			}
			continue
		}
		f, err := w.read()
		switch {
		case errors.Is(err, errReadAgain):
			w.nextRead = time.Now().Add(w.readGap())
			continue
		case err != nil:
			w.nextRead = time.Now().Add(backoff)
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		backoff = time.Second
		w.add(f)
		// Caught up: poll at the base rate. Behind: read again as soon
		// as the shard's read limit allows.
		caughtUp := len(f.recs) == 0 || f.behind == 0 || (f.behind < 0 && len(f.recs) < s.backend.limit())
		if caughtUp {
			w.nextRead = time.Now().Add(cfg.PollInterval)
		} else {
			w.nextRead = time.Now().Add(w.readGap())
		}
	}
}

// readGap is the least time between two reads of a shard: Kinesis allows
// five a second.
func (w *worker) readGap() time.Duration {
	if w.s.cfg.Kind == Kinesis {
		return kinesisReadGap
	}
	return 0
}

// errReadAgain: the iterator was replaced; read again without backing
// off.
var errReadAgain = errors.New("read again")

// read gets an iterator if needed and reads once. Errors are logged and
// counted here; the caller backs off.
func (w *worker) read() (fetched, error) {
	s := w.s
	if w.iter == "" {
		it, err := s.backend.iterator(s.ctx, w.shard, w.pos)
		switch code := errCode(err); {
		case err == nil:
			w.iter = it
		case code == codeTrimmed:
			// The checkpoint points into data past retention (DynamoDB
			// Streams says so; Kinesis reads on silently).
			s.metrics.trimmed.Inc()
			s.log.Error("the shard's position is past the stream's retention: records between it and the oldest one kept are lost; reading from the oldest",
				"shard", w.shard, "position", w.pos.String())
			w.pos = position{typ: StartTrimHorizon}
			return fetched{}, errReadAgain
		case code == codeNotFound:
			s.metrics.trimmed.Inc()
			s.log.Error("the shard is gone (expired past the stream's retention): its unread records are lost", "shard", w.shard, "position", w.pos.String())
			w.ended = true
			return fetched{}, nil
		default:
			s.readError("cannot get a shard iterator", w.shard, err)
			return fetched{}, err
		}
	}
	f, err := s.backend.records(s.ctx, w.shard, w.iter)
	switch code := errCode(err); {
	case err == nil:
		return f, nil
	case code == codeExpired:
		// A slow batch outlived the iterator (5 minutes for Kinesis, 15
		// for DynamoDB Streams): get a new one where reading stopped.
		s.log.Debug("shard iterator expired; getting a new one", "shard", w.shard, "from", w.pos.String())
		w.iter = ""
		return fetched{}, errReadAgain
	case code == codeTrimmed:
		w.iter = ""
		s.metrics.trimmed.Inc()
		s.log.Error("records were trimmed past the stream's retention before they were read: they are lost; reading from the oldest", "shard", w.shard)
		w.pos = position{typ: StartTrimHorizon}
		return fetched{}, errReadAgain
	case code == codeNotFound:
		s.metrics.trimmed.Inc()
		s.log.Error("the shard is gone (expired past the stream's retention): its unread records are lost", "shard", w.shard)
		w.ended = true
		return fetched{}, nil
	}
	s.readError("cannot read the shard", w.shard, err)
	return fetched{}, err
}

func (s *Source) readError(msg, shard string, err error) {
	if s.ctx.Err() != nil {
		return
	}
	if c := errCode(err); c == codeThrottled || c == codeLimit {
		s.metrics.readThrottled.Inc()
		s.log.Debug(msg+": throttled", "shard", shard, "error", err.Error())
		return
	}
	s.metrics.readErrors.Inc()
	s.log.Warn(msg, "shard", shard, "error", err.Error())
}

// add buffers what a read returned and moves the read position past it.
func (w *worker) add(f fetched) {
	s := w.s
	for _, r := range f.recs {
		w.pos = position{typ: "AFTER_SEQUENCE_NUMBER", seq: r.seq}
		if !w.skipBefore.IsZero() {
			if !r.at.IsZero() && r.at.Before(w.skipBefore) {
				continue
			}
			// Records come in order: once one is new enough, the rest
			// are.
			w.skipBefore = time.Time{}
		}
		if len(w.buf) == 0 {
			w.first = time.Now()
		}
		w.buf = append(w.buf, r)
		w.bufBytes += len(r.json)
	}
	if f.next == "" {
		w.ended = true
		w.iter = ""
	} else {
		w.iter = f.next
	}
	switch {
	case f.behind >= 0:
		s.metrics.iteratorAge.WithLabelValues(w.shard).Set(f.behind.Seconds())
	case len(f.recs) > 0 && !f.recs[len(f.recs)-1].at.IsZero():
		s.metrics.iteratorAge.WithLabelValues(w.shard).Set(max(time.Since(f.recs[len(f.recs)-1].at), 0).Seconds())
	case len(f.recs) == 0:
		s.metrics.iteratorAge.WithLabelValues(w.shard).Set(0)
	}
}

// take cuts the next batch from the buffer: up to BatchSize records
// within the payload limit, at least one.
func (w *worker) take() []rec {
	n, size := 0, 0
	for n < len(w.buf) && n < w.s.cfg.BatchSize {
		next := eventSize(n+1, size+len(w.buf[n].json))
		if n > 0 && next > MaxPayload {
			break
		}
		size += len(w.buf[n].json)
		n++
	}
	batch := w.buf[:n:n]
	w.buf = append([]rec(nil), w.buf[n:]...)
	w.bufBytes -= size
	if len(w.buf) > 0 {
		w.first = time.Now()
	}
	return batch
}

// process invokes one batch until it is checkpointed or skipped; false
// means the source stopped with the batch not done (it is read again
// after a restart, from the checkpoint).
func (w *worker) process(batch []rec, attempt int) bool {
	s, cfg := w.s, w.s.cfg
	backoff := cfg.RetryBackoff
	// last is checkpointed when the batch is done, covering records
	// dropped for their age.
	last := batch[len(batch)-1]
	for {
		if w.stopped() {
			return false
		}
		if cfg.MaxRecordAge > 0 {
			var young []rec
			for _, r := range batch {
				if r.at.IsZero() || time.Since(r.at) <= cfg.MaxRecordAge {
					young = append(young, r)
				}
			}
			if dropped := len(batch) - len(young); dropped > 0 {
				s.log.Warn("records older than --max-record-age dropped", "shard", w.shard, "dropped", dropped,
					"firstSequenceNumber", batch[0].seq, "lastSequenceNumber", batch[len(batch)-1].seq)
				s.metrics.records.WithLabelValues("expired").Add(float64(dropped))
			}
			if len(young) == 0 {
				s.checkpoint(w.shard, last.seq)
				return true
			}
			batch = young
		}
		recs := make([][]byte, len(batch))
		for i, r := range batch {
			recs[i] = r.json
		}
		resp, err := s.inv.Invoke(s.ctx, lambda.Invocation{Payload: eventOf(recs)})
		if errors.Is(err, lambda.ErrThrottled) && !w.stopped() {
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
		failure, bisect := "", false
		switch {
		case resp.Err != nil:
			failure = "function error: " + resp.Err.Error()
			bisect = cfg.BisectOnError
		case cfg.ReportBatchItemFailures:
			seqs := make([]string, len(batch))
			for i, r := range batch {
				seqs[i] = r.seq
			}
			i, perr := ParseBatchResponse(resp.Payload, seqs)
			switch {
			case perr != nil:
				failure = perr.Error()
			case i >= 0:
				if i > 0 {
					s.checkpoint(w.shard, batch[i-1].seq)
					s.metrics.records.WithLabelValues("checkpointed").Add(float64(i))
				}
				// Lambda checkpoints before the lowest reported record
				// and retries from it.
				failure = "the function reported sequence number " + batch[i].seq + " failed"
				batch = batch[i:]
			}
		}
		if failure == "" {
			s.checkpoint(w.shard, last.seq)
			s.metrics.records.WithLabelValues("checkpointed").Add(float64(len(batch)))
			return true
		}
		if bisect && len(batch) > 1 {
			// Splitting does not count as a retry, as in Lambda; the
			// halves run in order.
			half := len(batch) / 2
			s.log.Warn("batch failed; bisecting it", "shard", w.shard, "firstSequenceNumber", batch[0].seq,
				"lastSequenceNumber", batch[len(batch)-1].seq, "reason", failure)
			return w.process(batch[:half], attempt) && w.process(batch[half:], attempt)
		}
		attempt++
		s.metrics.retries.Inc()
		if cfg.MaxRetries != nil && attempt > *cfg.MaxRetries {
			s.log.Error("batch skipped after its retries", "shard", w.shard, "retries", attempt-1, "records", len(batch),
				"firstSequenceNumber", batch[0].seq, "lastSequenceNumber", batch[len(batch)-1].seq, "reason", failure)
			s.metrics.records.WithLabelValues("skipped").Add(float64(len(batch)))
			s.checkpoint(w.shard, last.seq)
			return true
		}
		s.log.Warn("batch failed; retrying it", "shard", w.shard, "attempt", attempt, "records", len(batch),
			"firstSequenceNumber", batch[0].seq, "lastSequenceNumber", batch[len(batch)-1].seq, "retryIn", backoff.String(), "reason", failure)
		if !w.sleep(backoff) {
			return false
		}
		backoff = min(2*backoff, max(maxBackoff, cfg.RetryBackoff))
	}
}
