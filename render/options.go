package render

import (
	"fmt"
	"sort"
)

// Options are the settings every renderer reads. The zero value of each
// field is documented; Defaults fills them.
type Options struct {
	// Envs are the environments, in promotion order. Nil means
	// dev, staging, prod.
	Envs []string
	// Clusters maps an environment to the Argo CD destination server URL.
	// A missing environment gets https://kubernetes.default.svc.
	Clusters map[string]string
	// RepoURL is the Git repository Argo CD reads the output from. "" means
	// a placeholder the user fills in argocd/.
	RepoURL string
	// Revision is the Git revision Argo CD tracks; "" means HEAD.
	Revision string
	// RepoPath is the output directory's path inside the repository; ""
	// means the repository root.
	RepoPath string
	// Team is the owning team, for namespaces, quotas and RBAC; "" means
	// "platform".
	Team string
	// NamespacePrefix prefixes every environment's namespace; the
	// namespace is <prefix><env>. "" means "<team>-".
	NamespacePrefix string
	// OIDCProvider is the EKS cluster's OIDC provider
	// (oidc.eks.<region>.amazonaws.com/id/<id>); "" means a placeholder in
	// the trust policies.
	OIDCProvider string
	// AccountID is the AWS account of the cluster, and of the IAM roles of
	// every environment AccountIDs does not name; "" means a placeholder.
	AccountID string
	// AccountIDs maps an environment to the AWS account its IAM roles
	// live in, when environments run in accounts of their own. A missing
	// environment falls back to AccountID.
	AccountIDs map[string]string
	// OIDCProviders maps an environment to the OIDC provider of its
	// cluster, when environments run on clusters of their own. A missing
	// environment falls back to OIDCProvider.
	OIDCProviders map[string]string
	// Region is the AWS region of the cluster; "" means a placeholder.
	Region string
}

// DefaultEnvs are the environments used when none are named.
var DefaultEnvs = []string{"dev", "staging", "prod"}

// Defaults returns o with every zero field set to its documented default.
func (o Options) Defaults() Options {
	if len(o.Envs) == 0 {
		o.Envs = append([]string(nil), DefaultEnvs...)
	}
	if o.Team == "" {
		o.Team = "platform"
	}
	if o.NamespacePrefix == "" {
		o.NamespacePrefix = o.Team + "-"
	}
	if o.Revision == "" {
		o.Revision = "HEAD"
	}
	return o
}

// Namespace returns the namespace of an environment.
func (o Options) Namespace(env string) string { return o.NamespacePrefix + env }

// Cluster returns the Argo CD destination server of an environment.
func (o Options) Cluster(env string) string {
	if c, ok := o.Clusters[env]; ok && c != "" {
		return c
	}
	return "https://kubernetes.default.svc"
}

// Account returns the AWS account of an environment's IAM roles:
// AccountIDs[env], else AccountID; "" when neither is known.
func (o Options) Account(env string) string {
	if a := o.AccountIDs[env]; a != "" {
		return a
	}
	return o.AccountID
}

// OIDC returns the OIDC provider of an environment's cluster:
// OIDCProviders[env], else OIDCProvider; "" when neither is known.
func (o Options) OIDC(env string) string {
	if p := o.OIDCProviders[env]; p != "" {
		return p
	}
	return o.OIDCProvider
}

// ProdLike reports whether an environment name denotes production: prod,
// production, prd or live. Production environments sync by hand in Argo
// CD and keep the AWS identities the input had; the others get their own.
func ProdLike(env string) bool {
	switch env {
	case "prod", "production", "prd", "live":
		return true
	}
	return false
}

// ProdEnvs returns the production environments of Envs (after Defaults):
// those ProdLike names, or else the last one in promotion order, so that
// every layout has one environment where the input's identities stay.
func (o Options) ProdEnvs() []string {
	envs := o.Envs
	if len(envs) == 0 {
		envs = DefaultEnvs
	}
	var out []string
	for _, e := range envs {
		if ProdLike(e) {
			out = append(out, e)
		}
	}
	if len(out) == 0 {
		out = []string{envs[len(envs)-1]}
	}
	return out
}

// IsProd reports whether env is one of ProdEnvs.
func (o Options) IsProd(env string) bool {
	for _, e := range o.ProdEnvs() {
		if e == env {
			return true
		}
	}
	return false
}

// Validate checks names that end up in Kubernetes object names.
func (o Options) Validate() error {
	seen := map[string]bool{}
	for _, e := range o.Envs {
		if !isLabel(e) {
			return fmt.Errorf("environment %q is not a DNS-1123 label", e)
		}
		if seen[e] {
			return fmt.Errorf("environment %q named twice", e)
		}
		seen[e] = true
	}
	if o.Team != "" && !isLabel(o.Team) {
		return fmt.Errorf("team %q is not a DNS-1123 label", o.Team)
	}
	for env := range o.Clusters {
		if !seen[env] && len(o.Envs) > 0 {
			return fmt.Errorf("cluster given for unknown environment %q", env)
		}
	}
	if o.AccountID != "" && !isAccount(o.AccountID) {
		return fmt.Errorf("account id %q is not 12 digits", o.AccountID)
	}
	for _, env := range sortedKeys(o.AccountIDs) {
		if !seen[env] && len(o.Envs) > 0 || len(o.Envs) == 0 && !isDefaultEnv(env) {
			return fmt.Errorf("account id given for unknown environment %q", env)
		}
		if !isAccount(o.AccountIDs[env]) {
			return fmt.Errorf("account id %q of %s is not 12 digits", o.AccountIDs[env], env)
		}
	}
	for _, env := range sortedKeys(o.OIDCProviders) {
		if !seen[env] && len(o.Envs) > 0 || len(o.Envs) == 0 && !isDefaultEnv(env) {
			return fmt.Errorf("OIDC provider given for unknown environment %q", env)
		}
	}
	return nil
}

func isAccount(s string) bool {
	if len(s) != 12 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func isDefaultEnv(env string) bool {
	for _, e := range DefaultEnvs {
		if e == env {
			return true
		}
	}
	return false
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func isLabel(s string) bool {
	if s == "" || len(s) > 40 {
		return false
	}
	for i, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' && i > 0 && i < len(s)-1) {
			return false
		}
	}
	return true
}
