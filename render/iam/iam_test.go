package iam

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/cutoverhq/cutover/render"
	"github.com/cutoverhq/cutover/render/argocd"
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

type trustDoc struct {
	Statement []struct {
		Sid       string
		Principal map[string]string
		Action    string
		Condition map[string]map[string]any
	}
}

func parse(t *testing.T, b []byte) trustDoc {
	t.Helper()
	var doc trustDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// subs returns the subjects of every statement.
func (d trustDoc) subs() []string {
	var out []string
	for _, st := range d.Statement {
		for k, v := range st.Condition["StringEquals"] {
			if !strings.HasSuffix(k, ":sub") {
				continue
			}
			switch x := v.(type) {
			case string:
				out = append(out, x)
			case []any:
				for _, s := range x {
					out = append(out, s.(string))
				}
			}
		}
	}
	return out
}

// TestProductionRoleTrustsOnlyProduction: the role the input named trusts
// the production namespace's service account alone, and each other
// environment has a role of its own trusting only its own namespace. (The
// policy used to admit every environment's service account to the
// production role.)
func TestProductionRoleTrustsOnlyProduction(t *testing.T) {
	opts := render.Options{Envs: []string{"staging", "prod"}, Team: "payments", OIDCProvider: "https://oidc.eks.eu-west-1.amazonaws.com/id/ABC123"}
	// Two services sharing one role keep one production role naming both.
	roles, err := Roles([]*service.Service{
		svc("api", "arn:aws:iam::123456789012:role/payments", "ecs-tasks.amazonaws.com"),
		svc("worker", "arn:aws:iam::123456789012:role/payments", "lambda.amazonaws.com"),
	}, opts)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range roles {
		names = append(names, r.Name+"@"+strings.Join(r.Envs, ","))
	}
	if strings.Join(names, " ") != "payments@prod api-staging@staging worker-staging@staging" {
		t.Fatalf("roles %v", names)
	}
	prod := roles[0]
	if !prod.Prod || len(prod.Subjects) != 2 || len(prod.FormerPrincipals) != 2 {
		t.Fatalf("production role %+v", prod)
	}
	b, err := TrustPolicy(prod, opts)
	if err != nil {
		t.Fatal(err)
	}
	doc := parse(t, b)
	st := doc.Statement[0]
	if len(doc.Statement) != 1 || st.Action != "sts:AssumeRoleWithWebIdentity" ||
		st.Principal["Federated"] != "arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/ABC123" {
		t.Errorf("statement %+v", doc.Statement)
	}
	if st.Condition["StringEquals"]["oidc.eks.eu-west-1.amazonaws.com/id/ABC123:aud"] != "sts.amazonaws.com" {
		t.Errorf("aud %v", st.Condition)
	}
	if got := strings.Join(doc.subs(), " "); got != "system:serviceaccount:payments-prod:api system:serviceaccount:payments-prod:worker" {
		t.Errorf("the production role trusts %s", got)
	}
	if strings.Contains(string(b), "ecs-tasks") || strings.Contains(string(b), "payments-staging") {
		t.Errorf("the production role trusts more than production: %s", b)
	}

	staging := roles[1]
	if staging.ARN != "" || staging.Prod || strings.Join(staging.Fills, ",") != "api fill.roleArnStaging" {
		t.Errorf("staging role %+v", staging)
	}
	b, err = TrustPolicy(staging, opts)
	if err != nil {
		t.Fatal(err)
	}
	doc = parse(t, b)
	if got := strings.Join(doc.subs(), " "); got != "system:serviceaccount:payments-staging:api" {
		t.Errorf("the staging role of api trusts %s", got)
	}
	// Its account is staging's, not known here: a placeholder naming it.
	if doc.Statement[0].Principal["Federated"] != "arn:aws:iam::<STAGING_ACCOUNT_ID>:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/ABC123" {
		t.Errorf("staging principal %v", doc.Statement[0].Principal)
	}
}

// TestAccountsAndClustersPerEnvironment: --account-id and --oidc-provider
// per environment reach the roles to create; a production role the input
// named keeps its own account (a role trusts providers registered in its
// account), and the README says when that is not the environment's.
func TestAccountsAndClustersPerEnvironment(t *testing.T) {
	opts := render.Options{
		Envs:          []string{"dev", "prod"},
		Clusters:      map[string]string{"dev": "https://dev.example:6443", "prod": "https://prod.example:6443"},
		AccountIDs:    map[string]string{"dev": "210987654321", "prod": "999999999999"},
		OIDCProviders: map[string]string{"dev": "oidc.eks.eu-west-1.amazonaws.com/id/DEV"},
	}
	tree := render.Tree{}
	s := svc("api", "arn:aws-cn:iam::123456789012:role/api-task", "ecs-tasks.amazonaws.com")
	s.ServiceAccount.Name = "api-sa"
	if err := Render([]*service.Service{s}, opts, tree); err != nil {
		t.Fatal(err)
	}
	dev := parse(t, tree["iam/api-dev.trust-policy.json"])
	if p := dev.Statement[0].Principal["Federated"]; p != "arn:aws-cn:iam::210987654321:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/DEV" {
		t.Errorf("dev principal %s", p)
	}
	if got := strings.Join(dev.subs(), " "); got != "system:serviceaccount:platform-dev:api-sa" {
		t.Errorf("dev trusts %s", got)
	}
	prod := parse(t, tree["iam/api-task.trust-policy.json"])
	// prod's cluster differs from dev's and has no provider given: its own
	// placeholder, not dev's provider.
	if p := prod.Statement[0].Principal["Federated"]; p != "arn:aws-cn:iam::123456789012:oidc-provider/"+OIDCPlaceholderFor("prod") {
		t.Errorf("prod principal %s", p)
	}
	readme := string(tree["iam/README.md"])
	for _, want := range []string{
		"api-task is in account 123456789012, not prod's account 999999999999",
		"aws iam create-role --role-name api-dev --assume-role-policy-document file://api-dev.trust-policy.json  # dev",
		"aws iam update-assume-role-policy --role-name api-task",
		"`" + OIDCPlaceholderFor("prod") + "`",
		"| api-dev | dev | api | `platform-dev:api-sa` | new role: create it, then set api fill.roleArnDev |",
	} {
		if !strings.Contains(readme, want) {
			t.Errorf("README lacks %q:\n%s", want, readme)
		}
	}
}

func TestUnknownClusterLeavesPlaceholders(t *testing.T) {
	tree := render.Tree{}
	if err := Render([]*service.Service{svc("api", "", "")}, render.Options{}, tree); err != nil {
		t.Fatal(err)
	}
	for _, env := range []string{"dev", "staging", "prod"} {
		b := string(tree["iam/api-"+env+".trust-policy.json"])
		if !strings.Contains(b, AccountPlaceholderFor(env)) || !strings.Contains(b, OIDCPlaceholder) || !strings.Contains(b, "platform-"+env+":api\"") {
			t.Errorf("%s: %s", env, b)
		}
	}
	readme := string(tree["iam/README.md"])
	if !strings.Contains(readme, "| api-prod | prod | api | `platform-prod:api` | new role: create it, then set api fill.roleArn |") {
		t.Errorf("README does not say the production role is new:\n%s", readme)
	}
}

// TestIdentitiesAreDistinct: whatever the input, no two environments of a
// service share an identity, and each names its own namespace.
func TestIdentitiesAreDistinct(t *testing.T) {
	for _, s := range []*service.Service{
		svc("api", "arn:aws:iam::123456789012:role/api", ""),
		{Name: "api", ServiceAccount: &service.ServiceAccount{RoleValue: "roleArn"}},
		svc("api", "<TASK_ROLE_ARN>", ""),
	} {
		for _, envs := range [][]string{nil, {"qa", "uat"}, {"dev", "prod", "live"}} {
			opts := render.Options{Envs: envs}
			ids := Identities(s, opts)
			seen := map[string]bool{}
			prodSeen := ""
			for _, id := range ids {
				d := id.Display()
				if id.Prod {
					// Production environments share the production role.
					if prodSeen != "" && d != prodSeen {
						t.Errorf("%v: production identities differ: %s, %s", envs, prodSeen, d)
					}
					prodSeen = d
					continue
				}
				if seen[d] || d == prodSeen {
					t.Errorf("%v: %s shared", envs, d)
				}
				seen[d] = true
				if id.Namespace != opts.Defaults().Namespace(id.Env) {
					t.Errorf("%v: %s trusts namespace %s", envs, id.Env, id.Namespace)
				}
			}
			if prodSeen == "" {
				t.Errorf("%v: no production environment", envs)
			}
		}
	}
}

func TestLongNamesFitIAM(t *testing.T) {
	n := EnvRoleName(strings.Repeat("a", 63), "staging-eu-west-1")
	if len(n) > 64 || !strings.HasSuffix(n, "-staging-eu-west-1") {
		t.Errorf("%q (%d)", n, len(n))
	}
}

// TestSuggestedNamesDoNotCollide: a suggested role name another role has
// gets a suffix, so no policy file overwrites another.
func TestSuggestedNamesDoNotCollide(t *testing.T) {
	tree := render.Tree{}
	err := Render([]*service.Service{
		svc("a", "", ""),
		svc("b", "arn:aws:iam::123456789012:role/a-dev", ""),
	}, render.Options{}, tree)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := tree["iam/a-dev-2.trust-policy.json"]; !ok {
		t.Errorf("files %v", tree.Paths())
	}
}

func TestMalformedRoleARNIsAnError(t *testing.T) {
	if _, err := Roles([]*service.Service{svc("api", "arn:aws:iam::1:role/x", "")}, render.Options{}); err == nil {
		t.Fatal("accepted")
	}
}

// TestProdLikeAgreesWithArgoCD: the environments that keep the input's
// roles are those Argo CD syncs by hand.
func TestProdLikeAgreesWithArgoCD(t *testing.T) {
	for _, e := range []string{"prod", "production", "prd", "live", "dev", "staging", "qa", "uat", "preprod", "prod-eu"} {
		if render.ProdLike(e) != argocd.ProdLike(e) {
			t.Errorf("%s: render %v, argocd %v", e, render.ProdLike(e), argocd.ProdLike(e))
		}
	}
}
