package lambda_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/cutoverhq/cutover/lambda"
	"github.com/cutoverhq/cutover/lambda/internal/lambdatest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	lambdatest.Cleanup()
	os.Exit(code)
}

// syncBuffer is a log sink tests read while the runtime writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// records parses the JSON log lines written so far.
func (s *syncBuffer) records() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(s.b.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

type harness struct {
	rt   *lambda.Runtime
	logs *syncBuffer
	reg  *prometheus.Registry
}

// start runs a runtime over the Go test function with handler, cfg's
// zero fields filled for a test.
func start(t *testing.T, handler string, cfg lambda.Config) *harness {
	t.Helper()
	h := &harness{logs: &syncBuffer{}, reg: prometheus.NewRegistry()}
	if cfg.Command == nil {
		cfg.Command = []string{lambdatest.GoFunction(t), handler}
	}
	if cfg.Function.Name == "" {
		cfg.Function = lambda.FunctionConfig{Name: "payments-authorize", MemoryMB: 512, Timeout: 5 * time.Second, Region: "eu-west-1", Account: "123456789012", Handler: handler}
	}
	cfg.Env = append(cfg.Env, "PATH="+os.Getenv("PATH"), "HOME="+t.TempDir())
	cfg.Log = slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg.Registerer = h.reg
	rt, err := lambda.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.rt = rt
	t.Cleanup(func() {
		if err := rt.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		if t.Failed() {
			t.Logf("runtime log:\n%s", h.logs.b.String())
		}
	})
	return h
}

func (h *harness) invoke(t *testing.T, payload string) lambda.Response {
	t.Helper()
	resp, err := h.rt.Invoke(context.Background(), lambda.Invocation{Payload: []byte(payload)})
	if err != nil {
		t.Fatalf("invoke: %v", err)
	}
	return resp
}

// metric reads one counter or gauge (labels as name=value pairs).
func (h *harness) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	fams, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				if !hasLabel(m, labels[i], labels[i+1]) {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
	}
	t.Fatalf("no metric %s%v", name, labels)
	return 0
}

func hasLabel(m *dto.Metric, k, v string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == k && l.GetValue() == v {
			return true
		}
	}
	return false
}

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %q: %v", b, err)
	}
	return v
}
