package helm

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/cutoverhq/cutover/render"
)

// TestHelmCLIAgrees renders every case with the stock helm CLI, as a user
// or Argo CD would, and wants Template's bytes exactly; helm lint must
// pass too. It needs helm 3 on PATH or in $HELM (go build
// helm.sh/helm/v3/cmd/helm builds one).
func TestHelmCLIAgrees(t *testing.T) {
	helmBin := os.Getenv("HELM")
	if helmBin == "" {
		p, err := exec.LookPath("helm")
		if err != nil {
			t.Skip("no helm CLI on PATH and no $HELM: the stock-tool check is skipped")
		}
		helmBin = p
	}
	for _, name := range caseNames(t) {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata", name)
			svcs, opts, tree := renderCase(t, dir)
			for _, s := range svcs {
				if f := loadFills(t, dir)[s.Name]; f != nil {
					p := ServiceValuesFile(s.Name)
					tree[p] = fillValues(t, tree[p], f)
				}
			}
			out := filepath.Join(t.TempDir(), "out")
			if err := render.WriteDir(out, tree); err != nil {
				t.Fatal(err)
			}
			for _, s := range svcs {
				for _, env := range opts.Envs {
					want, err := Template(context.Background(), out, s.Name, env)
					if err != nil {
						t.Fatal(err)
					}
					args := []string{s.Name, filepath.Join(out, ChartDir), "--namespace", opts.Namespace(env)}
					for _, f := range ValueFiles(s.Name, env) {
						args = append(args, "-f", filepath.Join(out, f))
					}
					got, err := exec.Command(helmBin, append([]string{"template"}, args...)...).CombinedOutput()
					if err != nil {
						t.Fatalf("helm template %s in %s: %v\n%s", s.Name, env, err, got)
					}
					if !bytes.Equal(got, want) {
						t.Errorf("helm template %s in %s differs from Template", s.Name, env)
					}
					lint, err := exec.Command(helmBin, append([]string{"lint"}, args[1:]...)...).CombinedOutput()
					if err != nil {
						t.Errorf("helm lint %s in %s: %v\n%s", s.Name, env, err, lint)
					}
				}
			}
		})
	}
}
