// Package render holds what the renderers share: the Tree of output files
// they fill and the atomic write that puts a Tree on disk.
//
// The renderers themselves live in render/helm (the chart and its values),
// render/argocd (ApplicationSets), render/iam (trust policies) and
// render/report (MIGRATION.md).
package render

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/cutoverhq/cutover/internal/fsutil"
)

// Tree is a set of output files, keyed by slash-separated path relative to
// the output directory.
type Tree map[string][]byte

// Add puts a file into the tree; adding the same path twice is a
// programming error and panics, since one renderer would silently
// overwrite another's output.
func (t Tree) Add(path string, data []byte) {
	if _, dup := t[path]; dup {
		panic("render: file written twice: " + path)
	}
	t[path] = data
}

// Paths returns the tree's paths, sorted.
func (t Tree) Paths() []string {
	out := make([]string, 0, len(t))
	for p := range t {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// WriteDir replaces dir with the tree's contents so that a reader sees
// either the previous output, whole, or the new one, whole: the tree is
// written to a temporary directory beside dir and fsynced, then swapped
// in by rename. A failure at any point leaves the previous dir untouched.
func WriteDir(dir string, t Tree) (err error) {
	dir = filepath.Clean(dir)
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("cannot create %s: %w", parent, err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".new-")
	if err != nil {
		return fmt.Errorf("cannot create temporary output directory: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	for _, p := range t.Paths() {
		if strings.HasPrefix(p, "/") || strings.Contains(p, "..") {
			return fmt.Errorf("render: refusing output path %q", p)
		}
		full := filepath.Join(tmp, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := fsutil.WriteSync(full, t[p]); err != nil {
			return err
		}
	}
	var old string
	if _, statErr := os.Stat(dir); statErr == nil {
		old, err = os.MkdirTemp(parent, "."+filepath.Base(dir)+".old-")
		if err != nil {
			return err
		}
		if err := os.Remove(old); err != nil {
			return err
		}
		if err := os.Rename(dir, old); err != nil {
			return fmt.Errorf("cannot move previous output aside: %w", err)
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		if old != "" {
			_ = os.Rename(old, dir)
		}
		return fmt.Errorf("cannot move new output into place: %w", err)
	}
	fsutil.SyncDir(parent)
	if old != "" {
		return os.RemoveAll(old)
	}
	return nil
}
