package cli

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cutoverhq/cutover/audit"
	"github.com/cutoverhq/cutover/convert"
	"github.com/cutoverhq/cutover/render"
	"github.com/cutoverhq/cutover/render/iam"
	"github.com/cutoverhq/cutover/service"
	"github.com/cutoverhq/cutover/source"
)

type convertFlags struct {
	from          string
	envs          []string
	out           string
	image         string
	team          string
	repoURL       string
	revision      string
	repoPath      string
	clusters      []string
	oidcProviders []string
	accountIDs    []string
	region        string
	profiles      []string
	useEnv        bool
	strict        bool
	quiet         bool
	audit         auditFlags
}

func newConvertCmd(e *env) *cobra.Command {
	var f convertFlags
	cmd := &cobra.Command{
		Use:   "convert --out DIR FILE...",
		Short: "Convert ECS, Lambda, compose and systemd definitions into a GitOps-ready Helm layout",
		Long: `convert reads what services run on today and writes what they will run on.

Inputs (the format of each file is detected unless --from names it):
  ecs      task definitions (describe-task-definition output or register input),
           services, target groups and Application Auto Scaling policies;
           CloudFormation templates (cdk synth output) with task definitions
  lambda   get-function(-configuration) and list-event-source-mappings JSON,
           AWS SAM templates, Serverless Framework serverless.yml, plain
           CloudFormation templates (cdk synth output) with functions
  compose  docker-compose files (the Compose specification)
  systemd  .service units from a VM (the image comes from --image)

Several files describe one service when they name it: a task definition and
its ECS service, a function and its event source mappings. A CloudFormation
template with both an ECS service and functions goes to both importers.

Output (written atomically: a failed run leaves the previous DIR whole):
  DIR/chart/                   one Helm chart shared by the services
  DIR/values/base.yaml         defaults for every service and environment
  DIR/values/env/<env>.yaml    what differs per environment
  DIR/values/services/<s>.yaml what is special to one service, and fill: values
  DIR/argocd/                  AppProjects and ApplicationSets
  DIR/platform/<env>/          Namespace, ResourceQuota, LimitRange, RBAC
  DIR/iam/                     IRSA trust policies, one per role and environment
  DIR/MIGRATION.md             every input field and what became of it

Exit status: 0 done; 1 done, but --strict and the report has warnings,
dropped fields or values to fill; 2 bad input or usage (nothing written).`,
		Example: `  # an ECS task definition, its service and its scaling policies
  cutover convert --out migration taskdef.json service.json scaling.json

  # a SAM template, for two environments with their clusters
  cutover convert --envs staging,prod --cluster prod=https://prod.example:6443 \
      --out migration template.yaml

  # a systemd unit, with the image it will run
  cutover convert --image registry.example/billing:1.4.2 --out migration billing.service`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runConvert(cmd, e, f, args)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.from, "from", "", "input format of every file: "+strings.Join(source.Names(), "|")+" (default: detect per file)")
	fl.StringSliceVar(&f.envs, "envs", render.DefaultEnvs, "environments, in promotion order")
	fl.StringVarP(&f.out, "out", "o", "", "output directory (required)")
	fl.StringVar(&f.image, "image", "", "container image for inputs that have none (systemd); default: a value to fill")
	fl.StringVar(&f.team, "team", "platform", "owning team: namespaces are <team>-<env>, RBAC groups <team>-developers and <team>-oncall")
	fl.StringVar(&f.repoURL, "repo-url", "", "Git repository Argo CD reads the output from (default: a placeholder to fill)")
	fl.StringVar(&f.revision, "revision", "HEAD", "Git revision Argo CD tracks")
	fl.StringVar(&f.repoPath, "repo-path", "", "path of DIR inside the repository (default: the root)")
	fl.StringArrayVar(&f.clusters, "cluster", nil, "ENV=URL: Argo CD destination server of an environment (repeatable; default in-cluster)")
	fl.StringArrayVar(&f.oidcProviders, "oidc-provider", nil, "[ENV=]PROVIDER: the EKS cluster's OIDC provider, oidc.eks.REGION.amazonaws.com/id/ID, of every environment or of ENV (repeatable; default: a placeholder)")
	fl.StringArrayVar(&f.accountIDs, "account-id", nil, "[ENV=]ID: the AWS account of every environment's IAM roles, or of ENV's (repeatable; default: a placeholder; a role the input names keeps its account)")
	fl.StringVar(&f.region, "region", "", "AWS region of the cluster")
	fl.StringSliceVar(&f.profiles, "profile", nil, "compose profiles to enable")
	fl.BoolVar(&f.useEnv, "use-env", false, "interpolate compose variables from this process's environment (default: only .env files; unset variables become values to fill)")
	fl.BoolVar(&f.strict, "strict", false, "exit 1 when the report has warnings, dropped fields or values to fill")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "print nothing but errors")
	addAuditFlags(cmd, &f.audit)
	_ = cmd.MarkFlagRequired("out")
	return cmd
}

func runConvert(cmd *cobra.Command, e *env, f convertFlags, args []string) error {
	clusters := map[string]string{}
	for _, c := range f.clusters {
		env, url, ok := strings.Cut(c, "=")
		if !ok || env == "" || url == "" {
			return usageError(fmt.Errorf("--cluster %q: want ENV=URL", c))
		}
		clusters[env] = url
	}
	oidc, oidcs, err := perEnv("--oidc-provider", "PROVIDER", f.oidcProviders)
	if err != nil {
		return err
	}
	account, accounts, err := perEnv("--account-id", "ID", f.accountIDs)
	if err != nil {
		return err
	}
	opts := convert.Options{
		From: f.from,
		Source: source.Options{
			Image:    f.image,
			Profiles: f.profiles,
		},
		Render: render.Options{
			Envs:          f.envs,
			Clusters:      clusters,
			RepoURL:       f.repoURL,
			Revision:      f.revision,
			RepoPath:      f.repoPath,
			Team:          f.team,
			OIDCProvider:  oidc,
			OIDCProviders: oidcs,
			AccountID:     account,
			AccountIDs:    accounts,
			Region:        f.region,
		},
	}
	if f.useEnv {
		opts.Source.Env = map[string]string{}
		for _, kv := range os.Environ() {
			if k, v, ok := strings.Cut(kv, "="); ok {
				opts.Source.Env[k] = v
			}
		}
	}
	if f.from != "" {
		if _, err := source.Lookup(f.from); err != nil {
			return usageError(err)
		}
	}
	if err := opts.Render.Validate(); err != nil {
		return usageError(err)
	}
	res, err := convert.Convert(cmd.Context(), args, opts)
	if err != nil {
		return err
	}
	if err := render.WriteDir(f.out, res.Tree); err != nil {
		return err
	}
	if err := auditConvert(cmd.Context(), f, opts, res); err != nil {
		return err
	}
	warn := res.Findings(service.Warning)
	drop := res.Findings(service.Dropped)
	fill := 0
	for _, s := range res.Services {
		fill += len(s.Values)
	}
	if !f.quiet {
		names := make([]string, 0, len(res.Services))
		for _, s := range res.Services {
			names = append(names, s.Name)
		}
		sort.Strings(names)
		fmt.Fprintf(e.stdout, "converted %d service(s) (%s) into %s: %d files\n", len(res.Services), strings.Join(names, ", "), f.out, len(res.Tree))
		fmt.Fprintf(e.stdout, "report: %d mapped, %d warnings, %d dropped, %d values to fill; see %s/MIGRATION.md\n",
			res.Findings(service.Mapped), warn, drop, fill, f.out)
	}
	if f.strict && warn+drop+fill > 0 {
		return &ExitError{Code: ExitWarnings, Err: fmt.Errorf("--strict: %d warnings, %d dropped fields, %d values to fill (output written to %s)", warn, drop, fill, f.out)}
	}
	return nil
}

// perEnv reads a repeatable [ENV=]VALUE flag: a value for every
// environment, and values for some.
func perEnv(flag, what string, vals []string) (all string, byEnv map[string]string, err error) {
	for _, v := range vals {
		env, val, ok := strings.Cut(v, "=")
		switch {
		case !ok && all != "":
			return "", nil, usageError(fmt.Errorf("%s given twice for every environment: %q and %q", flag, all, v))
		case !ok:
			all = v
		case env == "" || val == "":
			return "", nil, usageError(fmt.Errorf("%s %q: want %s or ENV=%s", flag, v, what, what))
		default:
			if byEnv == nil {
				byEnv = map[string]string{}
			}
			if _, dup := byEnv[env]; dup {
				return "", nil, usageError(fmt.Errorf("%s given twice for %s", flag, env))
			}
			byEnv[env] = val
		}
	}
	return all, byEnv, nil
}

// auditConvert records the run: every input and output with its digest,
// and where each service will run in each environment, with the IAM role
// it assumes there (the evidence of environment segregation). A role the
// user has yet to create and fill is recorded by name and value
// (iam.Identity.Display), so that each environment's shows as its own.
func auditConvert(ctx context.Context, f convertFlags, opts convert.Options, res *convert.Result) error {
	l, err := f.audit.open(ctx, "")
	if err != nil || l == nil {
		return err
	}
	d := audit.ConvertData{OutputDir: f.out, Findings: map[string]int{}}
	for _, p := range service.SortedKeys(res.Inputs) {
		d.Inputs = append(d.Inputs, audit.FileDigest{Path: p, SHA256: "sha256:" + res.Inputs[p]})
	}
	for _, p := range service.SortedKeys(res.Outputs) {
		d.Outputs = append(d.Outputs, audit.FileDigest{Path: p, SHA256: "sha256:" + res.Outputs[p]})
	}
	ro := opts.Render.Defaults()
	for _, s := range res.Services {
		d.Services = append(d.Services, s.Name)
		for _, st := range []service.Status{service.Mapped, service.Warning, service.Dropped, service.Fill} {
			d.Findings[string(st)] += s.Report.Count(st)
		}
		roles := map[string]iam.Identity{}
		for _, id := range iam.Identities(s, ro) {
			roles[id.Env] = id
		}
		for _, env := range ro.Envs {
			p := audit.Placement{Service: s.Name, Environment: env, Namespace: ro.Namespace(env), Cluster: ro.Cluster(env)}
			if id, ok := roles[env]; ok {
				p.ServiceAccount, p.Role = id.ServiceAccount, id.Display()
			}
			d.Placements = append(d.Placements, p)
		}
	}
	r := audit.Record{Kind: audit.KindConvert}
	if err := r.SetData(d); err != nil {
		l.Close(ctx)
		return err
	}
	if _, err := l.Append(ctx, r); err != nil {
		l.Close(ctx)
		return fmt.Errorf("audit log: %w", err)
	}
	return l.Close(ctx)
}
