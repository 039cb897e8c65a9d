package prometheus_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/judge"
	"github.com/cutoverhq/cutover/metrics"
	"github.com/cutoverhq/cutover/metrics/prometheus"
	"github.com/cutoverhq/cutover/metrics/prometheus/promtest"
	"github.com/cutoverhq/cutover/plan"
	dataplane "github.com/cutoverhq/cutover/proxy"
)

// scrape is the scrape interval of the real-server tests.
const scrape = time.Second

// backend is a test upstream that counts what it answered.
type backend struct {
	srv    *httptest.Server
	hits   atomic.Int64
	errors atomic.Int64
	// failEvery makes every n-th answer a 500; 0 never.
	failEvery atomic.Int64
}

func newBackend(t *testing.T, latency time.Duration) *backend {
	b := &backend{}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		n := b.hits.Add(1)
		time.Sleep(latency)
		if f := b.failEvery.Load(); f > 0 && n%f == 0 {
			b.errors.Add(1)
			http.Error(w, "failing on purpose", http.StatusInternalServerError)
			return
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *backend) addr() string { return strings.TrimPrefix(b.srv.URL, "http://") }

// load sends GETs to url at about rps for d from a few keep-alive
// connections, and returns how many were sent and how many failed (a
// transport error or a 5xx).
func load(t *testing.T, url string, rps int, d time.Duration) (sent, failed int64) {
	t.Helper()
	const workers = 8
	tr := &http.Transport{MaxIdleConnsPerHost: workers}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var s, f atomic.Int64
	var wg sync.WaitGroup
	stop := time.Now().Add(d)
	gap := time.Duration(workers) * time.Second / time.Duration(rps)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(gap)
			defer tick.Stop()
			for time.Now().Before(stop) {
				<-tick.C
				s.Add(1)
				resp, err := c.Get(url)
				if err != nil {
					f.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode >= 500 {
					f.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return s.Load(), f.Load()
}

// near says whether a count from increase() is within what a scrape's
// extrapolation and timing allow of the exact count.
func near(got float64, want int64) bool {
	tol := math.Max(3, 0.08*float64(want))
	return math.Abs(got-float64(want)) <= tol
}

func observe(t *testing.T, p metrics.Provider, side metrics.Side, start, end time.Time) metrics.Observation {
	t.Helper()
	o, err := p.Observe(context.Background(), metrics.Query{Service: "payments-api", Side: side, Start: start, End: end})
	if err != nil {
		t.Fatalf("observe %s: %v", side, err)
	}
	return o
}

func newProvider(t *testing.T, s prometheus.Settings) *prometheus.Provider {
	t.Helper()
	p, err := prometheus.NewFromSettings("payments-api", s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRealPrometheusScrapingEmbeddedProxy runs the embedded proxy under
// load, scraped by a real Prometheus through the proxy's admin /metrics
// with a bearer token, and checks that the embedded preset reads back
// what the backends counted.
func TestRealPrometheusScrapingEmbeddedProxy(t *testing.T) {
	legacy := newBackend(t, time.Millisecond)
	newer := newBackend(t, 8*time.Millisecond)
	newer.failEvery.Store(5)
	const token = "scrape-token-0123456789"
	px, err := dataplane.New(dataplane.Config{
		Legacy: []string{legacy.srv.URL}, New: []string{newer.srv.URL},
		Weights: dataplane.Weights{Legacy: 70, New: 30}, StickyCookie: "-",
		AdminToken: token, RetryBudget: -1, RetryFloor: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go px.Serve(ln)
	t.Cleanup(func() { px.Close() })
	admin := httptest.NewServer(px.AdminHandler())
	t.Cleanup(admin.Close)

	prom := promtest.StartPrometheus(t, scrape, promtest.Target{Job: "payments-proxy", Address: strings.TrimPrefix(admin.URL, "http://"), BearerToken: token})
	prom.WaitScraped(t, 3, "payments-proxy")
	p := newProvider(t, prometheus.Settings{Address: prom.URL, Preset: "embedded", Labels: map[string]string{"job": "payments-proxy"}, ScrapeInterval: "1s"})

	t.Run("Check", func(t *testing.T) {
		if err := p.Check(context.Background()); err != nil {
			t.Fatalf("healthy setup: %v", err)
		}
	})

	t.Run("NoTrafficIsZeroRequestsAndUnknownLatency", func(t *testing.T) {
		// Ten seconds hold several scrapes whatever the machine's load.
		now := time.Now()
		o := observe(t, p, metrics.New, now.Add(-10*time.Second), now)
		if o.Requests != 0 || o.Errors != 0 {
			t.Errorf("no traffic yet, got %v requests %v errors", o.Requests, o.Errors)
		}
		if !math.IsNaN(o.P50) || !math.IsNaN(o.P99) {
			t.Errorf("latency of no requests is %v/%v, want NaN", o.P50, o.P99)
		}
		v := judge.Judge(plan.SLO{ErrorRate: plan.RateLimit{Max: 1}}, plan.Analysis{MinRequests: 20}, judge.Input{Legacy: o, New: o})
		if v.Result != judge.Inconclusive {
			t.Errorf("judge on no traffic: %s (%s)", v.Result, v.Reason)
		}
	})

	start := time.Now()
	sent, _ := load(t, "http://"+ln.Addr().String()+"/pay", 200, 5*time.Second)
	prom.WaitNextScrape(t, "payments-proxy")
	prom.WaitNextScrape(t, "payments-proxy")
	end := time.Now()

	t.Run("CountsMatchTheTraffic", func(t *testing.T) {
		lo := observe(t, p, metrics.Legacy, start.Add(-2*scrape), end)
		no := observe(t, p, metrics.New, start.Add(-2*scrape), end)
		t.Logf("sent %d; legacy: %d hits, observed %+v; new: %d hits %d errors, observed %+v",
			sent, legacy.hits.Load(), lo, newer.hits.Load(), newer.errors.Load(), no)
		if !near(lo.Requests, legacy.hits.Load()) || !near(no.Requests, newer.hits.Load()) {
			t.Errorf("requests legacy %.1f new %.1f, backends counted %d and %d", lo.Requests, no.Requests, legacy.hits.Load(), newer.hits.Load())
		}
		if lo.Errors != 0 {
			t.Errorf("legacy errors %v, want 0", lo.Errors)
		}
		if !near(no.Errors, newer.errors.Load()) || newer.errors.Load() < 20 {
			t.Errorf("new errors %.1f, the backend failed %d", no.Errors, newer.errors.Load())
		}
		if r := no.ErrorRate(); r < 0.15 || r > 0.25 {
			t.Errorf("new error rate %.3f, want about 0.2", r)
		}
		// Legacy answers in ~1 ms, new in ~8 ms: the histogram says so.
		if !(lo.P50 < no.P50) || !(no.P50 >= 0.005) || !(no.P99 >= no.P50 && no.P99 < 1) {
			t.Errorf("latency legacy p50 %v, new p50 %v p99 %v", lo.P50, no.P50, no.P99)
		}
		v := judge.Judge(plan.SLO{ErrorRate: plan.RateLimit{Max: 1}}, plan.Analysis{MinRequests: 20}, judge.Input{Legacy: lo, New: no})
		if v.Result != judge.Fail {
			t.Errorf("a side failing 20%% passes the judge: %s (%s)", v.Result, v.Reason)
		}
	})

	t.Run("ShortWindowIsWidenedToTheMinimum", func(t *testing.T) {
		// A 100 ms window holds no two samples; widened to 4 s it sees the
		// last seconds of the load (or nothing, if they are past).
		o := observe(t, p, metrics.New, end.Add(-100*time.Millisecond), end)
		if math.IsNaN(o.Requests) {
			t.Fatalf("the widened window found nothing: %+v", o)
		}
	})

	t.Run("EmptyIsUnknown", func(t *testing.T) {
		q := newProvider(t, prometheus.Settings{Address: prom.URL, Preset: "embedded", Labels: map[string]string{"job": "payments-proxy-eu"}})
		o := observe(t, q, metrics.New, start, end)
		if !math.IsNaN(o.Requests) || !math.IsNaN(o.Errors) {
			t.Fatalf("labels matching nothing gave %+v, want NaN", o)
		}
		err := q.Check(context.Background())
		if err == nil || !strings.Contains(err.Error(), `prometheus requests query for legacy returns no series: no scrape target matches {job="payments-proxy-eu"}`) {
			t.Fatalf("Check: %v", err)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("Check's message spans lines")
		}
	})

	t.Run("BrokenQueryErrors", func(t *testing.T) {
		q := newProvider(t, prometheus.Settings{Address: prom.URL, Preset: "embedded", Queries: prometheus.Queries{
			Errors: `sum(increase(cutover_proxy_errors_total{side="{{.Side}}"}[{{.Window}}])`}})
		_, err := q.Observe(context.Background(), metrics.Query{Side: metrics.New, Start: start, End: end})
		var ae *prometheus.APIError
		if !errors.As(err, &ae) || ae.Type != "bad_data" {
			t.Fatalf("got %v, want Prometheus' bad_data", err)
		}
		for _, want := range []string{"prometheus errors query for new", "parse error", `(query: sum(increase(cutover_proxy_errors_total{side="new"}[`} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
		}
		if cerr := q.Check(context.Background()); cerr == nil || !strings.Contains(cerr.Error(), "parse error") {
			t.Errorf("Check: %v", cerr)
		}
	})

	t.Run("ManySeriesErrors", func(t *testing.T) {
		q := newProvider(t, prometheus.Settings{Address: prom.URL, Queries: prometheus.Queries{
			Requests: `increase(cutover_proxy_errors_total{side="{{.Side}}"}[{{.Window}}])`, Errors: "vector(0)"}})
		_, err := q.Observe(context.Background(), metrics.Query{Side: metrics.New, Start: start, End: end})
		if err == nil || !strings.Contains(err.Error(), "returns 2 series") {
			t.Fatalf("got %v", err)
		}
	})

	t.Run("ServerTimeout", func(t *testing.T) {
		// A subquery at 1 ms resolution over an hour cannot finish in
		// 200 ms: Prometheus gives up (or we do first). A timeout is an
		// error, never a pass.
		q := newProvider(t, prometheus.Settings{Address: prom.URL, Timeout: "200ms", Queries: prometheus.Queries{
			Requests: `sum(count_over_time(({__name__=~".+"} * 2)[1h:1ms]))`, Errors: "vector(0)"}})
		o, err := q.Observe(context.Background(), metrics.Query{Side: metrics.New, Start: start, End: end})
		if !errors.Is(err, prometheus.ErrTimeout) {
			t.Fatalf("got %+v, %v; want a timeout", o, err)
		}
		if !math.IsNaN(o.Requests) {
			t.Errorf("a timed-out observation says %v requests", o.Requests)
		}
	})

	t.Run("BehindAnAuthProxy", func(t *testing.T) {
		// Prometheus itself has no auth; teams put a proxy in front.
		target, _ := url.Parse(prom.URL)
		rp := httputil.NewSingleHostReverseProxy(target)
		gate := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer prom-reader-token" {
				http.Error(w, "401 Authorization Required", http.StatusUnauthorized)
				return
			}
			rp.ServeHTTP(w, r)
		}))
		defer gate.Close()
		t.Setenv("PROM_READER_TOKEN", "prom-reader-token")
		t.Setenv("PROM_WRONG_TOKEN", "stale-token")
		good := newProvider(t, prometheus.Settings{Address: gate.URL, Preset: "embedded", BearerTokenEnv: "PROM_READER_TOKEN"})
		if o := observe(t, good, metrics.New, start.Add(-2*scrape), end); !near(o.Requests, newer.hits.Load()) {
			t.Errorf("through the auth proxy: %+v", o)
		}
		bad := newProvider(t, prometheus.Settings{Address: gate.URL, Preset: "embedded", BearerTokenEnv: "PROM_WRONG_TOKEN"})
		err := bad.Check(context.Background())
		if !errors.Is(err, prometheus.ErrUnauthorized) || err.Error() != "prometheus requests, errors, p50, p99 queries for legacy: prometheus refused the credentials (401 Unauthorized)" {
			t.Fatalf("got %v", err)
		}
	})

	t.Run("Unreachable", func(t *testing.T) {
		addr := promtest.FreeAddr(t)
		q := newProvider(t, prometheus.Settings{Address: "http://" + addr, Preset: "embedded"})
		err := q.Check(context.Background())
		if err == nil || !strings.Contains(err.Error(), "cannot reach prometheus at http://"+addr) || strings.Contains(err.Error(), "\n") {
			t.Fatalf("got %v", err)
		}
	})
}

// haproxyConfig is a frontend splitting one backend between two legacy
// servers and one new one, HAProxy's Prometheus exporter, and retries that
// move a refused connection to another server.
func haproxyConfig(front, exporter string, legacy1, legacy2, new1 string) string {
	return fmt.Sprintf(`global
  noreuseport
  maxconn 1000
defaults
  mode http
  timeout connect 1s
  timeout client 10s
  timeout server 10s
  retries 2
  option redispatch 1
  retry-on conn-failure empty-response response-timeout
frontend fe
  bind %s
  default_backend be_payments
frontend prometheus
  bind %s
  http-request use-service prometheus-exporter if { path /metrics }
  no log
backend be_payments
  balance roundrobin
  server legacy1 %s weight 40
  server legacy2 %s weight 40
  server new1 %s weight 20
`, front, exporter, legacy1, legacy2, new1)
}

// TestRealPrometheusScrapingHAProxy runs a real HAProxy under load,
// scraped by a real Prometheus, and checks that the haproxy preset reads
// back each side's attempts and failures per server: 500s from the new
// side, then a new side that refuses connections (HAProxy moves those
// requests to legacy; the new side's attempts all count as failed).
func TestRealPrometheusScrapingHAProxy(t *testing.T) {
	l1, l2 := newBackend(t, time.Millisecond), newBackend(t, time.Millisecond)
	n1 := newBackend(t, 20*time.Millisecond)
	n1.failEvery.Store(4)
	front, exporter := promtest.FreeAddr(t), promtest.FreeAddr(t)
	promtest.StartHAProxy(t, haproxyConfig(front, exporter, l1.addr(), l2.addr(), n1.addr()), front, exporter)
	prom := promtest.StartPrometheus(t, scrape, promtest.Target{Job: "haproxy", Address: exporter})
	prom.WaitScraped(t, 3, "haproxy")
	settings := prometheus.Settings{Address: prom.URL, Preset: "haproxy", Labels: map[string]string{"job": "haproxy"}, ScrapeInterval: "1s",
		Legacy: prometheus.SideSettings{Backend: "be_payments", Servers: []string{"legacy1", "legacy2"}},
		New:    prometheus.SideSettings{Backend: "be_payments", Servers: []string{"new1"}}}
	p := newProvider(t, settings)
	if err := p.Check(context.Background()); err != nil {
		t.Fatalf("Check: %v", err)
	}

	start := time.Now()
	sent, failed := load(t, "http://"+front+"/pay", 200, 5*time.Second)
	prom.WaitNextScrape(t, "haproxy")
	prom.WaitNextScrape(t, "haproxy")
	end := time.Now()
	t.Run("500sFromTheNewSide", func(t *testing.T) {
		lo := observe(t, p, metrics.Legacy, start.Add(-2*scrape), end)
		no := observe(t, p, metrics.New, start.Add(-2*scrape), end)
		lh := l1.hits.Load() + l2.hits.Load()
		t.Logf("sent %d (failed %d); legacy %d hits, observed %+v; new %d hits %d errors, observed %+v", sent, failed, lh, lo, n1.hits.Load(), n1.errors.Load(), no)
		if !near(lo.Requests, lh) || !near(no.Requests, n1.hits.Load()) {
			t.Errorf("requests legacy %.1f new %.1f, backends counted %d and %d", lo.Requests, no.Requests, lh, n1.hits.Load())
		}
		if lo.Errors != 0 {
			t.Errorf("legacy errors %v, want 0", lo.Errors)
		}
		if !near(no.Errors, n1.errors.Load()) {
			t.Errorf("new errors %.1f, the backend failed %d", no.Errors, n1.errors.Load())
		}
		// HAProxy's moving mean response time (1 ms against 20 ms)
		// starts from zero and rises over a few hundred requests: only
		// the order is certain.
		if !(lo.P99 < no.P99) || !(lo.P50 < no.P50) || !(lo.P50 > 0) {
			t.Errorf("latency legacy p50 %v p99 %v, new p50 %v p99 %v", lo.P50, lo.P99, no.P50, no.P99)
		}
	})

	t.Run("RefusedConnectionsCountAsFailures", func(t *testing.T) {
		n1.srv.CloseClientConnections()
		n1.srv.Listener.Close()
		prom.WaitNextScrape(t, "haproxy")
		start := time.Now()
		_, failed := load(t, "http://"+front+"/pay", 100, 3*time.Second)
		prom.WaitNextScrape(t, "haproxy")
		prom.WaitNextScrape(t, "haproxy")
		no := observe(t, p, metrics.New, start, time.Now())
		t.Logf("clients saw %d failures; new observed %+v", failed, no)
		if failed > 2 {
			t.Errorf("%d requests failed: HAProxy should have moved them to legacy", failed)
		}
		if !(no.Requests >= 10) || no.ErrorRate() < 0.9 {
			t.Errorf("a new side refusing every connection: %+v (error rate %.2f)", no, no.ErrorRate())
		}
	})

	t.Run("WrongBackend", func(t *testing.T) {
		s := settings
		s.Legacy.Backend, s.New.Backend = "be_payment", "be_payment"
		err := newProvider(t, s).Check(context.Background())
		if err == nil || !strings.Contains(err.Error(), "HAProxy is scraped, but not the backend and servers named in the settings") {
			t.Fatalf("got %v", err)
		}
	})
}
