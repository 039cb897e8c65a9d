package ecs

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/cutoverhq/cutover/source"
)

// BenchmarkImport1000 imports 1,000 distinct task definitions, each a
// copy of the fargate-web case under its own family, in one call.
func BenchmarkImport1000(b *testing.B) {
	tmpl, err := os.ReadFile("testdata/fargate-web/taskdef.json")
	if err != nil {
		b.Fatal(err)
	}
	files := make([]source.File, 1000)
	for i := range files {
		data := strings.ReplaceAll(string(tmpl), "payments-api", fmt.Sprintf("payments-api-%04d", i))
		files[i] = source.File{Path: fmt.Sprintf("td-%04d.json", i), Data: []byte(data)}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		svcs, err := Importer{}.Import(context.Background(), files, source.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if len(svcs) != len(files) {
			b.Fatalf("got %d services, want %d", len(svcs), len(files))
		}
	}
}
