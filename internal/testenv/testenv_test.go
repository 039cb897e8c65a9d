package testenv

import (
	"context"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func TestMain(m *testing.M) { Main(m) }

// manifests is what a converted service renders to, written by hand: the
// built-in kinds plus one object of each CRD family cutover emits.
const manifests = `
apiVersion: v1
kind: ServiceAccount
metadata:
  name: payments
  annotations:
    eks.amazonaws.com/role-arn: arn:aws:iam::123456789012:role/payments
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: payments
data:
  LOG_LEVEL: info
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: payments
  labels: {app.kubernetes.io/name: payments}
spec:
  selector:
    matchLabels: {app.kubernetes.io/name: payments}
  template:
    metadata:
      labels: {app.kubernetes.io/name: payments}
    spec:
      serviceAccountName: payments
      terminationGracePeriodSeconds: 45
      containers:
      - name: app
        image: registry.example/payments:1.0
        ports: [{name: http, containerPort: 8080}]
        envFrom: [{configMapRef: {name: payments}}]
        readinessProbe: {httpGet: {path: /health, port: http}}
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
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 70}}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: payments
spec:
  maxUnavailable: 1
  selector:
    matchLabels: {app.kubernetes.io/name: payments}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: payments
spec:
  parentRefs: [{name: public, namespace: gateway}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /pay}}]
    backendRefs: [{name: payments, port: 80}]
---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: payments-worker
spec:
  scaleTargetRef: {name: payments}
  minReplicaCount: 1
  maxReplicaCount: 20
  triggers:
  - type: aws-sqs-queue
    metadata:
      queueURL: https://sqs.eu-west-1.amazonaws.com/123456789012/payments
      queueLength: "5"
      awsRegion: eu-west-1
      identityOwner: operator
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: payments
spec:
  secretStoreRef: {kind: ClusterSecretStore, name: aws-secrets-manager}
  target: {name: payments}
  data:
  - secretKey: DB_PASSWORD
    remoteRef: {key: prod/payments/db, property: password}
---
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: payments-dev
spec:
  project: default
  source:
    repoURL: https://git.example/platform/migration.git
    targetRevision: HEAD
    path: chart
  destination: {server: https://kubernetes.default.svc, namespace: payments-dev}
`

func TestApplyDryRunAcceptsEveryKind(t *testing.T) {
	e := Start(t)
	ctx := context.Background()
	ns := e.Namespace(t, "testenv-accepts")
	if err := e.ApplyDryRun(ctx, ns, []byte(manifests)); err != nil {
		t.Fatalf("dry-run apply rejected valid manifests:\n%v", err)
	}
	// Dry-run must store nothing.
	var d appsv1.Deployment
	err := e.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "payments"}, &d)
	if !apierrors.IsNotFound(err) {
		t.Fatalf("dry-run stored the Deployment (get: %v)", err)
	}
}

func TestApplyStores(t *testing.T) {
	e := Start(t)
	ctx := context.Background()
	ns := e.Namespace(t, "testenv-stores")
	if err := e.Apply(ctx, ns, []byte(manifests)); err != nil {
		t.Fatalf("apply: %v", err)
	}
	var d appsv1.Deployment
	if err := e.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "payments"}, &d); err != nil {
		t.Fatalf("applied Deployment not found: %v", err)
	}
	if got := d.ManagedFields; len(got) == 0 || got[0].Manager != FieldManager {
		t.Errorf("managed fields = %+v, want manager %q", got, FieldManager)
	}
}

func TestApplyDryRunRejects(t *testing.T) {
	e := Start(t)
	ctx := context.Background()
	ns := e.Namespace(t, "testenv-rejects")
	for _, tc := range []struct {
		name, manifest, want string
	}{
		{
			// An unknown field is an error, not silently pruned.
			name: "unknown field in a built-in kind",
			manifest: `apiVersion: v1
kind: ConfigMap
metadata: {name: x}
data: {a: b}
dataa: {a: b}`,
			want: `.dataa: field not declared in schema`,
		},
		{
			name: "unknown field in a CRD kind",
			manifest: `apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: x}
spec:
  scaleTargetRef: {name: x}
  triggerz: []
  triggers: [{type: cpu, metricType: Utilization, metadata: {value: "50"}}]`,
			want: `.spec.triggerz: field not declared in schema`,
		},
		{
			name: "CRD schema violation",
			manifest: `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: x}
spec:
  rules:
  - matches: [{path: {type: Prefix, value: /}}]`,
			want: `spec.rules[0].matches[0].path.type`,
		},
		{
			name: "built-in validation",
			manifest: `apiVersion: apps/v1
kind: Deployment
metadata: {name: x}
spec:
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: c}}
    spec: {containers: [{name: x, image: x}]}`,
			want: "`selector` does not match template `labels`",
		},
		{
			name:     "kind not served",
			manifest: "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: x}\n",
			want:     "Widget x: example.com/v1, Kind=Widget is not served",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := e.ApplyDryRun(ctx, ns, []byte(tc.manifest))
			if err == nil {
				t.Fatal("dry-run apply accepted an invalid manifest")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestCRDsEstablished(t *testing.T) {
	e := Start(t)
	want := []string{
		"httproutes.gateway.networking.k8s.io",
		"scaledobjects.keda.sh",
		"scaledjobs.keda.sh",
		"externalsecrets.external-secrets.io",
		"clustersecretstores.external-secrets.io",
		"applications.argoproj.io",
		"applicationsets.argoproj.io",
	}
	have := map[string]bool{}
	for _, n := range e.CRDs {
		have[n] = true
	}
	for _, n := range want {
		if !have[n] {
			t.Errorf("CRD %s not installed (have %v)", n, e.CRDs)
		}
	}
}

func TestStartSharesOneAPIServer(t *testing.T) {
	a, b := Start(t), Start(t)
	if a != b {
		t.Fatal("Start under Main started a second apiserver")
	}
}

func TestDecode(t *testing.T) {
	objs, err := Decode([]byte("---\n# Source: chart/templates/x.yaml\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: b}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 2 || objs[0].GetKind() != "ConfigMap" || objs[1].GetName() != "b" {
		t.Fatalf("decoded %d objects: %v", len(objs), objs)
	}
	if _, err := Decode([]byte("metadata: {name: a}\n")); err == nil || !strings.Contains(err.Error(), "document 1: no apiVersion or kind") {
		t.Errorf("document without kind: err = %v", err)
	}
}

func TestRequired(t *testing.T) {
	for _, tc := range []struct {
		ci, require string
		want        bool
	}{
		{"", "", false},
		{"true", "", true},
		{"false", "", false},
		{"", "1", true},
		{"", "0", false},
	} {
		t.Setenv("CI", tc.ci)
		t.Setenv(EnvRequire, tc.require)
		if got := Required(); got != tc.want {
			t.Errorf("CI=%q %s=%q: Required() = %v, want %v", tc.ci, EnvRequire, tc.require, got, tc.want)
		}
	}
}
