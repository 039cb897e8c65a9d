package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cutoverhq/cutover/internal/admin"
	"github.com/cutoverhq/cutover/internal/fsutil"
	"github.com/cutoverhq/cutover/metrics"
	"github.com/cutoverhq/cutover/plan"
	"github.com/cutoverhq/cutover/router"
	"github.com/cutoverhq/cutover/shift"
	"github.com/cutoverhq/cutover/web"

	// Routers and metrics providers register themselves.
	_ "github.com/cutoverhq/cutover/metrics/cloudwatch"
	_ "github.com/cutoverhq/cutover/metrics/embedded"
	_ "github.com/cutoverhq/cutover/metrics/prometheus"
	_ "github.com/cutoverhq/cutover/router/alb"
	_ "github.com/cutoverhq/cutover/router/gatewayapi"
	_ "github.com/cutoverhq/cutover/router/haproxy"
	_ "github.com/cutoverhq/cutover/router/nginx"
	_ "github.com/cutoverhq/cutover/router/proxy"
)

func init() {
	plan.RouterKnown = router.Known
	plan.MetricsKnown = metrics.Known
}

func newShiftCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "shift",
		Short: "Move live traffic from the legacy backend to the new one, step by step, with automatic rollback",
		Long: `shift moves traffic from the legacy backend to the new one in the steps a plan
names, holds each step while it compares both sides on live metrics, waits for
approvals where the plan asks, and rolls back by itself when the new side breaks
its SLOs. The plan format is documented in docs/plan.md; its JSON Schema is
plan/schema.json.

While "shift run" runs, the other subcommands talk to its admin API.`,
		Example: `  cutover shift validate plan.yaml
  cutover shift run plan.yaml --admin 127.0.0.1:9901 --token-file tokens.yaml
  cutover shift status --admin http://127.0.0.1:9901
  cutover shift approve --reason "checked the dashboards"`,
	}
	cmd.AddCommand(newShiftValidateCmd(e), newShiftRunCmd(e))
	for _, c := range []struct {
		kind  shift.CommandKind
		short string
	}{
		{shift.CmdPause, "Pause the running shift: nothing moves until resume (a failing new side still rolls back)"},
		{shift.CmdResume, "Resume a paused shift"},
		{shift.CmdPromote, "Skip the rest of the current step's hold and go to the next step"},
		{shift.CmdApprove, "Approve the step the shift waits for"},
		{shift.CmdReject, "Refuse the step the shift waits for (the shift pauses)"},
		{shift.CmdAbort, "Abort the shift: all traffic back to legacy"},
	} {
		cmd.AddCommand(newShiftCommandCmd(e, c.kind, c.short))
	}
	cmd.AddCommand(newShiftStatusCmd(e))
	return cmd
}

func newShiftValidateCmd(e *env) *cobra.Command {
	var offline bool
	cmd := &cobra.Command{
		Use:   "validate PLAN",
		Short: "Check a plan: its fields, its router and metrics settings, and that both backends answer",
		Example: `  cutover shift validate plan.yaml
  cutover shift validate --offline plan.yaml   # fields only, no network`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := plan.Load(args[0])
			if err != nil {
				return err
			}
			if !offline {
				problems := checkPlan(cmd.Context(), p)
				if len(problems) > 0 {
					for _, pr := range problems {
						fmt.Fprintln(e.stdout, pr)
					}
					return &ExitError{Code: ExitUsage, Err: fmt.Errorf("%s: %d problem(s)", args[0], len(problems))}
				}
			}
			fmt.Fprintf(e.stdout, "%s: plan %q is valid: %d steps (%s), router %s, metrics %s\n", args[0], p.Metadata.Name, len(p.Spec.Steps), stepList(p), p.Spec.Router.Type, p.Spec.Metrics.Type)
			return nil
		},
	}
	cmd.Flags().BoolVar(&offline, "offline", false, "check the file only; do not contact backends, router or metrics")
	return cmd
}

func stepList(p *plan.Plan) string {
	var parts []string
	for _, s := range p.Spec.Steps {
		parts = append(parts, fmt.Sprint(s.Weight))
	}
	return strings.Join(parts, " → ")
}

// checkPlan contacts what the plan names and returns one line per problem.
func checkPlan(ctx context.Context, p *plan.Plan) []string {
	var out []string
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for _, side := range []struct {
		name string
		b    plan.Backend
	}{{"legacy", p.Spec.Legacy}, {"new", p.Spec.New}} {
		for i, a := range side.b.Addresses {
			if !strings.Contains(a, "://") {
				continue // a router-specific name (a target group, a server): the router checks it
			}
			if err := probe(ctx, a, side.b.HealthPath); err != nil {
				field := fmt.Sprintf("spec.%s.addresses[%d]", side.name, i)
				out = append(out, fmt.Sprintf("%s:%d: %s: %v", p.File, p.Line(field), field, err))
			}
		}
	}
	rt, closeRouter, err := buildRouter(ctx, p)
	if err != nil {
		out = append(out, err.Error())
	} else {
		defer closeRouter()
		if c, ok := rt.(router.Checker); ok {
			if err := c.Check(ctx); err != nil {
				out = append(out, fmt.Sprintf("%s:%d: spec.router: %v", p.File, p.Line("spec.router"), err))
			}
		}
		prov, err := buildProvider(ctx, p, rt)
		if err != nil {
			out = append(out, err.Error())
		} else if c, ok := prov.(metrics.Checker); ok {
			if err := c.Check(ctx); err != nil {
				out = append(out, fmt.Sprintf("%s:%d: spec.metrics: %v", p.File, p.Line("spec.metrics"), err))
			}
		}
	}
	return out
}

// probe sends a GET to a backend's health path; any HTTP answer below 500
// counts as "answering".
func probe(ctx context.Context, base, path string) error {
	if path == "" {
		path = "/"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+path, nil)
	if err != nil {
		return err
	}
	c := &http.Client{Timeout: 3 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("does not answer: %v", unwrapURL(err))
	}
	resp.Body.Close()
	if resp.StatusCode >= 500 {
		return fmt.Errorf("answers %s on %s", resp.Status, path)
	}
	return nil
}

func unwrapURL(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}

func buildRouter(ctx context.Context, p *plan.Plan) (router.Router, func(), error) {
	f, err := router.Lookup(p.Spec.Router.Type)
	if err != nil {
		return nil, nil, fmt.Errorf("%s:%d: spec.router.type: %v", p.File, p.Line("spec.router.type"), err)
	}
	rt, err := f(ctx, router.Backends{Service: p.Spec.Service, Legacy: p.Spec.Legacy.Addresses, New: p.Spec.New.Addresses},
		func(v any) error { return p.DecodeSettings(&p.Spec.Router, "spec.router", v) })
	if err != nil {
		return nil, nil, fmt.Errorf("%s:%d: spec.router: %w", p.File, p.Line("spec.router"), err)
	}
	closer := func() {}
	if c, ok := rt.(router.Closer); ok {
		closer = func() { c.Close() }
	}
	return rt, closer, nil
}

func buildProvider(ctx context.Context, p *plan.Plan, rt router.Router) (metrics.Provider, error) {
	f, err := metrics.Lookup(p.Spec.Metrics.Type)
	if err != nil {
		return nil, fmt.Errorf("%s:%d: spec.metrics.type: %v", p.File, p.Line("spec.metrics.type"), err)
	}
	prov, err := f(ctx, metrics.Env{Service: p.Spec.Service, Local: rt},
		func(v any) error { return p.DecodeSettings(&p.Spec.Metrics, "spec.metrics", v) })
	if err != nil {
		return nil, fmt.Errorf("%s:%d: spec.metrics: %w", p.File, p.Line("spec.metrics"), err)
	}
	return prov, nil
}

type shiftRunFlags struct {
	state      string
	adminAddr  string
	tokenFile  string
	adminToken string
	report     string
	skipCheck  bool
	exitDone   bool
	audit      auditFlags
}

func newShiftRunCmd(e *env) *cobra.Command {
	var f shiftRunFlags
	cmd := &cobra.Command{
		Use:   "run PLAN",
		Short: "Run a plan: move traffic step by step, judge every step, roll back on failure",
		Long: `run executes a plan until it completes, rolls back or is aborted. The state is
saved atomically after every transition; running the same plan again with the
same --state resumes where it stopped without moving traffic twice. The
router's weights are read back on every tick; if they change outside the
shift (a reload, a hand edit), the shift pauses and waits for resume or abort.

With the embedded proxy in this process (router setting listen), the traffic
flows through it: when the shift ends the process keeps serving at the final
weights, and the admin API stays up, until SIGTERM drains it
(--exit-when-done stops at once).

The admin API and the dashboard are served on --admin; every request needs a
bearer token (--token-file maps tokens to people and groups for approvals, or
--admin-token / $CUTOVER_ADMIN_TOKEN gives one token named "admin").

Exit status: 0 completed; 1 rolled back or aborted; 2 bad plan or usage.`,
		Example: `  cutover shift run plan.yaml --token-file tokens.yaml --report reports/
  CUTOVER_ADMIN_TOKEN=$(openssl rand -hex 16) cutover shift run plan.yaml`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runShift(cmd.Context(), e, f, args[0])
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.state, "state", "", "state file (default: <plan name>.state.json beside the plan)")
	fl.StringVar(&f.adminAddr, "admin", "127.0.0.1:9901", "address of the admin API and dashboard")
	fl.StringVar(&f.tokenFile, "token-file", "", "YAML file mapping admin tokens to names and groups")
	fl.StringVar(&f.adminToken, "admin-token", "", "a single admin token, named \"admin\" (default $CUTOVER_ADMIN_TOKEN)")
	fl.StringVar(&f.report, "report", "", "directory for the end-of-shift report (report.md, report.html)")
	fl.BoolVar(&f.skipCheck, "skip-check", false, "do not check that both backends answer before starting")
	addAuditFlags(cmd, &f.audit)
	fl.BoolVar(&f.exitDone, "exit-when-done", false, "with an in-process proxy (router setting listen), stop serving traffic when the shift ends instead of serving on at the final weights until SIGTERM")
	return cmd
}

func loadTokens(file, token string) (*admin.Tokens, error) {
	if file != "" {
		return admin.LoadTokens(file)
	}
	if token == "" {
		token = os.Getenv("CUTOVER_ADMIN_TOKEN")
	}
	if token == "" {
		return nil, usageError(errors.New("the admin API needs --token-file, --admin-token or $CUTOVER_ADMIN_TOKEN"))
	}
	return admin.Single(token, admin.Identity{Name: "admin"}), nil
}

func osUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "unknown"
}

func runShift(ctx context.Context, e *env, f shiftRunFlags, planFile string) error {
	p, err := plan.Load(planFile)
	if err != nil {
		return err
	}
	tokens, err := loadTokens(f.tokenFile, f.adminToken)
	if err != nil {
		return err
	}
	if !f.skipCheck {
		if problems := checkBackends(ctx, p); len(problems) > 0 {
			return &ExitError{Code: ExitUsage, Err: fmt.Errorf("%s", strings.Join(problems, "\n"))}
		}
	}
	rt, closeRouter, err := buildRouter(ctx, p)
	if err != nil {
		return usageError(err)
	}
	defer closeRouter()
	prov, err := buildProvider(ctx, p, rt)
	if err != nil {
		return usageError(err)
	}
	state := f.state
	if state == "" {
		state = filepath.Join(filepath.Dir(planFile), p.Metadata.Name+".state.json")
	}
	hist := &shift.History{}
	store := &shift.FileStore{Path: state}
	r := &shift.Runner{
		Plan: p, Router: rt, Provider: prov,
		Store:     store,
		Log:       e.log.With("component", "shift"),
		StartedBy: osUser(),
	}
	disp := newDisplay(e.stdout, p, r)
	r.Observers = []shift.Observer{hist, disp}
	alog, err := f.audit.open(ctx, r.StartedBy)
	if err != nil {
		return err
	}
	if alog != nil {
		_, loadErr := store.Load(ctx)
		trail := shift.NewAuditTrail(ctx, alog, p, r.StartedBy, loadErr == nil, e.log.With("component", "audit"))
		r.Observers = append(r.Observers, trail)
		defer func() {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			if err := trail.Close(cctx); err != nil {
				e.log.Error("audit log", "err", err)
			}
		}()
	}

	srv, addr, err := serveAdmin(ctx, f.adminAddr, adminMux(r, rt, tokens, hist))
	if err != nil {
		return err
	}
	defer func() {
		// The command that ended the shift (abort, the last approval)
		// gets its answer: in-flight requests finish first, then
		// whatever still streams (an open dashboard) is cut.
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		srv.Close()
	}()
	fmt.Fprintf(e.stdout, "shift %s: %s → %s in %d steps (%s); dashboard http://%s/ ; state %s\n",
		p.Metadata.Name, strings.Join(p.Spec.Legacy.Addresses, ","), strings.Join(p.Spec.New.Addresses, ","), len(p.Spec.Steps), stepList(p), addr, state)

	final, runErr := r.Run(ctx)
	if f.report != "" {
		if err := writeShiftReport(f.report, shift.NewReport(p, final, hist)); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "report: %s\n", filepath.Join(f.report, "report.md"))
	}
	if runErr != nil {
		return runErr
	}
	if local, ok := rt.(interface{ Addr() string }); ok && local.Addr() != "" && !f.exitDone {
		// The traffic still flows through this process: whatever the
		// outcome, stopping now would cut every client off. Serve on at
		// the final weights (and keep the admin API up) until told to
		// stop; SIGTERM drains.
		w, _ := rt.Weights(ctx)
		fmt.Fprintf(e.stdout, "shift %s ended %s (%s); the proxy keeps serving on %s at %s until SIGTERM or Ctrl-C\n",
			p.Metadata.Name, final.Phase, final.Reason, local.Addr(), w)
		<-ctx.Done()
	}
	switch final.Phase {
	case shift.Completed:
		fmt.Fprintf(e.stdout, "shift %s completed: new side takes %d%%\n", p.Metadata.Name, final.Weight)
		return nil
	default:
		return &ExitError{Code: ExitWarnings, Err: fmt.Errorf("shift %s %s: %s", p.Metadata.Name, strings.ToLower(string(final.Phase)), final.Reason)}
	}
}

// checkBackends checks that every URL backend answers.
func checkBackends(ctx context.Context, p *plan.Plan) []string {
	var out []string
	for _, side := range []struct {
		name string
		b    plan.Backend
	}{{"legacy", p.Spec.Legacy}, {"new", p.Spec.New}} {
		for i, a := range side.b.Addresses {
			if !strings.Contains(a, "://") {
				continue
			}
			if err := probe(ctx, a, side.b.HealthPath); err != nil {
				field := fmt.Sprintf("spec.%s.addresses[%d]", side.name, i)
				out = append(out, fmt.Sprintf("%s:%d: %s: %v", p.File, p.Line(field), field, err))
			}
		}
	}
	return out
}

// adminMux serves the dashboard, the shift API and, when the router has
// one, its own admin API.
func adminMux(r *shift.Runner, rt router.Router, tokens *admin.Tokens, hist *shift.History) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/v1/shift", r.AdminHandler(tokens, hist))
	mux.Handle("/v1/shift/", r.AdminHandler(tokens, hist))
	if h, ok := rt.(interface{ AdminHandler() http.Handler }); ok {
		ah := h.AdminHandler()
		mux.Handle("/v1/", tokens.Require(ah))
		mux.Handle("/metrics", ah)
	}
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.Handle("/", web.Handler())
	return mux
}

func serveAdmin(ctx context.Context, addr string, h http.Handler) (*http.Server, string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", usageError(fmt.Errorf("--admin %s: %w", addr, err))
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return srv, ln.Addr().String(), nil
}

func writeShiftReport(dir string, rep *shift.Report) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	html, err := rep.HTML()
	if err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(dir, "report.md"), []byte(rep.Markdown()), 0o644); err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(filepath.Join(dir, "report.html"), html, 0o644)
}

// adminClient talks to a running shift's admin API.
type adminClient struct {
	base  string
	token string
	hc    *http.Client
}

func addAdminFlags(cmd *cobra.Command, url, token *string) {
	cmd.Flags().StringVar(url, "admin", "http://127.0.0.1:9901", "admin API of the running shift (default $CUTOVER_ADMIN_URL)")
	cmd.Flags().StringVar(token, "token", "", "admin token (default $CUTOVER_ADMIN_TOKEN)")
}

func newAdminClient(cmd *cobra.Command, url, token string) (*adminClient, error) {
	if !cmd.Flags().Changed("admin") {
		if v := os.Getenv("CUTOVER_ADMIN_URL"); v != "" {
			url = v
		}
	}
	if token == "" {
		token = os.Getenv("CUTOVER_ADMIN_TOKEN")
	}
	if token == "" {
		return nil, usageError(errors.New("an admin token is required: --token or $CUTOVER_ADMIN_TOKEN"))
	}
	if !strings.Contains(url, "://") {
		url = "http://" + url
	}
	return &adminClient{base: strings.TrimRight(url, "/"), token: token, hc: &http.Client{Timeout: 15 * time.Second}}, nil
}

func (c *adminClient) do(ctx context.Context, method, path string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("cannot reach the shift's admin API at %s: %w", c.base, unwrapURL(err))
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if resp.StatusCode == http.StatusUnauthorized {
		return resp.StatusCode, errors.New("the admin API refused the token (401)")
	}
	if resp.Header.Get("Content-Type") != "application/json" {
		return resp.StatusCode, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(data)))
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("bad answer from the admin API: %w", err)
		}
	}
	return resp.StatusCode, nil
}

func newShiftStatusCmd(e *env) *cobra.Command {
	var url, token string
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "status",
		Short:   "Show the running shift: phase, step, weights, both sides' metrics, what it waits for",
		Example: "  cutover shift status --admin http://127.0.0.1:9901 --token $TOKEN",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAdminClient(cmd, url, token)
			if err != nil {
				return err
			}
			var st shift.Status
			if _, err := c.do(cmd.Context(), http.MethodGet, "/v1/shift", nil, &st); err != nil {
				return err
			}
			if asJSON {
				b, _ := json.MarshalIndent(st, "", "  ")
				fmt.Fprintln(e.stdout, string(b))
				return nil
			}
			fmt.Fprintf(e.stdout, "shift %s (service %s)\n", st.Plan.Name, st.Plan.Service)
			step := "-"
			if st.State.Step >= 0 {
				step = fmt.Sprintf("%d/%d", st.State.Step+1, len(st.Plan.Steps))
			}
			fmt.Fprintf(e.stdout, "%s  step %s  weights legacy %d%% / new %d%%\nwaiting for: %s\n", st.State.Phase, step, 100-st.State.Weight, st.State.Weight, st.Waiting)
			if st.Sample != nil && st.Sample.Verdict != nil {
				fmt.Fprintln(e.stdout, sideLine("legacy", st.Sample.Legacy))
				fmt.Fprintln(e.stdout, sideLine("new", st.Sample.New))
				fmt.Fprintf(e.stdout, "verdict %s: %s\n", st.Sample.Verdict.Result, st.Sample.Verdict.Reason)
			}
			return nil
		},
	}
	addAdminFlags(cmd, &url, &token)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the status as JSON")
	return cmd
}

func newShiftCommandCmd(e *env, kind shift.CommandKind, short string) *cobra.Command {
	var url, token, reason string
	cmd := &cobra.Command{
		Use:     string(kind),
		Short:   short,
		Example: fmt.Sprintf("  cutover shift %s --reason \"...\" --admin http://127.0.0.1:9901 --token $TOKEN", kind),
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAdminClient(cmd, url, token)
			if err != nil {
				return err
			}
			var res shift.CommandResult
			code, err := c.do(cmd.Context(), http.MethodPost, "/v1/shift/"+string(kind), map[string]string{"reason": reason}, &res)
			if err != nil {
				return err
			}
			for _, ev := range res.Events {
				fmt.Fprintf(e.stdout, "%-16s %s\n", ev.Type, ev.Message)
			}
			fmt.Fprintf(e.stdout, "now %s at new %d%%\n", res.State.Phase, res.State.Weight)
			if code == http.StatusConflict {
				return &silentError{code: ExitWarnings}
			}
			return nil
		},
	}
	addAdminFlags(cmd, &url, &token)
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the audit trail")
	return cmd
}
