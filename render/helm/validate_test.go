package helm

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	crvalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	sigsyaml "sigs.k8s.io/yaml"
)

// The checks here are offline: strict decoding into the Kubernetes and
// Gateway API Go types, the CRDs' own OpenAPI schemas and CEL rules for
// KEDA and External Secrets objects (as kube-apiserver applies them), and
// references between the objects of one render. The kube-apiserver
// integration test (in lint) is the real check of admission.

// crdSchema is what kube-apiserver checks a custom resource of one version
// against.
type crdSchema struct {
	validator  crvalidation.SchemaValidator
	structural *structuralschema.Structural
	cel        *cel.Validator
}

var (
	crdOnce sync.Once
	crds    map[schema.GroupVersionKind]*crdSchema
	crdErr  error
)

// loadCRDs reads the CRDs named in hack/crds.txt: from
// $CUTOVER_TEST_ASSETS/crds when hack/deps.sh ran, else from the projects'
// Go modules, as hack/crds.sh does.
func loadCRDs(t *testing.T) map[schema.GroupVersionKind]*crdSchema {
	t.Helper()
	crdOnce.Do(func() { crds, crdErr = readCRDs() })
	if crdErr != nil {
		t.Skipf("CRDs of KEDA, External Secrets and Gateway API unavailable (run hack/deps.sh, or give the go command module proxy access): %v", crdErr)
	}
	return crds
}

func readCRDs() (map[schema.GroupVersionKind]*crdSchema, error) {
	var files []string
	if assets := os.Getenv("CUTOVER_TEST_ASSETS"); assets != "" {
		fs, _ := filepath.Glob(filepath.Join(assets, "crds", "*.yaml"))
		files = fs
	}
	if len(files) == 0 {
		list, err := os.ReadFile("../../hack/crds.txt")
		if err != nil {
			return nil, err
		}
		tmp, err := os.MkdirTemp("", "crds")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		if err := os.WriteFile(filepath.Join(tmp, "go.mod"), []byte("module crds\n"), 0o644); err != nil {
			return nil, err
		}
		for _, line := range strings.Split(string(list), "\n") {
			f := strings.Fields(line)
			if len(f) != 3 || strings.HasPrefix(f[0], "#") {
				continue
			}
			if !strings.Contains(f[0], "keda") && !strings.Contains(f[0], "external-secrets") && !strings.Contains(f[0], "gateway-api") {
				continue
			}
			cmd := exec.Command("go", "mod", "download", "-json", f[0])
			cmd.Dir = tmp
			cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
			out, err := cmd.Output()
			if err != nil {
				return nil, fmt.Errorf("go mod download %s: %w", f[0], err)
			}
			var mod struct{ Dir string }
			if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
				return nil, fmt.Errorf("go mod download %s: no directory", f[0])
			}
			fs, _ := filepath.Glob(filepath.Join(mod.Dir, f[1], f[2]))
			files = append(files, fs...)
		}
	}
	out := map[schema.GroupVersionKind]*crdSchema{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var crd apiextv1.CustomResourceDefinition
		if err := sigsyaml.Unmarshal(data, &crd); err != nil || crd.Kind != "CustomResourceDefinition" {
			continue
		}
		for _, v := range crd.Spec.Versions {
			if v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
				continue
			}
			var internal apiextensions.JSONSchemaProps
			if err := apiextv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(v.Schema.OpenAPIV3Schema, &internal, nil); err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			val, _, err := crvalidation.NewSchemaValidator(&internal)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			st, err := structuralschema.NewStructural(&internal)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			gvk := schema.GroupVersionKind{Group: crd.Spec.Group, Version: v.Name, Kind: crd.Spec.Names.Kind}
			out[gvk] = &crdSchema{validator: val, structural: st, cel: cel.NewValidator(st, true, celconfig.PerCallLimit)}
		}
	}
	for _, want := range []string{"ScaledObject", "ScaledJob", "TriggerAuthentication", "ExternalSecret", "SecretStore", "HTTPRoute"} {
		found := false
		for gvk := range out {
			found = found || gvk.Kind == want
		}
		if !found {
			return nil, fmt.Errorf("no CRD for %s", want)
		}
	}
	return out, nil
}

// validateCR checks one custom resource as kube-apiserver would on create:
// no field the schema does not know (the apiserver would drop it), then,
// after the schema's defaults, the OpenAPI schema and the CEL rules.
func (c *crdSchema) validateCR(in map[string]any) []string {
	var errs []string
	obj, _ := copyValues(in)
	if pruned := pruning.PruneWithOptions(obj, c.structural, true, structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true}); len(pruned) > 0 {
		errs = append(errs, fmt.Sprintf("unknown fields: %s", strings.Join(pruned, ", ")))
	}
	defaulting.Default(obj, c.structural)
	for _, e := range crvalidation.ValidateCustomResource(nil, obj, c.validator) {
		errs = append(errs, e.Error())
	}
	if c.cel != nil {
		fe, _ := c.cel.Validate(context.Background(), field.NewPath(""), c.structural, obj, nil, celconfig.RuntimeCELCostBudget)
		for _, e := range fe {
			errs = append(errs, e.Error())
		}
	}
	return errs
}

// object is one rendered manifest, decoded.
type object struct {
	gvk  schema.GroupVersionKind
	name string
	ns   string
	raw  map[string]any
	typ  any // the typed object for built-in kinds and HTTPRoute
}

func (o object) String() string { return o.gvk.Kind + "/" + o.name }

// builtin are the kinds decoded into their Go types.
var builtin = map[schema.GroupVersionKind]func() any{
	{Group: "apps", Version: "v1", Kind: "Deployment"}:                       func() any { return &appsv1.Deployment{} },
	{Group: "batch", Version: "v1", Kind: "CronJob"}:                         func() any { return &batchv1.CronJob{} },
	{Group: "batch", Version: "v1", Kind: "Job"}:                             func() any { return &batchv1.Job{} },
	{Group: "autoscaling", Version: "v2", Kind: "HorizontalPodAutoscaler"}:   func() any { return &autoscalingv2.HorizontalPodAutoscaler{} },
	{Version: "v1", Kind: "Service"}:                                         func() any { return &corev1.Service{} },
	{Version: "v1", Kind: "ConfigMap"}:                                       func() any { return &corev1.ConfigMap{} },
	{Version: "v1", Kind: "ServiceAccount"}:                                  func() any { return &corev1.ServiceAccount{} },
	{Version: "v1", Kind: "PersistentVolume"}:                                func() any { return &corev1.PersistentVolume{} },
	{Version: "v1", Kind: "PersistentVolumeClaim"}:                           func() any { return &corev1.PersistentVolumeClaim{} },
	{Group: "policy", Version: "v1", Kind: "PodDisruptionBudget"}:            func() any { return &policyv1.PodDisruptionBudget{} },
	{Group: "networking.k8s.io", Version: "v1", Kind: "NetworkPolicy"}:       func() any { return &networkingv1.NetworkPolicy{} },
	{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "Role"}:        func() any { return &rbacv1.Role{} },
	{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "RoleBinding"}: func() any { return &rbacv1.RoleBinding{} },
	{Group: "gateway.networking.k8s.io", Version: "v1", Kind: "HTTPRoute"}:   func() any { return &gatewayv1.HTTPRoute{} },
	{Group: "keda.sh", Version: "v1alpha1", Kind: "ScaledObject"}:            nil,
	{Group: "keda.sh", Version: "v1alpha1", Kind: "ScaledJob"}:               nil,
	{Group: "keda.sh", Version: "v1alpha1", Kind: "TriggerAuthentication"}:   nil,
	{Group: "external-secrets.io", Version: "v1", Kind: "ExternalSecret"}:    nil,
	{Group: "external-secrets.io", Version: "v1", Kind: "SecretStore"}:       nil,
}

// reporter is the part of testing.TB the checks use, so that a test can
// also run them on broken manifests and see them fail.
type reporter interface {
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// decodeManifests splits Template's output and checks every object
// strictly; it reports every problem to t.
func decodeManifests(t reporter, crdSchemas map[schema.GroupVersionKind]*crdSchema, out []byte) []object {
	t.Helper()
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(out)))
	var objs []object
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("cannot split the output: %v", err)
		}
		js, err := sigsyaml.YAMLToJSON(doc)
		if err != nil {
			t.Fatalf("not YAML: %v\n%s", err, doc)
		}
		if string(bytes.TrimSpace(js)) == "null" {
			continue
		}
		var raw map[string]any
		// As the apiserver decodes: integers as int64.
		if err := utiljson.Unmarshal(js, &raw); err != nil {
			t.Fatalf("not an object: %v\n%s", err, doc)
		}
		gv, _ := schema.ParseGroupVersion(fmt.Sprint(raw["apiVersion"]))
		o := object{gvk: gv.WithKind(fmt.Sprint(raw["kind"])), raw: raw}
		md, _ := raw["metadata"].(map[string]any)
		o.name, _ = md["name"].(string)
		o.ns, _ = md["namespace"].(string)
		newT, known := builtin[o.gvk]
		if !known {
			t.Errorf("%s: a kind the chart should not render (%s)", o, o.gvk)
			continue
		}
		if newT != nil {
			o.typ = newT()
			if err := sigsyaml.UnmarshalStrict(doc, o.typ); err != nil {
				t.Errorf("%s does not decode strictly: %v", o, err)
			}
		}
		if cs := crdSchemas[o.gvk]; cs != nil {
			for _, e := range cs.validateCR(raw) {
				t.Errorf("%s: CRD schema: %s", o, e)
			}
		} else if newT == nil {
			t.Errorf("%s: no CRD schema for %s", o, o.gvk)
		}
		checkMetadata(t, o, md)
		objs = append(objs, o)
	}
	checkReferences(t, objs)
	return objs
}

func checkMetadata(t reporter, o object, md map[string]any) {
	t.Helper()
	for _, e := range validation.IsDNS1123Subdomain(o.name) {
		t.Errorf("%s: name: %s", o, e)
	}
	switch o.gvk.Kind {
	case "Service":
		for _, e := range validation.IsDNS1123Label(o.name) {
			t.Errorf("%s: a Service name must be a DNS label: %s", o, e)
		}
	case "CronJob":
		if len(o.name) > 52 {
			t.Errorf("%s: a CronJob name longer than 52 characters", o)
		}
	case "Job":
		if len(o.name) > 63 {
			t.Errorf("%s: a Job name longer than 63 characters", o)
		}
	}
	if o.gvk.Kind == "PersistentVolume" {
		if o.ns != "" {
			t.Errorf("%s: a cluster-scoped object with a namespace", o)
		}
	} else if o.ns == "" {
		t.Errorf("%s: no namespace", o)
	}
	labels, _ := md["labels"].(map[string]any)
	checkLabels(t, o.String(), labels)
	for _, want := range []string{"app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/managed-by", "cutover.dev/service"} {
		if _, ok := labels[want]; !ok {
			t.Errorf("%s: no label %s", o, want)
		}
	}
}

func checkLabels(t reporter, where string, labels map[string]any) {
	t.Helper()
	for k, v := range labels {
		for _, e := range validation.IsQualifiedName(k) {
			t.Errorf("%s: label %s: %s", where, k, e)
		}
		for _, e := range validation.IsValidLabelValue(fmt.Sprint(v)) {
			t.Errorf("%s: label %s=%v: %s", where, k, v, e)
		}
	}
}

// checkReferences checks that the objects of one render refer to each
// other correctly: what a pod mounts, reads and runs as exists, autoscalers
// and routes point at what is there, selectors select the pods.
func checkReferences(t reporter, objs []object) {
	t.Helper()
	has := map[string]object{}
	for _, o := range objs {
		has[o.gvk.Kind+"/"+o.name] = o
	}
	// Keys of the Secrets the pods may read: what ExternalSecrets write,
	// and the -files Secret the user creates.
	secretKeys := map[string]map[string]bool{}
	for _, o := range objs {
		switch o.gvk.Kind {
		case "ExternalSecret":
			spec := o.raw["spec"].(map[string]any)
			target := spec["target"].(map[string]any)["name"].(string)
			secretKeys[target] = map[string]bool{}
			for _, d := range spec["data"].([]any) {
				secretKeys[target][d.(map[string]any)["secretKey"].(string)] = true
			}
			refs := []map[string]any{spec["secretStoreRef"].(map[string]any)}
			for _, d := range spec["data"].([]any) {
				if sr, ok := d.(map[string]any)["sourceRef"].(map[string]any); ok {
					refs = append(refs, sr["storeRef"].(map[string]any))
				}
			}
			for _, r := range refs {
				if r["kind"] == "SecretStore" {
					if _, ok := has["SecretStore/"+r["name"].(string)]; !ok {
						t.Errorf("%s refers to SecretStore %s, not rendered", o, r["name"])
					}
				}
			}
		case "SecretStore":
			sa := o.raw["spec"].(map[string]any)["provider"].(map[string]any)["aws"].(map[string]any)["auth"].(map[string]any)["jwt"].(map[string]any)["serviceAccountRef"].(map[string]any)["name"].(string)
			if _, ok := has["ServiceAccount/"+sa]; !ok {
				t.Errorf("%s authenticates as ServiceAccount %s, not rendered", o, sa)
			}
		}
	}
	autoscaled := map[string]bool{}
	for _, o := range objs {
		switch o.gvk.Kind {
		case "HorizontalPodAutoscaler":
			n := o.typ.(*autoscalingv2.HorizontalPodAutoscaler).Spec.ScaleTargetRef.Name
			autoscaled[n] = true
			if _, ok := has["Deployment/"+n]; !ok {
				t.Errorf("%s scales Deployment %s, not rendered", o, n)
			}
		case "ScaledObject":
			spec := o.raw["spec"].(map[string]any)
			n := spec["scaleTargetRef"].(map[string]any)["name"].(string)
			autoscaled[n] = true
			if _, ok := has["Deployment/"+n]; !ok {
				t.Errorf("%s scales Deployment %s, not rendered", o, n)
			}
			checkTriggerAuth(t, o, spec, has)
		case "ScaledJob":
			spec := o.raw["spec"].(map[string]any)
			checkTriggerAuth(t, o, spec, has)
		}
	}
	for _, o := range objs {
		var pod *corev1.PodTemplateSpec
		var selector map[string]string
		switch x := o.typ.(type) {
		case *appsv1.Deployment:
			pod = &x.Spec.Template
			selector = x.Spec.Selector.MatchLabels
			if autoscaled[o.name] && x.Spec.Replicas != nil {
				t.Errorf("%s sets replicas though an autoscaler owns it", o)
			}
			if !autoscaled[o.name] && x.Spec.Replicas == nil {
				t.Errorf("%s has no replicas and no autoscaler", o)
			}
		case *batchv1.CronJob:
			pod = &x.Spec.JobTemplate.Spec.Template
		case *batchv1.Job:
			pod = &x.Spec.Template
		}
		if o.gvk.Kind == "ScaledJob" {
			tpl := o.raw["spec"].(map[string]any)["jobTargetRef"].(map[string]any)["template"]
			b, _ := json.Marshal(tpl)
			pod = &corev1.PodTemplateSpec{}
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.DisallowUnknownFields()
			if err := dec.Decode(pod); err != nil {
				t.Errorf("%s: the job template does not decode strictly: %v", o, err)
			}
		}
		if pod != nil {
			checkPod(t, o, pod, has, secretKeys)
			for k, v := range selector {
				if pod.Labels[k] != v {
					t.Errorf("%s: selector %s=%s does not select its pods", o, k, v)
				}
			}
		}
		switch x := o.typ.(type) {
		case *corev1.Service:
			d, ok := has["Deployment/"+o.name]
			if !ok {
				t.Errorf("%s selects no rendered Deployment", o)
				continue
			}
			dep := d.typ.(*appsv1.Deployment)
			for k, v := range x.Spec.Selector {
				if dep.Spec.Template.Labels[k] != v {
					t.Errorf("%s: selector %s=%s does not select %s", o, k, v, d)
				}
			}
			for _, p := range x.Spec.Ports {
				if !podHasPort(&dep.Spec.Template.Spec, p.TargetPort.IntValue()) {
					t.Errorf("%s: port %s targets %s, which no container of %s declares", o, p.Name, p.TargetPort.String(), d)
				}
			}
		case *gatewayv1.HTTPRoute:
			for _, r := range x.Spec.Rules {
				for _, br := range r.BackendRefs {
					s, ok := has["Service/"+string(br.Name)]
					if !ok {
						t.Errorf("%s sends to Service %s, not rendered", o, br.Name)
						continue
					}
					found := false
					for _, p := range s.typ.(*corev1.Service).Spec.Ports {
						found = found || br.Port != nil && p.Port == int32(*br.Port)
					}
					if !found {
						t.Errorf("%s sends to a port %s does not have", o, s)
					}
				}
			}
		case *corev1.PersistentVolumeClaim:
			if vn := x.Spec.VolumeName; vn != "" {
				pv, ok := has["PersistentVolume/"+vn]
				if !ok {
					t.Errorf("%s binds PersistentVolume %s, not rendered", o, vn)
				} else if cr := pv.typ.(*corev1.PersistentVolume).Spec.ClaimRef; cr == nil || cr.Name != o.name || cr.Namespace != o.ns {
					t.Errorf("%s is not reserved for %s", pv, o)
				}
			}
		case *policyv1.PodDisruptionBudget:
			if x.Spec.MinAvailable != nil {
				t.Errorf("%s uses minAvailable: it can block drains below the autoscaler's minimum", o)
			}
		case *rbacv1.RoleBinding:
			if _, ok := has["Role/"+x.RoleRef.Name]; x.RoleRef.Kind != "Role" || !ok {
				t.Errorf("%s binds %s %s, not a rendered Role", o, x.RoleRef.Kind, x.RoleRef.Name)
			}
			for _, sub := range x.Subjects {
				if _, ok := has["ServiceAccount/"+sub.Name]; sub.Kind != "ServiceAccount" || sub.Namespace != o.ns || !ok {
					t.Errorf("%s binds %s %s/%s, not the service's rendered ServiceAccount", o, sub.Kind, sub.Namespace, sub.Name)
				}
			}
		case *rbacv1.Role:
			// Least privilege: every verb names its objects, but create,
			// which RBAC cannot limit by name.
			for _, r := range x.Rules {
				for _, v := range r.Verbs {
					if v == "*" || v != "create" && len(r.ResourceNames) == 0 {
						t.Errorf("%s grants %s on every %v", o, v, r.Resources)
					}
				}
			}
		}
	}
}

func checkTriggerAuth(t reporter, o object, spec map[string]any, has map[string]object) {
	t.Helper()
	for _, tr := range spec["triggers"].([]any) {
		if ar, ok := tr.(map[string]any)["authenticationRef"].(map[string]any); ok {
			if _, ok := has["TriggerAuthentication/"+ar["name"].(string)]; !ok {
				t.Errorf("%s refers to TriggerAuthentication %s, not rendered", o, ar["name"])
			}
		}
	}
}

func podHasPort(spec *corev1.PodSpec, port int) bool {
	for _, cs := range [][]corev1.Container{spec.Containers, spec.InitContainers} {
		for _, c := range cs {
			for _, p := range c.Ports {
				if int(p.ContainerPort) == port {
					return true
				}
			}
		}
	}
	return false
}

// checkPod checks a pod template against the objects around it and the
// rules kube-apiserver applies to pods that decoding alone does not catch.
func checkPod(t reporter, o object, pod *corev1.PodTemplateSpec, has map[string]object, secretKeys map[string]map[string]bool) {
	t.Helper()
	spec := &pod.Spec
	checkLabels(t, o.String()+" pod", toAny(pod.Labels))
	if sa := spec.ServiceAccountName; sa != "" {
		if _, ok := has["ServiceAccount/"+sa]; !ok {
			t.Errorf("%s runs as ServiceAccount %s, not rendered", o, sa)
		}
	}
	// The API token is mounted exactly in pods bound to a Role: those that
	// call the API (stream checkpoints).
	bound := false
	for _, b := range has {
		if rb, ok := b.typ.(*rbacv1.RoleBinding); ok {
			for _, sub := range rb.Subjects {
				bound = bound || sub.Name == spec.ServiceAccountName
			}
		}
	}
	if mounts := spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken; mounts != bound {
		t.Errorf("%s: mounts its API token: %v, bound to a Role: %v", o, mounts, bound)
	}
	if spec.SecurityContext == nil || spec.SecurityContext.SeccompProfile == nil || spec.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: no RuntimeDefault seccomp profile", o)
	}
	vols := map[string]bool{}
	for _, v := range spec.Volumes {
		if vols[v.Name] {
			t.Errorf("%s: volume %s twice", o, v.Name)
		}
		vols[v.Name] = true
		for _, e := range validation.IsDNS1123Label(v.Name) {
			t.Errorf("%s: volume %s: %s", o, v.Name, e)
		}
		if v.PersistentVolumeClaim != nil {
			if _, ok := has["PersistentVolumeClaim/"+v.PersistentVolumeClaim.ClaimName]; !ok {
				t.Errorf("%s: volume %s claims %s, not rendered", o, v.Name, v.PersistentVolumeClaim.ClaimName)
			}
		}
		if v.ConfigMap != nil {
			if _, ok := has["ConfigMap/"+v.ConfigMap.Name]; !ok {
				t.Errorf("%s: volume %s mounts ConfigMap %s, not rendered", o, v.Name, v.ConfigMap.Name)
			}
		}
		if v.Projected != nil {
			for _, s := range v.Projected.Sources {
				if s.Secret != nil {
					for _, it := range s.Secret.Items {
						checkSecretKey(t, o, s.Secret.Name, it.Key, secretKeys)
					}
				}
			}
		}
	}
	names := map[string]bool{}
	ports := map[string]bool{}
	all := append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...)
	for _, c := range all {
		if names[c.Name] {
			t.Errorf("%s: container %s twice", o, c.Name)
		}
		names[c.Name] = true
		if c.Image == "" {
			t.Errorf("%s: container %s has no image", o, c.Name)
		}
		for _, p := range c.Ports {
			if p.Name == "" {
				continue
			}
			for _, e := range validation.IsValidPortName(p.Name) {
				t.Errorf("%s: container %s port %s: %s", o, c.Name, p.Name, e)
			}
			if ports[p.Name] {
				t.Errorf("%s: port name %s twice in the pod", o, p.Name)
			}
			ports[p.Name] = true
		}
		for _, e := range c.Env {
			for _, msg := range validation.IsEnvVarName(e.Name) {
				t.Errorf("%s: container %s env %s: %s", o, c.Name, e.Name, msg)
			}
			if e.ValueFrom != nil {
				if r := e.ValueFrom.ConfigMapKeyRef; r != nil {
					cm, ok := has["ConfigMap/"+r.Name]
					if !ok {
						t.Errorf("%s: env %s reads ConfigMap %s, not rendered", o, e.Name, r.Name)
					} else if _, ok := cm.typ.(*corev1.ConfigMap).Data[r.Key]; !ok {
						t.Errorf("%s: env %s reads key %s, not in %s", o, e.Name, r.Key, cm)
					}
				}
				if r := e.ValueFrom.SecretKeyRef; r != nil {
					checkSecretKey(t, o, r.Name, r.Key, secretKeys)
				}
			}
		}
		for _, ef := range c.EnvFrom {
			if ef.ConfigMapRef != nil {
				if _, ok := has["ConfigMap/"+ef.ConfigMapRef.Name]; !ok {
					t.Errorf("%s: envFrom ConfigMap %s, not rendered", o, ef.ConfigMapRef.Name)
				}
			}
		}
		for _, m := range c.VolumeMounts {
			if !vols[m.Name] {
				t.Errorf("%s: container %s mounts unknown volume %s", o, c.Name, m.Name)
			}
		}
		for _, p := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe, c.StartupProbe} {
			if p == nil {
				continue
			}
			n := 0
			if p.Exec != nil {
				n++
			}
			if p.HTTPGet != nil {
				n++
			}
			if p.TCPSocket != nil {
				n++
			}
			if p.GRPC != nil {
				n++
			}
			if n != 1 {
				t.Errorf("%s: container %s has a probe with %d handlers", o, c.Name, n)
			}
		}
		if c.LivenessProbe != nil && c.LivenessProbe.SuccessThreshold > 1 || c.StartupProbe != nil && c.StartupProbe.SuccessThreshold > 1 {
			t.Errorf("%s: container %s: liveness and startup probes need successThreshold 1", o, c.Name)
		}
		if sc := c.SecurityContext; sc != nil && sc.Privileged != nil && *sc.Privileged && sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation {
			t.Errorf("%s: container %s is privileged but forbids privilege escalation, which Kubernetes refuses", o, c.Name)
		}
	}
	for _, c := range spec.InitContainers {
		native := c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
		if !native && (c.LivenessProbe != nil || c.ReadinessProbe != nil || c.StartupProbe != nil || c.Lifecycle != nil) {
			t.Errorf("%s: init container %s has probes or a lifecycle, which Kubernetes refuses", o, c.Name)
		}
	}
	switch o.gvk.Kind {
	case "CronJob", "Job", "ScaledJob":
		if spec.RestartPolicy != corev1.RestartPolicyNever && spec.RestartPolicy != corev1.RestartPolicyOnFailure {
			t.Errorf("%s: a job pod needs restartPolicy Never or OnFailure", o)
		}
	}
}

func checkSecretKey(t reporter, o object, name, key string, secretKeys map[string]map[string]bool) {
	t.Helper()
	if strings.HasSuffix(name, "-files") {
		// Created by the user; Findings says so.
		return
	}
	keys, ok := secretKeys[name]
	if !ok {
		t.Errorf("%s reads Secret %s, which no ExternalSecret writes", o, name)
	} else if !keys[key] {
		t.Errorf("%s reads key %s of Secret %s, which its ExternalSecret does not write", o, key, name)
	}
}

func toAny(m map[string]string) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	return out
}
