// Package proxy is the router for cutover's embedded data plane: either an
// in-process proxy the router starts itself (setting "listen"), or a
// `cutover proxy` running elsewhere, driven through its admin API
// (setting "admin").
package proxy

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	dataplane "github.com/cutoverhq/cutover/proxy"
	"github.com/cutoverhq/cutover/router"
)

func init() { router.Register("proxy", New) }

// Settings are the plan's router settings for type "proxy".
type Settings struct {
	// Listen starts an in-process proxy on this address ("127.0.0.1:8080",
	// ":8080"). Exactly one of Listen and Admin is set.
	Listen string `yaml:"listen"`
	// Admin is the admin API URL of a running `cutover proxy`.
	Admin string `yaml:"admin"`
	// TokenEnv names the environment variable holding the remote proxy's
	// admin token; "" means CUTOVER_PROXY_TOKEN.
	TokenEnv string `yaml:"tokenEnv"`
	// StickyCookie and StickyHeader choose how users stick to a side (see
	// package proxy); "" means the cookie "cutover-user".
	StickyCookie string `yaml:"stickyCookie"`
	StickyHeader string `yaml:"stickyHeader"`
	// MaxReplayBody is the largest request body buffered for a replay on
	// the other side; zero means 1 MiB.
	MaxReplayBody int64 `yaml:"maxReplayBody"`
	// RetryBudget is the share of requests per second that may be retried
	// or replayed; zero means 1 (all: legacy carried all the traffic before).
	RetryBudget float64 `yaml:"retryBudget"`
	// UpstreamIdleTimeout closes idle upstream connections; keep it below
	// the backends' own keep-alive timeout. Zero means 30s.
	UpstreamIdleTimeout string `yaml:"upstreamIdleTimeout"`
	// ResponseTimeout bounds the wait for a backend's response head; a
	// side that accepts requests and never answers (a blackhole) is
	// failed after it, and idempotent requests are replayed. Zero means
	// 60s; set it just above the service's slowest legitimate answer.
	ResponseTimeout string `yaml:"responseTimeout"`
	// DialTimeout bounds connecting to a backend; zero means the proxy's
	// default.
	DialTimeout string `yaml:"dialTimeout"`
}

// Router drives the embedded proxy.
type Router struct {
	local  *dataplane.Proxy
	ln     net.Listener
	remote string
	// token is the remote proxy's admin token or, for an in-process
	// proxy, a random one only this router knows: callers of AdminHandler
	// authenticate with their own tokens first.
	token string
	hc    *http.Client
}

var (
	_ router.Router   = (*Router)(nil)
	_ router.Mirrorer = (*Router)(nil)
	_ router.Checker  = (*Router)(nil)
	_ router.Closer   = (*Router)(nil)
)

// New builds the router from the plan's settings.
func New(ctx context.Context, b router.Backends, decode func(v any) error) (router.Router, error) {
	var s Settings
	if err := decode(&s); err != nil {
		return nil, err
	}
	switch {
	case s.Listen != "" && s.Admin != "":
		return nil, errors.New("set listen (an in-process proxy) or admin (a running cutover proxy), not both")
	case s.Admin != "":
		env := s.TokenEnv
		if env == "" {
			env = "CUTOVER_PROXY_TOKEN"
		}
		tok := os.Getenv(env)
		if tok == "" {
			return nil, fmt.Errorf("the remote proxy's admin token is not set: export %s", env)
		}
		return &Router{remote: strings.TrimRight(s.Admin, "/"), token: tok, hc: &http.Client{Timeout: 5 * time.Second}}, nil
	case s.Listen == "":
		return nil, errors.New("set listen (an in-process proxy) or admin (a running cutover proxy)")
	}
	internal, err := randomToken()
	if err != nil {
		return nil, err
	}
	cfg := dataplane.Config{
		AdminToken:    internal,
		Legacy:        b.Legacy,
		New:           b.New,
		Weights:       dataplane.Weights{Legacy: 100, New: 0},
		StickyCookie:  s.StickyCookie,
		StickyHeader:  s.StickyHeader,
		MaxReplayBody: s.MaxReplayBody,
		RetryBudget:   s.RetryBudget,
	}
	for _, d := range []struct {
		name string
		val  string
		dst  *time.Duration
	}{
		{"upstreamIdleTimeout", s.UpstreamIdleTimeout, &cfg.UpstreamIdleTimeout},
		{"responseTimeout", s.ResponseTimeout, &cfg.ResponseHeaderTimeout},
		{"dialTimeout", s.DialTimeout, &cfg.DialTimeout},
	} {
		if d.val == "" {
			continue
		}
		v, err := time.ParseDuration(d.val)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("%s: %q is not a positive duration", d.name, d.val)
		}
		*d.dst = v
	}
	p, err := dataplane.New(cfg)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", s.Listen)
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("listen %s: %w", s.Listen, err)
	}
	go func() {
		if err := p.Serve(ln); err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, dataplane.ErrClosed) {
			slog.Default().Error("embedded proxy stopped", "err", err)
		}
	}()
	return &Router{local: p, ln: ln, token: internal}, nil
}

func randomToken() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// NewLocal wraps a proxy the caller runs (the demo, tests); token is the
// proxy's AdminToken ("" when its admin API is not used).
func NewLocal(p *dataplane.Proxy, token string) *Router { return &Router{local: p, token: token} }

// Proxy returns the in-process proxy, or nil for a remote one; the
// embedded metrics provider reads its statistics.
func (r *Router) Proxy() *dataplane.Proxy { return r.local }

// Addr is the in-process proxy's traffic address, or "".
func (r *Router) Addr() string {
	if r.ln == nil {
		return ""
	}
	return r.ln.Addr().String()
}

// SetWeights sets the split.
func (r *Router) SetWeights(ctx context.Context, w router.Weights) error {
	if err := w.Validate(); err != nil {
		return err
	}
	if r.local != nil {
		return r.local.SetWeights(dataplane.Weights{Legacy: w.Legacy, New: w.New})
	}
	return r.call(ctx, http.MethodPut, "/v1/weights", w, nil)
}

// Weights reads the split back from the data plane.
func (r *Router) Weights(ctx context.Context) (router.Weights, error) {
	if r.local != nil {
		w := r.local.Weights()
		return router.Weights{Legacy: w.Legacy, New: w.New}, nil
	}
	var w router.Weights
	err := r.call(ctx, http.MethodGet, "/v1/weights", nil, &w)
	return w, err
}

// SetMirror sets the share of requests copied to the new side.
func (r *Router) SetMirror(ctx context.Context, percent int) error {
	if r.local != nil {
		return r.local.SetMirror(percent)
	}
	return r.call(ctx, http.MethodPut, "/v1/mirror", map[string]int{"percent": percent}, nil)
}

// Check reads the weights once.
func (r *Router) Check(ctx context.Context) error {
	_, err := r.Weights(ctx)
	return err
}

// AdminHandler serves the in-process proxy's admin API (weights, mirror,
// stats, metrics) with the proxy's own token added: the caller must
// authenticate requests before they reach it. A remote proxy has its own
// admin API; this answers 404 for it.
func (r *Router) AdminHandler() http.Handler {
	if r.local == nil {
		return http.NotFoundHandler()
	}
	h := r.local.AdminHandler()
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		req = req.Clone(req.Context())
		req.Header.Set("Authorization", "Bearer "+r.token)
		h.ServeHTTP(w, req)
	})
}

// SideStats is one side's statistics as a remote proxy's admin API
// reports them (GET /v1/stats).
type SideStats struct {
	Requests  uint64    `json:"requests"`
	Errors    uint64    `json:"errors"`
	Latencies uint64    `json:"latencies"`
	P50       float64   `json:"p50_seconds"`
	P99       float64   `json:"p99_seconds"`
	Samples   []float64 `json:"samples_seconds"`
}

// RemoteStats asks a remote proxy for both sides' statistics over the
// last window.
func (r *Router) RemoteStats(ctx context.Context, window time.Duration) (map[string]SideStats, error) {
	if r.remote == "" {
		return nil, errors.New("not a remote proxy")
	}
	var out struct {
		Sides map[string]SideStats `json:"sides"`
	}
	w := window.Round(100 * time.Millisecond)
	if w <= 0 {
		w = 100 * time.Millisecond
	}
	if err := r.call(ctx, http.MethodGet, "/v1/stats?samples=1&window="+w.String(), nil, &out); err != nil {
		return nil, err
	}
	return out.Sides, nil
}

// Close stops an in-process proxy, letting in-flight requests finish.
func (r *Router) Close() error {
	if r.local == nil || r.ln == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return r.local.Shutdown(ctx)
}

func (r *Router) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, r.remote+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+r.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.hc.Do(req)
	if err != nil {
		return fmt.Errorf("proxy admin API %s: %w", r.remote, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("proxy admin API %s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(data)))
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}
