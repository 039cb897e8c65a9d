package cli

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/cutoverhq/cutover/plan"
	"github.com/cutoverhq/cutover/source"
)

var yamlBlock = regexp.MustCompile("(?s)```yaml\n(.*?)```")

// TestDocsPlansAreValid keeps the documentation true to the code: every
// complete plan in docs/ and examples/ parses, and its router and metrics
// settings decode strictly (a misspelt or renamed setting fails here).
// Building a router or provider may still fail for want of the real
// thing (no HAProxy socket, no AWS): only errors in the settings count.
func TestDocsPlansAreValid(t *testing.T) {
	files, _ := filepath.Glob("../../docs/*.md")
	n := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, m := range yamlBlock.FindAllSubmatch(data, -1) {
			src := m[1]
			if !strings.Contains(string(src), "kind: ShiftPlan") {
				continue
			}
			n++
			name := filepath.Base(f) + "#" + string(rune('0'+i))
			p, err := plan.Parse(name, src)
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // nothing may be contacted
			rt, closeRouter, err := buildRouter(ctx, p)
			if settingsError(err) {
				t.Errorf("%s: router settings: %v", name, err)
			}
			if err == nil {
				_, err = buildProvider(ctx, p, rt)
				if settingsError(err) {
					t.Errorf("%s: metrics settings: %v", name, err)
				}
				closeRouter()
			}
		}
	}
	if n == 0 {
		t.Fatal("no plan found in docs/")
	}
	t.Logf("%d plans in docs/ checked", n)
}

func settingsError(err error) bool {
	var ie *source.InputError
	return err != nil && (errors.As(err, &ie) || strings.Contains(err.Error(), "unknown setting"))
}
