package compose

import (
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"gopkg.in/yaml.v3"

	"github.com/cutoverhq/cutover/service"
	"github.com/cutoverhq/cutover/source"
)

// ports maps ports (published: reached from outside) and expose (reached
// by other services only). On compose every service is reachable by name
// from the others, so a service that listens gets a Kubernetes Service
// even when it publishes nothing: Expose with Internal set.
func (cv *conv) ports(t *ftrack, c *service.Container, cref string, sc types.ServiceConfig) {
	seen := map[string]bool{}
	add := func(p service.Port) {
		k := fmt.Sprintf("%d/%s", p.ContainerPort, p.Protocol)
		if seen[k] {
			for i := range c.Ports {
				if c.Ports[i].ContainerPort == p.ContainerPort && c.Ports[i].Protocol == p.Protocol {
					if c.Ports[i].Name == "" {
						c.Ports[i].Name = p.Name
					}
					if c.Ports[i].AppProtocol == "" {
						c.Ports[i].AppProtocol = p.AppProtocol
					}
				}
			}
			return
		}
		seen[k] = true
		c.Ports = append(c.Ports, p)
	}
	var published []types.ServicePortConfig
	allLoopback := true
	for _, p := range sc.Ports {
		add(portOf(p))
		if p.Published != "" {
			published = append(published, p)
			if p.HostIP != "127.0.0.1" && p.HostIP != "::1" && p.HostIP != "localhost" {
				allLoopback = false
			}
		}
	}
	// Report each raw entry: a short-syntax range is one entry of many
	// ports.
	for _, it := range t.items("ports") {
		var pcs []types.ServicePortConfig
		switch it.val.Kind {
		case yaml.ScalarNode:
			pcs, _ = types.ParsePortConfig(cv.pr.interpolated(it.val.Value))
		case yaml.MappingNode:
			var p types.ServicePortConfig
			for _, kv := range source.MapEntries(it.val) {
				v := cv.pr.interpolated(kv[1].Value)
				switch kv[0].Value {
				case "target":
					n, _ := strconv.Atoi(v)
					p.Target = uint32(n)
				case "published":
					p.Published = v
				case "protocol":
					p.Protocol = v
				case "host_ip":
					p.HostIP = v
				}
			}
			pcs = []types.ServicePortConfig{p}
		}
		tr := t.in(it.file)
		if len(pcs) == 0 {
			tr.Use(it.path)
			continue
		}
		var parts []string
		for _, p := range pcs {
			s := fmt.Sprintf("containerPort %d", p.Target)
			if p.Protocol == "udp" {
				s += "/UDP"
			}
			parts = append(parts, s)
		}
		msg := strings.Join(parts, ", ")
		p := pcs[0]
		switch {
		case p.Published == "":
			tr.Mapped(it.path, msg)
		case p.HostIP == "127.0.0.1" || p.HostIP == "::1":
			tr.Warn(it.path, msg, "published on the compose host's loopback only: the Service stays inside the cluster")
		case p.Published != strconv.Itoa(int(p.Target)):
			tr.Warn(it.path, msg+", Service", fmt.Sprintf("published on host port %s: on Kubernetes clients use the Service %s on port %d (or its load balancer)", p.Published, cv.svc.Name, p.Target))
		default:
			tr.Mapped(it.path, msg+", Service")
		}
	}
	for _, it := range t.items("expose") {
		t.in(it.file).Mapped(it.path, "containerPort "+strings.TrimSpace(it.val.Value)+" (reached by other services through the Service)")
	}
	for _, e := range sc.Expose {
		port, proto, _ := strings.Cut(e, "/")
		lo, hi, isRange := strings.Cut(port, "-")
		from, err1 := strconv.Atoi(lo)
		to := from
		var err2 error
		if isRange {
			to, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil || from <= 0 || to < from || to-from > 1000 || to > 65535 {
			continue
		}
		for n := from; n <= to; n++ {
			p := service.Port{ContainerPort: int32(n)}
			if strings.EqualFold(proto, "udp") {
				p.Protocol = "UDP"
			}
			add(p)
		}
	}
	cv.traefik(t, sc)
	if e := cv.svc.Expose; e != nil && e.Port > 0 && len(c.Ports) == 0 {
		// Traefik's loadbalancer.server.port: the port the proxy sends
		// the routed traffic to, so the container listens there.
		add(service.Port{ContainerPort: e.Port})
	}
	if len(c.Ports) == 0 {
		if st, ok := stateful[imageRepo(sc.Image)]; ok && sc.Image != "" {
			add(service.Port{ContainerPort: st.port})
			cv.svc.Report.Warn(t.File("image"), t.Line("image"), "services."+sc.Name+".image", fmt.Sprintf("containerPort %d, Service", st.port),
				fmt.Sprintf("no ports in the file: %s listens on %d, and other services reach it by name; the Service %s exposes it inside the cluster", imageRepo(sc.Image), st.port, cv.svc.Name))
		}
	}
	if len(c.Ports) == 0 && sc.NetworkMode == "" {
		// Compose services reach each other by name on ports they need
		// not declare: a service others address as name:port needs that
		// containerPort and a Service, or the address breaks.
		for _, r := range cv.pr.portReferences(sc.Name) {
			add(service.Port{ContainerPort: r.port})
			cv.svc.Report.Warn(t.File("image"), t.Line("image"), "services."+sc.Name, fmt.Sprintf("containerPort %d, Service", r.port),
				fmt.Sprintf("no ports in the file, but %s reaches it at %s:%d (%s): the Service %s keeps that address working inside the cluster; check the port", r.from, sc.Name, r.port, r.field, cv.svc.Name))
		}
	}
	if len(c.Ports) == 0 {
		return
	}
	cv.exposed = true
	e := cv.svc.Expose
	if e == nil {
		e = &service.Expose{}
		cv.svc.Expose = e
	}
	if e.Port == 0 {
		e.Port = c.Ports[0].ContainerPort
		if len(published) > 0 {
			e.Port = int32(published[0].Target)
		}
	}
	e.Internal = (len(published) == 0 || allLoopback) && len(e.Routes) == 0
}

func portOf(p types.ServicePortConfig) service.Port {
	out := service.Port{ContainerPort: int32(p.Target), Name: portName(p.Name)}
	if strings.EqualFold(p.Protocol, "udp") {
		out.Protocol = "UDP"
	}
	switch strings.ToLower(p.AppProtocol) {
	case "http", "http2", "grpc":
		out.AppProtocol = strings.ToLower(p.AppProtocol)
	case "https":
		out.AppProtocol = "http"
	case "h2c":
		out.AppProtocol = "http2"
	}
	return out
}

var portNameRe = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,13}[a-z0-9])?$`)

func portName(n string) string {
	n = strings.ToLower(n)
	if portNameRe.MatchString(n) && strings.ContainsAny(n, "abcdefghijklmnopqrstuvwxyz") {
		return n
	}
	return ""
}

var (
	hostRuleRe = regexp.MustCompile("Host\\(([^)]*)\\)")
	pathRuleRe = regexp.MustCompile("Path(?:Prefix)?\\(([^)]*)\\)")
	ruleArgRe  = regexp.MustCompile("[`\"']([^`\"']+)[`\"']")
)

// traefik reads routing from Traefik labels, the usual way a compose
// stack is put behind a reverse proxy: router rules become routes and the
// load balancer port the exposed port.
func (cv *conv) traefik(t *ftrack, sc types.ServiceConfig) {
	keys := make([]string, 0, len(sc.Labels))
	for k := range sc.Labels {
		if strings.HasPrefix(k, "traefik.") {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := sc.Labels[k]
		switch {
		case strings.HasPrefix(k, "traefik.http.routers.") && strings.HasSuffix(k, ".rule"):
			for _, alt := range strings.Split(v, "||") {
				var hosts, paths []string
				if m := hostRuleRe.FindStringSubmatch(alt); m != nil {
					for _, a := range ruleArgRe.FindAllStringSubmatch(m[1], -1) {
						hosts = append(hosts, a[1])
					}
				}
				if m := pathRuleRe.FindStringSubmatch(alt); m != nil {
					for _, a := range ruleArgRe.FindAllStringSubmatch(m[1], -1) {
						paths = append(paths, a[1])
					}
				}
				if len(hosts) == 0 {
					hosts = []string{""}
				}
				if len(paths) == 0 {
					paths = []string{""}
				}
				for _, h := range hosts {
					for _, p := range paths {
						if h == "" && p == "" {
							continue
						}
						cv.route(service.Route{Host: h, Path: p})
					}
				}
			}
		case strings.HasPrefix(k, "traefik.http.services.") && strings.HasSuffix(k, ".loadbalancer.server.port"):
			if n, err := strconv.Atoi(v); err == nil && n > 0 && n < 65536 {
				if cv.svc.Expose == nil {
					cv.svc.Expose = &service.Expose{}
				}
				cv.svc.Expose.Port = int32(n)
			}
		}
	}
}

func (cv *conv) route(r service.Route) {
	if cv.svc.Expose == nil {
		cv.svc.Expose = &service.Expose{}
	}
	for _, have := range cv.svc.Expose.Routes {
		if have == r {
			return
		}
	}
	cv.svc.Expose.Routes = append(cv.svc.Expose.Routes, r)
}

// healthcheck maps a Docker healthcheck. "Healthy" gates depends_on and
// swarm's traffic, which is what a readiness probe does; swarm also
// replaces unhealthy tasks, which is liveness; start_period is a startup
// probe. Unset settings take Docker's defaults (30s interval and
// timeout, 3 retries), not Kubernetes' (10s, 1s, 3), so behaviour stays.
func (cv *conv) healthcheck(t *ftrack, c *service.Container, cref string, sc types.ServiceConfig) {
	h := sc.HealthCheck
	if h == nil {
		return
	}
	if h.Disable || (len(h.Test) > 0 && h.Test[0] == "NONE") {
		field := "healthcheck.test"
		if h.Disable {
			field = "healthcheck.disable"
		}
		t.Mapped(field, "no probes (the image's HEALTHCHECK is ignored on Kubernetes anyway)")
		t.Use("healthcheck")
		return
	}
	if len(h.Test) == 0 {
		t.Drop("healthcheck", "no test: the image's HEALTHCHECK applies on Docker, and Kubernetes ignores it; write probes by hand")
		return
	}
	probe := &service.Probe{}
	var how string
	var shell string
	var vars []string
	switch h.Test[0] {
	case "CMD-SHELL":
		shell = strings.Join(h.Test[1:], " ")
	case "CMD":
		if len(h.Test) >= 2 {
			shell = shellJoin(h.Test[1:])
		}
	}
	// A check whose URL holds a variable (unset, or a withheld secret)
	// stays a shell command, which expands it from an env var: an httpGet
	// path would carry the sentinel.
	if g, ok := httpCheck(shell); ok && !hasSentinel(shell) {
		probe.HTTPGet = g
		how = fmt.Sprintf("httpGet %s on port %d in place of the %s check, which needs no %s in the image", g.Path, g.Port, baseName(strings.Fields(shell)[0]), baseName(strings.Fields(shell)[0]))
		cv.healthPath = g.Path
		if cv.svc.Expose != nil && cv.svc.Expose.Port == g.Port {
			cv.svc.Expose.HealthPath = g.Path
		}
	} else {
		switch h.Test[0] {
		case "CMD-SHELL":
			script := strings.Join(h.Test[1:], " ")
			if vars = sentinelVars(script); len(vars) > 0 {
				for _, v := range vars {
					cv.varEnv(c, v)
				}
				script = replaceVars(script, func(n string) string { return "${" + n + "}" })
			}
			probe.Exec = []string{"/bin/sh", "-c", script}
			how = "exec /bin/sh -c"
		case "CMD":
			args := append([]string(nil), h.Test[1:]...)
			for _, a := range args {
				vars = append(vars, sentinelVars(a)...)
			}
			if len(vars) > 0 {
				// Probes do not expand $(VAR): run through a shell instead.
				for _, v := range vars {
					cv.varEnv(c, v)
				}
				probe.Exec = []string{"/bin/sh", "-c", replaceVars(shellJoin(args), func(n string) string { return "${" + n + "}" })}
				how = "exec /bin/sh -c (to expand variables from env vars)"
			} else {
				probe.Exec = args
				how = "exec"
			}
		}
	}
	period, timeout := int32(30), int32(30)
	if h.Interval != nil {
		period = durSecs(*h.Interval)
		t.Mapped("healthcheck.interval", fmt.Sprintf("periodSeconds %d", period))
	}
	if h.Timeout != nil {
		timeout = durSecs(*h.Timeout)
		t.Mapped("healthcheck.timeout", fmt.Sprintf("timeoutSeconds %d", timeout))
	}
	retries := int32(3)
	if h.Retries != nil {
		retries = int32(*h.Retries)
		if retries <= 0 {
			retries = 3
		}
		t.Mapped("healthcheck.retries", fmt.Sprintf("failureThreshold %d", retries))
	}
	probe.PeriodSeconds, probe.TimeoutSeconds, probe.FailureThreshold, probe.SuccessThreshold = period, timeout, retries, 1
	if probe.TimeoutSeconds > probe.PeriodSeconds {
		probe.TimeoutSeconds = probe.PeriodSeconds
	}
	ready := *probe
	live := *probe
	c.Readiness = &ready
	c.Liveness = &live
	msg := "the check gates traffic (readiness) and restarts the container after failureThreshold failures (liveness); if it checks dependencies, a dependency outage restarts pods: give liveness a lighter check"
	if unset, secret := cv.pr.ip.split(vars); len(secret) > 0 {
		msg += "; " + cv.withheldMsg(secret, "shell references")
		if len(unset) > 0 {
			msg += fmt.Sprintf("; %s, which is not set, became an env var you fill", varList(unset))
		}
	}
	t.Warn("healthcheck.test", cref+".readinessProbe, livenessProbe ("+how+")", msg)
	if h.StartPeriod != nil && *h.StartPeriod > 0 {
		sp := durSecs(*h.StartPeriod)
		st := *probe
		st.PeriodSeconds = period
		if h.StartInterval != nil && *h.StartInterval > 0 {
			st.PeriodSeconds = durSecs(*h.StartInterval)
			t.Mapped("healthcheck.start_interval", fmt.Sprintf("startupProbe periodSeconds %d", st.PeriodSeconds))
		}
		if st.TimeoutSeconds > st.PeriodSeconds {
			st.TimeoutSeconds = st.PeriodSeconds
		}
		st.FailureThreshold = (sp + st.PeriodSeconds - 1) / st.PeriodSeconds
		if st.FailureThreshold < 1 {
			st.FailureThreshold = 1
		}
		st.FailureThreshold += retries // Docker counts retries after the start period too
		c.Startup = &st
		t.Mapped("healthcheck.start_period", fmt.Sprintf("startupProbe: %d × %ds before liveness starts", st.FailureThreshold, st.PeriodSeconds))
	} else if h.StartInterval != nil {
		t.Drop("healthcheck.start_interval", "no start_period: nothing to apply it to")
	}
}

func durSecs(d types.Duration) int32 {
	s := int32((int64(d) + 999_999_999) / 1_000_000_000)
	if s < 1 {
		s = 1
	}
	return s
}

// httpCheck recognises the usual curl/wget health checks of a local HTTP
// endpoint ("curl -f http://localhost:8080/health || exit 1") and returns
// the equivalent httpGet probe.
func httpCheck(cmd string) (*service.HTTPGet, bool) {
	cmd = strings.TrimSpace(cmd)
	for _, suffix := range []string{"|| exit 1", "||exit 1", "|| false"} {
		cmd = strings.TrimSpace(strings.TrimSuffix(cmd, suffix))
	}
	if strings.ContainsAny(cmd, "|&;$`><") {
		return nil, false
	}
	f := strings.Fields(cmd)
	if len(f) < 2 {
		return nil, false
	}
	tool := baseName(f[0])
	if tool != "curl" && tool != "wget" {
		return nil, false
	}
	var raw string
	for _, a := range f[1:] {
		a = strings.Trim(a, `'"`)
		switch {
		case strings.HasPrefix(a, "http://") || strings.HasPrefix(a, "https://"):
			if raw != "" {
				return nil, false
			}
			raw = a
		case strings.HasPrefix(a, "-"):
			// Flags that change what is checked: a method, a body, headers.
			switch a {
			case "-X", "--request", "-d", "--data", "-H", "--header", "-u", "--user", "--post-data", "--header=":
				return nil, false
			}
		default:
			if tool == "curl" && raw == "" {
				// An argument of a flag (-m 5, -o /dev/null).
				continue
			}
		}
	}
	if raw == "" {
		return nil, false
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, false
	}
	switch u.Hostname() {
	case "localhost", "127.0.0.1", "0.0.0.0", "::1":
	default:
		return nil, false
	}
	g := &service.HTTPGet{Path: u.EscapedPath()}
	if g.Path == "" {
		g.Path = "/"
	}
	if u.RawQuery != "" {
		g.Path += "?" + u.RawQuery
	}
	port := 80
	if u.Scheme == "https" {
		port = 443
		g.Scheme = "HTTPS"
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 || n > 65535 {
			return nil, false
		}
		port = n
	}
	g.Port = int32(port)
	return g, true
}

// shellJoin quotes args for /bin/sh.
func shellJoin(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a != "" && !strings.ContainsAny(a, " \t\n'\"\\$`|&;<>()*?[]{}~#!") {
			out[i] = a
			continue
		}
		out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(out, " ")
}

// interpolated is a raw value of the file with its variables resolved as
// compose-go saw them ("$SENTRY_BIND:80" → "9000:80"), or "" when it uses
// an unset variable: interpolation left that entry out and reported it.
func (pr *project) interpolated(raw string) string {
	if !strings.Contains(raw, "$") {
		return raw
	}
	out, err := pr.ip.substitute(raw)
	if err != nil || hasSentinel(out) {
		return ""
	}
	return out
}

// portRef is an address name:port of a service, in another service's
// settings.
type portRef struct {
	port  int32
	from  string // the service that uses it
	field string // where: "environment DATABASE_URL"
}

// portReferences returns the ports other enabled services address
// service name on (in their environment, command and entrypoint), first
// seen first, at most 5.
func (pr *project) portReferences(name string) []portRef {
	re := regexp.MustCompile(`(?:^|[^A-Za-z0-9_.-])` + regexp.QuoteMeta(name) + `:([0-9]{1,5})(?:[^0-9]|$)`)
	var out []portRef
	seen := map[int32]bool{}
	look := func(from, field, s string) {
		for _, m := range re.FindAllStringSubmatch(s, -1) {
			n, err := strconv.Atoi(m[1])
			if err != nil || n <= 0 || n > 65535 || seen[int32(n)] || len(out) >= 5 {
				continue
			}
			seen[int32(n)] = true
			out = append(out, portRef{port: int32(n), from: from, field: field})
		}
	}
	names := make([]string, 0, len(pr.p.Services))
	for n := range pr.p.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if n == name {
			continue
		}
		sc := pr.p.Services[n]
		keys := make([]string, 0, len(sc.Environment))
		for k := range sc.Environment {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if v := sc.Environment[k]; v != nil {
				look(n, "environment "+k, *v)
			}
		}
		look(n, "command", strings.Join(sc.Command, " "))
		look(n, "entrypoint", strings.Join(sc.Entrypoint, " "))
	}
	return out
}

// interpolatedKeep is raw with its variables resolved, an unset one left
// as its sentinel, for parsers that only need the rest of the value (the
// target of "${DATA_DIR}:/data").
func (pr *project) interpolatedKeep(raw string) string {
	if !strings.Contains(raw, "$") {
		return raw
	}
	out, err := pr.ip.substitute(raw)
	if err != nil {
		return ""
	}
	return out
}
