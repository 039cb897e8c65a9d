// Package nginx is the router for NGINX (open source): it renders the
// service's upstream block, with weights, into an include file, checks
// the whole configuration with `nginx -t`, reloads NGINX, and waits until
// the workers serve the new configuration.
//
// NGINX has no API to read an upstream's weights back, so the include file
// also holds a small server block whose status location answers with the
// generation and the weights of the configuration the answering worker
// runs: Weights reads that, the live data plane, never the file.
//
// Every reload starts new worker processes while the old ones finish
// their connections; frequent steps therefore cost memory for as long as
// long-lived connections keep old workers, unless worker_shutdown_timeout
// bounds it. Check says so when it is not set.
package nginx

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cutoverhq/cutover/router"
)

func init() { router.Register("nginx", New) }

// Settings are the plan's router settings for type "nginx".
type Settings struct {
	// Include is the file the router writes: the upstream block and the
	// status server. nginx.conf includes it inside http {}. Required.
	Include string `yaml:"include"`
	// Upstream names the upstream block that proxy_pass refers to; ""
	// means the plan's service name.
	Upstream string `yaml:"upstream"`
	// Status is the address (host:port, loopback) the status server in
	// the include file listens on and the router reads the live weights
	// from. Several services may share one. Required.
	Status string `yaml:"status"`
	// Config is the main configuration file, passed as `-c` to nginx -t
	// and nginx -s reload; "" means nginx's compiled-in default
	// (/etc/nginx/nginx.conf on Debian).
	Config string `yaml:"config"`
	// Prefix is passed as `-p`; "" means nginx's compiled-in prefix.
	Prefix string `yaml:"prefix"`
	// Nginx is the nginx binary; "" means nginx on $PATH, else
	// /usr/sbin/nginx.
	Nginx string `yaml:"nginx"`
	// TestCommand replaces `nginx -t` (for example, ["docker", "exec",
	// "edge", "nginx", "-t"]); nil means nginx -t with Config and Prefix.
	TestCommand []string `yaml:"testCommand"`
	// ReloadCommand replaces the reload (["systemctl", "reload",
	// "nginx"]); nil means SIGHUP to the master in PidFile when that is
	// set, else `nginx -s reload` with Config and Prefix.
	ReloadCommand []string `yaml:"reloadCommand"`
	// PidFile is the master's pid file, signalled with SIGHUP to reload;
	// "" means not used.
	PidFile string `yaml:"pidFile"`
	// ServerParams are appended to every server line ("max_fails=3
	// fail_timeout=10s"); "" means none.
	ServerParams string `yaml:"serverParams"`
	// Directives are extra lines of the upstream block, without their
	// semicolon ("keepalive 32", "hash $cookie_user consistent"); nil
	// means none.
	Directives []string `yaml:"directives"`
	// ReloadTimeout bounds the wait for the workers to serve a new
	// configuration; "" means 10s.
	ReloadTimeout string `yaml:"reloadTimeout"`
}

// Router drives one upstream block.
type Router struct {
	f             file
	include       string
	config        string
	prefix        string
	nginx         string
	testCmd       []string
	reloadCmd     []string
	pidFile       string
	reloadTimeout time.Duration
	hc            *http.Client
	// mu keeps two SetWeights of this process from interleaving.
	mu sync.Mutex
}

var (
	_ router.Router  = (*Router)(nil)
	_ router.Checker = (*Router)(nil)
)

// New builds the router from the plan's settings. It does not touch
// NGINX: Check and every call do.
func New(ctx context.Context, b router.Backends, decode func(v any) error) (router.Router, error) {
	var s Settings
	if err := decode(&s); err != nil {
		return nil, err
	}
	if s.Include == "" {
		return nil, errors.New("set include: the file the router writes the upstream block into (nginx.conf includes it inside http {})")
	}
	if s.Status == "" {
		return nil, errors.New("set status: a loopback host:port for the status server the include file defines (127.0.0.1:8099); the router reads the live weights there")
	}
	if _, _, err := net.SplitHostPort(s.Status); err != nil {
		return nil, fmt.Errorf("status %q is not host:port", s.Status)
	}
	up := s.Upstream
	if up == "" {
		up = b.Service
	}
	if !validName(up) {
		return nil, fmt.Errorf("upstream %q is not a name NGINX and cutover both take (letters, digits, - _ .): set upstream", up)
	}
	for _, d := range s.Directives {
		if !validDirective(d) {
			return nil, fmt.Errorf("directive %q must be one directive without ; { } # or a newline", d)
		}
	}
	if s.ServerParams != "" && !validDirective(s.ServerParams) {
		return nil, fmt.Errorf("serverParams %q must be parameters without ; { } # or a newline", s.ServerParams)
	}
	timeout := 10 * time.Second
	if s.ReloadTimeout != "" {
		d, err := time.ParseDuration(s.ReloadTimeout)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("reloadTimeout %q is not a positive duration (10s)", s.ReloadTimeout)
		}
		timeout = d
	}
	r := &Router{
		f:             file{upstream: up, directives: s.Directives, serverParams: s.ServerParams, status: s.Status, service: b.Service},
		include:       s.Include,
		config:        s.Config,
		prefix:        s.Prefix,
		nginx:         s.Nginx,
		testCmd:       s.TestCommand,
		reloadCmd:     s.ReloadCommand,
		pidFile:       s.PidFile,
		reloadTimeout: timeout,
		hc: &http.Client{
			Timeout: 2 * time.Second,
			// A fresh connection each time: a kept one could stay with a
			// worker of the configuration before the reload.
			Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
		},
	}
	seen := map[string]string{}
	for _, side := range []struct {
		name  string
		addrs []string
		out   *[]string
	}{{"legacy", b.Legacy, &r.f.legacy}, {"new", b.New, &r.f.newer}} {
		if len(side.addrs) == 0 {
			return nil, fmt.Errorf("the %s side has no address", side.name)
		}
		for _, a := range side.addrs {
			ua, err := upstreamAddr(a)
			if err != nil {
				return nil, fmt.Errorf("%s address %q %v", side.name, a, err)
			}
			if prev, dup := seen[ua]; dup {
				return nil, fmt.Errorf("%s is named twice (%s and %s side)", ua, prev, side.name)
			}
			seen[ua] = side.name
			*side.out = append(*side.out, ua)
		}
	}
	return r, nil
}

// Weights reads the split from a worker of the running configuration.
func (r *Router) Weights(ctx context.Context) (router.Weights, error) {
	st, err := r.live(ctx)
	if err != nil {
		return router.Weights{}, err
	}
	return router.Weights{Legacy: st.Weights[0], New: st.Weights[1]}, nil
}

// live asks the status server which configuration a worker runs.
func (r *Router) live(ctx context.Context) (status, error) {
	url := "http://" + r.f.status + r.f.location()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return status{}, err
	}
	req.Host = r.f.serverName()
	resp, err := r.hc.Do(req)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return status{}, fmt.Errorf("nginx status %s: %w", url, cerr)
		}
		return status{}, fmt.Errorf("nginx status %s does not answer (is nginx running with %s included?): %v", url, r.include, unwrapURL(err))
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return status{}, fmt.Errorf("nginx status %s answers %s: the running configuration has no status location for upstream %s (is %s included inside http {}?)", url, resp.Status, r.f.upstream, r.include)
	}
	st, err := parseStatus(string(body))
	if err != nil {
		return status{}, fmt.Errorf("nginx status %s: %v", url, err)
	}
	if st.Upstream != r.f.upstream {
		return status{}, fmt.Errorf("nginx status %s reports upstream %s, not %s", url, st.Upstream, r.f.upstream)
	}
	return st, nil
}

func unwrapURL(err error) error {
	var ue interface{ Unwrap() error }
	for errors.As(err, &ue) {
		inner := ue.Unwrap()
		if inner == nil {
			break
		}
		err = inner
	}
	return err
}

// SetWeights writes the include file for w, tests the configuration,
// reloads NGINX and waits until its workers serve the new weights. When
// nginx -t or the reload fails, the previous file is put back. Weights
// the workers already serve cause no reload.
func (r *Router) SetWeights(ctx context.Context, w router.Weights) error {
	if err := w.Validate(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	gen, err := generation()
	if err != nil {
		return err
	}
	content, want := r.f.render(w.New, gen)
	old, oldErr := os.ReadFile(r.include)
	existed := oldErr == nil
	if oldErr != nil && !errors.Is(oldErr, os.ErrNotExist) {
		return fmt.Errorf("nginx include file: %w", oldErr)
	}
	if live, err := r.live(ctx); err == nil && live.Digest == want.Digest {
		// The workers already serve these weights: a reload would only
		// cost new workers. Make sure the file says the same, so that the
		// next reload, by anyone, keeps them.
		if existed {
			if onDisk, err := parseHeader(string(old)); err == nil && onDisk.Digest == want.Digest {
				return nil
			}
		}
		content, _ = r.f.render(w.New, live.Generation)
		return r.replace(ctx, content, old, existed, false)
	}
	if err := r.replace(ctx, content, old, existed, true); err != nil {
		return err
	}
	return r.waitLive(ctx, want)
}

// replace writes the include file atomically, tests the configuration
// and, when reload is set, reloads; on failure it puts the old file back.
func (r *Router) replace(ctx context.Context, content, old []byte, existed, reload bool) error {
	if err := writeAtomic(r.include, content); err != nil {
		return fmt.Errorf("nginx include file: %w", err)
	}
	restore := func(cause error) error {
		var rerr error
		if existed {
			rerr = writeAtomic(r.include, old)
		} else {
			rerr = os.Remove(r.include)
		}
		if rerr != nil {
			return fmt.Errorf("%w (and putting the previous %s back failed: %v)", cause, r.include, rerr)
		}
		return fmt.Errorf("%w (previous %s put back)", cause, r.include)
	}
	if _, err := r.run(ctx, r.testArgs(false)); err != nil {
		return restore(fmt.Errorf("nginx -t refused the new upstream: %w", err))
	}
	if !reload {
		return nil
	}
	if err := r.reload(ctx); err != nil {
		return restore(fmt.Errorf("nginx reload: %w", err))
	}
	return nil
}

// waitLive polls the status location until workers answer with the new
// generation three times in a row, each on a fresh connection: just after
// a reload an old worker may still take one.
func (r *Router) waitLive(ctx context.Context, want status) error {
	deadline := time.Now().Add(r.reloadTimeout)
	var last status
	var lastErr error
	streak := 0
	for {
		st, err := r.live(ctx)
		switch {
		case err == nil && st.Generation == want.Generation:
			streak++
			if streak == 3 {
				return nil
			}
			continue
		case err == nil:
			last, lastErr, streak = st, nil, 0
		default:
			lastErr, streak = err, 0
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("waiting for nginx to serve %v: %w", router.Weights{Legacy: want.Weights[0], New: want.Weights[1]}, err)
		}
		if time.Now().After(deadline) {
			if lastErr != nil {
				return fmt.Errorf("nginx reloaded, but the new configuration is not seen within %v: %v", r.reloadTimeout, lastErr)
			}
			return fmt.Errorf("nginx reloaded, but its workers still serve generation %s (legacy %d%% / new %d%%) after %v: see nginx's error log", last.Generation, last.Weights[0], last.Weights[1], r.reloadTimeout)
		}
		select {
		case <-ctx.Done():
		case <-time.After(25 * time.Millisecond):
		}
	}
}

func generation() (string, error) {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return strconv.FormatInt(time.Now().UnixNano(), 36) + "-" + hex.EncodeToString(b), nil
}

// writeAtomic replaces path with data: a temporary file in the same
// directory, synced, then renamed over it, so NGINX never reads half a
// file. The file keeps its mode (0644 for a new one).
func writeAtomic(path string, data []byte) error {
	mode := os.FileMode(0o644)
	if fi, err := os.Stat(path); err == nil {
		mode = fi.Mode().Perm()
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	defer os.Remove(name) // after the rename, a no-op
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(name, path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

func (r *Router) bin() string {
	if r.nginx != "" {
		return r.nginx
	}
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	return "/usr/sbin/nginx"
}

// nginxArgs are the binary with -p and -c, as the settings give them.
func (r *Router) nginxArgs(extra ...string) []string {
	args := []string{r.bin()}
	if r.prefix != "" {
		args = append(args, "-p", r.prefix)
	}
	if r.config != "" {
		args = append(args, "-c", r.config)
	}
	return append(args, extra...)
}

// testArgs is the configuration test; dump asks for -T, which also
// prints every configuration file.
func (r *Router) testArgs(dump bool) []string {
	if r.testCmd != nil {
		return r.testCmd
	}
	if dump {
		return r.nginxArgs("-T")
	}
	return r.nginxArgs("-t", "-q")
}

func (r *Router) reload(ctx context.Context) error {
	switch {
	case r.reloadCmd != nil:
		_, err := r.run(ctx, r.reloadCmd)
		return err
	case r.pidFile != "":
		b, err := os.ReadFile(r.pidFile)
		if err != nil {
			return fmt.Errorf("pid file: %w", err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 1 {
			return fmt.Errorf("pid file %s holds %q, not a pid", r.pidFile, strings.TrimSpace(string(b)))
		}
		if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
			return fmt.Errorf("signal the master (pid %d from %s): %w", pid, r.pidFile, err)
		}
		return nil
	}
	_, err := r.run(ctx, r.nginxArgs("-s", "reload"))
	return err
}

// run runs a command; its error is one line: the command and what NGINX
// said that matters most ([emerg] first).
func (r *Router) run(ctx context.Context, argv []string) ([]byte, error) {
	if len(argv) == 0 {
		return nil, errors.New("empty command")
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return nil, fmt.Errorf("%s: %w", strings.Join(argv, " "), cerr)
		}
		msg := keyLine(stderr.String())
		if msg == "" {
			msg = keyLine(stdout.String())
		}
		if msg == "" {
			msg = err.Error()
		}
		return nil, fmt.Errorf("%s: %s", filepath.Base(argv[0])+" "+strings.Join(argv[1:], " "), msg)
	}
	return stdout.Bytes(), nil
}

// keyLine picks the line of NGINX's output that says what is wrong.
func keyLine(out string) string {
	var last string
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		for _, lvl := range []string{"[emerg]", "[alert]", "[crit]"} {
			if i := strings.Index(l, lvl); i >= 0 {
				// Drop the "pid#tid: " NGINX puts after the level.
				msg := strings.TrimSpace(l[i+len(lvl):])
				if p, rest, ok := strings.Cut(msg, ": "); ok && strings.Trim(p, "0123456789#") == "" {
					msg = rest
				}
				return lvl + " " + msg
			}
		}
		last = l
	}
	return strings.TrimPrefix(last, "nginx: ")
}
