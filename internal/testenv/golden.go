package testenv

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/cutoverhq/cutover/convert"
	"github.com/cutoverhq/cutover/render"
	"github.com/cutoverhq/cutover/render/helm"
	"github.com/cutoverhq/cutover/source"
)

// GoldenCase is one testdata case of one importer.
type GoldenCase struct {
	// Format is the importer's name (the source/<format> directory).
	Format string
	Name   string
	Dir    string
	// Inputs are the files the importer recognises, in the order its own
	// golden test reads them (compose overrides last).
	Inputs []string
}

// outputs are the golden files of a case, not inputs.
var outputs = map[string]bool{"service.json": true, "report.txt": true}

// GoldenCases finds every case of every importer under root (the
// repository root) by globbing source/*/testdata/*, so cases added later
// are picked up without touching the tests that use them. A file the
// importer does not recognise (an env_file, a mounted config) is not an
// input: the importer reads it itself if it needs it. The importers must
// be registered: import convert, which registers them all.
func GoldenCases(t testing.TB, root string) []GoldenCase {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(root, "source", "*", "testdata", "*"))
	if err != nil {
		t.Fatal(err)
	}
	var out []GoldenCase
	for _, dir := range dirs {
		st, err := os.Stat(dir)
		name := filepath.Base(dir)
		if err != nil || !st.IsDir() || name == "errors" || name == "fuzz" {
			continue
		}
		format := filepath.Base(filepath.Dir(filepath.Dir(dir)))
		imp, err := source.Lookup(format)
		if err != nil {
			continue // a package with testdata that is not an importer
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		c := GoldenCase{Format: format, Name: name, Dir: dir}
		for _, e := range entries {
			if e.IsDir() || outputs[e.Name()] {
				continue
			}
			p := filepath.Join(dir, e.Name())
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if imp.Detect(source.File{Path: p, Data: data}) {
				c.Inputs = append(c.Inputs, p)
			}
		}
		sort.SliceStable(c.Inputs, func(i, j int) bool {
			oi, oj := strings.Contains(c.Inputs[i], "override"), strings.Contains(c.Inputs[j], "override")
			if oi != oj {
				return oj
			}
			return c.Inputs[i] < c.Inputs[j]
		})
		if len(c.Inputs) == 0 {
			t.Errorf("%s: no file the %s importer recognises", dir, format)
			continue
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		t.Fatalf("no golden cases under %s/source/*/testdata", root)
	}
	return out
}

// Case returns the golden case format/name, failing the test if there is
// none.
func Case(t testing.TB, root, format, name string) GoldenCase {
	t.Helper()
	for _, c := range GoldenCases(t, root) {
		if c.Format == format && c.Name == name {
			return c
		}
	}
	t.Fatalf("no golden case %s/%s", format, name)
	return GoldenCase{}
}

// ClusterOptions are the render settings a user passes on the command line
// for their cluster; without a region, a service with secrets or queues
// cannot render.
var ClusterOptions = render.Options{
	Region:       "eu-west-1",
	AccountID:    "123456789012",
	OIDCProvider: "oidc.eks.eu-west-1.amazonaws.com/id/0123456789ABCDEF0123456789ABCDEF",
}

// Convert converts a golden case with ClusterOptions and, when fill is
// true, fills every value of every service's fill: map (FillValues) as a
// user would before deploying.
func Convert(t testing.TB, c GoldenCase, fill bool) (*convert.Result, render.Options) {
	t.Helper()
	opts := convert.Options{From: c.Format, Render: ClusterOptions.Defaults()}
	res, err := convert.Convert(context.Background(), c.Inputs, opts)
	if err != nil {
		t.Fatalf("convert %s: %v", strings.Join(c.Inputs, " "), err)
	}
	if !fill {
		return res, opts.Render
	}
	for _, s := range res.Services {
		p := helm.ServiceValuesFile(s.Name)
		b, ok := res.Tree[p]
		if !ok {
			t.Fatalf("%s: no %s in the output", s.Name, p)
		}
		filled, n, err := FillValues(b)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if n != len(s.Values) {
			t.Errorf("%s: %d fill values in the file, %d in the service model", p, n, len(s.Values))
		}
		res.Tree[p] = filled
	}
	return res, opts.Render
}
