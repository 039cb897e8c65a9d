package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/audit"
	_ "github.com/cutoverhq/cutover/audit/file"
	"github.com/cutoverhq/cutover/metrics/prometheus/promtest"
	"github.com/cutoverhq/cutover/shift"
)

// binaries builds cutover and the test programs once per test run.
var binaries = struct {
	once sync.Once
	dir  string
	err  error
}{}

func build(t *testing.T) string {
	t.Helper()
	binaries.once.Do(func() {
		dir, err := os.MkdirTemp("", "cutover-e2e-bin-")
		if err != nil {
			binaries.err = err
			return
		}
		binaries.dir = dir
		for name, pkg := range map[string]string{
			"cutover": "github.com/cutoverhq/cutover/cmd/cutover",
			"backend": "github.com/cutoverhq/cutover/test/e2e/cmd/backend",
			"loadgen": "github.com/cutoverhq/cutover/test/e2e/cmd/loadgen",
		} {
			out, err := exec.Command("go", "build", "-o", filepath.Join(dir, name), pkg).CombinedOutput()
			if err != nil {
				binaries.err = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
				return
			}
		}
	})
	if binaries.err != nil {
		t.Fatal(binaries.err)
	}
	return binaries.dir
}

// proc is a child process whose output goes to the test log on failure.
// The output goes to a file, not a pipe: a restarted proxy's new process
// inherits it, and exec.Cmd.Wait would wait for a pipe to close forever.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
}

func (p *proc) output() string {
	b, _ := os.ReadFile(p.log.Name())
	return string(b)
}

func start(t *testing.T, name string, env []string, args ...string) *proc {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "out-")
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{name: name, log: f, done: make(chan struct{})}
	p.cmd = exec.Command(args[0], args[1:]...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
		if t.Failed() {
			t.Logf("--- %s output:\n%s", name, p.output())
		}
	})
	return p
}

// startBackend starts a backend process and returns its address.
func startBackend(t *testing.T, bin, name, listen string) (*proc, string) {
	t.Helper()
	pr, pw := io.Pipe()
	f, err := os.CreateTemp(t.TempDir(), "out-")
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{name: name, log: f, done: make(chan struct{})}
	p.cmd = exec.Command(filepath.Join(bin, "backend"), "-name", name, "-listen", listen)
	p.cmd.Stdout = pw
	p.cmd.Stderr = f
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); pw.Close(); close(p.done) }()
	t.Cleanup(func() { p.cmd.Process.Kill(); <-p.done })
	sc := bufio.NewScanner(pr)
	if !sc.Scan() {
		t.Fatalf("backend %s printed no address", name)
	}
	go io.Copy(io.Discard, pr)
	return p, sc.Text()
}

func waitHTTP(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s never answered", url)
}

type shiftRun struct {
	t     *testing.T
	bin   string
	admin string
	token string
	state string
	// audit is the run's audit log (file:…), beside its state.
	audit string
	proc  *proc
}

func runShift(t *testing.T, bin, planFile, state string) *shiftRun {
	admin := promtest.FreeAddr(t)
	s := &shiftRun{t: t, bin: bin, admin: admin, token: "e2e-shift-token-0123456789", state: state,
		audit: "file:" + strings.TrimSuffix(state, ".state.json") + ".audit.log"}
	s.proc = start(t, "shift run", []string{"CUTOVER_ADMIN_TOKEN=" + s.token, "CUTOVER_AUDIT=" + s.audit},
		filepath.Join(bin, "cutover"), "shift", "run", planFile, "--admin", admin, "--state", state)
	return s
}

func (s *shiftRun) status() (shift.Status, bool) {
	req, _ := http.NewRequest(http.MethodGet, "http://"+s.admin+"/v1/shift", nil)
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return shift.Status{}, false
	}
	defer resp.Body.Close()
	var st shift.Status
	if json.NewDecoder(resp.Body).Decode(&st) != nil {
		return st, false
	}
	return st, true
}

// waitFor polls the shift's status until cond holds.
func (s *shiftRun) waitFor(what string, timeout time.Duration, cond func(shift.Status) bool) shift.Status {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if st, ok := s.status(); ok && cond(st) {
			return st
		}
		select {
		case <-s.proc.done:
			s.t.Fatalf("shift run exited while waiting for %s:\n%s", what, s.proc.output())
		case <-time.After(20 * time.Millisecond):
		}
	}
	s.t.Fatalf("timed out waiting for %s", what)
	return shift.Status{}
}

// command posts an operator command (resume, abort, …) to the run's
// admin API and fails the test unless it is accepted.
func (s *shiftRun) command(name string) {
	s.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+s.admin+"/v1/shift/"+name, strings.NewReader("{}"))
	req.Header.Set("Authorization", "Bearer "+s.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s: %v", name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(resp.Body)
		s.t.Fatalf("%s: %s %s", name, resp.Status, b)
	}
}

// countKind verifies the audit log at loc and counts its records of one
// kind.
func countKind(t *testing.T, loc, kind string) int {
	t.Helper()
	n := 0
	rep, err := audit.Verify(context.Background(), loc, audit.VerifyOptions{Visit: func(e audit.Entry) {
		if e.Record.Kind == kind {
			n++
		}
	}})
	if err != nil || !rep.OK() {
		t.Fatalf("audit log %s: %v %+v", loc, err, rep)
	}
	return n
}

func (s *shiftRun) exit(timeout time.Duration) int {
	s.t.Helper()
	select {
	case <-s.proc.done:
		return s.proc.cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		s.t.Fatalf("shift run did not end in %v", timeout)
		return -1
	}
}

func savedState(t *testing.T, path string) shift.State {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var saved shift.Saved
	if err := json.Unmarshal(b, &saved); err != nil {
		t.Fatal(err)
	}
	return saved.State
}

const shiftPlan = `apiVersion: cutover.dev/v1alpha1
kind: ShiftPlan
metadata: {name: e2e-%s}
spec:
  service: e2e
  legacy: {addresses: ["%s"]}
  new: {addresses: ["%s"]}
  router:
    type: proxy
    admin: %s
    tokenEnv: E2E_PROXY_TOKEN
  metrics: {type: embedded}
  steps:
    - {weight: 10, hold: 3s}
    - {weight: 50, hold: 4s}
    - {weight: 100, hold: 1s}
  slo:
    errorRate: {max: 1%%}
  analysis: {interval: 100ms, window: 3s, minRequests: 10}
`

// TestShiftUnderLoadSurvivesKillAndRestart is the shift's end-to-end proof,
// every part a separate process: two backends, cutover proxy, cutover shift
// run driving the proxy through its admin API, and a load generator.
// The proxy is restarted once (socket hand-over) during the first run; the
// new backend is killed with SIGKILL at 50 % and the shift must roll back
// within a second of the kill; then the new backend comes back and a second
// run completes. The load generator counts every request: no idempotent
// request may fail, and no other request may fail unless it reached the
// killed side.
func TestShiftUnderLoadSurvivesKillAndRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end shift takes about 30 s")
	}
	bin := build(t)
	dir := t.TempDir()
	_, legacyAddr := startBackend(t, bin, "legacy", "127.0.0.1:0")
	newProc, newAddr := startBackend(t, bin, "new", "127.0.0.1:0")

	proxyAddr, proxyAdmin := promtest.FreeAddr(t), promtest.FreeAddr(t)
	const proxyToken = "e2e-proxy-token-0123456789"
	pidFile := filepath.Join(dir, "proxy.pid")
	proxy := start(t, "cutover proxy", []string{"CUTOVER_PROXY_TOKEN=" + proxyToken},
		filepath.Join(bin, "cutover"), "proxy", "--listen", proxyAddr, "--admin", proxyAdmin,
		"--legacy", "http://"+legacyAddr, "--new", "http://"+newAddr,
		"--sticky-header", "X-User-Id", "--retry-budget", "1", "--pid-file", pidFile)
	waitHTTP(t, "http://"+proxyAdmin+"/healthz")

	results := filepath.Join(dir, "load.json")
	load := start(t, "loadgen", nil, filepath.Join(bin, "loadgen"), "-url", "http://"+proxyAddr, "-rps", "300", "-out", results)

	planFor := func(name string) string {
		p := filepath.Join(dir, name+".yaml")
		src := fmt.Sprintf(shiftPlan, name, "http://"+legacyAddr, "http://"+newAddr, "http://"+proxyAdmin)
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	os.Setenv("E2E_PROXY_TOKEN", proxyToken)
	defer os.Unsetenv("E2E_PROXY_TOKEN")

	// Run 1: restart the proxy at 10 %, kill the new side at 50 %.
	run1 := runShift(t, bin, planFor("first"), filepath.Join(dir, "first.state.json"))
	run1.waitFor("step 1 held", 20*time.Second, func(s shift.Status) bool { return s.State.Phase == shift.Holding && s.State.Weight == 10 })
	time.Sleep(time.Second)
	proxy.cmd.Process.Signal(syscall.SIGHUP)
	// The old process exits once the new one serves: wait for that.
	select {
	case <-proxy.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("the proxy did not hand over its sockets:\n%s", proxy.output())
	}
	if pid, _ := os.ReadFile(pidFile); strings.TrimSpace(string(pid)) == fmt.Sprint(proxy.cmd.Process.Pid) {
		t.Fatalf("pid file still names the old process")
	}
	t.Cleanup(func() {
		// The restarted proxy is not our child: stop it through its pid file.
		if b, err := os.ReadFile(pidFile); err == nil {
			var pid int
			fmt.Sscan(string(b), &pid)
			if pid > 0 {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	run1.waitFor("step 2 held", 30*time.Second, func(s shift.Status) bool { return s.State.Phase == shift.Holding && s.State.Weight == 50 })
	time.Sleep(time.Second)
	killed := time.Now()
	newProc.cmd.Process.Signal(syscall.SIGKILL)
	if code := run1.exit(20 * time.Second); code != 1 {
		t.Fatalf("first run exited %d, want 1 (rolled back):\n%s", code, run1.proc.output())
	}
	st := savedState(t, run1.state)
	if st.Phase != shift.RolledBack || st.Weight != 0 {
		t.Fatalf("first run ended %s at %d%%: %s", st.Phase, st.Weight, st.Reason)
	}
	took := st.Updated.Sub(killed)
	t.Logf("rollback confirmed %v after SIGKILL of the new side (%s)", took.Round(time.Millisecond), st.Reason)
	if took >= time.Second {
		t.Errorf("rollback took %v after the new side died, want < 1s", took)
	}
	if w := proxyWeights(t, proxyAdmin, proxyToken); w != "100/0" {
		t.Errorf("proxy weights after rollback %s, want 100/0", w)
	}
	// The audit log of the run is whole and tells the story: each step's
	// weight set and read back, the failing analysis, the rollback and its
	// confirmation.
	kinds := map[string]int{}
	rep, err := audit.Verify(context.Background(), run1.audit, audit.VerifyOptions{Visit: func(e audit.Entry) { kinds[e.Record.Kind]++ }})
	if err != nil || !rep.OK() {
		t.Fatalf("audit log %s: %v %+v", run1.audit, err, rep)
	}
	for _, k := range []string{audit.KindPlanLoaded, audit.KindStepStarted, audit.KindWeightSet, audit.KindWeightConfirmed, audit.KindAnalysis, audit.KindRollback, audit.KindRolledBack} {
		if kinds[k] == 0 {
			t.Errorf("no %s record in the audit log: %v", k, kinds)
		}
	}

	// Run 2: the new side is back; the shift completes.
	startBackend(t, bin, "new", newAddr)
	run2 := runShift(t, bin, planFor("second"), filepath.Join(dir, "second.state.json"))
	if code := run2.exit(60 * time.Second); code != 0 {
		t.Fatalf("second run exited %d:\n%s", code, run2.proc.output())
	}
	if w := proxyWeights(t, proxyAdmin, proxyToken); w != "0/100" {
		t.Errorf("proxy weights after completion %s, want 0/100", w)
	}

	load.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-load.done:
	case <-time.After(30 * time.Second):
		t.Fatal("load generator did not stop")
	}
	var sums []struct {
		Class     string   `json:"class"`
		Sent      int64    `json:"sent"`
		Failed    int64    `json:"failed"`
		FailedNew int64    `json:"failed_new"`
		Samples   []string `json:"samples"`
	}
	b, err := os.ReadFile(results)
	if err != nil {
		t.Fatalf("load results: %v\n%s", err, load.output())
	}
	if err := json.Unmarshal(b, &sums); err != nil {
		t.Fatal(err)
	}
	for _, s := range sums {
		t.Logf("%-8s sent %6d failed %d (of which reached the new side: %d) %v", s.Class, s.Sent, s.Failed, s.FailedNew, s.Samples)
		if s.Sent < 200 {
			t.Errorf("%s: only %d requests sent", s.Class, s.Sent)
		}
		switch s.Class {
		case "get", "post-key":
			if s.Failed != 0 {
				t.Errorf("%s: %d idempotent requests failed", s.Class, s.Failed)
			}
		default:
			if s.Failed != s.FailedNew {
				t.Errorf("%s: %d requests failed that never reached the killed side", s.Class, s.Failed-s.FailedNew)
			}
		}
	}
}

func proxyWeights(t *testing.T, admin, token string) string {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, "http://"+admin+"/v1/weights", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var w struct{ Legacy, New int }
	json.NewDecoder(resp.Body).Decode(&w)
	return fmt.Sprintf("%d/%d", w.Legacy, w.New)
}
