package convert

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cutoverhq/cutover/internal/golden"
	"github.com/cutoverhq/cutover/render"
	"github.com/cutoverhq/cutover/service"
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
