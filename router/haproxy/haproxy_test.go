package haproxy

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
	"testing"
	"time"

	"github.com/cutoverhq/cutover/internal/testenv"
	"github.com/cutoverhq/cutover/router"
	"github.com/cutoverhq/cutover/router/routertest"
)

// haproxyBin finds the haproxy binary (Debian's haproxy package), or
// skips the test, or fails it where assets are required (CI).
func haproxyBin(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"haproxy", "/usr/sbin/haproxy"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	msg := "haproxy is not installed: apt-get install haproxy (hack/deps.sh does)"
	if testenv.Required() {
		t.Fatalf("%s (required under CI / %s=1)", msg, testenv.EnvRequire)
	}
	t.Skip(msg)
	return ""
}

// instance is a real HAProxy the test started.
type instance struct {
	// sock is the unix stats socket, tcp a TCP one; both level admin.
	sock, tcp string
	// front is the frontend's base URL.
	front string
}

// startHAProxy runs `haproxy -f cfg -db` with cfg made of a fixed global
// and defaults section, a frontend whose default backend is be_payments,
// and the sections given. The frontend and the TCP stats socket are
// listeners the test opened and hands over (fd@3, fd@4), so no port is
// guessed.
func startHAProxy(t *testing.T, sections string) *instance {
	t.Helper()
	bin := haproxyBin(t)
	// Unix socket paths must stay under 108 bytes; t.TempDir's can be
	// longer for long test names.
	dir, err := os.MkdirTemp("", "cutover-haproxy")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	front, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stats, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ff, _ := front.(*net.TCPListener).File()
	sf, _ := stats.(*net.TCPListener).File()
	front.Close()
	stats.Close()
	inst := &instance{sock: filepath.Join(dir, "admin.sock"), tcp: stats.Addr().String(), front: "http://" + front.Addr().String()}
	cfg := fmt.Sprintf(`global
    stats socket %s level admin
    stats socket fd@4 level admin
defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
    retries 3
    option redispatch
    retry-on conn-failure empty-response response-timeout
frontend fe_payments
    bind fd@3
    default_backend be_payments
%s`, inst.sock, sections)
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	cmd := exec.Command(bin, "-f", path, "-db")
	cmd.ExtraFiles = []*os.File{ff, sf}
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ff.Close()
	sf.Close()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	sk := socket{network: "unix", addr: inst.sock, timeout: time.Second}
	for deadline := time.Now().Add(10 * time.Second); ; {
		if ans, err := sk.do(context.Background(), "show info"); err == nil && strings.Contains(ans, "Version") {
			return inst
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxy did not start:\n%s", out.String())
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

// backends starts one HTTP server per name; each answers with its side
// ("legacy" or "new", the name's prefix up to a digit).
func backends(t *testing.T, names ...string) map[string]string {
	addrs := map[string]string{}
	for _, n := range names {
		side := strings.TrimRight(n, "0123456789")
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, side) }))
		t.Cleanup(s.Close)
		addrs[n] = strings.TrimPrefix(s.URL, "http://")
	}
	return addrs
}

// backendCfg is a be_payments section: two legacy servers of unequal
// configured weights, two new ones configured at 0 (so a reload never
// sends them traffic by surprise), and the lines given.
func backendCfg(t *testing.T, lines string) string { return backendCfgNew(t, lines, 0) }

// backendCfgNew is backendCfg with the new servers configured at weight
// newWeight: a static algorithm can give a server only 0 or its
// configured weight, so there they need one.
func backendCfgNew(t *testing.T, lines string, newWeight int) string {
	a := backends(t, "legacy1", "legacy2", "new1", "new2")
	return fmt.Sprintf(`backend be_payments
%s
    cookie cutover-side insert indirect nocache
    server legacy1 %s weight 100 cookie l1
    server legacy2 %s weight 50 cookie l2
    server new1 %s weight %d cookie n1
    server new2 %s weight %d cookie n2
`, lines, a["legacy1"], a["legacy2"], a["new1"], newWeight, a["new2"], newWeight)
}

var planServers = router.Backends{
	Service: "payments-api",
	Legacy:  []string{"be_payments/legacy1", "be_payments/legacy2"},
	New:     []string{"be_payments/new1", "be_payments/new2"},
}

func newRouter(t *testing.T, b router.Backends, s Settings) *Router {
	t.Helper()
	r, err := New(context.Background(), b, func(v any) error { *v.(*Settings) = s; return nil })
	if err != nil {
		t.Fatal(err)
	}
	return r.(*Router)
}

var fronts sync.Map // *Router → frontend URL

// TestConformance runs the router suite against a real HAProxy over its
// unix stats socket, two servers a side, with traffic through it.
func TestConformance(t *testing.T) {
	routertest.Run(t, routertest.Harness{
		New: func(t *testing.T) router.Router {
			inst := startHAProxy(t, backendCfg(t, "    balance roundrobin"))
			r := newRouter(t, planServers, Settings{Socket: inst.sock})
			fronts.Store(r, inst.front)
			socks.Store(r, inst.sock)
			return r
		},
		Send: func(t *testing.T, r router.Router, n int) (int, int) {
			f, _ := fronts.Load(r)
			return routertest.Send(t, f.(string), n)
		},
		External: func(t *testing.T, r router.Router, w router.Weights) {
			// Another client of the runtime API (an operator, a script).
			sock, _ := socks.Load(r)
			if err := newRouter(t, planServers, Settings{Socket: sock.(string)}).SetWeights(context.Background(), w); err != nil {
				t.Fatal(err)
			}
		},
	})
}

var socks sync.Map // router → its HAProxy's unix socket

// TestConformanceTCPSocket drives HAProxy over a TCP stats socket, with
// leastconn and bare server names under the backend setting. leastconn
// picks by weight only among idle servers, so sequential requests would
// not show the split: the suite checks the weights read back.
func TestConformanceTCPSocket(t *testing.T) {
	routertest.Run(t, routertest.Harness{
		New: func(t *testing.T) router.Router {
			inst := startHAProxy(t, backendCfg(t, "    balance leastconn"))
			return newRouter(t, router.Backends{Legacy: []string{"legacy1", "legacy2"}, New: []string{"new1", "new2"}},
				Settings{Socket: inst.tcp, Backend: "be_payments"})
		},
	})
}

// TestStaticAlgorithmOnlyAllOrNothing: static-rr passes the suite with
// 0 % and 100 % only, traffic included.
func TestStaticAlgorithmOnlyAllOrNothing(t *testing.T) {
	routertest.Run(t, routertest.Harness{
		Weights: []int{0, 100, 0},
		New: func(t *testing.T) router.Router {
			inst := startHAProxy(t, backendCfgNew(t, "    balance static-rr", 1))
			r := newRouter(t, planServers, Settings{Socket: inst.sock})
			fronts.Store(r, inst.front)
			return r
		},
		Send: func(t *testing.T, r router.Router, n int) (int, int) {
			f, _ := fronts.Load(r)
			return routertest.Send(t, f.(string), n)
		},
	})
}

// TestStaticAlgorithmsRefusedClearly: the algorithms that take only 0 %
// and 100 % refuse a step in between with an error that names the
// algorithm and the fix, and nothing changes. Map-based hashing is found
// out by HAProxy's own refusal.
func TestStaticAlgorithmsRefusedClearly(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct{ balance, want string }{
		{"balance static-rr", "balances with static-rr"},
		{"balance first", "balances with first"},
		{"balance source", "add `hash-type consistent`"},
		{"balance uri\n    hash-type map-based", "balances with uri and map-based hashing"},
	} {
		t.Run(strings.Fields(c.balance)[1], func(t *testing.T) {
			inst := startHAProxy(t, backendCfgNew(t, "    "+c.balance, 1))
			r := newRouter(t, planServers, Settings{Socket: inst.sock})
			if err := r.SetWeights(ctx, router.ForNew(0)); err != nil {
				t.Fatal(err)
			}
			before := serverWeights(t, inst.sock)
			err := r.SetWeights(ctx, router.ForNew(10))
			if !errors.Is(err, ErrStaticAlgorithm) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "cannot send 10 % to the new side") {
				t.Fatalf("SetWeights(10%%): %v", err)
			}
			if after := serverWeights(t, inst.sock); after != before {
				t.Fatalf("a refused step changed weights: %s → %s", before, after)
			}
			if err := r.SetWeights(ctx, router.ForNew(100)); err != nil {
				t.Fatalf("100%%: %v", err)
			}
			if w, err := r.Weights(ctx); err != nil || w != router.ForNew(100) {
				t.Fatalf("after 100%%: %v %v", w, err)
			}
		})
	}
}

// TestStaticAlgorithmWithServersAtWeightZero: under a static algorithm a
// server configured at weight 0 can never take traffic; the error says
// which one and what to change.
func TestStaticAlgorithmWithServersAtWeightZero(t *testing.T) {
	inst := startHAProxy(t, backendCfg(t, "    balance static-rr"))
	r := newRouter(t, planServers, Settings{Socket: inst.sock})
	err := r.SetWeights(context.Background(), router.ForNew(100))
	if !errors.Is(err, ErrStaticAlgorithm) || !strings.Contains(err.Error(), "server be_payments/new1 is configured with weight 0") {
		t.Fatalf("SetWeights(100%%): %v", err)
	}
}

// TestDynamicAlgorithmsTakeAnyWeight: every algorithm that honours weights
// at run time takes a step in between.
func TestDynamicAlgorithmsTakeAnyWeight(t *testing.T) {
	ctx := context.Background()
	for _, balance := range []string{"balance roundrobin", "balance leastconn", "balance random", "balance source\n    hash-type consistent", "balance uri\n    hash-type consistent"} {
		t.Run(strings.ReplaceAll(balance, "\n    ", " "), func(t *testing.T) {
			inst := startHAProxy(t, backendCfg(t, "    "+balance))
			r := newRouter(t, planServers, Settings{Socket: inst.sock})
			for _, pct := range []int{10, 37, 100, 0} {
				if err := r.SetWeights(ctx, router.ForNew(pct)); err != nil {
					t.Fatalf("%d%%: %v", pct, err)
				}
				if w, err := r.Weights(ctx); err != nil || w != router.ForNew(pct) {
					t.Fatalf("%d%%: read back %v %v", pct, w, err)
				}
			}
		})
	}
}

// serverWeights is every be_payments server's `get weight` answer, in
// order.
func serverWeights(t *testing.T, sock string) string {
	t.Helper()
	sk := socket{network: "unix", addr: sock, timeout: time.Second}
	var parts []string
	for _, s := range []string{"legacy1", "legacy2", "new1", "new2"} {
		ans, err := sk.do(context.Background(), "get weight be_payments/"+s)
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, s+"="+ans)
	}
	return strings.Join(parts, " ")
}

// TestWeightsPerServer pins what HAProxy holds at each step with unequal
// legacy machines: the bigger one keeps twice the share of the smaller.
func TestWeightsPerServer(t *testing.T) {
	ctx := context.Background()
	inst := startHAProxy(t, backendCfg(t, "    balance roundrobin"))
	r := newRouter(t, planServers, Settings{Socket: inst.sock})
	for _, c := range []struct {
		pct  int
		want string
	}{
		{0, "legacy1=100 (initial 100) legacy2=50 (initial 50) new1=0 (initial 0) new2=0 (initial 0)"},
		{10, "legacy1=12 (initial 100) legacy2=6 (initial 50) new1=1 (initial 0) new2=1 (initial 0)"},
		{50, "legacy1=4 (initial 100) legacy2=2 (initial 50) new1=3 (initial 0) new2=3 (initial 0)"},
		{100, "legacy1=0 (initial 100) legacy2=0 (initial 50) new1=1 (initial 0) new2=1 (initial 0)"},
	} {
		if err := r.SetWeights(ctx, router.ForNew(c.pct)); err != nil {
			t.Fatal(err)
		}
		if got := serverWeights(t, inst.sock); got != c.want {
			t.Errorf("at %d%%:\n got %s\nwant %s", c.pct, got, c.want)
		}
	}
}

func TestUnknownServerOrBackend(t *testing.T) {
	ctx := context.Background()
	inst := startHAProxy(t, backendCfg(t, "    balance roundrobin"))
	r := newRouter(t, router.Backends{Legacy: []string{"be_payments/legacy1"}, New: []string{"be_payments/nosuch"}}, Settings{Socket: inst.sock})
	for name, err := range map[string]error{"SetWeights": r.SetWeights(ctx, router.ForNew(10)), "Weights": func() error { _, err := r.Weights(ctx); return err }()} {
		if err == nil || !strings.Contains(err.Error(), "server be_payments/nosuch: No such server") || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := r.Check(ctx); err == nil || !strings.Contains(err.Error(), "backend be_payments has no server nosuch (new side)") {
		t.Errorf("Check: %v", err)
	}
	r = newRouter(t, router.Backends{Legacy: []string{"be_nope/legacy1"}, New: []string{"be_nope/new1"}}, Settings{Socket: inst.sock})
	if err := r.SetWeights(ctx, router.ForNew(10)); err == nil || !strings.Contains(err.Error(), "No such backend") {
		t.Errorf("SetWeights on an unknown backend: %v", err)
	}
	if err := r.Check(ctx); err == nil || !strings.Contains(err.Error(), "has no backend be_nope") {
		t.Errorf("Check on an unknown backend: %v", err)
	}
}

// TestSocketThatDoesNotAnswer: a socket that takes the connection and
// says nothing fails within the timeout, and a cancelled context ends the
// wait at once; a socket nobody listens on says so.
func TestSocketThatDoesNotAnswer(t *testing.T) {
	dir, err := os.MkdirTemp("", "cutover-haproxy")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "mute.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	}()

	r := newRouter(t, planServers, Settings{Socket: path, Timeout: "300ms"})
	start := time.Now()
	_, err = r.Weights(context.Background())
	if err == nil || !errors.Is(err, errNoAnswer) || !strings.Contains(err.Error(), "within 300ms") {
		t.Fatalf("Weights: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %v", d)
	}
	if err := r.Check(context.Background()); err == nil || !strings.Contains(err.Error(), "no answer") {
		t.Fatalf("Check: %v", err)
	}

	r = newRouter(t, planServers, Settings{Socket: path, Timeout: "1m"})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start = time.Now()
	if err := r.SetWeights(ctx, router.ForNew(10)); !errors.Is(err, context.Canceled) {
		t.Fatalf("SetWeights with a cancelled context: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("cancel took %v", d)
	}

	r = newRouter(t, planServers, Settings{Socket: filepath.Join(dir, "absent.sock")})
	if _, err := r.Weights(context.Background()); err == nil || !strings.Contains(err.Error(), "does not accept connections") {
		t.Fatalf("absent socket: %v", err)
	}
}

// TestCheckSaysEverythingInOneLine: a backend with a server in
// maintenance, a backup server in the plan and a server in neither side
// gets all three named, on one line.
func TestCheckSaysEverythingInOneLine(t *testing.T) {
	a := backends(t, "legacy1", "new1", "new2", "other1")
	inst := startHAProxy(t, fmt.Sprintf(`backend be_payments
    balance roundrobin
    server legacy1 %s weight 10
    server new1 %s weight 0 disabled
    server new2 %s weight 0 backup
    server other1 %s weight 5
`, a["legacy1"], a["new1"], a["new2"], a["other1"]))
	r := newRouter(t, router.Backends{Legacy: []string{"be_payments/legacy1"}, New: []string{"be_payments/new1", "be_payments/new2"}}, Settings{Socket: inst.sock})
	err := r.Check(context.Background())
	if err == nil {
		t.Fatal("Check passed")
	}
	msg := err.Error()
	for _, want := range []string{
		"server be_payments/new1 is MAINT",
		"server be_payments/new2 is a backup server",
		"servers in neither side that take a share of traffic (other1)",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("Check: %s\nmissing %q", msg, want)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("Check spans lines: %q", msg)
	}

	good := startHAProxy(t, backendCfg(t, "    balance roundrobin"))
	if err := newRouter(t, planServers, Settings{Socket: good.sock}).Check(context.Background()); err != nil {
		t.Errorf("Check of a good backend: %v", err)
	}
	static := startHAProxy(t, backendCfgNew(t, "    balance static-rr", 1))
	if err := newRouter(t, planServers, Settings{Socket: static.sock}).Check(context.Background()); err == nil || !strings.Contains(err.Error(), "balances with static-rr") {
		t.Errorf("Check of static-rr: %v", err)
	}
}

func TestCheckNeedsLevelAdmin(t *testing.T) {
	a := backends(t, "legacy1", "new1")
	dir, err := os.MkdirTemp("", "cutover-haproxy")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	op := startHAProxyOperator(t, dir, a)
	r := newRouter(t, router.Backends{Legacy: []string{"be_payments/legacy1"}, New: []string{"be_payments/new1"}}, Settings{Socket: op})
	if err := r.Check(context.Background()); err == nil || !strings.Contains(err.Error(), "has level operator: weights need `level admin`") {
		t.Fatalf("Check: %v", err)
	}
}

// startHAProxyOperator starts an HAProxy whose only stats socket has
// level operator.
func startHAProxyOperator(t *testing.T, dir string, a map[string]string) string {
	bin := haproxyBin(t)
	sock := filepath.Join(dir, "op.sock")
	cfg := fmt.Sprintf("global\n    stats socket %s level operator\ndefaults\n    mode http\n    timeout connect 1s\n    timeout client 1s\n    timeout server 1s\nbackend be_payments\n    server legacy1 %s\n    server new1 %s weight 0\n", sock, a["legacy1"], a["new1"])
	path := filepath.Join(dir, "op.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-f", path, "-db")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sk := socket{network: "unix", addr: sock, timeout: time.Second}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, err := sk.do(context.Background(), "show cli level"); err == nil {
			return sock
		}
	}
	t.Fatal("haproxy with an operator socket did not start")
	return ""
}

// TestPairOfInstances: two HAProxy instances carrying the same traffic
// get the same weights, and a difference between them is an error, not
// an average.
func TestPairOfInstances(t *testing.T) {
	ctx := context.Background()
	cfg := backendCfg(t, "    balance roundrobin")
	a, b := startHAProxy(t, cfg), startHAProxy(t, cfg)
	r := newRouter(t, planServers, Settings{Sockets: []string{a.sock, b.tcp}})
	if err := r.SetWeights(ctx, router.ForNew(10)); err != nil {
		t.Fatal(err)
	}
	if serverWeights(t, a.sock) != serverWeights(t, b.sock) {
		t.Fatalf("instances differ: %s / %s", serverWeights(t, a.sock), serverWeights(t, b.sock))
	}
	if w, err := r.Weights(ctx); err != nil || w != router.ForNew(10) {
		t.Fatalf("read back %v %v", w, err)
	}
	// Someone moves traffic on one instance by hand.
	if _, err := (socket{network: "unix", addr: b.sock, timeout: time.Second}).do(ctx, "set server be_payments/new1 weight 200"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Weights(ctx); err == nil || !strings.Contains(err.Error(), "HAProxy instances disagree") {
		t.Fatalf("Weights with instances apart: %v", err)
	}
	if err := r.SetWeights(ctx, router.ForNew(10)); err != nil {
		t.Fatal(err)
	}
	if w, err := r.Weights(ctx); err != nil || w != router.ForNew(10) {
		t.Fatalf("after setting again: %v %v", w, err)
	}
}

// TestRefusedStepRestoresEveryInstance: when the second instance refuses
// a weight (map-based hashing there, roundrobin on the first), the
// weights already set on the first go back, so both still agree.
func TestRefusedStepRestoresEveryInstance(t *testing.T) {
	ctx := context.Background()
	a := startHAProxy(t, backendCfg(t, "    balance roundrobin"))
	b := startHAProxy(t, backendCfg(t, "    balance source"))
	r := newRouter(t, planServers, Settings{Sockets: []string{a.sock, b.sock}})
	if err := r.SetWeights(ctx, router.ForNew(0)); err != nil {
		t.Fatal(err)
	}
	before := serverWeights(t, a.sock)
	if err := r.SetWeights(ctx, router.ForNew(10)); !errors.Is(err, ErrStaticAlgorithm) {
		t.Fatalf("SetWeights: %v", err)
	}
	if after := serverWeights(t, a.sock); after != before {
		t.Fatalf("first instance kept a refused step: %s → %s", before, after)
	}
	if w, err := r.Weights(ctx); err != nil || w != router.ForNew(0) {
		t.Fatalf("read back %v %v", w, err)
	}
}

func TestSettingsRefusedClearly(t *testing.T) {
	for _, c := range []struct {
		s    Settings
		b    router.Backends
		want string
	}{
		{Settings{}, planServers, "set socket"},
		{Settings{Socket: "/a", Sockets: []string{"/b"}}, planServers, "not both"},
		{Settings{Sockets: []string{"/a", "unix@/a"}}, planServers, "listed twice"},
		{Settings{Socket: "/a", Timeout: "soon"}, planServers, `timeout "soon"`},
		{Settings{Socket: "/a"}, router.Backends{Legacy: []string{"http://10.0.0.1:8080"}, New: []string{"be/n"}}, "is a URL"},
		{Settings{Socket: "/a"}, router.Backends{Legacy: []string{"legacy1"}, New: []string{"be/n"}}, "names no backend"},
		{Settings{Socket: "/a"}, router.Backends{Legacy: []string{"be1/l"}, New: []string{"be2/n"}}, "HAProxy splits by weight only among one backend's servers"},
		{Settings{Socket: "/a"}, router.Backends{Legacy: []string{"be/l"}, New: []string{"be/l"}}, "named twice"},
		{Settings{Socket: "/a"}, router.Backends{Legacy: []string{"be/l; set server be/n weight 0"}, New: []string{"be/n"}}, "HAProxy names"},
		{Settings{Socket: "/a"}, router.Backends{Legacy: []string{"be/l"}}, "the new side names no HAProxy server"},
	} {
		_, err := New(context.Background(), c.b, func(v any) error { *v.(*Settings) = c.s; return nil })
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v %+v: %v, want %q", c.s, c.b, err, c.want)
		}
	}
}

// Regression: at weight 0 HAProxy still sent clients pinned by their
// persistence cookie to the new side, so a rollback left them there. The
// new side now goes into maintenance at 0 % and out of it before it takes
// traffic again.
func TestRollbackMovesPinnedClients(t *testing.T) {
	inst := startHAProxy(t, backendCfg(t, "    balance roundrobin\n    option redispatch"))
	r := newRouter(t, planServers, Settings{Socket: inst.sock})
	ctx := context.Background()
	if err := r.SetWeights(ctx, router.ForNew(100)); err != nil {
		t.Fatal(err)
	}
	get := func(cookie string) (string, string) {
		req, _ := http.NewRequest(http.MethodGet, inst.front+"/", nil)
		if cookie != "" {
			req.Header.Set("Cookie", "cutover-side="+cookie)
		}
		resp, err := (&http.Client{Transport: &http.Transport{}}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		set := ""
		for _, c := range resp.Cookies() {
			if c.Name == "cutover-side" {
				set = c.Value
			}
		}
		return string(b), set
	}
	side, pin := get("")
	if side != "new" || pin == "" {
		t.Fatalf("at 100%%: %q pinned %q", side, pin)
	}
	if err := r.SetWeights(ctx, router.ForNew(0)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if side, _ := get(pin); side != "legacy" {
			t.Fatalf("after the rollback a client pinned to %s went to %q", pin, side)
		}
	}
	if w, err := r.Weights(ctx); err != nil || w != router.ForNew(0) {
		t.Fatalf("weights %v %v", w, err)
	}
	// And back: the new side serves again once its weight rises.
	if err := r.SetWeights(ctx, router.ForNew(100)); err != nil {
		t.Fatal(err)
	}
	if side, _ := get(""); side != "new" {
		t.Fatalf("after returning to 100%%: %q", side)
	}
}
