// Package iam writes the IAM trust policies that let each service's
// Kubernetes ServiceAccount assume an IAM role through IRSA, one role per
// service and environment:
//
//   - in the production environments (render.Options.ProdEnvs) the service
//     keeps the role its ECS task or Lambda function used: its trust policy,
//     which named ecs-tasks.amazonaws.com or lambda.amazonaws.com, is
//     rewritten to sts:AssumeRoleWithWebIdentity for the cluster's OIDC
//     provider, limited to the service account in the production namespace;
//   - every other environment gets a role of its own, <service>-<env>, to
//     create in that environment's account, trusting only the service
//     account in that environment's namespace. Its ARN is a value the user
//     fills (fill.roleArn<Env>), and the chart refuses to render that
//     environment until it is filled.
//
// So no environment can act with production's identity, and the audit
// trail's evidence of environment segregation holds.
//
// cutover never calls AWS: the policies are files, ready for Terraform
// (aws_iam_role.assume_role_policy) or `aws iam update-assume-role-policy`.
package iam

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/cutoverhq/cutover/render"
	"github.com/cutoverhq/cutover/service"
)

// Placeholders written when the cluster is not known; iam/README.md says
// how to fill them.
const (
	// AccountPlaceholder stands for the account of a role whose
	// environment has no account (render.Options.Account); per
	// environment it is AccountPlaceholderFor(env).
	AccountPlaceholder = "<ACCOUNT_ID>"
	// OIDCPlaceholder stands for the OIDC provider of the cluster, when
	// every environment runs on one; OIDCPlaceholderFor(env) when their
	// clusters differ.
	OIDCPlaceholder = "oidc.eks.<REGION>.amazonaws.com/id/<OIDC_ID>"
)

// AccountPlaceholderFor is the placeholder of an environment's account:
// <DEV_ACCOUNT_ID> for dev.
func AccountPlaceholderFor(env string) string { return "<" + envWord(env) + "_ACCOUNT_ID>" }

// OIDCPlaceholderFor is the placeholder of the OIDC provider of an
// environment's own cluster.
func OIDCPlaceholderFor(env string) string {
	return "oidc.eks.<REGION>.amazonaws.com/id/<" + envWord(env) + "_OIDC_ID>"
}

func envWord(env string) string { return strings.ToUpper(strings.ReplaceAll(env, "-", "_")) }

// RoleFill is the value that holds a production role the input did not
// name (render/helm adds it); EnvRoleFill(env) holds the role of another
// environment.
const RoleFill = "roleArn"

// EnvRoleFill names the value that holds a service's IAM role in a
// non-production environment: roleArn<Env> (roleArnStaging).
func EnvRoleFill(env string) string { return service.FillKey(RoleFill, env) }

// EnvRoleName is the name suggested for a role cutover asks the user to
// create: <service>-<env>, cut to IAM's 64 characters.
func EnvRoleName(svc, env string) string {
	const max = 64
	if len(svc)+1+len(env) > max {
		keep := max - 1 - len(env)
		if keep < 1 {
			keep = 1
		}
		if keep < len(svc) {
			svc = strings.TrimRight(svc[:keep], "-")
		}
	}
	return svc + "-" + env
}

// Identity is the IAM role one service assumes in one environment.
type Identity struct {
	Env string
	// Prod is true in the production environments, where the service
	// keeps the role the input named.
	Prod bool
	// ARN is the role's ARN when the input named it (production only);
	// "" when the role is a value to fill.
	ARN string
	// Fill names the value (fill.<Fill> in the service's values file) that
	// holds the ARN; "" when ARN is set.
	Fill string
	// Name is the role's name: the ARN's last path element, or the name
	// suggested for a role to create.
	Name string
	// Namespace and ServiceAccount are the one subject the role trusts in
	// this environment.
	Namespace      string
	ServiceAccount string
}

// Display names the identity for people: the ARN, or the role to create
// and the value that will hold its ARN. Distinct environments always
// display differently.
func (id Identity) Display() string {
	if id.ARN != "" {
		return id.ARN
	}
	return fmt.Sprintf("role %s to create (fill.%s)", id.Name, id.Fill)
}

// ServiceAccountName is the Kubernetes ServiceAccount a service's pods
// run as: the one the input named, when it is a valid name, else the
// service's. Trust policies name it, and the chart creates it.
func ServiceAccountName(svc *service.Service) string {
	if sa := svc.ServiceAccount; sa != nil && sa.Name != "" && service.ValidateName(sa.Name) == nil {
		return sa.Name
	}
	return svc.Name
}

// Identities returns the role of svc in every environment of opts, in
// promotion order: in production the input's role (or the value that will
// hold it), elsewhere a role of that environment's own. Nil when the
// service has no AWS identity (no ServiceAccount).
func Identities(svc *service.Service, opts render.Options) []Identity {
	sa := svc.ServiceAccount
	if sa == nil {
		return nil
	}
	opts = opts.Defaults()
	prodEnvs := opts.ProdEnvs()
	saName := ServiceAccountName(svc)
	prod := Identity{Prod: true, Name: EnvRoleName(svc.Name, prodEnvs[0])}
	switch {
	case sa.RoleARN != "" && !render.IsPlaceholder(sa.RoleARN):
		prod.ARN = sa.RoleARN
		if _, _, n, err := ParseRoleARN(sa.RoleARN); err == nil {
			prod.Name = n
		}
	case sa.RoleValue != "":
		prod.Fill = sa.RoleValue
	default:
		prod.Fill = RoleFill
	}
	var out []Identity
	for _, env := range opts.Envs {
		id := Identity{Env: env, Fill: EnvRoleFill(env), Name: EnvRoleName(svc.Name, env)}
		if opts.IsProd(env) {
			id = prod
			id.Env = env
		}
		id.Namespace, id.ServiceAccount = opts.Namespace(env), saName
		out = append(out, id)
	}
	return out
}

// Role is one IAM role and the service accounts that will assume it.
type Role struct {
	// ARN as the input gave it; "" for a role to create.
	ARN string
	// Name is the role name (the last path element of the ARN), or the
	// suggested name of a role to create (<service>-<env>).
	Name string
	// Partition and Account come from the ARN, or for a role to create
	// from the options (its environment's account); "" when unknown.
	Partition string
	Account   string
	// Prod is true for a role of the production environments.
	Prod bool
	// Envs are the environments whose service accounts the role trusts,
	// in promotion order: one, or the production environments.
	Envs []string
	// Subjects are the service accounts the role trusts, sorted by
	// environment (in Envs order) and subject.
	Subjects []Subject
	// Services are the services using the role, sorted.
	Services []string
	// Fills name, for a role to create, the values that will hold its ARN:
	// "<service> fill.<name>", sorted.
	Fills []string
	// FormerPrincipals are the AWS services that assumed the role before.
	FormerPrincipals []string

	file string // the base name of its trust policy file
}

// Subject is one service account a role trusts.
type Subject struct {
	Env string
	// Sub is "system:serviceaccount:<namespace>:<service account>".
	Sub string
}

// ParseRoleARN splits arn:<partition>:iam::<account>:role/<path/><name>.
func ParseRoleARN(arn string) (partition, account, name string, err error) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "iam" || !strings.HasPrefix(parts[5], "role/") {
		return "", "", "", fmt.Errorf("not an IAM role ARN: %q", arn)
	}
	if len(parts[4]) != 12 || strings.Trim(parts[4], "0123456789") != "" {
		return "", "", "", fmt.Errorf("IAM role ARN %q: account %q is not 12 digits", arn, parts[4])
	}
	path := strings.TrimPrefix(parts[5], "role/")
	name = path[strings.LastIndex(path, "/")+1:]
	if name == "" {
		return "", "", "", fmt.Errorf("IAM role ARN %q has no role name", arn)
	}
	return parts[1], parts[4], name, nil
}

// Roles collects the roles of the services in every environment, one
// entry per distinct role: a production role the input named is shared
// by the services that shared it, every role to create belongs to one
// service and environment (or to the production environments). Roles
// are sorted production first, then by name.
func Roles(svcs []*service.Service, opts render.Options) ([]*Role, error) {
	opts = opts.Defaults()
	byKey := map[string]*Role{}
	names := map[string]bool{} // role names taken, so that files do not collide
	type use struct {
		svc *service.Service
		id  Identity
	}
	// The input's roles first: their names are given, the suggested
	// names of roles to create give way to them.
	var named, toCreate []use
	for _, s := range svcs {
		ids := Identities(s, opts)
		for _, id := range ids {
			if id.ARN != "" {
				named = append(named, use{s, id})
			} else {
				toCreate = append(toCreate, use{s, id})
			}
		}
	}
	partition := map[string]string{} // service → partition of its input role
	for _, u := range append(named, toCreate...) {
		s, id := u.svc, u.id
		var key string
		var r *Role
		if id.ARN != "" {
			p, a, n, err := ParseRoleARN(id.ARN)
			if err != nil {
				return nil, fmt.Errorf("service %s: %w", s.Name, err)
			}
			// Roles to create go in the partition of the input's role
			// (aws-cn, aws-us-gov).
			partition[s.Name] = p
			key = "arn/" + p + "/" + a + "/" + n
			r = &Role{ARN: id.ARN, Name: n, Partition: p, Account: a, Prod: true}
		} else {
			key = "new/" + s.Name + "/" + id.Fill
			r = &Role{Name: id.Name, Partition: partition[s.Name], Account: opts.Account(id.Env), Prod: id.Prod}
		}
		if prev, ok := byKey[key]; ok {
			r = prev
		} else {
			r.file = r.Name
			for i := 2; names[r.file]; i++ {
				// Two input roles of one name in two accounts, or a
				// suggested name another role has: the user may rename a
				// role to create; files must not collide.
				if r.ARN != "" && i == 2 {
					r.file = r.Name + "-" + r.Account
				} else {
					r.file = fmt.Sprintf("%s-%d", r.Name, i)
				}
				if r.ARN == "" {
					r.Name = r.file
				}
			}
			names[r.file] = true
			byKey[key] = r
		}
		if !contains(r.Envs, id.Env) {
			r.Envs = append(r.Envs, id.Env)
		}
		r.Subjects = appendSubject(r.Subjects, Subject{Env: id.Env, Sub: "system:serviceaccount:" + id.Namespace + ":" + id.ServiceAccount})
		r.Services = appendUnique(r.Services, s.Name)
		if id.ARN == "" {
			r.Fills = appendUnique(r.Fills, s.Name+" fill."+id.Fill)
		}
		if id.Prod && s.ServiceAccount.FormerPrincipal != "" {
			r.FormerPrincipals = appendUnique(r.FormerPrincipals, s.ServiceAccount.FormerPrincipal)
		}
	}
	envIndex := map[string]int{}
	for i, e := range opts.Envs {
		envIndex[e] = i
	}
	out := make([]*Role, 0, len(byKey))
	for _, r := range byKey {
		sort.Slice(r.Envs, func(i, j int) bool { return envIndex[r.Envs[i]] < envIndex[r.Envs[j]] })
		sort.Slice(r.Subjects, func(i, j int) bool {
			a, b := r.Subjects[i], r.Subjects[j]
			if a.Env != b.Env {
				return envIndex[a.Env] < envIndex[b.Env]
			}
			return a.Sub < b.Sub
		})
		sort.Strings(r.Services)
		sort.Strings(r.Fills)
		sort.Strings(r.FormerPrincipals)
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Prod != b.Prod {
			return a.Prod
		}
		if ea, eb := envIndex[a.Envs[0]], envIndex[b.Envs[0]]; ea != eb {
			return ea < eb
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.Account < b.Account
	})
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func appendUnique(list []string, s string) []string {
	if contains(list, s) {
		return list
	}
	return append(list, s)
}

func appendSubject(list []Subject, s Subject) []Subject {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// account is the account a role's policy names: the ARN's, else its
// environment's, else that environment's placeholder.
func (r *Role) account() string {
	switch {
	case r.Account != "":
		return r.Account
	case len(r.Envs) > 0:
		return AccountPlaceholderFor(r.Envs[0])
	}
	return AccountPlaceholder
}

// oidc returns the OIDC provider of an environment's cluster, or its
// placeholder: one for all environments when they share a cluster.
func oidc(env string, opts render.Options) string {
	if p := opts.OIDC(env); p != "" {
		return strings.TrimPrefix(p, "https://")
	}
	for _, e := range opts.Envs {
		if opts.Cluster(e) != opts.Cluster(env) {
			return OIDCPlaceholderFor(env)
		}
	}
	return OIDCPlaceholder
}

// TrustPolicy returns the IRSA trust policy document of a role: one
// statement per OIDC provider its environments run on, each admitting
// only the service accounts of those environments.
func TrustPolicy(r *Role, opts render.Options) ([]byte, error) {
	opts = opts.Defaults()
	partition := r.Partition
	if partition == "" {
		partition = "aws"
	}
	account := r.account()
	type group struct {
		oidc string
		envs []string
		subs []string
	}
	var groups []*group
	byOIDC := map[string]*group{}
	for _, s := range r.Subjects {
		o := oidc(s.Env, opts)
		g := byOIDC[o]
		if g == nil {
			g = &group{oidc: o}
			byOIDC[o] = g
			groups = append(groups, g)
		}
		if !contains(g.envs, s.Env) {
			g.envs = append(g.envs, s.Env)
		}
		g.subs = append(g.subs, s.Sub)
	}
	doc := policy{Version: "2012-10-17"}
	for _, g := range groups {
		var sub any = g.subs
		if len(g.subs) == 1 {
			sub = g.subs[0]
		}
		sid := "IRSA"
		if len(groups) > 1 {
			sid += sidWord(strings.Join(g.envs, "-"))
		}
		doc.Statement = append(doc.Statement, statement{
			Sid:       sid,
			Effect:    "Allow",
			Principal: map[string]string{"Federated": fmt.Sprintf("arn:%s:iam::%s:oidc-provider/%s", partition, account, g.oidc)},
			Action:    "sts:AssumeRoleWithWebIdentity",
			Condition: map[string]map[string]any{
				"StringEquals": {
					g.oidc + ":aud": "sts.amazonaws.com",
					g.oidc + ":sub": sub,
				},
			},
		})
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep <ACCOUNT_ID> readable
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// sidWord makes an environment list a statement id: IAM allows only
// letters and digits there.
func sidWord(s string) string {
	var b strings.Builder
	up := true
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z':
			if up {
				r -= 'a' - 'A'
			}
			b.WriteRune(r)
			up = false
		case r >= 'A' && r <= 'Z' || r >= '0' && r <= '9':
			b.WriteRune(r)
			up = false
		default:
			up = true
		}
	}
	return b.String()
}

type policy struct {
	Version   string      `json:"Version"`
	Statement []statement `json:"Statement"`
}

type statement struct {
	Sid       string                    `json:"Sid"`
	Effect    string                    `json:"Effect"`
	Principal map[string]string         `json:"Principal"`
	Action    string                    `json:"Action"`
	Condition map[string]map[string]any `json:"Condition"`
}

// File is the path of a role's trust policy in the layout.
func File(r *Role) string {
	name := r.file
	if name == "" {
		name = r.Name
	}
	return "iam/" + name + ".trust-policy.json"
}

// Render writes iam/<role>.trust-policy.json for every role and
// iam/README.md saying how to create or update them.
func Render(svcs []*service.Service, opts render.Options, t render.Tree) error {
	opts = opts.Defaults()
	roles, err := Roles(svcs, opts)
	if err != nil {
		return err
	}
	if len(roles) == 0 {
		return nil
	}
	prodEnvs := strings.Join(opts.ProdEnvs(), ", ")
	var readme strings.Builder
	readme.WriteString("# IAM roles and trust policies for IRSA\n\n")
	readme.WriteString("Each file is the trust policy of one IAM role, so that one service's Kubernetes ServiceAccount\n")
	readme.WriteString("can assume it through its cluster's OIDC provider. Every environment acts with a role of its\n")
	readme.WriteString("own, and each role trusts only the service account in its own environment's namespace:\n\n")
	fmt.Fprintf(&readme, "- **Production** (%s) keeps the role the input named (an ECS task role, a Lambda execution\n", prodEnvs)
	readme.WriteString("  role): its trust policy is replaced and its permissions policies stay as they are. A role the\n")
	readme.WriteString("  input did not name (compose, systemd, an unresolved template reference) is a role to create.\n")
	readme.WriteString("- **Every other environment** gets a role to create, `<service>-<env>`, in that environment's\n")
	readme.WriteString("  account, with the permissions the service needs there (those of its production role, on that\n")
	readme.WriteString("  environment's queues, secrets and tables). Once it exists, put its ARN in the service's values\n")
	readme.WriteString("  file under `fill:` (the value named below): the chart refuses to render that environment until\n")
	readme.WriteString("  it is set.\n\n")
	readme.WriteString("No environment's service account can assume another environment's role, so a change or test\n")
	readme.WriteString("outside production cannot act as production.\n\n")
	readme.WriteString("| role | environments | services | trusts | assumed before by | file |\n|---|---|---|---|---|---|\n")
	for _, r := range roles {
		b, err := TrustPolicy(r, opts)
		if err != nil {
			return err
		}
		file := strings.TrimPrefix(File(r), "iam/")
		t.Add(File(r), b)
		before := strings.Join(r.FormerPrincipals, ", ")
		switch {
		case r.ARN == "":
			before = "new role: create it, then set " + strings.Join(r.Fills, ", ")
		case before == "":
			before = "-"
		}
		var trusts []string
		for _, s := range r.Subjects {
			trusts = append(trusts, "`"+strings.TrimPrefix(s.Sub, "system:serviceaccount:")+"`")
		}
		fmt.Fprintf(&readme, "| %s | %s | %s | %s | %s | [%s](%s) |\n", r.Name, strings.Join(r.Envs, ", "), strings.Join(r.Services, ", "), strings.Join(trusts, ", "), before, file, file)
	}
	readme.WriteString("\nApply with the AWS CLI, with credentials of the account each role is in:\n\n```sh\n")
	for _, r := range roles {
		if r.ARN != "" {
			fmt.Fprintf(&readme, "aws iam update-assume-role-policy --role-name %s --policy-document file://%s\n", r.Name, strings.TrimPrefix(File(r), "iam/"))
		}
	}
	for _, r := range roles {
		if r.ARN == "" {
			fmt.Fprintf(&readme, "aws iam create-role --role-name %s --assume-role-policy-document file://%s  # %s\n", r.Name, strings.TrimPrefix(File(r), "iam/"), strings.Join(r.Envs, ", "))
		}
	}
	readme.WriteString("```\n\nor in Terraform: `assume_role_policy = file(\"${path.module}/<role>.trust-policy.json\")`.\n")
	readme.WriteString("Then attach to each new role the permissions policies of the service's production role,\n")
	readme.WriteString("scoped to its own environment's resources.\n")
	readme.WriteString("\nKeep the old principal in a production role's policy until the last ECS task or Lambda\n")
	readme.WriteString("invocation has stopped: add the statement above to the existing one rather than replacing it\n")
	readme.WriteString("while both sides run, and remove the old statement once the shift is complete.\n")
	var conflicts []string
	for _, r := range roles {
		for _, e := range r.Envs {
			if a := opts.Account(e); r.ARN != "" && a != "" && a != r.Account {
				conflicts = append(conflicts, fmt.Sprintf("%s is in account %s, not %s's account %s", r.Name, r.Account, e, a))
			}
		}
	}
	if len(conflicts) > 0 {
		readme.WriteString("\nCross-account roles: " + strings.Join(conflicts, "; ") + ".\n")
		readme.WriteString("A role trusts an OIDC provider registered in its own account: register the cluster's provider\n")
		readme.WriteString("there (IRSA across accounts),\n")
		readme.WriteString("or create the role anew in the environment's account.\n")
	}
	if placeholders := unfilled(roles, opts); len(placeholders) > 0 {
		readme.WriteString("\nFill the placeholders with your clusters' and accounts' values (the OIDC provider:\n")
		readme.WriteString("`aws eks describe-cluster --name <cluster> --query cluster.identity.oidc.issuer`), or run convert\n")
		readme.WriteString("again with `--oidc-provider [ENV=]PROVIDER` and `--account-id [ENV=]ID`:\n\n")
		for _, p := range placeholders {
			readme.WriteString("- " + p + "\n")
		}
	}
	t.Add("iam/README.md", []byte(readme.String()))
	return nil
}

// unfilled lists the placeholders the policies contain, quoted.
func unfilled(roles []*Role, opts render.Options) []string {
	seen := map[string]bool{}
	var out []string
	add := func(s string) {
		if strings.Contains(s, "<") && !seen[s] {
			seen[s] = true
			out = append(out, "`"+s+"`")
		}
	}
	for _, r := range roles {
		add(r.account())
		for _, s := range r.Subjects {
			add(oidc(s.Env, opts))
		}
	}
	return out
}
