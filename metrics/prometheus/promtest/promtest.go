// Package promtest starts a real Prometheus server and a real HAProxy for
// tests, on loopback ports the test picks, with their configuration and
// data in t.TempDir(). Both come from Debian packages (hack/deps.sh); a
// test without them skips and says what to install, or fails under CI
// (CI set, or CUTOVER_REQUIRE_ASSETS=1), as internal/testenv does.
package promtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Required reports whether a missing server fails the test instead of
// skipping it (the rule of internal/testenv.Required, without its
// Kubernetes dependencies).
func Required() bool {
	for _, k := range []string{"CUTOVER_REQUIRE_ASSETS", "CI"} {
		if v := os.Getenv(k); v != "" && v != "0" && v != "false" {
			return true
		}
	}
	return false
}

// Binary returns the path of a program, or skips (fails under CI) naming
// the package that provides it.
func Binary(t testing.TB, name, debianPackage string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/bin"} {
		if st, err := os.Stat(filepath.Join(dir, name)); err == nil && st.Mode()&0o111 != 0 {
			return filepath.Join(dir, name)
		}
	}
	msg := fmt.Sprintf("%s is not installed: apt-get install %s (hack/deps.sh)", name, debianPackage)
	if Required() {
		t.Fatalf("%s (required under CI / CUTOVER_REQUIRE_ASSETS=1)", msg)
	}
	t.Skip(msg)
	return ""
}

// handedOut holds every address FreeAddr returned in this process.
var handedOut sync.Map

// FreeAddr returns a loopback address nothing listens on now and that
// FreeAddr has not returned before in this process: the kernel may hand
// the same ephemeral port to two listen-and-close calls in a row, and two
// servers given one port (HAProxy binds with SO_REUSEPORT unless told
// noreuseport) would share its connections without an error.
func FreeAddr(t testing.TB) string {
	t.Helper()
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		if _, dup := handedOut.LoadOrStore(addr, true); !dup {
			return addr
		}
	}
	t.Fatal("no loopback port that was not handed out before")
	return ""
}

// Target is one scrape job.
type Target struct {
	// Job is the job label.
	Job string
	// Address is host:port.
	Address string
	// Path is the metrics path; "" means /metrics.
	Path string
	// BearerToken is sent as "Authorization: Bearer"; "" sends none.
	BearerToken string
}

// Prometheus is a running server.
type Prometheus struct {
	// URL is the server's base URL (http://127.0.0.1:port).
	URL string
	// ScrapeInterval is the global scrape interval.
	ScrapeInterval time.Duration
	// Dir holds the configuration and the TSDB.
	Dir string
	cmd *exec.Cmd
	log string
}

// StartPrometheus starts Prometheus scraping the targets every interval
// and waits until it is ready. It is stopped when the test ends.
func StartPrometheus(t testing.TB, interval time.Duration, targets ...Target) *Prometheus {
	t.Helper()
	bin := Binary(t, "prometheus", "prometheus")
	dir := t.TempDir()
	var b strings.Builder
	iv := fmt.Sprintf("%dms", interval.Milliseconds())
	fmt.Fprintf(&b, "global:\n  scrape_interval: %s\n  scrape_timeout: %s\n  evaluation_interval: %s\nscrape_configs:\n", iv, iv, iv)
	for _, tg := range targets {
		path := tg.Path
		if path == "" {
			path = "/metrics"
		}
		fmt.Fprintf(&b, "  - job_name: %q\n    metrics_path: %q\n    static_configs: [{targets: [%q]}]\n", tg.Job, path, tg.Address)
		if tg.BearerToken != "" {
			fmt.Fprintf(&b, "    authorization: {type: Bearer, credentials: %q}\n", tg.BearerToken)
		}
	}
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := FreeAddr(t)
	logFile := filepath.Join(dir, "prometheus.log")
	out, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn", "--storage.tsdb.retention.time=1h")
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &Prometheus{URL: "http://" + addr, ScrapeInterval: interval, Dir: dir, cmd: cmd, log: logFile}
	done := make(chan struct{})
	go func() { cmd.Wait(); out.Close(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			b, _ := os.ReadFile(logFile)
			t.Logf("--- prometheus log:\n%s", b)
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-done:
			b, _ := os.ReadFile(logFile)
			t.Fatalf("prometheus exited at start:\n%s", b)
		default:
		}
		resp, err := http.Get(p.URL + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus at %s not ready after 60s", p.URL)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Query runs an instant query now and returns the single value, or ok
// false when the result is empty.
func (p *Prometheus) Query(t testing.TB, q string) (v float64, ok bool) {
	t.Helper()
	resp, err := http.PostForm(p.URL+"/api/v1/query", url.Values{"query": {q}})
	if err != nil {
		t.Fatalf("query %s: %v", q, err)
	}
	defer resp.Body.Close()
	var r struct {
		Status string
		Error  string
		Data   struct {
			Result []struct {
				Value [2]any
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || r.Status != "success" {
		t.Fatalf("query %s: %v %s", q, err, r.Error)
	}
	if len(r.Data.Result) == 0 {
		return 0, false
	}
	s, _ := r.Data.Result[0].Value[1].(string)
	fmt.Sscan(s, &v)
	return v, true
}

// WaitScraped waits until every job is up and has been scraped at least
// n times, so that increase() over a window has samples to work with.
func (p *Prometheus) WaitScraped(t testing.TB, n int, jobs ...string) {
	t.Helper()
	deadline := time.Now().Add(30*time.Second + time.Duration(n)*p.ScrapeInterval)
	for _, job := range jobs {
		for {
			up, _ := p.Query(t, fmt.Sprintf(`up{job=%q}`, job))
			if up == 1 && p.Scrapes(t, job) >= n {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("prometheus did not scrape job %s successfully %d times (up=%v); targets: %s", job, n, up, p.targetHealth(job))
			}
			time.Sleep(p.ScrapeInterval / 4)
		}
	}
}

// targetHealth returns what Prometheus says about the job's targets:
// health, last error and scrape URL, for a failure message.
func (p *Prometheus) targetHealth(job string) string {
	resp, err := http.Get(p.URL + "/api/v1/targets?state=active")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	var r struct {
		Data struct {
			ActiveTargets []struct {
				Labels    map[string]string
				ScrapeURL string
				Health    string
				LastError string
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, tg := range r.Data.ActiveTargets {
		if tg.Labels["job"] == job {
			fmt.Fprintf(&b, "%s %s %q; ", tg.ScrapeURL, tg.Health, tg.LastError)
		}
	}
	return b.String()
}

// Scrapes returns how many samples of up Prometheus holds for a job: the
// scrapes done so far.
func (p *Prometheus) Scrapes(t testing.TB, job string) int {
	t.Helper()
	c, _ := p.Query(t, fmt.Sprintf(`count_over_time(up{job=%q}[1h])`, job))
	return int(c)
}

// WaitNextScrape waits until Prometheus scraped the job once more than
// now, so that what the data plane counted until now is in the TSDB.
func (p *Prometheus) WaitNextScrape(t testing.TB, job string) {
	t.Helper()
	before := p.Scrapes(t, job)
	deadline := time.Now().Add(10*p.ScrapeInterval + 10*time.Second)
	for p.Scrapes(t, job) <= before {
		if time.Now().After(deadline) {
			t.Fatalf("prometheus did not scrape job %s again", job)
		}
		time.Sleep(p.ScrapeInterval / 10)
	}
}

// HAProxy is a running haproxy.
type HAProxy struct {
	// Dir holds the configuration.
	Dir string
	cmd *exec.Cmd
	log string
}

// StartHAProxy runs haproxy in the foreground (-db) with the given
// configuration, and waits until every address in wait accepts
// connections. It is stopped when the test ends.
func StartHAProxy(t testing.TB, config string, wait ...string) *HAProxy {
	t.Helper()
	bin := Binary(t, "haproxy", "haproxy")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-c", "-f", cfg).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c: %v\n%s\n--- config:\n%s", err, out, config)
	}
	logFile := filepath.Join(dir, "haproxy.log")
	out, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-f", cfg, "-db")
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &HAProxy{Dir: dir, cmd: cmd, log: logFile}
	done := make(chan struct{})
	go func() { cmd.Wait(); out.Close(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGUSR1) // soft stop
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			b, _ := os.ReadFile(logFile)
			t.Logf("--- haproxy log:\n%s", b)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, a := range wait {
		for {
			network := "tcp"
			if strings.HasPrefix(a, "/") {
				network = "unix"
			}
			c, err := (&net.Dialer{}).DialContext(ctx, network, a)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-done:
				b, _ := os.ReadFile(logFile)
				t.Fatalf("haproxy exited at start:\n%s", b)
			case <-ctx.Done():
				t.Fatalf("haproxy does not listen on %s", a)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	return h
}
