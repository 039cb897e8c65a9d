package ecs

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/cutoverhq/cutover/service"
	"github.com/cutoverhq/cutover/source"
)

// Defaults ECS applies when a health check leaves a field out.
const (
	defaultHCInterval = 30
	defaultHCTimeout  = 5
	defaultHCRetries  = 3
	// defaultStopTimeout is how long ECS waits after SIGTERM before
	// SIGKILL when stopTimeout is not given.
	defaultStopTimeout = 30
	// preStopSeconds is the sleep before SIGTERM that lets endpoints and
	// load balancers stop sending to a terminating pod. On ECS the ALB
	// drained the target before the task got SIGTERM; on Kubernetes the
	// two happen at once.
	preStopSeconds = 5
)

// containerDrops are container fields Kubernetes has no place for, and why.
var containerDrops = []struct{ field, why string }{
	{"links", "containers of a pod share localhost: reach the linked container at localhost:<port>"},
	{"hostname", "a pod's hostname is the pod name; set spec.hostname by hand if the app reads it"},
	{"dnsServers", "pods resolve names through cluster DNS; set the pod's dnsConfig by hand if the app needs other resolvers"},
	{"dnsSearchDomains", "pods resolve names through cluster DNS; set the pod's dnsConfig by hand if the app needs other search domains"},
	{"extraHosts", "add hostAliases to the pod spec by hand, or better a DNS record"},
	{"dockerSecurityOptions", "SELinux and AppArmor labels are pod securityContext settings on Kubernetes; set them by hand"},
	{"dockerLabels", "Docker labels have no Kubernetes counterpart; tools that read them (Datadog autodiscovery, Traefik) read pod annotations on Kubernetes"},
	{"ulimits", "Kubernetes has no per-container ulimits: the node's container runtime sets them (nofile is 1048576 on EKS AMIs)"},
	{"systemControls", "namespaced sysctls go in the pod securityContext, and unsafe ones must be allowed on the kubelet: set them by hand"},
	{"interactive", "services get no stdin on Kubernetes"},
	{"pseudoTerminal", "services get no TTY on Kubernetes"},
	{"disableNetworking", "containers of a pod share its network namespace"},
	{"startTimeout", "Kubernetes waits for dependencies without a time limit; the startup probe bounds a start"},
	{"restartPolicy", "Kubernetes restarts exited containers by itself"},
	{"resourceRequirements", "GPUs are extended resources (nvidia.com/gpu) on nodes with a device plugin: add them to resources by hand"},
	{"credentialSpecs", "gMSA credential specs are securityContext.windowsOptions on Windows nodes: set them by hand"},
	{"versionConsistency", "Kubernetes resolves the tag at each pull: pin the image by digest for the same guarantee"},
	{"linuxParameters.devices", "host devices need a device plugin on Kubernetes"},
	{"linuxParameters.maxSwap", "Kubernetes nodes run without swap by default"},
	{"linuxParameters.swappiness", "Kubernetes nodes run without swap by default"},
}

// mapContainer maps the fields of one container definition.
func (m *mapper) mapContainer(c *cinfo, sharedEnv map[string]bool) error {
	d, t := c.def, c.t
	out := &c.out
	out.Name = c.name
	if hasPlaceholder(c.raw) {
		t.Warn("name", c.target, fmt.Sprintf("the name is the template variable %s: the container is called %q; the name is the pod's own, so any name does, unless a service's loadBalancers name it", c.raw, c.name))
	} else if c.name != c.raw {
		t.Warn("name", c.target, fmt.Sprintf("renamed to %q: Kubernetes container names are DNS-1123 labels", c.name))
	} else {
		t.Mapped("name", c.target)
	}
	switch {
	case c.role == roleMain:
		if m.has(t, "essential") {
			t.Mapped("essential", c.target)
		}
	case c.role == roleSidecar && !c.essential && !c.wantSidecar:
		t.Warn("essential", c.target, "not essential: ECS kept the task running when it exited; as a sidecar Kubernetes restarts it instead")
	case c.role == roleSidecar && c.essential:
		t.Warn("essential", c.target, "essential, and other containers wait for it: a sidecar that Kubernetes restarts when it exits, where ECS stopped the task")
	default:
		if m.has(t, "essential") {
			t.Mapped("essential", c.target)
		}
	}

	m.image(c)
	switch {
	case d.EntryPoint != nil && allEmpty(d.EntryPoint):
		m.dropIf(t, "entryPoint", "only empty strings (as the CLI skeleton prints it): the image's ENTRYPOINT applies")
	case d.EntryPoint != nil:
		out.Command = append([]string{}, d.EntryPoint...)
		t.Mapped("entryPoint", c.target+".command")
	}
	switch {
	case d.Command != nil && allEmpty(d.Command):
		m.dropIf(t, "command", "only empty strings (as the CLI skeleton prints it): the image's CMD applies")
	case d.Command != nil:
		out.Args = append([]string{}, d.Command...)
		t.Mapped("command", c.target+".args")
	}
	if d.WorkingDirectory != "" {
		out.WorkingDir = d.WorkingDirectory
		t.Mapped("workingDirectory", c.target+".workingDir")
	}
	if err := m.env(c, sharedEnv); err != nil {
		return err
	}
	if err := m.envFiles(c); err != nil {
		return err
	}
	if err := m.secrets(c); err != nil {
		return err
	}
	if err := m.ports(c); err != nil {
		return err
	}
	if err := m.healthCheck(c); err != nil {
		return err
	}
	if err := m.user(c); err != nil {
		return err
	}
	if d.ReadonlyRootFilesystem != nil {
		v := *d.ReadonlyRootFilesystem
		out.ReadOnlyRootFilesystem = &v
		t.Mapped("readonlyRootFilesystem", c.target+".securityContext.readOnlyRootFilesystem")
	}
	if d.Privileged != nil {
		out.Privileged = *d.Privileged
		if out.Privileged {
			t.Warn("privileged", c.target+".securityContext.privileged", "privileged: the baseline and restricted Pod Security Standards refuse it; find the capability it really needs")
		} else {
			t.Mapped("privileged", c.target+".securityContext.privileged")
		}
	}
	if _, ok := d.StopTimeout.int(); !ok {
		return inputErr(t, "stopTimeout", "want a number of seconds, found %s", d.StopTimeout.raw)
	}
	if d.StopTimeout.set {
		t.Mapped("stopTimeout", "terminationGracePeriodSeconds")
	}
	if err := m.linux(c); err != nil {
		return err
	}
	if err := m.mounts(c); err != nil {
		return err
	}
	if err := m.logging(c); err != nil {
		return err
	}
	if d.RepositoryCredentials != nil && d.RepositoryCredentials.CredentialsParameter != "" {
		if _, err := parseSecret(d.RepositoryCredentials.CredentialsParameter); err != nil {
			return inputErr(t, "repositoryCredentials.credentialsParameter", "%v", err)
		}
		t.Warn("repositoryCredentials", "imagePullSecrets", fmt.Sprintf("the registry login is in %s: create an imagePullSecret from it (External Secrets can template a dockerconfigjson) and add it to the pod", d.RepositoryCredentials.CredentialsParameter))
	}
	for _, dr := range containerDrops {
		m.dropIf(t, dr.field, dr.why)
	}
	if c.role != roleDropped {
		m.dropIf(t, "firelensConfiguration", "FireLens configured this container as the task's log router, but it is the one carried over: on Kubernetes a node-level log agent collects the containers' stdout, and these options become its configuration")
	}
	for _, k := range m.childKeys(t) {
		if !containerKeys[k] {
			t.Drop(k, "not a field of an ECS container definition: ECS never read it (the AWS CLI refuses it, Terraform ignores it); check for a misplaced or misspelt field")
		}
	}
	return nil
}

// image maps the image, or leaves a value to fill for a placeholder.
func (m *mapper) image(c *cinfo) {
	img := strings.TrimSpace(c.def.Image)
	if imagePlaceholder(img) {
		name := "image"
		if c != m.app {
			name = service.FillKey("image", c.name)
		}
		reason := fmt.Sprintf("container %s has no image", c.name)
		switch {
		case redactedRegistry(img):
			reason = fmt.Sprintf("container %s has the image %s, whose registry's account id or region stands in for the real one", c.name, img)
		case img != "":
			reason = fmt.Sprintf("container %s has the placeholder %s instead of an image (a pipeline fills it at deploy time)", c.name, img)
		}
		c.out.ImageValue = m.svc.AddValue(name, fillDefault(img), reason)
		if img == "" && !m.has(c.t, "image") {
			c.t.Fill("name", "values fill."+name, reason+": set the image the pipeline builds")
		} else {
			c.t.Fill("image", "values fill."+name, reason+": set the image the pipeline builds")
		}
		return
	}
	c.out.Image = img
	last := img[strings.LastIndex(img, "/")+1:]
	switch {
	case strings.Contains(img, "@sha256:"):
		c.t.Mapped("image", c.target+".image")
	case !strings.Contains(last, ":"), strings.HasSuffix(last, ":latest"):
		c.t.Warn("image", c.target+".image", "no tag or :latest: pods started at different times may run different code; pin a tag or digest")
	default:
		c.t.Mapped("image", c.target+".image")
	}
}

// secretName guesses from a variable's name and value whether a plain
// environment value is a credential: such values are not copied into the
// output.
var (
	secretNameRE = regexp.MustCompile(`(?i)(^|_)(PASSWORD|PASSWD|PWD|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|CREDENTIALS?)(_|$)`)
	// Names that end like this hold a reference to a secret, not one.
	secretRefNameRE = regexp.MustCompile(`(?i)_(ARNS?|NAMES?|IDS?|PATHS?|FILES?|TTL|URLS?|URIS?|ENDPOINTS?|HEADERS?|EXPIRY|LENGTH|TIMEOUT)$`)
)

func looksSecret(name, value string) bool {
	if value == "" || strings.HasPrefix(value, "arn:") {
		return false
	}
	if source.SecretURL(name, value) {
		// A URL with a password, or a webhook's, whose token is in it.
		return true
	}
	if !secretNameRE.MatchString(name) || secretRefNameRE.MatchString(name) {
		return false
	}
	switch strings.ToLower(value) {
	case "true", "false", "yes", "no", "enabled", "disabled", "none", "null":
		return false
	}
	if _, err := strconv.ParseFloat(value, 64); err == nil {
		return false
	}
	return true
}

// env maps plain environment variables: values all containers agree on go
// to the ConfigMap, others stay literal, placeholders and plain-text
// credentials become values to fill.
func (m *mapper) env(c *cinfo, shared map[string]bool) error {
	for i, kv := range c.def.Environment {
		f := fmt.Sprintf("environment[%d]", i)
		if strings.TrimSpace(kv.Name) == "" {
			if m.has(c.t, f) {
				c.t.Drop(f, "an environment entry without a name")
			}
			continue
		}
		if strings.TrimSpace(kv.ValueFrom) != "" {
			// ECS takes valueFrom only under secrets and rejects it here, but
			// the file means the secret the ARN names: dropping the ARN
			// would leave the variable empty.
			caveat := "ECS expects valueFrom under secrets, not environment: cutover read the entry as the secret it names"
			if kv.Value != "" {
				caveat += fmt.Sprintf(" and ignored its value %q", kv.Value)
			}
			if err := m.secret(c, f, kv.Name, kv.ValueFrom, caveat); err != nil {
				return err
			}
			continue
		}
		switch {
		case looksSecret(kv.Name, kv.Value):
			vn := m.svc.AddValue(service.FillKey("env", kv.Name), "", fmt.Sprintf("%s looked like a credential in plain text; its value was not copied", kv.Name))
			c.out.Env = append(c.out.Env, service.EnvVar{Name: kv.Name, ValueRef: vn})
			what := fmt.Sprintf("%s looks like a credential in plain text: its value was not copied", kv.Name)
			if envPlaceholder(kv.Value) {
				what = fmt.Sprintf("%s holds the placeholder %s and looks like a credential", kv.Name, kv.Value)
			}
			c.t.Fill(f, "values fill."+vn, what+"; store it in Secrets Manager and list it under secrets, or fill it")
		case envPlaceholder(kv.Value):
			name := service.FillKey("env", kv.Name)
			if !shared[kv.Name] {
				name = service.FillKey("env", c.name, kv.Name)
			}
			vn := m.svc.AddValue(name, fillDefault(kv.Value), fmt.Sprintf("%s holds the unrendered %s", kv.Name, kv.Value))
			c.out.Env = append(c.out.Env, service.EnvVar{Name: kv.Name, ValueRef: vn})
			c.t.Fill(f, "values fill."+vn, fmt.Sprintf("%s holds the placeholder %s: fill in the value it stood for", kv.Name, kv.Value))
		case shared[kv.Name]:
			if m.svc.Config == nil {
				m.svc.Config = map[string]string{}
			}
			m.svc.Config[kv.Name] = kv.Value
			c.out.Env = append(c.out.Env, service.EnvVar{Name: kv.Name, ConfigKey: kv.Name})
			c.t.Mapped(f, "ConfigMap key "+kv.Name)
		default:
			c.out.Env = append(c.out.Env, service.EnvVar{Name: kv.Name, Value: kv.Value})
			c.t.Mapped(f, c.target+".env "+kv.Name)
		}
	}
	return nil
}

// envFiles turns S3 environment files, which cutover cannot read, into
// values to fill: the variables go into the service's ConfigMap, which the
// container loads whole.
func (m *mapper) envFiles(c *cinfo) error {
	n := 0
	for i, ef := range c.def.EnvironmentFiles {
		f := fmt.Sprintf("environmentFiles[%d]", i)
		v := strings.TrimSpace(ef.Value)
		if v == "" {
			m.dropIf(c.t, f, "an environment file with no S3 object (an empty entry, as the CLI skeleton prints it)")
			continue
		}
		if typ := strings.ToLower(strings.TrimSpace(ef.Type)); typ != "" && typ != "s3" {
			return inputErr(c.t, f+".type", "unknown environment file type %q: ECS supports s3", ef.Type)
		}
		if !s3ARNRE.MatchString(v) && !hasPlaceholder(v) {
			return inputErr(c.t, f+".value", "malformed S3 object ARN %q: want arn:aws:s3:::<bucket>/<key>", v)
		}
		n++
		// Empty, not the ARN: a value prefilled with the ARN passes lint,
		// and the app would start without the file's variables.
		vn := m.svc.AddValue(service.FillKey("envFile", c.name, strconv.Itoa(n)), "",
			fmt.Sprintf("container %s read variables from the S3 env file %s: turn each of its variables into a ConfigMap key (secrets into Secret keys), then fill this value with that file's name to record it is done", c.name, v))
		c.t.Fill(f, "values fill."+vn, fmt.Sprintf("cutover does not read S3: copy the variables of %s into the service's config (secrets into Secrets Manager)", v))
	}
	if n > 0 {
		c.out.EnvFromConfig = true
		c.t.Warn("environmentFiles", c.target+".envFrom ConfigMap", "the container loads the whole ConfigMap as environment, where the S3 file's variables belong")
	}
	return nil
}

// secrets maps secrets[] to secret references; the values stay where they
// are.
func (m *mapper) secrets(c *cinfo) error {
	for i, s := range c.def.Secrets {
		f := fmt.Sprintf("secrets[%d]", i)
		if strings.TrimSpace(s.Name) == "" && strings.TrimSpace(s.ValueFrom) == "" {
			continue
		}
		if err := m.secret(c, f, s.Name, s.ValueFrom, ""); err != nil {
			return err
		}
	}
	return nil
}

// secret maps the entry at f, which sets the variable name from the
// secret valueFrom names, to a secret reference. A caveat, when not empty,
// makes a row that would say mapped a warning that says it.
func (m *mapper) secret(c *cinfo, f, name, valueFrom, caveat string) error {
	if strings.TrimSpace(name) == "" {
		return inputErr(c.t, f+".name", "the secret has no name (the environment variable it sets)")
	}
	ref, err := parseSecret(valueFrom)
	if err != nil {
		return inputErr(c.t, f+".valueFrom", "%v", err)
	}
	ref.Name = m.addSecret(name, c.name, ref)
	c.out.Env = append(c.out.Env, service.EnvVar{Name: name, Secret: ref.Name})
	target := "ExternalSecret key " + ref.Name
	switch {
	case hasPlaceholder(valueFrom):
		c.t.Fill(f+".valueFrom", target, fmt.Sprintf("the reference is %s: fill it in the values before rendering", placeholderWhat(valueFrom)))
		if caveat != "" {
			c.t.Warn(f+".name", c.target+".env "+name, caveat)
		} else {
			c.t.Mapped(f+".name", c.target+".env "+name)
		}
	case arnPlaceholder(valueFrom):
		// Only the account was redacted: the name is all the store
		// needs, since it reads in its own account.
		c.t.Warn(f, target, joinCaveat(fmt.Sprintf("the reference is %s: the ExternalSecret names %s, which the SecretStore reads in its own account and region", placeholderWhat(valueFrom), ref.Key), caveat))
	case caveat != "":
		c.t.Warn(f, target, caveat)
	default:
		c.t.Mapped(f, target)
	}
	return nil
}

func joinCaveat(msg, caveat string) string {
	if caveat == "" {
		return msg
	}
	return msg + "; " + caveat
}

// addSecret adds ref under name, or finds it; a name two containers use
// for different secrets gets the container's name appended.
func (m *mapper) addSecret(name, container string, ref service.Secret) string {
	same := func(a, b service.Secret) bool {
		return a.Source == b.Source && a.Key == b.Key && a.Property == b.Property && a.Version == b.Version && a.Region == b.Region
	}
	for _, candidate := range []string{name, name + "_" + keyName(container)} {
		free := true
		for _, s := range m.svc.Secrets {
			if s.Name == candidate {
				if same(s, ref) {
					return candidate
				}
				free = false
			}
		}
		if free {
			ref.Name = candidate
			m.svc.Secrets = append(m.svc.Secrets, ref)
			return candidate
		}
	}
	// Unreachable in practice: one container cannot hold two secrets of
	// one name. Keep the name unique anyway.
	ref.Name = fmt.Sprintf("%s_%d", name, len(m.svc.Secrets))
	m.svc.Secrets = append(m.svc.Secrets, ref)
	return ref.Name
}

var portNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

// ports maps portMappings.
func (m *mapper) ports(c *cinfo) error {
	// Port names must be unique in the whole pod, not only the container.
	if m.portNames == nil {
		m.portNames = map[string]bool{}
	}
	used := m.portNames
	for i, pm := range c.def.PortMappings {
		f := fmt.Sprintf("portMappings[%d]", i)
		if m.skip(c.t, f) {
			continue
		}
		if !pm.ContainerPort.set {
			if pm.ContainerPortRange != "" {
				c.t.Drop(f, fmt.Sprintf("Kubernetes has no port ranges: list the ports of %s one by one", pm.ContainerPortRange))
			}
			continue
		}
		p, ok := pm.ContainerPort.int()
		if !ok || p < 1 || p > 65535 {
			return inputErr(c.t, f+".containerPort", "want a port number from 1 to 65535, found %s", pm.ContainerPort.raw)
		}
		port := service.Port{ContainerPort: int32(p)}
		switch proto := strings.ToLower(pm.Protocol); proto {
		case "", "tcp":
			if pm.Protocol != "" {
				port.Protocol = "TCP"
				c.t.Mapped(f+".protocol", c.target+".ports.protocol")
			}
		case "udp":
			port.Protocol = "UDP"
			c.t.Mapped(f+".protocol", c.target+".ports.protocol")
		default:
			return inputErr(c.t, f+".protocol", "unknown protocol %q: want tcp or udp", pm.Protocol)
		}
		switch ap := strings.ToLower(pm.AppProtocol); ap {
		case "":
		case "http", "http2", "grpc":
			port.AppProtocol = ap
			c.t.Mapped(f+".appProtocol", c.target+".ports.appProtocol")
		default:
			c.t.Drop(f+".appProtocol", fmt.Sprintf("unknown app protocol %q", pm.AppProtocol))
		}
		port.Name = portName(pm.Name, port, used)
		used[port.Name] = true
		if pm.Name != "" {
			if port.Name != pm.Name {
				c.t.Warn(f+".name", c.target+".ports.name", fmt.Sprintf("renamed to %q: Kubernetes port names are at most 15 lowercase letters, digits and '-'", port.Name))
			} else {
				c.t.Mapped(f+".name", c.target+".ports.name")
			}
		}
		row := portRow{field: f, port: len(c.out.Ports)}
		mode := m.td.td.NetworkMode
		hp, ok := pm.HostPort.int()
		switch {
		case !ok || hp < 0 || hp > 65535:
			return inputErr(c.t, f+".hostPort", "want a port number, found %s", pm.HostPort.raw)
		case mode == "host":
			// Host networking bound every port on the instance, hostPort
			// said or not.
			row.reached = true
			m.dropIf(c.t, f+".hostPort", fmt.Sprintf("clients reached port %d on the instance (host network mode); they reach the pod's port %d through the Service", p, p))
		case !pm.HostPort.set:
		case hp == 0:
			c.t.Drop(f+".hostPort", "a dynamic host port (bridge mode): each pod has its own IP, so no host port is needed")
		case hp == p && mode != "bridge":
			c.t.Drop(f+".hostPort", "each pod has its own IP, so no host port is needed")
		default:
			// A fixed host port: bridge mode published the container's
			// port on the instance (awsvpc refuses a host port of another
			// number).
			row.reached = true
			c.t.Drop(f+".hostPort", fmt.Sprintf("clients reached port %d on the instance; they reach the pod's port %d through the Service", hp, p))
		}
		c.ports = append(c.ports, row)
		if pm.ContainerPortRange != "" {
			c.t.Drop(f+".containerPortRange", "Kubernetes has no port ranges: list the ports one by one")
		}
		c.out.Ports = append(c.out.Ports, port)
	}
	return nil
}

// portRow is a port mapping that became a container port. Its
// containerPort's report row waits for finish, which knows whether the
// pod has a Service and which ports are on it.
type portRow struct {
	field string // "portMappings[i]"
	port  int    // index in the container's out.Ports
	// reached is set when clients outside the task reached the port: a
	// fixed host port, host networking or a load balancer sent to it.
	// Unset when only the task's own containers did, or a dynamic host
	// port that only a load balancer could have found.
	reached bool
}

// reportPorts writes the row of each port mapping's containerPort: a
// container port, and whether the Service has it. The Service takes every
// port of the main containers, and each port of a sidecar that clients
// reached before the move: the pod's containers share one network
// namespace, so no host port is needed to reach it.
func (m *mapper) reportPorts() {
	for _, c := range m.cs {
		for _, r := range c.ports {
			p := c.out.Ports[r.port]
			f := r.field + ".containerPort"
			if m.expose != nil && (c.role == roleMain || p.Served) {
				c.t.Mapped(f, fmt.Sprintf("%s.ports.containerPort, Service port %d", c.target, p.ContainerPort))
			} else {
				c.t.Mapped(f, c.target+".ports.containerPort")
			}
		}
	}
}

// ianaName lowercases s and turns runs of other characters into one '-'.
func ianaName(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(strings.TrimSpace(s)) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.TrimRight(b.String(), "-")
}

// portName returns a valid, unique IANA service name for a port: the ECS
// name when it fits, else one made from the protocol.
func portName(ecsName string, p service.Port, used map[string]bool) string {
	n := ianaName(ecsName)
	ok := func(s string) bool {
		return s != "" && len(s) <= 15 && portNameRE.MatchString(s) && !strings.Contains(s, "--") &&
			strings.ContainsAny(s, "abcdefghijklmnopqrstuvwxyz") && !used[s]
	}
	if ok(n) {
		return n
	}
	base := p.AppProtocol
	if base == "" {
		base = "tcp"
		if p.Protocol == "UDP" {
			base = "udp"
		}
	}
	if ok(base) {
		return base
	}
	return fmt.Sprintf("%s-%d", base, p.ContainerPort)
}

// healthCheck maps the container health check to probes.
func (m *mapper) healthCheck(c *cinfo) error {
	hc := c.def.HealthCheck
	if hc == nil || m.skip(c.t, "healthCheck") {
		return nil
	}
	t := c.t.At("healthCheck")
	ints := map[string]int64{}
	for _, f := range []struct {
		name string
		v    num
		def  int64
		min  int64
	}{
		{"interval", hc.Interval, defaultHCInterval, 1},
		{"timeout", hc.Timeout, defaultHCTimeout, 1},
		{"retries", hc.Retries, defaultHCRetries, 1},
		{"startPeriod", hc.StartPeriod, 0, 0},
	} {
		v, ok := f.v.int()
		if !f.v.set {
			v = f.def
		}
		if !ok || v < f.min || v > 3600 {
			what := "seconds"
			if f.name == "retries" {
				what = "retries"
			}
			return inputErr(t, f.name, "want a whole number of %s, found %s", what, f.v.raw)
		}
		ints[f.name] = v
	}
	for _, part := range hc.Command {
		if envPlaceholder(part) {
			// The shell would expand the variable to nothing and the
			// probe would always pass.
			t.Warn("command", "", fmt.Sprintf("the health check command holds the template variable %s: no probe is made from it; write the container's liveness probe by hand", part))
			for _, f := range []string{"interval", "timeout", "retries", "startPeriod"} {
				m.dropIf(t, f, "the health check's command is unknown")
			}
			return nil
		}
	}
	var cmd []string
	kind := ""
	if len(hc.Command) > 0 {
		kind = strings.ToUpper(strings.TrimSpace(hc.Command[0]))
	}
	switch kind {
	case "":
		for _, f := range []string{"interval", "timeout", "retries", "startPeriod"} {
			m.dropIf(t, f, "the health check has no command")
		}
		return nil
	case "NONE":
		t.Drop("", "NONE switched off the image's HEALTHCHECK; Kubernetes ignores image health checks anyway")
		return nil
	case "CMD-SHELL":
		cmd = []string{"/bin/sh", "-c", strings.Join(hc.Command[1:], " ")}
	case "CMD":
		cmd = append([]string{}, hc.Command[1:]...)
	default:
		// Docker runs a command without CMD or CMD-SHELL through the
		// shell; so does the probe.
		cmd = []string{"/bin/sh", "-c", strings.Join(hc.Command, " ")}
	}
	if len(cmd) == 0 || strings.TrimSpace(strings.Join(cmd, "")) == "" || cmd[len(cmd)-1] == "" {
		return inputErr(t, "command", "the health check has %s but no command after it", kind)
	}
	probe := func() *service.Probe {
		return &service.Probe{
			Exec:             append([]string{}, cmd...),
			PeriodSeconds:    int32(ints["interval"]),
			TimeoutSeconds:   int32(ints["timeout"]),
			FailureThreshold: int32(ints["retries"]),
		}
	}
	// A startup probe gives the container the patience ECS gave it: the
	// start period, then retries failed checks. It checks more often than
	// the interval so that the pod is ready as soon as it can be.
	startup := func() *service.Probe {
		p := probe()
		period := min(ints["interval"], 10)
		p.PeriodSeconds = int32(period)
		p.FailureThreshold = int32((ints["startPeriod"] + ints["retries"]*ints["interval"] + period - 1) / period)
		return p
	}
	live := c.essential && c.role != roleInit
	var target []string
	if live {
		c.out.Liveness = probe()
		target = append(target, c.target+".livenessProbe")
	}
	// Kubernetes refuses probes on init containers that run to completion.
	if c.role != roleInit && (c.healthyGate || ints["startPeriod"] > 0) {
		c.out.Startup = startup()
		target = append(target, c.target+".startupProbe")
	}
	if len(target) == 0 {
		why := "ECS ignored the health of a non-essential container"
		if c.role == roleInit {
			why = "an init container runs to completion; Kubernetes does not probe it"
		}
		t.Drop("", why)
		return nil
	}
	tg := strings.Join(target, ", ")
	switch kind {
	case "CMD", "CMD-SHELL":
		t.Mapped("command", tg+" exec")
	default:
		t.Warn("command", tg+" exec", "no CMD or CMD-SHELL first: run through /bin/sh -c as Docker does")
	}
	if live {
		for _, f := range []struct{ in, out string }{{"interval", "periodSeconds"}, {"timeout", "timeoutSeconds"}, {"retries", "failureThreshold"}} {
			if m.has(t, f.in) {
				t.Mapped(f.in, c.target+".livenessProbe."+f.out)
			}
		}
	} else {
		for _, f := range []string{"interval", "timeout", "retries"} {
			if m.has(t, f) {
				t.Mapped(f, c.target+".startupProbe")
			}
		}
	}
	if m.has(t, "startPeriod") {
		if c.out.Startup != nil {
			t.Mapped("startPeriod", c.target+".startupProbe.failureThreshold")
		} else {
			t.Drop("startPeriod", "no probe to delay")
		}
	}
	return nil
}

// user maps "uid", "uid:gid", and reports names, which Kubernetes cannot
// take.
func (m *mapper) user(c *cinfo) error {
	u := strings.TrimSpace(c.def.User)
	if u == "" {
		return nil
	}
	uid, gid, hasGID := strings.Cut(u, ":")
	parse := func(s string) (*int64, bool) {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v < 0 || v > 1<<31-1 {
			return nil, false
		}
		return &v, true
	}
	target := c.target + ".securityContext.runAsUser"
	var msgs []string
	if v, ok := parse(uid); ok {
		c.out.RunAsUser = v
		if *v == 0 {
			msgs = append(msgs, "runs as root: the restricted Pod Security Standard refuses it")
		}
	} else {
		c.out.UserName = uid
		msgs = append(msgs, fmt.Sprintf("user %q is a name: Kubernetes takes a numeric uid (run `id -u %s` in the image); the chart's default user runs it until then", uid, uid))
	}
	if hasGID {
		target += ", runAsGroup"
		if v, ok := parse(gid); ok {
			c.out.RunAsGroup = v
		} else {
			msgs = append(msgs, fmt.Sprintf("group %q is a name: Kubernetes takes a numeric gid", gid))
		}
	}
	if len(msgs) > 0 {
		c.t.Warn("user", target, strings.Join(msgs, "; "))
	} else {
		c.t.Mapped("user", target)
	}
	return nil
}

// linux maps linuxParameters.
func (m *mapper) linux(c *cinfo) error {
	lp := c.def.LinuxParameters
	if lp == nil {
		return nil
	}
	t := c.t.At("linuxParameters")
	if lp.InitProcessEnabled != nil {
		if *lp.InitProcessEnabled {
			t.Warn("initProcessEnabled", "", "Kubernetes has no --init: the app is PID 1 and must reap children and handle SIGTERM; add tini to the image (ENTRYPOINT [\"tini\", \"--\"]) if it relied on ECS's init")
		} else {
			t.Drop("initProcessEnabled", "false is what Kubernetes does")
		}
	}
	if caps := lp.Capabilities; caps != nil {
		if len(capNames(caps.Add)) > 0 {
			c.out.CapAdd = capNames(caps.Add)
			t.Warn("capabilities.add", c.target+".securityContext.capabilities.add", fmt.Sprintf("adds %v: the restricted Pod Security Standard allows only NET_BIND_SERVICE; check the app truly needs them", c.out.CapAdd))
		}
		if len(capNames(caps.Drop)) > 0 {
			c.out.CapDrop = capNames(caps.Drop)
			t.Mapped("capabilities.drop", c.target+".securityContext.capabilities.drop")
		}
	}
	if lp.SharedMemorySize.set {
		v, ok := lp.SharedMemorySize.int()
		if !ok || v < 0 {
			return inputErr(t, "sharedMemorySize", "want a size in MiB, found %s", lp.SharedMemorySize.raw)
		}
		if v == 0 {
			t.Drop("sharedMemorySize", "0 MiB: the container runtime's default /dev/shm applies")
		}
		if v > 0 {
			name := m.addVolume("shm-"+c.name, service.Volume{Kind: service.VolumeEmptyDir, Medium: "Memory", Size: memQty(v)})
			c.out.VolumeMounts = append(c.out.VolumeMounts, service.VolumeMount{Name: name, MountPath: "/dev/shm"})
			t.Warn("sharedMemorySize", "volumes["+name+"] emptyDir medium Memory at /dev/shm", "memory-backed emptyDir: its use counts against the container's memory limit")
		}
	}
	for i, tf := range lp.Tmpfs {
		f := fmt.Sprintf("tmpfs[%d]", i)
		if m.skip(t, f) {
			continue
		}
		if tf.ContainerPath == "" {
			return inputErr(t, f+".containerPath", "the tmpfs mount has no containerPath")
		}
		size, ok := tf.Size.int()
		if !ok || size < 0 {
			return inputErr(t, f+".size", "want a size in MiB, found %s", tf.Size.raw)
		}
		vol := service.Volume{Kind: service.VolumeEmptyDir, Medium: "Memory"}
		if size > 0 {
			vol.Size = memQty(size)
		}
		name := m.addVolume(fmt.Sprintf("tmpfs-%s-%d", c.name, i), vol)
		c.out.VolumeMounts = append(c.out.VolumeMounts, service.VolumeMount{Name: name, MountPath: tf.ContainerPath})
		msg := "memory-backed emptyDir: its use counts against the container's memory limit"
		if len(tf.MountOptions) > 0 {
			msg += fmt.Sprintf("; mount options %v are not carried over", tf.MountOptions)
		}
		t.Warn(f, "volumes["+name+"] emptyDir medium Memory", msg)
	}
	return nil
}

// addVolume adds a pod volume under a unique name made from want.
func (m *mapper) addVolume(want string, v service.Volume) string {
	name := m.uniqueVolumeName(want)
	v.Name = name
	m.svc.Volumes = append(m.svc.Volumes, v)
	return name
}

// uniqueVolumeName makes a DNS-1123 volume name from want that no volume
// has yet.
func (m *mapper) uniqueVolumeName(want string) string {
	base := service.SanitizeName(want)
	name := base
	for i := 2; m.volumeExists(name); i++ {
		// Cut the base so the suffix survives the 63-character limit.
		sfx := fmt.Sprintf("-%d", i)
		name = strings.TrimRight(base[:min(len(base), 63-len(sfx))], "-") + sfx
	}
	return name
}

func (m *mapper) volumeExists(name string) bool {
	for _, v := range m.svc.Volumes {
		if v.Name == name {
			return true
		}
	}
	return false
}

// mounts maps mountPoints and volumesFrom.
func (m *mapper) mounts(c *cinfo) error {
	for i, mp := range c.def.MountPoints {
		f := fmt.Sprintf("mountPoints[%d]", i)
		if mp.SourceVolume == "" && mp.ContainerPath == "" {
			m.dropIf(c.t, f, "a mount point with no volume and no path (an empty entry, as the CLI skeleton prints it)")
			continue
		}
		vol, ok := m.vols[mp.SourceVolume]
		if !ok {
			return inputErr(c.t, f+".sourceVolume", "no volume named %q in the task definition", mp.SourceVolume)
		}
		if strings.TrimSpace(mp.ContainerPath) == "" {
			return inputErr(c.t, f+".containerPath", "the mount point has no containerPath")
		}
		c.out.VolumeMounts = append(c.out.VolumeMounts, service.VolumeMount{Name: vol, MountPath: mp.ContainerPath, ReadOnly: mp.ReadOnly != nil && *mp.ReadOnly})
		c.t.Mapped(f, c.target+".volumeMounts["+vol+"]")
	}
	for i, vf := range c.def.VolumesFrom {
		f := fmt.Sprintf("volumesFrom[%d]", i)
		if vf.SourceContainer == "" {
			m.dropIf(c.t, f, "names no container to share volumes with (an empty entry, as the CLI skeleton prints it)")
			continue
		}
		var src *cinfo
		for _, o := range m.cs {
			if o.raw == vf.SourceContainer {
				src = o
			}
		}
		if src == nil || src == c {
			return inputErr(c.t, f+".sourceContainer", "no other container named %q in the task definition", vf.SourceContainer)
		}
		ro := vf.ReadOnly != nil && *vf.ReadOnly
		var copied []string
		for _, mp := range src.def.MountPoints {
			vol, ok := m.vols[mp.SourceVolume]
			if !ok {
				continue // the source container's own mapping reports it
			}
			c.out.VolumeMounts = append(c.out.VolumeMounts, service.VolumeMount{Name: vol, MountPath: mp.ContainerPath, ReadOnly: ro || mp.ReadOnly != nil && *mp.ReadOnly})
			copied = append(copied, vol)
		}
		c.t.Warn(f, c.target+".volumeMounts", fmt.Sprintf("mounts %s's task volumes %v at the same paths; volumes declared only in %s's image (Dockerfile VOLUME) are not shared on Kubernetes", src.name, copied, src.name))
	}
	return nil
}

// logging reports the log configuration: on Kubernetes containers log to
// stdout and the cluster ships the logs.
func (m *mapper) logging(c *cinfo) error {
	lc := c.def.LogConfiguration
	if lc == nil {
		return nil
	}
	for i, so := range lc.SecretOptions {
		if so.ValueFrom == "" {
			continue
		}
		if _, err := parseSecret(so.ValueFrom); err != nil {
			return inputErr(c.t, fmt.Sprintf("logConfiguration.secretOptions[%d].valueFrom", i), "%v", err)
		}
	}
	why := "containers log to stdout on Kubernetes and the cluster's log agent ships the logs"
	switch lc.LogDriver {
	case "awslogs":
		if g := lc.Options["awslogs-group"]; g != "" {
			why += fmt.Sprintf("; to keep using log group %s, point the agent (Fluent Bit or the CloudWatch agent) at it", g)
		}
	case "awsfirelens":
		why += "; the FireLens outputs in options are the log agent's configuration now"
	case "":
	default:
		why += fmt.Sprintf("; the %s driver's options become the agent's configuration", lc.LogDriver)
	}
	if len(lc.SecretOptions) > 0 {
		why += "; the log driver's secretOptions belong to the agent"
	}
	m.dropIf(c.t, "logConfiguration", why)
	return nil
}

// allEmpty reports whether a list holds only empty strings.
func allEmpty(list []string) bool {
	for _, s := range list {
		if strings.TrimSpace(s) != "" {
			return false
		}
	}
	return true
}

// capNames strips the CAP_ prefix ECS accepts and Kubernetes does not.
func capNames(in []string) []string {
	out := make([]string, 0, len(in))
	for _, c := range in {
		c = strings.ToUpper(strings.TrimSpace(c))
		if c = strings.TrimPrefix(c, "CAP_"); c != "" {
			out = append(out, c)
		}
	}
	return out
}
