package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/audit"
	"github.com/cutoverhq/cutover/metrics/prometheus/promtest"
	"github.com/cutoverhq/cutover/shift"
)

// promBackend is one HAProxy server: it answers 200, or 500 once told to
// fail, and remembers when it answered its first 500.
type promBackend struct {
	srv       *httptest.Server
	hits      atomic.Int64
	failing   atomic.Bool
	firstFail atomic.Int64 // unix nanoseconds; 0 until the first 500
}

func newPromBackend(t *testing.T) *promBackend {
	b := &promBackend{}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		b.hits.Add(1)
		time.Sleep(time.Millisecond)
		if b.failing.Load() {
			b.firstFail.CompareAndSwap(0, time.Now().UnixNano())
			http.Error(w, "broken release", http.StatusInternalServerError)
			return
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *promBackend) addr() string { return strings.TrimPrefix(b.srv.URL, "http://") }

// haproxyRuntime sends one command to HAProxy's stats socket and returns
// the answer. The test reads weights itself, not through the router, so
// that what it checks is HAProxy's own word.
func haproxyRuntime(t *testing.T, sock, cmd string) string {
	t.Helper()
	c, err := net.DialTimeout("unix", sock, 2*time.Second)
	if err != nil {
		t.Fatalf("stats socket: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(c, cmd+"\n"); err != nil {
		t.Fatalf("stats socket: %v", err)
	}
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("stats socket: %s: %v", cmd, err)
	}
	return string(b)
}

// haproxySplit reads the current weights of the plan's servers and
// returns the split as "legacy/new" percentages of the total weight.
func haproxySplit(t *testing.T, sock string) string {
	t.Helper()
	weight := func(server string) int {
		ans := haproxyRuntime(t, sock, "get weight be_payments/"+server)
		n, err := strconv.Atoi(strings.Fields(ans + " x")[0])
		if err != nil {
			t.Fatalf("get weight %s: %q", server, ans)
		}
		return n
	}
	legacy := weight("legacy1") + weight("legacy2")
	newer := weight("new1")
	if legacy+newer == 0 {
		return "0/0"
	}
	pct := (100*newer + (legacy+newer)/2) / (legacy + newer)
	return fmt.Sprintf("%d/%d", 100-pct, pct)
}

// promLoad sends GETs through HAProxy at about rps until stop is closed.
func promLoad(url string, rps int, stop <-chan struct{}) *sync.WaitGroup {
	const workers = 8
	tr := &http.Transport{MaxIdleConnsPerHost: workers}
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	gap := time.Duration(workers) * time.Second / time.Duration(rps)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(gap)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				if resp, err := c.Get(url); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		}()
	}
	return &wg
}

const promPlan = `apiVersion: cutover.dev/v1alpha1
kind: ShiftPlan
metadata: {name: e2e-prometheus-%s}
spec:
  service: payments-api
  legacy: {addresses: [be_payments/legacy1, be_payments/legacy2]}
  new: {addresses: [be_payments/new1]}
  router: {type: haproxy, socket: %s}
  metrics:
    type: prometheus
    address: %s
    preset: haproxy
    labels: {job: haproxy}
    scrapeInterval: 1s
    legacy: {backend: be_payments, servers: [legacy1, legacy2]}
    new: {backend: be_payments, servers: [new1]}
  steps:
    - {weight: 10, hold: 3s}
    - {weight: 50, hold: %s}
    - {weight: 100}
  slo:
    errorRate: {max: 1%%}
  analysis: {interval: 500ms, window: 5s, minRequests: 10}
`

// TestShiftHAProxyPrometheus is issue 4's proof for HAProxy: a real
// HAProxy splits load between two legacy servers and a new one, a real
// Prometheus scrapes HAProxy's exporter every second, and `cutover shift
// run` drives the weights through the runtime API (router haproxy) and
// judges on Prometheus (metrics prometheus, preset haproxy).
//
// First run: both sides healthy, the shift completes and HAProxy reads
// 0/100. Second run: at 50 % the new side starts answering 500; the shift
// rolls back, and HAProxy's runtime API reads 100/0 within one scrape
// interval plus a second of the first failing request.
func TestShiftHAProxyPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end shift with HAProxy and Prometheus takes about 30 s")
	}
	const scrape = time.Second
	bin := build(t)
	dir := t.TempDir()
	l1, l2, n1 := newPromBackend(t), newPromBackend(t), newPromBackend(t)
	front, exporter := promtest.FreeAddr(t), promtest.FreeAddr(t)
	sock := filepath.Join(dir, "haproxy.sock")
	promtest.StartHAProxy(t, fmt.Sprintf(`global
  noreuseport
  stats socket %s mode 600 level admin
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
  server legacy1 %s weight 100
  server legacy2 %s weight 100
  server new1 %s weight 100
`, sock, front, exporter, l1.addr(), l2.addr(), n1.addr()), front, exporter, sock)
	// Before the shift, all traffic is legacy's.
	haproxyRuntime(t, sock, "set server be_payments/new1 weight 0")
	if got := haproxySplit(t, sock); got != "100/0" {
		t.Fatalf("HAProxy starts at %s", got)
	}
	prom := promtest.StartPrometheus(t, scrape, promtest.Target{Job: "haproxy", Address: exporter})

	stop := make(chan struct{})
	load := promLoad("http://"+front+"/pay", 200, stop)
	defer func() { close(stop); load.Wait() }()
	prom.WaitScraped(t, 4, "haproxy")

	planFor := func(name, hold string) string {
		p := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(p, []byte(fmt.Sprintf(promPlan, name, sock, prom.URL, hold)), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}

	// `shift validate` reaches HAProxy and Prometheus and finds nothing
	// wrong.
	healthy := planFor("healthy", "3s")
	if out, err := runCutover(bin, "shift", "validate", healthy); err != nil {
		t.Fatalf("shift validate: %v\n%s", err, out)
	}

	// Run 1: both sides healthy: the shift completes.
	run1 := runShift(t, bin, healthy, filepath.Join(dir, "healthy.state.json"))
	if code := run1.exit(90 * time.Second); code != 0 {
		t.Fatalf("healthy run exited %d:\n%s", code, run1.proc.output())
	}
	if st := savedState(t, run1.state); st.Phase != shift.Completed || st.Weight != 100 {
		t.Fatalf("healthy run ended %s at %d%%: %s", st.Phase, st.Weight, st.Reason)
	}
	if got := haproxySplit(t, sock); got != "0/100" {
		t.Fatalf("after a completed shift HAProxy reads %s, want 0/100", got)
	}
	if n1.hits.Load() < 200 {
		t.Errorf("the new side served only %d requests", n1.hits.Load())
	}

	// Run 2: someone moves the traffic by hand in the middle of a hold
	// (the runtime API, as an operator or a reload without the state
	// file would): the shift pauses and leaves HAProxy alone; resume sets
	// its weight again; abort sends everything back to legacy.
	haproxyRuntime(t, sock, "set server be_payments/new1 weight 0")
	haproxyRuntime(t, sock, "set server be_payments/legacy1 weight 100")
	haproxyRuntime(t, sock, "set server be_payments/legacy2 weight 100")
	drift := runShift(t, bin, planFor("drift", "60s"), filepath.Join(dir, "drift.state.json"))
	drift.waitFor("step 2 held", 60*time.Second, func(s shift.Status) bool { return s.State.Phase == shift.Holding && s.State.Weight == 50 })
	haproxyRuntime(t, sock, "set server be_payments/new1 weight 0")
	ds := drift.waitFor("the drift pause", 10*time.Second, func(s shift.Status) bool { return s.State.Phase == shift.Paused })
	if !ds.State.Drifted || !strings.Contains(ds.State.Reason, "reads back new 0%, the shift set 50%") {
		t.Fatalf("paused with %q (drifted %v)", ds.State.Reason, ds.State.Drifted)
	}
	time.Sleep(time.Second) // two ticks more: the shift keeps its hands off
	if got := haproxySplit(t, sock); got != "100/0" {
		t.Fatalf("paused on drift, HAProxy reads %s: the shift overrode the hand edit", got)
	}
	drift.command("resume")
	drift.waitFor("the step held again", 10*time.Second, func(s shift.Status) bool { return s.State.Phase == shift.Holding && s.State.Weight == 50 })
	if got := haproxySplit(t, sock); got != "50/50" {
		t.Fatalf("resumed, HAProxy reads %s, want 50/50", got)
	}
	drift.command("abort")
	if code := drift.exit(30 * time.Second); code == 0 {
		t.Fatalf("aborted run exited 0:\n%s", drift.proc.output())
	}
	if got := haproxySplit(t, sock); got != "100/0" {
		t.Fatalf("after the abort HAProxy reads %s, want 100/0", got)
	}
	if n := countKind(t, drift.audit, audit.KindRouterDrift); n != 1 {
		t.Errorf("the audit log holds %d router-drift records, want 1", n)
	}

	// Run 3: the new side breaks at 50 %.
	run2 := runShift(t, bin, planFor("failing", "60s"), filepath.Join(dir, "failing.state.json"))
	run2.waitFor("step 2 held", 60*time.Second, func(s shift.Status) bool { return s.State.Phase == shift.Holding && s.State.Weight == 50 })
	time.Sleep(1500 * time.Millisecond)
	if got := haproxySplit(t, sock); got != "50/50" {
		t.Fatalf("holding at 50 %%, HAProxy reads %s", got)
	}
	var back atomic.Int64 // when HAProxy first read 100/0
	watch := make(chan struct{})
	go func() {
		defer close(watch)
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			if haproxySplit(t, sock) == "100/0" {
				back.Store(time.Now().UnixNano())
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	n1.failing.Store(true)
	if code := run2.exit(60 * time.Second); code != 1 {
		t.Fatalf("failing run exited %d, want 1 (rolled back):\n%s", code, run2.proc.output())
	}
	<-watch
	st := savedState(t, run2.state)
	if st.Phase != shift.RolledBack || st.Weight != 0 {
		t.Fatalf("failing run ended %s at %d%%: %s", st.Phase, st.Weight, st.Reason)
	}
	if got := haproxySplit(t, sock); got != "100/0" {
		t.Fatalf("after the rollback HAProxy reads %s, want 100/0", got)
	}
	first := n1.firstFail.Load()
	if first == 0 || back.Load() == 0 {
		t.Fatalf("first failure at %d, weights back at %d", first, back.Load())
	}
	took := time.Duration(back.Load() - first)
	t.Logf("HAProxy read 100/0 %v after the new side's first 500 (%s)", took.Round(time.Millisecond), st.Reason)
	if limit := scrape + time.Second; took >= limit {
		t.Errorf("rollback took %v from the first failing request, want < %v (scrape interval + 1s)", took, limit)
	}
}

// runCutover runs the cutover binary to completion.
func runCutover(bin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, filepath.Join(bin, "cutover"), args...).CombinedOutput()
	return string(out), err
}
