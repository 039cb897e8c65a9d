package lint

import (
	"strings"
	"testing"
	"time"
)

// good is a server as a reviewer wants it: probes, resources, pinned
// image, preStop with its grace period, an HPA without spec.replicas and a
// PDB that lets one pod go.
const good = `---
# Source: cutover/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: payments
spec:
  selector:
    matchLabels: {app.kubernetes.io/name: payments}
  template:
    metadata:
      labels: {app.kubernetes.io/name: payments}
    spec:
      terminationGracePeriodSeconds: 45
      containers:
      - name: app
        image: registry.example/payments:1.4.2
        ports: [{name: http, containerPort: 8080}]
        readinessProbe: {httpGet: {path: /ready, port: http}}
        livenessProbe: {httpGet: {path: /health, port: http}}
        lifecycle: {preStop: {sleep: {seconds: 10}}}
        resources:
          requests: {cpu: 250m, memory: 512Mi}
          limits: {memory: 512Mi}
---
apiVersion: v1
kind: Service
metadata:
  name: payments
spec:
  selector: {app.kubernetes.io/name: payments}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: payments
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: payments}
  minReplicas: 2
  maxReplicas: 10
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: payments
spec:
  maxUnavailable: 1
  selector:
    matchLabels: {app.kubernetes.io/name: payments}
`

const worker = `
apiVersion: apps/v1
kind: Deployment
metadata:
  name: orders-worker
spec:
  selector:
    matchLabels: {app: orders-worker}
  template:
    metadata:
      labels: {app: orders-worker}
    spec:
      containers:
      - name: app
        image: registry.example/orders:2.0
        livenessProbe: {exec: {command: [/bin/true]}}
        resources:
          requests: {cpu: 100m, memory: 128Mi}
          limits: {memory: 128Mi}
---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: orders-worker
spec:
  scaleTargetRef: {name: orders-worker}
  minReplicaCount: 1
  maxReplicaCount: 20
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: orders-worker
spec:
  maxUnavailable: 1
  selector:
    matchLabels: {app: orders-worker}
`

func TestOwnChecks(t *testing.T) {
	for _, tc := range []struct {
		name     string
		base     string
		old, new string
		// want is "severity check object: message fragment"; "" means no
		// finding at all.
		want string
	}{
		{name: "good server is clean", base: good},
		{name: "good worker is clean", base: worker},
		{
			name: "no readiness probe behind a Service",
			base: good, old: "        readinessProbe: {httpGet: {path: /ready, port: http}}\n",
			want: "error probes Deployment/payments: container app has no readiness probe",
		},
		{
			name: "no liveness probe",
			base: good, old: "        livenessProbe: {httpGet: {path: /health, port: http}}\n",
			want: "warning probes Deployment/payments: container app has no liveness probe",
		},
		{
			name: "no resources",
			base: good, old: "          requests: {cpu: 250m, memory: 512Mi}\n          limits: {memory: 512Mi}\n", new: "          {}\n",
			want: "error resources Deployment/payments: container app requests no CPU or memory",
		},
		{
			name: "replicas beside an HPA",
			base: good, old: "spec:\n  selector:\n    matchLabels: {app.kubernetes.io/name: payments}\n  template:", new: "spec:\n  replicas: 3\n  selector:\n    matchLabels: {app.kubernetes.io/name: payments}\n  template:",
			want: "error replicas-with-autoscaler Deployment/payments: spec.replicas is 3 while HorizontalPodAutoscaler/payments scales it",
		},
		{
			name: "replicas beside a KEDA ScaledObject",
			base: worker, old: "spec:\n  selector:\n    matchLabels: {app: orders-worker}", new: "spec:\n  replicas: 1\n  selector:\n    matchLabels: {app: orders-worker}",
			want: "error replicas-with-autoscaler Deployment/orders-worker: spec.replicas is 1 while ScaledObject/orders-worker scales it",
		},
		{
			name: "PDB minAvailable equal to the HPA minimum",
			base: good, old: "  maxUnavailable: 1\n", new: "  minAvailable: 2\n",
			want: "error pdb-stricter-than-autoscaler PodDisruptionBudget/payments: minAvailable 2 allows no eviction at 2 replicas (the minimum of HorizontalPodAutoscaler/payments)",
		},
		{
			name: "PDB 100% available",
			base: good, old: "  maxUnavailable: 1\n", new: "  minAvailable: 100%\n",
			want: "error pdb-stricter-than-autoscaler PodDisruptionBudget/payments: minAvailable 100% allows no eviction",
		},
		{
			name: "PDB maxUnavailable 0",
			base: worker, old: "  maxUnavailable: 1\n", new: "  maxUnavailable: 0\n",
			want: "error pdb-stricter-than-autoscaler PodDisruptionBudget/orders-worker: maxUnavailable 0 allows no eviction at 1 replicas (the minimum of ScaledObject/orders-worker)",
		},
		{
			name: "image latest",
			base: good, old: "payments:1.4.2", new: "payments:latest",
			want: `error image-latest Deployment/payments: container app runs image "registry.example/payments:latest"`,
		},
		{
			name: "image untagged",
			base: good, old: "payments:1.4.2", new: "payments",
			want: `error image-latest Deployment/payments: container app runs image "registry.example/payments"`,
		},
		{
			name: "image pinned by digest",
			base: good, old: "payments:1.4.2", new: "payments@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		},
		{
			name: "grace period without preStop",
			base: good, old: "        lifecycle: {preStop: {sleep: {seconds: 10}}}\n",
			want: "warning prestop Deployment/payments: container app has a 45s grace period but no preStop hook",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.base
			if tc.old != "" {
				if !strings.Contains(in, tc.old) {
					t.Fatalf("test bug: %q not in the manifest", tc.old)
				}
				in = strings.Replace(in, tc.old, tc.new, 1)
			}
			objs, err := decodeObjects([]byte(in))
			if err != nil {
				t.Fatal(err)
			}
			got := objs.check()
			var lines []string
			for _, f := range got {
				lines = append(lines, f.Severity.String()+" "+f.Check+" "+f.Object+": "+f.Message)
			}
			if tc.want == "" {
				if len(lines) > 0 {
					t.Fatalf("want no findings, got:\n%s", strings.Join(lines, "\n"))
				}
				return
			}
			if len(lines) != 1 || !strings.HasPrefix(lines[0], tc.want) {
				t.Fatalf("want exactly one finding starting %q, got:\n%s", tc.want, strings.Join(lines, "\n"))
			}
		})
	}
}

func TestKubeScore(t *testing.T) {
	got, err := KubeScore([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	checks := map[string]string{}
	for _, f := range got {
		checks[f.Check] = f.Grade
		if f.Object == "" || f.Message == "" {
			t.Errorf("finding without object or message: %+v", f)
		}
	}
	// The hand-written server has no NetworkPolicy and no security
	// context: kube-score must say so.
	for id, grade := range map[string]string{
		"pod-networkpolicy":                        "CRITICAL",
		"container-security-context-user-group-id": "CRITICAL",
		"deployment-has-host-podantiaffinity":      "WARNING",
	} {
		if checks[id] != grade {
			t.Errorf("kube-score %s = %q, want %s (all: %v)", id, checks[id], grade, checks)
		}
	}
	// Its image is pinned and it has probes.
	for _, id := range []string{"container-image-tag", "pod-probes"} {
		if g, ok := checks[id]; ok {
			t.Errorf("kube-score reported %s %s on a pinned, probed server", g, id)
		}
	}
}

// An ignore annotation must not silence a check: lint disables them.
func TestKubeScoreIgnoresIgnoreAnnotations(t *testing.T) {
	in := strings.Replace(good, "  name: payments\nspec:\n  selector:", "  name: payments\n  annotations: {kube-score/ignore: pod-networkpolicy}\nspec:\n  selector:", 1)
	in = strings.Replace(in, "    metadata:\n      labels: {app.kubernetes.io/name: payments}\n", "    metadata:\n      labels: {app.kubernetes.io/name: payments}\n      annotations: {kube-score/ignore: pod-networkpolicy}\n", 1)
	if in == good {
		t.Fatal("test bug: annotation not added")
	}
	got, err := KubeScore([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range got {
		if f.Check == "pod-networkpolicy" {
			return
		}
	}
	t.Fatalf("kube-score/ignore silenced pod-networkpolicy: %v", got)
}

// FuzzCheckRendered feeds arbitrary rendered output (a user may edit the
// chart) through decoding, cutover's checks and kube-score: a finding or
// an error, never a panic.
func FuzzCheckRendered(f *testing.F) {
	f.Add(good)
	f.Add(worker)
	f.Add("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replicas: 2}\n")
	f.Add("apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: x}\nspec: {minAvailable: 150%, selector: {matchExpressions: [{key: a, operator: Bogus}]}}\n")
	f.Add("apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: x}\nspec: {minReplicaCount: -3, scaleTargetRef: {}}\n")
	f.Add("---\n---\nkind: List\napiVersion: v1\nitems: [{}]\n")
	f.Fuzz(func(t *testing.T, manifests string) {
		done := make(chan []Finding, 1)
		go func() {
			done <- checkRendered("svc", "dev", []byte(manifests), map[string]leaf{}, map[string]valuesFile{})
		}()
		select {
		case fs := <-done:
			for _, fd := range fs {
				if fd.Service != "svc" || fd.Env != "dev" || fd.Check == "" {
					t.Fatalf("malformed finding %+v", fd)
				}
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("checkRendered hangs")
		}
	})
}

// TestKubeScorePolicyForAScaledJobTargetsItsPods: kube-score cannot see
// the pods a KEDA ScaledJob creates; a policy selecting them is not a
// policy that selects nothing, and one that selects nothing still is.
func TestKubeScorePolicyForAScaledJobTargetsItsPods(t *testing.T) {
	const job = `apiVersion: keda.sh/v1alpha1
kind: ScaledJob
metadata: {name: invoices}
spec:
  jobTargetRef:
    template:
      metadata:
        labels: {app.kubernetes.io/name: invoices, app.kubernetes.io/instance: invoices}
`
	policy := func(name, app string) string {
		return `---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: ` + name + `}
spec:
  podSelector:
    matchLabels: {app.kubernetes.io/name: ` + app + `}
  policyTypes: [Ingress, Egress]
`
	}
	got, err := KubeScore([]byte(job + policy("invoices", "invoices") + policy("stray", "nothing-has-this")))
	if err != nil {
		t.Fatal(err)
	}
	var targets []string
	for _, f := range got {
		if f.Check == "networkpolicy-targets-pod" {
			targets = append(targets, f.Object)
		}
	}
	if strings.Join(targets, ",") != "NetworkPolicy/stray" {
		t.Fatalf("networkpolicy-targets-pod findings on %v, want only NetworkPolicy/stray", targets)
	}
}
