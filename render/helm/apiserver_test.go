package helm_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/cutoverhq/cutover/internal/testenv"
	"github.com/cutoverhq/cutover/render"
	"github.com/cutoverhq/cutover/render/helm"
	"github.com/cutoverhq/cutover/service"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestCasesApplyToAPIServer renders every case of this package in every
// environment, fills the values as a user would, and server-side applies
// each object in dry-run mode to a real kube-apiserver with the Gateway
// API, KEDA and External Secrets CRDs: defaulting, validation and the
// CRDs' schemas and rules, as on a cluster. It covers what the importers'
// cases may not produce yet (EFS, ScaledJobs, sidecars, stores in another
// region). Skipped without the test assets (hack/deps.sh).
func TestCasesApplyToAPIServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a kube-apiserver; not with -short")
	}
	kube := testenv.Start(t)
	dirs, _ := filepath.Glob("testdata/*/services.json")
	if len(dirs) == 0 {
		t.Fatal("no cases")
	}
	for _, p := range dirs {
		dir := filepath.Dir(p)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			var svcs []*service.Service
			if err := json.Unmarshal(data, &svcs); err != nil {
				t.Fatal(err)
			}
			opts := render.Options{Team: "payments"}
			if b, err := os.ReadFile(filepath.Join(dir, "options.json")); err == nil {
				if err := json.Unmarshal(b, &opts); err != nil {
					t.Fatal(err)
				}
			}
			opts.Region = "eu-west-1"
			opts = opts.Defaults()
			tree := render.Tree{}
			if err := helm.Render(svcs, opts, tree); err != nil {
				t.Fatal(err)
			}
			for _, s := range svcs {
				f := helm.ServiceValuesFile(s.Name)
				filled, _, err := testenv.FillValues(tree[f])
				if err != nil {
					t.Fatal(err)
				}
				tree[f] = filled
				for _, env := range opts.Envs {
					out, err := helm.TemplateTree(context.Background(), tree, s.Name, env)
					if err != nil {
						t.Fatalf("%s in %s: %v", s.Name, env, err)
					}
					ns := kube.Namespace(t, opts.Namespace(env))
					if err := kube.ApplyDryRun(context.Background(), ns, out); err != nil {
						t.Errorf("%s in %s: the apiserver rejects the output:\n%v", s.Name, env, err)
					}
				}
			}
		})
	}
}
