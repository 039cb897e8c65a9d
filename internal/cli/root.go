// Package cli holds cutover's commands, one file each. Run builds the
// command tree and runs it; ExitCode maps the error it returns to the
// process exit status in one place.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cutoverhq/cutover/source"
)

// Exit codes, as the README documents them.
const (
	ExitOK = 0
	// ExitWarnings: done, but with warnings the user asked to treat as
	// errors (--strict), or a check (lint, verify) found problems.
	ExitWarnings = 1
	// ExitUsage: bad input or usage; nothing was written.
	ExitUsage = 2
)

// ExitError carries an exit code other than the default for its error.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// usageError marks an error as the user's: bad flags, bad input.
func usageError(err error) error { return &ExitError{Code: ExitUsage, Err: err} }

// ExitCode prints err (if any) to w and returns the exit status for it.
func ExitCode(err error, w io.Writer) int {
	if err == nil {
		return ExitOK
	}
	var silent *silentError
	if errors.As(err, &silent) {
		return silent.code
	}
	fmt.Fprintln(w, "cutover:", err)
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	var ie *source.InputError
	if errors.As(err, &ie) {
		return ExitUsage
	}
	if errors.Is(err, context.Canceled) {
		return 130
	}
	return ExitWarnings
}

// silentError is an error whose message the command already printed.
type silentError struct{ code int }

func (e *silentError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// env is what every command gets from Run: the streams and a logger.
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	log    *slog.Logger
}

// Run runs cutover with args (without the program name).
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	root := newRoot(e)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err != nil && isCobraUsage(err) {
		return usageError(err)
	}
	return err
}

func newRoot(e *env) *cobra.Command {
	var verbose bool
	root := &cobra.Command{
		Use:   "cutover",
		Short: "Move live services from Lambda, ECS and VMs onto Kubernetes without dropping a request",
		Long: `cutover moves live services from AWS Lambda, Amazon ECS and plain VMs onto
Kubernetes: it converts what a service runs on today into a GitOps-ready Helm
layout, then shifts live traffic across in steps with automatic rollback.`,
		Example: `  cutover convert --out migration examples/ecs/payments-api/*.json
  cutover lint migration`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRun: func(cmd *cobra.Command, args []string) {
			level := slog.LevelInfo
			if verbose {
				level = slog.LevelDebug
			}
			e.log = slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))
		},
	}
	root.PersistentFlags().BoolVarP(&verbose, "verbose", "v", false, "log debug detail to stderr")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError(err) })
	root.AddCommand(
		newVersionCmd(e),
		newConvertCmd(e),
		newLintCmd(e),
		newShiftCmd(e),
		newProxyCmd(e),
		newDemoCmd(e),
		newAuditCmd(e),
		newLambdaCmd(e),
		newDrillCmd(e),
	)
	return root
}

// isCobraUsage reports whether err is one of cobra's own usage errors
// (unknown command, wrong number of arguments), which it returns as plain
// errors.
func isCobraUsage(err error) bool {
	var ee *ExitError
	if errors.As(err, &ee) {
		return false
	}
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "required flag", "unknown shorthand", "accepts ", "requires at least", "requires at most", "requires exactly", "received "} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}
