// Package argocd writes the GitOps side of a converted layout: an Argo CD
// AppProject for the owning team, an ApplicationSet that generates one
// Application per service × environment (each rendering DIR/chart with the
// base, environment and service values files, exactly as `helm template`
// would), and per environment a Namespace, ResourceQuota, LimitRange and
// RBAC for the team, applied by a second ApplicationSet.
package argocd

import (
	"bytes"
	"fmt"
	"path"

	"gopkg.in/yaml.v3"

	"github.com/cutoverhq/cutover/render"
	"github.com/cutoverhq/cutover/service"
)

// RepoPlaceholder is written as the repository URL when none was given.
const RepoPlaceholder = "https://git.example.com/FILL-ME/migration.git"

// ProdLike reports whether an environment should not sync automatically:
// production changes go through a manual sync (and, with cutover shift,
// through a traffic shift).
func ProdLike(env string) bool {
	switch env {
	case "prod", "production", "prd", "live":
		return true
	}
	return false
}

// Render adds argocd/project.yaml, argocd/applicationset.yaml,
// argocd/platform-applicationset.yaml and platform/<env>/namespace.yaml.
func Render(svcs []*service.Service, opts render.Options, t render.Tree) error {
	opts = opts.Defaults()
	repo := opts.RepoURL
	if repo == "" {
		repo = RepoPlaceholder
	}
	base := opts.RepoPath

	var services []string
	for _, s := range svcs {
		services = append(services, s.Name)
	}

	var destinations []yaml.Node
	var envElems []any
	for _, env := range opts.Envs {
		destinations = append(destinations, *node(ordered(
			"server", opts.Cluster(env),
			"namespace", opts.Namespace(env),
		)))
		envElems = append(envElems, ordered(
			"env", env,
			"cluster", opts.Cluster(env),
			"namespace", opts.Namespace(env),
			"autoSync", fmt.Sprint(!ProdLike(env)),
		))
	}
	var svcElems []any
	for _, s := range services {
		svcElems = append(svcElems, ordered("service", s))
	}

	project := ordered(
		"apiVersion", "argoproj.io/v1alpha1",
		"kind", "AppProject",
		"metadata", ordered("name", opts.Team, "namespace", "argocd"),
		"spec", ordered(
			"description", "Services migrated by cutover for team "+opts.Team,
			"sourceRepos", []string{repo},
			"destinations", destinations,
			"clusterResourceWhitelist", []any{ordered("group", "", "kind", "Namespace")},
			"namespaceResourceBlacklist", []any{ordered("group", "", "kind", "ResourceQuota"), ordered("group", "", "kind", "LimitRange")},
		),
	)
	// The platform project may create quotas; the service project may not,
	// so a service's chart cannot lift its own limits.
	platformProject := ordered(
		"apiVersion", "argoproj.io/v1alpha1",
		"kind", "AppProject",
		"metadata", ordered("name", opts.Team+"-platform", "namespace", "argocd"),
		"spec", ordered(
			"description", "Namespaces, quotas and RBAC of team "+opts.Team,
			"sourceRepos", []string{repo},
			"destinations", destinations,
			"clusterResourceWhitelist", []any{ordered("group", "", "kind", "Namespace")},
		),
	)

	valueFiles := []string{
		"../values/base.yaml",
		"../values/env/{{.env}}.yaml",
		"../values/services/{{.service}}.yaml",
	}
	appSet := ordered(
		"apiVersion", "argoproj.io/v1alpha1",
		"kind", "ApplicationSet",
		"metadata", ordered("name", opts.Team+"-services", "namespace", "argocd"),
		"spec", ordered(
			"goTemplate", true,
			"goTemplateOptions", []string{"missingkey=error"},
			"generators", []any{ordered("matrix", ordered("generators", []any{
				ordered("list", ordered("elements", svcElems)),
				ordered("list", ordered("elements", envElems)),
			}))},
			"template", ordered(
				"metadata", ordered(
					"name", "{{.service}}-{{.env}}",
					"labels", ordered(
						"app.kubernetes.io/part-of", opts.Team,
						"cutover.dev/service", "{{.service}}",
						"cutover.dev/environment", "{{.env}}",
					),
				),
				"spec", ordered(
					"project", opts.Team,
					"source", ordered(
						"repoURL", repo,
						"targetRevision", opts.Revision,
						"path", path.Join(base, "chart"),
						"helm", ordered(
							"releaseName", "{{.service}}",
							"valueFiles", valueFiles,
						),
					),
					"destination", ordered("server", "{{.cluster}}", "namespace", "{{.namespace}}"),
					"syncPolicy", ordered("syncOptions", []string{"ServerSideApply=true", "PruneLast=true"}),
				),
			),
			// Automated sync only where the element says so: production
			// is synced by hand, or by cutover shift.
			"templatePatch", "{{- if eq .autoSync \"true\" }}\nspec:\n  syncPolicy:\n    automated:\n      prune: true\n      selfHeal: true\n{{- end }}\n",
		),
	)

	platformSet := ordered(
		"apiVersion", "argoproj.io/v1alpha1",
		"kind", "ApplicationSet",
		"metadata", ordered("name", opts.Team+"-platform", "namespace", "argocd"),
		"spec", ordered(
			"goTemplate", true,
			"goTemplateOptions", []string{"missingkey=error"},
			"generators", []any{ordered("list", ordered("elements", envElems))},
			"template", ordered(
				"metadata", ordered("name", opts.Team+"-platform-{{.env}}"),
				"spec", ordered(
					"project", opts.Team+"-platform",
					"source", ordered(
						"repoURL", repo,
						"targetRevision", opts.Revision,
						"path", path.Join(base, "platform", "{{.env}}"),
					),
					"destination", ordered("server", "{{.cluster}}", "namespace", "{{.namespace}}"),
					"syncPolicy", ordered(
						"automated", ordered("prune", false, "selfHeal", true),
						"syncOptions", []string{"ServerSideApply=true"},
					),
				),
			),
		),
	)

	if err := add(t, "argocd/project.yaml", project, platformProject); err != nil {
		return err
	}
	if err := add(t, "argocd/applicationset.yaml", appSet); err != nil {
		return err
	}
	if err := add(t, "argocd/platform-applicationset.yaml", platformSet); err != nil {
		return err
	}
	for _, env := range opts.Envs {
		if err := add(t, "platform/"+env+"/namespace.yaml", Platform(env, opts)...); err != nil {
			return err
		}
	}
	return nil
}

// Platform returns the objects an environment's namespace needs: the
// Namespace (with Pod Security Admission at restricted), a ResourceQuota,
// a LimitRange giving containers without resources a default, and RBAC
// binding the team's group (<team>-developers) to edit outside production
// and view in production, and <team>-oncall to edit everywhere.
func Platform(env string, opts render.Options) []any {
	opts = opts.Defaults()
	ns := opts.Namespace(env)
	labels := ordered(
		"app.kubernetes.io/managed-by", "cutover",
		"cutover.dev/team", opts.Team,
		"cutover.dev/environment", env,
		"pod-security.kubernetes.io/enforce", "restricted",
		"pod-security.kubernetes.io/warn", "restricted",
	)
	quota := ordered("requests.cpu", "16", "requests.memory", "32Gi", "limits.memory", "64Gi", "pods", "200", "persistentvolumeclaims", "20")
	if !ProdLike(env) {
		quota = ordered("requests.cpu", "8", "requests.memory", "16Gi", "limits.memory", "32Gi", "pods", "100", "persistentvolumeclaims", "10")
	}
	devRole := "edit"
	if ProdLike(env) {
		devRole = "view"
	}
	meta := func(name string) any {
		return ordered("name", name, "namespace", ns, "labels", ordered("app.kubernetes.io/managed-by", "cutover", "cutover.dev/team", opts.Team))
	}
	return []any{
		ordered("apiVersion", "v1", "kind", "Namespace", "metadata", ordered("name", ns, "labels", labels)),
		ordered("apiVersion", "v1", "kind", "ResourceQuota", "metadata", meta(opts.Team+"-quota"), "spec", ordered("hard", quota)),
		ordered("apiVersion", "v1", "kind", "LimitRange", "metadata", meta(opts.Team+"-defaults"), "spec", ordered("limits", []any{ordered(
			"type", "Container",
			"defaultRequest", ordered("cpu", "100m", "memory", "128Mi"),
			"default", ordered("memory", "512Mi"),
		)})),
		ordered("apiVersion", "rbac.authorization.k8s.io/v1", "kind", "RoleBinding", "metadata", meta(opts.Team+"-developers"),
			"roleRef", ordered("apiGroup", "rbac.authorization.k8s.io", "kind", "ClusterRole", "name", devRole),
			"subjects", []any{ordered("apiGroup", "rbac.authorization.k8s.io", "kind", "Group", "name", opts.Team+"-developers")}),
		ordered("apiVersion", "rbac.authorization.k8s.io/v1", "kind", "RoleBinding", "metadata", meta(opts.Team+"-oncall"),
			"roleRef", ordered("apiGroup", "rbac.authorization.k8s.io", "kind", "ClusterRole", "name", "edit"),
			"subjects", []any{ordered("apiGroup", "rbac.authorization.k8s.io", "kind", "Group", "name", opts.Team+"-oncall")}),
	}
}

// ordered builds a YAML mapping that keeps its keys in the given order, so
// the output reads like a hand-written manifest and is byte-identical from
// run to run.
func ordered(kv ...any) *yaml.Node {
	m := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	for i := 0; i+1 < len(kv); i += 2 {
		m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: kv[i].(string)}, node(kv[i+1]))
	}
	return m
}

func node(v any) *yaml.Node {
	if n, ok := v.(*yaml.Node); ok {
		return n
	}
	var n yaml.Node
	if err := n.Encode(v); err != nil {
		panic(err) // only plain values reach here
	}
	return &n
}

func add(t render.Tree, file string, docs ...any) error {
	var buf bytes.Buffer
	buf.WriteString("# Generated by cutover convert. Edit the values files, not this file, where you can.\n")
	for i, d := range docs {
		if i > 0 {
			buf.WriteString("---\n")
		}
		enc := yaml.NewEncoder(&buf)
		enc.SetIndent(2)
		if err := enc.Encode(d); err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		enc.Close()
	}
	t.Add(file, buf.Bytes())
	return nil
}
