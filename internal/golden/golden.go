// Package golden compares test output with expected files under testdata,
// and rewrites them when the test runs with -update.
package golden

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Update is set by `go test ./... -update`: golden files are rewritten
// instead of compared. A reviewer reads the diff.
var Update = flag.Bool("update", false, "rewrite golden files with the current output")

// Assert compares got with the file at path, or writes it under -update.
func Assert(t testing.TB, path string, got []byte) {
	t.Helper()
	if *Update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("golden file missing (run with -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the output (run with -update and read the diff):\n%s", path, diff(string(want), string(got)))
	}
}

// AssertJSON marshals v as indented JSON and compares it with path.
func AssertJSON(t testing.TB, path string, v any) {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	Assert(t, path, append(b, '\n'))
}

// AssertDir compares a whole tree of files (relative path → content) with
// the directory dir: every file must match and no file may be missing or
// extra. Under -update the directory is replaced.
func AssertDir(t testing.TB, dir string, files map[string][]byte) {
	t.Helper()
	if *Update {
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		for p, b := range files {
			Assert(t, filepath.Join(dir, filepath.FromSlash(p)), b)
		}
		return
	}
	seen := map[string]bool{}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		rel = filepath.ToSlash(rel)
		seen[rel] = true
		if _, ok := files[rel]; !ok {
			t.Errorf("%s: expected file not produced", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("golden directory missing (run with -update to create it): %v", err)
	}
	for p, b := range files {
		if !seen[p] {
			t.Errorf("%s: produced but not in %s (run with -update)", p, dir)
			continue
		}
		Assert(t, filepath.Join(dir, filepath.FromSlash(p)), b)
	}
}

// diff returns the first differing lines of a and b, enough to see what
// changed without a diff library.
func diff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	var out strings.Builder
	shown := 0
	for i := 0; i < len(al) || i < len(bl); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			out.WriteString("line ")
			out.WriteString(itoa(i + 1))
			out.WriteString(":\n  want: " + x + "\n  got:  " + y + "\n")
			shown++
			if shown == 10 {
				out.WriteString("  ...\n")
				break
			}
		}
	}
	return out.String()
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}
