package ecs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/source"
)

// FuzzImport feeds arbitrary bytes as a task definition (and, split at a
// NUL byte, as a second file beside it, so services and scaling files are
// fuzzed too). Import must never panic, every error must be an InputError,
// and every service it returns must be valid; a run that takes seconds is
// a hang and crashes the worker, so the fuzzer keeps the input.
//
// The seeds are whole task definitions of several KB; run with a short
// minimization, or the fuzzer spends its time minimizing them:
//
//	go test ./source/ecs -run '^$' -fuzz FuzzImport -fuzztime 60s -fuzzminimizetime 2s
func FuzzImport(f *testing.F) {
	paths, _ := filepath.Glob("testdata/*/*.json")
	yamls, _ := filepath.Glob("testdata/*/*.yaml")
	paths = append(paths, yamls...)
	for _, p := range paths {
		if filepath.Base(p) == "service.json" {
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	// A task definition and a service that joins it, as one seed.
	f.Add([]byte(`{"family":"web","containerDefinitions":[{"name":"app","image":"nginx","portMappings":[{"containerPort":80}]}]}` +
		"\x00" + `{"serviceName":"web","taskDefinition":"web","desiredCount":1,"loadBalancers":[{"containerName":"app","containerPort":80,"targetGroupArn":"arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/web/0123456789abcdef"}]}`))
	// Templates whose properties, or parts of them, are intrinsics.
	f.Add([]byte(`{"Resources": {"T": {"Type": "AWS::ECS::TaskDefinition", "Properties": {"Fn::If": ["c", {}, {}]}}}}`))
	f.Add([]byte("Resources:\n  S:\n    Type: AWS::ApplicationAutoScaling::ScalableTarget\n    Properties: !Ref X\n  T:\n    Type: AWS::ECS::TaskDefinition\n    Properties:\n      ContainerDefinitions: !If [c, [], []]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var files []source.File
		for i, part := range splitNUL(data) {
			files = append(files, source.File{Path: "f" + string(rune('0'+i)) + ".json", Data: part})
		}
		imp := Importer{}
		for _, file := range files {
			imp.Detect(file)
		}
		timer := time.AfterFunc(10*time.Second, func() { panic(fmt.Sprintf("Import took over 10s on %q", data)) })
		svcs, err := imp.Import(context.Background(), files, source.Options{})
		timer.Stop()
		if err != nil {
			var ie *source.InputError
			if !errors.As(err, &ie) {
				t.Fatalf("error is %T, not *source.InputError: %v", err, err)
			}
			if ie.File == "" {
				t.Fatalf("error names no file: %v", err)
			}
			return
		}
		for _, s := range svcs {
			if err := s.Validate(); err != nil {
				t.Fatalf("invalid service: %v", err)
			}
		}
	})
}

// splitNUL splits data at NUL bytes into at most three files.
func splitNUL(data []byte) [][]byte {
	var out [][]byte
	start := 0
	for i, b := range data {
		if b == 0 && len(out) < 2 {
			out = append(out, data[start:i])
			start = i + 1
		}
	}
	return append(out, data[start:])
}

// FuzzQuoteTemplates checks what the importer relies on: a rewritten
// template is valid JSON with the same number of lines, so every field
// keeps its line in the report.
func FuzzQuoteTemplates(f *testing.F) {
	for _, s := range []string{`{"cpu": ${cpu}}`, `[{"p": {{ .P }}, "s": "${x}"}]`, `{"a": $${b}}`, "{\"a\": ${\n}}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		q := quoteTemplates(data)
		if q == nil {
			return
		}
		if !json.Valid(q) {
			t.Fatalf("quoteTemplates(%q) = %q, not JSON", data, q)
		}
		if a, b := bytes.Count(data, []byte("\n")), bytes.Count(q, []byte("\n")); a != b {
			t.Fatalf("quoteTemplates(%q) has %d lines, the input %d", data, b, a)
		}
	})
}
