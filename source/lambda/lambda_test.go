package lambda

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/cutoverhq/cutover/internal/golden"
	"github.com/cutoverhq/cutover/service"
	"github.com/cutoverhq/cutover/source"
)

// readCase returns the input files of a testdata case: everything but
// the golden outputs, in name order.
func readCase(t testing.TB, dir string) []source.File {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var files []source.File
	for _, e := range entries {
		if e.IsDir() || e.Name() == "service.json" || e.Name() == "report.txt" || e.Name() == caseEnvs {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, source.File{Path: e.Name(), Data: data})
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	return files
}

// caseEnvs names the file of a testdata case that lists the environments
// of the output (source.Options.Envs), as convert passes them.
const caseEnvs = "envs.txt"

// reportText is the golden form of the services' reports: one Finding per
// line, sorted, under a header per service.
func reportText(svcs []*service.Service) []byte {
	var b strings.Builder
	for i, s := range svcs {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString("== " + s.Name + "\n")
		for _, f := range s.Report.Sorted() {
			b.WriteString(f.String())
			b.WriteByte('\n')
		}
	}
	return []byte(b.String())
}

func TestGolden(t *testing.T) {
	dirs, err := filepath.Glob("testdata/*")
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range dirs {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() || filepath.Base(dir) == "fuzz" {
			continue
		}
		t.Run(filepath.Base(dir), func(t *testing.T) {
			files := readCase(t, dir)
			imp := Importer{}
			for _, f := range files {
				if !imp.Detect(f) {
					t.Errorf("Detect(%s) = false", f.Path)
				}
			}
			var opts source.Options
			if envs, err := os.ReadFile(filepath.Join(dir, caseEnvs)); err == nil {
				opts.Envs = strings.Fields(string(envs))
			}
			svcs, err := imp.Import(context.Background(), files, opts)
			if err != nil {
				t.Fatalf("Import: %v", err)
			}
			for _, s := range svcs {
				if err := s.Validate(); err != nil {
					t.Errorf("invalid service: %v", err)
				}
			}
			assertFindingsNameInputFields(t, files, svcs)
			golden.AssertJSON(t, filepath.Join(dir, "service.json"), svcs)
			golden.Assert(t, filepath.Join(dir, "report.txt"), reportText(svcs))
		})
	}
}

// assertFindingsNameInputFields checks that a finding describes a field
// the input holds, unless it says plainly that the field was not set and
// which default applies.
func assertFindingsNameInputFields(t *testing.T, files []source.File, svcs []*service.Service) {
	t.Helper()
	pos := map[string]*source.Positions{}
	for _, f := range files {
		if p, err := source.ParsePositions(f.Path, f.Data); err == nil {
			pos[f.Path] = p
		}
	}
	for _, s := range svcs {
		for _, f := range s.Report.Findings {
			p := pos[f.File]
			if p == nil || f.Field == "" || p.Holds(f.Field) || strings.HasPrefix(f.Message, "not set") {
				continue
			}
			t.Errorf("a finding on a field the input does not hold, without saying it was not set: %s", f)
		}
	}
}

func TestRegistered(t *testing.T) {
	imp, err := source.Lookup("lambda")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := imp.(Importer); !ok {
		t.Fatalf("lambda is registered as %T", imp)
	}
}

var _ = errors.As

// A webhook URL in a function's environment (a console export's
// decrypted value) went to the ConfigMap, token and all.
func TestWebhookURLLooksSecret(t *testing.T) {
	if !looksSecret("SLACK_WEBHOOK_URL", "https://hooks.slack.com/services/T000/B000/XXXX") {
		t.Error("a Slack webhook URL does not look secret")
	}
	if looksSecret("STATUS_PAGE_URL", "https://status.example.com/") {
		t.Error("a plain URL looks secret")
	}
}
