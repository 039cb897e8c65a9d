package proxy

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// faultPair starts a legacy and a new echo upstream, the new one counting
// the requests it really received, and a proxy sending everything to new.
func faultPair(t *testing.T, cfg Config) (p *Proxy, url string, newHits *atomic.Int64) {
	t.Helper()
	legacy := echoSide(t, "legacy", 200)
	newHits = new(atomic.Int64)
	newer := newSide(t, "new", func(w http.ResponseWriter, r *http.Request) {
		newHits.Add(1)
		b, _ := io.ReadAll(r.Body)
		w.Write([]byte(echoWant("new", r.Method, b)))
	})
	cfg.Legacy, cfg.New = []string{legacy.url()}, []string{newer.url()}
	if cfg.Weights == (Weights{}) {
		cfg.Weights = Weights{Legacy: 0, New: 100}
	}
	if cfg.RetryBudget == 0 {
		cfg.RetryBudget = 1
	}
	p, url = startProxy(t, cfg)
	return p, url, newHits
}

func mustSetFaults(t *testing.T, p *Proxy, fs Faults) {
	t.Helper()
	if err := p.SetFaults(fs); err != nil {
		t.Fatal(err)
	}
}

// send makes one request: GET, or a POST with body "pay" and, when key is
// set, an Idempotency-Key.
func send(t *testing.T, c *http.Client, method, url, key string) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if method != "GET" {
		body = strings.NewReader("pay")
	}
	req, err := http.NewRequest(method, url+"/pay", body)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	return do(t, c, req)
}

func TestFaultRefuseIsRetriedOnLegacyForAnyMethod(t *testing.T) {
	p, url, newHits := faultPair(t, Config{})
	mustSetFaults(t, p, Faults{New: &Fault{Kind: FaultRefuse}})
	c := newClient()
	for _, m := range []string{"POST", "PATCH", "DELETE", "GET"} {
		resp, body := send(t, c, m, url, "")
		if resp.StatusCode != 200 || resp.Header.Get("X-Side") != "legacy" {
			t.Errorf("%s: %d from %q: %q, want legacy's answer", m, resp.StatusCode, resp.Header.Get("X-Side"), body)
		}
	}
	if n := newHits.Load(); n != 0 {
		t.Errorf("the refused side received %d requests", n)
	}
	if n := p.Stats().Counters(SideNew); n.Retries != 4 || n.ErrorsTransport != 4 || n.Replays != 0 {
		t.Errorf("new side counters %+v: want 4 retries and 4 transport errors, as for a real refusal", n)
	}
	if f := p.Faults().New; f == nil || f.Injected != 4 {
		t.Errorf("fault state %+v: want 4 injected", f)
	}
}

// TestFaultsOnNewFollowTheReplayRules: errors, drop and blackhole on the
// new side replay idempotent requests on legacy and fail a plain POST
// visibly, naming the new side, exactly as the real failures do.
func TestFaultsOnNewFollowTheReplayRules(t *testing.T) {
	for _, tc := range []struct {
		fault      Fault
		postStatus int
		// reached: the new upstream received the requests.
		reached bool
	}{
		{Fault{Kind: FaultErrors}, 503, false},
		{Fault{Kind: FaultErrors, Status: 500}, 500, false},
		{Fault{Kind: FaultDrop}, 502, false},
		{Fault{Kind: FaultBlackhole}, 504, true},
	} {
		t.Run(string(tc.fault.Kind)+"-"+http.StatusText(tc.postStatus), func(t *testing.T) {
			p, url, newHits := faultPair(t, Config{ResponseHeaderTimeout: 300 * time.Millisecond})
			mustSetFaults(t, p, Faults{New: &tc.fault})
			c := newClient()
			for _, r := range []struct{ method, key string }{{"GET", ""}, {"POST", "order-1"}} {
				start := time.Now()
				resp, body := send(t, c, r.method, url, r.key)
				if resp.StatusCode != 200 || body != echoWant("legacy", r.method, []byte(map[string]string{"GET": "", "POST": "pay"}[r.method])) {
					t.Errorf("%s (key %q): %d %q, want legacy's answer", r.method, r.key, resp.StatusCode, body)
				}
				if tc.fault.Kind == FaultBlackhole && time.Since(start) < 300*time.Millisecond {
					t.Errorf("%s: replayed after %s, before the response timeout", r.method, time.Since(start))
				}
			}
			resp, body := send(t, c, "POST", url, "")
			if resp.StatusCode != tc.postStatus || resp.Header.Get("X-Cutover-Side") != "new" {
				t.Errorf("plain POST: %d side %q %q, want %d naming the new side", resp.StatusCode, resp.Header.Get("X-Cutover-Side"), body, tc.postStatus)
			}
			waitFor(t, "requests to end", func() bool { return p.Stats().Counters(SideNew).InFlight == 0 })
			cn := p.Stats().Counters(SideNew)
			if cn.Replays != 2 {
				t.Errorf("new side replays %d, want 2", cn.Replays)
			}
			errs := cn.Errors5xx
			if tc.fault.Kind != FaultErrors {
				errs = cn.ErrorsTransport
			}
			if errs != 3 {
				t.Errorf("new side counters %+v: want 3 failures of the fault's kind", cn)
			}
			if tc.reached {
				waitFor(t, "the blackholed side to receive the requests", func() bool { return newHits.Load() == 3 })
			} else if tc.fault.Kind == FaultErrors && newHits.Load() != 0 {
				t.Errorf("an errors fault contacted the upstream %d times", newHits.Load())
			}
		})
	}
}

func TestFaultDropResetsPooledAndFreshConnections(t *testing.T) {
	p, url, _ := faultPair(t, Config{})
	c := newClient()
	// Fill the pool first: a dropped pooled connection takes the stale
	// retry path, which must end on legacy too.
	for i := 0; i < 5; i++ {
		send(t, c, "GET", url, "")
	}
	mustSetFaults(t, p, Faults{New: &Fault{Kind: FaultDrop}})
	for i := 0; i < 5; i++ {
		if resp, _ := send(t, c, "GET", url, ""); resp.StatusCode != 200 || resp.Header.Get("X-Side") != "legacy" {
			t.Fatalf("GET %d: %d from %q", i, resp.StatusCode, resp.Header.Get("X-Side"))
		}
	}
	mustSetFaults(t, p, Faults{})
	if resp, _ := send(t, c, "POST", url, ""); resp.StatusCode != 200 || resp.Header.Get("X-Side") != "new" {
		t.Errorf("after clearing: %d from %q, want new", resp.StatusCode, resp.Header.Get("X-Side"))
	}
}

func TestFaultLatency(t *testing.T) {
	p, url, _ := faultPair(t, Config{ResponseHeaderTimeout: 400 * time.Millisecond})
	const d = 150 * time.Millisecond
	mustSetFaults(t, p, Faults{New: &Fault{Kind: FaultLatency, Latency: d}})
	c := newClient()
	for _, m := range []string{"GET", "POST"} {
		start := time.Now()
		resp, _ := send(t, c, m, url, "")
		if took := time.Since(start); took < d {
			t.Errorf("%s took %s, want at least %s", m, took, d)
		}
		if resp.StatusCode != 200 || resp.Header.Get("X-Side") != "new" {
			t.Errorf("%s: %d from %q, want new's answer, late", m, resp.StatusCode, resp.Header.Get("X-Side"))
		}
	}
	// The delay shows in the side's latency, where the judge looks (an
	// attempt is recorded after its answer went out).
	waitFor(t, "requests to end", func() bool { return p.Stats().Counters(SideNew).InFlight == 0 })
	w := p.Stats().Window(SideNew, time.Now().Add(-5*time.Second), time.Now())
	if w.Latencies != 2 || w.P50 < d*97/100 { // quantiles are bucket middles, within 1.6 %
		t.Errorf("new side window %d latencies, p50 %s: want 2 at ≥ %s", w.Latencies, w.P50, d)
	}
	// A delay beyond the response timeout times out like a slow upstream:
	// an idempotent request is replayed on legacy, a plain POST is a 504.
	mustSetFaults(t, p, Faults{New: &Fault{Kind: FaultLatency, Latency: time.Hour}})
	start := time.Now()
	if resp, _ := send(t, c, "GET", url, ""); resp.StatusCode != 200 || resp.Header.Get("X-Side") != "legacy" {
		t.Errorf("GET with a delay past the timeout: %d from %q", resp.StatusCode, resp.Header.Get("X-Side"))
	}
	if took := time.Since(start); took < 400*time.Millisecond || took > 3*time.Second {
		t.Errorf("GET took %s: want the response timeout (400ms), then legacy", took)
	}
	if resp, _ := send(t, c, "POST", url, ""); resp.StatusCode != 504 || resp.Header.Get("X-Cutover-Side") != "new" {
		t.Errorf("POST with a delay past the timeout: %d side %q", resp.StatusCode, resp.Header.Get("X-Cutover-Side"))
	}
}

func TestFaultOnLegacy(t *testing.T) {
	p, url, _ := faultPair(t, Config{Weights: Weights{Legacy: 100}})
	mustSetFaults(t, p, Faults{Legacy: &Fault{Kind: FaultErrors, Status: 502}})
	c := newClient()
	// Legacy failures are never replayed on new: new may not be ready.
	if resp, _ := send(t, c, "GET", url, ""); resp.StatusCode != 502 || resp.Header.Get("X-Cutover-Side") != "legacy" {
		t.Errorf("GET: %d side %q, want 502 naming legacy", resp.StatusCode, resp.Header.Get("X-Cutover-Side"))
	}
	// A refused legacy side is a safety net case: any request moves to
	// new, as when legacy's process dies.
	mustSetFaults(t, p, Faults{Legacy: &Fault{Kind: FaultRefuse}})
	if resp, _ := send(t, c, "POST", url, ""); resp.StatusCode != 200 || resp.Header.Get("X-Side") != "new" {
		t.Errorf("POST: %d from %q, want new", resp.StatusCode, resp.Header.Get("X-Side"))
	}
}

func TestFaultShareIsRespected(t *testing.T) {
	p, url, _ := faultPair(t, Config{})
	mustSetFaults(t, p, Faults{New: &Fault{Kind: FaultErrors, Percent: 30}})
	c := newClient()
	const n = 1000
	failed := 0
	for i := 0; i < n; i++ {
		resp, _ := send(t, c, "POST", url, "")
		switch resp.StatusCode {
		case 503:
			failed++
		case 200:
		default:
			t.Fatalf("POST %d: %d", i, resp.StatusCode)
		}
	}
	// Binomial(1000, 0.3): σ ≈ 14.5; five σ either side.
	if failed < 228 || failed > 372 {
		t.Errorf("%d of %d failed, want about 30 %%", failed, n)
	}
	if got := p.Faults().New.Injected; got != uint64(failed) {
		t.Errorf("injected %d, failed %d", got, failed)
	}
}

func TestFaultExpiresAndTheHotPathIsFreeAgain(t *testing.T) {
	p, url, _ := faultPair(t, Config{AdminToken: "tok"})
	h := p.AdminHandler()
	code, body := adminReq(t, h, "PUT", "/v1/faults", "tok", `{"new":{"kind":"errors","status":500,"for":"300ms"}}`)
	if code != 200 {
		t.Fatalf("PUT /v1/faults: %d %s", code, body)
	}
	var st FaultsState
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	if st.New == nil || st.New.Kind != FaultErrors || st.New.Status != 500 || st.New.For != 300*time.Millisecond ||
		st.New.Expires.Sub(st.New.Since) < 299*time.Millisecond || st.Legacy != nil {
		t.Fatalf("answer %s", body)
	}
	c := newClient()
	if resp, _ := send(t, c, "POST", url, ""); resp.StatusCode != 500 {
		t.Errorf("POST during the fault: %d", resp.StatusCode)
	}
	waitFor(t, "the fault to expire", func() bool { return p.faults.Load() == nil })
	if resp, _ := send(t, c, "POST", url, ""); resp.StatusCode != 200 || resp.Header.Get("X-Side") != "new" {
		t.Errorf("POST after expiry: %d from %q", resp.StatusCode, resp.Header.Get("X-Side"))
	}
	if code, body := adminReq(t, h, "GET", "/v1/faults", "tok", ""); code != 200 || !strings.Contains(body, `"new": null`) {
		t.Errorf("GET after expiry: %d %s", code, body)
	}
}

// TestNoFaultNoCost pins the promise that fault injection costs a proxy
// without faults one atomic load per attempt: clearing (by DELETE, by an
// empty set, by expiry) leaves the pointer nil, and the check does not
// allocate.
func TestNoFaultNoCost(t *testing.T) {
	p, url, _ := faultPair(t, Config{AdminToken: "tok"})
	if p.faults.Load() != nil {
		t.Fatal("a new proxy has a fault set")
	}
	h := p.AdminHandler()
	adminReq(t, h, "PUT", "/v1/faults", "tok", `{"new":{"kind":"refuse"}}`)
	if p.faults.Load() == nil {
		t.Fatal("PUT set nothing")
	}
	if code, body := adminReq(t, h, "DELETE", "/v1/faults", "tok", ""); code != 200 || p.faults.Load() != nil {
		t.Errorf("DELETE: %d %s, set %v", code, body, p.faults.Load())
	}
	mustSetFaults(t, p, Faults{New: &Fault{Kind: FaultRefuse}})
	mustSetFaults(t, p, Faults{})
	if p.faults.Load() != nil {
		t.Error("an empty set left a fault set in place")
	}
	c := newClient()
	send(t, c, "GET", url, "")
	allocs := testing.AllocsPerRun(1000, func() {
		if set := p.faults.Load(); set != nil {
			set.hit(SideNew, nanotime())
		}
	})
	if allocs != 0 {
		t.Errorf("the check allocates %v times", allocs)
	}
}

func TestFaultAdminAPIRefusesBadFaults(t *testing.T) {
	p, _, _ := faultPair(t, Config{AdminToken: "tok"})
	h := p.AdminHandler()
	for _, tok := range []string{"", "wrong"} {
		if code, _ := adminReq(t, h, "PUT", "/v1/faults", tok, `{"new":{"kind":"refuse"}}`); code != 401 {
			t.Errorf("PUT with token %q: %d, want 401", tok, code)
		}
		if code, _ := adminReq(t, h, "GET", "/v1/faults", tok, ``); code != 401 {
			t.Errorf("GET with token %q: %d, want 401", tok, code)
		}
	}
	for _, bad := range []string{
		`{"new":{"kind":"explode"}}`,
		`{"new":{}}`,
		`{"new":{"kind":"latency"}}`,
		`{"new":{"kind":"latency","latency":"soon"}}`,
		`{"new":{"kind":"refuse","latency":"1s"}}`,
		`{"new":{"kind":"errors","status":200}}`,
		`{"new":{"kind":"drop","status":503}}`,
		`{"new":{"kind":"errors","percent":101}}`,
		`{"new":{"kind":"errors","percent":-1}}`,
		`{"new":{"kind":"errors","for":"-1s"}}`,
		`{"new":{"kind":"errors","injected":5}}`,
		`{"new":{"kind":"errors","extra":1}}`,
		`{"middle":{"kind":"errors"}}`,
		`not json`,
	} {
		if code, body := adminReq(t, h, "PUT", "/v1/faults", "tok", bad); code != 400 && code != 422 {
			t.Errorf("PUT %s: %d %s", bad, code, body)
		}
	}
	if p.faults.Load() != nil {
		t.Error("a refused PUT set a fault")
	}
	// A side without upstreams cannot fail.
	only, _ := startProxy(t, Config{Legacy: []string{refusedURL(t)}, AdminToken: "tok"})
	if err := only.SetFaults(Faults{New: &Fault{Kind: FaultRefuse}}); err == nil {
		t.Error("a fault on a side without upstreams was accepted")
	}
}

// FuzzFaultsJSON: the PUT /v1/faults body is user input. Whatever it is,
// decoding and setting must not panic, and what is accepted reads back
// the same.
func FuzzFaultsJSON(f *testing.F) {
	for _, s := range []string{
		`{"new":{"kind":"errors","status":503,"percent":100,"for":"30s"}}`,
		`{"legacy":{"kind":"latency","latency":"500ms"},"new":{"kind":"blackhole","percent":12.5}}`,
		`{"new":{"kind":"refuse"}}`, `{"new":{"kind":"drop","for":"1h"}}`, `{}`, `{"new":null}`,
	} {
		f.Add([]byte(s))
	}
	legacy, newer := refusedURL(f), refusedURL(f)
	p, err := New(Config{Legacy: []string{legacy}, New: []string{newer}})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { p.Close() })
	f.Fuzz(func(t *testing.T, b []byte) {
		var in Faults
		if json.Unmarshal(b, &in) != nil {
			return
		}
		if p.SetFaults(in) != nil {
			return
		}
		st := p.Faults()
		for _, pair := range []struct {
			in  *Fault
			out *FaultState
		}{{in.Legacy, st.Legacy}, {in.New, st.New}} {
			if pair.in == nil {
				if pair.out != nil {
					t.Fatalf("no fault set but %+v in force", pair.out)
				}
				continue
			}
			if pair.out == nil {
				if pair.in.For > 0 {
					continue // may have expired already
				}
				t.Fatalf("fault %+v set but none in force", pair.in)
			}
			if pair.out.Kind != pair.in.Kind || pair.out.Latency != pair.in.Latency || pair.out.For != pair.in.For {
				t.Fatalf("set %+v, in force %+v", pair.in, pair.out)
			}
			b2, err := json.Marshal(pair.out)
			if err != nil {
				t.Fatal(err)
			}
			var back FaultState
			if err := json.Unmarshal(b2, &back); err != nil || back.Kind != pair.out.Kind || back.Latency != pair.out.Latency {
				t.Fatalf("round trip of %s: %+v, %v", b2, back, err)
			}
		}
		p.SetFaults(Faults{})
	})
}
