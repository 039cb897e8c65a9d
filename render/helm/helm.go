// Package helm renders services as one shared Helm chart and a values
// hierarchy, and renders that layout back into Kubernetes objects with
// Helm's own engine.
//
// The layout, under the output directory:
//
//	chart/                      one chart (apiVersion v2) for every service
//	values/base.yaml            defaults of every service and environment,
//	                            and environmentKeys, the values environments
//	                            may set differently
//	values/env/<env>.yaml       what differs by environment
//	values/services/<svc>.yaml  what is special to one service, the values
//	                            the user must fill, and the service's own
//	                            per-environment overrides
//
// and one service in one environment is
//
//	helm template <svc> chart -f values/base.yaml -f values/env/<env>.yaml \
//	    -f values/services/<svc>.yaml
//
// The chart is static (embedded from chart/ here); everything the input
// says lives in values, so an upgrade of cutover shows as a diff of the
// chart alone, and a reviewer reads one service's decisions in one file.
package helm

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/cutoverhq/cutover/render"
	"github.com/cutoverhq/cutover/render/iam"
	"github.com/cutoverhq/cutover/service"
)

//go:embed all:chart
var chartFS embed.FS

// Paths of the layout, relative to the output directory.
const (
	// ChartDir holds the chart.
	ChartDir = "chart"
	// BaseValuesFile holds the defaults of every service and environment.
	BaseValuesFile = "values/base.yaml"
	envDir         = "values/env"
	servicesDir    = "values/services"
)

// EnvValuesFile is the values file of one environment.
func EnvValuesFile(env string) string { return envDir + "/" + env + ".yaml" }

// ServiceValuesFile is the values file of one service.
func ServiceValuesFile(svc string) string { return servicesDir + "/" + svc + ".yaml" }

// ValueFiles are the values files of one service in one environment, in
// the order Helm must read them, relative to the output directory (Argo CD
// and `helm template -f` take them in this order).
func ValueFiles(svc, env string) []string {
	return []string{BaseValuesFile, EnvValuesFile(env), ServiceValuesFile(svc)}
}

// Render adds the chart and the values hierarchy of svcs to t. Every
// service must be valid (service.Validate) and have a unique name.
//
// Render completes each service's model with what rendering decided (see
// Findings): the values it needs filled are added to Values (so the
// report and the fill: map agree), its findings to Report, and a service
// whose secrets or queues need an AWS identity but had none gets a
// ServiceAccount whose role is the fill value roleArn. Rendering the
// same services again adds nothing more.
//
// A service's IAM role differs by environment (iam.Identities): the
// production environments keep the role the input named, every other
// environment names a role of its own, a value to fill
// (roleArn<Env>), under the service's environments: map.
func Render(svcs []*service.Service, opts render.Options, t render.Tree) error {
	opts = opts.Defaults()
	if err := opts.Validate(); err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, s := range svcs {
		if err := s.Validate(); err != nil {
			return err
		}
		if seen[s.Name] {
			return fmt.Errorf("two services are named %q", s.Name)
		}
		seen[s.Name] = true
	}
	if err := addChart(t); err != nil {
		return err
	}
	region := regionNote{region: opts.Region}
	if region.region == "" {
		region.region, region.inferred = inferRegion(svcs)
	}
	t.Add(BaseValuesFile, baseValues(opts))
	for i, env := range opts.Envs {
		t.Add(EnvValuesFile(env), envValues(opts, env, i, region))
	}
	for _, s := range svcs {
		data, b := serviceValues(s, opts)
		t.Add(ServiceValuesFile(s.Name), data)
		for _, v := range b.fills {
			s.AddValue(v.Name, v.Default, v.Reason)
		}
		if s.ServiceAccount == nil && b.needsRole() {
			// External Secrets and KEDA act as the service account: it
			// needs a role, and the IAM renderer a trust policy for it.
			s.ServiceAccount = &service.ServiceAccount{RoleValue: iam.RoleFill}
		}
		for _, f := range b.findings {
			if !hasFinding(s.Report.Findings, f) {
				s.Report.Add(f)
			}
		}
	}
	return nil
}

func hasFinding(fs []service.Finding, f service.Finding) bool {
	for _, g := range fs {
		if g == f {
			return true
		}
	}
	return false
}

// addChart copies the embedded chart into the tree.
func addChart(t render.Tree) error {
	return fs.WalkDir(chartFS, "chart", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := chartFS.ReadFile(p)
		if err != nil {
			return err
		}
		t.Add(path.Join(ChartDir, strings.TrimPrefix(p, "chart/")), data)
		return nil
	})
}

// serviceValues is the values file of one service, and the builder that
// wrote it (its fills and findings).
func serviceValues(s *service.Service, opts render.Options) ([]byte, *builder) {
	b := newBuilder(s, opts)
	m := b.build()
	head := fmt.Sprintf("%s: what is special to this service.", s.Name)
	if s.Origin.Format != "" {
		head = fmt.Sprintf("%s: what is special to this service, converted by cutover from %s", s.Name, s.Origin.Format)
		if len(s.Origin.Files) > 0 {
			head += " (" + strings.Join(s.Origin.Files, ", ") + ")"
		}
		head += "."
	}
	head += "\nDefaults are in ../base.yaml and per-environment settings in ../env/<env>.yaml;\nvalues set here win over both."
	return document(head, m), b
}

// Findings are the renderer's own report lines for one service: what it
// widened (route paths), defaulted (readiness probes, KEDA limits), could
// not render, or left to fill (an IAM role the input did not name). The
// importer's findings are in svc.Report; Render adds these to them.
// Findings does not change svc.
func Findings(svc *service.Service, opts render.Options) []service.Finding {
	b := newBuilder(svc, opts.Defaults())
	b.build()
	return b.findings
}

// ServiceAccountName is the Kubernetes ServiceAccount the service's pods
// run as (and whose IAM role trust policies must name).
func ServiceAccountName(svc *service.Service) string { return iam.ServiceAccountName(svc) }
