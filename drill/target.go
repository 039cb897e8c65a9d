package drill

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
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

// remote is a running `cutover shift run`, through its admin API.
type remote struct {
	faulter
	shift *client
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
	var out []shift.TimedEvent
	err := r.shift.do(ctx, http.MethodGet, "/v1/shift/events?since="+url.QueryEscape(since.UTC().Format(time.RFC3339Nano)), nil, &out)
	return out, err
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
