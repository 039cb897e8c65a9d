package render

import "fmt"

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
	// AccountID is the AWS account of the cluster; "" means a placeholder.
	AccountID string
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
	return nil
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
