package helm

import (
	"context"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/cutoverhq/cutover/render"
)

// streamTree renders the stream-only case with every role filled.
func streamTree(t *testing.T) render.Tree {
	t.Helper()
	_, _, tree := renderCase(t, "testdata/worker-stream-only")
	p := ServiceValuesFile("fraud-score-stream")
	tree[p] = fillValues(t, tree[p], loadFills(t, "testdata/worker-stream-only")["fraud-score-stream"])
	return tree
}

// TestStreamConsumerReachesTheAPIServerThroughRestrictedEgress: a pod
// that keeps its checkpoints in the API gets an egress rule to the API
// server where networkPolicy.egress restricts egress, and none is added
// (egress stays open) where it does not.
func TestStreamConsumerReachesTheAPIServerThroughRestrictedEgress(t *testing.T) {
	policy := func(tree render.Tree) *networkingv1.NetworkPolicy {
		t.Helper()
		out, err := TemplateTree(context.Background(), tree, "fraud-score-stream", "prod")
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range decodeManifests(t, loadCRDs(t), out) {
			if np, ok := o.typ.(*networkingv1.NetworkPolicy); ok {
				return np
			}
		}
		t.Fatalf("no NetworkPolicy:\n%s", out)
		return nil
	}
	tree := streamTree(t)
	if np := policy(tree); len(np.Spec.Egress) > 0 || len(np.Spec.PolicyTypes) != 1 {
		t.Errorf("egress open by default, want no egress rule: %+v", np.Spec)
	}
	p := ServiceValuesFile("fraud-score-stream")
	replaceIn(t, tree, p, "\ncheckpoints:", "\nnetworkPolicy:\n  egress:\n    - to: [{ipBlock: {cidr: 10.0.0.0/8}}]\n      ports: [{port: 443, protocol: TCP}]\ncheckpoints:")
	np := policy(tree)
	if len(np.Spec.Egress) != 2 || np.Spec.Egress[1].To != nil {
		t.Fatalf("want the user's rule and one to the API server from anywhere: %+v", np.Spec.Egress)
	}
	var ports []string
	for _, port := range np.Spec.Egress[1].Ports {
		ports = append(ports, port.Port.String())
	}
	if strings.Join(ports, ",") != "443,6443" {
		t.Errorf("API server ports %v, want 443,6443", ports)
	}
	replaceIn(t, tree, p, "\ncheckpoints:", "\n  apiServer: {ports: [443], cidrs: [172.20.0.0/16]}\ncheckpoints:")
	np = policy(tree)
	if r := np.Spec.Egress[1]; len(r.To) != 1 || r.To[0].IPBlock == nil || r.To[0].IPBlock.CIDR != "172.20.0.0/16" || len(r.Ports) != 1 {
		t.Errorf("want the API server rule limited to apiServer.cidrs and ports: %+v", r)
	}
}

// TestOnlyStreamConsumersMountTheAPIToken pins that checkpoints alone
// mount the token: the same service without them keeps it unmounted and
// gets no Role.
func TestOnlyStreamConsumersMountTheAPIToken(t *testing.T) {
	for _, checkpoints := range []bool{true, false} {
		svcs := loadServices(t, "testdata/worker-stream-only/services.json")
		if !checkpoints {
			svcs[0].Checkpoints = nil
		}
		tree := render.Tree{}
		// dev: production's replicaBounds would raise one replica to two.
		if err := Render(svcs, render.Options{Region: "eu-west-1", Envs: []string{"dev", "prod"}}, tree); err != nil {
			t.Fatal(err)
		}
		p := ServiceValuesFile(svcs[0].Name)
		tree[p] = fillValues(t, tree[p], map[string]string{"roleArnDev": "arn:aws:iam::210987654321:role/fraud-score-stream-dev"})
		out, err := TemplateTree(context.Background(), tree, svcs[0].Name, "dev")
		if err != nil {
			t.Fatal(err)
		}
		var dep *appsv1.Deployment
		roles := 0
		for _, o := range decodeManifests(t, loadCRDs(t), out) {
			switch o.gvk.Kind {
			case "Deployment":
				dep = o.typ.(*appsv1.Deployment)
			case "Role", "RoleBinding":
				roles++
			case "ScaledObject", "HorizontalPodAutoscaler":
				t.Errorf("checkpoints %v: a stream-only worker is autoscaled by a %s", checkpoints, o.gvk.Kind)
			}
		}
		mounts := dep.Spec.Template.Spec.AutomountServiceAccountToken
		env := dep.Spec.Template.Spec.Containers[0].Env
		hasNS := len(env) > 0 && env[len(env)-1].Name == "POD_NAMESPACE" && env[len(env)-1].ValueFrom.FieldRef.FieldPath == "metadata.namespace"
		switch {
		case checkpoints && (mounts == nil || !*mounts || roles != 2 || !hasNS):
			t.Errorf("with checkpoints: token %v, %d Role objects, POD_NAMESPACE %v; want the token, a Role and its binding, the namespace", mounts, roles, hasNS)
		case !checkpoints && (mounts == nil || *mounts || roles != 0 || hasNS):
			t.Errorf("without checkpoints: token %v, %d Role objects, POD_NAMESPACE %v; want none", mounts, roles, hasNS)
		}
		want := int32(2)
		if !checkpoints {
			// Every replica would consume every shard.
			want = 1
		}
		if r := dep.Spec.Replicas; r == nil || *r != want {
			t.Errorf("checkpoints %v: replicas %v, want %d", checkpoints, r, want)
		}
	}
}
