package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/cutoverhq/cutover/lint"
)

func newLintCmd(e *env) *cobra.Command {
	var (
		failOn   string
		format   string
		services []string
		envs     []string
		ignore   []string
	)
	cmd := &cobra.Command{
		Use:   "lint DIR",
		Short: "Check a converted layout for best-practice failures and drift between environments",
		Long: `lint renders every service of a layout (what 'cutover convert' wrote) in every
environment with the layout's own chart, and reports:

  - best-practice failures: kube-score's CRITICAL and WARNING checks (its
    kube-score/ignore annotations have no effect), and cutover's own:
    probes and resources missing, replicas set beside an HPA or KEDA
    ScaledObject, a PodDisruptionBudget stricter than the autoscaler's
    minimum, images tagged latest or untagged, a grace period without a
    preStop hook, and fill: values left empty;
  - drift: a value that differs between environments although it is not
    listed under environmentKeys: in values/base.yaml.

Each finding is one line: SEVERITY service/env: check: message (file).
The exit status is 0 when no finding is at or above --fail-on, 1 when one
is, and 2 when DIR is not a layout.`,
		Example: `  cutover lint migration
  cutover lint --fail-on warning --env prod migration
  cutover lint --format json migration | jq '.findings[] | select(.check == "drift")'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			min, err := lint.ParseSeverity(failOn)
			if err != nil {
				return usageError(fmt.Errorf("--fail-on: %w", err))
			}
			if format != "text" && format != "json" {
				return usageError(fmt.Errorf("--format: unknown format %q (text, json)", format))
			}
			res, err := lint.Dir(cmd.Context(), args[0], lint.Options{Services: services, Envs: envs, Ignore: ignore})
			if err != nil {
				if errors.Is(err, lint.ErrNotLayout) {
					return usageError(err)
				}
				return err
			}
			if format == "json" {
				err = res.WriteJSON(e.stdout)
			} else {
				err = res.WriteText(e.stdout)
			}
			if err != nil {
				return err
			}
			if n := res.Count(min); n > 0 {
				if format == "text" {
					fmt.Fprintf(e.stderr, "cutover lint: %d finding(s) at or above %s in %d service(s) × %d environment(s)\n", n, min, len(res.Services), len(res.Envs))
				}
				return &silentError{code: ExitWarnings}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&failOn, "fail-on", "error", "exit 1 when a finding is at or above this severity: error or warning")
	f.StringVar(&format, "format", "text", "output format: text (one line per finding) or json")
	f.StringSliceVar(&services, "service", nil, "lint only these services (repeatable); default all")
	f.StringSliceVar(&envs, "env", nil, "lint only these environments (repeatable); default all; drift compares the ones linted")
	f.StringSliceVar(&ignore, "ignore-check", nil, "drop the findings of this check id, kube-score's or cutover's (repeatable)")
	return cmd
}
