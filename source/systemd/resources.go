package systemd

import (
	"fmt"
	"math"
	"net"
	"regexp"
	"strconv"
	"strings"

	"github.com/cutoverhq/cutover/service"
)

// resources maps the cgroup limits of systemd.resource-control(5) and the
// rlimits of systemd.exec(5).
func (cv *conv) resources() {
	ref := "containers[" + cv.c.Name + "].resources"
	r := &cv.c.Resources
	memMax := cv.last("Service", "MemoryMax")
	if legacy := cv.last("Service", "MemoryLimit"); legacy != nil {
		if memMax == nil {
			memMax = legacy
		} else {
			cv.drop(legacy, "MemoryMax= takes precedence")
		}
	}
	if e := memMax; e != nil {
		if q, ok := memQuantity(e.Value); ok {
			r.MemoryLimit = q
			cv.mapped(e, ref+".limits.memory "+q)
		} else {
			cv.warn(e, "", "cannot convert "+e.Value+" (a percentage of the VM's memory, or infinity): set the limit in values")
		}
	}
	// The request is what the service is guaranteed: MemoryMin, else
	// MemoryLow (best-effort protection), else MemoryHigh (the throttle
	// point, usually close to steady-state use).
	for _, key := range []string{"MemoryMin", "MemoryLow", "MemoryHigh"} {
		e := cv.last("Service", key)
		if e == nil {
			continue
		}
		q, ok := memQuantity(e.Value)
		switch {
		case !ok:
			cv.warn(e, "", "cannot convert "+e.Value+": set the request in values")
		case r.MemoryRequest != "":
			cv.drop(e, "the request came from a stronger guarantee already; Kubernetes has no throttling threshold")
		case key == "MemoryHigh":
			r.MemoryRequest = q
			cv.warn(e, ref+".requests.memory "+q, "MemoryHigh throttles above it; Kubernetes has no such threshold, so it became the request (what the scheduler reserves)")
		default:
			r.MemoryRequest = q
			cv.mapped(e, ref+".requests.memory "+q)
		}
	}
	if e := cv.last("Service", "MemorySwapMax"); e != nil {
		cv.drop(e, "Kubernetes nodes run without swap by default")
	}
	if e := cv.last("Service", "CPUQuota"); e != nil {
		v := strings.TrimSuffix(strings.TrimSpace(e.Value), "%")
		if pct, err := strconv.ParseFloat(v, 64); err == nil && pct > 0 {
			r.CPULimit = cpuQuantity(pct / 100)
			cv.mapped(e, ref+".limits.cpu "+r.CPULimit)
		} else {
			cv.warn(e, "", "cannot convert "+e.Value)
		}
	}
	for _, key := range []string{"CPUWeight", "CPUShares", "StartupCPUWeight", "StartupCPUShares"} {
		if e := cv.last("Service", key); e != nil {
			cv.drop(e, "a relative weight: set a CPU request from measured use instead")
		}
	}
	for _, key := range []string{"AllowedCPUs", "CPUAffinity", "NUMAPolicy", "NUMAMask", "AllowedMemoryNodes"} {
		if e := cv.last("Service", key); e != nil {
			cv.drop(e, "CPU pinning is the kubelet's static CPU manager's job (Guaranteed pods)")
		}
	}
	for _, key := range []string{"TasksMax", "LimitNPROC"} {
		if e := cv.last("Service", key); e != nil {
			cv.drop(e, "the pid limit is a node setting on Kubernetes (kubelet podPidsLimit)")
		}
	}
	if e := cv.last("Service", "LimitNOFILE"); e != nil {
		need := "is at least " + e.Value
		soft, hard, pair := strings.Cut(e.Value, ":")
		switch {
		case e.Value == "infinity":
			need = "is as high as the service needs: systemd set no limit (infinity)"
		case pair && hard == "infinity":
			need = "is at least " + soft + " (the soft limit; systemd set no hard limit)"
		case pair:
			need = "is at least " + soft + " (the soft limit; the hard limit was " + hard + ")"
		}
		cv.warn(e, "", "open-file limits come from the node's container runtime, not from the pod: check that the nodes' limit (ulimit -n in a pod) "+need)
	}
	for _, e := range cv.entries {
		if e.Section == "Service" && !e.used && strings.HasPrefix(e.Key, "Limit") {
			cv.drop(e, "rlimits come from the node's container runtime on Kubernetes, not from the pod")
		}
	}
	for _, key := range []string{"IOWeight", "IODeviceWeight", "IOReadBandwidthMax", "IOWriteBandwidthMax", "IOReadIOPSMax", "IOWriteIOPSMax", "BlockIOWeight", "Nice", "CPUSchedulingPolicy", "CPUSchedulingPriority", "IOSchedulingClass", "IOSchedulingPriority", "OOMScoreAdjust", "OOMPolicy", "Slice", "Delegate", "CPUAccounting", "MemoryAccounting", "IOAccounting", "TasksAccounting", "IPAccounting", "ManagedOOMSwap", "ManagedOOMMemoryPressure"} {
		for _, e := range cv.all("Service", key) {
			cv.drop(e, "a cgroup or scheduling setting of the VM: pods get these from their QoS class and the node")
		}
	}
}

// memQuantity converts a systemd size (bytes, or K/M/G/T, base 1024) to a
// Kubernetes quantity.
func memQuantity(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if s == "" || strings.HasSuffix(s, "%") || s == "infinity" {
		return "", false
	}
	mult := int64(1)
	switch s[len(s)-1] {
	case 'K', 'k':
		mult = 1 << 10
	case 'M', 'm':
		mult = 1 << 20
	case 'G', 'g':
		mult = 1 << 30
	case 'T', 't':
		mult = 1 << 40
	}
	if mult > 1 {
		s = s[:len(s)-1]
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f <= 0 || f*float64(mult) > 1<<62 {
		return "", false
	}
	b := int64(f * float64(mult))
	for _, u := range []struct {
		suffix string
		size   int64
	}{{"Ti", 1 << 40}, {"Gi", 1 << 30}, {"Mi", 1 << 20}, {"Ki", 1 << 10}} {
		if b >= u.size && b%u.size == 0 {
			return strconv.FormatInt(b/u.size, 10) + u.suffix, true
		}
	}
	return strconv.FormatInt(b, 10), true
}

func cpuQuantity(cpus float64) string {
	m := int64(math.Round(cpus * 1000))
	if m <= 0 {
		m = 1
	}
	if m%1000 == 0 {
		return strconv.FormatInt(m/1000, 10)
	}
	return strconv.FormatInt(m, 10) + "m"
}

// isolated are sandboxing keys a container already has: its own mount,
// pid and device namespaces, no module loading, read-only /proc/sys.
var isolated = map[string]string{
	"ProtectHome":             "a container sees no /home of the node",
	"ProtectKernelTunables":   "/proc/sys is read-only in a container",
	"ProtectKernelModules":    "a container cannot load kernel modules (no CAP_SYS_MODULE)",
	"ProtectKernelLogs":       "a container cannot read the kernel log (no CAP_SYSLOG)",
	"ProtectControlGroups":    "the cgroup file system is read-only in a container",
	"ProtectClock":            "a container cannot set the clock (no CAP_SYS_TIME)",
	"ProtectHostname":         "a pod has its own UTS namespace",
	"PrivateDevices":          "a container gets a minimal /dev",
	"PrivateMounts":           "a container has its own mount namespace",
	"PrivateIPC":              "a pod has its own IPC namespace",
	"PrivatePIDs":             "a pod has its own pid namespace",
	"ProtectProc":             "a container sees only its own processes",
	"ProcSubset":              "a container sees only its own processes",
	"RestrictRealtime":        "pods cannot use real-time scheduling",
	"KeyringMode":             "the container runtime gives each container its own session keyring",
	"RemoveIPC":               "IPC objects go away with the pod",
	"RestrictNamespaces":      "RuntimeDefault seccomp refuses unprivileged namespace creation",
	"LockPersonality":         "RuntimeDefault seccomp restricts personality()",
	"SystemCallArchitectures": "RuntimeDefault seccomp allows only the native architecture",
}

// sandbox maps the sandboxing keys of systemd.exec(5).
func (cv *conv) sandbox() {
	ref := "containers[" + cv.c.Name + "].securityContext"
	if e := cv.last("Service", "ProtectSystem"); e != nil {
		switch strings.ToLower(e.Value) {
		case "strict":
			t := true
			cv.c.ReadOnlyRootFilesystem = &t
			cv.readOnlyRoot = true
			cv.mapped(e, ref+".readOnlyRootFilesystem")
		case "full", "yes", "true", "1", "on":
			cv.warn(e, "", "/usr and /boot (and /etc for full) were read-only: a container can only make its whole root read-only; set readOnlyRootFilesystem once the writable paths are volumes")
		default:
			cv.mapped(e, "nothing to do")
		}
	}
	if e := cv.last("Service", "PrivateTmp"); e != nil {
		if parseBool(e.Value) || strings.EqualFold(e.Value, "disconnected") {
			name := cv.volume(service.Volume{Name: "tmp", Kind: service.VolumeEmptyDir})
			cv.c.VolumeMounts = append(cv.c.VolumeMounts, service.VolumeMount{Name: name, MountPath: "/tmp"})
			cv.mapped(e, "emptyDir "+name+" at /tmp")
		} else {
			cv.mapped(e, "nothing to do")
		}
	}
	if e := cv.last("Service", "NoNewPrivileges"); e != nil {
		if parseBool(e.Value) {
			cv.warn(e, ref+".allowPrivilegeEscalation", "set allowPrivilegeEscalation: false (the restricted Pod Security Standard requires it; the service model has no field for it, so the chart's default decides)")
		} else {
			cv.mapped(e, "nothing to do")
		}
	}
	cv.capabilities(ref)
	for _, key := range service.SortedKeys(isolated) {
		for _, e := range cv.all("Service", key) {
			cv.mapped(e, "nothing to do: "+isolated[key])
		}
	}
	for _, key := range []string{"SystemCallFilter", "SystemCallErrorNumber", "RestrictAddressFamilies", "MemoryDenyWriteExecute", "RestrictSUIDSGID", "RestrictFileSystems", "IPAddressDeny", "IPAddressAllow", "SocketBindAllow", "SocketBindDeny", "PrivateUsers", "ProtectSystem", "UMask", "SecureBits", "SELinuxContext", "AppArmorProfile", "SmackProcessLabel", "PrivateNetwork", "NetworkNamespacePath"} {
		for _, e := range cv.all("Service", key) {
			if e.used {
				continue
			}
			switch key {
			case "PrivateNetwork":
				if parseBool(e.Value) {
					cv.warn(e, "", "no network at all on the VM; a pod always has one: restrict it with a deny-all NetworkPolicy")
				} else {
					cv.mapped(e, "nothing to do")
				}
			case "IPAddressDeny", "IPAddressAllow", "SocketBindAllow", "SocketBindDeny":
				cv.warn(e, "NetworkPolicy", "network filtering becomes a NetworkPolicy you write")
			default:
				cv.drop(e, "no pod-level equivalent: RuntimeDefault seccomp and dropped capabilities cover part of it")
			}
		}
	}
	for _, key := range []string{"RootDirectory", "RootImage", "MountAPIVFS", "BindPaths", "BindReadOnlyPaths", "TemporaryFileSystem", "MountImages", "ExtensionImages"} {
		for _, e := range cv.all("Service", key) {
			cv.warn(e, "", "the image is the container's root: put these files in the image or mount volumes by hand")
		}
	}
}

func capNames(caps []string) []string {
	out := make([]string, 0, len(caps))
	for _, c := range caps {
		out = append(out, strings.TrimPrefix(strings.ToUpper(c), "CAP_"))
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (cv *conv) volume(v service.Volume) string {
	v.Name = service.SanitizeName(v.Name)
	for _, have := range cv.svc.Volumes {
		if have.Name == v.Name {
			return v.Name
		}
	}
	cv.svc.Volumes = append(cv.svc.Volumes, v)
	return v.Name
}

func (cv *conv) mount(name, path string) {
	for _, m := range cv.c.VolumeMounts {
		if m.MountPath == path {
			return
		}
	}
	cv.c.VolumeMounts = append(cv.c.VolumeMounts, service.VolumeMount{Name: name, MountPath: path})
}

// directories maps StateDirectory= and friends (directories systemd
// creates for the service) and ReadWritePaths=.
func (cv *conv) directories() {
	dirs := []struct {
		key, base string
		kind      service.VolumeKind
		msg       string
	}{
		{"StateDirectory", "/var/lib/", service.VolumeClaim, "state survives restarts: a PersistentVolumeClaim (ReadWriteOnce, one pod at a time); copy the VM's data into it before the cut-over"},
		{"CacheDirectory", "/var/cache/", service.VolumeEmptyDir, "a cache: an emptyDir, empty at every pod start"},
		{"LogsDirectory", "/var/log/", service.VolumeEmptyDir, "an emptyDir, lost with the pod: log to stdout instead, where the node's agent collects it"},
		{"RuntimeDirectory", "/run/", service.VolumeEmptyDir, "an emptyDir, as on the VM it lived as long as the service"},
	}
	for _, d := range dirs {
		for _, e := range cv.list("Service", d.key) {
			var targets []string
			for _, w := range strings.Fields(cv.expand(e, e.Value)) {
				w, _, _ = strings.Cut(w, ":")
				p := d.base + strings.Trim(w, "/")
				name := cv.volume(service.Volume{Name: strings.ToLower(strings.TrimSuffix(d.key, "Directory")) + "-" + w, Kind: d.kind})
				cv.mount(name, p)
				targets = append(targets, string(d.kind)+" "+name+" at "+p)
			}
			if d.kind == service.VolumeClaim {
				cv.warn(e, strings.Join(targets, ", "), d.msg)
			} else {
				cv.warn(e, strings.Join(targets, ", "), d.msg)
			}
		}
		if e := cv.last("Service", d.key+"Mode"); e != nil {
			cv.drop(e, "directory mode: the image or an fsGroup sets ownership")
		}
	}
	for _, e := range cv.list("Service", "ConfigurationDirectory") {
		cv.warn(e, "", "/etc/"+e.Value+" must come with the image or as ConfigMap files mounted there")
	}
	if e := cv.last("Service", "ConfigurationDirectoryMode"); e != nil {
		cv.drop(e, "directory mode: the image sets it")
	}
	for _, e := range cv.list("Service", "ReadWritePaths") {
		if !cv.readOnlyRoot {
			cv.mapped(e, "nothing to do: the root file system is writable")
			continue
		}
		var targets []string
		for _, p := range strings.Fields(cv.expand(e, e.Value)) {
			p = strings.TrimLeft(p, "-+")
			name := cv.volume(service.Volume{Name: "rw" + strings.ReplaceAll(p, "/", "-"), Kind: service.VolumeEmptyDir})
			cv.mount(name, p)
			targets = append(targets, "emptyDir "+name+" at "+p)
		}
		cv.warn(e, strings.Join(targets, ", "), "writable under a read-only root: an emptyDir, lost with the pod; if it holds data to keep, make it a volume claim in values")
	}
	for _, key := range []string{"ReadOnlyPaths", "InaccessiblePaths", "ExecPaths", "NoExecPaths"} {
		for _, e := range cv.list("Service", key) {
			cv.drop(e, "path restrictions of the VM: the container only has what the image and its volumes hold")
		}
	}
}

// socket maps the .socket unit that activates the service: its listening
// ports become the container's ports. The app must open them itself.
func (cv *conv) socket(uf *unitFile) {
	for _, e := range uf.Entries {
		switch {
		case e.Section == "Socket" && (e.Key == "ListenStream" || e.Key == "ListenDatagram" || e.Key == "ListenSequentialPacket"):
			port, ok := listenPort(e.Value)
			if !ok {
				cv.warn(e, "", e.Value+" is not a TCP/UDP port (a Unix socket?): other pods cannot reach it; listen on a port")
				continue
			}
			p := service.Port{ContainerPort: port}
			if e.Key == "ListenDatagram" {
				p.Protocol = "UDP"
			}
			cv.c.Ports = append(cv.c.Ports, p)
			cv.isServer = true
			if cv.svc.Expose == nil {
				cv.svc.Expose = &service.Expose{Port: port}
			}
			cv.warn(e, fmt.Sprintf("containerPort %d, Service", port), "socket activation: systemd opened the port and passed it (LISTEN_FDS); in a container the app must open it itself")
		case e.Section == "Socket" && e.Key == "Accept":
			if parseBool(e.Value) {
				cv.warn(e, "", "Accept=yes started one process per connection (inetd style): the app must serve many connections in one process")
			} else {
				cv.mapped(e, "nothing to do")
			}
		case e.Section == "Socket" && e.Key == "Service":
			cv.mapped(e, "this service")
		case e.Section == "Install":
			cv.drop(e, "enablement at boot: on Kubernetes a workload runs when it is deployed")
		case e.Section == "Unit" && (e.Key == "Description" || e.Key == "Documentation"):
			cv.drop(e, "kept in the report only")
		default:
			cv.drop(e, "socket setting: the app owns its listening socket in a container")
		}
		e.used = true
	}
}

// listenPort reads the port of a ListenStream= value: "8080",
// "0.0.0.0:8080", "[::]:8080"; a path is a Unix socket.
func listenPort(v string) (int32, bool) {
	v = strings.TrimSpace(v)
	if strings.HasPrefix(v, "/") || strings.HasPrefix(v, "@") {
		return 0, false
	}
	if n, err := strconv.Atoi(v); err == nil && n > 0 && n < 65536 {
		return int32(n), true
	}
	if _, p, err := net.SplitHostPort(v); err == nil {
		if n, err := strconv.Atoi(p); err == nil && n > 0 && n < 65536 {
			return int32(n), true
		}
	}
	return 0, false
}

var (
	portFlagRe = regexp.MustCompile(`^--?([a-z0-9.-]*(?:port|listen|bind|addr|address)[a-z0-9.-]*)(?:=(.*))?$`)
	portValRe  = regexp.MustCompile(`(?:^|:)([0-9]{2,5})$`)
	portEnvRe  = regexp.MustCompile(`^(?:[A-Z0-9_]*_)?(?:PORT|LISTEN|ADDR|ADDRESS|BIND)$`)
)

// guessPort looks for the port a service listens on in its command line
// (--port 8080, --listen-address=:9100, -bind 0.0.0.0:80) and environment
// (PORT=8080): a unit does not declare it, but other services need a
// Service to reach it.
func (cv *conv) guessPort() {
	var port int32
	var from string
	args := cv.c.Command
	for i := 1; i < len(args) && port == 0; i++ {
		m := portFlagRe.FindStringSubmatch(strings.ToLower(args[i]))
		if m == nil {
			continue
		}
		val, flag := m[2], args[i]
		if val == "" && i+1 < len(args) {
			val = args[i+1]
		}
		if pm := portValRe.FindStringSubmatch(val); pm != nil {
			if n, err := strconv.Atoi(pm[1]); err == nil && n > 0 && n < 65536 {
				port, from = int32(n), "the command line flag "+strings.SplitN(flag, "=", 2)[0]
			}
		}
	}
	if port == 0 {
		for _, k := range sortedKeys(cv.env) {
			if !portEnvRe.MatchString(k) {
				continue
			}
			if pm := portValRe.FindStringSubmatch(cv.env[k]); pm != nil {
				if n, err := strconv.Atoi(pm[1]); err == nil && n > 0 && n < 65536 {
					port, from = int32(n), "the variable "+k
					break
				}
			}
		}
	}
	hdr := cv.u.Main.Sections["Service"]
	if port == 0 {
		if t := cv.last("Service", "Type"); t != nil && t.Value == "oneshot" {
			return // runs to completion: nobody connects to it
		}
		cv.svc.Report.Warn(cv.u.Main.Path, hdr, "Service", "", "no listening port found (no .socket unit, no --port flag): it became a worker without a Service; if it serves requests, add its port in values")
		return
	}
	cv.c.Ports = []service.Port{{ContainerPort: port}}
	cv.svc.Expose = &service.Expose{Port: port}
	cv.isServer = true
	cv.svc.Report.Warn(cv.u.Main.Path, hdr, "Service", fmt.Sprintf("containerPort %d, Service", port), fmt.Sprintf("port %d taken from %s: check it is the port clients use", port, from))
}

func sortedKeys(m map[string]string) []string {
	return service.SortedKeys(m)
}

// capSet is a capability set as systemd builds it from several
// assignments: every capability but drop (all), or only keep.
type capSet struct {
	set  bool // an assignment was made
	all  bool
	keep []string
	drop []string
}

// assign applies one CapabilityBoundingSet= or AmbientCapabilities=
// value: lines are ORed, a ~ line removes, an empty one resets
// (systemd.exec(5)).
func (s *capSet) assign(v string) {
	v = strings.TrimSpace(v)
	if v == "" {
		*s = capSet{set: true}
		return
	}
	invert := strings.HasPrefix(v, "~")
	caps := capNames(strings.Fields(strings.TrimPrefix(v, "~")))
	switch {
	case !s.set && invert:
		*s = capSet{set: true, all: true, drop: caps}
	case !s.set:
		*s = capSet{set: true, keep: caps}
	case s.all && invert:
		s.drop = union(s.drop, caps)
	case s.all:
		s.drop = minus(s.drop, caps)
	case invert:
		s.keep = minus(s.keep, caps)
	default:
		s.keep = union(s.keep, caps)
	}
}

// has reports whether the set holds capability c.
func (s capSet) has(c string) bool {
	if !s.set || s.all {
		return !contains(s.drop, c)
	}
	return contains(s.keep, c)
}

func union(a, b []string) []string {
	out := append([]string(nil), a...)
	for _, x := range b {
		if !contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

func minus(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// capabilities maps CapabilityBoundingSet= and AmbientCapabilities=. The
// bounding set only limits; what the process holds is the bounding set
// when it runs as root, and its ambient capabilities within the bounding
// set when it runs as another user.
func (cv *conv) capabilities(ref string) {
	var bounding, ambient capSet
	bes := cv.all("Service", "CapabilityBoundingSet")
	for _, e := range bes {
		bounding.assign(e.Value)
	}
	aes := cv.all("Service", "AmbientCapabilities")
	for _, e := range aes {
		ambient.assign(e.Value)
	}
	if !bounding.set && !ambient.set {
		return
	}
	root := true
	if e := cv.last("Service", "User"); e != nil && e.Value != "" && e.Value != "root" && e.Value != "0" {
		root = false
	}
	if e := cv.last("Service", "DynamicUser"); e != nil && parseBool(e.Value) {
		root = false
	}
	var add []string
	switch {
	case root && bounding.set && !bounding.all:
		add = bounding.keep
	case root && bounding.set:
		// All capabilities but the dropped ones: the container
		// runtime's default set, less those.
	case ambient.set && !ambient.all:
		for _, c := range ambient.keep {
			if bounding.has(c) {
				add = append(add, c)
			}
		}
	}
	var target string
	switch {
	case root && bounding.set && bounding.all:
		cv.c.CapDrop = bounding.drop
		target = ref + ".capabilities.drop " + strings.Join(bounding.drop, ", ")
	default:
		cv.c.CapDrop = []string{"ALL"}
		cv.c.CapAdd = union(cv.c.CapAdd, add)
		target = ref + ".capabilities: drop ALL, add " + orDefault(strings.Join(add, ", "), "none")
	}
	var others []string
	for _, c := range add {
		if c != "NET_BIND_SERVICE" {
			others = append(others, c)
		}
	}
	// Say why only when the bounding set named capabilities the
	// process did not hold, or when several lines made it.
	var notes []string
	if !root && bounding.set && !bounding.all && len(minus(bounding.keep, add)) > 0 {
		notes = append(notes, "it runs as a non-root user, so it held only its ambient capabilities within the bounding set")
	}
	if len(bes) > 1 {
		notes = append(notes, fmt.Sprintf("the %d CapabilityBoundingSet= lines combine", len(bes)))
	}
	btarget := target
	if len(notes) > 0 {
		btarget += " (" + strings.Join(notes, "; ") + ")"
	}
	for _, e := range bes {
		if !e.used {
			cv.mapped(e, btarget)
		}
	}
	for _, e := range aes {
		if e.used {
			continue
		}
		var held []string
		if !strings.HasPrefix(strings.TrimSpace(e.Value), "~") {
			for _, c := range capNames(strings.Fields(e.Value)) {
				if contains(add, c) {
					held = append(held, c)
				}
			}
		}
		atarget := ref + ".capabilities.add " + orDefault(strings.Join(held, ", "), "none")
		if len(others) > 0 {
			cv.warn(e, atarget, "the restricted Pod Security Standard allows adding only NET_BIND_SERVICE ("+strings.Join(others, ", ")+" is refused)")
			continue
		}
		cv.mapped(e, atarget)
	}
	if len(others) > 0 && len(aes) == 0 {
		cv.warn(bes[len(bes)-1], ref+".capabilities.add", "the restricted Pod Security Standard allows adding only NET_BIND_SERVICE ("+strings.Join(others, ", ")+" is refused)")
	}
}
