package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/cutoverhq/cutover/internal/testenv"
	"github.com/cutoverhq/cutover/render"
)

// runLint runs `cutover lint args...` through the command itself and
// returns stdout, stderr and the exit status main would use.
func runLint(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr}
	cmd := newLintCmd(e)
	cmd.SetArgs(args)
	cmd.SetOut(&stdout)
	cmd.SetErr(&stderr)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err) })
	err := cmd.ExecuteContext(context.Background())
	code := ExitCode(err, &stderr)
	return stdout.String(), stderr.String(), code
}

func lintLayout(t *testing.T) string {
	t.Helper()
	res, _ := testenv.Convert(t, testenv.Case(t, "../..", "ecs", "fargate-web"), true)
	dir := filepath.Join(t.TempDir(), "migration")
	if err := render.WriteDir(dir, res.Tree); err != nil {
		t.Fatal(err)
	}
	return dir
}

// ignoreFlags are the checks these tests ignore: none, since the chart
// passes kube-score's CRITICAL checks on this input.
func ignoreFlags() []string { return nil }

func TestLintCommand(t *testing.T) {
	dir := lintLayout(t)

	t.Run("clean layout exits 0", func(t *testing.T) {
		out, errOut, code := runLint(t, append(ignoreFlags(), dir)...)
		if code != ExitOK {
			t.Fatalf("exit %d, stderr %q, stdout:\n%s", code, errOut, out)
		}
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if l != "" && !strings.HasPrefix(l, "WARNING ") {
				t.Errorf("unexpected line on a clean layout: %s", l)
			}
		}
	})

	t.Run("warnings fail with --fail-on warning", func(t *testing.T) {
		out, _, code := runLint(t, append(ignoreFlags(), "--fail-on", "warning", dir)...)
		want := ExitOK
		if strings.Contains(out, "WARNING ") {
			want = ExitWarnings
		}
		if code != want {
			t.Errorf("exit %d, want %d; stdout:\n%s", code, want, out)
		}
	})

	t.Run("an error finding exits 1 with one line per finding", func(t *testing.T) {
		bad := lintLayout(t)
		p := filepath.Join(bad, "values", "env", "prod.yaml")
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, append(b, []byte("imagePullPolicy: Never\n")...), 0o644); err != nil {
			t.Fatal(err)
		}
		out, errOut, code := runLint(t, append(ignoreFlags(), bad)...)
		if code != ExitWarnings {
			t.Fatalf("exit %d, want %d", code, ExitWarnings)
		}
		if !strings.Contains(out, "ERROR payments-api/prod: drift: imagePullPolicy is \"Never\" here") || !strings.Contains(out, "(values/env/prod.yaml:") {
			t.Errorf("drift line missing from:\n%s", out)
		}
		if !strings.Contains(errOut, "finding(s) at or above error") || strings.Contains(errOut, "exit status") {
			t.Errorf("stderr = %q", errOut)
		}
	})

	t.Run("json", func(t *testing.T) {
		out, _, code := runLint(t, append(ignoreFlags(), "--format", "json", "--env", "prod", dir)...)
		if code != ExitOK {
			t.Fatalf("exit %d", code)
		}
		var res struct {
			Services []string `json:"services"`
			Envs     []string `json:"envs"`
			Findings []map[string]any
		}
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, out)
		}
		if strings.Join(res.Envs, ",") != "prod" || strings.Join(res.Services, ",") != "payments-api" {
			t.Errorf("json = %+v", res)
		}
		for _, f := range res.Findings {
			if f["severity"] != "warning" || f["service"] != "payments-api" || f["check"] == "" {
				t.Errorf("finding %v", f)
			}
		}
	})

	t.Run("not a layout exits 2", func(t *testing.T) {
		_, errOut, code := runLint(t, t.TempDir())
		if code != ExitUsage || !strings.Contains(errOut, "not a cutover layout") {
			t.Errorf("exit %d, stderr %q", code, errOut)
		}
	})

	t.Run("bad flags exit 2", func(t *testing.T) {
		for _, args := range [][]string{{"--fail-on", "fatal", dir}, {"--format", "yaml", dir}} {
			if _, errOut, code := runLint(t, args...); code != ExitUsage {
				t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
			}
		}
	})
}
