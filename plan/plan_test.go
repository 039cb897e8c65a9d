package plan

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"

	"github.com/cutoverhq/cutover/source"
)

func TestParseFullPlan(t *testing.T) {
	p, err := Load("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := p.Spec
	if p.Metadata.Name != "payments-api-eu" || s.Service != "payments-api" || len(s.Legacy.Addresses) != 2 {
		t.Errorf("metadata/backends: %+v", p)
	}
	if len(s.Steps) != 5 || s.Steps[2].Approval.Count != 2 || !s.Steps[2].Approval.FourEyes || s.Steps[0].Mirror != 10 {
		t.Errorf("steps: %+v", s.Steps)
	}
	if s.SLO.LatencyP99.Max.D() != 800*time.Millisecond || s.SLO.ErrorRate.Max != 0.5 || s.SLO.SuccessRate != 99.5 {
		t.Errorf("slo: %+v", s.SLO)
	}
	if s.Rollback.Mode != RollbackPreviousStep || s.Analysis.Interval.D() != 500*time.Millisecond {
		t.Errorf("rollback/analysis: %+v %+v", s.Rollback, s.Analysis)
	}
	if len(p.Digest) != 64 {
		t.Errorf("digest %q", p.Digest)
	}
	var settings struct {
		Listen string `yaml:"listen"`
	}
	if err := p.DecodeSettings(&p.Spec.Router, "spec.router", &settings); err != nil || settings.Listen != ":8080" {
		t.Errorf("router settings: %v %+v", err, settings)
	}
}

func TestDefaults(t *testing.T) {
	p, err := Parse("p.yaml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	a := p.Spec.Analysis
	if p.Spec.Metrics.Type != "embedded" || a.Interval.D() != 250*time.Millisecond || a.Window.D() != 30*time.Second ||
		a.MinRequests != 20 || a.FailureLimit != 1 || p.Spec.Rollback.Mode != RollbackToZero {
		t.Errorf("defaults: %+v %+v", p.Spec.Metrics, a)
	}
	if p.Spec.Steps[0].Hold.D() != time.Minute || p.Spec.Steps[1].Hold != 0 {
		t.Errorf("holds: %+v", p.Spec.Steps)
	}
}

const minimal = `apiVersion: cutover.dev/v1alpha1
kind: ShiftPlan
spec:
  service: web
  legacy: {addresses: ["http://127.0.0.1:9001"]}
  new: {addresses: ["http://127.0.0.1:9002"]}
  router: {type: proxy}
  slo: {errorRate: {max: 1%}}
  steps:
    - weight: 10
    - weight: 100
`

func TestBadPlansNameTheField(t *testing.T) {
	RouterKnown = func(name string) error {
		if name != "proxy" {
			return errors.New(`unknown router "` + name + `" (known: proxy)`)
		}
		return nil
	}
	defer func() { RouterKnown = nil }()
	cases := []struct {
		name, from, to string
		field, msg     string
		line           int
	}{
		{"weights not rising", "    - weight: 100\n", "    - weight: 5\n", "spec.steps[1].weight", "must rise", 11},
		{"weight over 100", "    - weight: 100\n", "    - weight: 120\n", "spec.steps[1].weight", "outside 0..100", 11},
		{"unknown router", "router: {type: proxy}", "router: {type: envoy}", "spec.router.type", `unknown router "envoy"`, 7},
		{"no steps", "  steps:\n    - weight: 10\n    - weight: 100\n", "  steps: []\n", "spec.steps", "at least one step", 9},
		{"bad address", `"http://127.0.0.1:9002"`, `"ftp://x"`, "spec.new.addresses[0]", "not an http(s) URL", 6},
		{"unknown field", "  service: web\n", "  service: web\n  servce: typo\n", "spec.servce", "unknown field", 5},
		{"bad duration", "    - weight: 10\n", "    - weight: 10\n      hold: 5 minutes\n", "spec.steps[0].hold", "not a duration", 11},
		{"wrong version", "cutover.dev/v1alpha1", "cutover.dev/v9", "apiVersion", "want", 1},
		{"no slo", "  slo: {errorRate: {max: 1%}}\n", "", "spec.slo", "no SLO", 0},
		{"bad percent", "max: 1%", "max: lots", "spec.slo.errorRate.max", "not a percentage", 8},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := strings.Replace(minimal, c.from, c.to, 1)
			if src == minimal {
				t.Fatalf("replacement %q did not apply", c.from)
			}
			_, err := Parse("plan.yaml", []byte(src))
			var ie *source.InputError
			if !errors.As(err, &ie) {
				t.Fatalf("want *source.InputError, got %v", err)
			}
			if ie.File != "plan.yaml" || ie.Field != c.field || !strings.Contains(err.Error(), c.msg) || (c.line != 0 && ie.Line != c.line) {
				t.Fatalf("got %q (line %d, field %q), want field %q line %d containing %q", err, ie.Line, ie.Field, c.field, c.line, c.msg)
			}
		})
	}
}

func TestUnknownSettingNamesItsLine(t *testing.T) {
	src := strings.Replace(minimal, "router: {type: proxy}", "router:\n    type: proxy\n    lisen: \":80\"", 1)
	p, err := Parse("plan.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Listen string `yaml:"listen"`
	}
	err = p.DecodeSettings(&p.Spec.Router, "spec.router", &s)
	var ie *source.InputError
	if !errors.As(err, &ie) || ie.Field != "spec.router.lisen" || ie.Line != 9 {
		t.Fatalf("got %v", err)
	}
}

// The shipped JSON Schema accepts every example plan and the test plans,
// and rejects what Parse rejects for shape.
func TestSchemaAcceptsExamples(t *testing.T) {
	c := jsonschema.NewCompiler()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(Schema()))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddResource("schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("schema.json")
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("../examples/shift/*.yaml")
	files = append(files, "testdata/full.yaml")
	check := func(name string, data []byte) error {
		var v any
		if err := yaml.Unmarshal(data, &v); err != nil {
			return err
		}
		// Round-trip through JSON so YAML timestamps become strings.
		b, err := json.Marshal(jsonable(v))
		if err != nil {
			return err
		}
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			return err
		}
		return sch.Validate(inst)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(data, []byte("kind: ShiftPlan")) {
			continue // tokens files and the like live beside the plans
		}
		if _, err := Parse(f, data); err != nil {
			t.Errorf("%s: %v", f, err)
		}
		if err := check(f, data); err != nil {
			t.Errorf("%s: schema rejects it: %v", f, err)
		}
	}
	if err := check("minimal", []byte(minimal)); err != nil {
		t.Errorf("minimal: %v", err)
	}
	bad := strings.Replace(minimal, "weight: 100", "weight: 101", 1)
	if err := check("bad", []byte(bad)); err == nil {
		t.Errorf("schema accepts weight 101")
	}
	typo := strings.Replace(minimal, "  service: web", "  service: web\n  servce: x", 1)
	if err := check("typo", []byte(typo)); err == nil {
		t.Errorf("schema accepts an unknown field")
	}
}

func jsonable(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = jsonable(e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = jsonable(e)
		}
		return x
	case time.Time:
		return x.Format(time.RFC3339)
	default:
		return v
	}
}

func TestBlackoutWindows(t *testing.T) {
	p, err := Load("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	berlin, _ := time.LoadLocation("Europe/Berlin")
	cases := []struct {
		at   time.Time
		want bool
		name string
	}{
		{time.Date(2026, 11, 24, 12, 0, 0, 0, berlin), true, "lunch peak"}, // a Tuesday
		{time.Date(2026, 11, 24, 14, 0, 0, 0, berlin), false, ""},
		{time.Date(2026, 11, 28, 12, 0, 0, 0, berlin), false, ""}, // Saturday
		{time.Date(2026, 12, 26, 12, 0, 0, 0, time.UTC), true, "year-end freeze"},
	}
	for _, c := range cases {
		in, name, _ := p.InBlackout(c.at)
		if in != c.want || name != c.name {
			t.Errorf("%s: got %v %q, want %v %q", c.at, in, name, c.want, c.name)
		}
	}
	overnight := Blackout{Start: "22:00", End: "02:00"}
	if ok, until := overnight.Active(time.Date(2026, 1, 1, 1, 0, 0, 0, time.UTC)); !ok || until.Hour() != 2 {
		t.Errorf("overnight window: %v %v", ok, until)
	}
}

func FuzzParse(f *testing.F) {
	full, _ := os.ReadFile("testdata/full.yaml")
	f.Add(full)
	f.Add([]byte(minimal))
	f.Add([]byte("apiVersion: x\nspec: {steps: [{weight: 1}]}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("fuzz.yaml", data)
		if err != nil {
			var ie *source.InputError
			if !errors.As(err, &ie) {
				t.Fatalf("error is not an InputError: %v", err)
			}
			return
		}
		// A plan that parses is valid: rising weights within 0..100.
		prev := -1
		for _, s := range p.Spec.Steps {
			if s.Weight <= prev || s.Weight > 100 {
				t.Fatalf("accepted bad weights %+v", p.Spec.Steps)
			}
			prev = s.Weight
		}
	})
}

func TestGitCommit(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	dir := t.TempDir()
	run := func(args ...string) {
		cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v %s", args, err, out)
		}
	}
	file := filepath.Join(dir, "plan.yaml")
	os.WriteFile(file, []byte(minimal), 0o644)
	p, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	if c := p.GitCommit(context.Background()); c != "" {
		t.Errorf("outside git: %q", c)
	}
	run("init", "-q")
	run("add", "plan.yaml")
	run("commit", "-q", "-m", "plan")
	c := p.GitCommit(context.Background())
	if len(c) != 40 {
		t.Fatalf("commit %q", c)
	}
	os.WriteFile(file, []byte(minimal+"# edited\n"), 0o644)
	if d := p.GitCommit(context.Background()); d != c+"+dirty" {
		t.Errorf("edited plan: %q", d)
	}
}
