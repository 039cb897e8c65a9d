package gatewayapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"

	"github.com/cutoverhq/cutover/internal/testenv"
	"github.com/cutoverhq/cutover/plan"
	"github.com/cutoverhq/cutover/router"
	"github.com/cutoverhq/cutover/router/routertest"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// argocd is the field manager that plays Argo CD: it server-side applies
// the route from Git, with force, as Argo CD's ServerSideApply sync does.
const argocd = "argocd-controller"

// fixture is one namespace with the two Services and a kubeconfig that
// reaches the test apiserver as an admin.
type fixture struct {
	e          *testenv.Env
	kube       kubernetes.Interface
	ns         string
	kubeconfig string
}

func newFixture(t *testing.T, ns string) *fixture {
	t.Helper()
	e := testenv.Start(t)
	kube, err := kubernetes.NewForConfig(e.Config)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{e: e, kube: kube, ns: e.Namespace(t, ns)}
	f.kubeconfig = writeKubeconfig(t, e.Config, map[string]kcUser{"admin": {namespace: f.ns}})
	f.services(t, f.ns)
	return f
}

// services creates the legacy side as an ExternalName Service pointing at
// the VMs' DNS name, and the new side as the converted workload's Service.
func (f *fixture) services(t *testing.T, ns string) {
	t.Helper()
	ctx := context.Background()
	f.e.Namespace(t, ns)
	for _, s := range []*corev1.Service{
		{ObjectMeta: metav1.ObjectMeta{Name: "payments-legacy", Namespace: ns}, Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeExternalName, ExternalName: "payments.vms.example.internal",
			Ports: []corev1.ServicePort{{Name: "http", Port: 8080}},
		}},
		{ObjectMeta: metav1.ObjectMeta{Name: "payments", Namespace: ns}, Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app.kubernetes.io/name": "payments"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80}},
		}},
	} {
		if _, err := f.kube.CoreV1().Services(ns).Create(ctx, s, metav1.CreateOptions{}); err != nil && !strings.Contains(err.Error(), "already exists") {
			t.Fatal(err)
		}
	}
}

const routeYAML = `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: %s
  namespace: %s
  labels: {app.kubernetes.io/name: payments}
spec:
  parentRefs: [{name: public, namespace: gateway}]
  hostnames: [pay.example.com]
  rules:
  - matches: [{path: {type: PathPrefix, value: /pay}}]
    backendRefs:
    - {name: payments-legacy, port: 8080, weight: 100}
    - {name: payments, port: 80, weight: 0}
`

// applyAs server-side applies a manifest as manager, with force.
func (f *fixture) applyAs(t *testing.T, manager, manifest string) *unstructured.Unstructured {
	t.Helper()
	var obj map[string]any
	if err := yaml.Unmarshal([]byte(manifest), &obj); err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{Object: obj}
	gvk := u.GroupVersionKind()
	m, err := f.e.Mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(obj)
	force := true
	out, err := f.e.Dynamic.Resource(m.Resource).Namespace(u.GetNamespace()).Patch(context.Background(), u.GetName(), types.ApplyPatchType, data,
		metav1.PatchOptions{FieldManager: manager, Force: &force, FieldValidation: "Strict"})
	if err != nil {
		t.Fatalf("apply as %s: %v", manager, err)
	}
	return out
}

func (f *fixture) route(t *testing.T, ns, name string) *unstructured.Unstructured {
	t.Helper()
	u, err := f.e.Dynamic.Resource(httpRoutes).Namespace(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// newRouter builds the router as a plan would: through the registry,
// from settings.
func (f *fixture) newRouter(t *testing.T, s Settings, b router.Backends) *Router {
	t.Helper()
	if s.Kubeconfig == "" {
		s.Kubeconfig = f.kubeconfig
	}
	if b.Legacy == nil && b.New == nil {
		b = router.Backends{Service: "payments", Legacy: []string{"payments-legacy:8080"}, New: []string{"payments:80"}}
	}
	factory, err := router.Lookup("gatewayapi")
	if err != nil {
		t.Fatal(err)
	}
	r, err := factory(context.Background(), b, func(v any) error { *v.(*Settings) = s; return nil })
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return r.(*Router)
}

type kcUser struct {
	namespace string
	token     string // "" means the admin's client certificate
}

// writeKubeconfig writes a kubeconfig with one context per user.
func writeKubeconfig(t *testing.T, admin *rest.Config, users map[string]kcUser) string {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["test"] = &clientcmdapi.Cluster{Server: admin.Host, CertificateAuthorityData: admin.CAData}
	for name, u := range users {
		ai := &clientcmdapi.AuthInfo{Token: u.token}
		if u.token == "" {
			ai.ClientCertificateData, ai.ClientKeyData = admin.CertData, admin.KeyData
		}
		kc.AuthInfos[name] = ai
		kc.Contexts[name] = &clientcmdapi.Context{Cluster: "test", AuthInfo: name, Namespace: u.namespace}
		kc.CurrentContext = name
	}
	p := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, p); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestConformance runs the router suite against a real kube-apiserver.
// Send is nil: no Gateway controller runs here, so no traffic moves; the
// suite checks what the API server stores and returns.
func TestConformance(t *testing.T) {
	f := newFixture(t, "gw-conformance")
	var n atomic.Int32
	names := map[router.Router]string{}
	routertest.Run(t, routertest.Harness{
		New: func(t *testing.T) router.Router {
			name := fmt.Sprintf("payments-%d", n.Add(1))
			f.applyAs(t, argocd, fmt.Sprintf(routeYAML, name, f.ns))
			// The route comes from Argo CD, so taking spec.rules needs force.
			r := f.newRouter(t, Settings{Route: name, Force: true}, router.Backends{})
			names[r] = name
			return r
		},
		External: func(t *testing.T, r router.Router, w router.Weights) {
			// Another writer of the route, through the API server.
			if err := f.newRouter(t, Settings{Route: names[r], Force: true}, router.Backends{}).SetWeights(context.Background(), w); err != nil {
				t.Fatal(err)
			}
		},
	})
}

// TestOtherManagersKeepTheirFields: what Argo CD applies (labels,
// hostnames, parentRefs, a filter in the rule) survives cutover's weight
// changes, and cutover owns spec.rules and nothing else.
func TestOtherManagersKeepTheirFields(t *testing.T) {
	f := newFixture(t, "gw-managers")
	ctx := context.Background()
	f.applyAs(t, argocd, `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: payments
  namespace: gw-managers
  labels: {app.kubernetes.io/name: payments, team: payments}
  annotations: {argocd.argoproj.io/tracking-id: "payments:gateway.networking.k8s.io/HTTPRoute:gw-managers/payments"}
spec:
  parentRefs: [{name: public, namespace: gateway}]
  hostnames: [pay.example.com]
  rules:
  - matches: [{path: {type: PathPrefix, value: /pay}}]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier: {set: [{name: x-env, value: prod}]}
    backendRefs:
    - {name: payments-legacy, port: 8080, weight: 100}
    - {name: payments, port: 80, weight: 0}
  - matches: [{path: {type: PathPrefix, value: /admin}}]
    backendRefs:
    - {name: payments-legacy, port: 8080}
  - matches: [{path: {type: PathPrefix, value: /refund}}]
    backendRefs:
    - {name: payments-legacy, port: 8080, weight: 100}
    - {name: payments, port: 80, weight: 0}
`)
	r := f.newRouter(t, Settings{Route: "payments", Force: true}, router.Backends{})
	if err := r.SetWeights(ctx, router.ForNew(10)); err != nil {
		t.Fatal(err)
	}

	// Argo CD syncs again with ignoreDifferences on the weights and
	// RespectIgnoreDifferences: it applies Git's manifest with the live
	// weights, plus its own changes to labels, hostnames and a filter.
	f.applyAs(t, argocd, `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: payments
  namespace: gw-managers
  labels: {app.kubernetes.io/name: payments, team: payments, tier: critical}
  annotations: {argocd.argoproj.io/tracking-id: "payments:gateway.networking.k8s.io/HTTPRoute:gw-managers/payments"}
spec:
  parentRefs: [{name: public, namespace: gateway}]
  hostnames: [pay.example.com, payments.example.com]
  rules:
  - matches: [{path: {type: PathPrefix, value: /pay}}]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier: {set: [{name: x-env, value: prod}, {name: x-region, value: eu-west-1}]}
    backendRefs:
    - {name: payments-legacy, port: 8080, weight: 90}
    - {name: payments, port: 80, weight: 10}
  - matches: [{path: {type: PathPrefix, value: /admin}}]
    backendRefs:
    - {name: payments-legacy, port: 8080}
  - matches: [{path: {type: PathPrefix, value: /refund}}]
    backendRefs:
    - {name: payments-legacy, port: 8080, weight: 90}
    - {name: payments, port: 80, weight: 10}
`)
	if err := r.SetWeights(ctx, router.ForNew(50)); err != nil {
		t.Fatal(err)
	}
	if w, err := r.Weights(ctx); err != nil || w != router.ForNew(50) {
		t.Fatalf("weights read back %v %v, want 50%%", w, err)
	}

	u := f.route(t, f.ns, "payments")
	if got := u.GetLabels()["tier"]; got != "critical" {
		t.Errorf("label tier = %q, want Argo CD's %q", got, "critical")
	}
	if got := u.GetAnnotations()["argocd.argoproj.io/tracking-id"]; got == "" {
		t.Error("Argo CD's tracking annotation is gone")
	}
	hosts, _, _ := unstructured.NestedStringSlice(u.Object, "spec", "hostnames")
	if strings.Join(hosts, ",") != "pay.example.com,payments.example.com" {
		t.Errorf("hostnames = %v", hosts)
	}
	rules, _, _ := unstructured.NestedSlice(u.Object, "spec", "rules")
	filter, _ := json.Marshal(rules[0].(map[string]any)["filters"])
	if !strings.Contains(string(filter), "eu-west-1") {
		t.Errorf("Argo CD's filter change is gone: %s", filter)
	}
	if w := weights(t, rules); w != "50,50|1|50,50" {
		t.Errorf("weights per rule = %s, want /pay and /refund at 50/50 and /admin untouched", w)
	}

	// cutover owns spec.rules and nothing else; Argo CD keeps the rest.
	owned := map[string]string{}
	for _, mf := range u.GetManagedFields() {
		if mf.Subresource == "" && mf.FieldsV1 != nil {
			owned[mf.Manager] = string(mf.FieldsV1.Raw)
		}
	}
	if got := owned[FieldManager]; got != `{"f:spec":{"f:rules":{}}}` {
		t.Errorf("%s owns %s, want spec.rules only", FieldManager, got)
	}
	for _, field := range []string{`"f:hostnames"`, `"f:parentRefs"`, `"f:tier"`, `"f:argocd.argoproj.io/tracking-id"`} {
		if !strings.Contains(owned[argocd], field) {
			t.Errorf("%s no longer owns %s: %s", argocd, field, owned[argocd])
		}
	}
	if strings.Contains(owned[argocd], `"f:rules"`) {
		t.Errorf("%s still owns spec.rules after cutover forced it: %s", argocd, owned[argocd])
	}
}

// weights lists each rule's backendRef weights: "90,10|1|90,10".
func weights(t *testing.T, rules []any) string {
	t.Helper()
	var out []string
	for _, r := range rules {
		var ws []string
		for _, b := range r.(map[string]any)["backendRefs"].([]any) {
			ws = append(ws, fmt.Sprint(b.(map[string]any)["weight"]))
		}
		out = append(out, strings.Join(ws, ","))
	}
	return strings.Join(out, "|")
}

// TestConflictRefusedByDefault: without force, a weight change on a route
// Argo CD owns is refused, names Argo CD, and changes nothing; Check says
// so before the shift starts; force takes the rules.
func TestConflictRefusedByDefault(t *testing.T) {
	f := newFixture(t, "gw-conflict")
	ctx := context.Background()
	f.applyAs(t, argocd, fmt.Sprintf(routeYAML, "payments", f.ns))
	rv := f.route(t, f.ns, "payments").GetResourceVersion()

	r := f.newRouter(t, Settings{Route: "payments"}, router.Backends{})
	err := r.SetWeights(ctx, router.ForNew(10))
	var ce *ConflictError
	if !errors.As(err, &ce) {
		t.Fatalf("SetWeights on Argo CD's route: err = %v, want a ConflictError", err)
	}
	if !strings.Contains(err.Error(), `"argocd-controller"`) || !strings.Contains(err.Error(), ".spec.rules") || !strings.Contains(err.Error(), "force: true") {
		t.Errorf("conflict error does not name the owner, the field and the way out: %v", err)
	}
	if got := f.route(t, f.ns, "payments").GetResourceVersion(); got != rv {
		t.Errorf("a refused change wrote the route (resourceVersion %s → %s)", rv, got)
	}
	if w, err := r.Weights(ctx); err != nil || w != router.ForNew(0) {
		t.Errorf("weights after the refusal: %v %v", w, err)
	}
	// Setting what the route already has is no change, so no conflict.
	if err := r.SetWeights(ctx, router.ForNew(0)); err != nil {
		t.Errorf("setting the current weights: %v", err)
	}

	err = r.Check(ctx)
	if err == nil || !strings.Contains(err.Error(), `the first weight change would fail: HTTPRoute gw-conflict/payments: .spec.rules owned by "argocd-controller"`) {
		t.Errorf("Check does not foresee the conflict: %v", err)
	}
	if err != nil && strings.Contains(err.Error(), "\n") {
		t.Errorf("Check's answer is not one line: %q", err)
	}
	if got := f.route(t, f.ns, "payments").GetResourceVersion(); got != rv {
		t.Errorf("Check's dry run wrote the route (resourceVersion %s → %s)", rv, got)
	}

	forced := f.newRouter(t, Settings{Route: "payments", Force: true}, router.Backends{})
	if err := forced.SetWeights(ctx, router.ForNew(10)); err != nil {
		t.Fatalf("with force: %v", err)
	}
	// Now cutover owns the rules: the refusing router goes on without
	// force, until someone else takes them again.
	if err := r.SetWeights(ctx, router.ForNew(20)); err != nil {
		t.Errorf("after taking the rules once: %v", err)
	}
	if w, _ := r.Weights(ctx); w != router.ForNew(20) {
		t.Errorf("weights = %v, want 20%%", w)
	}
}

// TestStaleReadIsRetried: a change made between our read and our apply
// (Argo CD adding a filter) makes the apply fail on the resourceVersion;
// the router reads again and keeps that change.
func TestStaleReadIsRetried(t *testing.T) {
	f := newFixture(t, "gw-stale")
	ctx := context.Background()
	f.applyAs(t, argocd, fmt.Sprintf(routeYAML, "payments", f.ns))
	r := f.newRouter(t, Settings{Route: "payments", Force: true}, router.Backends{})
	calls := 0
	r.testHookBeforeApply = func() {
		calls++
		if calls > 1 {
			return
		}
		f.applyAs(t, argocd, strings.Replace(fmt.Sprintf(routeYAML, "payments", f.ns), "    backendRefs:",
			"    filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: x-late, value: \"1\"}]}}]\n    backendRefs:", 1))
	}
	if err := r.SetWeights(ctx, router.ForNew(10)); err != nil {
		t.Fatal(err)
	}
	if calls != 2 {
		t.Errorf("applied %d times, want 2 (the first on a stale read)", calls)
	}
	u := f.route(t, f.ns, "payments")
	b, _ := json.Marshal(u.Object["spec"])
	if !strings.Contains(string(b), "x-late") {
		t.Errorf("the change made during our write is gone: %s", b)
	}
	if w, err := r.Weights(ctx); err != nil || w != router.ForNew(10) {
		t.Errorf("weights %v %v", w, err)
	}
}

// TestMissingBackendRef: a route without the new Service is a clear
// error from every method.
func TestMissingBackendRef(t *testing.T) {
	f := newFixture(t, "gw-missing")
	ctx := context.Background()
	f.applyAs(t, argocd, `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: payments, namespace: gw-missing}
spec:
  parentRefs: [{name: public, namespace: gateway}]
  rules:
  - backendRefs: [{name: payments-legacy, port: 8080}]
`)
	r := f.newRouter(t, Settings{Route: "payments", Force: true}, router.Backends{})
	want := "HTTPRoute gw-missing/payments: no rule references both the legacy backendRef payments-legacy:8080 and the new backendRef payments:80: spec.rules[0] lacks the new backendRef payments:80 (it has payments-legacy:8080)"
	if err := r.SetWeights(ctx, router.ForNew(10)); err == nil || err.Error() != want {
		t.Errorf("SetWeights: %v\nwant: %s", err, want)
	}
	if _, err := r.Weights(ctx); err == nil || err.Error() != want {
		t.Errorf("Weights: %v", err)
	}
	if err := r.Check(ctx); err == nil || !strings.Contains(err.Error(), "spec.rules[0] lacks the new backendRef payments:80") {
		t.Errorf("Check: %v", err)
	}
	gone := f.newRouter(t, Settings{Route: "nope"}, router.Backends{})
	if err := gone.Check(ctx); err == nil || err.Error() != "HTTPRoute gw-missing/nope not found" {
		t.Errorf("Check of a missing route: %v", err)
	}
}

// TestRouteInAnotherNamespace: the route lives in the gateway team's
// namespace (the kubeconfig context's), the Services in the service's;
// the plan names them by their in-cluster URLs. A route of the same name
// in the Services' namespace is not touched.
func TestRouteInAnotherNamespace(t *testing.T) {
	f := newFixture(t, "gw-edge")
	ctx := context.Background()
	f.services(t, "gw-payments")
	f.applyAs(t, argocd, `
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: edge-routes, namespace: gw-payments}
spec:
  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: gw-edge}]
  to: [{group: "", kind: Service}]
`)
	f.applyAs(t, argocd, `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: payments, namespace: gw-edge}
spec:
  parentRefs: [{name: public}]
  rules:
  - backendRefs:
    - {name: payments-legacy, namespace: gw-payments, port: 8080, weight: 100}
    - {name: payments, namespace: gw-payments, port: 80, weight: 0}
`)
	f.applyAs(t, argocd, fmt.Sprintf(routeYAML, "payments", "gw-payments"))
	other := f.route(t, "gw-payments", "payments").GetResourceVersion()

	r := f.newRouter(t, Settings{Route: "payments", Force: true}, router.Backends{
		Legacy: []string{"http://payments-legacy.gw-payments.svc.cluster.local:8080"},
		New:    []string{"http://payments.gw-payments.svc.cluster.local:80"},
	})
	if r.namespace != "gw-edge" {
		t.Fatalf("namespace = %q, want the context's gw-edge", r.namespace)
	}
	for _, pct := range []int{10, 100} {
		if err := r.SetWeights(ctx, router.ForNew(pct)); err != nil {
			t.Fatal(err)
		}
		if w, err := r.Weights(ctx); err != nil || w != router.ForNew(pct) {
			t.Fatalf("weights %v %v, want %d%%", w, err, pct)
		}
	}
	if got := f.route(t, "gw-payments", "payments").GetResourceVersion(); got != other {
		t.Error("the route of the same name in the Services' namespace changed")
	}
	// The namespace setting wins over the context's.
	there := f.newRouter(t, Settings{Route: "payments", Namespace: "gw-payments"}, router.Backends{})
	if w, err := there.Weights(ctx); err != nil || w != router.ForNew(0) {
		t.Errorf("route in gw-payments: %v %v", w, err)
	}
}

// TestLimitedUser: a ServiceAccount allowed only get and patch on this
// one route can shift it; one allowed only get is told what is missing;
// one allowed nothing too.
func TestLimitedUser(t *testing.T) {
	f := newFixture(t, "gw-rbac")
	ctx := context.Background()
	f.applyAs(t, argocd, fmt.Sprintf(routeYAML, "payments", f.ns))
	f.applyAs(t, argocd, fmt.Sprintf(routeYAML, "other", f.ns))
	f.accept(t, f.ns, "payments")

	users := map[string]kcUser{}
	for name, verbs := range map[string][]string{"shifter": {"get", "patch"}, "reader": {"get"}, "nobody": nil} {
		users[name] = kcUser{namespace: f.ns, token: f.serviceAccount(t, name, verbs)}
	}
	kc := writeKubeconfig(t, f.e.Config, users)

	shifter := f.newRouter(t, Settings{Kubeconfig: kc, Context: "shifter", Route: "payments", Force: true}, router.Backends{})
	if err := shifter.Check(ctx); err != nil {
		t.Errorf("Check as a user with get and patch: %v", err)
	}
	if err := shifter.SetWeights(ctx, router.ForNew(10)); err != nil {
		t.Fatalf("SetWeights as a user with get and patch: %v", err)
	}
	if w, err := shifter.Weights(ctx); err != nil || w != router.ForNew(10) {
		t.Fatalf("weights %v %v", w, err)
	}
	// The Role names one route: the other is out of reach.
	if err := f.newRouter(t, Settings{Kubeconfig: kc, Context: "shifter", Route: "other", Force: true}, router.Backends{}).SetWeights(ctx, router.ForNew(10)); err == nil {
		t.Error("the limited user changed a route its Role does not name")
	}

	reader := f.newRouter(t, Settings{Kubeconfig: kc, Context: "reader", Route: "payments", Force: true}, router.Backends{})
	err := reader.Check(ctx)
	if err == nil || !strings.Contains(err.Error(), "these credentials may not patch httproutes.gateway.networking.k8s.io payments in namespace gw-rbac") {
		t.Errorf("Check as a reader: %v", err)
	}
	err = reader.SetWeights(ctx, router.ForNew(20))
	if err == nil || !strings.Contains(err.Error(), `cannot patch resource "httproutes"`) || !strings.Contains(err.Error(), "grant get and patch on httproutes.gateway.networking.k8s.io (resourceNames: [payments]) in namespace gw-rbac") {
		t.Errorf("SetWeights as a reader: %v", err)
	}

	nobody := f.newRouter(t, Settings{Kubeconfig: kc, Context: "nobody", Route: "payments"}, router.Backends{})
	if err := nobody.Check(ctx); err == nil || !strings.Contains(err.Error(), `cannot get resource "httproutes"`) {
		t.Errorf("Check as nobody: %v", err)
	}
}

// serviceAccount creates a ServiceAccount whose Role allows verbs on the
// route "payments" only, and returns a token for it.
func (f *fixture) serviceAccount(t *testing.T, name string, verbs []string) string {
	t.Helper()
	ctx := context.Background()
	sa, err := f.kube.CoreV1().ServiceAccounts(f.ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(verbs) > 0 {
		if _, err := f.kube.RbacV1().Roles(f.ns).Create(ctx, &rbacv1.Role{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Rules:      []rbacv1.PolicyRule{{APIGroups: []string{"gateway.networking.k8s.io"}, Resources: []string{"httproutes"}, ResourceNames: []string{"payments"}, Verbs: verbs}},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.kube.RbacV1().RoleBindings(f.ns).Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: name},
			Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: name, Namespace: f.ns}},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	tok, err := f.kube.CoreV1().ServiceAccounts(f.ns).CreateToken(ctx, sa.Name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token for %s: %v", name, err)
	}
	return tok.Status.Token
}

// accept writes the status a Gateway controller writes when it accepts the
// route and resolves its references, for its current generation.
func (f *fixture) accept(t *testing.T, ns, name string) {
	t.Helper()
	f.setStatus(t, ns, name, "True", "ResolvedRefs", "")
}

const controllerName = "example.com/gateway-controller"

func (f *fixture) setStatus(t *testing.T, ns, name, resolved, reason, message string) {
	t.Helper()
	gen := f.route(t, ns, name).GetGeneration()
	cond := func(typ, status, reason, msg string) map[string]any {
		return map[string]any{"type": typ, "status": status, "reason": reason, "message": msg, "observedGeneration": gen,
			"lastTransitionTime": time.Now().UTC().Format(time.RFC3339)}
	}
	obj := map[string]any{
		"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
		"metadata": map[string]any{"name": name, "namespace": ns},
		"status": map[string]any{"parents": []any{map[string]any{
			"parentRef":      map[string]any{"name": "public", "namespace": "gateway"},
			"controllerName": controllerName,
			"conditions":     []any{cond("Accepted", "True", "Accepted", ""), cond("ResolvedRefs", resolved, reason, message)},
		}}},
	}
	data, _ := json.Marshal(obj)
	force := true
	if _, err := f.e.Dynamic.Resource(httpRoutes).Namespace(ns).Patch(context.Background(), name, types.ApplyPatchType, data,
		metav1.PatchOptions{FieldManager: controllerName, Force: &force}, "status"); err != nil {
		t.Fatalf("status: %v", err)
	}
}

// TestStatusAndCheck: Check tells a route no controller accepted, one
// whose references do not resolve, and a missing Service; with all in
// order it is quiet.
func TestStatusAndCheck(t *testing.T) {
	f := newFixture(t, "gw-status")
	ctx := context.Background()
	f.applyAs(t, argocd, fmt.Sprintf(routeYAML, "payments", f.ns))
	r := f.newRouter(t, Settings{Route: "payments", Force: true}, router.Backends{})

	err := r.Check(ctx)
	if err == nil || err.Error() != "HTTPRoute gw-status/payments: no Gateway controller has reported on parent gateway/public (status.parents has no entry for it): the route moves no traffic through it" {
		t.Errorf("Check without status: %v", err)
	}

	f.setStatus(t, f.ns, "payments", "False", "BackendNotFound", "Service gw-status/payments not found")
	st, err := r.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Parents) != 1 || st.Parents[0].Parent != "gateway/public" || st.Parents[0].Controller != controllerName ||
		st.Parents[0].Accepted.Status != metav1.ConditionTrue || st.Parents[0].ResolvedRefs.Reason != "BackendNotFound" || st.Generation != 1 {
		t.Errorf("Status = %+v", st)
	}
	if err := r.Check(ctx); err == nil || !strings.Contains(err.Error(), "parent gateway/public (controller example.com/gateway-controller) cannot resolve the route's backendRefs: ResolvedRefs=False BackendNotFound: Service gw-status/payments not found") {
		t.Errorf("Check with unresolved refs: %v", err)
	}

	f.accept(t, f.ns, "payments")
	if err := r.Check(ctx); err != nil {
		t.Errorf("Check of a route in order: %v", err)
	}

	// A weight change is a new generation the controller has not seen.
	if err := r.SetWeights(ctx, router.ForNew(10)); err != nil {
		t.Fatal(err)
	}
	if err := r.Check(ctx); err == nil || !strings.Contains(err.Error(), "has not yet seen generation 2 of the route (its Accepted is for generation 1)") {
		t.Errorf("Check after a change the controller did not see: %v", err)
	}
	f.accept(t, f.ns, "payments")

	if err := f.kube.CoreV1().Services(f.ns).Delete(ctx, "payments", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := r.Check(ctx); err == nil || err.Error() != "HTTPRoute gw-status/payments: the new Service gw-status/payments does not exist" {
		t.Errorf("Check without the new Service: %v", err)
	}
}

// TestObserveTimeout: with observeTimeout, a change counts only once the
// Gateway controller reports the new generation accepted.
func TestObserveTimeout(t *testing.T) {
	f := newFixture(t, "gw-observe")
	ctx := context.Background()
	f.applyAs(t, argocd, fmt.Sprintf(routeYAML, "payments", f.ns))
	f.accept(t, f.ns, "payments")

	r := f.newRouter(t, Settings{Route: "payments", Force: true, ObserveTimeout: "1s"}, router.Backends{})
	r.poll = 50 * time.Millisecond
	err := r.SetWeights(ctx, router.ForNew(10))
	if err == nil || !strings.Contains(err.Error(), "weights stored, but not taken up by the Gateway within observeTimeout 1s") || !strings.Contains(err.Error(), "has not yet seen generation 2") {
		t.Fatalf("SetWeights without a controller: %v", err)
	}

	// A controller that catches up after a moment.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(300 * time.Millisecond):
			}
			u, err := f.e.Dynamic.Resource(httpRoutes).Namespace(f.ns).Get(ctx, "payments", metav1.GetOptions{})
			if err != nil {
				continue
			}
			st, _ := typedStatus(u)
			if len(st.Parents) > 0 && st.Parents[0].Accepted.ObservedGeneration < st.Generation {
				f.accept(t, f.ns, "payments")
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()
	r.observe = 20 * time.Second
	start := time.Now()
	if err := r.SetWeights(ctx, router.ForNew(50)); err != nil {
		t.Fatalf("SetWeights with a controller: %v", err)
	}
	if time.Since(start) < 100*time.Millisecond {
		t.Error("SetWeights returned before the controller caught up")
	}
}

func TestUnreachableAPIServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	kc := writeKubeconfig(t, &rest.Config{Host: "https://" + addr}, map[string]kcUser{"dead": {token: "x"}})
	f := &fixture{kubeconfig: kc}
	r := f.newRouter(t, Settings{Route: "payments"}, router.Backends{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = r.Check(ctx)
	if err == nil || !strings.HasPrefix(err.Error(), "cannot reach the API server at https://"+addr+": ") || strings.Contains(err.Error(), "/apis/") {
		t.Errorf("Check: %v", err)
	}
	if err := r.SetWeights(ctx, router.ForNew(10)); err == nil || !strings.Contains(err.Error(), "cannot reach the API server") {
		t.Errorf("SetWeights: %v", err)
	}
}

func TestNewRefusesBadSettings(t *testing.T) {
	kc := writeKubeconfig(t, &rest.Config{Host: "https://127.0.0.1:1"}, map[string]kcUser{"a": {token: "x", namespace: "payments"}})
	b := router.Backends{Legacy: []string{"payments-legacy:8080"}, New: []string{"payments:80"}}
	one := 1
	for _, tc := range []struct {
		name string
		s    Settings
		b    router.Backends
		want string
	}{
		{"no route", Settings{Kubeconfig: kc}, b, "route: name the HTTPRoute"},
		{"rule twice", Settings{Kubeconfig: kc, Route: "r", RuleIndex: &one, RuleName: "x"}, b, "set ruleIndex or ruleName, not both"},
		{"in cluster and kubeconfig", Settings{Kubeconfig: kc, InCluster: true, Route: "r"}, b, "inCluster uses the Pod's service account"},
		{"not in a pod", Settings{InCluster: true, Route: "r"}, b, "inCluster: unable to load in-cluster configuration"},
		{"bad timeout", Settings{Kubeconfig: kc, Route: "r", ObserveTimeout: "soon"}, b, `observeTimeout "soon"`},
		{"missing kubeconfig", Settings{Kubeconfig: "/nonexistent/kubeconfig", Route: "r"}, b, "kubeconfig: stat /nonexistent/kubeconfig"},
		{"unknown context", Settings{Kubeconfig: kc, Context: "prod", Route: "r"}, b, `context "prod"`},
		{"VM addresses", Settings{Kubeconfig: kc, Route: "r"}, router.Backends{Legacy: []string{"http://10.20.1.11:8080"}, New: []string{"payments:80"}}, "legacy backendRef \"http://10.20.1.11:8080\" is an IP address, not a Service"},
		{"same on both sides", Settings{Kubeconfig: kc, Route: "r", NewRefs: []string{"payments-legacy:8080"}}, b, "backendRef payments-legacy:8080 is both the legacy and the new side"},
		{"no new side", Settings{Kubeconfig: kc, Route: "r"}, router.Backends{Legacy: []string{"a:1"}}, "no new backendRef"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("KUBERNETES_SERVICE_HOST", "")
			_, err := New(context.Background(), tc.b, func(v any) error { *v.(*Settings) = tc.s; return nil })
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
	// The context's namespace is the route's unless the settings name one.
	r, err := New(context.Background(), b, func(v any) error {
		*v.(*Settings) = Settings{Kubeconfig: kc, Route: "r", LegacyRefs: []string{"vm:80"}}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.(*Router); got.namespace != "payments" || got.legacy[0] != (Ref{Name: "vm", Port: 80}) {
		t.Errorf("router = namespace %q legacy %v", got.namespace, got.legacy)
	}
}

// TestPlanSettings: a plan's router block decodes into Settings, strictly.
func TestPlanSettings(t *testing.T) {
	kc := writeKubeconfig(t, &rest.Config{Host: "https://127.0.0.1:1"}, map[string]kcUser{"a": {token: "x"}})
	const tmpl = `apiVersion: cutover.dev/v1alpha1
kind: ShiftPlan
spec:
  service: payments
  legacy: {addresses: ["payments-legacy:8080"]}
  new: {addresses: ["payments:80"]}
  router:
    type: gatewayapi
    kubeconfig: %s
    context: a
    namespace: payments-prod
    route: payments
    ruleIndex: 0
    force: true
    observeTimeout: 30s
    %s
  steps: [{weight: 10, hold: 1m}, {weight: 100}]
  slo: {errorRate: {max: 1%%}}
`
	build := func(extra string) (router.Router, error) {
		p, err := plan.Parse("plan.yaml", []byte(fmt.Sprintf(tmpl, kc, extra)))
		if err != nil {
			t.Fatal(err)
		}
		factory, err := router.Lookup(p.Spec.Router.Type)
		if err != nil {
			t.Fatal(err)
		}
		return factory(context.Background(), router.Backends{Legacy: p.Spec.Legacy.Addresses, New: p.Spec.New.Addresses},
			func(v any) error { return p.DecodeSettings(&p.Spec.Router, "spec.router", v) })
	}
	rt, err := build(`newRefs: ["payments.payments-prod:80"]`)
	if err != nil {
		t.Fatal(err)
	}
	r := rt.(*Router)
	if r.namespace != "payments-prod" || r.route != "payments" || *r.pick.index != 0 || !r.force || r.observe != 30*time.Second ||
		r.new[0] != (Ref{Name: "payments", Namespace: "payments-prod", Port: 80}) || r.legacy[0] != (Ref{Name: "payments-legacy", Port: 8080}) {
		t.Errorf("router from plan: %+v", r)
	}
	if _, err := build("rulIndex: 1"); err == nil || !strings.Contains(err.Error(), "unknown setting") {
		t.Errorf("misspelt setting: %v", err)
	}
}
