package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/cutoverhq/cutover/audit"
	auditfile "github.com/cutoverhq/cutover/audit/file"
	dataplane "github.com/cutoverhq/cutover/proxy"
	"github.com/cutoverhq/cutover/source"
)

// proxyConfig is the file `cutover proxy --config` reads; the flags say
// the same for quick use.
type proxyConfig struct {
	Listen              string   `yaml:"listen"`
	Admin               string   `yaml:"admin"`
	Legacy              []string `yaml:"legacy"`
	New                 []string `yaml:"new"`
	NewWeight           int      `yaml:"newWeight"`
	StickyHeader        string   `yaml:"stickyHeader"`
	StickyCookie        string   `yaml:"stickyCookie"`
	RetryBudget         float64  `yaml:"retryBudget"`
	MaxReplayBody       int64    `yaml:"maxReplayBody"`
	UpstreamIdleTimeout string   `yaml:"upstreamIdleTimeout"`
	ResponseTimeout     string   `yaml:"responseTimeout"`
	DialTimeout         string   `yaml:"dialTimeout"`
	AdminTokenEnv       string   `yaml:"adminTokenEnv"`
	MetricsPublic       bool     `yaml:"metricsPublic"`
	PIDFile             string   `yaml:"pidFile"`

	// audit comes from the flags only: the log is an operator's choice,
	// not the data plane's configuration.
	audit auditFlags
}

// envWeights carries the weights in force to the process that takes over
// the sockets on a restart, so a restart never moves traffic.
const envWeights = "CUTOVER_PROXY_WEIGHTS"

func newProxyCmd(e *env) *cobra.Command {
	var file string
	var c proxyConfig
	var legacy, newer string
	cmd := &cobra.Command{
		Use:   "proxy (--config FILE | --listen ADDR --legacy URL[,URL...] --new URL[,URL...])",
		Short: "Run the embedded proxy alone: a weighted, sticky split between legacy and new that drops nothing",
		Long: `proxy runs cutover's data plane on its own; its weights are set through the
admin API (PUT /v1/weights), by "cutover shift run" with router "proxy" and
setting "admin", or by hand.

Users stick to a side by the cutover-user cookie or, with --sticky-header, by
a hash of that header; raising the new side's weight only moves users from
legacy to new. A request whose connection to one side fails before it was sent
is retried on the other side; an idempotent request (GET, HEAD, OPTIONS or one
with an Idempotency-Key) that the new side fails with a 5xx or a reset is
replayed on legacy, within the retry budget.

Signals: SIGHUP restarts the proxy without refusing a connection (the
listening sockets pass to a new process of the same binary, which takes over
the weights in force); SIGTERM or SIGINT stop accepting, let requests in flight
finish, and exit.

The admin API (on --admin, never on the traffic port) needs the bearer token
from --admin-token-env (default $CUTOVER_PROXY_TOKEN).

On Linux, plain HTTP/1.1 exchanges are served by event loops, one per
GOMAXPROCS, each on its own thread; TLS, HTTP/2, upgrades, request bodies
larger than --max-replay-body or chunked, mirrored requests, fault drills and
HTTPS backends go to a goroutine per connection. CUTOVER_DATAPLANE=goroutine serves
everything that way.`,
		Example: `  export CUTOVER_PROXY_TOKEN=$(openssl rand -hex 16)
  cutover proxy --listen :8080 --admin 127.0.0.1:9090 \
      --legacy http://10.0.1.11:8080,http://10.0.1.12:8080 \
      --new http://payments.payments-prod.svc:8080 --new-weight 10
  curl -H "Authorization: Bearer $CUTOVER_PROXY_TOKEN" -X PUT \
      -d '{"legacy":50,"new":50}' http://127.0.0.1:9090/v1/weights
  cutover proxy --config proxy.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if file != "" {
				for _, name := range []string{"listen", "admin", "legacy", "new", "new-weight", "sticky-header", "sticky-cookie", "retry-budget", "max-replay-body", "upstream-idle-timeout", "response-timeout", "dial-timeout", "admin-token-env", "metrics-public", "pid-file"} {
					if cmd.Flags().Changed(name) {
						return usageError(fmt.Errorf("--config cannot be combined with --%s: put it in the file", name))
					}
				}
				fc, err := loadProxyConfig(file)
				if err != nil {
					return err
				}
				fc.audit = c.audit
				c = fc
			} else {
				c.Legacy = splitList(legacy)
				c.New = splitList(newer)
			}
			return runProxy(cmd.Context(), e, c)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&file, "config", "", "YAML file with the settings below (listen, admin, legacy, new, newWeight, …)")
	fl.StringVar(&c.Listen, "listen", ":8080", "traffic address")
	fl.StringVar(&c.Admin, "admin", "127.0.0.1:9090", "admin API address (\"\" disables it)")
	fl.StringVar(&legacy, "legacy", "", "legacy backends, comma-separated base URLs")
	fl.StringVar(&newer, "new", "", "new backends, comma-separated base URLs")
	fl.IntVar(&c.NewWeight, "new-weight", 0, "initial share of traffic for the new side, percent")
	fl.StringVar(&c.StickyHeader, "sticky-header", "", "keep users on one side by a hash of this header (default: the cutover-user cookie)")
	fl.StringVar(&c.StickyCookie, "sticky-cookie", "", "name of the stickiness cookie (default cutover-user)")
	fl.Float64Var(&c.RetryBudget, "retry-budget", 0, "share of requests per second that may be replayed on legacy (default 1: all; legacy carried all the traffic before the shift)")
	fl.Int64Var(&c.MaxReplayBody, "max-replay-body", 0, "largest request body buffered for a replay, bytes (default 1 MiB)")
	fl.StringVar(&c.UpstreamIdleTimeout, "upstream-idle-timeout", "", "idle keep-alive timeout towards backends; below theirs (default 30s)")
	fl.StringVar(&c.ResponseTimeout, "response-timeout", "", "wait at most this long for a backend's response head; a side that never answers fails after it (default 60s)")
	fl.StringVar(&c.DialTimeout, "dial-timeout", "", "wait at most this long to connect to a backend")
	fl.StringVar(&c.AdminTokenEnv, "admin-token-env", "CUTOVER_PROXY_TOKEN", "environment variable holding the admin token")
	fl.BoolVar(&c.MetricsPublic, "metrics-public", false, "serve /metrics on the admin port without the token")
	fl.StringVar(&c.PIDFile, "pid-file", "", "write the serving process's id here (it changes on restart)")
	addAuditFlags(cmd, &c.audit)
	return cmd
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func loadProxyConfig(file string) (proxyConfig, error) {
	c := proxyConfig{Listen: ":8080", Admin: "127.0.0.1:9090", AdminTokenEnv: "CUTOVER_PROXY_TOKEN"}
	data, err := os.ReadFile(file)
	if err != nil {
		return c, &source.InputError{File: file, Err: fmt.Errorf("cannot read: %w", err)}
	}
	pos, err := source.ParsePositions(file, data)
	if err != nil {
		return c, err
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) && len(te.Errors) > 0 {
			msg := te.Errors[0]
			line := 0
			if rest, ok := strings.CutPrefix(msg, "line "); ok {
				if i := strings.Index(rest, ":"); i > 0 {
					line, _ = strconv.Atoi(rest[:i])
					msg = strings.TrimSpace(rest[i+1:])
				}
			}
			return c, &source.InputError{File: file, Line: line, Field: pos.FieldAt(line), Err: errors.New(msg)}
		}
		return c, source.SyntaxError(file, err)
	}
	if len(c.Legacy) == 0 {
		return c, source.Errorf(file, pos, "legacy", "at least one legacy backend is required")
	}
	if len(c.New) == 0 {
		return c, source.Errorf(file, pos, "new", "at least one new backend is required")
	}
	if c.NewWeight < 0 || c.NewWeight > 100 {
		return c, source.Errorf(file, pos, "newWeight", "%d is outside 0..100", c.NewWeight)
	}
	return c, nil
}

func runProxy(ctx context.Context, e *env, c proxyConfig) error {
	if len(c.Legacy) == 0 || len(c.New) == 0 {
		return usageError(errors.New("--legacy and --new are required (or --config)"))
	}
	if c.NewWeight < 0 || c.NewWeight > 100 {
		return usageError(fmt.Errorf("--new-weight %d is outside 0..100", c.NewWeight))
	}
	token := os.Getenv(c.AdminTokenEnv)
	if c.Admin != "" && token == "" {
		return usageError(fmt.Errorf("the admin API needs a token: export %s (or --admin \"\" to run without it)", c.AdminTokenEnv))
	}
	w := dataplane.Weights{Legacy: 100 - c.NewWeight, New: c.NewWeight}
	if v := os.Getenv(envWeights); v != "" {
		// Started by a restart: keep the weights the previous process had.
		if l, n, ok := strings.Cut(v, "/"); ok {
			li, err1 := strconv.Atoi(l)
			ni, err2 := strconv.Atoi(n)
			if err1 == nil && err2 == nil {
				w = dataplane.Weights{Legacy: li, New: ni}
			}
		}
		os.Unsetenv(envWeights)
	}
	cfg := dataplane.Config{
		Legacy: c.Legacy, New: c.New, Weights: w,
		StickyHeader: c.StickyHeader, StickyCookie: c.StickyCookie,
		RetryBudget: c.RetryBudget, MaxReplayBody: c.MaxReplayBody,
		AdminToken: token, MetricsPublic: c.MetricsPublic,
		Logger: e.log.With("component", "proxy"),
	}
	for _, d := range []struct {
		name, val string
		dst       *time.Duration
	}{
		{"upstream idle timeout", c.UpstreamIdleTimeout, &cfg.UpstreamIdleTimeout},
		{"response timeout", c.ResponseTimeout, &cfg.ResponseHeaderTimeout},
		{"dial timeout", c.DialTimeout, &cfg.DialTimeout},
	} {
		if d.val == "" {
			continue
		}
		v, err := time.ParseDuration(d.val)
		if err != nil || v <= 0 {
			return usageError(fmt.Errorf("%s: %q is not a positive duration", d.name, d.val))
		}
		*d.dst = v
	}
	p, err := dataplane.New(cfg)
	if err != nil {
		return usageError(err)
	}
	upg, err := dataplane.NewUpgrader(dataplane.UpgraderOptions{PIDFile: c.PIDFile})
	if err != nil {
		return err
	}
	defer upg.Close()
	ln, err := upg.Listen("tcp", c.Listen)
	if err != nil {
		return usageError(fmt.Errorf("--listen %s: %w", c.Listen, err))
	}
	go p.Serve(ln)
	// The audit log is held by one process at a time: a process started
	// by a restart waits for the old one to let go of it.
	trail, err := openProxyAudit(ctx, c.audit, upg.HasParent())
	if err != nil {
		return err
	}
	defer func() { trail.close(context.WithoutCancel(ctx), "stopped") }()
	trail.record(ctx, "proxy-started", "", map[string]any{
		"listen": c.Listen, "legacy": c.Legacy, "new": c.New, "weights": w, "restarted": upg.HasParent(),
	})
	var adminSrv *http.Server
	if c.Admin != "" {
		aln, err := upg.Listen("tcp", c.Admin)
		if err != nil {
			return usageError(fmt.Errorf("--admin %s: %w", c.Admin, err))
		}
		adminSrv = &http.Server{Handler: trail.wrap(p, p.AdminHandler()), ReadHeaderTimeout: 10 * time.Second}
		go adminSrv.Serve(aln)
	}
	restarted := upg.HasParent()
	if err := upg.Ready(); err != nil {
		return err
	}
	e.log.Info("proxy serving", "listen", ln.Addr().String(), "admin", c.Admin, "weights", fmt.Sprintf("%d/%d", w.Legacy, w.New), "restarted", restarted)

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for done := false; !done; {
		select {
		case <-hup:
			cur := p.Weights()
			os.Setenv(envWeights, fmt.Sprintf("%d/%d", cur.Legacy, cur.New))
			trail.record(ctx, "proxy-restart", "", map[string]any{"weights": cur})
			trail.release(ctx) // the new process takes the audit log over
			uctx, cancel := context.WithTimeout(ctx, time.Minute)
			err := upg.Upgrade(uctx)
			cancel()
			os.Unsetenv(envWeights)
			if err != nil {
				e.log.Error("restart failed; this process keeps serving", "err", err)
				if rerr := trail.reopen(ctx); rerr != nil {
					e.log.Error("audit log", "err", rerr)
				}
			}
		case <-upg.Exit():
			e.log.Info("a new process took over the sockets; draining")
			done = true
		case <-ctx.Done():
			e.log.Info("stopping: draining requests in flight")
			done = true
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if adminSrv != nil {
		adminSrv.Shutdown(sctx)
	}
	if err := p.Shutdown(sctx); err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}

// proxyAudit records what the standalone proxy is told to do through its
// admin API: weights, mirroring and faults, with the caller's address,
// and the weights read back after each change.
type proxyAudit struct {
	flags auditFlags
	mu    sync.Mutex
	log   audit.Log
}

func openProxyAudit(ctx context.Context, f auditFlags, restarted bool) (*proxyAudit, error) {
	t := &proxyAudit{flags: f}
	if !f.enabled() {
		return t, nil
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		l, err := f.open(ctx, "")
		if err == nil {
			t.log = l
			return t, nil
		}
		if !restarted || !errors.Is(err, auditfile.ErrLocked) || time.Now().After(deadline) {
			return nil, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (t *proxyAudit) record(ctx context.Context, kind, actor string, data any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.log == nil {
		return
	}
	r := audit.Record{Kind: kind, Actor: actor}
	if err := r.SetData(data); err == nil {
		if _, err := t.log.Append(ctx, r); err != nil {
			slog.Default().Error("audit log", "kind", kind, "err", err)
		}
	}
}

func (t *proxyAudit) release(ctx context.Context) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.log != nil {
		t.log.Close(ctx)
		t.log = nil
	}
}

func (t *proxyAudit) reopen(ctx context.Context) error {
	if !t.flags.enabled() {
		return nil
	}
	l, err := t.flags.open(ctx, "")
	if err != nil {
		return err
	}
	t.mu.Lock()
	t.log = l
	t.mu.Unlock()
	return nil
}

func (t *proxyAudit) close(ctx context.Context, why string) {
	t.record(ctx, "proxy-"+why, "", map[string]any{})
	t.release(ctx)
}

// wrap records every change made through the admin API that succeeded.
func (t *proxyAudit) wrap(p *dataplane.Proxy, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead || !t.flags.enabled() {
			h.ServeHTTP(w, r)
			return
		}
		body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		before := p.Weights()
		h.ServeHTTP(rec, r)
		if rec.status/100 != 2 {
			return
		}
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		actor := "proxy-admin@" + host
		switch r.URL.Path {
		case "/v1/weights":
			got := p.Weights()
			t.record(r.Context(), audit.KindWeightConfirmed, actor, map[string]any{"before": before, "asked": json.RawMessage(body), "got": got})
		case "/v1/mirror":
			t.record(r.Context(), "mirror-set", actor, map[string]any{"asked": json.RawMessage(body)})
		case "/v1/faults":
			t.record(r.Context(), "fault-set", actor, map[string]any{"method": r.Method, "asked": json.RawMessage(orEmptyJSON(body))})
		default:
			t.record(r.Context(), "admin-change", actor, map[string]any{"method": r.Method, "path": r.URL.Path})
		}
	})
}

func orEmptyJSON(b []byte) []byte {
	if len(bytes.TrimSpace(b)) == 0 || !json.Valid(b) {
		return []byte("{}")
	}
	return b
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}
