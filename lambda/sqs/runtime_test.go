package sqs

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/lambda"
	"github.com/cutoverhq/cutover/lambda/internal/lambdatest"
)

// Protocol tests with a real function: lambda/sqs/internal/sqsfn, built on
// aws-lambda-go, runs as a child process under the real runtime, which
// the source invokes; SQS is internal/sqsstub through the real AWS SDK.

func TestMain(m *testing.M) {
	code := m.Run()
	lambdatest.Cleanup()
	os.Exit(code)
}

// sqsFunction builds the test function once per test binary, as a
// provided.al2023 function is built.
func sqsFunction(t *testing.T) string {
	t.Helper()
	return lambdatest.Build(t, "github.com/cutoverhq/cutover/lambda/sqs/internal/sqsfn")
}

// underRuntime starts the runtime with the function and returns it and
// the file the function logs deliveries to.
func underRuntime(t *testing.T, concurrency int) (*lambda.Runtime, string) {
	t.Helper()
	log := filepath.Join(t.TempDir(), "deliveries")
	rt, err := lambda.New(lambda.Config{
		Command:     []string{sqsFunction(t)},
		Env:         append(os.Environ(), "SQSFN_LOG="+log),
		Concurrency: concurrency,
		Function:    lambda.FunctionConfig{Name: "orders-consumer", Timeout: 30 * time.Second, Region: "us-east-1"},
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

// deliveries reads the function's log: body → receive counts, in order.
func deliveries(t *testing.T, path string) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if line == "" {
			continue
		}
		i := strings.LastIndex(line, " ")
		out[line[:i]] = append(out[line[:i]], line[i+1:])
	}
	return out
}

func TestProtocolRealFunction(t *testing.T) {
	t.Run("all deleted on success", func(t *testing.T) {
		f := newFixture(t, nil)
		rt, log := underRuntime(t, 2)
		bodies := []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"}
		f.send(t, bodies...)
		f.run(t, Config{Pollers: 2, ReportBatchItemFailures: true}, rt)
		lambdatest.WaitFor(t, "all deleted", 20*time.Second, func() bool { return f.deleted() == len(bodies) })
		got := deliveries(t, log)
		for _, b := range bodies {
			if !slices.Equal(got[b], []string{"1"}) {
				t.Errorf("%s delivered %v, want once", b, got[b])
			}
		}
	})

	t.Run("partial batch failure", func(t *testing.T) {
		f := newFixture(t, map[string]string{"VisibilityTimeout": "30"})
		rt, log := underRuntime(t, 1)
		f.send(t, "ok-1", "fail-once-1", "ok-2", "fail-once-2")
		f.run(t, Config{ReportBatchItemFailures: true}, rt)
		lambdatest.WaitFor(t, "the others deleted", 20*time.Second, func() bool { return f.deleted() == 2 })
		for _, m := range f.stub.Messages("orders") {
			if m.Deleted == strings.HasPrefix(m.Body, "fail") {
				t.Errorf("%s deleted=%v after the first batch", m.Body, m.Deleted)
			}
		}
		f.stub.Advance(31 * time.Second)
		lambdatest.WaitFor(t, "the failed ones handled again", 20*time.Second, func() bool { return f.deleted() == 4 })
		got := deliveries(t, log)
		for _, b := range []string{"fail-once-1", "fail-once-2"} {
			if !slices.Equal(got[b], []string{"1", "2"}) {
				t.Errorf("%s delivered with receive counts %v, want [1 2]", b, got[b])
			}
		}
		for _, b := range []string{"ok-1", "ok-2"} {
			if !slices.Equal(got[b], []string{"1"}) {
				t.Errorf("%s delivered %v, want once", b, got[b])
			}
		}
	})

	t.Run("slow batch extended, delivered once", func(t *testing.T) {
		f := newFixture(t, map[string]string{"VisibilityTimeout": "2"})
		rt, log := underRuntime(t, 1)
		f.send(t, "sleep:5s payroll")
		f.run(t, Config{}, rt)
		lambdatest.WaitFor(t, "deleted", 20*time.Second, func() bool { return f.deleted() == 1 })
		if got := deliveries(t, log)["sleep:5s payroll"]; !slices.Equal(got, []string{"1"}) {
			t.Errorf("delivered %v, want once", got)
		}
		if f.stub.Messages("orders")[0].ReceiveCount != 1 || f.stub.Calls("ChangeMessageVisibilityBatch") == 0 {
			t.Errorf("receive count %d, %d visibility changes", f.stub.Messages("orders")[0].ReceiveCount, f.stub.Calls("ChangeMessageVisibilityBatch"))
		}
	})

	t.Run("function error deletes nothing", func(t *testing.T) {
		f := newFixture(t, map[string]string{"VisibilityTimeout": "30"})
		rt, log := underRuntime(t, 1)
		f.send(t, "error-once", "bystander")
		f.run(t, Config{ReportBatchItemFailures: true}, rt)
		lambdatest.WaitFor(t, "the failed invocation", 20*time.Second, func() bool { return len(deliveries(t, log)["bystander"]) == 1 })
		time.Sleep(300 * time.Millisecond)
		if n := f.deleted(); n != 0 || f.stub.Calls("DeleteMessageBatch") != 0 {
			t.Fatalf("%d deleted after a function error", n)
		}
		f.stub.Advance(31 * time.Second)
		lambdatest.WaitFor(t, "both handled on redelivery", 20*time.Second, func() bool { return f.deleted() == 2 })
		if got := deliveries(t, log)["bystander"]; !slices.Equal(got, []string{"1", "2"}) {
			t.Errorf("bystander delivered %v, want [1 2]: the whole batch returns", got)
		}
	})
}
