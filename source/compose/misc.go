package compose

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"gopkg.in/yaml.v3"

	"github.com/cutoverhq/cutover/service"
)

var (
	labelNameRe   = regexp.MustCompile(`^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)$`)
	labelPrefixRe = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	labelValueRe  = regexp.MustCompile(`^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$`)
)

// validLabel reports whether k=v is a valid Kubernetes label.
func validLabel(k, v string) bool {
	name := k
	if i := strings.LastIndex(k, "/"); i >= 0 {
		prefix := k[:i]
		name = k[i+1:]
		if len(prefix) > 253 || !labelPrefixRe.MatchString(prefix) {
			return false
		}
	}
	return labelNameRe.MatchString(name) && len(v) <= 63 && labelValueRe.MatchString(v)
}

// labels maps container labels to labels of every object of the service.
func (cv *conv) labels(t *ftrack, field string, labels types.Labels) {
	if len(labels) == 0 {
		t.Use(field)
		return
	}
	paths := map[string]item{}
	for _, it := range t.items(field) {
		k := ""
		switch {
		case it.key != nil:
			k = it.key.Value
		case it.val.Kind == yaml.ScalarNode:
			k, _, _ = strings.Cut(it.val.Value, "=")
		}
		paths[k] = it
	}
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := labels[k]
		var tr reporter = t
		p := field
		if it, ok := paths[k]; ok {
			tr, p = t.in(it.file), it.path
		}
		switch {
		case strings.HasPrefix(k, "traefik."):
			if k == "traefik.enable" {
				tr.Mapped(p, "Expose routes (the service is routed from outside)")
				continue
			}
			if strings.HasSuffix(k, ".rule") || strings.HasSuffix(k, ".loadbalancer.server.port") {
				tr.Warn(p, "Expose routes", "Traefik routing became the service's routes (HTTPRoute); check middlewares and TLS by hand")
				continue
			}
			tr.Drop(p, "Traefik setting: recreate it as Gateway API route filters by hand")
		case strings.HasPrefix(k, "com.docker.") || strings.HasPrefix(k, "org.opencontainers."):
			tr.Drop(p, "Docker runtime metadata")
		case hasSentinel(v):
			tr.Warn(p, "", cv.varsWhy(v)+": label left out")
		case validLabel(k, v):
			if cv.svc.Labels == nil {
				cv.svc.Labels = map[string]string{}
			}
			cv.svc.Labels[k] = v
			tr.Mapped(p, "metadata.labels "+k)
		default:
			tr.Drop(p, "not a valid Kubernetes label (name or value too long, or characters outside [A-Za-z0-9._-]): add it as an annotation by hand")
		}
	}
	t.Use(field)
}

// linksMsg says what becomes of links: each service is reached at the
// DNS name of its Service, which is no alias; and nothing starts first.
func linksMsg(links []string) string {
	msg := "services reach each other by Service name (cluster DNS); links are not needed"
	var aliased []string
	for _, l := range links {
		if name, alias, ok := strings.Cut(l, ":"); ok && alias != name {
			aliased = append(aliased, fmt.Sprintf("%s as %s (use %s, or add a Service named %s by hand)", name, alias, service.SanitizeName(name), alias))
		}
	}
	if len(aliased) > 0 {
		msg += "; this service reached " + strings.Join(aliased, ", ")
	}
	return msg + "; compose also started the linked services first: on Kubernetes the app must retry until they answer"
}

// networking reports what Kubernetes networking replaces: compose networks,
// aliases, links, host names.
func (cv *conv) networking(t *ftrack, sc types.ServiceConfig) {
	if t.Has("networks") {
		var names []string
		for n := range sc.Networks {
			names = append(names, n)
		}
		sort.Strings(names)
		msg := fmt.Sprintf("pods share one flat network: compose network isolation (%s) becomes NetworkPolicies you write (allow from the services on the same networks)", strings.Join(names, ", "))
		t.Warn("networks", "NetworkPolicy", msg)
		for _, n := range names {
			cv.finish["networks."+n] = true
			if nc := sc.Networks[n]; nc != nil && len(nc.Aliases) > 0 {
				t.Use("networks." + n)
			}
		}
		for _, n := range names {
			if nc := sc.Networks[n]; nc != nil && len(nc.Aliases) > 0 {
				t.Warn("networks."+n+".aliases", "", fmt.Sprintf("other services reached it as %s: on Kubernetes they must use %s (or add Services of those names by hand)", strings.Join(nc.Aliases, ", "), cv.svc.Name))
			}
		}
		for _, n := range names {
			tt := cv.root.At("networks." + n)
			if tt.Has("") {
				tt.Warn("", "NetworkPolicy", "network settings (driver, subnets, external) do not apply: the cluster network is the CNI's")
			}
		}
	}
	switch {
	case sc.NetworkMode == "host":
		t.Warn("network_mode", "", "host networking: the pod gets its own IP; ports are reached through the Service (hostNetwork is refused by the baseline Pod Security Standard)")
	case strings.HasPrefix(sc.NetworkMode, "service:") || strings.HasPrefix(sc.NetworkMode, "container:"):
		t.Warn("network_mode", "", "shares another container's network namespace: on Kubernetes that means one pod with both containers (a sidecar); merge them by hand")
	case sc.NetworkMode == "none":
		t.Drop("network_mode", "no network: Kubernetes always gives a pod one; restrict it with a deny-all NetworkPolicy")
	case sc.NetworkMode != "":
		t.Drop("network_mode", "the pod uses the cluster network")
	}
	if sc.ContainerName != "" {
		t.Drop("container_name", fmt.Sprintf("Kubernetes names pods itself; services that used %q must use the Service name %s", sc.ContainerName, cv.svc.Name))
	}
	if sc.Hostname != "" {
		t.Drop("hostname", "the pod's host name is its name; other services reach it through the Service "+cv.svc.Name)
	}
	if len(sc.Links) > 0 {
		t.Drop("links", linksMsg(sc.Links))
	}
	if len(sc.ExternalLinks) > 0 {
		t.Warn("external_links", "", "containers outside the project: reach them through a Service of type ExternalName or their real address")
	}
	if len(sc.ExtraHosts) > 0 {
		t.Warn("extra_hosts", "", "static /etc/hosts entries: use DNS (Route 53 private zone) or add hostAliases to the pod by hand")
	}
	if sc.Logging != nil || sc.LogDriver != "" {
		field := "logging"
		if !t.Has(field) {
			field = "log_driver"
		}
		driver := sc.LogDriver
		if sc.Logging != nil && sc.Logging.Driver != "" {
			driver = sc.Logging.Driver
		}
		t.Warn(field, "stdout/stderr", fmt.Sprintf("Kubernetes keeps container stdout/stderr and a node agent (Fluent Bit, CloudWatch agent) ships it; the %s driver and its options are replaced by that agent's configuration", orDefault(driver, "default")))
		t.Use("logging")
		t.Use("log_driver")
		t.Use("log_opt")
	}
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// dropMessages say why a compose field has no place on Kubernetes and what
// to do instead; fields not listed are reported by the tracker.
var dropMessages = []struct{ field, msg string }{
	{"domainname", "the pod's DNS domain is the cluster's"},
	{"dns", "pods use the cluster DNS; set dnsConfig by hand if they need other resolvers"},
	{"dns_search", "pods use the cluster DNS search path; set dnsConfig by hand"},
	{"dns_opt", "set dnsConfig options by hand"},
	{"ulimits", "ulimits come from the node's container runtime on Kubernetes, not from the pod"},
	{"sysctls", "only namespaced safe sysctls can be set per pod (securityContext.sysctls), by hand"},
	{"init", "no --init on Kubernetes: if the process does not reap children, use tini as the image's entrypoint"},
	{"tty", "pods have no terminal"},
	{"stdin_open", "pods have no stdin"},
	{"pid", "a shared pid namespace exists only within a pod (shareProcessNamespace)"},
	{"ipc", "IPC namespaces are per pod"},
	{"security_opt", "seccomp and AppArmor come from the pod's securityContext (RuntimeDefault under the restricted Pod Security Standard)"},
	{"devices", "host devices are exposed through device plugins on Kubernetes"},
	{"device_cgroup_rules", "host devices are exposed through device plugins on Kubernetes"},
	{"cpuset", "CPU pinning is the kubelet's static CPU manager's job (Guaranteed pods)"},
	{"cpu_count", "Windows only"},
	{"cpu_percent", "Windows only"},
	{"cpu_rt_period", "real-time scheduling is not available to pods"},
	{"cpu_rt_runtime", "real-time scheduling is not available to pods"},
	{"memswap_limit", "Kubernetes nodes run without swap by default"},
	{"mem_swappiness", "Kubernetes nodes run without swap by default"},
	{"oom_kill_disable", "the kubelet decides OOM behaviour from the pod's QoS class"},
	{"oom_score_adj", "the kubelet sets OOM scores from the pod's QoS class"},
	{"pids_limit", "the pid limit is a node setting (kubelet podPidsLimit)"},
	{"group_add", "supplementary groups go in the pod's securityContext.supplementalGroups, by hand"},
	{"develop", "compose watch is a development feature"},
	{"runtime", "pick a RuntimeClass by hand (gVisor, Kata)"},
	{"post_start", "lifecycle hooks: recreate as a postStart exec hook by hand"},
	{"pre_stop", "lifecycle hooks: cutover adds a preStop sleep; add commands by hand"},
	{"pre_start", "run it as an init container by hand"},
	{"annotations", "container annotations are not carried over"},
	{"userns_mode", "user namespaces are a pod setting (hostUsers: false) on recent Kubernetes"},
	{"uts", "the UTS namespace is per pod"},
	{"cgroup", "cgroups are the kubelet's"},
	{"cgroup_parent", "cgroups are the kubelet's"},
	{"isolation", "Windows isolation mode"},
	{"mac_address", "pods get their addresses from the CNI"},
	{"storage_opt", "container storage options are the node's; use ephemeral-storage limits"},
	{"volume_driver", "the StorageClass decides"},
	{"credential_spec", "Windows gMSA: set by hand"},
	{"blkio_config", "block I/O weights are not available to pods"},
	{"attach", "logs are always collected"},
	{"gpus", "GPUs come from a device plugin: request nvidia.com/gpu by hand"},
	{"use_api_socket", "no Docker API on Kubernetes nodes"},
	{"umask", "set the umask in the image's entrypoint"},
	{"label_file", "its labels were read with the others"},
	{"models", "compose AI models have no Kubernetes counterpart"},
	{"provider", "compose providers have no Kubernetes counterpart"},
}

func (cv *conv) dropped(t *ftrack, sc types.ServiceConfig) {
	done := map[string]bool{}
	if opts := sc.SecurityOpt; len(opts) > 0 {
		nnp := true
		for _, o := range opts {
			if o != "no-new-privileges" && o != "no-new-privileges:true" && o != "no-new-privileges=true" {
				nnp = false
			}
		}
		if nnp {
			t.Mapped("security_opt", "securityContext.allowPrivilegeEscalation: false (the chart's default)")
			done["security_opt"] = true
		}
	}
	for _, d := range dropMessages {
		if t.Has(d.field) && !done[d.field] {
			t.Drop(d.field, d.msg)
		}
	}
}
