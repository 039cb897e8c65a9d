package lint

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/cutoverhq/cutover/internal/testenv"
	"github.com/cutoverhq/cutover/render"
)

// layout converts a golden case of an importer, fills its values when
// fill is set, and writes the layout to a temporary directory.
func layout(t *testing.T, format, name string, fill bool) string {
	t.Helper()
	res, _ := testenv.Convert(t, testenv.Case(t, "..", format, name), fill)
	dir := filepath.Join(t.TempDir(), "migration")
	if err := render.WriteDir(dir, res.Tree); err != nil {
		t.Fatal(err)
	}
	return dir
}

// edit rewrites one file of a layout with a regexp replacement that must
// match.
func edit(t *testing.T, dir, rel, pattern, repl string) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(rel))
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(pattern)
	if !re.Match(b) {
		t.Fatalf("test bug: %q matches nothing in %s:\n%s", pattern, rel, b)
	}
	if err := os.WriteFile(p, re.ReplaceAll(b, []byte(repl)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// lintOpts ignores nothing: a converted layout passes every kube-score
// check at CRITICAL, except what its input forces (see clean).
var lintOpts = Options{}

func run(t *testing.T, dir string) *Result {
	t.Helper()
	res, err := Dir(context.Background(), dir, lintOpts)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// has returns the findings matching every non-empty field of want (Message
// as a substring).
func has(res *Result, want Finding) []Finding {
	var out []Finding
	for _, f := range res.Findings {
		if want.Check != "" && f.Check != want.Check || want.Env != "*" && f.Env != want.Env ||
			want.File != "" && f.File != want.File || want.Severity != 0 && f.Severity != want.Severity ||
			!strings.Contains(f.Message, want.Message) {
			continue
		}
		out = append(out, f)
	}
	return out
}

func expect(t *testing.T, res *Result, want Finding) Finding {
	t.Helper()
	got := has(res, want)
	if len(got) != 1 {
		var all []string
		for _, f := range res.Findings {
			all = append(all, f.String())
		}
		t.Fatalf("want one finding like %+v, got %d; all findings:\n%s", want, len(got), strings.Join(all, "\n"))
	}
	return got[0]
}

// clean is what a converted layout must be: no error, and nothing from
// cutover's own checks (kube-score may still warn).
func clean(t *testing.T, res *Result) {
	t.Helper()
	for _, f := range res.Findings {
		if f.Severity >= Error || f.Source == SourceCutover {
			t.Errorf("converted layout not clean: %s", f)
		}
	}
}

func TestLintConvertedLayout(t *testing.T) {
	dir := layout(t, "ecs", "fargate-web", true)
	res := run(t, dir)
	if strings.Join(res.Envs, ",") != "dev,prod,staging" || strings.Join(res.Services, ",") != "payments-api" {
		t.Fatalf("linted %v × %v", res.Services, res.Envs)
	}
	clean(t, res)

	t.Run("drift in prod", func(t *testing.T) {
		dir := layout(t, "ecs", "fargate-web", true)
		edit(t, dir, "values/env/prod.yaml", `(?m)\z`, "imagePullPolicy: Never\n")
		res := run(t, dir)
		f := expect(t, res, Finding{Check: CheckDrift, Env: "*", Message: "imagePullPolicy"})
		if f.Env != "prod" || f.File != "values/env/prod.yaml" || f.Line == 0 || f.Severity != Error ||
			!strings.HasPrefix(f.Message, `imagePullPolicy is "Never" here but "Always" in dev, "Always" in staging`) {
			t.Errorf("drift finding = %s", f)
		}
	})

	t.Run("drift in a service's environments section", func(t *testing.T) {
		dir := layout(t, "ecs", "fargate-web", true)
		// The section names each environment's IAM role already.
		edit(t, dir, "values/services/payments-api.yaml", `(?m)^  prod:\n`,
			"  prod:\n    terminationGracePeriodSeconds: 90\n    autoscaling: {minReplicas: 6}\n")
		res := run(t, dir)
		f := expect(t, res, Finding{Check: CheckDrift, Env: "*"})
		if f.Env != "prod" || f.File != "values/services/payments-api.yaml" || f.Line == 0 ||
			!strings.HasPrefix(f.Message, "terminationGracePeriodSeconds is 90 here (set under environments.prod) but 65 in dev, 65 in staging") {
			t.Errorf("drift finding = %s", f)
		}
		// autoscaling.minReplicas is an environment key: no drift.
	})

	t.Run("image latest", func(t *testing.T) {
		dir := layout(t, "ecs", "fargate-web", true)
		edit(t, dir, "values/services/payments-api.yaml", `payments-api:2024\.11\.3-7f3c9e1`, "payments-api:latest")
		res := run(t, dir)
		f := expect(t, res, Finding{Check: CheckImageLatest, Env: "*"})
		if f.Env != "" || f.File != "values/services/payments-api.yaml" || f.Severity != Error || f.Object != "Deployment/payments-api" {
			t.Errorf("image finding = %s", f)
		}
		if got := has(res, Finding{Check: "container-image-tag", Env: "*"}); len(got) != 0 {
			t.Errorf("kube-score's duplicate of the image finding was kept: %v", got)
		}
	})

	t.Run("readiness probe removed", func(t *testing.T) {
		dir := layout(t, "ecs", "fargate-web", true)
		edit(t, dir, "values/services/payments-api.yaml", `(?m)^    readinessProbe:\n(      .*\n)+`, "")
		res := run(t, dir)
		f := expect(t, res, Finding{Check: CheckProbes, Env: "*", Severity: Error})
		if f.Env != "" || f.Message != "container payments-api has no readiness probe: a Service sends it traffic before it is ready, and during every rollout" {
			t.Errorf("probe finding = %s", f)
		}
	})

	t.Run("PDB that blocks every eviction", func(t *testing.T) {
		dir := layout(t, "ecs", "fargate-web", true)
		edit(t, dir, "values/base.yaml", `(?m)^(pdb:\n  enabled: true\n  maxUnavailable:) 1$`, "$1 0")
		res := run(t, dir)
		if n := len(has(res, Finding{Check: CheckPDBAutoscaler, Env: "*"})); n != 3 {
			t.Errorf("%d PDB findings, want one per environment", n)
		}
		f := expect(t, res, Finding{Check: CheckPDBAutoscaler, Env: "prod"})
		if f.File != "values/base.yaml" || f.Line == 0 || f.Object != "PodDisruptionBudget/payments-api" ||
			!strings.HasPrefix(f.Message, "maxUnavailable 0 allows no eviction at 4 replicas (the minimum of HorizontalPodAutoscaler/payments-api)") {
			t.Errorf("PDB finding = %s", f)
		}
	})

	t.Run("a value the chart's schema refuses", func(t *testing.T) {
		dir := layout(t, "ecs", "fargate-web", true)
		edit(t, dir, "values/env/staging.yaml", `(?m)\z`, "imagePullPolicy: Sometimes\n")
		res := run(t, dir)
		f := expect(t, res, Finding{Check: CheckRender, Env: "*"})
		if f.Env != "staging" || f.File != "values/env/staging.yaml" || f.Line == 0 || !strings.Contains(f.Message, "the chart does not render: imagePullPolicy: ") {
			t.Errorf("render finding = %s", f)
		}
	})

	t.Run("ignored checks", func(t *testing.T) {
		dir := layout(t, "ecs", "fargate-web", true)
		edit(t, dir, "values/services/payments-api.yaml", `payments-api:2024\.11\.3-7f3c9e1`, "payments-api:latest")
		res, err := Dir(context.Background(), dir, Options{Ignore: []string{CheckImageLatest}})
		if err != nil {
			t.Fatal(err)
		}
		clean(t, res)
	})
}

func TestLintUnfilledValues(t *testing.T) {
	dir := layout(t, "ecs", "placeholders-and-nulls", false)
	res := run(t, dir)
	got := has(res, Finding{Check: CheckUnfilled, Env: ""})
	if len(got) == 0 {
		t.Fatalf("no unfilled-value finding for a layout with values to fill:\n%v", res.Findings)
	}
	for _, f := range got {
		if f.File != "values/services/notification-gateway.yaml" || f.Line == 0 || !strings.HasPrefix(f.Message, "fill.") {
			t.Errorf("unfilled finding = %s", f)
		}
	}
	f := expect(t, res, Finding{Check: CheckUnfilled, Env: "", Message: "fill.image "})
	if !strings.Contains(f.Message, `is still the placeholder "<IMAGE1_NAME>"`) {
		t.Errorf("image fill finding = %s", f)
	}
	// The chart fails on the first of them; that is not a second finding.
	if r := has(res, Finding{Check: CheckRender, Env: "*"}); len(r) != 0 {
		t.Errorf("render failure reported beside the unfilled values: %v", r)
	}
}

func TestLintNotALayout(t *testing.T) {
	_, err := Dir(context.Background(), t.TempDir(), Options{})
	if !errors.Is(err, ErrNotLayout) {
		t.Fatalf("err = %v, want ErrNotLayout", err)
	}
	dir := layout(t, "ecs", "fargate-web", true)
	if _, err := Dir(context.Background(), dir, Options{Envs: []string{"qa"}}); err == nil || !strings.Contains(err.Error(), `unknown environment "qa"`) {
		t.Errorf("unknown env: err = %v", err)
	}
}

func TestLintBadValuesFile(t *testing.T) {
	dir := layout(t, "ecs", "fargate-web", true)
	edit(t, dir, "values/env/prod.yaml", `(?m)\z`, "nodeSelector: [\n")
	_, err := Dir(context.Background(), dir, Options{})
	if err == nil || !strings.Contains(err.Error(), "values/env/prod.yaml") {
		t.Fatalf("err = %v, want one naming values/env/prod.yaml", err)
	}
}
