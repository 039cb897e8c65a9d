package proxy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The hand-over test runs this test binary again as the new proxy
// process; TestMain sends it here when envTestChild is set.
const (
	envTestChild   = "CUTOVER_PROXY_TEST_CHILD" // "serve" or "fail"
	envTestAddr    = "CUTOVER_PROXY_TEST_ADDR"
	envTestLegacy  = "CUTOVER_PROXY_TEST_LEGACY"
	envTestPIDFile = "CUTOVER_PROXY_TEST_PIDFILE"
)

func childMain() int {
	if os.Getenv(envTestChild) == "fail" {
		fmt.Fprintln(os.Stderr, "child: failing on purpose before readiness")
		return 3
	}
	upg, err := NewUpgrader(UpgraderOptions{PIDFile: os.Getenv(envTestPIDFile)})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	if !upg.HasParent() {
		fmt.Fprintln(os.Stderr, "child: started without a parent's sockets")
		return 1
	}
	ln, err := upg.Listen("tcp", os.Getenv(envTestAddr))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	p, err := New(Config{Legacy: []string{os.Getenv(envTestLegacy)}, Via: "1.1 child"})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go p.Serve(ln)
	if err := upg.Ready(); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	<-sig
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "child: shutdown:", err)
		return 1
	}
	return 0
}

// TestUpgradeHandsOverUnderLoad restarts the proxy into a real child
// process while clients send GETs and POSTs on keep-alive connections and
// new ones: not one connection may be refused, not one request fail.
func TestUpgradeHandsOverUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	var viaParent, viaChild atomic.Int64
	legacy := newSide(t, "legacy", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		switch r.Header.Get("Via") {
		case "1.1 parent":
			viaParent.Add(1)
		case "1.1 child":
			viaChild.Add(1)
		}
		fmt.Fprintf(w, "%s %d", r.Method, len(b))
	})
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	const addr = "127.0.0.1:0"
	upg, err := NewUpgrader(UpgraderOptions{
		Args: []string{"-test.run=^$"},
		Env: append(os.Environ(), envTestChild+"=serve", envTestAddr+"="+addr,
			envTestLegacy+"="+legacy.url(), envTestPIDFile+"="+pidFile),
		ReadyTimeout: 20 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer upg.Close()
	ln, err := upg.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	p, err := New(Config{Legacy: []string{legacy.url()}, Via: "1.1 parent"})
	if err != nil {
		t.Fatal(err)
	}
	go p.Serve(ln)
	t.Cleanup(func() {
		// Whatever happened, leave no child behind.
		if b, err := os.ReadFile(pidFile); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})

	// Load: keep-alive clients and clients that connect per request.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var ok, failed atomic.Int64
	var failMu sync.Mutex
	var failures []string
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			tr := &http.Transport{DisableKeepAlives: g%4 == 3}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				method, body := "GET", []byte(nil)
				if i%2 == 1 {
					method, body = "POST", bytes.Repeat([]byte("p"), 1+i%3000)
				}
				req, _ := http.NewRequest(method, url+"/", bytes.NewReader(body))
				resp, err := c.Do(req)
				var got []byte
				if err == nil {
					got, err = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
				if want := fmt.Sprintf("%s %d", method, len(body)); err != nil || resp.StatusCode != 200 || string(got) != want {
					failed.Add(1)
					failMu.Lock()
					failures = append(failures, fmt.Sprintf("%s: %v %q", method, err, got))
					failMu.Unlock()
					continue
				}
				ok.Add(1)
			}
		}(g)
	}
	time.Sleep(300 * time.Millisecond)
	if err := upg.Upgrade(ctxTimeout(t, 30*time.Second)); err != nil {
		close(stop)
		wg.Wait()
		t.Fatal(err)
	}
	select {
	case <-upg.Exit():
	default:
		t.Error("Exit not closed after a successful upgrade")
	}
	if err := p.Shutdown(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Errorf("parent shutdown: %v", err)
	}
	parentDone := viaParent.Load()
	childBefore := viaChild.Load()
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()

	if failed.Load() != 0 {
		t.Errorf("%d of %d requests failed during the hand-over, first: %v", failed.Load(), failed.Load()+ok.Load(), failures[:min(len(failures), 5)])
	}
	if parentDone == 0 || viaChild.Load() <= childBefore {
		t.Errorf("parent served %d, child %d (%d after the parent drained): the hand-over did not happen under load",
			parentDone, viaChild.Load(), viaChild.Load()-childBefore)
	}
	if viaParent.Load() != parentDone {
		t.Errorf("the parent served %d requests after its Shutdown returned", viaParent.Load()-parentDone)
	}
	t.Logf("requests: %d ok; parent %d, child %d", ok.Load(), parentDone, viaChild.Load())

	// Stop the child like a supervisor would.
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("child wrote no pid file: %v", err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if pid == os.Getpid() || pid <= 0 {
		t.Fatalf("pid file holds %d", pid)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the child to exit", func() bool {
		// The Upgrader's goroutine reaps the child; until then it is a
		// zombie, which still answers signal 0, so look at /proc.
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		return err != nil || strings.Contains(string(st), ") Z ")
	})
}

func TestUpgradeChildFailsParentKeepsServing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	legacy := newSide(t, "legacy", nil)
	upg, err := NewUpgrader(UpgraderOptions{
		Args: []string{"-test.run=^$"},
		Env:  append(os.Environ(), envTestChild+"=fail"),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer upg.Close()
	ln, err := upg.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(Config{Legacy: []string{legacy.url()}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	go p.Serve(ln)
	if err := upg.Upgrade(ctxTimeout(t, 20*time.Second)); err == nil {
		t.Fatal("Upgrade succeeded with a child that never got ready")
	}
	select {
	case <-upg.Exit():
		t.Fatal("Exit closed after a failed upgrade")
	default:
	}
	if resp, body := get(t, newClient(), "http://"+ln.Addr().String()+"/"); resp.StatusCode != 200 || body != "legacy" {
		t.Errorf("parent after a failed upgrade: %d %q", resp.StatusCode, body)
	}
	// A failed upgrade may be tried again.
	if err := upg.Upgrade(ctxTimeout(t, 20*time.Second)); err == nil || err == ErrUpgrading {
		t.Errorf("second Upgrade: %v", err)
	}
}
