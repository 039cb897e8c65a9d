package proxy

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// AdminHandler returns the admin API. Serve it on its own listener, never
// on the traffic port. Every endpoint but /healthz (and /metrics with
// Config.MetricsPublic) needs "Authorization: Bearer <AdminToken>" and
// answers 401 without it.
//
//	GET  /v1/weights           {"legacy":90,"new":10}
//	PUT  /v1/weights           same body; answers the weights in force
//	GET  /v1/mirror            {"percent":5,"dropped":0,"routes":[...]}
//	PUT  /v1/mirror            {"percent":5}
//	GET  /v1/stats?window=10s  both sides' Window over the last 10 s
//	                           (&samples=1 adds the latency sample)
//	GET  /v1/faults            faults injected by drills (faults.go);
//	PUT  /v1/faults            PUT replaces them, DELETE clears them
//	DELETE /v1/faults
//	GET  /metrics              Prometheus text format
//	GET  /healthz              200 "ok"; 503 "draining" after Shutdown began
//
// The returned handler is an *http.ServeMux the caller may add routes to.
func (p *Proxy) AdminHandler() *http.ServeMux {
	mux := http.NewServeMux()
	reg := prometheus.NewRegistry()
	reg.MustRegister(p.Collector())
	metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	if !p.cfg.MetricsPublic {
		metrics = p.authorize(metrics)
	}
	mux.Handle("GET /metrics", metrics)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if p.closing.Load() {
			http.Error(w, "draining", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok\n")
	})
	mux.Handle("GET /v1/weights", p.authorize(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, p.Weights())
	})))
	mux.Handle("PUT /v1/weights", p.authorize(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in Weights
		if err := readJSON(r, &in); err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		if err := p.SetWeights(in); err != nil {
			writeError(w, http.StatusUnprocessableEntity, err)
			return
		}
		writeJSON(w, http.StatusOK, p.Weights())
	})))
	mux.Handle("GET /v1/mirror", p.authorize(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, p.mirrorView())
	})))
	mux.Handle("PUT /v1/mirror", p.authorize(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Percent *int `json:"percent"`
		}
		if err := readJSON(r, &in); err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		if in.Percent == nil {
			writeError(w, http.StatusBadRequest, errors.New("percent is required"))
			return
		}
		if err := p.SetMirror(*in.Percent); err != nil {
			writeError(w, http.StatusUnprocessableEntity, err)
			return
		}
		writeJSON(w, http.StatusOK, p.mirrorView())
	})))
	p.faultsHandlers(mux)
	mux.Handle("GET /v1/stats", p.authorize(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d := 10 * time.Second
		if v := r.URL.Query().Get("window"); v != "" {
			var err error
			d, err = time.ParseDuration(v)
			if err != nil || d <= 0 || d > 10*time.Minute {
				writeError(w, http.StatusBadRequest, fmt.Errorf("window %q: want a duration in (0, 10m]", v))
				return
			}
		}
		samples := r.URL.Query().Get("samples") == "1"
		now := time.Now()
		out := statsView{Window: d.String(), Weights: p.Weights(), Mirror: p.Mirror(), Sides: map[string]sideView{}}
		for side := SideLegacy; side <= SideNew; side++ {
			win := p.stats.Window(side, now.Add(-d), now)
			out.Since, out.Until = win.Since, win.Until
			out.Sides[side.String()] = viewOf(win, p.stats.Counters(side), samples)
		}
		writeJSON(w, http.StatusOK, out)
	})))
	return mux
}

type statsView struct {
	Window  string              `json:"window"`
	Since   time.Time           `json:"since"`
	Until   time.Time           `json:"until"`
	Weights Weights             `json:"weights"`
	Mirror  int                 `json:"mirror_percent"`
	Sides   map[string]sideView `json:"sides"`
}

type sideView struct {
	Requests        uint64    `json:"requests"`
	Errors          uint64    `json:"errors"`
	Errors5xx       uint64    `json:"errors_5xx"`
	ErrorsTransport uint64    `json:"errors_transport"`
	ErrorRate       *float64  `json:"error_rate"`
	Latencies       uint64    `json:"latencies"`
	P50             float64   `json:"p50_seconds"`
	P90             float64   `json:"p90_seconds"`
	P99             float64   `json:"p99_seconds"`
	Samples         []float64 `json:"samples_seconds,omitempty"`
	Totals          Counters  `json:"totals"`
}

func viewOf(w Window, c Counters, samples bool) sideView {
	v := sideView{
		Requests: w.Requests, Errors: w.Errors, Errors5xx: w.Errors5xx, ErrorsTransport: w.ErrorsTransport,
		Latencies: w.Latencies, P50: w.P50.Seconds(), P90: w.P90.Seconds(), P99: w.P99.Seconds(), Totals: c,
	}
	if r := w.ErrorRate(); !math.IsNaN(r) {
		v.ErrorRate = &r
	}
	if samples {
		v.Samples = w.SampleSeconds()
	}
	return v
}

type mirrorView struct {
	Percent int           `json:"percent"`
	Dropped uint64        `json:"dropped"`
	Routes  []MirrorRoute `json:"routes"`
}

func (p *Proxy) mirrorView() mirrorView {
	routes, dropped := p.stats.Mirror()
	if routes == nil {
		routes = []MirrorRoute{}
	}
	return mirrorView{Percent: p.Mirror(), Dropped: dropped, Routes: routes}
}

// authorize checks the bearer token in constant time.
func (p *Proxy) authorize(h http.Handler) http.Handler {
	want := []byte(p.cfg.AdminToken)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || len(want) == 0 || subtle.ConstantTimeCompare([]byte(got), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="cutover"`)
			writeError(w, http.StatusUnauthorized, errors.New("missing or wrong bearer token"))
			return
		}
		h.ServeHTTP(w, r)
	})
}

func readJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("cannot parse request body: %w", err)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}
