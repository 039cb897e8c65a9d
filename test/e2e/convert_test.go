// Package e2e runs cutover end to end against real servers: here, every
// golden input of every importer converted, rendered with the generated
// chart in every environment, and applied to a real kube-apiserver.
package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cutoverhq/cutover/convert"
	"github.com/cutoverhq/cutover/internal/testenv"
	"github.com/cutoverhq/cutover/lint"
	"github.com/cutoverhq/cutover/render"
	"github.com/cutoverhq/cutover/render/helm"
	"github.com/cutoverhq/cutover/service"
	"github.com/cutoverhq/cutover/source"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// converted is one case converted, with every value to fill filled.
type converted struct {
	testenv.GoldenCase
	Result *convert.Result
	Render render.Options
}

func convertCase(t testing.TB, gc testenv.GoldenCase) *converted {
	t.Helper()
	res, opts := testenv.Convert(t, gc, true)
	return &converted{GoldenCase: gc, Result: res, Render: opts}
}

func goldenCases(t testing.TB) []testenv.GoldenCase { return testenv.GoldenCases(t, "../..") }

// rendered is one service in one environment.
type rendered struct {
	Service   *service.Service
	Env       string
	Namespace string
	Manifests []byte
}

func (c *converted) renderAll(t testing.TB) []rendered {
	t.Helper()
	var out []rendered
	for _, s := range c.Result.Services {
		for _, env := range c.Render.Envs {
			m, err := helm.TemplateTree(context.Background(), c.Result.Tree, s.Name, env)
			if err != nil {
				t.Errorf("%s/%s: helm template: %v", s.Name, env, err)
				continue
			}
			out = append(out, rendered{Service: s, Env: env, Namespace: c.Render.Namespace(env), Manifests: m})
		}
	}
	return out
}

// TestConvertedOutputAppliesToAPIServer is the proof that converted
// output deploys: every golden case of every importer is converted, its
// values to fill are filled as a user would, every service is rendered in
// every environment with the generated chart, and every object is
// server-side applied in dry-run mode (dryRun=All, fieldValidation=Strict,
// field manager cutover) to a real kube-apiserver with the Gateway API,
// KEDA, External Secrets and Argo CD CRDs installed. The apiserver runs
// defaulting, validation, admission and the CRDs' schemas and stores
// nothing. The environments' namespaces are created for real first. The
// layout's other manifests (argocd/, platform/) are applied the same way.
func TestConvertedOutputAppliesToAPIServer(t *testing.T) {
	kube := testenv.Start(t)
	ctx := context.Background()
	for _, gc := range goldenCases(t) {
		t.Run(gc.Format+"/"+gc.Name, func(t *testing.T) {
			c := convertCase(t, gc)
			applied := map[string]int{}
			defer func() { t.Logf("applied (dry-run) %v", applied) }()
			for _, r := range c.renderAll(t) {
				objs, err := testenv.Decode(r.Manifests)
				if err != nil {
					t.Errorf("%s/%s: %v", r.Service.Name, r.Env, err)
					continue
				}
				if len(objs) == 0 {
					t.Errorf("%s/%s: rendered nothing", r.Service.Name, r.Env)
					continue
				}
				kube.Namespace(t, r.Namespace)
				for _, o := range objs {
					if ns := o.GetNamespace(); ns != "" {
						kube.Namespace(t, ns)
					}
				}
				if err := kube.ApplyDryRun(ctx, r.Namespace, r.Manifests); err != nil {
					t.Errorf("%s/%s: the apiserver rejects the rendered output:\n%v", r.Service.Name, r.Env, err)
					continue
				}
				for _, o := range objs {
					applied[o.GetKind()]++
				}
			}
			// The rest of the layout that is Kubernetes objects: Argo CD's
			// AppProject and ApplicationSets, the platform namespaces.
			for _, p := range c.Result.Tree.Paths() {
				if !(strings.HasPrefix(p, "argocd/") || strings.HasPrefix(p, "platform/")) || !strings.HasSuffix(p, ".yaml") {
					continue
				}
				objs, err := testenv.Decode(c.Result.Tree[p])
				if err != nil {
					t.Errorf("%s: %v", p, err)
					continue
				}
				for _, o := range objs {
					if ns := o.GetNamespace(); ns != "" {
						kube.Namespace(t, ns)
					}
				}
				if err := kube.ApplyDryRun(ctx, "default", c.Result.Tree[p]); err != nil {
					t.Errorf("%s: the apiserver rejects it:\n%v", p, err)
					continue
				}
				for _, o := range objs {
					applied[o.GetKind()]++
				}
			}
		})
	}
}

// TestConvertedOutputKubeScore runs kube-score (ignore annotations
// disabled) on every rendered service and environment: no CRITICAL
// finding is allowed except what the input itself forces (an image tagged
// latest or untagged, a container run privileged, with a writable root
// filesystem, or as a user or group id below 10000), and only where the
// service's report names the kube-score check beside the container, so
// MIGRATION.md tells the reviewer.
func TestConvertedOutputKubeScore(t *testing.T) {
	forced := map[string]int{}
	defer func() { t.Logf("kube-score CRITICAL findings the input forces, by check: %v", forced) }()
	for _, gc := range goldenCases(t) {
		t.Run(gc.Format+"/"+gc.Name, func(t *testing.T) {
			c := convertCase(t, gc)
			for _, r := range c.renderAll(t) {
				got, err := lint.KubeScore(r.Manifests)
				if err != nil {
					t.Errorf("%s/%s: %v", r.Service.Name, r.Env, err)
					continue
				}
				for _, f := range got {
					if f.Grade != "CRITICAL" {
						continue
					}
					if err := testenv.KubeScoreForced(r.Service, f.Check, f.Message); err != nil {
						t.Errorf("%s/%s: kube-score %s\n  (%v)", r.Service.Name, r.Env, f, err)
						continue
					}
					forced[f.Check]++
				}
			}
		})
	}
}

func TestGoldenCasesFound(t *testing.T) {
	seen := map[string]int{}
	for _, c := range goldenCases(t) {
		seen[c.Format]++
	}
	// Every registered importer with golden cases takes part; fail loudly
	// if the glob stops finding them.
	for _, f := range source.Names() {
		if _, err := os.Stat(filepath.Join("../../source", f, "testdata")); err == nil && seen[f] == 0 {
			t.Errorf("importer %s has testdata but no case was found", f)
		}
	}
	t.Logf("golden cases: %v", fmt.Sprint(seen))
}
