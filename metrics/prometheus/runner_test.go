package prometheus

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/plan"
	"github.com/cutoverhq/cutover/router"
	"github.com/cutoverhq/cutover/shift"
)

// memRouter is a router whose data plane is a variable: this test is about
// what the runner does with the provider's errors.
type memRouter struct {
	mu sync.Mutex
	w  router.Weights
}

func (m *memRouter) SetWeights(_ context.Context, w router.Weights) error {
	m.mu.Lock()
	m.w = w
	m.mu.Unlock()
	return nil
}

func (m *memRouter) Weights(context.Context) (router.Weights, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.w, nil
}

// TestRunnerPausesNamingTheQueryAndPrometheusError: a query Prometheus
// refuses fails every analysis; past providerErrorLimit the shift pauses,
// and its reason names the query and Prometheus' own error.
func TestRunnerPausesNamingTheQueryAndPrometheusError(t *testing.T) {
	api := newFakeAPI(t, func(q string) (int, string) {
		if strings.Contains(q, "code~") {
			return 400, badData(`1:62: parse error: unexpected character inside braces: '~'`)
		}
		return 200, vector("100")
	})
	p, err := NewFromSettings("payments-api", Settings{Address: api.srv.URL, Queries: Queries{
		Requests: `sum(increase(http_requests_total{job="{{.Backend}}"}[{{.Window}}]))`,
		Errors:   `sum(increase(http_requests_total{job="{{.Backend}}",code~"5.."}[{{.Window}}]))`,
	}, New: SideSettings{Backend: "payments-k8s"}, ScrapeInterval: "250ms"})
	if err != nil {
		t.Fatal(err)
	}
	pl, err := plan.Parse("plan.yaml", []byte(`apiVersion: cutover.dev/v1alpha1
kind: ShiftPlan
spec:
  service: payments-api
  legacy: {addresses: [be/legacy1]}
  new: {addresses: [be/new1]}
  router: {type: memory}
  metrics: {type: prometheus}
  steps: [{weight: 10, hold: 1h}, {weight: 100}]
  slo: {errorRate: {max: 1%}}
  analysis: {interval: 20ms, window: 1s, providerErrorLimit: 3}
`))
	if err != nil {
		t.Fatal(err)
	}
	r := &shift.Runner{Plan: pl, Router: &memRouter{}, Provider: p}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(20 * time.Second)
	for r.State().Phase != shift.Paused {
		if time.Now().After(deadline) {
			t.Fatalf("never paused; state %+v", r.State())
		}
		time.Sleep(10 * time.Millisecond)
	}
	st := r.State()
	for _, want := range []string{
		"metrics provider failing",
		"prometheus errors query for new",
		"bad_data: 1:62: parse error: unexpected character inside braces: '~'",
		`(query: sum(increase(http_requests_total{job="payments-k8s",code~"5.."}[1s]))`,
	} {
		if !strings.Contains(st.Reason, want) {
			t.Errorf("pause reason %q does not say %q", st.Reason, want)
		}
	}
	if st.Weight != 10 {
		t.Errorf("paused at %d%%, want the step's 10%% kept", st.Weight)
	}
}
