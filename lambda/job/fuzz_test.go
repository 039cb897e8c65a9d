package job

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/cutoverhq/cutover/lambda"
)

type echo struct{}

func (echo) Invoke(_ context.Context, inv lambda.Invocation) (lambda.Response, error) {
	return lambda.Response{Payload: inv.Payload}, nil
}

// FuzzItems: any items file gives one result line per non-blank line,
// each JSON; never a panic.
func FuzzItems(f *testing.F) {
	f.Add("{\"a\":1}\n\n[2]\r\nnot json\n")
	f.Add("")
	f.Add("\n\n\n{}")
	f.Fuzz(func(t *testing.T, items string) {
		var out bytes.Buffer
		s := &Source{Items: "-", Parallel: 2, stdin: strings.NewReader(items), stdout: &out}
		_ = s.Run(context.Background(), echo{})
		want := 0
		for _, l := range strings.Split(items, "\n") {
			if strings.TrimSpace(strings.TrimRight(l, "\r")) != "" {
				want++
			}
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if out.Len() == 0 {
			lines = nil
		}
		if len(lines) != want {
			t.Fatalf("%d results for %d items", len(lines), want)
		}
		for _, l := range lines {
			if !json.Valid([]byte(l)) {
				t.Fatalf("result %q is not JSON", l)
			}
		}
	})
}
