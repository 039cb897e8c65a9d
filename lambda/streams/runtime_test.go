package streams

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/internal/awsstub"
	"github.com/cutoverhq/cutover/internal/kinesisstub"
	"github.com/cutoverhq/cutover/internal/testenv"
	"github.com/cutoverhq/cutover/lambda"
	"github.com/cutoverhq/cutover/lambda/internal/lambdatest"
)

// Protocol tests with a real function: lambda/streams/internal/streamfn,
// built on aws-lambda-go, runs as a child process under the real runtime,
// fed by the sources built from serve's flags, with the SDK clients they
// build themselves pointed at internal/kinesisstub (--endpoint-url).

// TestMain shares one kube-apiserver among the tests that need one
// (kube_test.go); testenv.Main exits the process itself.
func TestMain(m *testing.M) { testenv.Main(m) }

// streamFunction builds the test function, as a provided.al2023 function
// is built, into the test's own directory (the build cache makes every
// build after the first a link).
func streamFunction(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "bootstrap")
	cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-o", out, "github.com/cutoverhq/cutover/lambda/streams/internal/streamfn")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("cannot build the test function: %v", err)
	}
	return out
}

// underRuntime starts the runtime with the function; it returns the
// runtime and the function's log.
func underRuntime(t *testing.T, concurrency int) (*lambda.Runtime, string) {
	t.Helper()
	// The sources build their SDK clients from the environment, as in a
	// pod: static credentials here, no instance metadata.
	awsstub.FakeEnv(t)
	log := filepath.Join(t.TempDir(), "handled")
	rt, err := lambda.New(lambda.Config{
		Command:     []string{streamFunction(t)},
		Env:         append(os.Environ(), "STREAMFN_LOG="+log),
		Concurrency: concurrency,
		Function:    lambda.FunctionConfig{Name: "fraud-score-stream", Timeout: 30 * time.Second, Region: "us-east-1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		rt.Shutdown(ctx)
	})
	return rt, log
}

// logged reads the function's log: one line per handled record.
func logged(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

// fromFlags builds a source as serve does, with test-short intervals.
func fromFlags(t *testing.T, kind string, args ...string) lambda.Source {
	t.Helper()
	src, err := lambda.NewSource(kind, args, lambda.SourceOptions{Function: lambda.FunctionConfig{Timeout: 30 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	s := src.(*Source)
	s.cfg.PollInterval, s.cfg.DiscoveryInterval, s.cfg.RetryBackoff = 50*time.Millisecond, 200*time.Millisecond, 20*time.Millisecond
	if kind == Kinesis {
		s.cfg.PollInterval = kinesisReadGap
	}
	return src
}

func start(t *testing.T, src lambda.Source, inv lambda.Invoker) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, inv) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			err = <-done
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

// handledData is the data of each logged line, by key prefix order.
func handledData(lines []string) []string {
	var out []string
	for _, l := range lines {
		f := strings.SplitN(l, " ", 3)
		out = append(out, f[2])
	}
	return out
}

// A real function under the runtime: every record handled once, in order
// per partition key, a function error retried, a reported item failure
// retried from that record on.
func TestProtocolRealFunctionKinesis(t *testing.T) {
	f := newFixture(t)
	arn := f.stub.CreateStream("card-authorisations", 2)
	var want []string
	for k := range 4 {
		key := fmt.Sprintf("card-%d", k)
		data := keyed(key, 0, 15)
		if k == 1 {
			data[4] = "fail-batch-once " + data[4]
		}
		if k == 2 {
			data[7] = "fail-item-once " + data[7]
		}
		f.put(t, "card-authorisations", key, data...)
		want = append(want, data...)
	}
	rt, log := underRuntime(t, 2)
	src := fromFlags(t, Kinesis, "--stream-arn", arn, "--endpoint-url", f.stub.URL, "--starting-position", "TRIM_HORIZON",
		"--batch-size", "10", "--report-batch-item-failures", "--checkpoint-file", filepath.Join(f.dir, "cp.json"))
	stop := start(t, src, rt)
	lambdatest.WaitFor(t, "60 records handled", 30*time.Second, func() bool { return len(logged(t, log)) >= 60 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	lines := logged(t, log)
	var items []item
	for _, l := range lines {
		p := strings.SplitN(l, " ", 3)
		items = append(items, item{shard: p[0], seq: p[1], data: strings.TrimPrefix(strings.TrimPrefix(p[2], "fail-batch-once "), "fail-item-once ")})
	}
	var plain []string
	for _, w := range want {
		plain = append(plain, strings.TrimPrefix(strings.TrimPrefix(w, "fail-batch-once "), "fail-item-once "))
	}
	exactlyOnce(t, items, plain)
	inOrder(t, items)
	failedOnce(t, log, "fail-", "item-")
	// Each shard's checkpoint is its last record.
	for _, sh := range f.stub.Shards("card-authorisations") {
		b, _ := os.ReadFile(filepath.Join(f.dir, "cp.json"))
		if !strings.Contains(string(b), sh.Records[len(sh.Records)-1]) {
			t.Errorf("%s's last record is not checkpointed:\n%s", sh.ID, b)
		}
	}
}

// Stopped after its first batches, the source has checkpointed what the
// function handled; the next start resumes after it: no record lost, none
// handled twice. (TestProtocolKinesisResumeAfterRestart stops one while a
// batch runs.)
func TestProtocolRealFunctionResumesAfterRestart(t *testing.T) {
	f := newFixture(t)
	arn := f.stub.CreateStream("ledger", 1)
	f.put(t, "ledger", "acct", keyed("acct", 0, 10)...)
	rt, log := underRuntime(t, 1)
	args := []string{"--stream-arn", arn, "--endpoint-url", f.stub.URL, "--batch-size", "5", "--checkpoint-file", filepath.Join(f.dir, "cp.json")}
	stop := start(t, fromFlags(t, Kinesis, args...), rt)
	lambdatest.WaitFor(t, "the first records", 20*time.Second, func() bool { return len(logged(t, log)) >= 5 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	first := len(logged(t, log))
	f.put(t, "ledger", "acct", keyed("acct", 10, 30)...)
	stop = start(t, fromFlags(t, Kinesis, args...), rt)
	lambdatest.WaitFor(t, "all 30", 20*time.Second, func() bool { return len(logged(t, log)) >= 30 })
	time.Sleep(300 * time.Millisecond)
	stop()
	got := handledData(logged(t, log))
	if strings.Join(got, ",") != strings.Join(keyed("acct", 0, 30), ",") {
		t.Errorf("handled %v (first run %d), want acct:000..029 once each in order", got, first)
	}
}

// A DynamoDB table's changes reach a real function with their images,
// in order across a shard rotation, a failed batch retried.
func TestProtocolRealFunctionDynamoDB(t *testing.T) {
	f := newFixture(t)
	arn := f.stub.CreateTableStream("wallets", "NEW_AND_OLD_IMAGES", "id")
	write := func(event, id, v string) {
		c := kinesisstub.Change{EventName: event, Keys: map[string]any{"id": map[string]any{"S": id}}}
		if v != "" {
			c.NewImage = map[string]any{"id": map[string]any{"S": id}, "v": map[string]any{"N": v}}
		}
		if _, err := f.stub.WriteItem(arn, c); err != nil {
			t.Fatal(err)
		}
	}
	write("INSERT", "w-1", "10")
	write("MODIFY", "w-1", "20")
	write("INSERT", "fail-batch-once", "1")
	f.stub.RotateShard(arn)
	write("MODIFY", "w-1", "30")
	write("REMOVE", "w-1", "")
	rt, log := underRuntime(t, 1)
	stop := start(t, fromFlags(t, DynamoDB, "--stream-arn", arn, "--endpoint-url", f.stub.URL, "--batch-size", "2",
		"--checkpoint-file", filepath.Join(f.dir, "cp.json")), rt)
	lambdatest.WaitFor(t, "five changes", 20*time.Second, func() bool { return len(logged(t, log)) >= 5 })
	time.Sleep(300 * time.Millisecond)
	stop()
	got := handledData(logged(t, log))
	want := []string{"INSERT w-1 10", "MODIFY w-1 20", "INSERT fail-batch-once 1", "MODIFY w-1 30", "REMOVE w-1 -"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("handled %q, want %q", got, want)
	}
	failedOnce(t, log, "fail-")
}

// failedOnce checks the function did fail once for each kind of failure:
// it leaves a marker file beside its log when it does.
func failedOnce(t *testing.T, log string, kinds ...string) {
	t.Helper()
	for _, k := range kinds {
		m, _ := filepath.Glob(filepath.Join(filepath.Dir(log), k+"*"))
		if len(m) != 1 {
			t.Errorf("the function failed %d times with %s*, want once", len(m), k)
		}
	}
}
