package ecs

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/cutoverhq/cutover/service"
	"github.com/cutoverhq/cutover/source"
)

// mapper turns one task definition, with the ECS service that runs it and
// that service's target groups and scaling resources, into one Service.
// Each step reads its part of the input and reports every field it
// touches; run finishes the trackers so that nothing goes unreported.
type mapper struct {
	td  *tdDoc
	sd  *svcDoc // nil for a task definition no service runs
	svc *service.Service

	root *source.Tracker // the task definition file, from its root
	t    *source.Tracker // the task definition itself
	st   *source.Tracker // the ECS service; nil without one

	tgs   []*tgDoc
	pols  []*policyDoc
	tgts  []*targetDoc
	aux   []*source.Tracker // trackers of matched auxiliary entries
	byFam bool              // scaling matched by family name, not by service

	// present indexes, per file, the paths that hold a value.
	present map[*source.Positions]map[string]bool
	// blank indexes, per file, the objects with only zero values.
	blank map[*source.Positions]map[string]bool
	// skipped are the paths skeletonContainers left out.
	skipped map[string]bool

	cs   []*cinfo
	app  *cinfo
	vols map[string]string // ECS volume name → pod volume name
	// portNames are the port names given so far, unique in the pod.
	portNames map[string]bool

	// Results a later step needs.
	taskCPU, taskMem int64 // units and MiB; 0 when not said
	expose           *service.Expose
	readinessTG      *tgDoc // the target group whose check is the readiness probe
	desired          *int32
	// desiredDefault is set when desired is the default of a
	// desiredCount the service does not set.
	desiredDefault bool
}

// role says where a container goes in the pod.
type role int

const (
	roleMain role = iota
	roleSidecar
	roleInit
	// roleDropped is a FireLens log router: on Kubernetes the cluster's
	// node-level log agent collects stdout, so it is not carried over.
	roleDropped
)

// cinfo is one container definition and what it becomes.
type cinfo struct {
	idx  int
	def  *containerDef
	t    *source.Tracker
	raw  string // the ECS name
	name string // the Kubernetes name
	role role
	// target is where its fields go, for the report: "containers[app]".
	target string
	out    service.Container
	// deps are the containers this one waits for, by index.
	deps []int
	// healthyGate is set when another container waits for it to be
	// HEALTHY: its health check becomes a startup probe.
	healthyGate bool
	wantInit    bool
	wantSidecar bool
	essential   bool
	// ports are its port mappings that became container ports.
	ports []portRow
}

func newMapper(in *inputs, td *tdDoc, sd *svcDoc) *mapper {
	svc := &service.Service{Origin: service.Origin{Format: "ecs"}}
	m := &mapper{td: td, sd: sd, svc: svc, vols: map[string]string{}, present: in.present, blank: in.blank}
	base := source.NewTracker(td.path, td.pos, &svc.Report)
	m.root = base.At(td.root)
	m.t = base.At(td.prefix)
	if sd != nil {
		m.st = source.NewTracker(sd.path, sd.pos, &svc.Report).At(sd.prefix)
		for _, n := range sd.unresolved {
			m.st.Drop(n.field, n.msg)
		}
		st := source.NewTracker(sd.path, sd.pos, &svc.Report)
		for _, n := range sd.attrs {
			st.Drop(n.field, n.msg)
		}
	}
	for _, n := range td.attrs {
		base.Drop(n.field, n.msg)
	}
	for _, n := range td.others {
		base.DropForeign(n.field, n.msg)
	}
	named := td.named
	if sd != nil {
		named = sd.named
	}
	if named != nil {
		base.Warn(named.field, "metadata.name", named.msg)
	}
	for _, n := range td.unresolved {
		m.t.Drop(n.field, n.msg)
	}
	return m
}

// attach finds the target groups and scaling resources of this service.
func (m *mapper) attach(in *inputs) {
	if m.sd != nil {
		for _, lb := range m.sd.s.LoadBalancers {
			for _, tg := range in.tgs {
				if lb.TargetGroupArn != "" && tg.tg.TargetGroupArn == lb.TargetGroupArn && !contains(m.tgs, tg) {
					m.tgs = append(m.tgs, tg)
					tg.matched = true
				}
			}
		}
	}
	match := func(resourceID string) bool {
		if m.sd != nil {
			name := m.sd.s.ServiceName
			return resourceID == "service/"+m.sd.cluster+"/"+name
		}
		// Without an ECS service, scaling resources name a service the
		// input does not hold; by convention it is often named after the
		// family. The mapper warns that the match is by name.
		parts := strings.Split(resourceID, "/")
		return len(parts) == 3 && parts[0] == "service" && parts[2] == m.td.td.Family && m.td.td.Family != ""
	}
	for _, p := range in.policies {
		if dimensionOK(p.p.ScalableDimension) && match(p.p.ResourceID) {
			m.pols = append(m.pols, p)
			p.matched = true
		}
	}
	for _, t := range in.targets {
		if dimensionOK(t.t.ScalableDimension) && match(t.t.ResourceID) {
			m.tgts = append(m.tgts, t)
			t.matched = true
		}
	}
	m.byFam = m.sd == nil && (len(m.pols) > 0 || len(m.tgts) > 0)
}

func dimensionOK(d string) bool { return d == "" || d == "ecs:service:DesiredCount" }

func contains[T comparable](list []T, x T) bool {
	for _, e := range list {
		if e == x {
			return true
		}
	}
	return false
}

// run maps everything and returns the validated Service.
func (m *mapper) run() (*service.Service, error) {
	steps := []func() error{
		m.identity,
		m.skeletonEntries,
		m.skeletonContainers,
		m.templatedNumbers,
		m.prepareContainers,
		m.volumes,
		m.mapContainers,
		m.resources,
		m.taskLevel,
		m.ecsService,
		m.loadBalancing,
		m.scaling,
		m.finish,
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, err
		}
	}
	m.unknownFields()
	m.root.Finish()
	if m.st != nil {
		m.st.Finish()
	}
	for _, t := range m.aux {
		t.Finish()
	}
	if err := m.svc.Validate(); err != nil {
		return nil, err
	}
	return m.svc, nil
}

// rootDrops are fields beside describe-task-definition's taskDefinition
// that are not configuration, and why.
var rootDrops = []struct{ field, why string }{
	{"ResponseMetadata", "the API response's own metadata (request id, HTTP status), as boto3 and the SDKs print it"},
}

// unknownFields warns of each top-level field of the task definition, of
// the file around it and of the ECS service that no step knew: a field
// ECS added since, or one misspelt or misplaced. It is not converted, and
// never a reason to refuse the file; the report names it and its line.
func (m *mapper) unknownFields() {
	const why = "cutover does not know this field (a field ECS added since, or a misspelt or misplaced one): nothing of it is converted; check whether it matters"
	warn := func(t *source.Tracker) {
		for _, k := range m.childKeys(t) {
			if !t.Reported(k) {
				t.Warn(k, "", why)
			}
		}
	}
	if !m.td.bare {
		warn(m.t)
		if m.root.Prefix != m.t.Prefix {
			for _, d := range rootDrops {
				m.dropIf(m.root, d.field, d.why)
			}
			warn(m.root)
		}
	}
	if m.st != nil {
		warn(m.st)
	}
}

// inputErr builds an InputError for a field under t.
func inputErr(t *source.Tracker, field, format string, args ...any) error {
	return &source.InputError{File: t.File, Line: t.Line(field), Field: source.JoinPath(t.Prefix, field), Err: fmt.Errorf(format, args...)}
}

// dropIf reports field as dropped, with why, when the input gave it a value.
func (m *mapper) dropIf(t *source.Tracker, field, why string) {
	if m.has(t, field) {
		t.Drop(field, why)
	}
}

// childKeys returns the keys directly under t's path that hold a value,
// sorted.
func (m *mapper) childKeys(t *source.Tracker) []string {
	prefix := ""
	if t.Prefix != "" {
		prefix = t.Prefix + "."
	}
	var out []string
	for p := range m.present[t.Pos] {
		if rest, ok := strings.CutPrefix(p, prefix); ok && !strings.ContainsAny(rest, ".[") {
			out = append(out, rest)
		}
	}
	sort.Strings(out)
	return out
}

// has reports whether the input gave field (under t) a non-null,
// non-empty value, or any such value below it. It answers what
// Tracker.Has answers, from an index built once per file: Tracker.Has
// scans every leaf of the file on each call.
func (m *mapper) has(t *source.Tracker, field string) bool {
	return m.present[t.Pos][source.JoinPath(t.Prefix, field)]
}

// identity names the service and records where it came from.
func (m *mapper) identity() error {
	td := m.td.td
	files := []string{m.td.path}
	addFile := func(p string) {
		if !contains(files, p) {
			files = append(files, p)
		}
	}
	if m.sd != nil {
		addFile(m.sd.path)
	}
	for _, tg := range m.tgs {
		addFile(tg.path)
	}
	for _, t := range m.tgts {
		addFile(t.path)
	}
	for _, p := range m.pols {
		addFile(p.path)
	}
	m.svc.Origin.Files = files

	m.metadata(m.t, "taskDefinitionArn", td.TaskDefinitionArn.bad, "an ARN")
	m.metadata(m.t, "revision", m.td.badRevision, "a whole number")

	var name, field string
	var t *source.Tracker
	switch {
	case m.sd != nil && strings.TrimSpace(m.sd.s.ServiceName) != "":
		name, field, t = m.sd.s.ServiceName, "serviceName", m.st
		if td.Family != "" {
			m.t.Use("family")
		}
		if !m.st.Holds(field) {
			// A template's service without ServiceName: named says where
			// the name came from.
			m.svc.Name = service.SanitizeName(name)
			m.st.Use(field)
			t = nil
		}
	case hasPlaceholder(td.Family) && listName(td.ContainerDefinitions) >= 0:
		// An unrendered template: the application's container names the
		// service better than the variable's name.
		name = strings.TrimSpace(td.ContainerDefinitions[listName(td.ContainerDefinitions)].Name)
		m.svc.Name = service.SanitizeName(name)
		m.t.Warn("family", "metadata.name", fmt.Sprintf("the family is the template variable %s: the service is named %q after its container", td.Family, m.svc.Name))
	case td.Family != "":
		name, field, t = td.Family, "family", m.t
	case m.td.bare && listName(td.ContainerDefinitions) >= 0:
		// Terraform keeps container definitions in files named after
		// their role (service.json, app.json.tpl); the application's
		// container names the service better.
		i := listName(td.ContainerDefinitions)
		name = strings.TrimSpace(td.ContainerDefinitions[i].Name)
		m.svc.Name = service.SanitizeName(name)
		m.t.Warn(fmt.Sprintf("[%d].name", i), "metadata.name", fmt.Sprintf("a list of container definitions has no family: the service is named %q after its container", m.svc.Name))
	default:
		name = fileBase(m.td.path)
		m.svc.Name = service.SanitizeName(name)
		if m.td.bare {
			m.t.Warn("[0].name", "metadata.name", fmt.Sprintf("a list of container definitions has no family, and no container a usable name: the service is named %q after the file", m.svc.Name))
		} else {
			m.t.Warn("family", "metadata.name", fmt.Sprintf("no family: the service is named %q after the file", m.svc.Name))
		}
	}
	if t != nil {
		m.svc.Name = service.SanitizeName(name)
		if m.svc.Name != name {
			t.Warn(field, "metadata.name", fmt.Sprintf("renamed to %q: Kubernetes names are DNS-1123 labels", m.svc.Name))
		} else {
			t.Mapped(field, "metadata.name")
		}
	}
	if m.sd != nil {
		m.metadata(m.st, "serviceArn", m.sd.s.ServiceArn.bad, "an ARN")
		m.metadata(m.st, "clusterArn", m.sd.s.ClusterArn.bad, "an ARN")
		m.st.Use("cluster")
		ref, _ := parseTaskDefRef(m.sd.s.TaskDefinition)
		switch {
		case !hasPlaceholder(m.sd.s.TaskDefinition) && ref.Family != td.Family:
			m.st.Warn("taskDefinition", "", fmt.Sprintf("the input holds no task definition of family %s: joined with the only one without a family, %s", ref.Family, m.td.path))
		case hasPlaceholder(m.sd.s.TaskDefinition):
			m.st.Warn("taskDefinition", "", fmt.Sprintf("the placeholder %s stands for the task definition a pipeline registers: joined with the only one in the input, %s (%s%s)", m.sd.s.TaskDefinition, m.td.path, td.Family, suffix(":", td.Revision.raw)))
		case ref.Revision != "" && td.Revision.set && ref.Revision != td.Revision.raw:
			m.st.Warn("taskDefinition", "", fmt.Sprintf("the service runs revision %s; the input holds revision %s of %s, which is what was converted", ref.Revision, td.Revision.raw, td.Family))
		default:
			m.st.Mapped("taskDefinition", fmt.Sprintf("joins %s (%s%s)", m.td.path, td.Family, suffix(":", td.Revision.raw)))
		}
	}
	return nil
}

// metadata covers a field AWS assigns that only names what the report
// already names (an ARN, the revision): no row of its own, unless it held
// bad, a JSON kind other than want, which is reported and ignored.
func (m *mapper) metadata(t *source.Tracker, field, bad, want string) {
	if bad == "" {
		t.Use(field)
		return
	}
	t.Drop(field, fmt.Sprintf("metadata AWS assigns, ignored: want %s, found %s", want, bad))
}

// listName picks the container that names a service read from a bare
// list of container definitions: the first one with a name that is not a
// log router; -1 when there is none.
func listName(defs []containerDef) int {
	for i, d := range defs {
		fl := strings.TrimSpace(string(d.FirelensConfiguration))
		if strings.TrimSpace(d.Name) != "" && !hasPlaceholder(d.Name) && (fl == "" || fl == "null") {
			return i
		}
	}
	return -1
}

// prepareContainers checks the containers, picks the application, and
// decides which become init containers, sidecars or main containers.
func (m *mapper) prepareContainers() error {
	defs := m.td.td.ContainerDefinitions
	if len(defs) == 0 {
		return inputErr(m.t, "containerDefinitions", "the task definition has no containers")
	}
	byRaw := map[string]*cinfo{}
	byName := map[string]*cinfo{}
	for i := range defs {
		d := &defs[i]
		t := m.t.At(m.td.containerPath(i))
		raw := strings.TrimSpace(d.Name)
		if raw == "" {
			return inputErr(t, "name", "the container has no name")
		}
		if prev, dup := byRaw[raw]; dup {
			return inputErr(t, "name", "two containers named %q (the other is containerDefinitions[%d])", raw, prev.idx)
		}
		c := &cinfo{idx: i, def: d, t: t, raw: raw, name: service.SanitizeName(raw), essential: d.Essential == nil || *d.Essential}
		if prev, dup := byName[c.name]; dup {
			return inputErr(t, "name", "containers %q and %q would both be named %q on Kubernetes: rename one", prev.raw, raw, c.name)
		}
		byRaw[raw], byName[c.name] = c, c
		m.cs = append(m.cs, c)
	}

	// Containers others wait for are helpers (proxies, migrations), not
	// the application.
	dependedOn := map[string]bool{}
	for _, c := range m.cs {
		for _, dep := range c.def.DependsOn {
			dependedOn[strings.TrimSpace(dep.ContainerName)] = true
		}
	}

	// The application is the container the load balancer sends traffic
	// to; without one, the first essential container nobody waits for,
	// preferring one with ports.
	if m.sd != nil {
		for j, lb := range m.sd.s.LoadBalancers {
			if lb.ContainerName == "" {
				continue
			}
			c, ok := byRaw[lb.ContainerName]
			if !ok {
				return inputErr(m.st, fmt.Sprintf("loadBalancers[%d].containerName", j), "no container named %q in task definition %s", lb.ContainerName, m.td.td.Family)
			}
			if m.app == nil {
				m.app = c
			}
		}
	}
	firelens := func(c *cinfo) bool {
		r := strings.TrimSpace(string(c.def.FirelensConfiguration))
		return r != "" && r != "null"
	}
	pick := func(ok func(*cinfo) bool) {
		for _, c := range m.cs {
			if m.app == nil && ok(c) {
				m.app = c
			}
		}
	}
	pick(func(c *cinfo) bool {
		return c.essential && !dependedOn[c.raw] && len(c.def.PortMappings) > 0 && !firelens(c)
	})
	pick(func(c *cinfo) bool { return c.essential && !dependedOn[c.raw] && !firelens(c) })
	pick(func(c *cinfo) bool { return c.essential && !firelens(c) })
	pick(func(c *cinfo) bool { return !firelens(c) })
	pick(func(c *cinfo) bool { return true })
	for _, c := range m.cs {
		if c != m.app && firelens(c) {
			c.role = roleDropped
		}
	}

	// dependsOn: COMPLETE and SUCCESS targets run to completion first
	// (init containers); START and HEALTHY targets keep running beside the
	// app (sidecars, which Kubernetes starts before the main containers).
	for _, c := range m.cs {
		if c.role == roleDropped {
			continue
		}
		for j, dep := range c.def.DependsOn {
			f := fmt.Sprintf("dependsOn[%d]", j)
			if m.skip(c.t, f) {
				continue
			}
			target, ok := byRaw[strings.TrimSpace(dep.ContainerName)]
			if !ok {
				return inputErr(c.t, f+".containerName", "no container named %q in the task definition", dep.ContainerName)
			}
			if target == c {
				return inputErr(c.t, f+".containerName", "container %q depends on itself", c.raw)
			}
			cond := strings.ToUpper(strings.TrimSpace(dep.Condition))
			switch cond {
			case "COMPLETE", "SUCCESS":
				target.wantInit = true
			case "START":
				target.wantSidecar = true
			case "HEALTHY":
				target.wantSidecar = true
				target.healthyGate = true
			case "":
				return inputErr(c.t, f+".condition", "no condition: want START, COMPLETE, SUCCESS or HEALTHY")
			default:
				return inputErr(c.t, f+".condition", "unknown condition %q: want START, COMPLETE, SUCCESS or HEALTHY", dep.Condition)
			}
			if target.role != roleDropped {
				c.deps = append(c.deps, target.idx)
			}
		}
	}
	for _, c := range m.cs {
		switch {
		case c.role == roleDropped || c == m.app:
		case c.wantInit:
			c.role = roleInit
		case c.wantSidecar || !c.essential:
			c.role = roleSidecar
		default:
			c.role = roleMain
		}
		switch c.role {
		case roleMain:
			c.target = "containers[" + c.name + "]"
		case roleSidecar:
			c.target = "sidecars[" + c.name + "]"
		case roleInit:
			c.target = "initContainers[" + c.name + "]"
		}
	}
	if err := m.checkCycles(); err != nil {
		return err
	}
	m.reportDeps()
	return nil
}

// checkCycles refuses a dependsOn cycle, which ECS refuses too.
func (m *mapper) checkCycles() error {
	state := make([]int, len(m.cs)) // 0 new, 1 visiting, 2 done
	var visit func(i int) error
	visit = func(i int) error {
		switch state[i] {
		case 1:
			c := m.cs[i]
			return inputErr(c.t, "dependsOn", "container %q is part of a dependsOn cycle", c.raw)
		case 2:
			return nil
		}
		state[i] = 1
		for _, d := range m.cs[i].deps {
			if err := visit(d); err != nil {
				return err
			}
		}
		state[i] = 2
		return nil
	}
	for i := range m.cs {
		if err := visit(i); err != nil {
			return err
		}
	}
	return nil
}

// reportDeps says what became of each dependsOn entry.
func (m *mapper) reportDeps() {
	byRaw := map[string]*cinfo{}
	for _, c := range m.cs {
		byRaw[c.raw] = c
	}
	for _, c := range m.cs {
		if c.role == roleDropped {
			continue
		}
		for j, dep := range c.def.DependsOn {
			f := fmt.Sprintf("dependsOn[%d]", j)
			if m.skip(c.t, f) {
				continue
			}
			target := byRaw[strings.TrimSpace(dep.ContainerName)]
			cond := strings.ToUpper(strings.TrimSpace(dep.Condition))
			switch {
			case target.role == roleDropped:
				c.t.Drop(f, fmt.Sprintf("%s is a FireLens log router, which is not carried over", target.raw))
			case target == m.app:
				c.t.Warn(f, c.target, fmt.Sprintf("Kubernetes starts %s before or beside the app container %s and cannot make it wait for %s %s: make %s retry until %s is ready",
					c.name, target.name, target.name, cond, c.name, target.name))
			case cond == "COMPLETE" && target.role == roleInit:
				c.t.Warn(f, target.target, fmt.Sprintf("%s runs to completion first; ECS COMPLETE accepted any exit code, a Kubernetes init container must exit 0", target.name))
			case cond == "SUCCESS" && target.role == roleInit:
				c.t.Mapped(f, target.target)
			case target.role == roleInit:
				c.t.Warn(f, target.target, fmt.Sprintf("another container needs %s to complete, so it runs to completion before the app; %s would only wait for it to %s", target.name, c.name, strings.ToLower(cond)))
			case cond == "HEALTHY" && target.def.HealthCheck == nil:
				c.t.Warn(f, target.target, fmt.Sprintf("%s starts first, but has no health check to wait for", target.name))
			case cond == "HEALTHY":
				c.t.Mapped(f, target.target+".startupProbe")
			case c.role == roleInit && target.role == roleSidecar:
				c.t.Warn(f, target.target, fmt.Sprintf("check that the chart starts sidecar %s before init container %s: both are init containers on Kubernetes and run in list order", target.name, c.name))
			default:
				c.t.Mapped(f, target.target)
			}
		}
	}
}

// ordered returns the containers of a role, dependencies first, input
// order otherwise.
func (m *mapper) ordered(r role) []*cinfo {
	var out []*cinfo
	done := map[int]bool{}
	var visit func(c *cinfo)
	visit = func(c *cinfo) {
		if done[c.idx] {
			return
		}
		done[c.idx] = true
		for _, d := range c.deps {
			if m.cs[d].role == r {
				visit(m.cs[d])
			}
		}
		out = append(out, c)
	}
	for _, c := range m.cs {
		if c.role == r {
			visit(c)
		}
	}
	return out
}

// mapContainers maps each container and places it in the pod.
func (m *mapper) mapContainers() error {
	env := m.sharedEnv()
	for _, c := range m.cs {
		if c.role == roleDropped {
			c.t.Drop("", "FireLens log router: on Kubernetes a node-level log agent (Fluent Bit DaemonSet) collects the containers' stdout")
			continue
		}
		if err := m.mapContainer(c, env); err != nil {
			return err
		}
	}
	return nil
}

// place copies the finished containers into the service, in pod order:
// the application first.
func (m *mapper) place() {
	m.svc.Containers = []service.Container{m.app.out}
	for _, c := range m.cs {
		if c.role == roleMain && c != m.app {
			m.svc.Containers = append(m.svc.Containers, c.out)
		}
	}
	m.svc.Sidecars = nil
	for _, c := range m.ordered(roleSidecar) {
		m.svc.Sidecars = append(m.svc.Sidecars, c.out)
	}
	m.svc.InitContainers = nil
	for _, c := range m.ordered(roleInit) {
		m.svc.InitContainers = append(m.svc.InitContainers, c.out)
	}
}

// sharedEnv returns, for each plain environment variable, whether all the
// containers that set it agree on its value: those go to the ConfigMap.
func (m *mapper) sharedEnv() map[string]bool {
	values := map[string]map[string]bool{}
	for _, c := range m.cs {
		if c.role == roleDropped {
			continue
		}
		for _, kv := range c.def.Environment {
			if kv.Name == "" || strings.TrimSpace(kv.ValueFrom) != "" {
				continue
			}
			if values[kv.Name] == nil {
				values[kv.Name] = map[string]bool{}
			}
			values[kv.Name][kv.Value] = true
		}
	}
	shared := map[string]bool{}
	for k, vs := range values {
		shared[k] = len(vs) == 1
	}
	return shared
}

// labels turns tags into labels; later tags (the service's) win.
func (m *mapper) labels(t *source.Tracker, field string, tags tagList) {
	switch {
	case tags.bad != "":
		t.Drop(field, fmt.Sprintf("tags are a list of {key, value} or an object of keys, not %s: no labels were made from them", tags.bad))
		return
	case tags.object && len(tags.tags) > 0:
		t.Warn(field, "labels", "an object of tag keys, where ECS takes a list of {key, value} (register-task-definition refuses it): read as the tags it names")
	}
	for _, tg := range tags.tags {
		f := source.JoinPath(field, tg.path)
		if tg.bad != "" {
			t.Drop(f, tg.bad)
			continue
		}
		key := strings.TrimSpace(tg.Key)
		if key == "" {
			continue
		}
		if strings.HasPrefix(strings.ToLower(key), "aws:") {
			t.Drop(f, "AWS-reserved tag, set by AWS itself")
			continue
		}
		k, v := labelKey(key), labelValue(tg.Value)
		if k == "" {
			t.Drop(f, "nothing of the tag key is valid in a Kubernetes label key")
			continue
		}
		if m.svc.Labels == nil {
			m.svc.Labels = map[string]string{}
		}
		m.svc.Labels[k] = v
		if k != key || v != tg.Value {
			t.Warn(f, "labels "+k, fmt.Sprintf("tag %s=%s sanitized to label %s=%s", key, tg.Value, k, v))
		} else {
			t.Mapped(f, "labels "+k)
		}
	}
}

// labelKey and labelValue keep what Kubernetes label syntax allows: up to
// 63 of [A-Za-z0-9-_.], starting and ending with a letter or digit. A "/"
// would start a DNS prefix that AWS tag keys do not have, so it becomes "-".
func labelKey(s string) string   { return labelText(s) }
func labelValue(s string) string { return labelText(s) }

func labelText(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	out := b.String()
	if len(out) > 63 {
		out = out[:63]
	}
	return strings.TrimFunc(out, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	})
}

// secretResources lists what the IRSA role must be allowed to read.
func (m *mapper) secretResources() (sm, ssm []string) {
	seen := map[string]bool{}
	for _, s := range m.svc.Secrets {
		if seen[s.Key] {
			continue
		}
		seen[s.Key] = true
		switch s.Source {
		case service.SecretsManager:
			// IAM matches a secret by its full ARN, which ends in six
			// random characters; a partial ARN needs the wildcard.
			if fullSecretARN.MatchString(s.Key) {
				sm = append(sm, s.Key)
			} else {
				sm = append(sm, s.Key+"-??????")
			}
		case service.ParameterStore:
			ssm = append(ssm, s.Key)
		}
	}
	sort.Strings(sm)
	sort.Strings(ssm)
	return sm, ssm
}

var fullSecretARN = regexp.MustCompile(`:secret:.+-[A-Za-z0-9]{6}$`)
