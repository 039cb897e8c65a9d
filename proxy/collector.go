package proxy

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// collector feeds Prometheus from the proxy's atomics at scrape time, so
// the hot path never touches a Prometheus type.
type collector struct {
	p *Proxy
}

// Collector returns a prometheus.Collector of the proxy's metrics, for
// callers that register it in their own registry. AdminHandler's /metrics
// already serves it.
func (p *Proxy) Collector() prometheus.Collector { return collector{p} }

var (
	descRequests = prometheus.NewDesc("cutover_proxy_requests_total",
		"Attempts sent (or tried) to a side; a replayed request counts on both sides.", []string{"side"}, nil)
	descErrors = prometheus.NewDesc("cutover_proxy_errors_total",
		"Failed attempts by kind: 5xx answers and transport failures, seen by the client or not.", []string{"side", "kind"}, nil)
	descRetries = prometheus.NewDesc("cutover_proxy_retries_total",
		"Requests that could not be sent to a side and went to the other one.", []string{"side"}, nil)
	descReplays = prometheus.NewDesc("cutover_proxy_replays_total",
		"Idempotent requests a side failed that were replayed on the other one.", []string{"side"}, nil)
	descInFlight = prometheus.NewDesc("cutover_proxy_in_flight",
		"Requests on a side now.", []string{"side"}, nil)
	descWeight = prometheus.NewDesc("cutover_proxy_weight_percent",
		"Share of new traffic a side gets.", []string{"side"}, nil)
	descLatency = prometheus.NewDesc("cutover_proxy_latency_seconds",
		"Time from a request's arrival to its upstream's response head.", []string{"side"}, nil)
	descMirrorPct = prometheus.NewDesc("cutover_proxy_mirror_percent",
		"Share of legacy-bound requests mirrored to the new side.", nil, nil)
	descMirror = prometheus.NewDesc("cutover_proxy_mirror_comparisons_total",
		"Mirrored requests by route and result (match, mismatch, error).", []string{"route", "result"}, nil)
	descMirrorDropped = prometheus.NewDesc("cutover_proxy_mirror_dropped_total",
		"Mirrors skipped because too many were in flight.", nil, nil)
	descLocal = prometheus.NewDesc("cutover_proxy_local_replies_total",
		"Answers made by the proxy itself (malformed requests, no upstream), by status code.", []string{"code"}, nil)
	descBadHeads = prometheus.NewDesc("cutover_proxy_rejected_requests_total",
		"Requests refused as malformed or unsafe (smuggling defences).", nil, nil)
	descIdle = prometheus.NewDesc("cutover_proxy_upstream_idle_connections",
		"Pooled keep-alive connections per upstream.", []string{"side", "upstream"}, nil)
)

// latencyBounds are the exposed histogram's bucket bounds in seconds.
var latencyBounds = []float64{
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
}

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRequests, descErrors, descRetries, descReplays, descInFlight,
		descWeight, descLatency, descMirrorPct, descMirror, descMirrorDropped, descLocal, descBadHeads, descIdle} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	p := c.p
	st := p.stats
	w := p.Weights()
	for side := SideLegacy; side <= SideNew; side++ {
		name := side.String()
		ss := &st.sides[side]
		cnt := func(d *prometheus.Desc, v uint64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
		}
		cnt(descRequests, ss.requests.Load(), name)
		cnt(descErrors, ss.err5xx.Load(), name, "5xx")
		cnt(descErrors, ss.errTransport.Load(), name, "transport")
		cnt(descRetries, ss.retries.Load(), name)
		cnt(descReplays, ss.replays.Load(), name)
		ch <- prometheus.MustNewConstMetric(descInFlight, prometheus.GaugeValue, float64(ss.inflight.Load()), name)
		weight := w.Legacy
		if side == SideNew {
			weight = w.New
		}
		ch <- prometheus.MustNewConstMetric(descWeight, prometheus.GaugeValue, float64(weight), name)

		// Classic buckets from the log-linear histogram: a fine bucket
		// counts below a bound when its middle is (±0.8 %).
		buckets := make(map[float64]uint64, len(latencyBounds))
		var total uint64
		j := 0
		var cum uint64
		for i := range ss.hist {
			n := ss.hist[i].Load()
			if n == 0 {
				continue
			}
			lo, wd := histBounds(i, cumSubBits)
			mid := float64(lo+wd/2) / 1e9
			for j < len(latencyBounds) && mid > latencyBounds[j] {
				buckets[latencyBounds[j]] = cum
				j++
			}
			cum += n
			total += n
		}
		for ; j < len(latencyBounds); j++ {
			buckets[latencyBounds[j]] = cum
		}
		ch <- prometheus.MustNewConstHistogram(descLatency, total, float64(ss.latSum.Load())/1e9, buckets, name)
		for _, b := range p.sides[side].backends {
			ch <- prometheus.MustNewConstMetric(descIdle, prometheus.GaugeValue, float64(b.idleCount()), name, b.u.raw)
		}
	}
	ch <- prometheus.MustNewConstMetric(descMirrorPct, prometheus.GaugeValue, float64(p.Mirror()))
	routes, dropped := st.Mirror()
	for _, r := range routes {
		ch <- prometheus.MustNewConstMetric(descMirror, prometheus.CounterValue, float64(r.Match), r.Route, "match")
		ch <- prometheus.MustNewConstMetric(descMirror, prometheus.CounterValue, float64(r.Mismatch), r.Route, "mismatch")
		ch <- prometheus.MustNewConstMetric(descMirror, prometheus.CounterValue, float64(r.Errors), r.Route, "error")
	}
	ch <- prometheus.MustNewConstMetric(descMirrorDropped, prometheus.CounterValue, float64(dropped))
	st.local.Range(func(k, v any) bool {
		ch <- prometheus.MustNewConstMetric(descLocal, prometheus.CounterValue,
			float64(v.(interface{ Load() uint64 }).Load()), strconv.Itoa(k.(int)))
		return true
	})
	ch <- prometheus.MustNewConstMetric(descBadHeads, prometheus.CounterValue, float64(st.badHeads.Load()))
}
