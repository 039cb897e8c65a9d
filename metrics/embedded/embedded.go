// Package embedded is the metrics provider that reads the embedded proxy's
// own per-side statistics, in process: no scrape interval stands between a
// failing request and the judge, which is what makes a rollback within a
// second possible.
package embedded

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/cutoverhq/cutover/metrics"
	dataplane "github.com/cutoverhq/cutover/proxy"
	routerproxy "github.com/cutoverhq/cutover/router/proxy"
)

func init() { metrics.Register("embedded", New) }

// Source is what the provider reads: the router of type "proxy", running
// an in-process proxy or driving a remote one.
type Source interface {
	Proxy() *dataplane.Proxy
	RemoteStats(ctx context.Context, window time.Duration) (map[string]routerproxy.SideStats, error)
}

// Provider reads windows of the proxy's statistics: in process when the
// proxy runs here, else from the remote proxy's admin API (windows then end
// now, whatever the query's end).
type Provider struct {
	stats  *dataplane.Stats
	remote Source
}

var (
	_ metrics.Provider = (*Provider)(nil)
	_ metrics.Checker  = (*Provider)(nil)
)

// New builds the provider; it takes no settings.
func New(ctx context.Context, env metrics.Env, decode func(v any) error) (metrics.Provider, error) {
	var none struct{}
	if err := decode(&none); err != nil {
		return nil, err
	}
	src, ok := env.Local.(Source)
	if !ok {
		return nil, errors.New(`the embedded metrics need the router "proxy"; use prometheus or cloudwatch with other routers`)
	}
	if src.Proxy() == nil {
		return &Provider{remote: src}, nil
	}
	return &Provider{stats: src.Proxy().Stats()}, nil
}

// NewFor reads the given proxy's statistics directly.
func NewFor(p *dataplane.Proxy) *Provider { return &Provider{stats: p.Stats()} }

// Check reads the statistics once.
func (p *Provider) Check(ctx context.Context) error {
	if p.remote == nil {
		return nil
	}
	_, err := p.remote.RemoteStats(ctx, time.Second)
	return err
}

// Observe returns one side's requests, errors, p50/p99 and latency sample
// over the query's window.
func (p *Provider) Observe(ctx context.Context, q metrics.Query) (metrics.Observation, error) {
	side := dataplane.SideLegacy
	switch q.Side {
	case metrics.Legacy:
	case metrics.New:
		side = dataplane.SideNew
	default:
		return metrics.NoData(), errors.New("unknown side " + string(q.Side))
	}
	if p.remote != nil {
		all, err := p.remote.RemoteStats(ctx, q.End.Sub(q.Start))
		if err != nil {
			return metrics.NoData(), err
		}
		s, ok := all[string(q.Side)]
		if !ok {
			return metrics.NoData(), fmt.Errorf("the proxy's stats have no side %q", q.Side)
		}
		o := metrics.Observation{Requests: float64(s.Requests), Errors: float64(s.Errors), P50: math.NaN(), P99: math.NaN(), Latencies: s.Samples}
		if s.Latencies > 0 {
			o.P50, o.P99 = s.P50, s.P99
		}
		return o, nil
	}
	w := p.stats.Window(side, q.Start, q.End)
	o := metrics.Observation{Requests: float64(w.Requests), Errors: float64(w.Errors), P50: math.NaN(), P99: math.NaN()}
	if w.Latencies > 0 {
		o.P50, o.P99 = w.P50.Seconds(), w.P99.Seconds()
	}
	if len(w.Samples) > 0 {
		o.Latencies = make([]float64, len(w.Samples))
		for i, d := range w.Samples {
			o.Latencies[i] = d.Seconds()
		}
	}
	return o, nil
}
