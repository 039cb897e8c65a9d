package cli

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cutoverhq/cutover/audit"
	"github.com/cutoverhq/cutover/drill"
	"github.com/cutoverhq/cutover/internal/sim"
	"github.com/cutoverhq/cutover/plan"
	"github.com/cutoverhq/cutover/shift"
)

type drillFlags struct {
	fault, side, expect         string
	dur, latency                time.Duration
	status                      int
	share                       float64
	maxDetection, maxRollback   time.Duration
	maxClientErrors             int
	traffic, auditURL, auditKey string
	rps, postEvery, atWeight    int
	asJSON                      bool
	token, proxyAdmin, pidFile  string
	upstreamTimeout             time.Duration
	probePath                   string
}

func newDrillCmd(e *env) *cobra.Command {
	var f drillFlags
	cmd := &cobra.Command{
		Use:   "drill PLAN|ADMIN-URL --fault refuse|latency|errors|drop|blackhole|restart",
		Short: "Run a resilience drill against a shift on the embedded proxy and judge it against limits",
		Long: `drill breaks one thing while a shift runs on cutover's embedded proxy, measures
what happens, and judges it: the new side's process dies (refuse), answers late
(latency), answers errors (errors), resets connections (drop), never answers
(blackhole), or the proxy restarts (restart). It sends its own probe load (GETs,
and POSTs with an Idempotency-Key) through the proxy, watches the shift engine
for the failed analysis (detection) and the confirmed rollback, ends the fault,
and compares detection time, rollback time (both from the fault's start),
client-visible errors and refused connections with the limits. The result is
printed as a table and, with --audit, recorded in the audit log as evidence of
resilience testing (DORA).

With PLAN, the plan's shift runs in this process on an in-process proxy (or on
the proxy process its router setting "admin" names, with --traffic), with
simulated backends standing in for sides whose addresses do not answer, and the
fault starts once the step chosen by --at-weight holds and passed an analysis.
This is how teams run drills in staging and in CI.

With ADMIN-URL, the drill acts on a running "cutover shift run" through its
admin API (token from --token or $CUTOVER_ADMIN_TOKEN): the shift must run with
traffic on the new side, and --traffic names the proxy's traffic address. A
shift that drives a "cutover proxy" process takes its faults on that proxy's
admin API (--proxy-admin, token $CUTOVER_PROXY_TOKEN).

The restart drill needs the proxy as its own process ("cutover proxy
--pid-file", router setting "admin"): it sends SIGHUP to the process in
--pid-file and counts refused connections and failed requests during the
socket hand-over. An in-process proxy cannot be restarted apart from its shift.

Faults expire by themselves shortly after --for, so a drill that dies leaves
nothing broken. Exit status: 0 pass; 1 fail; 2 usage, or the drill cannot run.`,
		Example: `  cutover drill plan.yaml --fault refuse
  cutover drill plan.yaml --fault latency --latency 500ms --json
  cutover drill http://127.0.0.1:9901 --fault errors --status 503 --share 50 \
      --traffic http://127.0.0.1:8080 --audit file:cutover-audit.log
  cutover drill plan.yaml --fault restart --pid-file /run/cutover-proxy.pid \
      --traffic http://127.0.0.1:8080`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDrill(cmd, e, f, args[0])
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.fault, "fault", "", "what breaks: refuse, latency, errors, drop, blackhole or restart")
	fl.StringVar(&f.side, "side", "new", "the side a fault hits: new or legacy")
	fl.DurationVar(&f.dur, "for", 10*time.Second, "longest the fault lasts; it ends earlier once an expected rollback is confirmed")
	fl.DurationVar(&f.latency, "latency", 500*time.Millisecond, "delay of a latency fault")
	fl.IntVar(&f.status, "status", 503, "answer of an errors fault")
	fl.Float64Var(&f.share, "share", 100, "percentage of the side's requests the fault hits")
	fl.StringVar(&f.expect, "expect", "", "rollback or no-rollback (default: rollback for faults on new, no-rollback otherwise)")
	fl.DurationVar(&f.maxDetection, "max-detection", time.Second, "longest allowed from the fault to the first failed analysis")
	fl.DurationVar(&f.maxRollback, "max-rollback", time.Second, "longest allowed from the fault to the confirmed rollback")
	fl.IntVar(&f.maxClientErrors, "max-client-errors", 0, "probe requests that may fail (5xx or no answer), and connections that may be refused")
	fl.StringVar(&f.traffic, "traffic", "", "the proxy's traffic URL (ADMIN-URL, or a plan driving a proxy process)")
	fl.IntVar(&f.rps, "rps", 200, "probe load, requests per second")
	fl.IntVar(&f.postEvery, "post-every", 5, "every n-th probe request is a POST with an Idempotency-Key (0: GETs only)")
	fl.StringVar(&f.probePath, "probe-path", "", "path of the probe requests (default /v1/balance and /v1/payments, the demo backends' API)")
	fl.StringVar(&f.auditURL, "audit", "", "record the result in this audit log (file:PATH or postgres://…)")
	fl.StringVar(&f.auditKey, "audit-key", "", "sign the audit log's checkpoints with this private key (audit.key from cutover audit keygen)")
	fl.BoolVar(&f.asJSON, "json", false, "print the result as one JSON object on the last line")
	fl.StringVar(&f.token, "token", "", "the shift's admin token (default $CUTOVER_ADMIN_TOKEN)")
	fl.StringVar(&f.proxyAdmin, "proxy-admin", "", "admin API of the cutover proxy process that takes the faults (token $CUTOVER_PROXY_TOKEN)")
	fl.StringVar(&f.pidFile, "pid-file", "", "the proxy process's pid file, for --fault restart")
	fl.IntVar(&f.atWeight, "at-weight", 50, "PLAN: the fault hits the first step with at least this weight")
	fl.DurationVar(&f.upstreamTimeout, "upstream-timeout", 0, "PLAN: the in-process proxy's upstream response timeout (default 60s); a blackhole is detected no sooner")
	cmd.MarkFlagRequired("fault")
	return cmd
}

func runDrill(cmd *cobra.Command, e *env, f drillFlags, target string) error {
	ctx := cmd.Context()
	spec := drill.Spec{
		Kind: drill.Kind(f.fault), Side: f.side, For: f.dur, Share: f.share, Expect: drill.Expect(f.expect),
		MaxDetection: f.maxDetection, MaxRollback: f.maxRollback, MaxClientErrors: f.maxClientErrors,
	}
	switch spec.Kind {
	case drill.Latency:
		spec.Latency = f.latency
	case drill.Errors:
		spec.Status = f.status
	}
	if cmd.Flags().Changed("latency") && spec.Kind != drill.Latency {
		return usageError(errors.New("--latency applies to --fault latency only"))
	}
	if cmd.Flags().Changed("status") && spec.Kind != drill.Errors {
		return usageError(errors.New("--status applies to --fault errors only"))
	}
	if spec.Kind == drill.Restart && cmd.Flags().Changed("side") {
		return usageError(errors.New("--side does not apply to --fault restart: it restarts the proxy"))
	}
	spec = spec.WithDefaults()
	if err := spec.Validate(); err != nil {
		return usageError(err)
	}
	if f.rps <= 0 {
		return usageError(fmt.Errorf("--rps %d: want > 0", f.rps))
	}
	postEvery := f.postEvery
	if postEvery <= 0 {
		postEvery = -1
	}
	var restarter drill.Restarter
	if f.pidFile != "" {
		restarter = drill.PIDFile{Path: f.pidFile}
	}
	var recorder func(context.Context, *drill.Result) error
	if f.auditKey != "" && f.auditURL == "" {
		return usageError(errors.New("--audit-key needs --audit"))
	}
	if f.auditURL != "" {
		var key ed25519.PrivateKey
		if f.auditKey != "" {
			k, err := audit.LoadPrivateKey(f.auditKey)
			if err != nil {
				return usageError(err)
			}
			key = k
		}
		recorder = auditDrill(f.auditURL, key)
	}
	fmt.Fprintf(e.stdout, "drill: %s\n", spec.Describe())

	var res *drill.Result
	var err error
	if strings.HasPrefix(target, "http://") || strings.HasPrefix(target, "https://") {
		res, err = drillAdmin(ctx, e, f, spec, target, restarter, recorder, postEvery)
	} else {
		var p *plan.Plan
		p, err = plan.Load(target)
		if err != nil {
			return err
		}
		res, err = drill.RunPlan(ctx, spec, drill.PlanOptions{
			Plan: p, AtWeight: f.atWeight, UpstreamTimeout: f.upstreamTimeout, Traffic: f.traffic,
			RPS: f.rps, ProbePath: f.probePath, PostEvery: postEvery, Restarter: restarter,
			Log: e.log.With("component", "drill"), Recorder: recorder,
			Observers: func(p *plan.Plan, r *shift.Runner) []shift.Observer {
				fmt.Fprintf(e.stdout, "shift %s: %s, in this process\n", p.Metadata.Name, stepList(p))
				return []shift.Observer{newDisplay(e.stdout, p, r)}
			},
		})
	}
	var nr *drill.NotRunnableError
	switch {
	case errors.As(err, &nr):
		return usageError(err)
	case res == nil && err != nil:
		return err
	}
	printDrill(e.stdout, res)
	if f.asJSON {
		b, jerr := json.Marshal(res)
		if jerr != nil {
			return jerr
		}
		fmt.Fprintln(e.stdout, string(b))
	}
	if err != nil {
		return err
	}
	if !res.Passed {
		return &ExitError{Code: ExitWarnings, Err: fmt.Errorf("drill failed: %s", res.Reason)}
	}
	return nil
}

// drillAdmin runs a drill against a running shift: the probe load starts
// here, then the drill.
func drillAdmin(ctx context.Context, e *env, f drillFlags, spec drill.Spec, url string, rs drill.Restarter,
	recorder func(context.Context, *drill.Result) error, postEvery int) (*drill.Result, error) {
	token := f.token
	if token == "" {
		token = os.Getenv("CUTOVER_ADMIN_TOKEN")
	}
	if token == "" {
		return nil, usageError(errors.New("an admin token is required: --token or $CUTOVER_ADMIN_TOKEN"))
	}
	if f.traffic == "" {
		return nil, usageError(errors.New("--traffic is required with an admin URL: the drill sends its probe load to the proxy's traffic address"))
	}
	proxyToken := ""
	if f.proxyAdmin != "" {
		if proxyToken = os.Getenv("CUTOVER_PROXY_TOKEN"); proxyToken == "" {
			return nil, usageError(errors.New("--proxy-admin needs the proxy's admin token in $CUTOVER_PROXY_TOKEN"))
		}
	}
	t := drill.Remote(url, token, f.proxyAdmin, proxyToken)
	// Check before sending load: a drill that cannot run sends nothing.
	st, err := t.Status(ctx)
	if err != nil {
		return nil, &drill.NotRunnableError{Reason: fmt.Sprintf("%v (is `cutover shift run` running there?)", err)}
	}
	if st.State.Phase.Final() || st.State.Weight <= 0 {
		return nil, &drill.NotRunnableError{Reason: fmt.Sprintf("the shift %q is %s with new at %d %%: a drill needs a running shift with traffic on the new side", st.Plan.Name, st.State.Phase, st.State.Weight)}
	}
	load := &sim.Load{URL: f.traffic, RPS: f.rps, Path: f.probePath, PostEvery: postEvery, FreshEvery: 4}
	lctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); load.Run(lctx) }()
	defer func() { stop(); wg.Wait() }()
	// Warm up: the connection pools fill and the probe proves the traffic
	// URL answers before anything breaks.
	warm := time.Now().Add(3 * time.Second)
	for load.Counts().Requests < 20 && time.Now().Before(warm) {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	if c := load.Counts(); c.Errors > 0 {
		return nil, &drill.NotRunnableError{Reason: fmt.Sprintf("the probe load to %s failed %d of %d requests before any fault (%s): fix the traffic URL or the service first",
			f.traffic, c.Errors, c.Requests, firstFailure(load))}
	}
	fmt.Fprintf(e.stdout, "shift %s (%s) at step %d, new %d %%; probe load %d requests/s to %s\n",
		st.Plan.Name, st.State.Phase, st.State.Step+1, st.State.Weight, f.rps, f.traffic)
	return drill.Run(ctx, t, spec, drill.Options{Load: load, Restarter: rs, Mode: "admin", Target: url,
		Log: e.log.With("component", "drill"), Recorder: recorder})
}

func firstFailure(l *sim.Load) string {
	fs := l.Failures()
	if len(fs) == 0 {
		return "no detail"
	}
	if fs[0].Error != "" {
		return fs[0].Error
	}
	return fmt.Sprintf("%s answered %d", fs[0].Method, fs[0].Status)
}

// printDrill writes the result as a table.
func printDrill(w io.Writer, r *drill.Result) {
	digest := r.PlanDigest
	if len(digest) > 12 {
		digest = digest[:12]
	}
	fmt.Fprintf(w, "\nshift %s (service %s, plan digest %s), step %d at new %d %%\n", r.Plan, r.Service, digest, r.Step, r.Weight)
	if !r.Injected.IsZero() {
		fmt.Fprintf(w, "fault from %s", r.Injected.Format("15:04:05.000"))
		if !r.Cleared.IsZero() {
			fmt.Fprintf(w, " to %s (%.3f s)", r.Cleared.Format("15:04:05.000"), r.Cleared.Sub(r.Injected).Seconds())
		}
		if r.Injections != nil {
			fmt.Fprintf(w, ", %d attempt(s) hit", *r.Injections)
		}
		fmt.Fprintf(w, "; shift now %s\n", r.FinalPhase)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  measure\tvalue\tlimit\tresult")
	for _, c := range r.Checks {
		verdict := "pass"
		if !c.Pass {
			verdict = "FAIL"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", c.Name, c.Value, c.Limit, verdict)
	}
	tw.Flush()
	fmt.Fprintf(w, "probe: %d requests, p50 %s, p99 %s, slowest %s\n", r.Requests,
		secs(r.ClientP50Seconds), secs(r.ClientP99Seconds), secs(r.ClientMaxSeconds))
	for i, f := range r.Failures {
		if i == 5 {
			fmt.Fprintf(w, "  … %d more\n", r.ClientErrors-5)
			break
		}
		what := f.Error
		if what == "" {
			what = fmt.Sprintf("answered %d", f.Status)
		}
		if f.Side != "" {
			what += " (X-Cutover-Side: " + f.Side + ")"
		}
		fmt.Fprintf(w, "  %s %s %s\n", f.Time.Format("15:04:05.000"), f.Method, what)
	}
	if r.RollbackReason != "" {
		fmt.Fprintf(w, "rollback: %s\n", r.RollbackReason)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	if r.Passed {
		fmt.Fprintln(w, "verdict: PASS")
	} else {
		fmt.Fprintf(w, "verdict: FAIL (%s)\n", r.Reason)
	}
}

func secs(s float64) string {
	return (time.Duration(s * float64(time.Second))).Round(100 * time.Microsecond).String()
}

// auditDrill records a drill's result in the audit log at url, as a
// KindDrill record the evidence report lists under resilience testing.
func auditDrill(url string, key ed25519.PrivateKey) func(context.Context, *drill.Result) error {
	return func(ctx context.Context, r *drill.Result) error {
		l, err := audit.Open(ctx, url, audit.Options{Key: key})
		if err != nil {
			return err
		}
		rec := audit.Record{Kind: audit.KindDrill, Service: r.Service}
		if r.PlanDigest != "" {
			rec.PlanDigest = "sha256:" + r.PlanDigest
		}
		rec.Plan = r.Plan
		if r.Mode == "plan" {
			rec.Plan = r.Target
		}
		if err := rec.SetData(drillRecord(r)); err != nil {
			l.Close(ctx)
			return err
		}
		if _, err := l.Append(ctx, rec); err != nil {
			l.Close(ctx)
			return err
		}
		return l.Close(ctx)
	}
}

// drillData is audit.DrillData with what else the drill knows: readers
// ignore members they do not know.
type drillData struct {
	audit.DrillData
	Description        string        `json:"description"`
	Expect             drill.Expect  `json:"expect"`
	Share              float64       `json:"share"`
	Mode               string        `json:"mode"`
	Source             string        `json:"source"`
	Injected           time.Time     `json:"injected"`
	Cleared            time.Time     `json:"cleared,omitzero"`
	RefusedConnections int64         `json:"refusedConnections"`
	Injections         *uint64       `json:"injections,omitempty"`
	FinalPhase         shift.Phase   `json:"finalPhase"`
	Checks             []drill.Check `json:"checks"`
	Notes              []string      `json:"notes,omitempty"`
}

// experiments names the drills as the audit log's DrillData does.
var experiments = map[drill.Kind]string{
	drill.Refuse: "kill-new", drill.Latency: "latency", drill.Errors: "errors",
	drill.Drop: "drop-connections", drill.Blackhole: "blackhole", drill.Restart: "restart-proxy",
}

func drillRecord(r *drill.Result) drillData {
	exp := experiments[r.Kind]
	if r.Kind == drill.Refuse && r.Side == "legacy" {
		exp = "kill-legacy"
	}
	maxErr := int64(r.MaxClientErrors)
	req, cerr := r.Requests, r.ClientErrors
	d := drillData{
		DrillData: audit.DrillData{
			Name: fmt.Sprintf("%s-%s", r.Kind, r.Side), Experiment: exp, Target: r.Side,
			Limits:   audit.DrillMeasures{ClientErrors: &maxErr},
			Measured: audit.DrillMeasures{DetectionSeconds: r.DetectionSeconds, RollbackSeconds: r.RollbackSeconds, ClientErrors: &cerr, Requests: &req},
			Passed:   r.Passed, Message: r.Reason,
		},
		Description: r.Description, Expect: r.Expect, Share: r.Share, Mode: r.Mode, Source: r.Target,
		Injected: r.Injected, Cleared: r.Cleared, RefusedConnections: r.RefusedConnections, Injections: r.Injections,
		FinalPhase: r.FinalPhase, Checks: r.Checks, Notes: r.Notes,
	}
	if r.Expect == drill.ExpectRollback && r.Kind != drill.Restart {
		det, rb := r.MaxDetectionSeconds, r.MaxRollbackSeconds
		d.Limits.DetectionSeconds, d.Limits.RollbackSeconds = &det, &rb
	}
	return d
}
