// Package gatewayapi is the router for a Kubernetes Gateway API HTTPRoute:
// it moves traffic by setting the weights of the route's backendRefs to
// the legacy Service (an ExternalName Service for the VMs, or a Service
// with manual Endpoints in front of them) and to the new one (the
// converted workload's Service), and reads them back from the API server.
//
// Writes are server-side apply as the field manager "cutover-shift",
// carrying only spec.rules, so the fields other managers own (labels,
// hostnames, parentRefs: what Argo CD applies) stay theirs. The Gateway
// API CRDs make spec.rules one atomic list, so a weight change re-applies
// the whole list as it is now with only the weights changed, guarded by
// the route's resourceVersion; when another manager owns spec.rules the
// change is refused, naming the manager, unless the plan says force.
//
// The API server stores weights; a Gateway controller moves the traffic.
// Status (and Check) report whether the route's parents accepted it and
// resolved its backendRefs, since a route no controller accepted moves
// nothing.
package gatewayapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/cutoverhq/cutover/router"
)

func init() { router.Register("gatewayapi", New) }

// FieldManager is the field manager cutover's weight changes apply as.
const FieldManager = "cutover-shift"

// httpRoutes is the resource the router drives: v1 is the Gateway API's
// standard channel since v1.0.
var httpRoutes = schema.GroupVersionResource{Group: gatewayv1.GroupName, Version: "v1", Resource: "httproutes"}

// Settings are the plan's router settings for type "gatewayapi".
type Settings struct {
	// Kubeconfig is the path of a kubeconfig file ("~/" is the home
	// directory). "" means $KUBECONFIG or ~/.kube/config, and, when
	// neither exists and cutover runs in a Pod, the Pod's service account.
	Kubeconfig string `yaml:"kubeconfig"`
	// InCluster uses the Pod's service account and ignores kubeconfig
	// files; false means as for Kubeconfig.
	InCluster bool `yaml:"inCluster"`
	// Context is the kubeconfig context; "" means its current context.
	Context string `yaml:"context"`
	// Namespace is the route's namespace; "" means the context's
	// namespace (in a Pod: the Pod's), else "default".
	Namespace string `yaml:"namespace"`
	// Route is the HTTPRoute's name. Required.
	Route string `yaml:"route"`
	// LegacyRefs and NewRefs name each side's Services as the route's
	// backendRefs point at them ("payments-legacy:8080",
	// "payments.payments-prod:80"; see ParseRef). nil means the plan's
	// spec.legacy.addresses and spec.new.addresses. A side with several
	// Services gives each an equal share of the side's weight.
	LegacyRefs []string `yaml:"legacyRefs"`
	NewRefs    []string `yaml:"newRefs"`
	// RuleIndex and RuleName choose the one rule (by position in
	// spec.rules, or by spec.rules[].name) whose weights move; nil and ""
	// mean every rule that references both sides moves together.
	RuleIndex *int   `yaml:"ruleIndex"`
	RuleName  string `yaml:"ruleName"`
	// Force takes spec.rules from the field manager that owns it (Argo CD,
	// kubectl) instead of refusing the change; false refuses and names
	// the owner.
	Force bool `yaml:"force"`
	// ObserveTimeout, when set ("30s"), makes every weight change wait
	// until each parent's controller has accepted the new generation of
	// the route and resolved its backendRefs; "" means a change is done
	// when the API server has stored it.
	ObserveTimeout string `yaml:"observeTimeout"`
}

// Router sets the weights of an HTTPRoute's backendRefs.
type Router struct {
	dyn       dynamic.ResourceInterface
	kube      kubernetes.Interface
	host      string
	namespace string
	route     string
	legacy    []Ref
	new       []Ref
	pick      rulePick
	force     bool
	observe   time.Duration
	log       *slog.Logger
	// poll is how often an observing SetWeights looks at the status.
	poll time.Duration
	// testHookBeforeApply, when set, runs between reading the route and
	// applying the change: tests change the route there to prove a stale
	// read never overwrites a newer change.
	testHookBeforeApply func()
}

var (
	_ router.Router  = (*Router)(nil)
	_ router.Checker = (*Router)(nil)
)

// New builds the router from the plan's settings. It does not contact the
// API server: Check does.
func New(ctx context.Context, b router.Backends, decode func(v any) error) (router.Router, error) {
	var s Settings
	if err := decode(&s); err != nil {
		return nil, err
	}
	if s.Route == "" {
		return nil, errors.New("route: name the HTTPRoute whose weights move")
	}
	if s.RuleIndex != nil && s.RuleName != "" {
		return nil, errors.New("set ruleIndex or ruleName, not both")
	}
	if s.InCluster && (s.Kubeconfig != "" || s.Context != "") {
		return nil, errors.New("inCluster uses the Pod's service account: drop kubeconfig and context")
	}
	legacyAddrs, newAddrs := b.Legacy, b.New
	if s.LegacyRefs != nil {
		legacyAddrs = s.LegacyRefs
	}
	if s.NewRefs != nil {
		newAddrs = s.NewRefs
	}
	legacy, err := parseRefs("legacy", legacyAddrs)
	if err != nil {
		return nil, err
	}
	newer, err := parseRefs("new", newAddrs)
	if err != nil {
		return nil, err
	}
	for _, l := range legacy {
		if slices.Contains(newer, l) {
			return nil, fmt.Errorf("backendRef %s is both the legacy and the new side", l)
		}
	}
	var observe time.Duration
	if s.ObserveTimeout != "" {
		if observe, err = time.ParseDuration(s.ObserveTimeout); err != nil || observe < 0 {
			return nil, fmt.Errorf("observeTimeout %q: want a duration such as 30s", s.ObserveTimeout)
		}
	}
	cfg, ns, err := restConfig(s)
	if err != nil {
		return nil, err
	}
	if s.Namespace != "" {
		ns = s.Namespace
	}
	r, err := newRouter(cfg, ns, s.Route, legacy, newer)
	if err != nil {
		return nil, err
	}
	r.pick = rulePick{index: s.RuleIndex, name: s.RuleName}
	r.force = s.Force
	r.observe = observe
	return r, nil
}

// restConfig loads the client configuration and the namespace it names.
func restConfig(s Settings) (*rest.Config, string, error) {
	if s.InCluster {
		cfg, err := rest.InClusterConfig()
		if err != nil {
			return nil, "", fmt.Errorf("inCluster: %w", err)
		}
		ns := "default"
		if b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err == nil && strings.TrimSpace(string(b)) != "" {
			ns = strings.TrimSpace(string(b))
		}
		return cfg, ns, nil
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if s.Kubeconfig != "" {
		p := s.Kubeconfig
		if rest, ok := strings.CutPrefix(p, "~/"); ok {
			if home, err := os.UserHomeDir(); err == nil {
				p = filepath.Join(home, rest)
			}
		}
		if _, err := os.Stat(p); err != nil {
			return nil, "", fmt.Errorf("kubeconfig: %w", err)
		}
		rules.ExplicitPath = p
	}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: s.Context})
	cfg, err := cc.ClientConfig()
	if err != nil {
		if s.Context != "" {
			return nil, "", fmt.Errorf("context %q: %w", s.Context, err)
		}
		return nil, "", fmt.Errorf("kubeconfig: %w", err)
	}
	ns, _, err := cc.Namespace()
	if err != nil || ns == "" {
		ns = "default"
	}
	return cfg, ns, nil
}

func newRouter(cfg *rest.Config, ns, route string, legacy, newer []Ref) (*Router, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.UserAgent = "cutover-shift"
	if cfg.Timeout == 0 {
		// A context without a deadline must not hang a shift on a dead
		// connection.
		cfg.Timeout = 30 * time.Second
	}
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	dyn, err := dynamic.NewForConfigAndClient(cfg, hc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	kube, err := kubernetes.NewForConfigAndClient(cfg, hc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return &Router{
		dyn:       dyn.Resource(httpRoutes).Namespace(ns),
		kube:      kube,
		host:      cfg.Host,
		namespace: ns,
		route:     route,
		legacy:    legacy,
		new:       newer,
		log:       slog.Default().With("router", "gatewayapi", "route", ns+"/"+route),
		poll:      500 * time.Millisecond,
	}, nil
}

// name is the route as messages name it.
func (r *Router) name() string { return "HTTPRoute " + r.namespace + "/" + r.route }

// get reads the route and its rules.
func (r *Router) get(ctx context.Context) (*unstructured.Unstructured, []any, error) {
	u, err := r.dyn.Get(ctx, r.route, metav1.GetOptions{})
	if err != nil {
		return nil, nil, r.explain(ctx, "get", err)
	}
	raw, found, err := unstructured.NestedFieldNoCopy(u.Object, "spec", "rules")
	if err != nil {
		return nil, nil, fmt.Errorf("%s: spec.rules: %w", r.name(), err)
	}
	if !found || raw == nil {
		return u, nil, nil
	}
	rules, ok := raw.([]any)
	if !ok {
		return nil, nil, fmt.Errorf("%s: spec.rules is not a list", r.name())
	}
	return u, rules, nil
}

// locate reads the route and finds the weights in it.
func (r *Router) locate(ctx context.Context) (*unstructured.Unstructured, []any, selection, error) {
	u, rules, err := r.get(ctx)
	if err != nil {
		return nil, nil, selection{}, err
	}
	sel, err := selectRules(rules, r.namespace, r.legacy, r.new, r.pick)
	if err != nil {
		return nil, nil, selection{}, fmt.Errorf("%s: %w", r.name(), err)
	}
	return u, rules, sel, nil
}

// Weights reads the weights back from the API server: what the route's
// spec says now. Whether a controller has applied them is Status.
func (r *Router) Weights(ctx context.Context) (router.Weights, error) {
	_, rules, sel, err := r.locate(ctx)
	if err != nil {
		return router.Weights{}, err
	}
	w, err := readWeights(rules, sel)
	if err != nil {
		return router.Weights{}, fmt.Errorf("%s: %w", r.name(), err)
	}
	return w, nil
}

// conflictRetries bounds how often a write is retried after someone else
// changed the route between our read and our apply.
const conflictRetries = 5

// SetWeights applies the weights to the route. Setting the weights the
// route already has writes nothing.
func (r *Router) SetWeights(ctx context.Context, w router.Weights) error {
	if err := w.Validate(); err != nil {
		return err
	}
	var gen int64
	for attempt := 1; ; attempt++ {
		u, rules, sel, err := r.locate(ctx)
		if err != nil {
			return err
		}
		before, _ := readWeights(rules, sel)
		changed, err := setWeights(rules, sel, w)
		if err != nil {
			return fmt.Errorf("%s: %w", r.name(), err)
		}
		gen = u.GetGeneration()
		if !changed {
			break
		}
		if r.testHookBeforeApply != nil {
			r.testHookBeforeApply()
		}
		out, err := r.apply(ctx, u.GetResourceVersion(), rules, r.force, false)
		if isStale(err) && attempt < conflictRetries {
			r.log.Debug("route changed under us; reading it again", "attempt", attempt)
			continue
		}
		if err != nil {
			return err
		}
		gen = out.GetGeneration()
		r.log.Info("weights applied", "from", before.String(), "to", w.String(), "generation", gen, "force", r.force)
		break
	}
	if r.observe > 0 {
		return r.waitObserved(ctx, gen)
	}
	return nil
}

// apply server-side applies spec.rules. resourceVersion makes it a
// compare-and-swap: rules read before someone else's change are never
// written over it.
func (r *Router) apply(ctx context.Context, resourceVersion string, rules []any, force, dryRun bool) (*unstructured.Unstructured, error) {
	obj := map[string]any{
		"apiVersion": httpRoutes.GroupVersion().String(),
		"kind":       "HTTPRoute",
		"metadata": map[string]any{
			"name":            r.route,
			"namespace":       r.namespace,
			"resourceVersion": resourceVersion,
		},
		"spec": map[string]any{"rules": rules},
	}
	data, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	opts := metav1.PatchOptions{
		FieldManager: FieldManager,
		Force:        &force,
		// The rules are the server's own, read a moment ago; a field
		// unknown to the schema cannot come from us, and refusing the
		// write for it would block a rollback.
		FieldValidation: metav1.FieldValidationIgnore,
	}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	out, err := r.dyn.Patch(ctx, r.route, types.ApplyPatchType, data, opts)
	if err != nil {
		if c := conflictOf(err, r.name()); c != nil {
			return nil, c
		}
		return nil, r.explain(ctx, "patch", err)
	}
	return out, nil
}

// ConflictError is a weight change refused because another field manager
// owns spec.rules. Force takes it.
type ConflictError struct {
	// Route is "HTTPRoute namespace/name".
	Route string
	// Owners are the conflicting managers, one per field, as the API
	// server names them: `"argocd-controller" using gateway.networking.k8s.io/v1`.
	Owners []string
	// Fields are the conflicting field paths (".spec.rules").
	Fields []string
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("%s: %s owned by %s; the Gateway API makes spec.rules one atomic field, so changing a weight takes all of it: set force: true in the router settings to take it (and have that owner ignore the weights, see docs/routers.md)",
		e.Route, strings.Join(e.Fields, ", "), strings.Join(e.Owners, ", "))
}

// conflictOf returns a ConflictError for a field manager conflict, or nil.
func conflictOf(err error, route string) *ConflictError {
	var st apierrors.APIStatus
	if !apierrors.IsConflict(err) || !errors.As(err, &st) || st.Status().Details == nil {
		return nil
	}
	c := &ConflictError{Route: route}
	for _, cause := range st.Status().Details.Causes {
		if cause.Type != metav1.CauseTypeFieldManagerConflict {
			continue
		}
		owner := strings.TrimPrefix(cause.Message, "conflict with ")
		if !slices.Contains(c.Owners, owner) {
			c.Owners = append(c.Owners, owner)
		}
		if !slices.Contains(c.Fields, cause.Field) {
			c.Fields = append(c.Fields, cause.Field)
		}
	}
	if len(c.Owners) == 0 {
		return nil
	}
	return c
}

// isStale reports a write refused because the route changed since we read
// it (a resourceVersion mismatch, not a field manager conflict).
func isStale(err error) bool {
	var c *ConflictError
	return err != nil && apierrors.IsConflict(err) && !errors.As(err, &c)
}

// explain turns an API error into one line that says what to do.
func (r *Router) explain(ctx context.Context, verb string, err error) error {
	switch {
	case apierrors.IsNotFound(err):
		if ctx.Err() == nil && !r.servesHTTPRoutes(ctx) {
			return fmt.Errorf("the API server at %s does not serve %s: install the Gateway API CRDs", r.host, httpRoutes.GroupResource())
		}
		return fmt.Errorf("%s not found", r.name())
	case apierrors.IsForbidden(err):
		return fmt.Errorf("%s: %s: grant get and patch on httproutes.%s (resourceNames: [%s]) in namespace %s", r.name(), oneLine(messageOf(err)), gatewayv1.GroupName, r.route, r.namespace)
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("the API server at %s refused our credentials (401): check the kubeconfig's user or token", r.host)
	case apierrors.IsInvalid(err):
		return fmt.Errorf("%s: the API server refused the weights: %s", r.name(), oneLine(messageOf(err)))
	}
	var ue *url.Error
	var ne net.Error
	if errors.As(err, &ue) || errors.As(err, &ne) {
		if ctx.Err() != nil {
			return fmt.Errorf("%s %s: %w", verb, r.name(), ctx.Err())
		}
		if ue != nil {
			err = ue.Err // the URL repeats the host and adds nothing a user acts on
		}
		return fmt.Errorf("cannot reach the API server at %s: %v", r.host, err)
	}
	return fmt.Errorf("%s %s: %w", verb, r.name(), err)
}

func messageOf(err error) string {
	var st apierrors.APIStatus
	if errors.As(err, &st) {
		return st.Status().Message
	}
	return err.Error()
}

// servesHTTPRoutes asks discovery whether the API server knows the
// resource, to tell a missing route from a missing CRD.
func (r *Router) servesHTTPRoutes(ctx context.Context) bool {
	res, err := r.kube.Discovery().ServerResourcesForGroupVersion(httpRoutes.GroupVersion().String())
	if err != nil {
		return false
	}
	for _, a := range res.APIResources {
		if a.Name == httpRoutes.Resource {
			return true
		}
	}
	return false
}

// Status reads what the route's parents say about it.
func (r *Router) Status(ctx context.Context) (Status, error) {
	u, _, err := r.get(ctx)
	if err != nil {
		return Status{}, err
	}
	return typedStatus(u)
}

func typedStatus(u *unstructured.Unstructured) (Status, error) {
	var rt gatewayv1.HTTPRoute
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &rt); err != nil {
		return Status{}, fmt.Errorf("HTTPRoute %s/%s: %w", u.GetNamespace(), u.GetName(), err)
	}
	return statusOf(&rt), nil
}

// waitObserved waits until every parent reports the route accepted and
// its references resolved, for generation gen or later.
func (r *Router) waitObserved(ctx context.Context, gen int64) error {
	ctx, cancel := context.WithTimeout(ctx, r.observe)
	defer cancel()
	var last error
	for {
		st, err := r.Status(ctx)
		switch {
		case err != nil:
			// A read cut short by the observe deadline itself says less
			// than the state the last full read saw.
			if ctx.Err() == nil || last == nil {
				last = err
			}
		case observedAll(st, gen):
			last = st.Err()
			if last == nil {
				return nil
			}
		default:
			last = st.Err()
			if last == nil {
				last = fmt.Errorf("no parent has reported generation %d yet", gen)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: weights stored, but not taken up by the Gateway within observeTimeout %s: %v", r.name(), r.observe, last)
		case <-time.After(r.poll):
		}
	}
}

// observedAll reports whether every parent's conditions are for
// generation gen or later.
func observedAll(st Status, gen int64) bool {
	if len(st.Parents) == 0 {
		return false
	}
	for _, p := range st.Parents {
		if p.Accepted.ObservedGeneration < gen || p.ResolvedRefs.ObservedGeneration < gen {
			return false
		}
	}
	return true
}

// Check tells, in one line, everything that would stop a shift through
// this route: an unreachable API server, a missing route or backendRef,
// missing permissions, a backendRef outside the shift that takes traffic,
// a route no Gateway controller accepted, and a weight change that would
// conflict with another field manager.
func (r *Router) Check(ctx context.Context) error {
	u, rules, err := r.get(ctx)
	if err != nil {
		return err
	}
	var probs []string
	for _, verb := range []string{"get", "patch"} {
		if p := r.canI(ctx, verb); p != "" {
			probs = append(probs, p)
		}
	}
	sel, selErr := selectRules(rules, r.namespace, r.legacy, r.new, r.pick)
	var cur router.Weights
	var readErr error
	if selErr != nil {
		probs = append(probs, selErr.Error())
	} else if cur, readErr = readWeights(rules, sel); readErr != nil {
		probs = append(probs, readErr.Error())
	}
	probs = append(probs, r.checkServices(ctx)...)
	if st, err := typedStatus(u); err != nil {
		probs = append(probs, err.Error())
	} else if err := st.Err(); err != nil {
		probs = append(probs, err.Error())
	}
	if selErr == nil && readErr == nil && !r.force {
		// A dry run of a real change finds what only the write would:
		// a field manager conflict, an admission webhook or policy that
		// refuses edits. Nothing is stored.
		probe := router.ForNew(50)
		if cur == probe {
			probe = router.ForNew(49)
		}
		if _, err := setWeights(rules, sel, probe); err == nil {
			if _, err := r.apply(ctx, u.GetResourceVersion(), rules, false, true); err != nil && !isStale(err) && !apierrors.IsForbidden(err) {
				probs = append(probs, "the first weight change would fail: "+err.Error())
			}
		}
	}
	if len(probs) == 0 {
		return nil
	}
	return fmt.Errorf("%s: %s", r.name(), strings.Join(probs, "; "))
}

// canI asks the API server whether our credentials may use verb on the
// route; it returns the problem, or "" (also when it cannot tell: the
// dry run then finds out).
func (r *Router) canI(ctx context.Context, verb string) string {
	rev, err := r.kube.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
		Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: r.namespace, Verb: verb, Group: gatewayv1.GroupName, Resource: httpRoutes.Resource, Name: r.route,
		}},
	}, metav1.CreateOptions{})
	if err != nil || rev.Status.Allowed {
		return ""
	}
	why := ""
	if rev.Status.Reason != "" {
		why = " (" + oneLine(rev.Status.Reason) + ")"
	}
	return fmt.Sprintf("these credentials may not %s httproutes.%s %s in namespace %s%s", verb, gatewayv1.GroupName, r.route, r.namespace, why)
}

// checkServices looks for the Services the backendRefs name. Reading
// Services is not a permission the router needs, so a refusal skips
// this check.
func (r *Router) checkServices(ctx context.Context) []string {
	var probs []string
	for _, side := range []struct {
		name string
		refs []Ref
	}{{"legacy", r.legacy}, {"new", r.new}} {
		for _, ref := range side.refs {
			ns := ref.Namespace
			if ns == "" {
				ns = r.namespace
			}
			_, err := r.kube.CoreV1().Services(ns).Get(ctx, ref.Name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				probs = append(probs, fmt.Sprintf("the %s Service %s/%s does not exist", side.name, ns, ref.Name))
			}
		}
	}
	return probs
}
