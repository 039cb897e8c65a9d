package lambda

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// ServeConfig is what Serve runs: the runtime and the sources that feed
// it.
type ServeConfig struct {
	// Runtime configures the function's processes. Its Log and
	// Registerer are Serve's when nil.
	Runtime Config
	// Sources feed the function. At least one is required.
	Sources []Source
	// Metrics is the address of /metrics (Prometheus), /healthz and
	// /readyz. Empty: not served.
	Metrics string
	// Grace is how long, once ctx ends, sources and invocations in
	// flight may take to finish before the function's processes are
	// stopped. Zero: the function's timeout plus 2 s, so an invocation
	// started just before the end can finish.
	Grace time.Duration
	// Log receives serve's records. Nil: discarded.
	Log *slog.Logger
	// Registry holds the metrics /metrics serves; sources built for this
	// Serve should register on it too. Nil: a new one.
	Registry *prometheus.Registry
}

// Serve runs the function behind the Runtime API and feeds it from the
// sources until ctx ends (SIGTERM) or every source is done. On SIGTERM the
// sources stop taking work, what is in flight finishes within Grace, and
// Serve returns nil. A source that ends on its own (schedule, job) makes
// Serve return when it does, with its error: ErrInvocationsFailed when
// the function failed, so the process's exit status tells Kubernetes to
// retry.
func Serve(ctx context.Context, cfg ServeConfig) error {
	if len(cfg.Sources) == 0 {
		return errors.New("lambda: no event source")
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	if cfg.Runtime.Log == nil {
		cfg.Runtime.Log = log
	}
	if cfg.Runtime.Registerer == nil {
		cfg.Runtime.Registerer = reg
	}
	rt, err := New(cfg.Runtime)
	if err != nil {
		return err
	}
	grace := cfg.Grace
	if grace <= 0 {
		grace = rt.Config().Function.Timeout + 2*time.Second
	}

	var metricsSrv *http.Server
	if cfg.Metrics != "" {
		ln, err := net.Listen("tcp", cfg.Metrics)
		if err != nil {
			_ = rt.Close()
			return fmt.Errorf("metrics: %w", err)
		}
		_ = reg.Register(collectors.NewGoCollector())
		_ = reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		metricsSrv = &http.Server{Handler: opsHandler(reg, rt), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = metricsSrv.Serve(ln) }()
		log.Info("serving metrics and health", "address", ln.Addr().String())
	}

	if rt.Config().Prewarm > 0 {
		// Take work only once the function can run it; until then an
		// HTTP port stays closed and the pod unready.
		log.Info("waiting for the function's init")
		if err := rt.WaitReady(ctx); err != nil {
			_ = rt.Close()
			stopMetrics(metricsSrv)
			return nil
		}
		log.Info("function ready; opening event sources")
	}

	srcCtx, stopSources := context.WithCancel(ctx)
	defer stopSources()
	type done struct {
		i   int
		err error
	}
	results := make(chan done, len(cfg.Sources))
	for i, s := range cfg.Sources {
		go func() { results <- done{i, s.Run(srcCtx, rt)} }()
	}

	var errs []error
	pending := len(cfg.Sources)
	record := func(d done) {
		pending--
		if d.err != nil && !(ctx.Err() != nil && errors.Is(d.err, context.Canceled)) {
			errs = append(errs, d.err)
		}
	}
	// Until SIGTERM or a source's end.
	select {
	case d := <-results:
		record(d)
		if d.err != nil && !errors.Is(d.err, ErrInvocationsFailed) {
			log.Error("event source failed; stopping", "error", d.err.Error())
		}
		// One source's end is the end: a Job's last item, or a failure
		// that leaves the workload half-fed.
		stopSources()
	case <-ctx.Done():
		log.Info("stopping: finishing what is in flight", "grace", grace.String())
	}

	graceEnd := time.Now().Add(grace)
	deadline := time.NewTimer(grace)
	defer deadline.Stop()
wait:
	for pending > 0 {
		select {
		case d := <-results:
			record(d)
		case <-deadline.C:
			log.Warn("grace period over; stopping the function", "sourcesStillRunning", pending)
			break wait
		}
	}
	// Sources return once their invocations are answered, so normally
	// nothing is left; what is (a source past the grace) is cut off.
	shutCtx, cancel := context.WithDeadline(context.Background(), graceEnd)
	if err := rt.Shutdown(shutCtx); err != nil {
		log.Warn("invocations cut off at shutdown", "error", err.Error())
	}
	cancel()
	stopMetrics(metricsSrv)
	return errors.Join(errs...)
}

func stopMetrics(srv *http.Server) {
	if srv == nil {
		return
	}
	c, cancel := context.WithTimeout(context.Background(), time.Second)
	_ = srv.Shutdown(c)
	cancel()
}

// opsHandler serves /metrics, /healthz (the process answers) and /readyz
// (the runtime takes invocations: a process is through init, serve is
// not stopping), for the pod's probes and Prometheus.
func opsHandler(reg *prometheus.Registry, rt *Runtime) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if !rt.Ready() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	return mux
}
