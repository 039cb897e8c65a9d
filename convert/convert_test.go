package convert

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cutoverhq/cutover/internal/golden"
	"github.com/cutoverhq/cutover/render"
	"github.com/cutoverhq/cutover/service"
	"gopkg.in/yaml.v3"
)

// The bundled examples, all formats at once, converted into one layout.
var examples = []string{
	"../examples/ecs/payments-api/taskdef.json",
	"../examples/ecs/payments-api/services.json",
	"../examples/ecs/payments-api/target-groups.json",
	"../examples/ecs/payments-api/scalable-targets.json",
	"../examples/ecs/payments-api/scaling-policies.json",
	"../examples/lambda/orders/template.yaml",
	"../examples/compose/shop/compose.yaml",
	"../examples/systemd/fraud-scorer/fraud-scorer.service",
}

// TestExamplesGolden pins the whole layout of the examples except the
// chart, whose own golden tests live in render/helm.
func TestExamplesGolden(t *testing.T) {
	res, err := Convert(context.Background(), examples, Options{Render: render.Options{RepoURL: "https://git.example.com/platform/migration.git"}})
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for p, b := range res.Tree {
		if strings.HasPrefix(p, "chart/") {
			continue
		}
		files[p] = b
	}
	golden.AssertDir(t, "testdata/examples", files)
	kinds := map[string]int{}
	for _, s := range res.Services {
		kinds[s.Origin.Format]++
	}
	for _, f := range []string{"ecs", "lambda", "compose", "systemd"} {
		if kinds[f] == 0 {
			t.Errorf("no service from %s: %v", f, kinds)
		}
	}
}

func TestSameInputByteIdenticalOutput(t *testing.T) {
	a, err := Convert(context.Background(), examples, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Convert(context.Background(), examples, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Tree) != len(b.Tree) {
		t.Fatalf("%d files, then %d", len(a.Tree), len(b.Tree))
	}
	for p, x := range a.Tree {
		if !bytes.Equal(x, b.Tree[p]) {
			t.Errorf("%s differs between two runs", p)
		}
	}
}

func TestEveryServiceHasAValuesFileAndAReportSection(t *testing.T) {
	res, err := Convert(context.Background(), examples, Options{Render: render.Options{Envs: []string{"staging", "prod"}}})
	if err != nil {
		t.Fatal(err)
	}
	report := string(res.Tree["MIGRATION.md"])
	for _, s := range res.Services {
		if _, ok := res.Tree["values/services/"+s.Name+".yaml"]; !ok {
			t.Errorf("no values file for %s", s.Name)
		}
		if !strings.Contains(report, "## "+s.Name+"\n") {
			t.Errorf("no report section for %s", s.Name)
		}
		for _, f := range s.Report.Findings {
			if f.Status == service.Dropped && f.Message == "" {
				t.Errorf("%s: dropped without a reason: %s", s.Name, f)
			}
		}
	}
	for _, env := range []string{"staging", "prod"} {
		if _, ok := res.Tree["values/env/"+env+".yaml"]; !ok {
			t.Errorf("no values for %s", env)
		}
		if _, ok := res.Tree["platform/"+env+"/namespace.yaml"]; !ok {
			t.Errorf("no platform objects for %s", env)
		}
	}
	if _, ok := res.Tree["values/env/dev.yaml"]; ok {
		t.Errorf("dev rendered though not asked for")
	}
}

func TestLatestImageIsKeptAndReported(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "compose.yaml")
	os.WriteFile(f, []byte("services:\n  web:\n    image: nginx:latest\n    ports: [\"8080:80\"]\n"), 0o644)
	res, err := Convert(context.Background(), []string{f}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(res.Tree["values/services/web.yaml"], []byte("nginx:latest")) {
		t.Errorf("the image was not kept as given")
	}
	if !strings.Contains(string(res.Tree["MIGRATION.md"]), "tagged latest or untagged") {
		t.Errorf("the report does not name the unpinned image")
	}
}

// TestLongServiceNamesFitHelmReleaseNames: names of 54 to 63 characters
// (a CDK task definition family, a Serverless service-stage-function)
// converted with exit 0 into charts no Argo CD Application could install,
// since Helm refuses release names longer than 53.
func TestLongServiceNamesFitHelmReleaseNames(t *testing.T) {
	dir := t.TempDir()
	families := []string{
		"CoreSaidaInfrastructureOrchestratorAppOrchestratorTaskDef58C2CA2F",
		"CoreSaidaInfrastructureOrchestratorAppOrchestratorTaskDef91B0AA17",
		"short-one",
	}
	var paths []string
	for i, fam := range families {
		p := filepath.Join(dir, fmt.Sprintf("td%d.json", i))
		td := fmt.Sprintf(`{"family": %q, "containerDefinitions": [{"name": "app", "image": "nginx:1.27", "essential": true}]}`, fam)
		if err := os.WriteFile(p, []byte(td), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	res, err := Convert(context.Background(), paths, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range res.Services {
		names = append(names, s.Name)
	}
	// The two families share their first 53 characters: the second keeps
	// apart by a hash of its whole name.
	want := []string{"coresaidainfrastructureorchestratorapporches-11ee550f", "coresaidainfrastructureorchestratorapporchestratortas", "short-one"}
	if !slices.Equal(names, want) {
		t.Errorf("names = %q, want %q", names, want)
	}
	for _, n := range names {
		if len(n) > service.MaxNameLen || service.ValidateName(n) != nil {
			t.Errorf("service name %q is no Helm release name", n)
		}
	}
	report := string(res.Tree["MIGRATION.md"])
	for _, n := range want[:2] {
		if !strings.Contains(report, "Argo CD Applications are named "+strconv.Quote(n)) {
			t.Errorf("the report does not name the rename to %s", n)
		}
	}
	if strings.Contains(report, `"short-one" is longer`) {
		t.Errorf("the report renames a name that fits")
	}
}

// BenchmarkConvert1000TaskDefinitions converts 1,000 distinct task
// definitions, import and render, as one run.
func BenchmarkConvert1000TaskDefinitions(b *testing.B) {
	src, err := os.ReadFile("../examples/ecs/payments-api/taskdef.json")
	if err != nil {
		b.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(src, &doc); err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	var paths []string
	for i := 0; i < 1000; i++ {
		td := doc["taskDefinition"].(map[string]any)
		td["family"] = fmt.Sprintf("svc-%04d", i)
		delete(td, "taskDefinitionArn")
		data, _ := json.Marshal(doc)
		p := filepath.Join(dir, fmt.Sprintf("td-%04d.json", i))
		if err := os.WriteFile(p, data, 0o644); err != nil {
			b.Fatal(err)
		}
		paths = append(paths, p)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := Convert(context.Background(), paths, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if len(res.Services) != 1000 {
			b.Fatalf("%d services", len(res.Services))
		}
	}
}

// TestMixedTemplateGoesToEveryImporter: a cdk synth template holding an
// ECS service and Lambda functions gives a service for each, and each
// resource is reported once: the ECS importer's note on the functions and
// the Lambda importer's drops of the ECS resources give way to what the
// other importer did with them.
func TestMixedTemplateGoesToEveryImporter(t *testing.T) {
	const tpl = "testdata/mixed-cdk/AppStack.template.json"
	res, err := Convert(context.Background(), []string{tpl}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	formats := map[string]string{}
	for _, s := range res.Services {
		formats[s.Name] = s.Origin.Format
	}
	want := map[string]string{"api-task-def": "ecs", "api-handler": "lambda", "order-worker": "lambda"}
	if fmt.Sprint(formats) != fmt.Sprint(want) {
		t.Fatalf("services %v, want %v", formats, want)
	}
	seen := resourcesOnce(t, res)
	for _, id := range []string{"ApiTaskDef6B2C2A51", "ApiServiceC1D2E3F4"} {
		if len(seen[id]["ecs"]) == 0 {
			t.Errorf("%s: no ECS finding: %v", id, seen[id])
		}
	}
	if got := seen["OrderWorker9C8D7E6F"]["lambda"]; len(got) == 0 || slices.Contains(got, service.Dropped) && len(got) == 1 {
		t.Errorf("OrderWorker: lambda findings %v, want it converted", got)
	}
	if got := seen["LogRetentionaae0aa3c5b4d4f87b02d85b201efdd8a"]; len(got["lambda"]) != 1 || got["lambda"][0] != service.Dropped {
		t.Errorf("CDK's log retention function: %v, want one drop by the Lambda importer", got)
	}

	// Named, one importer reads it all and says where the rest goes.
	res, err = Convert(context.Background(), []string{tpl}, Options{From: "ecs"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Services) != 1 || res.Services[0].Name != "api-task-def" {
		t.Fatalf("--from ecs: %d services", len(res.Services))
	}
	found := false
	for _, f := range res.Services[0].Report.Findings {
		if f.Field == "Resources.OrderWorker9C8D7E6F" && f.Status == service.Dropped && strings.Contains(f.Message, "the Lambda importer converts") {
			found = true
		}
	}
	if !found {
		t.Error("--from ecs: the function is not reported as the Lambda importer's")
	}
}

// TestValuesToFillAreNamedAlikeAndExist: whichever importer or renderer
// asked for a value, its name is lowerCamel, and the name the report
// gives is a key under fill: in the service's values file.
func TestValuesToFillAreNamedAlikeAndExist(t *testing.T) {
	camel := regexp.MustCompile(`^[a-z][A-Za-z0-9]*$`)
	for name, inputs := range map[string][]string{
		"examples":   examples,
		"mixed cdk":  {"testdata/mixed-cdk/AppStack.template.json"},
		"ecs":        {"../source/ecs/testdata/placeholders-and-nulls/taskdef.json", "../source/ecs/testdata/secrets-arns/taskdef.json"},
		"compose":    {"../source/compose/testdata/interpolation-unset-vars/docker-compose.yml"},
		"compose 2":  {"../source/compose/testdata/image-placeholders/compose.yaml"},
		"systemd":    {"../source/systemd/testdata/envfile-and-user/billing-worker.service"},
		"systemd.in": {"../source/systemd/testdata/build-placeholders/mailrelay.service.in"},
	} {
		res, err := Convert(context.Background(), inputs, Options{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		fills := 0
		for _, s := range res.Services {
			var values struct {
				Fill map[string]any `yaml:"fill"`
			}
			if err := yaml.Unmarshal(res.Tree["values/services/"+s.Name+".yaml"], &values); err != nil {
				t.Fatalf("%s: values of %s: %v", name, s.Name, err)
			}
			for k := range values.Fill {
				if !camel.MatchString(k) {
					t.Errorf("%s: %s: fill.%s is not lowerCamel", name, s.Name, k)
				}
			}
			for _, f := range s.Report.Findings {
				_, key, ok := strings.Cut(f.Target, "fill.")
				if !ok || f.Status != service.Fill {
					continue
				}
				key, _, _ = strings.Cut(key, " ")
				fills++
				if _, ok := values.Fill[key]; !ok {
					t.Errorf("%s: %s: the report asks to fill %q, which values/services/%s.yaml does not hold (%v)", name, s.Name, key, s.Name, values.Fill)
				}
			}
		}
		if fills == 0 {
			t.Errorf("%s: no value to fill: the case checks nothing", name)
		}
	}
}

// resourcesOnce fails when two importers report on one resource of a
// template, and returns the statuses of each resource's findings by
// importer.
func resourcesOnce(t *testing.T, res *Result) map[string]map[string][]service.Status {
	t.Helper()
	seen := map[string]map[string][]service.Status{}
	for _, s := range res.Services {
		for _, f := range s.Report.Findings {
			if !strings.HasPrefix(f.Field, "Resources.") {
				continue
			}
			id := strings.SplitN(f.Field, ".", 3)[1]
			if seen[id] == nil {
				seen[id] = map[string][]service.Status{}
			}
			seen[id][s.Origin.Format] = append(seen[id][s.Origin.Format], f.Status)
		}
	}
	for id, by := range seen {
		if len(by) > 1 {
			t.Errorf("resource %s is reported by two importers: %v", id, by)
		}
	}
	return seen
}

// TestSAMTemplateWithAnECSService: a SAM template that also defines an
// ECS service gives its functions to the Lambda importer and its service
// to the ECS one; the ECS resources are not reported as staying on AWS.
func TestSAMTemplateWithAnECSService(t *testing.T) {
	res, err := Convert(context.Background(), []string{"testdata/mixed-sam/template.yaml"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	formats := map[string]string{}
	for _, s := range res.Services {
		formats[s.Name] = s.Origin.Format
	}
	if formats["orders-api"] != "ecs" || formats["authorize-function"] != "lambda" || len(formats) != 4 {
		t.Fatalf("services %v", formats)
	}
	seen := resourcesOnce(t, res)
	for _, id := range []string{"TaskDefinition", "Service"} {
		if len(seen[id]["ecs"]) == 0 {
			t.Errorf("%s: %v, want the ECS importer's findings", id, seen[id])
		}
	}
}
