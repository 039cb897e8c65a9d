package lint

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"github.com/cutoverhq/cutover/service"
	"io"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// objects is what one service renders to in one environment, decoded into
// the types cutover's own checks read.
type objects struct {
	workloads []workload
	services  []corev1.Service
	hpas      []autoscalingv2.HorizontalPodAutoscaler
	pdbs      []policyv1.PodDisruptionBudget
	// scaled are KEDA ScaledObjects: the HPA KEDA creates at run time
	// is not in the rendered output.
	scaled   []scaledObject
	policies []networkingv1.NetworkPolicy
}

// workload is anything with a pod template.
type workload struct {
	Kind, Name string
	// Replicas is spec.replicas of a Deployment; nil when not set (and
	// always nil for jobs).
	Replicas *int32
	Template corev1.PodTemplateSpec
}

func (w workload) ref() string { return w.Kind + "/" + w.Name }

type scaledObject struct {
	Name       string
	TargetKind string
	TargetName string
	// MinReplicas is minReplicaCount; KEDA's default is 0.
	MinReplicas int32
}

// decodeObjects splits a rendered stream and decodes the kinds the checks
// read; other kinds are skipped.
func decodeObjects(manifests []byte) (*objects, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(manifests)))
	o := &objects{}
	for i := 1; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return o, nil
		}
		if err != nil {
			return nil, fmt.Errorf("rendered document %d: %w", i, err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(doc, &m); err != nil {
			return nil, fmt.Errorf("rendered document %d: %w", i, err)
		}
		if len(m) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		if err := o.add(u); err != nil {
			return nil, fmt.Errorf("rendered %s %s: %w", u.GetKind(), u.GetName(), err)
		}
	}
}

func (o *objects) add(u *unstructured.Unstructured) error {
	conv := runtime.DefaultUnstructuredConverter
	switch u.GroupVersionKind().GroupKind().String() {
	case "Deployment.apps":
		var d appsv1.Deployment
		if err := conv.FromUnstructured(u.Object, &d); err != nil {
			return err
		}
		o.workloads = append(o.workloads, workload{Kind: "Deployment", Name: d.Name, Replicas: d.Spec.Replicas, Template: d.Spec.Template})
	case "StatefulSet.apps":
		var s appsv1.StatefulSet
		if err := conv.FromUnstructured(u.Object, &s); err != nil {
			return err
		}
		o.workloads = append(o.workloads, workload{Kind: "StatefulSet", Name: s.Name, Replicas: s.Spec.Replicas, Template: s.Spec.Template})
	case "Job.batch":
		var j batchv1.Job
		if err := conv.FromUnstructured(u.Object, &j); err != nil {
			return err
		}
		o.workloads = append(o.workloads, workload{Kind: "Job", Name: j.Name, Template: j.Spec.Template})
	case "CronJob.batch":
		var c batchv1.CronJob
		if err := conv.FromUnstructured(u.Object, &c); err != nil {
			return err
		}
		o.workloads = append(o.workloads, workload{Kind: "CronJob", Name: c.Name, Template: c.Spec.JobTemplate.Spec.Template})
	case "ScaledJob.keda.sh":
		var t corev1.PodTemplateSpec
		raw, ok, _ := unstructured.NestedMap(u.Object, "spec", "jobTargetRef", "template")
		if ok {
			if err := conv.FromUnstructured(raw, &t); err != nil {
				return err
			}
		}
		o.workloads = append(o.workloads, workload{Kind: "ScaledJob", Name: u.GetName(), Template: t})
	case "Service":
		var s corev1.Service
		if err := conv.FromUnstructured(u.Object, &s); err != nil {
			return err
		}
		o.services = append(o.services, s)
	case "HorizontalPodAutoscaler.autoscaling":
		var h autoscalingv2.HorizontalPodAutoscaler
		if err := conv.FromUnstructured(u.Object, &h); err != nil {
			return err
		}
		o.hpas = append(o.hpas, h)
	case "PodDisruptionBudget.policy":
		var p policyv1.PodDisruptionBudget
		if err := conv.FromUnstructured(u.Object, &p); err != nil {
			return err
		}
		o.pdbs = append(o.pdbs, p)
	case "NetworkPolicy.networking.k8s.io":
		var p networkingv1.NetworkPolicy
		if err := conv.FromUnstructured(u.Object, &p); err != nil {
			return err
		}
		o.policies = append(o.policies, p)
	case "ScaledObject.keda.sh":
		s := scaledObject{Name: u.GetName(), TargetKind: "Deployment"}
		s.TargetName, _, _ = unstructured.NestedString(u.Object, "spec", "scaleTargetRef", "name")
		if k, ok, _ := unstructured.NestedString(u.Object, "spec", "scaleTargetRef", "kind"); ok && k != "" {
			s.TargetKind = k
		}
		if n, ok, _ := unstructured.NestedFieldNoCopy(u.Object, "spec", "minReplicaCount"); ok {
			switch v := n.(type) {
			case int64:
				s.MinReplicas = int32(v)
			case float64:
				s.MinReplicas = int32(v)
			}
		}
		o.scaled = append(o.scaled, s)
	}
	return nil
}

// Cutover's own checks, by id.
const (
	CheckProbes             = "probes"
	CheckResources          = "resources"
	CheckReplicasAutoscaled = "replicas-with-autoscaler"
	CheckPDBAutoscaler      = "pdb-stricter-than-autoscaler"
	CheckImageLatest        = "image-latest"
	CheckPreStop            = "prestop"
	CheckUnfilled           = "unfilled-value"
	CheckRender             = "render"
	CheckDrift              = "drift"
)

// objFinding is a finding on one rendered object, before lint knows which
// service, environment and file it belongs to.
type objFinding struct {
	Severity Severity
	Check    string
	Object   string
	Message  string
	// Value, or Key under Scope, name the value the finding is about
	// (see findLeaf), so lint can name the file and line that set it.
	Value, Key, Scope string
}

// check runs cutover's own checks on one service's rendered objects.
func (o *objects) check() []objFinding {
	var out []objFinding
	for _, w := range o.workloads {
		out = append(out, o.checkProbes(w)...)
		out = append(out, checkResources(w)...)
		out = append(out, checkImages(w)...)
		out = append(out, o.checkPreStop(w)...)
		out = append(out, o.checkAutoscaled(w)...)
	}
	return out
}

// exposed reports whether a Service selects the workload's pods: such
// pods take traffic, so readiness and draining matter.
func (o *objects) exposed(w workload) bool {
	for _, s := range o.services {
		if len(s.Spec.Selector) == 0 {
			continue
		}
		if labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(w.Template.Labels)) {
			return true
		}
	}
	return false
}

func (o *objects) checkProbes(w workload) []objFinding {
	// A run-to-completion pod has no use for liveness or readiness.
	if w.Kind == "Job" || w.Kind == "CronJob" || w.Kind == "ScaledJob" {
		return nil
	}
	exposed := o.exposed(w)
	var out []objFinding
	for _, c := range w.Template.Spec.Containers {
		if exposed && c.ReadinessProbe == nil {
			out = append(out, objFinding{Severity: Error, Check: CheckProbes, Object: w.ref(),
				Message: fmt.Sprintf("container %s has no readiness probe: a Service sends it traffic before it is ready, and during every rollout", c.Name)})
		}
		if c.LivenessProbe == nil {
			out = append(out, objFinding{Severity: Warning, Check: CheckProbes, Object: w.ref(),
				Message: fmt.Sprintf("container %s has no liveness probe: a hung process is never restarted", c.Name)})
		}
	}
	return out
}

func checkResources(w workload) []objFinding {
	var out []objFinding
	spec := w.Template.Spec
	all := append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...)
	for _, c := range all {
		req := c.Resources.Requests
		_, cpu := req[corev1.ResourceCPU]
		_, mem := req[corev1.ResourceMemory]
		if !cpu && !mem {
			out = append(out, objFinding{Severity: Error, Check: CheckResources, Object: w.ref(),
				Message: fmt.Sprintf("container %s requests no CPU or memory: the scheduler packs it blind and it is the first evicted", c.Name)})
			continue
		}
		if !cpu || !mem {
			missing := "cpu"
			if cpu {
				missing = "memory"
			}
			out = append(out, objFinding{Severity: Warning, Check: CheckResources, Object: w.ref(),
				Message: fmt.Sprintf("container %s has no %s request", c.Name, missing)})
		}
		if _, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok {
			out = append(out, objFinding{Severity: Warning, Check: CheckResources, Object: w.ref(),
				Message: fmt.Sprintf("container %s has no memory limit: a leak takes the node's memory instead of restarting the container", c.Name)})
		}
	}
	return out
}

func checkImages(w workload) []objFinding {
	var out []objFinding
	spec := w.Template.Spec
	for _, c := range append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...) {
		if c.Image != "" && service.UnpinnedImage(c.Image) {
			out = append(out, objFinding{Severity: Error, Check: CheckImageLatest, Object: w.ref(), Value: c.Image,
				Message: fmt.Sprintf("container %s runs image %q, tagged latest or untagged: every restart may run different code; pin a version or digest", c.Name, c.Image)})
		}
	}
	return out
}

func (o *objects) checkPreStop(w workload) []objFinding {
	spec := w.Template.Spec
	if spec.TerminationGracePeriodSeconds == nil || !o.exposed(w) {
		return nil
	}
	var out []objFinding
	for _, c := range spec.Containers {
		if len(c.Ports) == 0 {
			continue
		}
		if c.Lifecycle == nil || c.Lifecycle.PreStop == nil {
			out = append(out, objFinding{Severity: Warning, Check: CheckPreStop, Object: w.ref(),
				Message: fmt.Sprintf("container %s has a %ds grace period but no preStop hook: SIGTERM arrives while load balancers still send it requests, which fail", c.Name, *spec.TerminationGracePeriodSeconds)})
		}
	}
	return out
}

// checkAutoscaled covers what an autoscaler implies: no fixed replica
// count beside it, and no PDB that forbids every eviction at its minimum.
func (o *objects) checkAutoscaled(w workload) []objFinding {
	var out []objFinding
	min := int32(-1) // -1: no autoscaler
	var by string
	for _, h := range o.hpas {
		if h.Spec.ScaleTargetRef.Kind == w.Kind && h.Spec.ScaleTargetRef.Name == w.Name {
			m := int32(1)
			if h.Spec.MinReplicas != nil {
				m = *h.Spec.MinReplicas
			}
			min, by = m, "HorizontalPodAutoscaler/"+h.Name
		}
	}
	for _, s := range o.scaled {
		if s.TargetKind == w.Kind && s.TargetName == w.Name {
			min, by = s.MinReplicas, "ScaledObject/"+s.Name
		}
	}
	if min >= 0 && w.Replicas != nil {
		out = append(out, objFinding{Severity: Error, Check: CheckReplicasAutoscaled, Object: w.ref(), Key: "replicas",
			Message: fmt.Sprintf("spec.replicas is %d while %s scales it: every sync resets the replica count the autoscaler chose", *w.Replicas, by)})
	}
	floor := min
	what := "the minimum of " + by
	if min < 0 {
		if w.Kind != "Deployment" && w.Kind != "StatefulSet" {
			return out
		}
		floor, what = 1, "its replica count"
		if w.Replicas != nil {
			floor = *w.Replicas
		}
	}
	// At zero replicas nothing is evicted; the first pod up is the case
	// that matters.
	if floor < 1 {
		floor = 1
	}
	for _, p := range o.pdbs {
		sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(w.Template.Labels)) {
			continue
		}
		if allowed, ok := disruptionsAllowed(p.Spec, floor); ok && allowed < 1 {
			key := "maxUnavailable"
			if p.Spec.MaxUnavailable == nil {
				key = "minAvailable"
			}
			out = append(out, objFinding{Severity: Error, Check: CheckPDBAutoscaler, Object: "PodDisruptionBudget/" + p.Name, Key: key, Scope: "pdb",
				Message: fmt.Sprintf("%s allows no eviction at %d replicas (%s): node drains and upgrades block; use maxUnavailable 1", describePDB(p.Spec), floor, what)})
		}
	}
	return out
}

// disruptionsAllowed is how many pods of n the PDB lets go at once, as
// the disruption controller computes it (percentages round up).
func disruptionsAllowed(s policyv1.PodDisruptionBudgetSpec, n int32) (int32, bool) {
	switch {
	case s.MaxUnavailable != nil:
		v, err := intstr.GetScaledValueFromIntOrPercent(s.MaxUnavailable, int(n), true)
		if err != nil {
			return 0, false
		}
		return int32(v), true
	case s.MinAvailable != nil:
		v, err := intstr.GetScaledValueFromIntOrPercent(s.MinAvailable, int(n), true)
		if err != nil {
			return 0, false
		}
		return n - int32(v), true
	}
	return 0, false
}

func describePDB(s policyv1.PodDisruptionBudgetSpec) string {
	if s.MaxUnavailable != nil {
		return "maxUnavailable " + s.MaxUnavailable.String()
	}
	if s.MinAvailable != nil {
		return "minAvailable " + s.MinAvailable.String()
	}
	return "the PDB"
}
