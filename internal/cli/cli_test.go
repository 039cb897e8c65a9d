package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cutoverhq/cutover/audit"
)

// run runs cutover with args, as main does, and returns stdout, stderr and
// the exit status.
func run(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := Run(context.Background(), args, strings.NewReader(""), &stdout, &stderr)
	code := ExitCode(err, &stderr)
	return stdout.String(), stderr.String(), code
}

var ecsExample = []string{
	"../../examples/ecs/payments-api/taskdef.json",
	"../../examples/ecs/payments-api/services.json",
	"../../examples/ecs/payments-api/target-groups.json",
}

func TestConvertWritesTheLayout(t *testing.T) {
	out := filepath.Join(t.TempDir(), "migration")
	log := "file:" + filepath.Join(t.TempDir(), "audit.log")
	stdout, stderr, code := run(t, append([]string{"convert", "--out", out, "--envs", "staging,prod", "--audit", log}, ecsExample...)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	// The run is in the audit log, with its inputs, outputs and where the
	// service runs in each environment.
	var recs []audit.Record
	rep, err := audit.Verify(context.Background(), log, audit.VerifyOptions{Visit: func(e audit.Entry) { recs = append(recs, e.Record) }})
	if err != nil || !rep.OK() {
		t.Fatalf("audit log: %v %+v", err, rep)
	}
	var d audit.ConvertData
	if len(recs) == 0 || recs[0].Kind != audit.KindConvert || recs[0].DecodeData(&d) != nil ||
		len(d.Inputs) != 3 || len(d.Placements) != 2 || d.Placements[1].Namespace != "platform-prod" {
		t.Errorf("convert record %+v", recs)
	}
	if !strings.Contains(stdout, "converted 1 service(s) (payments-api)") {
		t.Errorf("stdout: %s", stdout)
	}
	for _, f := range []string{"chart/Chart.yaml", "values/base.yaml", "values/env/prod.yaml", "values/services/payments-api.yaml", "argocd/applicationset.yaml", "MIGRATION.md"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("missing %s", f)
		}
	}
}

// Bad input exits 2, names file, line and field, and leaves the previous
// output whole.
func TestBadInputExitsTwoAndWritesNothing(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "migration")
	if _, stderr, code := run(t, append([]string{"convert", "-q", "--out", out}, ecsExample...)...); code != 0 {
		t.Fatalf("first run: %d %s", code, stderr)
	}
	before, _ := os.ReadFile(filepath.Join(out, "MIGRATION.md"))

	bad := map[string]string{
		"invalid.json":       "{\"taskDefinition\": {\"family\": \"x\",\n  \"containerDefinitions\": [\n}",
		"no-containers.json": `{"taskDefinition": {"family": "web", "containerDefinitions": []}}`,
		"unknown.txt":        "just some text\n",
	}
	wants := map[string]string{
		"invalid.json":       "invalid.json:",
		"no-containers.json": "containerDefinitions",
		"unknown.txt":        "cannot tell the input format",
	}
	for name, content := range bad {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o644)
		_, stderr, code := run(t, "convert", "--out", out, ecsExample[0], p)
		if code != 2 {
			t.Errorf("%s: exit %d, want 2 (%s)", name, code, stderr)
		}
		if !strings.Contains(stderr, wants[name]) {
			t.Errorf("%s: error %q does not name %q", name, stderr, wants[name])
		}
		after, err := os.ReadFile(filepath.Join(out, "MIGRATION.md"))
		if err != nil || !bytes.Equal(before, after) {
			t.Errorf("%s: the previous output was touched", name)
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".migration") {
			t.Errorf("temporary directory left behind: %s", e.Name())
		}
	}
}

func TestUsageErrorsExitTwo(t *testing.T) {
	for _, args := range [][]string{
		{"convert", "examples"}, // --out missing
		{"convert", "--from", "cloudformation", "--out", "x", "f"},
		{"bogus"},
		{"shift", "run"},
		{"convert", "--envs", "Prod!", "--out", "x", ecsExample[0]},
	} {
		if _, stderr, code := run(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, stderr)
		}
	}
}

func TestStrictExitsOneButWrites(t *testing.T) {
	out := filepath.Join(t.TempDir(), "m")
	_, stderr, code := run(t, append([]string{"convert", "-q", "--strict", "--out", out}, ecsExample...)...)
	if code != 1 || !strings.Contains(stderr, "--strict") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(out, "MIGRATION.md")); err != nil {
		t.Errorf("--strict did not write the output")
	}
}

func TestEveryCommandHasHelpWithAnExample(t *testing.T) {
	root := newRoot(&env{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}})
	var walk func(c interface {
		Name() string
	})
	_ = walk
	for _, c := range root.Commands() {
		if c.Name() == "help" || c.Name() == "completion" {
			continue
		}
		if c.Short == "" {
			t.Errorf("%s has no short help", c.Name())
		}
		if c.Example == "" {
			t.Errorf("%s has no example", c.Name())
		}
		for _, sub := range c.Commands() {
			if sub.Example == "" || sub.Short == "" {
				t.Errorf("%s %s lacks help or an example", c.Name(), sub.Name())
			}
		}
	}
}

func TestShiftValidateNamesABackendThatDoesNotAnswer(t *testing.T) {
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := dead.Addr().String()
	dead.Close()
	plan := filepath.Join(t.TempDir(), "plan.yaml")
	os.WriteFile(plan, []byte(`apiVersion: cutover.dev/v1alpha1
kind: ShiftPlan
spec:
  service: web
  legacy:
    addresses: ["http://`+ln.Addr().String()+`"]
  new:
    addresses: ["http://`+deadAddr+`"]
  router: {type: proxy, listen: "127.0.0.1:0"}
  slo: {errorRate: {max: 1%}}
  steps: [{weight: 100}]
`), 0o644)
	stdout, stderr, code := run(t, "shift", "validate", plan)
	if code != 2 || !strings.Contains(stdout, "plan.yaml:8: spec.new.addresses[0]") || !strings.Contains(stdout, "does not answer") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	stdout, _, code = run(t, "shift", "validate", "--offline", plan)
	if code != 0 || !strings.Contains(stdout, "is valid") {
		t.Fatalf("offline: %d %s", code, stdout)
	}
}

func TestShiftCommandsNeedAToken(t *testing.T) {
	t.Setenv("CUTOVER_ADMIN_TOKEN", "")
	if _, stderr, code := run(t, "shift", "status"); code != 2 || !strings.Contains(stderr, "token") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
}

// The README's main command: the demo rolls back by itself, completes, and
// prints one JSON object as its last line.
func TestDemoJSON(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo takes about 25 s")
	}
	dir := t.TempDir()
	stdout, stderr, code := run(t, "demo", "--json", "--report", filepath.Join(dir, "report"))
	if code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, stderr, stdout)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	var res struct {
		Requests        int64    `json:"requests"`
		ClientErrors    *int64   `json:"client_errors"`
		RollbackSeconds *float64 `json:"rollback_seconds"`
		Completed       *bool    `json:"completed"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("last line is not JSON: %q", lines[len(lines)-1])
	}
	if res.Requests < 1000 || res.ClientErrors == nil || *res.ClientErrors != 0 || res.RollbackSeconds == nil ||
		*res.RollbackSeconds <= 0 || *res.RollbackSeconds >= 1 || res.Completed == nil || !*res.Completed {
		t.Errorf("demo result %s", lines[len(lines)-1])
	}
	for _, f := range []string{"rollback/report.md", "rollback/report.html", "healthy/report.md"} {
		if _, err := os.Stat(filepath.Join(dir, "report", f)); err != nil {
			t.Errorf("missing %s", f)
		}
	}
}
