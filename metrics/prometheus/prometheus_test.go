package prometheus

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/cutoverhq/cutover/internal/golden"
	"github.com/cutoverhq/cutover/judge"
	"github.com/cutoverhq/cutover/metrics"
	"github.com/cutoverhq/cutover/plan"
)

// fakeAPI is a Prometheus HTTP API that answers by query text, and records
// what it was asked.
type fakeAPI struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	asked  []asked
	answer func(q string) (status int, body string)
}

type asked struct {
	method, query, time, timeout string
	header                       http.Header
}

func newFakeAPI(t *testing.T, answer func(q string) (int, string)) *fakeAPI {
	f := &fakeAPI{t: t, answer: answer}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/api/v1/query") {
			http.NotFound(w, r)
			return
		}
		if err := r.ParseForm(); err != nil {
			t.Errorf("bad form: %v", err)
		}
		q := r.Form.Get("query")
		f.mu.Lock()
		f.asked = append(f.asked, asked{r.Method, q, r.Form.Get("time"), r.Form.Get("timeout"), r.Header.Clone()})
		f.mu.Unlock()
		status, body := f.answer(q)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAPI) queries() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, a := range f.asked {
		out = append(out, a.query)
	}
	sort.Strings(out)
	return out
}

func vector(v string) string {
	return `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000.123,"` + v + `"]}]}}`
}

const emptyVector = `{"status":"success","data":{"resultType":"vector","result":[]}}`

func badData(msg string) string {
	return `{"status":"error","errorType":"bad_data","error":"` + msg + `"}`
}

func loadSettings(t *testing.T, path string) Settings {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var s Settings
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return s
}

// TestQueriesGolden renders every case's queries through a real Observe
// against a fake API and compares what was sent with queries.txt: the
// presets, labels, escaping, overrides and the minimum window.
func TestQueriesGolden(t *testing.T) {
	dirs, _ := filepath.Glob("testdata/*/settings.yaml")
	if len(dirs) == 0 {
		t.Fatal("no cases")
	}
	for _, path := range dirs {
		dir := filepath.Dir(path)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			api := newFakeAPI(t, func(string) (int, string) { return 200, vector("1") })
			s := loadSettings(t, path)
			s.Address = api.srv.URL // the case's address is checked below, not dialled
			if _, err := NewFromSettings("payments-api", loadSettings(t, path)); err != nil {
				t.Fatalf("the case's own settings: %v", err)
			}
			p, err := NewFromSettings("payments-api", s)
			if err != nil {
				t.Fatal(err)
			}
			end := time.Unix(1700000000, 0)
			var out strings.Builder
			fmt.Fprintf(&out, "# min window %v\n", p.MinWindow())
			for _, q := range []struct {
				side metrics.Side
				span time.Duration
			}{{metrics.Legacy, 30 * time.Second}, {metrics.New, 30 * time.Second}, {metrics.New, time.Second}} {
				api.asked = nil
				if _, err := p.Observe(context.Background(), metrics.Query{Service: "payments-api", Side: q.side, Start: end.Add(-q.span), End: end}); err != nil {
					t.Fatal(err)
				}
				fmt.Fprintf(&out, "\n## %s over %v\n", q.side, q.span)
				for _, a := range api.queries() {
					fmt.Fprintln(&out, a)
				}
				for _, a := range api.asked {
					if a.time != "1700000000.000" {
						t.Errorf("evaluated at %s, want the window's end", a.time)
					}
					if a.method != http.MethodPost {
						t.Errorf("method %s, want POST", a.method)
					}
					for k, v := range s.Headers {
						if a.header.Get(k) != v {
							t.Errorf("header %s = %q, want %q", k, a.header.Get(k), v)
						}
					}
				}
			}
			golden.Assert(t, filepath.Join(dir, "queries.txt"), []byte(out.String()))
		})
	}
}

func TestObserveValues(t *testing.T) {
	answers := map[string]string{}
	api := newFakeAPI(t, func(q string) (int, string) {
		for k, v := range answers {
			if strings.HasPrefix(q, k) {
				return 200, v
			}
		}
		return 200, emptyVector
	})
	p, err := NewFromSettings("svc", Settings{Address: api.srv.URL, Queries: Queries{
		Requests: "req", Errors: "err", P50: "p50", P99: "p99"}})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	q := metrics.Query{Side: metrics.New, Start: now.Add(-time.Minute), End: now}
	observe := func() metrics.Observation {
		t.Helper()
		o, err := p.Observe(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}

	answers["req"], answers["err"], answers["p50"], answers["p99"] = vector("120"), vector("3"), vector("0.004"), vector("0.25")
	if o := observe(); o.Requests != 120 || o.Errors != 3 || o.P50 != 0.004 || o.P99 != 0.25 {
		t.Errorf("got %+v", o)
	}
	answers["req"] = `{"status":"success","data":{"resultType":"scalar","result":[1700000000,"7"]}}`
	if o := observe(); o.Requests != 7 {
		t.Errorf("scalar: got %v", o.Requests)
	}

	// Unknown is NaN, never zero and never a pass.
	for name, ans := range map[string]string{"NaN": vector("NaN"), "+Inf": vector("+Inf"), "-Inf": vector("-Inf"), "empty": emptyVector, "negative": vector("-3")} {
		t.Run(name, func(t *testing.T) {
			answers["req"], answers["err"], answers["p50"], answers["p99"] = ans, ans, ans, ans
			o := observe()
			if !math.IsNaN(o.Requests) || !math.IsNaN(o.Errors) || !math.IsNaN(o.P50) || !math.IsNaN(o.P99) {
				t.Fatalf("got %+v, want all NaN", o)
			}
			slo := plan.SLO{ErrorRate: plan.RateLimit{Max: 1}, LatencyP99: plan.LatencyLimit{Max: plan.Duration(time.Second)}}
			v := judge.Judge(slo, plan.Analysis{MinRequests: 1}, judge.Input{Legacy: o, New: o})
			if v.Result != judge.Inconclusive {
				t.Fatalf("judge says %s on no data: %s", v.Result, v.Reason)
			}
		})
	}

	// More errors than requests (extrapolation, HAProxy's double-counted
	// retries) is every request failing, not more.
	answers["req"], answers["err"], answers["p50"], answers["p99"] = vector("10"), vector("12.5"), vector("0.1"), vector("0.2")
	if o := observe(); o.Errors != 10 {
		t.Errorf("errors %v above requests 10 not capped", o.Errors)
	}
}

func TestObserveWithoutLatencyQueries(t *testing.T) {
	api := newFakeAPI(t, func(string) (int, string) { return 200, vector("5") })
	p, err := NewFromSettings("svc", Settings{Address: api.srv.URL, Queries: Queries{Requests: "r", Errors: "e"}})
	if err != nil {
		t.Fatal(err)
	}
	o, err := p.Observe(context.Background(), metrics.Query{Side: metrics.Legacy, Start: time.Now().Add(-time.Minute), End: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if o.Requests != 5 || !math.IsNaN(o.P50) || !math.IsNaN(o.P99) || o.Latencies != nil {
		t.Fatalf("got %+v, want latencies unknown", o)
	}
	if n := len(api.queries()); n != 2 {
		t.Errorf("%d queries sent, want 2", n)
	}
}

func TestObserveErrors(t *testing.T) {
	settings := func(url string) Settings {
		return Settings{Address: url, Timeout: "300ms", Queries: Queries{Requests: "sum(req)", Errors: "sum(err)"}}
	}
	cases := []struct {
		name   string
		status int
		body   string
		want   []string
		is     error
	}{
		{"parse error", 400, badData(`1:5: parse error: unexpected end of input`), []string{"requests query for new", "bad_data", "parse error", "(query: sum(req))"}, nil},
		{"execution", 422, `{"status":"error","errorType":"execution","error":"many-to-many matching not allowed"}`, []string{"execution: many-to-many"}, nil},
		{"server timeout", 503, `{"status":"error","errorType":"timeout","error":"query timed out in expression evaluation"}`, []string{"timeout"}, ErrTimeout},
		{"unauthorized page", 401, `<html>401 Authorization Required</html>`, []string{"refused the credentials (401 Unauthorized)"}, ErrUnauthorized},
		{"forbidden json", 403, `{"status":"error","errorType":"forbidden","error":"tenant not allowed"}`, []string{"refused the credentials (403 Forbidden): tenant not allowed"}, ErrUnauthorized},
		{"not the API", 200, `<html>hello</html>`, []string{"not the API's JSON"}, nil},
		{"gateway", 502, `Bad Gateway`, []string{"502 Bad Gateway: Bad Gateway"}, nil},
		{"many series", 200, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"pod":"a"},"value":[1,"1"]},{"metric":{"pod":"b"},"value":[1,"2"]}]}}`, []string{`returns 2 series ({pod="a"}, {pod="b"})`, "sum(...)"}, nil},
		{"matrix", 200, `{"status":"success","data":{"resultType":"matrix","result":[]}}`, []string{"range vector"}, nil},
		{"bad value", 200, vector("twelve"), []string{`"twelve" is not a number`}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			api := newFakeAPI(t, func(string) (int, string) { return c.status, c.body })
			p, err := NewFromSettings("svc", settings(api.srv.URL))
			if err != nil {
				t.Fatal(err)
			}
			o, err := p.Observe(context.Background(), metrics.Query{Side: metrics.New, Start: time.Now().Add(-time.Minute), End: time.Now()})
			if err == nil {
				t.Fatalf("no error; got %+v", o)
			}
			if !math.IsNaN(o.Requests) || !math.IsNaN(o.Errors) {
				t.Errorf("a failed observation carries numbers: %+v", o)
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("message spans lines: %q", msg)
			}
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not say %q", msg, w)
				}
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Errorf("error %q is not %v", msg, c.is)
			}
			var qe *QueryError
			if !errors.As(err, &qe) || qe.Side != metrics.New {
				t.Errorf("error %q is not a QueryError for the new side", msg)
			}
		})
	}

	t.Run("client timeout", func(t *testing.T) {
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}))
		defer srv.Close()
		defer close(release)
		p, err := NewFromSettings("svc", settings(srv.URL))
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		o, err := p.Observe(context.Background(), metrics.Query{Side: metrics.Legacy, Start: time.Now().Add(-time.Minute), End: time.Now()})
		if !errors.Is(err, ErrTimeout) {
			t.Fatalf("got %v, want a timeout", err)
		}
		if took := time.Since(start); took > 3*time.Second {
			t.Errorf("timeout of 300ms took %v", took)
		}
		if !math.IsNaN(o.Requests) {
			t.Errorf("timed out observation says %v requests", o.Requests)
		}
		// Both queries timed out the same way: one cause, said once.
		if got := err.Error(); !strings.HasPrefix(got, "prometheus requests, errors queries for legacy: no answer within 300ms") {
			t.Errorf("message %q", got)
		}
	})

	t.Run("unreachable", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		p, err := NewFromSettings("svc", settings(url))
		if err != nil {
			t.Fatal(err)
		}
		_, err = p.Observe(context.Background(), metrics.Query{Side: metrics.Legacy, Start: time.Now().Add(-time.Minute), End: time.Now()})
		if err == nil || !strings.Contains(err.Error(), "cannot reach prometheus at "+url) || !strings.Contains(err.Error(), "connection refused") {
			t.Fatalf("got %v", err)
		}
	})

	t.Run("unknown side", func(t *testing.T) {
		p, _ := NewFromSettings("svc", settings("http://127.0.0.1:1"))
		if _, err := p.Observe(context.Background(), metrics.Query{Side: "canary"}); err == nil {
			t.Fatal("no error")
		}
	})
}

// TestMethodNotAllowedFallsBackToGet: some proxies in front of Prometheus
// allow only GET on the query endpoint.
func TestMethodNotAllowedFallsBackToGet(t *testing.T) {
	var methods []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		methods = append(methods, r.Method)
		if r.Method != http.MethodGet {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		if r.URL.Query().Get("query") == "" {
			t.Errorf("GET without the query")
		}
		fmt.Fprint(w, vector("4"))
	}))
	defer srv.Close()
	p, err := NewFromSettings("svc", Settings{Address: srv.URL, Queries: Queries{Requests: "r", Errors: "e"}})
	if err != nil {
		t.Fatal(err)
	}
	o, err := p.Observe(context.Background(), metrics.Query{Side: metrics.Legacy, Start: time.Now().Add(-time.Minute), End: time.Now()})
	if err != nil || o.Requests != 4 {
		t.Fatalf("got %+v, %v (methods %v)", o, err, methods)
	}
}

func TestAuth(t *testing.T) {
	var mu sync.Mutex
	var got []string
	api := newFakeAPI(t, func(string) (int, string) { return 200, vector("1") })
	record := func() []string {
		mu.Lock()
		defer mu.Unlock()
		got = nil
		for _, a := range api.asked {
			got = append(got, a.header.Get("Authorization"))
		}
		api.asked = nil
		return got
	}
	base := Settings{Address: api.srv.URL, Queries: Queries{Requests: "r", Errors: "e"}}
	observe := func(s Settings) []string {
		t.Helper()
		p, err := NewFromSettings("svc", s)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Observe(context.Background(), metrics.Query{Side: metrics.Legacy, Start: time.Now().Add(-time.Minute), End: time.Now()}); err != nil {
			t.Fatal(err)
		}
		return record()
	}

	t.Setenv("PROM_TOKEN", "tok-from-env")
	s := base
	s.BearerTokenEnv = "PROM_TOKEN"
	for _, h := range observe(s) {
		if h != "Bearer tok-from-env" {
			t.Errorf("Authorization %q", h)
		}
	}

	file := filepath.Join(t.TempDir(), "token")
	os.WriteFile(file, []byte("tok-1\n"), 0o600)
	s = base
	s.BearerTokenFile = file
	for _, h := range observe(s) {
		if h != "Bearer tok-1" {
			t.Errorf("Authorization %q", h)
		}
	}
	// A rotated token is read on the next query.
	p, _ := NewFromSettings("svc", s)
	os.WriteFile(file, []byte("tok-2"), 0o600)
	p.Observe(context.Background(), metrics.Query{Side: metrics.Legacy, Start: time.Now().Add(-time.Minute), End: time.Now()})
	for _, h := range record() {
		if h != "Bearer tok-2" {
			t.Errorf("after rotation: Authorization %q", h)
		}
	}

	t.Setenv("PROM_PASSWORD", "pw")
	s = base
	s.Username, s.PasswordEnv = "cutover", "PROM_PASSWORD"
	for _, h := range observe(s) {
		if h != "Basic Y3V0b3Zlcjpwdw==" {
			t.Errorf("Authorization %q", h)
		}
	}
}

func TestSettingsErrors(t *testing.T) {
	ok := Settings{Address: "http://prom:9090", Preset: "embedded"}
	cases := []struct {
		name string
		edit func(s *Settings)
		want string
	}{
		{"no address", func(s *Settings) { s.Address = "" }, "address: the Prometheus URL is required"},
		{"not a URL", func(s *Settings) { s.Address = "prom:9090" }, `address: "prom:9090" is not an http(s) URL`},
		{"credentials in URL", func(s *Settings) { s.Address = "http://u:p@prom:9090" }, "put no credentials in the URL"},
		{"api path", func(s *Settings) { s.Address = "http://prom:9090/api/v1/" }, "ends in /api/v1"},
		{"unknown preset", func(s *Settings) { s.Preset = "datadog" }, `preset: unknown query set "datadog" (known: embedded, haproxy)`},
		{"no queries", func(s *Settings) { s.Preset = "" }, "queries: requests and errors are required"},
		{"only requests", func(s *Settings) { s.Preset = ""; s.Queries.Requests = "up" }, "queries: requests and errors are required"},
		{"template syntax", func(s *Settings) { s.Queries.P99 = "{{.Side" }, "queries.p99: p99:1: unclosed action"},
		{"unknown var", func(s *Settings) { s.Queries.Errors = "x{a=\"{{.Sevrice}}\"}" }, "queries.errors: errors:1:7: executing \"errors\" at <.Sevrice>: can't evaluate field Sevrice"},
		{"haproxy without backend", func(s *Settings) { s.Preset = "haproxy"; s.New.Backend = "be" }, "legacy.backend: the haproxy preset needs the HAProxy backend"},
		{"empty server", func(s *Settings) { s.Legacy.Servers = []string{"a", " "} }, "legacy.servers[1]: empty server name"},
		{"bad label", func(s *Settings) { s.Labels = map[string]string{"app.kubernetes.io/name": "x"} }, `labels: "app.kubernetes.io/name" is not a Prometheus label name`},
		{"bad scrape interval", func(s *Settings) { s.ScrapeInterval = "15" }, `scrapeInterval: "15" is not a positive duration`},
		{"negative window", func(s *Settings) { s.MinWindow = "-5s" }, `minWindow: "-5s" is not a positive duration`},
		{"tiny timeout", func(s *Settings) { s.Timeout = "10us" }, "timeout: \"10us\" is below Prometheus' resolution"},
		{"two auths", func(s *Settings) { s.BearerTokenEnv = "A"; s.Username = "u" }, "set at most one"},
		{"token env unset", func(s *Settings) { s.BearerTokenEnv = "CUTOVER_TEST_UNSET_TOKEN" }, "bearerTokenEnv: $CUTOVER_TEST_UNSET_TOKEN is not set or empty"},
		{"token file missing", func(s *Settings) { s.BearerTokenFile = "/nonexistent/token" }, "bearerTokenFile: stat /nonexistent/token"},
		{"password without user", func(s *Settings) { s.PasswordEnv = "P" }, "passwordEnv: set username too"},
		{"user without password", func(s *Settings) { s.Username = "u" }, "username: set passwordEnv"},
		{"authorization header", func(s *Settings) { s.Headers = map[string]string{"authorization": "Bearer x"} }, "headers: Authorization is not a header to write in a plan"},
		{"ca file missing", func(s *Settings) { s.CAFile = "/nonexistent/ca.pem" }, "caFile: open /nonexistent/ca.pem"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := ok
			c.edit(&s)
			_, err := NewFromSettings("svc", s)
			if err == nil {
				t.Fatalf("no error, want %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q, want %q", err, c.want)
			}
		})
	}
	if _, err := NewFromSettings("svc", ok); err != nil {
		t.Fatalf("valid settings: %v", err)
	}
}

// TestRegisteredAndDecodesStrictly builds the provider the way `shift run`
// does: through the registry, with the plan's strict settings decoder.
func TestRegisteredAndDecodesStrictly(t *testing.T) {
	plan.MetricsKnown = metrics.Known
	defer func() { plan.MetricsKnown = nil }()
	src := `apiVersion: cutover.dev/v1alpha1
kind: ShiftPlan
spec:
  service: payments-api
  legacy: {addresses: ["be_payments/legacy1"]}
  new: {addresses: ["be_payments/new1"]}
  router: {type: proxy}
  metrics:
    type: prometheus
    address: http://127.0.0.1:9090
    preset: haproxy
    legacy: {backend: be_payments, servers: [legacy1]}
    new: {backend: be_payments, servers: [new1]}
    scrapeIntervall: 1s
  steps: [{weight: 100}]
  slo: {errorRate: {max: 1%}}
`
	p, err := plan.Parse("plan.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	f, err := metrics.Lookup("prometheus")
	if err != nil {
		t.Fatal(err)
	}
	_, err = f(context.Background(), metrics.Env{Service: p.Spec.Service}, func(v any) error { return p.DecodeSettings(&p.Spec.Metrics, "spec.metrics", v) })
	if err == nil || !strings.Contains(err.Error(), "spec.metrics.scrapeIntervall") || !strings.Contains(err.Error(), ":14:") {
		t.Fatalf("a misspelt setting: got %v, want it named with its line", err)
	}

	p, err = plan.Parse("plan.yaml", []byte(strings.Replace(src, "scrapeIntervall", "scrapeInterval", 1)))
	if err != nil {
		t.Fatal(err)
	}
	prov, err := f(context.Background(), metrics.Env{Service: p.Spec.Service}, func(v any) error { return p.DecodeSettings(&p.Spec.Metrics, "spec.metrics", v) })
	if err != nil {
		t.Fatal(err)
	}
	if w := prov.(*Provider).MinWindow(); w != 4*time.Second {
		t.Errorf("min window %v, want 4 × the 1s scrape interval", w)
	}
}

func TestCheckFake(t *testing.T) {
	t.Run("unreachable", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		p, _ := NewFromSettings("svc", Settings{Address: url, Preset: "embedded"})
		err := p.Check(context.Background())
		if err == nil || !strings.HasPrefix(err.Error(), "prometheus requests, errors, p50, p99 queries for legacy: cannot reach prometheus at "+url) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("wrong path", func(t *testing.T) {
		api := newFakeAPI(t, func(string) (int, string) { return 200, vector("1") })
		p, _ := NewFromSettings("svc", Settings{Address: api.srv.URL + "/prom", Preset: "embedded"})
		// The fake serves any prefix; a real 404 comes from elsewhere.
		srv := httptest.NewServer(http.NotFoundHandler())
		defer srv.Close()
		p2, _ := NewFromSettings("svc", Settings{Address: srv.URL + "/prom", Preset: "embedded"})
		if err := p.Check(context.Background()); err != nil {
			t.Fatalf("prefix: %v", err)
		}
		err := p2.Check(context.Background())
		if err == nil || !strings.Contains(err.Error(), "no Prometheus API there (404 Not Found): check the address and its path prefix") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("broken query", func(t *testing.T) {
		api := newFakeAPI(t, func(q string) (int, string) {
			if strings.HasPrefix(q, "sum(rate(") {
				return 400, badData("1:29: parse error: unclosed left parenthesis")
			}
			return 200, vector("1")
		})
		p, _ := NewFromSettings("svc", Settings{Address: api.srv.URL, Queries: Queries{Requests: "sum(req)", Errors: "sum(rate(err[1m])"}})
		err := p.Check(context.Background())
		if err == nil {
			t.Fatal("no problem found")
		}
		want := "prometheus errors query for legacy: bad_data: 1:29: parse error: unclosed left parenthesis (query: sum(rate(err[1m])); prometheus errors query for new: bad_data"
		if !strings.HasPrefix(err.Error(), want) {
			t.Fatalf("got %q\nwant %q…", err, want)
		}
	})
	t.Run("empty", func(t *testing.T) {
		api := newFakeAPI(t, func(q string) (int, string) { return 200, emptyVector })
		p, _ := NewFromSettings("svc", Settings{Address: api.srv.URL, Queries: Queries{Requests: "sum(req)", Errors: "sum(err)"}})
		err := p.Check(context.Background())
		want := "prometheus requests query for legacy returns no series: check that the target is scraped and the labels match (query: sum(req)); " +
			"prometheus errors query for legacy returns no series (when the error series may not exist yet, end the query with `or vector(0)`) (query: sum(err))"
		if err == nil || err.Error() != want {
			t.Fatalf("got %v\nwant %s", err, want)
		}
	})
	t.Run("healthy", func(t *testing.T) {
		api := newFakeAPI(t, func(q string) (int, string) { return 200, vector("0") })
		p, _ := NewFromSettings("svc", Settings{Address: api.srv.URL, Preset: "embedded"})
		if err := p.Check(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

func TestPromDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		30 * time.Second: "30s", 1500 * time.Millisecond: "1500ms", 90 * time.Second: "90s",
		time.Microsecond: "1ms", 0: "1ms", time.Hour: "3600s", 2500 * time.Microsecond: "2ms",
	} {
		if got := promDuration(d); got != want {
			t.Errorf("promDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestParseResponseFuzzSeeds(t *testing.T) {
	// A clean success and a clean error still parse after the fuzz seeds
	// were added (guards the seed corpus staying meaningful).
	r, err := parseResponse(200, []byte(vector("2.5")))
	if err != nil || r.Value != 2.5 || r.Empty {
		t.Fatalf("got %+v, %v", r, err)
	}
	if _, err := parseResponse(400, []byte(badData("x"))); err == nil {
		t.Fatal("no error")
	}
}

// TestTemplateLoopsRefused: a query template cannot make rendering run
// for long ({{range 1000000000}} and recursive {{template}}).
func TestTemplateLoopsRefused(t *testing.T) {
	for q, want := range map[string]string{
		`{{range 1000000000}}x{{end}}`:                          "{{range}} is not supported",
		`{{if .Side}}{{range 5}}{{end}}{{end}}`:                 "{{range}} is not supported",
		`{{with .Side}}{{else}}{{template "x"}}{{end}}`:         "{{template}} is not supported",
		`{{define "x"}}{{template "x"}}{{end}}{{template "x"}}`: "{{define}} and {{block}} are not supported",
	} {
		_, err := compile("p99", q)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), "queries.p99: ") {
			t.Errorf("%s: got %v, want %q", q, err, want)
		}
	}
	if _, err := compile("p99", `{{if .Backend}}x{"{{.Backend}}"}{{else}}y{{end}}`); err != nil {
		t.Errorf("if/else refused: %v", err)
	}
}
