package argocd

import (
	"bytes"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/cutoverhq/cutover/render"
	"github.com/cutoverhq/cutover/service"
)

func docs(t *testing.T, b []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			break
		}
		out = append(out, m)
	}
	return out
}

func TestApplicationSetGeneratesServiceTimesEnvironment(t *testing.T) {
	tree := render.Tree{}
	svcs := []*service.Service{{Name: "api"}, {Name: "worker"}}
	opts := render.Options{Envs: []string{"staging", "prod"}, Team: "payments", RepoURL: "https://git.example/m.git", RepoPath: "migrations/payments",
		Clusters: map[string]string{"prod": "https://prod.example:6443"}}
	if err := Render(svcs, opts, tree); err != nil {
		t.Fatal(err)
	}
	set := docs(t, tree["argocd/applicationset.yaml"])[0]
	spec := set["spec"].(map[string]any)
	gens := spec["generators"].([]any)[0].(map[string]any)["matrix"].(map[string]any)["generators"].([]any)
	svcList := gens[0].(map[string]any)["list"].(map[string]any)["elements"].([]any)
	envList := gens[1].(map[string]any)["list"].(map[string]any)["elements"].([]any)
	if len(svcList) != 2 || len(envList) != 2 {
		t.Fatalf("generators %v", gens)
	}
	prod := envList[1].(map[string]any)
	if prod["env"] != "prod" || prod["cluster"] != "https://prod.example:6443" || prod["namespace"] != "payments-prod" || prod["autoSync"] != "false" {
		t.Errorf("prod element %v", prod)
	}
	if envList[0].(map[string]any)["autoSync"] != "true" {
		t.Errorf("staging does not sync automatically")
	}
	src := spec["template"].(map[string]any)["spec"].(map[string]any)["source"].(map[string]any)
	if src["path"] != "migrations/payments/chart" || src["repoURL"] != "https://git.example/m.git" {
		t.Errorf("source %v", src)
	}
	files := src["helm"].(map[string]any)["valueFiles"].([]any)
	if len(files) != 3 || files[2] != "../values/services/{{.service}}.yaml" {
		t.Errorf("value files %v", files)
	}
}

func TestPlatformObjectsDecodeStrictly(t *testing.T) {
	tree := render.Tree{}
	if err := Render([]*service.Service{{Name: "api"}}, render.Options{Envs: []string{"dev", "prod"}}, tree); err != nil {
		t.Fatal(err)
	}
	for _, env := range []string{"dev", "prod"} {
		b := tree["platform/"+env+"/namespace.yaml"]
		parts := strings.Split(string(b), "\n---\n")
		if len(parts) != 5 {
			t.Fatalf("%s: %d objects", env, len(parts))
		}
		var ns corev1.Namespace
		if err := sigsyaml.UnmarshalStrict([]byte(strings.SplitN(parts[0], "\n", 2)[1]), &ns); err != nil || ns.Name != "platform-"+env {
			t.Errorf("namespace: %v %+v", err, ns)
		}
		if ns.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
			t.Errorf("namespace not restricted: %v", ns.Labels)
		}
		var q corev1.ResourceQuota
		if err := sigsyaml.UnmarshalStrict([]byte(parts[1]), &q); err != nil || q.Spec.Hard.Pods().IsZero() {
			t.Errorf("quota: %v %+v", err, q)
		}
		var lr corev1.LimitRange
		if err := sigsyaml.UnmarshalStrict([]byte(parts[2]), &lr); err != nil || len(lr.Spec.Limits) != 1 {
			t.Errorf("limit range: %v", err)
		}
		var dev rbacv1.RoleBinding
		if err := sigsyaml.UnmarshalStrict([]byte(parts[3]), &dev); err != nil {
			t.Fatal(err)
		}
		want := "edit"
		if env == "prod" {
			want = "view"
		}
		if dev.RoleRef.Name != want || dev.Subjects[0].Name != "platform-developers" {
			t.Errorf("%s developers binding %+v", env, dev)
		}
	}
}
