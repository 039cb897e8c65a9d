// Package iam writes the IAM trust policies that let each service's
// Kubernetes ServiceAccount assume the role its ECS task or Lambda function
// used, through IRSA: the trust policy that named ecs-tasks.amazonaws.com or
// lambda.amazonaws.com as principal is rewritten to
// sts:AssumeRoleWithWebIdentity for the cluster's OIDC provider, limited to
// the service account in each environment's namespace.
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

// Placeholders written when the cluster is not known; MIGRATION.md lists
// them as values to fill.
const (
	AccountPlaceholder = "<ACCOUNT_ID>"
	OIDCPlaceholder    = "oidc.eks.<REGION>.amazonaws.com/id/<OIDC_ID>"
)

// Role is one IAM role and the service accounts that will assume it.
type Role struct {
	// ARN as the input gave it; "" when the input had none (a value to
	// fill).
	ARN string
	// Name is the role name (the last path element of the ARN), or
	// "<service>-role" when the input had none.
	Name string
	// Partition and Account come from the ARN; "" when unknown.
	Partition string
	Account   string
	// Subjects are "system:serviceaccount:<ns>:<sa>" strings, sorted.
	Subjects []string
	// Services are the services using the role, sorted.
	Services []string
	// FormerPrincipals are the AWS services that assumed the role before.
	FormerPrincipals []string
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

// Roles collects the roles of the services, one entry per distinct role.
func Roles(svcs []*service.Service, opts render.Options) ([]*Role, error) {
	opts = opts.Defaults()
	byName := map[string]*Role{}
	for _, s := range svcs {
		sa := s.ServiceAccount
		if sa == nil {
			continue
		}
		saName := sa.Name
		if saName == "" {
			saName = s.Name
		}
		r := &Role{Name: s.Name + "-role"}
		if sa.RoleARN != "" {
			p, a, n, err := ParseRoleARN(sa.RoleARN)
			if err != nil {
				return nil, fmt.Errorf("service %s: %w", s.Name, err)
			}
			r = &Role{ARN: sa.RoleARN, Name: n, Partition: p, Account: a}
		}
		key := r.Partition + "/" + r.Account + "/" + r.Name
		if prev, ok := byName[key]; ok {
			r = prev
		} else {
			byName[key] = r
		}
		for _, env := range opts.Envs {
			r.Subjects = appendUnique(r.Subjects, "system:serviceaccount:"+opts.Namespace(env)+":"+saName)
		}
		r.Services = appendUnique(r.Services, s.Name)
		if sa.FormerPrincipal != "" {
			r.FormerPrincipals = appendUnique(r.FormerPrincipals, sa.FormerPrincipal)
		}
	}
	out := make([]*Role, 0, len(byName))
	for _, k := range service.SortedKeys(byName) {
		r := byName[k]
		sort.Strings(r.Subjects)
		sort.Strings(r.Services)
		sort.Strings(r.FormerPrincipals)
		out = append(out, r)
	}
	return out, nil
}

func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// TrustPolicy returns the IRSA trust policy document of a role.
func TrustPolicy(r *Role, opts render.Options) ([]byte, error) {
	partition := r.Partition
	if partition == "" {
		partition = "aws"
	}
	account := opts.AccountID
	if account == "" {
		account = r.Account
	}
	if account == "" {
		account = AccountPlaceholder
	}
	oidc := opts.OIDCProvider
	if oidc == "" {
		oidc = OIDCPlaceholder
	}
	oidc = strings.TrimPrefix(oidc, "https://")
	var sub any = r.Subjects
	if len(r.Subjects) == 1 {
		sub = r.Subjects[0]
	}
	doc := policy{
		Version: "2012-10-17",
		Statement: []statement{{
			Sid:       "IRSA",
			Effect:    "Allow",
			Principal: map[string]string{"Federated": fmt.Sprintf("arn:%s:iam::%s:oidc-provider/%s", partition, account, oidc)},
			Action:    "sts:AssumeRoleWithWebIdentity",
			Condition: map[string]map[string]any{
				"StringEquals": {
					oidc + ":aud": "sts.amazonaws.com",
					oidc + ":sub": sub,
				},
			},
		}},
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

// Render writes iam/<role>.trust-policy.json for every role and
// iam/README.md saying how to apply them.
func Render(svcs []*service.Service, opts render.Options, t render.Tree) error {
	roles, err := Roles(svcs, opts)
	if err != nil {
		return err
	}
	if len(roles) == 0 {
		return nil
	}
	var readme strings.Builder
	readme.WriteString("# IAM trust policies for IRSA\n\n")
	readme.WriteString("Each file is the trust policy of one role, so that the service's Kubernetes ServiceAccount\n")
	readme.WriteString("can assume it through the cluster's OIDC provider. For a role the input named (an ECS task\n")
	readme.WriteString("role, a Lambda execution role) it replaces the trust policy and the permissions policies stay\n")
	readme.WriteString("as they are. A role the input did not name (compose, systemd, or an unresolved template\n")
	readme.WriteString("reference) is a new role to create under the suggested name, with the permissions the\n")
	readme.WriteString("service needs (at least reading its secrets from Secrets Manager or Parameter Store).\n\n")
	readme.WriteString("| role | services | assumed before by | file |\n|---|---|---|---|\n")
	for _, r := range roles {
		b, err := TrustPolicy(r, opts)
		if err != nil {
			return err
		}
		file := r.Name + ".trust-policy.json"
		t.Add("iam/"+file, b)
		before := strings.Join(r.FormerPrincipals, ", ")
		if r.ARN == "" {
			before = "new role: create it"
		} else if before == "" {
			before = "-"
		}
		fmt.Fprintf(&readme, "| %s | %s | %s | [%s](%s) |\n", r.Name, strings.Join(r.Services, ", "), before, file, file)
	}
	readme.WriteString("\nApply with the AWS CLI:\n\n```sh\n")
	for _, r := range roles {
		fmt.Fprintf(&readme, "aws iam update-assume-role-policy --role-name %s --policy-document file://%s.trust-policy.json\n", r.Name, r.Name)
	}
	readme.WriteString("```\n\nor in Terraform: `assume_role_policy = file(\"${path.module}/<role>.trust-policy.json\")`.\n")
	readme.WriteString("\nKeep the old principal in the policy until the last ECS task or Lambda invocation has\n")
	readme.WriteString("stopped: add the statement above to the existing one rather than replacing it while both\n")
	readme.WriteString("sides run, and remove the old statement once the shift is complete.\n")
	if opts.OIDCProvider == "" || opts.AccountID == "" {
		readme.WriteString("\nFill `" + OIDCPlaceholder + "` (and `" + AccountPlaceholder + "` where it appears) with your\n")
		readme.WriteString("cluster's values: `aws eks describe-cluster --name <cluster> --query cluster.identity.oidc.issuer`,\n")
		readme.WriteString("or run convert again with `--oidc-provider` and `--account-id`.\n")
	}
	t.Add("iam/README.md", []byte(readme.String()))
	return nil
}
