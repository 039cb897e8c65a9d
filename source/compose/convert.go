package compose

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/cutoverhq/cutover/service"
	"github.com/cutoverhq/cutover/source"
)

// convert turns every enabled service of the project into a Service.
func (pr *project) convert() ([]*service.Service, error) {
	names := make([]string, 0, len(pr.p.Services))
	for n := range pr.p.Services {
		names = append(names, n)
	}
	sort.Strings(names)

	// A one-shot that others wait for with service_completed_successfully
	// (migrations, seeding) runs as their init container, not on its own.
	inits := map[string][]string{}
	for _, n := range names {
		for dep, d := range pr.p.Services[n].DependsOn {
			if d.Condition == types.ServiceConditionCompletedSuccessfully && pr.oneShot(dep) {
				inits[dep] = append(inits[dep], n)
			}
		}
	}

	var out []*service.Service
	taken := map[string]string{}
	for _, n := range names {
		if len(inits[n]) > 0 {
			continue
		}
		svc := pr.service(n)
		if prev, dup := taken[svc.Name]; dup {
			base := svc.Name
			for i := 2; taken[svc.Name] != ""; i++ {
				svc.Name = service.SanitizeName(fmt.Sprintf("%s-%d", base, i))
			}
			svc.Report.Warn(pr.files[pr.main].Path, pr.files[pr.main].pos.Line("services."+n), "services."+n, "name "+svc.Name,
				fmt.Sprintf("%q and %q both become %q on Kubernetes; this one was renamed %q", prev, n, base, svc.Name))
		}
		taken[svc.Name] = n
		out = append(out, svc)
	}
	if len(out) == 0 {
		// Every enabled service is a one-shot others run as an init
		// container: keep them as Jobs rather than lose them.
		for _, n := range names {
			out = append(out, pr.service(n))
		}
	}
	pr.projectFindings(out[0], inits)
	for _, svc := range out {
		if err := svc.Validate(); err != nil {
			return nil, fmt.Errorf("compose: %w", err)
		}
	}
	return out, nil
}

// oneShot reports whether a service runs to completion: restart "no" (or
// not set: compose does not restart by default) and no restart policy
// that keeps it running.
func (pr *project) oneShot(name string) bool {
	s, ok := pr.p.Services[name]
	if !ok {
		return false
	}
	switch s.Restart {
	case "", types.RestartPolicyNo, types.RestartPolicyOnFailure:
	default:
		if !strings.HasPrefix(s.Restart, "on-failure") {
			return false
		}
	}
	if s.Deploy != nil && s.Deploy.RestartPolicy != nil && s.Deploy.RestartPolicy.Condition == "any" {
		return false
	}
	return true
}

// service converts one compose service.
func (pr *project) service(name string) *service.Service {
	sc := pr.p.Services[name]
	svc := &service.Service{
		Name:   service.SanitizeName(name),
		Origin: service.Origin{Format: "compose"},
	}
	for _, f := range pr.files[pr.main:] {
		svc.Origin.Files = append(svc.Origin.Files, f.Path)
	}
	root := pr.track(&svc.Report)
	t := root.At("services." + name)
	cv := &conv{pr: pr, svc: svc, root: root, finish: map[string]bool{"services." + name: true}}

	if svc.Name != name {
		t.Warn("", "name "+svc.Name, fmt.Sprintf("Kubernetes names must be DNS labels: other services reach it as %q, not %q; update their addresses", svc.Name, name))
	}
	c := cv.container(t, name, sc, true)
	svc.Containers = []service.Container{c}
	cv.serviceFields(t, name, sc)
	cv.dependsOn(t, name, sc)
	cv.omittedFindings("services." + name)
	pr.emptyAfterInterpolation(root, "services."+name)
	for _, p := range service.SortedKeys(cv.finish) {
		root.At(p).Finish()
	}
	return svc
}

// conv holds the state of converting one Service.
type conv struct {
	pr   *project
	svc  *service.Service
	root *ftrack
	// finish are the path prefixes whose unreported fields are reported
	// as dropped at the end: the service, the top-level volumes, secrets
	// and configs it uses, its init containers.
	finish map[string]bool
	// exposed is true when the service listens on a port others reach.
	exposed bool
	// healthPath is the path of an HTTP health check, for Expose.
	healthPath string
	// svcImage is the image of the container being converted.
	svcImage string
}

// serviceFields maps the fields that describe the workload rather than
// the container: kind, replicas, rollout, shutdown, labels, placement.
func (cv *conv) serviceFields(t *ftrack, name string, sc types.ServiceConfig) {
	svc := cv.svc
	// Kind.
	kind := service.KindWorker
	if cv.exposed {
		kind = service.KindServer
	}
	jobWhy := ""
	switch {
	case sc.Restart == types.RestartPolicyNo && t.Has("restart"):
		jobWhy = `restart: "no" runs the container once`
	case sc.Deploy != nil && sc.Deploy.RestartPolicy != nil && sc.Deploy.RestartPolicy.Condition == "none":
		jobWhy = "restart_policy condition none runs the container once"
	case sc.Deploy != nil && (sc.Deploy.Mode == "replicated-job" || sc.Deploy.Mode == "global-job"):
		jobWhy = "deploy.mode " + sc.Deploy.Mode + " runs to completion"
	}
	if jobWhy != "" {
		kind = service.KindJob
	}
	svc.Kind = kind
	switch {
	case t.Has("restart") && kind == service.KindJob:
		t.Warn("restart", "Job", jobWhy+": it became a Job; if the process is long-running, set restart: unless-stopped and convert again")
	case t.Has("restart"):
		if strings.HasPrefix(sc.Restart, "on-failure") {
			t.Warn("restart", "Deployment", "Kubernetes restarts a container whenever it exits, also after a clean exit (on-failure only restarted on errors)")
		} else {
			t.Mapped("restart", "Deployment (restartPolicy Always)")
		}
	default:
		t.Use("restart")
	}

	// Replicas.
	if sc.Deploy != nil && sc.Deploy.Replicas != nil {
		r := int32(*sc.Deploy.Replicas)
		svc.Replicas = &r
		t.Mapped("deploy.replicas", "replicas")
	}
	if sc.Scale != nil {
		r := int32(*sc.Scale)
		svc.Replicas = &r
		t.Mapped("scale", "replicas")
	}
	if svc.Replicas != nil && *svc.Replicas == 0 {
		t.Warn(fieldOr(t, "deploy.replicas", "scale"), "replicas", "0 replicas: the service is deployed but not running")
	}

	cv.deploy(t, sc)

	// Shutdown: compose sends the stop signal, then SIGKILL after
	// stop_grace_period (10s by default). A server also gets a preStop
	// sleep, so load balancers stop sending before SIGTERM arrives; the
	// grace period grows by the sleep so the app keeps its full time.
	main := &svc.Containers[0]
	if kind == service.KindServer {
		main.PreStopSleepSeconds = preStopSleep
	}
	if sc.StopGracePeriod != nil {
		secs := int64(math.Ceil(durationSeconds(*sc.StopGracePeriod)))
		g := secs + main.PreStopSleepSeconds
		svc.TerminationGracePeriodSeconds = &g
		target := "terminationGracePeriodSeconds"
		if main.PreStopSleepSeconds > 0 {
			t.Mapped("stop_grace_period", fmt.Sprintf("%s %d (%ds preStop sleep, so load balancers stop sending first, + %ds after SIGTERM)", target, g, main.PreStopSleepSeconds, secs))
		} else {
			t.Mapped("stop_grace_period", fmt.Sprintf("%s %d", target, g))
		}
	}
	if sc.StopSignal != "" {
		sig := strings.TrimPrefix(strings.ToUpper(sc.StopSignal), "SIG")
		if sig == "TERM" {
			t.Mapped("stop_signal", "SIGTERM (the Kubernetes default)")
		} else {
			t.Warn("stop_signal", "", fmt.Sprintf("Kubernetes sends SIGTERM, not SIG%s: put STOPSIGNAL SIG%s in the Dockerfile (the container runtime honours it) or make the app stop cleanly on SIGTERM", sig, sig))
		}
	}

	// Labels.
	cv.labels(t, "labels", sc.Labels)
	if sc.Deploy != nil {
		cv.labels(t, "deploy.labels", sc.Deploy.Labels)
	}

	// Platform.
	if sc.Platform != "" {
		os, arch, _ := strings.Cut(sc.Platform, "/")
		arch, _, _ = strings.Cut(arch, "/")
		p := cv.placement()
		switch arch {
		case "amd64", "arm64":
			p.Architecture = arch
		case "aarch64":
			p.Architecture = "arm64"
		case "x86_64":
			p.Architecture = "amd64"
		}
		if os == "linux" || os == "windows" {
			p.OS = os
		}
		if p.Architecture == "" && arch != "" {
			t.Warn("platform", "", fmt.Sprintf("architecture %q has no node pool in the chart; pods go to any node", arch))
		} else {
			t.Mapped("platform", "nodeSelector kubernetes.io/os, kubernetes.io/arch")
		}
	}

	cv.networking(t, sc)
	cv.dropped(t, sc)
	// compose-go has merged extends (and cleared it) by now.
	if t.Has("extends") {
		from := "the extended service"
		for _, it := range t.items("extends") {
			if it.key != nil && it.key.Value == "service" || it.key == nil {
				from = "service " + it.val.Value
			}
		}
		t.Mapped("extends", "merged from "+from+" by compose")
	}
	t.Use("profiles")
	if len(sc.Profiles) > 0 {
		t.Mapped("profiles", "converted: profile enabled")
	}
}

// preStopSleep is the preStop sleep of a server, long enough for the
// AWS load balancer controller and kube-proxy to take the pod out.
const preStopSleep = 5

func fieldOr(t *ftrack, a, b string) string {
	if t.Has(a) {
		return a
	}
	return b
}

func (cv *conv) placement() *service.Placement {
	if cv.svc.Placement == nil {
		cv.svc.Placement = &service.Placement{}
	}
	return cv.svc.Placement
}

// deploy maps the deploy: section (swarm's, honoured in part by compose).
func (cv *conv) deploy(t *ftrack, sc types.ServiceConfig) {
	d := sc.Deploy
	if d == nil {
		return
	}
	switch d.Mode {
	case "", "replicated":
		if t.Has("deploy.mode") {
			t.Mapped("deploy.mode", "Deployment")
		}
	case "global":
		t.Warn("deploy.mode", "Deployment", "global mode ran one task per node: Kubernetes would use a DaemonSet; cutover makes a Deployment (set replicas, or render a DaemonSet by hand)")
	case "replicated-job", "global-job":
		t.Mapped("deploy.mode", "Job")
	}
	if rp := d.RestartPolicy; rp != nil {
		t.At("deploy.restart_policy").Use("")
		switch rp.Condition {
		case "none":
			t.Mapped("deploy.restart_policy.condition", "Job (never restarted)")
		case "on-failure":
			if cv.svc.Kind == service.KindJob {
				t.Mapped("deploy.restart_policy.condition", "Job restartPolicy OnFailure")
			} else {
				t.Warn("deploy.restart_policy.condition", "Deployment", "a Deployment restarts containers on any exit, also a clean one")
			}
		case "any", "":
			if t.Has("deploy.restart_policy.condition") {
				t.Mapped("deploy.restart_policy.condition", "restartPolicy Always")
			}
		}
		if t.Has("deploy.restart_policy.delay") {
			t.Drop("deploy.restart_policy.delay", "the kubelet restarts with its own exponential back-off (10s up to 5m)")
		}
		if t.Has("deploy.restart_policy.max_attempts") {
			t.Drop("deploy.restart_policy.max_attempts", "a Deployment restarts without limit; a Job's backoffLimit (default 6) bounds its retries")
		}
		if t.Has("deploy.restart_policy.window") {
			t.Drop("deploy.restart_policy.window", "no Kubernetes counterpart")
		}
	}
	if u := d.UpdateConfig; u != nil {
		cv.rollout(t, u)
	}
	if t.Has("deploy.rollback_config") {
		t.Drop("deploy.rollback_config", "Kubernetes does not roll back by itself: `cutover shift` watches the new version and shifts traffic back when it breaks its SLOs")
	}
	p := d.Placement
	for i, c := range p.Constraints {
		field := fmt.Sprintf("deploy.placement.constraints[%d]", i)
		k, v, ok := strings.Cut(strings.ReplaceAll(c, " ", ""), "==")
		switch {
		case ok && (k == "node.platform.arch"):
			arch := map[string]string{"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}[v]
			if arch != "" {
				cv.placement().Architecture = arch
				t.Mapped(field, "nodeSelector kubernetes.io/arch="+arch)
				continue
			}
		case ok && k == "node.platform.os":
			if v == "linux" || v == "windows" {
				cv.placement().OS = v
				t.Mapped(field, "nodeSelector kubernetes.io/os="+v)
				continue
			}
		}
		t.Drop(field, fmt.Sprintf("swarm constraint %q: pin pods with a nodeSelector or affinity on node labels by hand", c))
	}
	if len(p.Preferences) > 0 {
		t.Drop("deploy.placement.preferences", "the chart spreads pods across zones and nodes (topologySpreadConstraints) already")
	}
	if p.MaxReplicas > 0 {
		t.Warn("deploy.placement.max_replicas_per_node", "topologySpreadConstraints", "the chart spreads pods across nodes (maxSkew 1) rather than capping them per node")
	}
	if t.Has("deploy.endpoint_mode") {
		t.Drop("deploy.endpoint_mode", "a Kubernetes Service balances across pods (vip); for dnsrr make the Service headless by hand")
	}
}

// rollout maps update_config: parallelism tasks at a time, stopping old
// ones first (swarm's default) or starting new ones first.
func (cv *conv) rollout(t *ftrack, u *types.UpdateConfig) {
	replicas := int32(1)
	if cv.svc.Replicas != nil && *cv.svc.Replicas > 0 {
		replicas = *cv.svc.Replicas
	}
	par := int32(1)
	if u.Parallelism != nil {
		par = int32(*u.Parallelism)
		if *u.Parallelism == 0 || *u.Parallelism > uint64(replicas) {
			par = replicas // 0 means all at once
		}
	}
	// Kubernetes rounds maxSurge up and maxUnavailable down: pick the
	// percentage that gives back exactly par pods for this replica count.
	r := &service.Rollout{}
	pct := int32(math.Ceil(float64(par) * 100 / float64(replicas)))
	if u.Order == "start-first" {
		pct = int32(math.Floor(float64(par) * 100 / float64(replicas)))
		if pct < 1 {
			pct = 1
		}
		r.MaxSurgePercent = pct
	} else {
		r.MaxUnavailablePercent = pct
	}
	cv.svc.Rollout = r
	how := fmt.Sprintf("maxUnavailable %d%%, maxSurge 0", pct)
	if u.Order == "start-first" {
		how = fmt.Sprintf("maxSurge %d%%, maxUnavailable 0", pct)
	}
	if t.Has("deploy.update_config.parallelism") {
		t.Mapped("deploy.update_config.parallelism", "strategy.rollingUpdate "+how)
	}
	if t.Has("deploy.update_config.order") {
		t.Mapped("deploy.update_config.order", "strategy.rollingUpdate "+how)
	}
	if !t.Has("deploy.update_config.parallelism") && !t.Has("deploy.update_config.order") {
		t.Use("deploy.update_config")
	}
	if t.Has("deploy.update_config.delay") {
		t.Warn("deploy.update_config.delay", "minReadySeconds", "Kubernetes waits minReadySeconds after a pod is ready rather than a delay between batches; set it in values if needed")
	}
	if t.Has("deploy.update_config.failure_action") {
		t.Warn("deploy.update_config.failure_action", "progressDeadlineSeconds", "a stuck rollout is marked failed, not paused or rolled back; `cutover shift` rolls traffic back on SLO breach")
	}
	if t.Has("deploy.update_config.monitor") {
		t.Drop("deploy.update_config.monitor", "readiness probes gate each pod instead")
	}
	if t.Has("deploy.update_config.max_failure_ratio") {
		t.Drop("deploy.update_config.max_failure_ratio", "no Kubernetes counterpart")
	}
}

// dependsOn maps depends_on: Kubernetes starts workloads independently.
func (cv *conv) dependsOn(t *ftrack, name string, sc types.ServiceConfig) {
	deps := make([]string, 0, len(sc.DependsOn))
	for d := range sc.DependsOn {
		deps = append(deps, d)
	}
	sort.Strings(deps)
	paths, _ := t.keyed("depends_on", entryKey)
	implied := impliedDeps(sc)
	for _, dep := range deps {
		d := sc.DependsOn[dep]
		it, found := paths[dep]
		if !found && implied[dep] {
			// Not written: compose-go added it for a link, a shared
			// namespace or volumes_from, which have rows of their own.
			continue
		}
		tr, field := t.at(it, found, "depends_on")
		_, enabled := cv.pr.p.Services[dep]
		switch {
		case !enabled:
			tr.Drop(field, fmt.Sprintf("%s is not converted (profile not enabled, or optional): nothing to wait for", dep))
		case d.Condition == types.ServiceConditionCompletedSuccessfully && cv.pr.oneShot(dep):
			cv.initContainer(tr, field, dep)
		case d.Condition == types.ServiceConditionCompletedSuccessfully:
			tr.Warn(field, "", fmt.Sprintf("%s keeps running, so it cannot be an init container: Kubernetes has no ordering between workloads; the app must wait for %s itself", dep, dep))
		case d.Condition == types.ServiceConditionHealthy:
			tr.Warn(field, service.SanitizeName(dep)+" readinessProbe", fmt.Sprintf("Kubernetes has no ordering between workloads: %s gets traffic only when its readiness probe passes, but this service may start first and must retry until %s answers", dep, dep))
		default:
			tr.Drop(field, fmt.Sprintf("Kubernetes starts workloads independently: the app must retry until %s answers", dep))
		}
		if d.Restart {
			t.Use("depends_on." + dep + ".restart")
		}
	}
	if len(deps) == 0 {
		t.Use("depends_on")
	}
}

// impliedDeps returns the services compose-go adds to a service's
// depends_on without the file saying so: those it links to, shares a
// namespace with (network_mode: service:X, and ipc, pid, uts, cgroup) or
// takes volumes from.
func impliedDeps(sc types.ServiceConfig) map[string]bool {
	out := map[string]bool{}
	for _, l := range sc.Links {
		name, _, _ := strings.Cut(l, ":")
		out[name] = true
	}
	for _, ns := range []string{sc.NetworkMode, sc.Ipc, sc.Pid, sc.Uts, sc.Cgroup} {
		if name, ok := strings.CutPrefix(ns, types.ServicePrefix); ok {
			out[name] = true
		}
	}
	for _, v := range sc.VolumesFrom {
		if !strings.HasPrefix(v, types.ContainerPrefix) {
			name, _, _ := strings.Cut(v, ":")
			out[name] = true
		}
	}
	return out
}

// initContainer runs a one-shot dependency before this service's
// containers.
func (cv *conv) initContainer(t reporter, field, dep string) {
	dc := cv.pr.p.Services[dep]
	dt := cv.root.At("services." + dep)
	cv.finish["services."+dep] = true
	c := cv.container(dt, dep, dc, false)
	cv.svc.InitContainers = append(cv.svc.InitContainers, c)
	t.Warn(field, "initContainers["+c.Name+"]", fmt.Sprintf("%s runs before every pod of this service starts (each replica, each restart): it must be idempotent and safe to run concurrently; for migrations consider a Helm pre-upgrade hook Job", dep))
	dt.Use("restart")
	for _, it := range dt.items("deploy") {
		if it.key != nil && it.key.Value != "resources" {
			dt.in(it.file).Drop(it.path, "an init container has no deploy settings of its own")
		}
	}
	for _, f := range []string{"ports", "expose", "healthcheck", "labels", "profiles", "stop_grace_period", "container_name"} {
		if dt.Has(f) {
			dt.Drop(f, "not used: "+dep+" runs as an init container of "+cv.svc.Name)
		}
	}
	if dt.Has("depends_on") {
		dt.Drop("depends_on", "as an init container, "+dep+" must itself retry until its dependencies answer")
	}
}

// omittedFindings reports fields interpolation left out under prefix.
func (cv *conv) omittedFindings(prefix string) {
	for _, o := range cv.pr.ip.omitted {
		if o.Path != prefix && !strings.HasPrefix(o.Path, prefix+".") && !strings.HasPrefix(o.Path, prefix+"[") {
			continue
		}
		for i, f := range cv.pr.files {
			if f.Path == o.File && o.Kept != "" {
				cv.root.in(i).Warn(o.Path, "containerPort "+o.Kept, fmt.Sprintf("%q publishes on a host port from %s, which is not set: the container port was kept (a Service port inside the cluster); the host port has no meaning on Kubernetes", o.Raw, varList(o.Vars)))
				continue
			}
			if f.Path == o.File {
				cv.root.in(i).Warn(o.Path, "", fmt.Sprintf("%q uses %s, which is not set: the field was left out; set %s %s", o.Raw, varList(o.Vars), varList(o.Vars), setVarAdvice))
			}
		}
	}
}

func varList(vars []string) string {
	out := make([]string, len(vars))
	for i, v := range vars {
		out[i] = "$" + v
	}
	return strings.Join(out, ", ")
}

// projectFindings reports, in the first service's report, what belongs to
// no one service: top-level keys, services left out by profile or run as
// init containers, unused volumes and networks.
func (pr *project) projectFindings(svc *service.Service, inits map[string][]string) {
	t := pr.track(&svc.Report)
	t.Use("services")
	disabled := make([]string, 0, len(pr.p.DisabledServices))
	for n := range pr.p.DisabledServices {
		disabled = append(disabled, n)
	}
	sort.Strings(disabled)
	for _, n := range disabled {
		s := pr.p.DisabledServices[n]
		t.Drop("services."+n, fmt.Sprintf("in profile %s, which is not enabled: not converted (enable it with --profile)", strings.Join(s.Profiles, ", ")))
	}
	inNames := make([]string, 0, len(inits))
	for n := range inits {
		inNames = append(inNames, n)
	}
	sort.Strings(inNames)
	for _, n := range inNames {
		users := inits[n]
		sort.Strings(users)
		t.Mapped("services."+n, "init container of "+strings.Join(sanitizeAll(users), ", "))
	}
	if t.Has("version") {
		t.Drop("version", "obsolete in the compose specification; ignored")
	}
	if t.Has("name") {
		t.Mapped("name", "project name "+pr.name+" (prefix of proposed secret names)")
	}
	if t.Has("include") {
		t.Mapped("include", "merged by compose")
	}
	for i, f := range pr.files {
		for _, kv := range source.MapEntries(f.root) {
			k := kv[0].Value
			if strings.HasPrefix(k, "x-") {
				if f.derived {
					// Reported with the file it was taken from.
					t.in(i).Use(k)
					continue
				}
				t.in(i).Mapped(k, "extension: merged where YAML anchors use it")
			}
		}
	}
	used := map[string]bool{}
	for _, s := range pr.p.Services {
		for _, v := range s.Volumes {
			if v.Type == types.VolumeTypeVolume {
				used["volumes."+v.Source] = true
			}
		}
		for _, s := range s.Secrets {
			used["secrets."+s.Source] = true
		}
		for _, c := range s.Configs {
			used["configs."+c.Source] = true
		}
		for n := range s.Networks {
			used["networks."+n] = true
		}
	}
	for _, kind := range []string{"volumes", "secrets", "configs", "networks"} {
		for _, it := range t.items(kind) {
			if it.key == nil {
				continue
			}
			p := kind + "." + it.key.Value
			if nw, ok := pr.p.Networks[it.key.Value]; ok && kind == "networks" && used[p] && bool(nw.External) {
				// Services of other compose projects (a shared proxy)
				// reached these services through it.
				name := nw.Name
				if name == "" {
					name = it.key.Value
				}
				t.in(it.file).Warn(p, "NetworkPolicy", fmt.Sprintf("external network %s, shared with containers outside this file: on Kubernetes they reach these services through their Services (from another namespace, <service>.<namespace>.svc); allow them in the NetworkPolicies", name))
				continue
			}
			if used[p] {
				t.in(it.file).Use(p)
				continue
			}
			if kind == "networks" {
				t.in(it.file).Drop(p, "network not used by a converted service")
				continue
			}
			t.in(it.file).Drop(p, "not used by a converted service")
		}
	}
	t.Finish()
}

func sanitizeAll(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = service.SanitizeName(n)
	}
	return out
}

func durationSeconds(d types.Duration) float64 {
	return float64(d) / 1e9
}

// displayPath is how a file next to the compose file is named in the
// report: relative to where the user named the compose file.
func (pr *project) displayPath(abs string) string {
	absDir, err := filepath.Abs(pr.dir)
	if err != nil {
		return abs
	}
	rel, err := filepath.Rel(absDir, abs)
	if err != nil {
		return abs
	}
	// A path that climbs to the root (/srv/data) reads better absolute.
	ups := strings.Count(rel+"/", "../")
	if ups > 0 && ups >= strings.Count(absDir, string(filepath.Separator)) {
		return abs
	}
	return filepath.Join(pr.dir, rel)
}

// inProject reports whether abs lies inside the compose file's directory.
func (pr *project) inProject(abs string) bool {
	absDir, err := filepath.Abs(pr.dir)
	if err != nil {
		return false
	}
	rel, err := filepath.Rel(absDir, abs)
	return err == nil && !strings.HasPrefix(rel, "..")
}

func fileExists(p string) (os.FileInfo, bool) {
	st, err := os.Stat(p)
	return st, err == nil
}

func absPath(p string) (string, error) { return filepath.Abs(p) }

func joinDir(dir, p string) string { return filepath.Join(dir, p) }
