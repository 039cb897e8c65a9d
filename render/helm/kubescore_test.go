package helm_test

// An external test package: lint imports render/helm, so the package's
// own tests cannot import lint.

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cutoverhq/cutover/internal/testenv"
	"github.com/cutoverhq/cutover/lint"
	"github.com/cutoverhq/cutover/render"
	"github.com/cutoverhq/cutover/render/helm"
	"github.com/cutoverhq/cutover/service"
)

// TestGoldenOutputPassesKubeScore scores every rendered golden file
// (rendered/<service>/<env>.yaml, which TestRender keeps current) with
// kube-score, its ignore annotations disabled: no CRITICAL finding but
// what the case's input forces, each named in the service's findings as
// Render leaves them. The hardening case has one of each kind the input
// may force, so the test also shows they are reported.
func TestGoldenOutputPassesKubeScore(t *testing.T) {
	dirs, _ := filepath.Glob("testdata/*/services.json")
	if len(dirs) == 0 {
		t.Fatal("no golden cases")
	}
	forced := map[string]int{}
	for _, p := range dirs {
		dir := filepath.Dir(p)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			svcs := renderedServices(t, dir)
			for _, s := range svcs {
				files, _ := filepath.Glob(filepath.Join(dir, "rendered", s.Name, "*.yaml"))
				if len(files) == 0 {
					t.Fatalf("%s: no rendered golden files", s.Name)
				}
				for _, f := range files {
					manifests, err := os.ReadFile(f)
					if err != nil {
						t.Fatal(err)
					}
					got, err := lint.KubeScore(manifests)
					if err != nil {
						t.Fatalf("%s: %v", f, err)
					}
					for _, k := range got {
						if k.Grade != "CRITICAL" {
							continue
						}
						if err := testenv.KubeScoreForced(s, k.Check, k.Message); err != nil {
							t.Errorf("%s: kube-score %s\n  (%v)", f, k, err)
							continue
						}
						if strings.HasSuffix(f, "prod.yaml") {
							forced[filepath.Base(dir)+" "+k.Check]++
						}
					}
				}
			}
		})
	}
	for _, want := range []string{
		"hardening container-security-context-privileged",
		"hardening container-security-context-readonlyrootfilesystem",
		"hardening container-security-context-user-group-id",
	} {
		if forced[want] == 0 {
			t.Errorf("no input-forced %s: the hardening case no longer shows it (forced: %v)", want, forced)
		}
	}
}

// renderedServices decodes a case's services and renders them as
// TestRender does, so that their reports hold Render's findings.
func renderedServices(t *testing.T, dir string) []*service.Service {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "services.json"))
	if err != nil {
		t.Fatal(err)
	}
	var svcs []*service.Service
	if err := json.NewDecoder(bytes.NewReader(data)).Decode(&svcs); err != nil {
		t.Fatal(err)
	}
	opts := render.Options{Region: "eu-west-1", Team: "payments"}
	if b, err := os.ReadFile(filepath.Join(dir, "options.json")); err == nil {
		opts = render.Options{}
		if err := json.Unmarshal(b, &opts); err != nil {
			t.Fatal(err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	if err := helm.Render(svcs, opts, render.Tree{}); err != nil {
		t.Fatal(err)
	}
	return svcs
}
