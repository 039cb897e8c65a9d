package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/cutoverhq/cutover/audit"
	"github.com/cutoverhq/cutover/audit/export"
	"github.com/cutoverhq/cutover/convert"
	"github.com/cutoverhq/cutover/drill"
	"github.com/cutoverhq/cutover/internal/demo"
	"github.com/cutoverhq/cutover/internal/fsutil"
	"github.com/cutoverhq/cutover/plan"
	"github.com/cutoverhq/cutover/render"
	"github.com/cutoverhq/cutover/shift"
)

func newDemoCmd(e *env) *cobra.Command {
	var reportDir string
	var asJSON bool
	var rps int
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a local demo migration with real traffic: a shift that rolls back by itself, then one that completes",
		Long: `demo starts a legacy and a new backend in this process (the new one faster),
sends steady load through cutover's embedded proxy, and runs the plan
0 → 10 → 50 → 100 twice: the first time the new side starts failing at 50 % and
the shift rolls back by itself; the second time it completes. It prints what
happened, the requests served, the client-visible errors and the time from the
first failing request to 100 % legacy, and leaves its reports in --report.
It takes under a minute and needs nothing but this binary.`,
		Example: `  cutover demo
  cutover demo --report /tmp/demo --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			out := e.stdout
			fmt.Fprintln(out, "cutover demo: legacy and new backends, steady load through the embedded proxy")
			if err := os.MkdirAll(reportDir, 0o755); err != nil {
				return err
			}
			// The demo signs its audit log with a key of its own, so the
			// evidence it leaves verifies like a real one.
			logURL := "file:" + filepath.Join(reportDir, "audit.log")
			keyDir := filepath.Join(reportDir, "keys")
			os.RemoveAll(keyDir)
			os.Remove(filepath.Join(reportDir, "audit.log"))
			pub, err := audit.GenerateKey(keyDir)
			if err != nil {
				return err
			}
			key, err := audit.LoadPrivateKey(filepath.Join(keyDir, "audit.key"))
			if err != nil {
				return err
			}
			af := auditFlags{url: logURL, key: filepath.Join(keyDir, "audit.key")}
			migration, err := demoConvert(cmd.Context(), reportDir, af)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "converted the service's ECS definitions into %s\n", migration)
			res, err := demo.Demo(cmd.Context(), demo.Options{
				Audit: func(ctx context.Context) (audit.Log, error) {
					return audit.Open(ctx, logURL, audit.Options{Key: key, Actor: osUser()})
				},
				RPS: rps,
				Log: e.log.With("component", "demo"),
				Observers: func(run string, p *plan.Plan, r *shift.Runner) []shift.Observer {
					fmt.Fprintf(out, "\n== run %q: %s\n", run, stepList(p))
					return []shift.Observer{newDisplay(out, p, r)}
				},
			})
			if err != nil {
				return err
			}
			for _, run := range res.Runs {
				if err := writeShiftReport(filepath.Join(reportDir, run.Name), run.Report); err != nil {
					return err
				}
			}
			fmt.Fprintf(out, "\nrequests served:        %d\n", res.Requests)
			fmt.Fprintf(out, "client-visible errors:  %d (new-side failures replayed on legacy: %d)\n", res.ClientErrors, res.Replays)
			fmt.Fprintf(out, "rolled back by itself:  %v, %.3f s from the first failing request to 100 %% legacy\n", res.RolledBack, res.RollbackSeconds)
			fmt.Fprintf(out, "second run completed:   %v\n", res.Completed)
			// A resilience drill: the new side returns errors at 50 %; the
			// shift must detect it and roll back within a second, with no
			// client-visible error.
			fmt.Fprintln(out, "\n== drill: the new side answers 503 at 50 %")
			dr, err := demoDrill(cmd.Context(), auditDrill(logURL, key))
			if err != nil {
				return err
			}
			secs := func(f *float64) string {
				if f == nil {
					return "none"
				}
				return fmt.Sprintf("%.3f s", *f)
			}
			fmt.Fprintf(out, "drill passed: %v (detection %s, rollback %s, client errors %d of %d)\n",
				dr.Passed, secs(dr.DetectionSeconds), secs(dr.RollbackSeconds), dr.ClientErrors, dr.Requests)
			evidence, err := export.Build(cmd.Context(), logURL, export.Options{Key: pub})
			if err != nil {
				return err
			}
			for _, format := range []string{"md", "html"} {
				var buf bytes.Buffer
				if err := export.Write(&buf, evidence, format); err != nil {
					return err
				}
				if err := fsutil.WriteFileAtomic(filepath.Join(reportDir, "evidence."+format), buf.Bytes(), 0o644); err != nil {
					return err
				}
			}
			fmt.Fprintf(out, "reports:                %s/{rollback,healthy}/report.{md,html}\n", reportDir)
			fmt.Fprintf(out, "audit log:              %s (signed; cutover audit verify %s --key %s)\n", logURL, logURL, filepath.Join(keyDir, "audit.pub"))
			fmt.Fprintf(out, "DORA evidence:          %s/evidence.{md,html}\n", reportDir)
			if asJSON {
				b, _ := json.Marshal(res)
				fmt.Fprintln(out, string(b))
			}
			if !res.RolledBack || !res.Completed {
				return &ExitError{Code: ExitWarnings, Err: fmt.Errorf("the demo did not go as designed: rolled back %v, completed %v", res.RolledBack, res.Completed)}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&reportDir, "report", "cutover-demo", "directory for the reports")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as one JSON object on the last line")
	cmd.Flags().IntVar(&rps, "rps", 300, "steady load, requests per second")
	return cmd
}

// demoConvert converts the demo service's embedded ECS definitions into
// DIR/migration, recording the run in the audit log.
func demoConvert(ctx context.Context, dir string, af auditFlags) (string, error) {
	inputs := filepath.Join(dir, "inputs")
	if err := os.MkdirAll(inputs, 0o755); err != nil {
		return "", err
	}
	entries, err := demo.ExampleInputs.ReadDir("example")
	if err != nil {
		return "", err
	}
	var paths []string
	for _, e := range entries {
		b, err := demo.ExampleInputs.ReadFile("example/" + e.Name())
		if err != nil {
			return "", err
		}
		p := filepath.Join(inputs, e.Name())
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return "", err
		}
		paths = append(paths, p)
	}
	out := filepath.Join(dir, "migration")
	f := convertFlags{out: out, audit: af}
	opts := convert.Options{Render: render.Options{Team: "payments"}}
	res, err := convert.Convert(ctx, paths, opts)
	if err != nil {
		return "", err
	}
	if err := render.WriteDir(out, res.Tree); err != nil {
		return "", err
	}
	return out, auditConvert(ctx, f, opts, res)
}

// demoDrill runs an errors drill on the demo's plan, both sides simulated.
func demoDrill(ctx context.Context, rec func(context.Context, *drill.Result) error) (*drill.Result, error) {
	src := fmt.Sprintf(demo.PlanYAML, "drill", "http://127.0.0.1:1", "http://127.0.0.1:1", "127.0.0.1:0", "")
	p, err := plan.Parse("demo-drill-plan.yaml", []byte(src))
	if err != nil {
		return nil, err
	}
	return drill.RunPlan(ctx, drill.Spec{Kind: drill.Errors, Side: "new", For: 5 * time.Second}, drill.PlanOptions{Plan: p, Recorder: rec})
}
