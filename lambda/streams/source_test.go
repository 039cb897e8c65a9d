package streams

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cutoverhq/cutover/internal/kinesisstub"
	"github.com/cutoverhq/cutover/lambda"
	"github.com/cutoverhq/cutover/lambda/internal/lambdatest"
)

// Protocol tests: the source drives the real AWS SDK for Go v2 kinesis and
// dynamodbstreams clients against internal/kinesisstub, an endpoint in
// process with real shard, iterator and retention semantics. AWS itself
// cannot be reached from here. The function is a handler in process
// (recorder); runtime_test.go runs a real function under the real runtime.

// item is one record as the function saw it.
type item struct {
	shard string // Kinesis: from the eventID; DynamoDB: empty
	seq   string
	data  string // Kinesis data; DynamoDB: "<eventName> <id>"
}

// outcome is what the in-process function answers.
type outcome struct {
	err error
	// failFrom reports items[failFrom] as the first failed record
	// (batchItemFailures); -1: none.
	failFrom int
	// raw, when set, is the answer as is.
	raw []byte
}

var ok = outcome{failFrom: -1}

type invocation struct {
	items   []item
	handled int // how many of items the function took as done
}

// recorder runs an in-process handler as an Invoker and records what it
// was given.
type recorder struct {
	kind   string
	handle func(items []item) outcome

	mu          sync.Mutex
	invocations []invocation
	inFlight    map[string]int
	overlap     bool
	block       chan struct{} // when not nil, each invocation waits for it
}

func newRecorder(kind string, handle func([]item) outcome) *recorder {
	if handle == nil {
		handle = func([]item) outcome { return ok }
	}
	return &recorder{kind: kind, handle: handle, inFlight: map[string]int{}}
}

func (r *recorder) Invoke(ctx context.Context, inv lambda.Invocation) (lambda.Response, error) {
	var items []item
	if r.kind == Kinesis {
		var ev events.KinesisEvent
		if err := json.Unmarshal(inv.Payload, &ev); err != nil {
			return lambda.Response{}, fmt.Errorf("not a Kinesis event: %w", err)
		}
		for _, x := range ev.Records {
			shard, _, _ := strings.Cut(x.EventID, ":")
			items = append(items, item{shard: shard, seq: x.Kinesis.SequenceNumber, data: string(x.Kinesis.Data)})
		}
	} else {
		var ev events.DynamoDBEvent
		if err := json.Unmarshal(inv.Payload, &ev); err != nil {
			return lambda.Response{}, fmt.Errorf("not a DynamoDB event: %w", err)
		}
		for _, x := range ev.Records {
			items = append(items, item{seq: x.Change.SequenceNumber, data: x.EventName + " " + x.Change.Keys["id"].String()})
		}
	}
	shard := ""
	if len(items) > 0 {
		shard = items[0].shard
	}
	r.mu.Lock()
	r.inFlight[shard]++
	if r.inFlight[shard] > 1 && shard != "" {
		r.overlap = true
	}
	block := r.block
	r.mu.Unlock()
	if block != nil {
		<-block
	}
	o := r.handle(items)
	handled := len(items)
	var resp lambda.Response
	switch {
	case o.err != nil:
		handled = 0
		resp.Err = &lambda.FunctionError{Type: "errorString", Message: o.err.Error()}
	case o.raw != nil:
		resp.Payload = o.raw
	case o.failFrom >= 0:
		handled = o.failFrom
		resp.Payload, _ = json.Marshal(map[string]any{"batchItemFailures": []map[string]string{{"itemIdentifier": items[o.failFrom].seq}}})
	default:
		resp.Payload = []byte(`{"batchItemFailures":[]}`)
	}
	r.mu.Lock()
	r.inFlight[shard]--
	r.invocations = append(r.invocations, invocation{items: items, handled: handled})
	r.mu.Unlock()
	return resp, nil
}

// handled lists the records the function took as done, in invocation
// order.
func (r *recorder) handled() []item {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []item
	for _, inv := range r.invocations {
		out = append(out, inv.items[:inv.handled]...)
	}
	return out
}

func (r *recorder) all() []invocation {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]invocation(nil), r.invocations...)
}

type fixture struct {
	stub *kinesisstub.Server
	k    *kinesis.Client
	d    *dynamodbstreams.Client
	dir  string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	stub := kinesisstub.New()
	t.Cleanup(stub.Close)
	creds := credentials.NewStaticCredentialsProvider("AKIDSTUB", "stub-secret", "")
	return &fixture{stub: stub, dir: t.TempDir(),
		k: kinesis.New(kinesis.Options{Region: stub.Region, BaseEndpoint: aws.String(stub.URL), Credentials: creds}),
		d: dynamodbstreams.New(dynamodbstreams.Options{Region: stub.Region, BaseEndpoint: aws.String(stub.URL), Credentials: creds})}
}

// config is a source's configuration against the stub, with test-short
// intervals.
func (f *fixture) config(kind, arn string) Config {
	return Config{Kind: kind, StreamARN: arn, Kinesis: f.k, DynamoDB: f.d, CheckpointFile: filepath.Join(f.dir, "checkpoint.json"),
		PollInterval: 50 * time.Millisecond, DiscoveryInterval: 200 * time.Millisecond, RetryBackoff: 20 * time.Millisecond}
}

// run starts a source; stop cancels it and returns Run's error.
func run(t *testing.T, cfg Config, inv lambda.Invoker) (stop func() error) {
	t.Helper()
	src, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return lambdatest.Run(t, src, inv)
}

func (f *fixture) put(t *testing.T, stream, key string, data ...string) []string {
	t.Helper()
	var seqs []string
	for _, d := range data {
		_, seq, err := f.stub.Put(stream, key, []byte(d))
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, seq)
	}
	return seqs
}

func (f *fixture) checkpoint(t *testing.T) *Checkpoint {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(f.dir, "checkpoint.json"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseCheckpoint("checkpoint.json", b)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// counts maps each record's data to how many times it was handled.
func counts(items []item) map[string]int {
	m := map[string]int{}
	for _, it := range items {
		m[it.data]++
	}
	return m
}

// exactlyOnce checks every want was handled once and nothing else was.
func exactlyOnce(t *testing.T, items []item, want []string) {
	t.Helper()
	c := counts(items)
	for _, w := range want {
		if c[w] != 1 {
			t.Errorf("%q handled %d times, want once", w, c[w])
		}
		delete(c, w)
	}
	for d, n := range c {
		t.Errorf("%q handled %d times, want never", d, n)
	}
}

func keyed(key string, from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("%s:%03d", key, i))
	}
	return out
}

// inOrder checks each key's records were handled in increasing order.
func inOrder(t *testing.T, items []item) {
	t.Helper()
	last := map[string]string{}
	for _, it := range items {
		k, n, _ := strings.Cut(it.data, ":")
		if prev, ok := last[k]; ok && n <= prev {
			t.Errorf("%s handled after %s:%s", it.data, k, prev)
		}
		last[k] = n
	}
}

func TestProtocolKinesisOrderPerShardAndCheckpoints(t *testing.T) {
	f := newFixture(t)
	arn := f.stub.CreateStream("authorisations", 3)
	var want []string
	for k := range 8 {
		key := fmt.Sprintf("card-%d", k)
		f.put(t, "authorisations", key, keyed(key, 0, 30)...)
		want = append(want, keyed(key, 0, 30)...)
	}
	rec := newRecorder(Kinesis, func([]item) outcome { time.Sleep(time.Millisecond); return ok })
	reg := prometheus.NewRegistry()
	cfg := f.config(Kinesis, arn)
	cfg.BatchSize = 25
	cfg.Registerer = reg
	cfg.InvokeIdentityARN = "arn:aws:iam::123456789012:role/fraud"
	stop := run(t, cfg, rec)
	lambdatest.WaitFor(t, "240 records", 20*time.Second, func() bool { return len(rec.handled()) == 240 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	items := rec.handled()
	exactlyOnce(t, items, want)
	inOrder(t, items)
	shardsSeen := map[string]bool{}
	for _, inv := range rec.all() {
		if len(inv.items) > 25 {
			t.Errorf("batch of %d over --batch-size 25", len(inv.items))
		}
		for _, it := range inv.items {
			if it.shard != inv.items[0].shard {
				t.Errorf("one invocation holds records of %s and %s", inv.items[0].shard, it.shard)
			}
		}
		shardsSeen[inv.items[0].shard] = true
	}
	if rec.overlap {
		t.Error("two invocations of one shard ran at once")
	}
	if len(shardsSeen) != 3 {
		t.Errorf("records came from %d shards, want 3", len(shardsSeen))
	}
	// The checkpoint holds each shard's last record.
	cp := f.checkpoint(t)
	for _, sh := range f.stub.Shards("authorisations") {
		if got := cp.Shards[sh.ID]; got == nil || got.SequenceNumber != sh.Records[len(sh.Records)-1] {
			t.Errorf("%s checkpoint %+v, want %s", sh.ID, got, sh.Records[len(sh.Records)-1])
		}
	}
	if cp.StreamARN != arn {
		t.Errorf("checkpoint stream %q", cp.StreamARN)
	}
	if n := metric(t, reg, "cutover_lambda_kinesis_records_total", "checkpointed"); n != 240 {
		t.Errorf("records_total{checkpointed} = %v", n)
	}
}

// metric reads a counter or gauge from the registry; with outcome, the
// one with that outcome label.
func metric(t *testing.T, reg *prometheus.Registry, name, outcome string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.Metric {
			match := outcome == ""
			for _, l := range m.Label {
				if l.GetName() == "outcome" && l.GetValue() == outcome {
					match = true
				}
			}
			if !match {
				continue
			}
			if m.Gauge != nil {
				return m.GetGauge().GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func TestProtocolKinesisResumeAfterRestart(t *testing.T) {
	f := newFixture(t)
	arn := f.stub.CreateStream("ledger", 1)
	f.put(t, "ledger", "acct", keyed("acct", 0, 40)...)
	cfg := f.config(Kinesis, arn)
	cfg.BatchSize = 10

	// First run: stopped while its third batch runs. That batch finishes
	// and is checkpointed before Run returns.
	rec1 := newRecorder(Kinesis, nil)
	started := make(chan struct{}, 10)
	release := make(chan struct{})
	n := 0
	rec1.handle = func(items []item) outcome {
		n++
		if n == 3 {
			started <- struct{}{}
			<-release
		}
		return ok
	}
	stop := run(t, cfg, rec1)
	<-started
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	time.Sleep(100 * time.Millisecond)
	close(release)
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	first := rec1.handled()
	if len(first) != 30 {
		t.Fatalf("first run handled %d records, want 30 (three batches)", len(first))
	}
	cp := f.checkpoint(t)
	if got := cp.Shards["shardId-000000000000"].SequenceNumber; got != f.stub.Shards("ledger")[0].Records[29] {
		t.Fatalf("checkpoint after the stop = %s, want the 30th record's", got)
	}

	// Records arrive while serve is down; the second run resumes after
	// the checkpoint.
	f.put(t, "ledger", "acct", keyed("acct", 40, 50)...)
	rec2 := newRecorder(Kinesis, nil)
	stop = run(t, cfg, rec2)
	lambdatest.WaitFor(t, "the rest", 20*time.Second, func() bool { return len(rec2.handled()) == 20 })
	stop()
	all := append(first, rec2.handled()...)
	exactlyOnce(t, all, keyed("acct", 0, 50))
	inOrder(t, all)
}

// failedInvoker fails every invocation as a runtime that is shutting down
// does: the function never answered, so nothing may be checkpointed.
type failedInvoker struct{ calls atomic.Int32 }

func (f *failedInvoker) Invoke(context.Context, lambda.Invocation) (lambda.Response, error) {
	f.calls.Add(1)
	return lambda.Response{}, lambda.ErrClosed
}

func TestProtocolUnansweredBatchIsReadAgain(t *testing.T) {
	f := newFixture(t)
	arn := f.stub.CreateStream("ledger", 1)
	f.put(t, "ledger", "acct", keyed("acct", 0, 10)...)
	cfg := f.config(Kinesis, arn)
	cfg.BatchSize = 5
	rec := newRecorder(Kinesis, nil)
	stop := run(t, cfg, rec)
	lambdatest.WaitFor(t, "ten", 10*time.Second, func() bool { return len(rec.handled()) == 10 })
	stop()

	// A batch the function never answers (serve killed) is not
	// checkpointed: the next run gets exactly it again, nothing before.
	f.put(t, "ledger", "acct", keyed("acct", 10, 15)...)
	dead := &failedInvoker{}
	stop = run(t, cfg, dead)
	lambdatest.WaitFor(t, "an attempt", 10*time.Second, func() bool { return f.stub.Calls("Kinesis.GetRecords") > 0 && dead.calls.Load() > 0 })
	stop()
	rec2 := newRecorder(Kinesis, nil)
	stop = run(t, cfg, rec2)
	lambdatest.WaitFor(t, "the unanswered batch", 10*time.Second, func() bool { return len(rec2.handled()) == 5 })
	time.Sleep(200 * time.Millisecond)
	stop()
	exactlyOnce(t, rec2.handled(), keyed("acct", 10, 15))
}

func TestProtocolKinesisStartingPositions(t *testing.T) {
	for _, c := range []struct {
		position string
		want     func(old, fresh []string) []string
	}{
		{StartTrimHorizon, func(old, fresh []string) []string { return append(old, fresh...) }},
		{StartLatest, func(old, fresh []string) []string { return fresh }},
		{StartAtTimestamp, func(old, fresh []string) []string { return fresh }},
	} {
		t.Run(c.position, func(t *testing.T) {
			f := newFixture(t)
			arn := f.stub.CreateStream("events", 2)
			old := keyed("k", 0, 6)
			f.put(t, "events", "k", old...)
			f.stub.Advance(10 * time.Second)
			cfg := f.config(Kinesis, arn)
			cfg.StartingPosition = c.position
			cfg.StartingTimestamp = f.stub.Now()
			rec := newRecorder(Kinesis, nil)
			stop := run(t, cfg, rec)
			// LATEST counts from the moment the shard's iterator is
			// taken: wait for reads before writing.
			lambdatest.WaitFor(t, "reads", 10*time.Second, func() bool { return f.stub.Calls("Kinesis.GetRecords") >= 2 })
			fresh := keyed("k", 6, 10)
			f.put(t, "events", "k", fresh...)
			want := c.want(old, fresh)
			lambdatest.WaitFor(t, "records", 10*time.Second, func() bool { return len(rec.handled()) >= len(want) })
			time.Sleep(300 * time.Millisecond)
			stop()
			exactlyOnce(t, rec.handled(), want)
		})
	}
}

// Issue: a LATEST start that stops before a shard's first record must not
// skip what arrives while serve is away.
func TestProtocolLatestRestartBeforeAnyRecordLosesNothing(t *testing.T) {
	for _, kind := range []string{Kinesis, DynamoDB} {
		t.Run(kind, func(t *testing.T) {
			f := newFixture(t)
			var arn string
			write := func(data []string) {
				for _, d := range data {
					if kind == Kinesis {
						f.put(t, "events", "k", d)
					} else {
						f.write(t, arn, "INSERT", d)
					}
				}
			}
			if kind == Kinesis {
				arn = f.stub.CreateStream("events", 1)
			} else {
				arn = f.stub.CreateTableStream("events", "NEW_IMAGE", "id")
			}
			// Written well before the start: outside the second of
			// margin a restart reads again.
			f.stub.Advance(-5 * time.Second)
			write([]string{"before"})
			f.stub.Advance(5 * time.Second)
			cfg := f.config(kind, arn)
			cfg.StartingPosition = StartLatest
			rec := newRecorder(kind, nil)
			stop := run(t, cfg, rec)
			op := "Kinesis.GetRecords"
			if kind == DynamoDB {
				op = "DynamoDBStreams.GetRecords"
			}
			lambdatest.WaitFor(t, "reads", 10*time.Second, func() bool { return f.stub.Calls(op) >= 2 })
			stop()
			time.Sleep(1100 * time.Millisecond) // into the next second, past DynamoDB's rounding
			write([]string{"while-away"})
			stop = run(t, cfg, rec)
			lambdatest.WaitFor(t, "the record written while away", 10*time.Second, func() bool { return len(rec.handled()) >= 1 })
			time.Sleep(300 * time.Millisecond)
			stop()
			want := "while-away"
			if kind == DynamoDB {
				want = "INSERT while-away"
			}
			exactlyOnce(t, rec.handled(), []string{want})
		})
	}
}

func TestProtocolPartialBatchFailure(t *testing.T) {
	f := newFixture(t)
	arn := f.stub.CreateStream("payouts", 1)
	f.put(t, "payouts", "p", keyed("p", 0, 10)...)
	cfg := f.config(Kinesis, arn)
	cfg.ReportBatchItemFailures = true
	var mu sync.Mutex
	failed := false
	rec := newRecorder(Kinesis, func(items []item) outcome {
		mu.Lock()
		defer mu.Unlock()
		for i, it := range items {
			if it.data == "p:004" && !failed {
				failed = true
				return outcome{failFrom: i}
			}
		}
		return ok
	})
	stop := run(t, cfg, rec)
	lambdatest.WaitFor(t, "all handled", 10*time.Second, func() bool { return len(rec.handled()) == 10 })
	stop()
	invs := rec.all()
	if len(invs) != 2 || len(invs[0].items) != 10 || invs[1].items[0].data != "p:004" || len(invs[1].items) != 6 {
		t.Fatalf("invocations: %+v; want the batch of 10, then a retry from p:004", invs)
	}
	exactlyOnce(t, rec.handled(), keyed("p", 0, 10))
}

func TestProtocolMalformedBatchResponseFailsTheWholeBatch(t *testing.T) {
	f := newFixture(t)
	arn := f.stub.CreateStream("payouts", 1)
	f.put(t, "payouts", "p", keyed("p", 0, 3)...)
	cfg := f.config(Kinesis, arn)
	cfg.ReportBatchItemFailures = true
	n := 0
	rec := newRecorder(Kinesis, func(items []item) outcome {
		n++
		if n == 1 {
			return outcome{raw: []byte(`{"batchItemFailures":[{"itemIdentifier":""}]}`)}
		}
		return ok
	})
	stop := run(t, cfg, rec)
	lambdatest.WaitFor(t, "the retry", 10*time.Second, func() bool { return len(rec.all()) == 2 })
	stop()
	invs := rec.all()
	if len(invs[1].items) != 3 {
		t.Errorf("retry of %d records, want the whole batch of 3", len(invs[1].items))
	}
}

func TestProtocolFunctionErrorRetriedInPlace(t *testing.T) {
	f := newFixture(t)
	arn := f.stub.CreateStream("payouts", 1)
	f.put(t, "payouts", "p", keyed("p", 0, 6)...)
	cfg := f.config(Kinesis, arn)
	cfg.BatchSize = 3
	n := 0
	rec := newRecorder(Kinesis, func(items []item) outcome {
		n++
		if n <= 2 {
			return outcome{err: errors.New("ledger unavailable"), failFrom: -1}
		}
		return ok
	})
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	stop := run(t, cfg, rec)
	lambdatest.WaitFor(t, "all handled", 10*time.Second, func() bool { return len(rec.handled()) == 6 })
	stop()
	invs := rec.all()
	// The failed batch is retried twice before the shard moves on.
	for i, want := range []string{"p:000", "p:000", "p:000", "p:003"} {
		if invs[i].items[0].data != want {
			t.Errorf("invocation %d starts at %s, want %s", i, invs[i].items[0].data, want)
		}
	}
	exactlyOnce(t, rec.handled(), keyed("p", 0, 6))
	if got := metric(t, reg, "cutover_lambda_kinesis_batch_retries_total", ""); got != 2 {
		t.Errorf("retries metric = %v", got)
	}
}

func TestProtocolMaxRetriesAndBisect(t *testing.T) {
	f := newFixture(t)
	arn := f.stub.CreateStream("payouts", 1)
	f.put(t, "payouts", "p", keyed("p", 0, 8)...)
	cfg := f.config(Kinesis, arn)
	cfg.BatchSize = 8
	cfg.BisectOnError = true
	retries := 1
	cfg.MaxRetries = &retries
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	rec := newRecorder(Kinesis, func(items []item) outcome {
		for _, it := range items {
			if it.data == "p:005" {
				return outcome{err: errors.New("poison"), failFrom: -1}
			}
		}
		return ok
	})
	stop := run(t, cfg, rec)
	lambdatest.WaitFor(t, "the others", 10*time.Second, func() bool { return len(rec.handled()) == 7 })
	lambdatest.WaitFor(t, "the checkpoint past the poison", 10*time.Second, func() bool {
		e := f.checkpoint(t).Shards["shardId-000000000000"]
		return e != nil && e.SequenceNumber == f.stub.Shards("payouts")[0].Records[7]
	})
	stop()
	want := append(keyed("p", 0, 5), keyed("p", 6, 8)...)
	exactlyOnce(t, rec.handled(), want)
	inOrder(t, rec.handled())
	// Bisected down to the poison record, which is tried twice (once and
	// one retry) and skipped.
	poison := 0
	for _, inv := range rec.all() {
		if len(inv.items) == 1 && inv.items[0].data == "p:005" {
			poison++
		}
	}
	if poison != 2 {
		t.Errorf("the poison record alone was invoked %d times, want 2", poison)
	}
	if got := metric(t, reg, "cutover_lambda_kinesis_records_total", "skipped"); got != 1 {
		t.Errorf("skipped = %v", got)
	}
}

func TestProtocolMaxRecordAge(t *testing.T) {
	f := newFixture(t)
	arn := f.stub.CreateStream("payouts", 1)
	// Written two minutes ago by the stub's clock.
	f.stub.Advance(-2 * time.Minute)
	f.put(t, "payouts", "p", keyed("p", 0, 3)...)
	f.stub.Advance(2 * time.Minute)
	f.put(t, "payouts", "p", keyed("p", 3, 5)...)
	cfg := f.config(Kinesis, arn)
	cfg.MaxRecordAge = time.Minute
	rec := newRecorder(Kinesis, nil)
	stop := run(t, cfg, rec)
	lambdatest.WaitFor(t, "the young ones", 10*time.Second, func() bool { return len(rec.handled()) == 2 })
	time.Sleep(200 * time.Millisecond)
	stop()
	exactlyOnce(t, rec.handled(), keyed("p", 3, 5))
}

func TestProtocolKinesisReshardingKeepsOrder(t *testing.T) {
	f := newFixture(t)
	arn := f.stub.CreateStream("wallet", 1)
	f.put(t, "wallet", "w-1", keyed("w-1", 0, 20)...)
	f.put(t, "wallet", "w-2", keyed("w-2", 0, 20)...)
	cfg := f.config(Kinesis, arn)
	cfg.BatchSize = 5
	rec := newRecorder(Kinesis, func([]item) outcome { time.Sleep(20 * time.Millisecond); return ok })
	stop := run(t, cfg, rec)
	lambdatest.WaitFor(t, "the first batches", 10*time.Second, func() bool { return len(rec.handled()) >= 5 })
	// Split while the parent is still being read, write to the
	// children, merge them, write again.
	a, b, err := f.stub.SplitShard("wallet", "shardId-000000000000")
	if err != nil {
		t.Fatal(err)
	}
	f.put(t, "wallet", "w-1", keyed("w-1", 20, 40)...)
	f.put(t, "wallet", "w-2", keyed("w-2", 20, 40)...)
	if _, err := f.stub.MergeShards("wallet", a, b); err != nil {
		t.Fatal(err)
	}
	f.put(t, "wallet", "w-1", keyed("w-1", 40, 60)...)
	f.put(t, "wallet", "w-2", keyed("w-2", 40, 60)...)
	lambdatest.WaitFor(t, "120 records", 20*time.Second, func() bool { return len(rec.handled()) == 120 })
	stop()
	items := rec.handled()
	exactlyOnce(t, items, append(keyed("w-1", 0, 60), keyed("w-2", 0, 60)...))
	inOrder(t, items)
	cp := f.checkpoint(t)
	for _, id := range []string{"shardId-000000000000", a, b} {
		if e := cp.Shards[id]; e == nil || !e.Finished {
			t.Errorf("%s checkpoint %+v, want finished", id, e)
		}
	}
}

func TestProtocolIteratorExpiresDuringASlowBatch(t *testing.T) {
	f := newFixture(t)
	arn := f.stub.CreateStream("slow", 1)
	f.put(t, "slow", "k", keyed("k", 0, 4)...)
	cfg := f.config(Kinesis, arn)
	cfg.BatchSize = 2
	first := true
	rec := newRecorder(Kinesis, func([]item) outcome {
		if first {
			// The function runs past the iterator's five minutes.
			first = false
			f.stub.Advance(kinesisstub.KinesisIteratorTTL + time.Minute)
		}
		return ok
	})
	stop := run(t, cfg, rec)
	lambdatest.WaitFor(t, "all", 10*time.Second, func() bool { return len(rec.handled()) == 4 })
	f.put(t, "slow", "k", "k:004")
	lambdatest.WaitFor(t, "the next", 10*time.Second, func() bool { return len(rec.handled()) == 5 })
	stop()
	exactlyOnce(t, rec.handled(), keyed("k", 0, 5))
	if n := f.stub.Calls("Kinesis.GetShardIterator"); n < 2 {
		t.Errorf("%d GetShardIterator calls: the expired iterator was not replaced", n)
	}
}

func TestProtocolThrottledReadsAreRetried(t *testing.T) {
	f := newFixture(t)
	arn := f.stub.CreateStream("busy", 1)
	f.put(t, "busy", "k", keyed("k", 0, 5)...)
	f.stub.Fail("Kinesis.GetRecords", 4, "ProvisionedThroughputExceededException")
	f.stub.Fail("Kinesis.ListShards", 1, "InternalFailure")
	cfg := f.config(Kinesis, arn)
	rec := newRecorder(Kinesis, nil)
	stop := run(t, cfg, rec)
	lambdatest.WaitFor(t, "all", 20*time.Second, func() bool { return len(rec.handled()) == 5 })
	stop()
	exactlyOnce(t, rec.handled(), keyed("k", 0, 5))
}

func (f *fixture) write(t *testing.T, arn, event, id string) string {
	t.Helper()
	key := map[string]any{"id": map[string]any{"S": id}}
	c := kinesisstub.Change{EventName: event, Keys: key}
	if event != "REMOVE" {
		c.NewImage = map[string]any{"id": map[string]any{"S": id}, "v": map[string]any{"N": "1"}}
	}
	if event != "INSERT" {
		c.OldImage = map[string]any{"id": map[string]any{"S": id}, "v": map[string]any{"N": "0"}}
	}
	seq, err := f.stub.WriteItem(arn, c)
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

func TestProtocolDynamoDBRotationKeepsOrder(t *testing.T) {
	f := newFixture(t)
	arn := f.stub.CreateTableStream("transfers", "NEW_AND_OLD_IMAGES", "id")
	var want []string
	for r := range 3 {
		for i := range 10 {
			id := fmt.Sprintf("t:%03d", r*10+i)
			f.write(t, arn, "INSERT", id)
			want = append(want, "INSERT "+id)
		}
		if _, err := f.stub.RotateShard(arn); err != nil {
			t.Fatal(err)
		}
	}
	cfg := f.config(DynamoDB, arn)
	cfg.BatchSize = 4
	rec := newRecorder(DynamoDB, nil)
	stop := run(t, cfg, rec)
	lambdatest.WaitFor(t, "30 records", 20*time.Second, func() bool { return len(rec.handled()) == 30 })
	stop()
	items := rec.handled()
	exactlyOnce(t, items, want)
	for i := 1; i < len(items); i++ {
		if items[i].data < items[i-1].data {
			t.Errorf("%s after %s", items[i].data, items[i-1].data)
		}
	}
}

func TestProtocolDynamoDBStartingPositions(t *testing.T) {
	for _, position := range []string{StartTrimHorizon, StartLatest, StartAtTimestamp} {
		t.Run(position, func(t *testing.T) {
			f := newFixture(t)
			arn := f.stub.CreateTableStream("orders", "NEW_IMAGE", "id")
			f.write(t, arn, "INSERT", "old")
			f.stub.Advance(10 * time.Second)
			cfg := f.config(DynamoDB, arn)
			cfg.StartingPosition = position
			cfg.StartingTimestamp = f.stub.Now()
			rec := newRecorder(DynamoDB, nil)
			stop := run(t, cfg, rec)
			lambdatest.WaitFor(t, "reads", 10*time.Second, func() bool { return f.stub.Calls("DynamoDBStreams.GetRecords") >= 2 })
			f.write(t, arn, "MODIFY", "new")
			want := []string{"MODIFY new"}
			if position == StartTrimHorizon {
				want = append([]string{"INSERT old"}, want...)
			}
			lambdatest.WaitFor(t, "records", 10*time.Second, func() bool { return len(rec.handled()) >= len(want) })
			time.Sleep(200 * time.Millisecond)
			stop()
			exactlyOnce(t, rec.handled(), want)
		})
	}
}

func TestProtocolDynamoDBCheckpointPastRetention(t *testing.T) {
	f := newFixture(t)
	arn := f.stub.CreateTableStream("orders", "NEW_IMAGE", "id")
	f.write(t, arn, "INSERT", "a")
	f.write(t, arn, "INSERT", "b")
	cfg := f.config(DynamoDB, arn)
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	rec := newRecorder(DynamoDB, nil)
	stop := run(t, cfg, rec)
	lambdatest.WaitFor(t, "two", 10*time.Second, func() bool { return len(rec.handled()) == 2 })
	stop()
	// Away for more than the retention: what came meanwhile was partly
	// trimmed. The source says so and reads what is left.
	f.write(t, arn, "INSERT", "lost")
	f.stub.Advance(kinesisstub.Retention + time.Hour)
	f.write(t, arn, "INSERT", "kept")
	rec2 := newRecorder(DynamoDB, nil)
	cfg.Registerer = prometheus.NewRegistry()
	stop = run(t, cfg, rec2)
	lambdatest.WaitFor(t, "the kept record", 10*time.Second, func() bool { return len(rec2.handled()) == 1 })
	stop()
	exactlyOnce(t, rec2.handled(), []string{"INSERT kept"})
	if got := metric(t, cfg.Registerer.(*prometheus.Registry), "cutover_lambda_dynamodb_trimmed_total", ""); got != 1 {
		t.Errorf("trimmed_total = %v", got)
	}
}

func TestProtocolOneProcessPerCheckpoint(t *testing.T) {
	f := newFixture(t)
	arn := f.stub.CreateStream("s", 1)
	cfg := f.config(Kinesis, arn)
	rec := newRecorder(Kinesis, nil)
	stop := run(t, cfg, rec)
	lambdatest.WaitFor(t, "the first source to read", 10*time.Second, func() bool { return f.stub.Calls("Kinesis.GetRecords") > 0 })
	src, _ := New(cfg)
	if err := src.Run(context.Background(), rec); !errors.Is(err, ErrCheckpointLocked) {
		t.Errorf("second reader of one checkpoint: %v", err)
	}
	stop()

	// A checkpoint of another stream is refused.
	other := f.stub.CreateStream("other", 1)
	cfg.StreamARN = other
	src, _ = New(cfg)
	if err := src.Run(context.Background(), rec); err == nil || !strings.Contains(err.Error(), "belongs to stream") {
		t.Errorf("another stream's checkpoint: %v", err)
	}
}

func TestProtocolMissingStreamFailsAtStart(t *testing.T) {
	f := newFixture(t)
	for _, kind := range []string{Kinesis, DynamoDB} {
		arn := "arn:aws:kinesis:us-east-1:123456789012:stream/nope"
		if kind == DynamoDB {
			arn = "arn:aws:dynamodb:us-east-1:123456789012:table/nope/stream/2024-01-01T00:00:00.000"
		}
		cfg := f.config(kind, arn)
		cfg.CheckpointFile = filepath.Join(f.dir, kind+".json")
		src, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = src.Run(ctx, newRecorder(kind, nil))
		cancel()
		if err == nil || !strings.Contains(err.Error(), "ResourceNotFoundException") {
			t.Errorf("%s: Run = %v", kind, err)
		}
	}
}

func TestProtocolCheckpointFileIsWhole(t *testing.T) {
	// Every save leaves a whole, parseable file with the stream and the
	// version, which a restart reads.
	f := newFixture(t)
	arn := f.stub.CreateStream("s", 2)
	f.put(t, "s", "a", keyed("a", 0, 3)...)
	cfg := f.config(Kinesis, arn)
	rec := newRecorder(Kinesis, nil)
	stop := run(t, cfg, rec)
	lambdatest.WaitFor(t, "three", 10*time.Second, func() bool { return len(rec.handled()) == 3 })
	stop()
	cp := f.checkpoint(t)
	if cp.Version != 1 || len(cp.Shards) != 2 {
		t.Errorf("checkpoint %+v", cp)
	}
	for id, e := range cp.Shards {
		if e.SequenceNumber == "" && e.Start != StartTrimHorizon {
			t.Errorf("%s: %+v", id, e)
		}
	}
}
