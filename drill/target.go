package drill

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cutoverhq/cutover/proxy"
	"github.com/cutoverhq/cutover/shift"
)

// faulter injects faults into one proxy.
type faulter interface {
	SetFaults(ctx context.Context, fs proxy.Faults) (proxy.FaultsState, error)
	Faults(ctx context.Context) (proxy.FaultsState, error)
	ClearFaults(ctx context.Context) error
}

// localFaults is an in-process proxy.
type localFaults struct{ p *proxy.Proxy }

func (l localFaults) SetFaults(ctx context.Context, fs proxy.Faults) (proxy.FaultsState, error) {
	if err := l.p.SetFaults(fs); err != nil {
		return proxy.FaultsState{}, err
	}
	return l.p.Faults(), nil
}

func (l localFaults) Faults(ctx context.Context) (proxy.FaultsState, error) { return l.p.Faults(), nil }

func (l localFaults) ClearFaults(ctx context.Context) error { return l.p.SetFaults(proxy.Faults{}) }

// client calls an admin API with a bearer token.
type client struct {
	base, token string
	hc          *http.Client
}

func newClient(base, token string) *client {
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	return &client{base: strings.TrimRight(base, "/"), token: token, hc: &http.Client{Timeout: 10 * time.Second}}
}

func (c *client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("admin API %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return fmt.Errorf("admin API %s refused the token (401)", c.base)
	case resp.StatusCode == http.StatusNotFound && strings.HasPrefix(path, "/v1/faults"):
		return fmt.Errorf("admin API %s has no /v1/faults: the shift's router is not an in-process proxy (give the proxy's own admin API with --proxy-admin) or the binary predates fault injection", c.base)
	case resp.StatusCode/100 != 2:
		return fmt.Errorf("admin API %s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(data)))
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("admin API %s %s: bad answer: %w", method, path, err)
		}
	}
	return nil
}

// adminFaults is a proxy's admin API (`cutover proxy --admin`, or the
// admin API of `cutover shift run` with an in-process proxy).
type adminFaults struct{ c *client }

func (a adminFaults) SetFaults(ctx context.Context, fs proxy.Faults) (proxy.FaultsState, error) {
	var out proxy.FaultsState
	err := a.c.do(ctx, http.MethodPut, "/v1/faults", fs, &out)
	return out, err
}

func (a adminFaults) Faults(ctx context.Context) (proxy.FaultsState, error) {
	var out proxy.FaultsState
	err := a.c.do(ctx, http.MethodGet, "/v1/faults", nil, &out)
	return out, err
}

func (a adminFaults) ClearFaults(ctx context.Context) error {
	return a.c.do(ctx, http.MethodDelete, "/v1/faults", nil, nil)
}

// remote is a running `cutover shift run`, through its admin API. It
// streams the shift's events (GET /v1/shift/stream) while a drill runs,
// besides polling them: a shift run ends its process, admin API included,
// moments after the shift ends, and a poll alone would miss how it ended.
type remote struct {
	faulter
	shift *client

	mu   sync.Mutex
	seen map[string]bool
	log  []shift.TimedEvent
	// gone is when the event stream was cut by the other end: the shift's
	// process ended. Zero while it lasts, or after Watch's stop.
	gone time.Time
}

// Remote is the shift served by a `cutover shift run` admin API at
// adminURL. Faults go to the same admin API (which serves the in-process
// proxy's /v1/faults) unless proxyAdmin names a `cutover proxy` admin API
// (for a shift driving a proxy process), with proxyToken.
func Remote(adminURL, token, proxyAdmin, proxyToken string) Target {
	r := &remote{shift: newClient(adminURL, token)}
	r.faulter = adminFaults{r.shift}
	if proxyAdmin != "" {
		r.faulter = adminFaults{newClient(proxyAdmin, proxyToken)}
	}
	return r
}

func (r *remote) Status(ctx context.Context) (shift.Status, error) {
	var st shift.Status
	err := r.shift.do(ctx, http.MethodGet, "/v1/shift", nil, &st)
	return st, err
}

func (r *remote) Events(ctx context.Context, since time.Time) ([]shift.TimedEvent, error) {
	var polled []shift.TimedEvent
	err := r.shift.do(ctx, http.MethodGet, "/v1/shift/events?since="+url.QueryEscape(since.UTC().Format(time.RFC3339Nano)), nil, &polled)
	r.add(polled...)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil && len(r.log) == 0 {
		return nil, err
	}
	var out []shift.TimedEvent
	for _, e := range r.log {
		if e.Time.After(since) {
			out = append(out, e)
		}
	}
	return out, nil
}

// add records events not seen before, in time order.
func (r *remote) add(evs ...shift.TimedEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen == nil {
		r.seen = map[string]bool{}
	}
	for _, e := range evs {
		key := e.Time.UTC().Format(time.RFC3339Nano) + "\x00" + e.Event.Type + "\x00" + e.Event.Message
		if r.seen[key] {
			continue
		}
		r.seen[key] = true
		i := len(r.log)
		for i > 0 && r.log[i-1].Time.After(e.Time) {
			i--
		}
		r.log = slices.Insert(r.log, i, e)
	}
}

// Watch streams the shift's events until the returned stop is called. It
// returns once the stream is open, or at once with polling only when it
// cannot be opened.
func (r *remote) Watch(ctx context.Context) (stop func(), err error) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.shift.base+"/v1/shift/stream", nil)
	if err != nil {
		cancel()
		return func() {}, err
	}
	req.Header.Set("Authorization", "Bearer "+r.shift.token)
	// No client timeout: the stream lasts the drill; stop ends it.
	resp, err := (&http.Client{}).Do(req)
	if err != nil {
		cancel()
		return func() {}, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		cancel()
		return func() {}, fmt.Errorf("GET /v1/shift/stream: %s", resp.Status)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			var e shift.TimedEvent
			if json.Unmarshal([]byte(data), &e) == nil {
				r.add(e)
			}
		}
		if ctx.Err() == nil {
			r.mu.Lock()
			r.gone = time.Now()
			r.mu.Unlock()
		}
	}()
	return func() { cancel(); <-done }, nil
}

// Gone is when the shift's process ended the event stream; zero if it
// has not.
func (r *remote) Gone() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gone
}

// local is a shift running in this process.
type local struct {
	faulter
	runner *shift.Runner
	hist   *shift.History
}

func (l *local) Status(ctx context.Context) (shift.Status, error) {
	return l.runner.Status(l.hist), nil
}

func (l *local) Events(ctx context.Context, since time.Time) ([]shift.TimedEvent, error) {
	var out []shift.TimedEvent
	for _, e := range l.hist.Events() {
		if e.Time.After(since) {
			out = append(out, e)
		}
	}
	return out, nil
}
