package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/cutoverhq/cutover/lambda"
	"github.com/cutoverhq/cutover/lambda/internal/lambdatest"
)

// These tests run the source against kfake, franz-go's Kafka-protocol
// cluster in process (there is no Kafka server on this machine), with the
// function as a handler in process using aws-lambda-go's event types.

const topic = "orders"

func newCluster(t *testing.T, partitions int32, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(partitions, topic)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// produce writes n records to each of the partitions, values "p<partition>-<i>",
// starting at index from.
func produce(t *testing.T, c *kfake.Cluster, partitions []int32, from, n int, opts ...kgo.Opt) {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for _, p := range partitions {
		for i := from; i < from+n; i++ {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Key: []byte("k" + strconv.Itoa(i)),
				Value: fmt.Appendf(nil, "p%d-%d", p, i), Headers: []kgo.RecordHeader{{Key: "i", Value: []byte(strconv.Itoa(i))}}})
		}
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// recorder is the function: it records every invocation's partition and
// offsets and checks that no partition runs two invocations at once.
type recorder struct {
	t       *testing.T
	handler func(ev events.KafkaEvent, key string, offsets []int64) (any, error)

	mu       sync.Mutex
	calls    map[string][][]int64 // partition key → offsets of each invocation
	inFlight map[string]int
}

func newRecorder(t *testing.T, h func(ev events.KafkaEvent, key string, offsets []int64) (any, error)) *recorder {
	return &recorder{t: t, handler: h, calls: map[string][][]int64{}, inFlight: map[string]int{}}
}

func (r *recorder) Invoke(ctx context.Context, inv lambda.Invocation) (lambda.Response, error) {
	var ev events.KafkaEvent
	if err := json.Unmarshal(inv.Payload, &ev); err != nil {
		return lambda.Response{}, err
	}
	if len(ev.Records) != 1 {
		r.t.Errorf("invocation with %d partitions, want 1", len(ev.Records))
	}
	var key string
	var offsets []int64
	for k, recs := range ev.Records {
		key = k
		for _, rec := range recs {
			offsets = append(offsets, rec.Offset)
			if rec.Value == "" {
				r.t.Errorf("record %s@%d without value", k, rec.Offset)
			}
		}
	}
	r.mu.Lock()
	r.inFlight[key]++
	if r.inFlight[key] > 1 {
		r.t.Errorf("two invocations at once for partition %s", key)
	}
	r.calls[key] = append(r.calls[key], offsets)
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.inFlight[key]--
		r.mu.Unlock()
	}()
	var resp any
	var err error
	if r.handler != nil {
		resp, err = r.handler(ev, key, offsets)
	}
	if err != nil {
		return lambda.Response{Err: &lambda.FunctionError{Type: "errorString", Message: err.Error()}}, nil
	}
	b, _ := json.Marshal(resp)
	return lambda.Response{Payload: b}, nil
}

func (r *recorder) invocations(key string) [][]int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls[key])
}

// succeeded flattens the offsets of a partition's invocations.
func (r *recorder) offsets(key string) []int64 {
	var out []int64
	for _, c := range r.invocations(key) {
		out = append(out, c...)
	}
	return out
}

func testConfig(c *kfake.Cluster, group string) Config {
	return Config{
		Brokers: c.ListenAddrs(), Topics: []string{topic}, ConsumerGroup: group,
		StartingPosition: StartTrimHorizon, BatchSize: 10, BatchWindow: 50 * time.Millisecond,
		RetryBackoff: 50 * time.Millisecond,
		ClientOpts:   []kgo.Opt{kgo.HeartbeatInterval(200 * time.Millisecond), kgo.FetchMaxWait(200 * time.Millisecond)},
	}
}

// start runs a source; stop cancels it and returns Run's error.
func start(t *testing.T, cfg Config, inv lambda.Invoker) (stop func() error) {
	t.Helper()
	src, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return lambdatest.Run(t, src, inv)
}

// committed returns the group's committed offset of a partition (-1:
// none).
func committed(t *testing.T, c *kfake.Cluster, group string, p int32) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	offs, err := kadm.NewClient(cl).FetchOffsets(context.Background(), group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		return -1
	}
	if err != nil {
		t.Fatal(err)
	}
	o, ok := offs.Lookup(topic, p)
	if !ok {
		return -1
	}
	return o.At
}

func seq(from, to int64) []int64 {
	var out []int64
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

func TestKafkaOrderPerPartitionAndCommit(t *testing.T) {
	c := newCluster(t, 3)
	produce(t, c, []int32{0, 1, 2}, 0, 60)
	rec := newRecorder(t, func(events.KafkaEvent, string, []int64) (any, error) {
		time.Sleep(5 * time.Millisecond)
		return nil, nil
	})
	start(t, testConfig(c, "g-order"), rec)
	for p := range int32(3) {
		key := PartitionKey(topic, p)
		lambdatest.WaitFor(t, key+" consumed and committed", 20*time.Second, func() bool { return committed(t, c, "g-order", p) == 60 })
		if got := rec.offsets(key); !slices.Equal(got, seq(0, 60)) {
			t.Errorf("%s invoked offsets %v, want 0..59 once each in order", key, got)
		}
		for _, inv := range rec.invocations(key) {
			if len(inv) > 10 {
				t.Errorf("%s batch of %d over batch size 10", key, len(inv))
			}
		}
	}
}

// A failed batch is retried, not skipped: the partition does not move on
// and the offset is not committed until it succeeds.
func TestKafkaFailedBatchRetried(t *testing.T) {
	c := newCluster(t, 1)
	produce(t, c, []int32{0}, 0, 30)
	var mu sync.Mutex
	failures := 0
	var committedWhileFailing []int64
	rec := newRecorder(t, func(_ events.KafkaEvent, _ string, offsets []int64) (any, error) {
		if slices.Contains(offsets, 12) {
			mu.Lock()
			defer mu.Unlock()
			if failures < 3 {
				failures++
				committedWhileFailing = append(committedWhileFailing, committed(t, c, "g-retry", 0))
				return nil, errors.New("downstream unavailable")
			}
		}
		return nil, nil
	})
	start(t, testConfig(c, "g-retry"), rec)
	key := PartitionKey(topic, 0)
	lambdatest.WaitFor(t, "all committed", 20*time.Second, func() bool { return committed(t, c, "g-retry", 0) == 30 })
	invs := rec.invocations(key)
	var failing []int64
	for i, inv := range invs {
		if slices.Contains(inv, 12) {
			if failing == nil {
				failing = inv
				// Nothing after the failing batch ran while it failed.
				for _, later := range invs[i+1 : i+4] {
					if !slices.Equal(later, failing) {
						t.Fatalf("after batch %v failed, %v ran before its retries", failing, later)
					}
				}
			}
		}
	}
	if got := rec.offsets(key); len(got) != 30+3*len(failing) {
		t.Errorf("%d records invoked, want 30 plus 3 retries of %d", len(got), len(failing))
	}
	for _, off := range committedWhileFailing {
		if off > failing[0] {
			t.Errorf("offset %d committed while the batch from %d was failing", off, failing[0])
		}
	}
}

// A restart resumes at the committed offset: nothing lost, and no record
// whose batch was committed is invoked again.
func TestKafkaRestartResumes(t *testing.T) {
	c := newCluster(t, 1)
	produce(t, c, []int32{0}, 0, 50)
	key := PartitionKey(topic, 0)
	cfg := testConfig(c, "g-restart")
	cfg.BatchSize = 5

	stopA := make(chan func() error, 1)
	stopped := make(chan struct{})
	var once sync.Once
	a := newRecorder(t, func(_ events.KafkaEvent, _ string, offsets []int64) (any, error) {
		if offsets[0] >= 20 {
			// Stop serve while this batch runs: it must still be
			// committed.
			once.Do(func() {
				go func() {
					stop := <-stopA
					stop()
					close(stopped)
				}()
			})
			time.Sleep(200 * time.Millisecond)
		}
		return nil, nil
	})
	stopA <- start(t, cfg, a)
	<-stopped
	firstRun := a.offsets(key)
	if n := committed(t, c, "g-restart", 0); n != int64(len(firstRun)) || n < 25 {
		t.Fatalf("after stop: committed %d, invoked %d records", n, len(firstRun))
	}

	produce(t, c, []int32{0}, 50, 30)
	b := newRecorder(t, nil)
	start(t, cfg, b)
	lambdatest.WaitFor(t, "the rest consumed", 20*time.Second, func() bool { return committed(t, c, "g-restart", 0) == 80 })
	all := append(firstRun, b.offsets(key)...)
	if !slices.Equal(all, seq(0, 80)) {
		t.Errorf("invoked across the restart: %v; want 0..79 once each", all)
	}
}

// Rebalances hand partitions over at committed offsets: a second member
// joins, then the first leaves; every record is invoked exactly once.
func TestKafkaRebalance(t *testing.T) {
	c := newCluster(t, 4)
	parts := []int32{0, 1, 2, 3}
	produce(t, c, parts, 0, 40)
	slow := func(events.KafkaEvent, string, []int64) (any, error) {
		time.Sleep(30 * time.Millisecond)
		return nil, nil
	}
	a, b := newRecorder(t, slow), newRecorder(t, slow)
	cfg := testConfig(c, "g-rebalance")
	cfg.BatchSize = 5
	stopA := start(t, cfg, a)
	lambdatest.WaitFor(t, "the first member consuming", 10*time.Second, func() bool { return len(a.offsets(PartitionKey(topic, 0))) > 0 })
	start(t, cfg, b)
	lambdatest.WaitFor(t, "the second member assigned", 20*time.Second, func() bool {
		for _, p := range parts {
			if len(b.offsets(PartitionKey(topic, p))) > 0 {
				return true
			}
		}
		return false
	})
	produce(t, c, parts, 40, 40)
	time.Sleep(300 * time.Millisecond)
	if err := stopA(); err != nil {
		t.Fatal(err)
	}
	for _, p := range parts {
		lambdatest.WaitFor(t, "all committed", 30*time.Second, func() bool { return committed(t, c, "g-rebalance", p) == 80 })
	}
	for _, p := range parts {
		key := PartitionKey(topic, p)
		all := append(a.offsets(key), b.offsets(key)...)
		slices.Sort(all)
		if !slices.Equal(all, seq(0, 80)) {
			t.Errorf("%s: invoked %v; want 0..79 once each", key, all)
		}
	}
}

func TestKafkaMaxRetriesSkips(t *testing.T) {
	c := newCluster(t, 1)
	produce(t, c, []int32{0}, 0, 20)
	rec := newRecorder(t, func(_ events.KafkaEvent, _ string, offsets []int64) (any, error) {
		if slices.Contains(offsets, 3) {
			return nil, errors.New("poison")
		}
		return nil, nil
	})
	cfg := testConfig(c, "g-skip")
	two := 2
	cfg.MaxRetries = &two
	start(t, cfg, rec)
	lambdatest.WaitFor(t, "committed past the poison batch", 20*time.Second, func() bool { return committed(t, c, "g-skip", 0) == 20 })
	tries := 0
	for _, inv := range rec.invocations(PartitionKey(topic, 0)) {
		if slices.Contains(inv, 3) {
			tries++
		}
	}
	if tries != 3 {
		t.Errorf("poison batch invoked %d times, want 1 + 2 retries", tries)
	}
}

// Bisecting isolates the poison record: everything else succeeds, in
// order, and the poison one is skipped after its retries.
func TestKafkaBisectOnError(t *testing.T) {
	c := newCluster(t, 1)
	produce(t, c, []int32{0}, 0, 10)
	var mu sync.Mutex
	var ok []int64
	rec := newRecorder(t, func(_ events.KafkaEvent, _ string, offsets []int64) (any, error) {
		if slices.Contains(offsets, 7) {
			return nil, errors.New("poison")
		}
		mu.Lock()
		ok = append(ok, offsets...)
		mu.Unlock()
		return nil, nil
	})
	cfg := testConfig(c, "g-bisect")
	cfg.BatchWindow = time.Second // one batch of all ten
	cfg.BisectOnError = true
	zero := 0
	cfg.MaxRetries = &zero
	start(t, cfg, rec)
	lambdatest.WaitFor(t, "committed", 20*time.Second, func() bool { return committed(t, c, "g-bisect", 0) == 10 })
	mu.Lock()
	defer mu.Unlock()
	if want := []int64{0, 1, 2, 3, 4, 5, 6, 8, 9}; !slices.Equal(ok, want) {
		t.Errorf("succeeded %v, want %v", ok, want)
	}
}

func TestKafkaPartialBatchFailure(t *testing.T) {
	c := newCluster(t, 1)
	produce(t, c, []int32{0}, 0, 10)
	var mu sync.Mutex
	first := true
	var committedAtRetry int64
	rec := newRecorder(t, func(_ events.KafkaEvent, key string, offsets []int64) (any, error) {
		mu.Lock()
		defer mu.Unlock()
		if first {
			first = false
			return map[string]any{"batchItemFailures": []any{
				map[string]any{"itemIdentifier": map[string]any{"partition": key, "offset": 6}},
				map[string]any{"itemIdentifier": map[string]any{"partition": key, "offset": 4}},
			}}, nil
		}
		committedAtRetry = committed(t, c, "g-partial", 0)
		return map[string]any{"batchItemFailures": []any{}}, nil
	})
	cfg := testConfig(c, "g-partial")
	cfg.BatchWindow = time.Second
	cfg.ReportBatchItemFailures = true
	start(t, cfg, rec)
	lambdatest.WaitFor(t, "committed", 20*time.Second, func() bool { return committed(t, c, "g-partial", 0) == 10 })
	invs := rec.invocations(PartitionKey(topic, 0))
	if len(invs) != 2 || !slices.Equal(invs[0], seq(0, 10)) || !slices.Equal(invs[1], seq(4, 10)) {
		t.Errorf("invocations %v, want [0..9] then [4..9]", invs)
	}
	mu.Lock()
	defer mu.Unlock()
	if committedAtRetry != 4 {
		t.Errorf("committed %d before the retry, want 4 (up to the first reported failure)", committedAtRetry)
	}
}

func TestKafkaMaxRecordAge(t *testing.T) {
	c := newCluster(t, 1)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * time.Hour)
	if err := cl.ProduceSync(context.Background(),
		&kgo.Record{Topic: topic, Value: []byte("old"), Timestamp: old},
		&kgo.Record{Topic: topic, Value: []byte("new"), Timestamp: time.Now()},
	).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	rec := newRecorder(t, nil)
	cfg := testConfig(c, "g-age")
	cfg.MaxRecordAge = time.Hour
	cfg.BatchWindow = 500 * time.Millisecond
	start(t, cfg, rec)
	lambdatest.WaitFor(t, "committed", 20*time.Second, func() bool { return committed(t, c, "g-age", 0) == 2 })
	if got := rec.offsets(PartitionKey(topic, 0)); !slices.Equal(got, []int64{1}) {
		t.Errorf("invoked %v, want only the young record 1", got)
	}
}

// SASL/SCRAM credentials come from the secret the importer names, as
// JSON in an environment variable.
func TestKafkaSCRAM(t *testing.T) {
	c := newCluster(t, 1, kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", "orders-fn", "s3cret"))
	t.Setenv("KAFKA_SECRET", `{"username":"orders-fn","password":"s3cret"}`)
	t.Setenv("BAD_SECRET", `{"username":"orders-fn","password":"wrong"}`)
	off := false

	cfg := testConfig(c, "g-scram")
	cfg.Auth = []Auth{{Type: AuthSCRAM512, SecretEnv: "BAD_SECRET"}}
	cfg.TLS = &off
	src, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = src.Run(ctx, newRecorder(t, nil))
	if err == nil || ctx.Err() != nil {
		t.Fatalf("wrong password: Run = %v", err)
	}
	if s := err.Error(); strings.Contains(s, "wrong") {
		t.Errorf("error shows the secret: %s", s)
	}

	cfg.Auth = []Auth{{Type: AuthSCRAM512, SecretEnv: "KAFKA_SECRET"}}
	produce(t, c, []int32{0}, 0, 5, kgo.SASL(scram.Auth{User: "orders-fn", Pass: "s3cret"}.AsSha512Mechanism()))
	rec := newRecorder(t, nil)
	start(t, cfg, rec)
	lambdatest.WaitFor(t, "committed", 20*time.Second, func() bool { return len(rec.offsets(PartitionKey(topic, 0))) == 5 })
}

func TestKafkaMissingSecret(t *testing.T) {
	c := newCluster(t, 1)
	cfg := testConfig(c, "g-nosecret")
	cfg.Auth = []Auth{{Type: AuthBasic, SecretEnv: "CUTOVER_UNSET_SECRET_FOR_TEST"}}
	src, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = src.Run(context.Background(), newRecorder(t, nil))
	if err == nil {
		t.Fatal("Run started without its secret")
	}
}

// A partition with more records buffered than the worker keeps pauses
// its fetching and resumes it as batches go: nothing lost, nothing twice,
// in order.
func TestKafkaBackpressure(t *testing.T) {
	c := newCluster(t, 1)
	produce(t, c, []int32{0}, 0, 2500)
	rec := newRecorder(t, func(events.KafkaEvent, string, []int64) (any, error) {
		time.Sleep(50 * time.Millisecond)
		return nil, nil
	})
	cfg := testConfig(c, "g-pause")
	cfg.BatchSize = 300 // buffers pause at 1000 records
	var logs syncBuffer
	cfg.Log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	start(t, cfg, rec)
	lambdatest.WaitFor(t, "all committed", 30*time.Second, func() bool { return committed(t, c, "g-pause", 0) == 2500 })
	if got := rec.offsets(PartitionKey(topic, 0)); !slices.Equal(got, seq(0, 2500)) {
		t.Errorf("invoked %d offsets, not 0..2499 once each in order", len(got))
	}
	if l := logs.String(); !strings.Contains(l, "fetching paused") || !strings.Contains(l, "fetching resumed") {
		t.Errorf("fetching never paused and resumed")
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
