package nginx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/internal/testenv"
	"github.com/cutoverhq/cutover/metrics/prometheus/promtest"
	"github.com/cutoverhq/cutover/router"
	"github.com/cutoverhq/cutover/router/routertest"
)

// nginxBin finds nginx (Debian's nginx-light or nginx), or skips the
// test, or fails it where assets are required (CI).
func nginxBin(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"nginx", "/usr/sbin/nginx"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	msg := "nginx is not installed: apt-get install nginx-light (hack/deps.sh does)"
	if testenv.Required() {
		t.Fatalf("%s (required under CI / %s=1)", msg, testenv.EnvRequire)
	}
	t.Skip(msg)
	return ""
}

// env is a real NGINX the test started, with its files in a temp dir.
type env struct {
	dir, conf, include, pidFile string
	front, status               string
	bin                         string
	legacy, newer               []string // backend URLs
	settings                    Settings
}

type envOpts struct {
	// noShutdownTimeout leaves worker_shutdown_timeout out of nginx.conf.
	noShutdownTimeout bool
	// noInclude leaves the include line out of nginx.conf.
	noInclude bool
}

// startNginx starts two legacy and two new backends, writes an
// nginx.conf that includes the router's file and proxies to its upstream,
// writes the first include file (all traffic to legacy), and runs nginx
// in the foreground with two workers.
func startNginx(t *testing.T, o envOpts) *env {
	t.Helper()
	bin := nginxBin(t)
	dir := t.TempDir()
	e := &env{dir: dir, bin: bin, conf: filepath.Join(dir, "nginx.conf"), include: filepath.Join(dir, "cutover", "payments-api.conf"),
		// NGINX cannot take a listener from the test the way HAProxy
		// does: there is a small window in which another process could
		// take the port.
		pidFile: filepath.Join(dir, "nginx.pid"), status: promtest.FreeAddr(t)}
	front := promtest.FreeAddr(t)
	e.front = "http://" + front
	for _, n := range []string{"legacy", "legacy", "new", "new"} {
		side := n
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, side) }))
		t.Cleanup(s.Close)
		if side == "legacy" {
			e.legacy = append(e.legacy, s.URL)
		} else {
			e.newer = append(e.newer, s.URL)
		}
	}
	for _, d := range []string{"cutover", "tmp", "logs"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var main strings.Builder
	if os.Geteuid() == 0 {
		// Workers would run as nobody, who cannot enter the test's
		// private temp dir.
		main.WriteString("user root;\n")
	}
	fmt.Fprintf(&main, "worker_processes 2;\npid %s;\nerror_log %s info;\n", e.pidFile, filepath.Join(dir, "logs", "error.log"))
	if !o.noShutdownTimeout {
		main.WriteString("worker_shutdown_timeout 5s;\n")
	}
	main.WriteString("events { worker_connections 256; }\nhttp {\n    access_log off;\n")
	for _, tp := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		fmt.Fprintf(&main, "    %s_temp_path %s;\n", tp, filepath.Join(dir, "tmp", tp))
	}
	if !o.noInclude {
		fmt.Fprintf(&main, "    include %s;\n", e.include)
	} else {
		main.WriteString("    upstream payments-api { server 127.0.0.1:1; }\n")
	}
	fmt.Fprintf(&main, `    server {
        listen %s;
        location / {
            proxy_pass http://payments-api;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_next_upstream error timeout;
        }
    }
}
`, front)
	if err := os.WriteFile(e.conf, []byte(main.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	e.settings = Settings{Include: e.include, Status: e.status, Config: e.conf, Prefix: dir, Nginx: bin}
	// The first include file, as a user writes it before the shift.
	r := e.router(t, Settings{})
	first, _ := r.f.render(0, "initial")
	if err := os.WriteFile(e.include, first, 0o644); err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	cmd := exec.Command(bin, "-p", dir, "-c", e.conf, "-g", "daemon off;")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// TERM lets the master stop its workers; KILL would orphan them.
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; {
		if o.noInclude {
			// No status server: wait for the frontend instead.
			if c, err := net.Dial("tcp", front); err == nil {
				c.Close()
				return e
			}
		} else if _, err := r.live(context.Background()); err == nil {
			return e
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "logs", "error.log"))
			t.Fatalf("nginx did not start:\n%s\n%s", out.String(), log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// router builds the router for this env, with the env's settings and
// whatever over gives on top.
func (e *env) router(t *testing.T, over Settings) *Router {
	t.Helper()
	s := e.settings
	if over.ReloadCommand != nil {
		s.ReloadCommand = over.ReloadCommand
	}
	if over.PidFile != "" {
		s.PidFile = over.PidFile
	}
	if over.Directives != nil {
		s.Directives = over.Directives
	}
	if over.Status != "" {
		s.Status = over.Status
	}
	if over.ReloadTimeout != "" {
		s.ReloadTimeout = over.ReloadTimeout
	}
	r, err := New(context.Background(), router.Backends{Service: "payments-api", Legacy: e.legacy, New: e.newer}, func(v any) error { *v.(*Settings) = s; return nil })
	if err != nil {
		t.Fatal(err)
	}
	return r.(*Router)
}

var fronts sync.Map // *Router → frontend URL

// TestConformance runs the router suite against a real NGINX reloaded by
// `nginx -s reload`, two servers a side, with traffic through it.
func TestConformance(t *testing.T) {
	routertest.Run(t, routertest.Harness{
		New: func(t *testing.T) router.Router {
			e := startNginx(t, envOpts{})
			r := e.router(t, Settings{})
			fronts.Store(r, e.front)
			envs.Store(r, e)
			return r
		},
		Send: func(t *testing.T, r router.Router, n int) (int, int) {
			f, _ := fronts.Load(r)
			return routertest.Send(t, f.(string), n)
		},
		External: func(t *testing.T, r router.Router, w router.Weights) {
			// Another writer of the include file, then a reload: the
			// router reads the live weights from NGINX, not its file.
			e, _ := envs.Load(r)
			if err := e.(*env).router(t, Settings{}).SetWeights(context.Background(), w); err != nil {
				t.Fatal(err)
			}
		},
	})
}

var envs sync.Map // *Router → its NGINX

// TestConformancePidFile reloads by signalling the master from its pid
// file.
func TestConformancePidFile(t *testing.T) {
	routertest.Run(t, routertest.Harness{
		New: func(t *testing.T) router.Router {
			e := startNginx(t, envOpts{})
			return e.router(t, Settings{PidFile: e.pidFile})
		},
	})
}

// TestReloadCommand reloads with a configured command.
func TestReloadCommand(t *testing.T) {
	e := startNginx(t, envOpts{})
	r := e.router(t, Settings{ReloadCommand: []string{e.bin, "-p", e.dir, "-c", e.conf, "-s", "reload"}})
	ctx := context.Background()
	if err := r.SetWeights(ctx, router.ForNew(25)); err != nil {
		t.Fatal(err)
	}
	if w, err := r.Weights(ctx); err != nil || w != router.ForNew(25) {
		t.Fatalf("read back %v %v", w, err)
	}
}

// TestRefusedConfigurationPutsFileBack: when nginx -t refuses the new
// file, the old one is back byte for byte, nothing reloads, and the error
// is NGINX's own line.
func TestRefusedConfigurationPutsFileBack(t *testing.T) {
	e := startNginx(t, envOpts{})
	ctx := context.Background()
	good := e.router(t, Settings{})
	if err := good.SetWeights(ctx, router.ForNew(10)); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(e.include)
	bad := e.router(t, Settings{Directives: []string{"no_such_directive on"}})
	err := bad.SetWeights(ctx, router.ForNew(50))
	if err == nil || !strings.Contains(err.Error(), `nginx -t refused the new upstream`) || !strings.Contains(err.Error(), `[emerg] unknown directive "no_such_directive"`) || !strings.Contains(err.Error(), "previous "+e.include+" put back") {
		t.Fatalf("SetWeights: %v", err)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error of several lines: %q", err)
	}
	after, _ := os.ReadFile(e.include)
	if !bytes.Equal(before, after) {
		t.Fatalf("include file not restored:\n%s", after)
	}
	if w, err := good.Weights(ctx); err != nil || w != router.ForNew(10) {
		t.Fatalf("live weights after a refused step: %v %v", w, err)
	}
	entries, _ := os.ReadDir(filepath.Dir(e.include))
	if len(entries) != 1 {
		t.Errorf("temporary files left beside the include file: %v", entries)
	}
}

// TestSameWeightsDoNotReload: setting the weights the workers already
// serve starts no new workers.
func TestSameWeightsDoNotReload(t *testing.T) {
	e := startNginx(t, envOpts{})
	ctx := context.Background()
	r := e.router(t, Settings{})
	if err := r.SetWeights(ctx, router.ForNew(10)); err != nil {
		t.Fatal(err)
	}
	first, err := r.live(ctx)
	if err != nil {
		t.Fatal(err)
	}
	workers := workerPids(t, e.pidFile)
	if err := r.SetWeights(ctx, router.ForNew(10)); err != nil {
		t.Fatal(err)
	}
	again, err := r.live(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if again.Generation != first.Generation {
		t.Fatalf("generation %s → %s: the same weights reloaded nginx", first.Generation, again.Generation)
	}
	if now := workerPids(t, e.pidFile); now != workers {
		t.Fatalf("workers %s → %s", workers, now)
	}
}

// workerPids lists the master's children.
func workerPids(t *testing.T, pidFile string) string {
	t.Helper()
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid := strings.TrimSpace(string(b))
	c, err := os.ReadFile("/proc/" + pid + "/task/" + pid + "/children")
	if err != nil {
		t.Skipf("cannot list nginx's workers: %v", err)
	}
	return strings.TrimSpace(string(c))
}

// TestWeightsComeFromTheWorkers: a file edited without a reload changes
// nothing Weights reports, and Check says the two differ.
func TestWeightsComeFromTheWorkers(t *testing.T) {
	e := startNginx(t, envOpts{})
	ctx := context.Background()
	r := e.router(t, Settings{})
	if err := r.SetWeights(ctx, router.ForNew(10)); err != nil {
		t.Fatal(err)
	}
	edited, _ := r.f.render(50, "by-hand")
	if err := os.WriteFile(e.include, edited, 0o644); err != nil {
		t.Fatal(err)
	}
	if w, err := r.Weights(ctx); err != nil || w != router.ForNew(10) {
		t.Fatalf("Weights after an edit without reload: %v %v", w, err)
	}
	if err := r.Check(ctx); err == nil || !strings.Contains(err.Error(), "differs from what nginx serves (edited without a reload?): nginx serves legacy 90% / new 10%, the file says legacy 50% / new 50%") {
		t.Fatalf("Check: %v", err)
	}
}

// TestStatusDoesNotAnswer: no status server means no read-back, said in
// one line.
func TestStatusDoesNotAnswer(t *testing.T) {
	e := startNginx(t, envOpts{})
	r := e.router(t, Settings{Status: promtest.FreeAddr(t), ReloadTimeout: "500ms"})
	if _, err := r.Weights(context.Background()); err == nil || !strings.Contains(err.Error(), "does not answer") {
		t.Fatalf("Weights: %v", err)
	}
	if err := r.Check(context.Background()); err == nil || !strings.Contains(err.Error(), "does not answer") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("Check: %v", err)
	}
}

// TestCancelledWaitSaysSo: a context that ends while NGINX reloads ends
// the wait with the context's error.
func TestCancelledWaitSaysSo(t *testing.T) {
	e := startNginx(t, envOpts{})
	r := e.router(t, Settings{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.SetWeights(ctx, router.ForNew(10)); !errors.Is(err, context.Canceled) {
		t.Fatalf("SetWeights: %v", err)
	}
	if w, err := r.Weights(context.Background()); err != nil || w != router.ForNew(0) {
		t.Fatalf("a cancelled step changed the weights: %v %v", w, err)
	}
}

func TestCheck(t *testing.T) {
	ctx := context.Background()
	good := startNginx(t, envOpts{})
	if err := good.router(t, Settings{}).Check(ctx); err != nil {
		t.Errorf("Check of a good setup: %v", err)
	}

	bare := startNginx(t, envOpts{noShutdownTimeout: true})
	err := bare.router(t, Settings{}).Check(ctx)
	if err == nil || !strings.Contains(err.Error(), "every reload starts new worker processes while the old ones finish their connections; worker_shutdown_timeout is not set") {
		t.Errorf("Check without worker_shutdown_timeout: %v", err)
	}

	// An nginx.conf that does not include the file: nginx serves its own
	// upstream, the router's file is never read.
	notIncluded := startNginx(t, envOpts{noInclude: true})
	err = notIncluded.router(t, Settings{}).Check(ctx)
	if err == nil || !strings.Contains(err.Error(), "nginx's configuration does not include "+notIncluded.include) {
		t.Errorf("Check without the include: %v", err)
	}
	if err != nil && strings.Contains(err.Error(), "\n") {
		t.Errorf("Check spans lines: %q", err)
	}

	missing := good.router(t, Settings{})
	missing.include = filepath.Join(good.dir, "nowhere", "x.conf")
	if err := missing.Check(ctx); err == nil || !strings.Contains(err.Error(), "directory "+filepath.Join(good.dir, "nowhere")+" does not exist") {
		t.Errorf("Check with a missing directory: %v", err)
	}
}

func TestSettingsRefusedClearly(t *testing.T) {
	b := router.Backends{Service: "payments-api", Legacy: []string{"http://10.0.0.1:8080"}, New: []string{"http://10.0.0.2:8080"}}
	ok := Settings{Include: "/etc/nginx/cutover/p.conf", Status: "127.0.0.1:8099"}
	for _, c := range []struct {
		s    func(s *Settings)
		b    router.Backends
		want string
	}{
		{func(s *Settings) { s.Include = "" }, b, "set include"},
		{func(s *Settings) { s.Status = "" }, b, "set status"},
		{func(s *Settings) { s.Status = "8099" }, b, "not host:port"},
		{func(s *Settings) { s.Upstream = "a b" }, b, "upstream \"a b\""},
		{func(s *Settings) { s.Directives = []string{"keepalive 32; } server { listen 80"} }, b, "must be one directive"},
		{func(s *Settings) { s.ServerParams = "max_fails=1;" }, b, "serverParams"},
		{func(s *Settings) { s.ReloadTimeout = "later" }, b, "reloadTimeout"},
		{func(s *Settings) {}, router.Backends{Service: "p", Legacy: []string{"http://10.0.0.1:8080/api"}, New: b.New}, "only host:port"},
		{func(s *Settings) {}, router.Backends{Service: "p", Legacy: []string{"be/legacy1"}, New: b.New}, "neither host:port"},
		{func(s *Settings) {}, router.Backends{Service: "p", Legacy: b.New, New: b.New}, "named twice"},
		{func(s *Settings) {}, router.Backends{Service: "p", Legacy: b.Legacy}, "the new side has no address"},
	} {
		s := ok
		c.s(&s)
		_, err := New(context.Background(), c.b, func(v any) error { *v.(*Settings) = s; return nil })
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", s, err, c.want)
		}
	}
}
