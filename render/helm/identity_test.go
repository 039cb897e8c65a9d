package helm

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/cutoverhq/cutover/render"
	"github.com/cutoverhq/cutover/render/iam"
	"github.com/cutoverhq/cutover/service"
	"github.com/cutoverhq/cutover/source"
)

// roleIn renders svc in env and returns its ServiceAccount's IRSA role.
func roleIn(t *testing.T, tree render.Tree, svc, env string) string {
	t.Helper()
	out, err := TemplateTree(context.Background(), tree, svc, env)
	if err != nil {
		t.Fatalf("%s in %s: %v", svc, env, err)
	}
	for _, o := range decodeManifests(t, loadCRDs(t), out) {
		if sa, ok := o.typ.(*corev1.ServiceAccount); ok {
			return sa.Annotations["eks.amazonaws.com/role-arn"]
		}
	}
	t.Fatalf("%s in %s: no ServiceAccount", svc, env)
	return ""
}

// TestProductionRoleStaysInProduction: the role the input named is
// assumed in production only; every other environment assumes the role
// filled for it, and one left unfilled stops that environment alone.
// (The ECS task role used to be annotated in every environment, so dev
// pods acted as production.)
func TestProductionRoleStaysInProduction(t *testing.T) {
	svcs, opts, tree := renderCase(t, "testdata/worker-sqs")
	const prodRole = "arn:aws:iam::123456789012:role/payment-events-lambda"
	p := ServiceValuesFile("payment-events")
	unfilled := tree[p]

	// Unfilled, production renders and the others fail on their own value.
	if got := roleIn(t, tree, "payment-events", "prod"); got != prodRole {
		t.Errorf("prod assumes %q, want the input's %s", got, prodRole)
	}
	for _, env := range []string{"dev", "staging"} {
		_, err := TemplateTree(context.Background(), tree, "payment-events", env)
		var ie *source.InputError
		if !errors.As(err, &ie) || ie.Field != "fill."+iam.EnvRoleFill(env) || ie.File != p || ie.Line == 0 {
			t.Errorf("%s unfilled: want an InputError naming fill.%s in %s, got %v", env, iam.EnvRoleFill(env), p, err)
		}
	}

	tree[p] = fillValues(t, unfilled, map[string]string{
		"roleArnDev":     "arn:aws:iam::210987654321:role/payment-events-dev",
		"roleArnStaging": "arn:aws:iam::310987654321:role/payment-events-staging",
	})
	seen := map[string]string{}
	for _, env := range opts.Envs {
		r := roleIn(t, tree, "payment-events", env)
		if prev, dup := seen[r]; dup {
			t.Errorf("%s and %s assume the same role %s", prev, env, r)
		}
		seen[r] = env
		if (env == "prod") != (r == prodRole) {
			t.Errorf("%s assumes %s", env, r)
		}
	}

	// An environment added to the layout later names no role: it does not
	// render, rather than run with another environment's role or none.
	tree[EnvValuesFile("qa")] = bytes.ReplaceAll(tree[EnvValuesFile("dev")], []byte("dev"), []byte("qa"))
	_, err := TemplateTree(context.Background(), tree, "payment-events", "qa")
	var ie *source.InputError
	if !errors.As(err, &ie) || ie.Field != "serviceAccount.roleArn" || ie.File != p || !strings.Contains(err.Error(), "environments.qa.serviceAccount.roleArn") {
		t.Errorf("an environment without a role: want an InputError naming serviceAccount.roleArn, got %v", err)
	}
	if svcs[0].ServiceAccount.RoleARN != prodRole {
		t.Errorf("Render changed the input's role: %+v", svcs[0].ServiceAccount)
	}
}

// TestLastEnvironmentIsProductionWhenNoneIsNamedSo: with no prod, prd,
// production or live, the last environment in promotion order keeps the
// input's role; with several production environments, each keeps it.
func TestLastEnvironmentIsProductionWhenNoneIsNamedSo(t *testing.T) {
	for _, c := range []struct {
		envs []string
		prod []string
	}{
		{[]string{"qa", "uat"}, []string{"uat"}},
		{[]string{"dev", "prod", "live"}, []string{"prod", "live"}},
		{[]string{"prod"}, []string{"prod"}},
	} {
		svcs := loadServices(t, "testdata/worker-sqs/services.json")
		tree := render.Tree{}
		if err := Render(svcs, render.Options{Region: "eu-west-1", Envs: c.envs}, tree); err != nil {
			t.Fatal(err)
		}
		fills := map[string]string{}
		for _, v := range svcs[0].Values {
			fills[v.Name] = "arn:aws:iam::210987654321:role/" + v.Name
		}
		prod := map[string]bool{}
		for _, e := range c.prod {
			prod[e] = true
			if _, ok := fills[iam.EnvRoleFill(e)]; ok {
				t.Errorf("envs %v: %s, a production environment, has a role to fill", c.envs, e)
			}
		}
		if len(fills) != len(c.envs)-len(c.prod) {
			t.Errorf("envs %v: values to fill %v", c.envs, fills)
		}
		p := ServiceValuesFile("payment-events")
		if len(fills) > 0 {
			tree[p] = fillValues(t, tree[p], fills)
		}
		for _, env := range c.envs {
			got := roleIn(t, tree, "payment-events", env)
			if want := prod[env]; want != (got == "arn:aws:iam::123456789012:role/payment-events-lambda") {
				t.Errorf("envs %v: %s assumes %s", c.envs, env, got)
			}
		}
	}
}

// TestMetricsPortIsScrapedNotServed: a port that serves Prometheus
// metrics is a named container port that Prometheus's namespace may
// reach and the pods' annotations name, but not a port of the Service,
// so neither the Gateway nor other clients reach it.
func TestMetricsPortIsScrapedNotServed(t *testing.T) {
	s := &service.Service{
		Name: "orders-fn",
		Containers: []service.Container{{
			Name:  "function",
			Image: "registry.example/orders:1.0",
			Ports: []service.Port{
				{Name: "http", ContainerPort: 8080, AppProtocol: "http"},
				{Name: "metrics", ContainerPort: 9102, AppProtocol: "http", Metrics: true},
			},
		}},
		Expose: &service.Expose{Port: 8080, Routes: []service.Route{{Path: "/orders"}}},
	}
	tree := render.Tree{}
	if err := Render([]*service.Service{s}, render.Options{Region: "eu-west-1"}, tree); err != nil {
		t.Fatal(err)
	}
	out, err := TemplateTree(context.Background(), tree, "orders-fn", "prod")
	if err != nil {
		t.Fatal(err)
	}
	var svc *corev1.Service
	var np *networkingv1.NetworkPolicy
	var pod map[string]string
	named := false
	for _, o := range decodeManifests(t, loadCRDs(t), out) {
		switch x := o.typ.(type) {
		case *corev1.Service:
			svc = x
		case *networkingv1.NetworkPolicy:
			np = x
		}
		if o.gvk.Kind == "Deployment" {
			d := o.raw["spec"].(map[string]any)["template"].(map[string]any)
			pod = map[string]string{}
			for k, v := range d["metadata"].(map[string]any)["annotations"].(map[string]any) {
				pod[k] = v.(string)
			}
			named = strings.Contains(string(out), "containerPort: 9102\n              name: metrics")
		}
	}
	if svc == nil || np == nil || pod == nil {
		t.Fatalf("want a Service, a NetworkPolicy and a Deployment:\n%s", out)
	}
	for _, p := range svc.Spec.Ports {
		if p.Port == 9102 {
			t.Errorf("the Service serves the metrics port: %+v", svc.Spec.Ports)
		}
	}
	if !named {
		t.Errorf("the container does not declare the named port metrics")
	}
	if pod["prometheus.io/scrape"] != "true" || pod["prometheus.io/port"] != "9102" || pod["prometheus.io/path"] != "/metrics" {
		t.Errorf("pod annotations %v", pod)
	}
	metricsFrom := ""
	for _, r := range np.Spec.Ingress {
		for _, p := range r.Ports {
			if p.Port.IntValue() != 9102 {
				continue
			}
			for _, f := range r.From {
				if f.NamespaceSelector == nil || f.PodSelector != nil {
					t.Errorf("port 9102 is open to %+v", f)
					continue
				}
				metricsFrom += f.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"]
			}
		}
	}
	if metricsFrom != "monitoring" {
		t.Errorf("the metrics port is open to %q, want Prometheus's namespace (monitoring) alone", metricsFrom)
	}
}
