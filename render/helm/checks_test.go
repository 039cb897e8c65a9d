package helm

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
)

// recorder collects what the checks report instead of failing the test.
type recorder struct{ errs []string }

type fatal struct{}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	panic(fatal{})
}

func (r *recorder) run(f func()) {
	defer func() {
		if p := recover(); p != nil {
			if _, ok := p.(fatal); !ok {
				panic(p)
			}
		}
	}()
	f()
}

// TestChecksCatchBrokenManifests breaks rendered manifests in the ways a
// chart bug would, and wants the offline checks to notice each: the golden
// tests are only as good as these checks.
func TestChecksCatchBrokenManifests(t *testing.T) {
	crds := loadCRDs(t)
	render := func(dir, svc, env string) []byte {
		_, _, tree := renderCase(t, "testdata/"+dir)
		if f := loadFills(t, "testdata/"+dir)[svc]; f != nil {
			p := ServiceValuesFile(svc)
			tree[p] = fillValues(t, tree[p], f)
		}
		out, err := TemplateTree(context.Background(), tree, svc, env)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	server := render("server-routes", "orders-api", "prod")
	worker := render("worker-sqs", "payment-events", "prod")
	secrets := render("secrets", "card-vault", "prod")

	cases := []struct {
		name     string
		in       []byte
		old, new string
		want     string
	}{
		{"unknown field in a Deployment", server, "  revisionHistoryLimit: 10\n", "  revisionHistoryLimit: 10\n  replica: 3\n", "does not decode strictly"},
		{"path parameter in an HTTPRoute", server, `value: "/admin"`, `value: "/admin/{id}"`, "CRD schema"},
		{"unknown field in a ScaledObject", worker, "  pollingInterval: 30\n", "  pollingInterval: 30\n  pollingIntervall: 30\n", "unknown fields"},
		{"cooldown of the wrong type", worker, "  cooldownPeriod: 300\n", "  cooldownPeriod: \"300\"\n", "CRD schema"},
		{"store of an unknown kind", secrets, "kind: SecretStore\n  target:", "kind: Vault\n  target:", "CRD schema"},
		{"secret key nobody writes", secrets, `key: "DB_USER"`, `key: "DB_USERNAME"`, "which its ExternalSecret does not write"},
		{"config key not in the ConfigMap", server, `key: "DB_HOST"`, `key: "DB_PORT"`, "not in ConfigMap"},
		{"selector that misses the pods", server, "      app.kubernetes.io/instance: orders-api\n  strategy:", "      app.kubernetes.io/instance: other\n  strategy:", "does not select its pods"},
		{"replicas beside an HPA", server, "spec:\n  revisionHistoryLimit", "spec:\n  replicas: 2\n  revisionHistoryLimit", "an autoscaler owns it"},
		{"mount of an unknown volume", server, "name: tmp\n      volumes", "name: scratch\n      volumes", "unknown volume"},
		{"privileged without escalation", server, "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: true\n            privileged: true", "privileged but forbids"},
		{"port name too long", server, "containerPort: 8080\n              name: http\n", "containerPort: 8080\n              name: http-port-number-eight\n", "port http-port-number-eight"},
		{"bad label value", server, "team: payments", "team: pay ments", "label team"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !bytes.Contains(c.in, []byte(c.old)) {
				t.Fatalf("the rendered output has no %q to break", c.old)
			}
			broken := bytes.Replace(c.in, []byte(c.old), []byte(c.new), 1)
			r := &recorder{}
			r.run(func() { decodeManifests(r, crds, broken) })
			if len(r.errs) == 0 {
				t.Fatal("the checks found nothing")
			}
			if !strings.Contains(strings.Join(r.errs, "\n"), c.want) {
				t.Errorf("want a complaint containing %q, got:\n%s", c.want, strings.Join(r.errs, "\n"))
			}
		})
	}
	// And the unbroken outputs pass.
	for _, out := range [][]byte{server, worker, secrets} {
		r := &recorder{}
		r.run(func() { decodeManifests(r, crds, out) })
		if len(r.errs) > 0 {
			t.Errorf("unbroken output fails the checks: %v", r.errs)
		}
	}
}
