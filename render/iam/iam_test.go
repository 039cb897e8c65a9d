package iam

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/cutoverhq/cutover/render"
	"github.com/cutoverhq/cutover/service"
)

func TestParseRoleARN(t *testing.T) {
	p, a, n, err := ParseRoleARN("arn:aws-cn:iam::123456789012:role/service-role/payments-task")
	if err != nil || p != "aws-cn" || a != "123456789012" || n != "payments-task" {
		t.Fatalf("got %q %q %q %v", p, a, n, err)
	}
	for _, bad := range []string{
		"payments-task",
		"arn:aws:iam::12345:role/x",
		"arn:aws:iam::123456789012:user/x",
		"arn:aws:s3:::bucket",
		"arn:aws:iam::123456789012:role/",
	} {
		if _, _, _, err := ParseRoleARN(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func svc(name, arn, principal string) *service.Service {
	return &service.Service{Name: name, ServiceAccount: &service.ServiceAccount{RoleARN: arn, FormerPrincipal: principal}}
}

func TestTrustPolicyForTheClusterAndEveryEnvironment(t *testing.T) {
	opts := render.Options{Envs: []string{"staging", "prod"}, Team: "payments", OIDCProvider: "https://oidc.eks.eu-west-1.amazonaws.com/id/ABC123"}
	// Two services sharing one role get one policy naming both.
	roles, err := Roles([]*service.Service{
		svc("api", "arn:aws:iam::123456789012:role/payments", "ecs-tasks.amazonaws.com"),
		svc("worker", "arn:aws:iam::123456789012:role/payments", "lambda.amazonaws.com"),
	}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(roles) != 1 || len(roles[0].Subjects) != 4 || len(roles[0].FormerPrincipals) != 2 {
		t.Fatalf("roles %+v", roles[0])
	}
	b, err := TrustPolicy(roles[0], opts)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Statement []struct {
			Principal map[string]string
			Action    string
			Condition map[string]map[string]any
		}
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	st := doc.Statement[0]
	if st.Action != "sts:AssumeRoleWithWebIdentity" ||
		st.Principal["Federated"] != "arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/ABC123" {
		t.Errorf("statement %+v", st)
	}
	eq := st.Condition["StringEquals"]
	if eq["oidc.eks.eu-west-1.amazonaws.com/id/ABC123:aud"] != "sts.amazonaws.com" {
		t.Errorf("aud %v", eq)
	}
	subs, _ := eq["oidc.eks.eu-west-1.amazonaws.com/id/ABC123:sub"].([]any)
	if len(subs) != 4 || subs[0] != "system:serviceaccount:payments-prod:api" {
		t.Errorf("sub %v", subs)
	}
	if strings.Contains(string(b), "ecs-tasks") {
		t.Errorf("the old principal is still trusted: %s", b)
	}
}

func TestUnknownClusterLeavesPlaceholders(t *testing.T) {
	tree := render.Tree{}
	if err := Render([]*service.Service{svc("api", "", "")}, render.Options{}, tree); err != nil {
		t.Fatal(err)
	}
	b := string(tree["iam/api-role.trust-policy.json"])
	if !strings.Contains(b, AccountPlaceholder) || !strings.Contains(b, OIDCPlaceholder) {
		t.Errorf("placeholders missing: %s", b)
	}
	if !strings.Contains(string(tree["iam/README.md"]), "new role: create it") {
		t.Errorf("README does not say the role is new")
	}
}

func TestMalformedRoleARNIsAnError(t *testing.T) {
	if _, err := Roles([]*service.Service{svc("api", "arn:aws:iam::1:role/x", "")}, render.Options{}); err == nil {
		t.Fatal("accepted")
	}
}
