package helm

import (
	"fmt"

	"gopkg.in/yaml.v3"

	"github.com/cutoverhq/cutover/render"
)

// EnvironmentKeys returns the value paths environments may set
// differently, as base.yaml lists them under environmentKeys; `cutover
// lint` reports a difference anywhere else as drift. A path covers
// everything under it. (A layout's base.yaml may since have been edited:
// lint reads it there.)
func EnvironmentKeys() []string { return append([]string(nil), environmentKeys...) }

// Beyond sizes and names, environment keys hold what usually lives in
// another AWS account per environment: roles, queues, secrets, file
// systems.
var environmentKeys = []string{
	"environment",
	"namespace",
	"replicaBounds",
	"replicas",
	"resources",
	"images",
	"autoscaling.minReplicas",
	"autoscaling.maxReplicas",
	"keda.minReplicaCount",
	"keda.maxReplicaCount",
	"keda.triggers",
	"config",
	"secrets",
	"externalSecrets.clusterSecretStores",
	"aws.region",
	"serviceAccount.roleArn",
	"serviceAccount.roleArnFill",
	"fill",
	"volumes",
	"route.hostnames",
	"route.domain",
	"route.parentRefs",
	"route.internalParentRefs",
	"networkPolicy.gatewayNamespaces",
	"networkPolicy.metricsNamespaces",
	"networkPolicy.apiServer",
	"nodeSelector",
	"tolerations",
	"persistence.storageClass",
	"persistence.efsStorageClass",
	"suspend",
}

// baseValues is values/base.yaml: the house defaults a platform team tunes
// in one place. They restate the chart's defaults on purpose, so that the
// policy every service gets is read (and changed) here, not in the chart.
func baseValues(opts render.Options) []byte {
	m := newMap()
	m.setc("environmentKeys", "Values environments may set differently (in env/<env>.yaml or a service's\nenvironments:); cutover lint reports any other difference as drift.\nA path covers everything under it.", strSeq(environmentKeys))
	m.setc("partOf", "app.kubernetes.io/part-of of every object.", str(opts.Team))

	m.setc("podSecurityContext", "Pod and container hardening: the Pod Security \"restricted\" level, and\nkube-score's checks. Containers whose input named no user run as\n10001:10001 (ids above 10000 cannot clash with a node's users); a container\nwhose input named a user or group keeps it (securityContext in its service\nfile). fsGroup makes volumes writable for that group.", newMap().
		set("runAsUser", intNode(defaultUID)).
		set("runAsGroup", intNode(defaultUID)).
		set("fsGroup", intNode(defaultUID)).
		set("seccompProfile", newMap().set("type", str("RuntimeDefault")).node()).node())
	m.setc("containerSecurityContext", "Every root filesystem is read-only unless a service's file says\notherwise (as where the input asked for a writable one); writableTmp gives\neach such container a writable /tmp.", newMap().
		set("allowPrivilegeEscalation", boolNode(false)).
		set("readOnlyRootFilesystem", boolNode(true)).
		set("capabilities", newMap().set("drop", strSeq([]string{"ALL"})).node()).node())
	m.setc("runAsNonRoot", "runAsNonRoot on every container that runs as a user other than root.", boolNode(true))
	m.setc("writableTmp", "An emptyDir at /tmp of every container whose root filesystem is read-only\nand that mounts nothing there itself. sizeLimit \"\" leaves it bounded by the\npod's ephemeral-storage limits; medium Memory makes it a tmpfs, counted\nagainst the memory limit.", newMap().
		set("enabled", boolNode(true)).
		set("sizeLimit", str("")).
		set("medium", str("")).node())
	m.setc("automountServiceAccountToken", "No pod mounts a Kubernetes API token but those whose stream consumers keep\ncheckpoints (a service's checkpoints:), which also get a Role on exactly those.", boolNode(false))
	m.set("enableServiceLinks", boolNode(false))
	m.setc("imagePullPolicy", "Every start checks the registry: pull credentials and moved tags are noticed.", str("Always"))
	m.setc("resourceDefaults", "Resources of containers whose input said nothing of cpu, memory or\nephemeral-storage: requests so the scheduler can place them, memory and\ndisk limits so a leak is stopped in its container, not on the node. Each\nresource is filled in alone; what the input said is kept. Remove a key to\nleave it unset.\ncpuLimitRatio: a container with a CPU request and no CPU limit gets a limit\nof request × ratio. A CPU limit throttles a container that reaches it even\nwhen the node is idle, which shows as latency; a generous ratio keeps that\nrare while one runaway container still cannot starve its node. Inputs that\nnamed a hard cap (Fargate task cpu, compose cpus, systemd CPUQuota) keep\ntheirs. 0 sets no CPU limit (kube-score then reports container-resources).\nmemoryLimitRatio: likewise for memory, where the input named only a soft\nlimit or a reservation; past its limit a container is OOM-killed, so size\nit from the container's peak.", newMap().
		set("requests", newMap().
			set("cpu", str("100m")).
			set("memory", str("256Mi")).
			set("ephemeral-storage", str("256Mi")).node()).
		set("limits", newMap().
			set("memory", str("256Mi")).
			set("ephemeral-storage", str("2Gi")).node()).
		set("cpuLimitRatio", intNode(defaultCPULimitRatio)).
		set("memoryLimitRatio", intNode(defaultMemoryLimitRatio)).node())

	m.setc("topologySpread", "Deployments spread across zones and prefer distinct nodes.", newMap().
		set("enabled", boolNode(true)).
		set("maxSkew", intNode(1)).
		set("topologyKey", str("topology.kubernetes.io/zone")).
		set("whenUnsatisfiable", str("ScheduleAnyway")).node())
	m.set("podAntiAffinity", newMap().
		set("enabled", boolNode(true)).
		set("topologyKey", str("kubernetes.io/hostname")).
		set("weight", intNode(100)).node())
	m.setc("pdb", "One pod at a time may be evicted: never stricter than an autoscaler's\nminimum, so node drains always proceed.", newMap().
		set("enabled", boolNode(true)).
		set("maxUnavailable", intNode(1)).
		set("unhealthyPodEvictionPolicy", str("AlwaysAllow")).node())
	m.setc("networkPolicy", "Ingress to the service ports from the same namespace and the Gateway's\nnamespace, and to the metrics port (metrics.port) from Prometheus's; workers\nand jobs take no other ingress. Egress stays open; where egress rules are\nset, pods with checkpoints may also reach the Kubernetes API server at\napiServer's ports (and CIDRs, when named; else any address).", newMap().
		set("enabled", boolNode(true)).
		set("allowSameNamespace", boolNode(true)).
		set("gatewayNamespaces", strSeq([]string{"gateway-system"})).
		set("metricsNamespaces", strSeq([]string{"monitoring"})).
		set("extraIngress", seq()).
		set("egress", seq()).
		set("apiServer", newMap().
			set("ports", seq(intNode(443), intNode(6443))).
			set("cidrs", seq()).node()).node())

	m.setc("metrics", "Pods that serve Prometheus metrics (cutover lambda serve, on :9102) carry\nthe prometheus.io/scrape, port and path annotations Prometheus's\nkubernetes-pods job reads; false leaves scraping to PodMonitors.", newMap().
		set("annotations", boolNode(true)).node())

	m.setc("route", "The Gateways HTTPRoutes attach to: public routes, and routes of services\nthe input marked internal.", newMap().
		set("parentRefs", seq(newMap().set("name", str("public")).set("namespace", str("gateway-system")).node())).
		set("internalParentRefs", seq(newMap().set("name", str("internal")).set("namespace", str("gateway-system")).node())).node())

	m.setc("probeDefaults", "Merged into every probe for the fields the input did not set.", newMap().
		set("timeoutSeconds", intNode(2)).
		set("periodSeconds", intNode(10)).
		set("failureThreshold", intNode(3)).node())
	m.set("terminationGracePeriodSeconds", intNode(30))
	m.setc("preStop", "Servers sleep before SIGTERM so the Gateway and kube-proxy stop sending first.", newMap().
		set("defaultSeconds", intNode(5)).
		set("sleepAction", boolNode(true)).node())
	m.set("rollout", newMap().
		set("maxSurge", str("25%")).
		set("maxUnavailable", intNode(0)).node())

	m.setc("autoscaling", "HPA behaviour: scale down slowly, after five quiet minutes.", newMap().
		set("behavior", newMap().
			set("scaleDown", newMap().
				set("stabilizationWindowSeconds", intNode(300)).
				set("policies", seq(newMap().
					set("type", str("Percent")).
					set("value", intNode(50)).
					set("periodSeconds", intNode(60)).node())).node()).node()).node())
	m.set("keda", newMap().
		set("pollingInterval", intNode(30)).
		set("cooldownPeriod", intNode(300)).node())
	m.setc("startingDeadlineSeconds", "A cron run that cannot start within an hour of its time is skipped.", intNode(3600))
	m.setc("job", "A failed run is not retried: the inputs do not say runs are idempotent.", newMap().
		set("backoffLimit", intNode(0)).
		set("successfulJobsHistoryLimit", intNode(3)).
		set("failedJobsHistoryLimit", intNode(3)).node())

	m.setc("spot", "What Spot placement means on the clusters: tolerate the Spot taint and\nprefer Spot nodes (Karpenter and EKS managed node groups label them).", newMap().
		set("tolerations", seq(newMap().
			set("key", str("karpenter.sh/capacity-type")).
			set("operator", str("Equal")).
			set("value", str("spot")).
			set("effect", str("NoSchedule")).node())).
		set("preferredNodeTerms", seq(
			preferTerm(100, "karpenter.sh/capacity-type", "spot"),
			preferTerm(100, "eks.amazonaws.com/capacityType", "SPOT"))).node())

	m.set("externalSecrets", newMap().set("refreshInterval", str("1h")).node())
	m.set("persistence", newMap().
		set("storageClass", str("")).
		set("defaultSize", str("10Gi")).
		set("efsStorageClass", str("")).
		set("efsCapacity", str("5Gi")).node())

	return document("Defaults of every service in every environment of this migration.\nOrder: chart/values.yaml, this file, env/<env>.yaml, services/<svc>.yaml.", m)
}

// The chart's defaults that the report tells a service about.
const (
	// defaultUID is the user and group of containers whose input named
	// none: above 10000, so no node user shares it.
	defaultUID = 10001
	// defaultCPULimitRatio is resourceDefaults.cpuLimitRatio.
	defaultCPULimitRatio = 4
	// defaultMemoryLimitRatio is resourceDefaults.memoryLimitRatio: twice
	// the reservation, as source/ecs sets for a memoryReservation alone.
	defaultMemoryLimitRatio = 2
)

func preferTerm(weight int, key, value string) *yaml.Node {
	expr := newMap().set("key", str(key)).set("operator", str("In")).set("values", strSeq([]string{value}))
	return newMap().
		set("weight", intNode(weight)).
		set("preference", newMap().set("matchExpressions", seq(expr.node())).node()).node()
}

// envValues is values/env/<env>.yaml. Environments are in promotion order:
// the last is production and keeps at least two replicas of everything an
// autoscaler or a fixed count runs; the first, when there are several, is
// kept small.
// regionNote is the region the environment files name, and how many
// places of the input named it when it was inferred (0: given).
type regionNote struct {
	region   string
	inferred int
}

func envValues(opts render.Options, env string, i int, rn regionNote) []byte {
	last := i == len(opts.Envs)-1
	m := newMap()
	m.set("environment", str(env))
	m.set("namespace", str(opts.Namespace(env)))

	bounds := newMap()
	comment := "Replica counts of this environment are bounded (0: no bound); a service's\nenvironments." + env + " may still set its own."
	switch {
	case last:
		bounds.set("min", intNode(2)).set("max", intNode(0))
		comment = "Production: at least two replicas of every Deployment, so a node or zone\nloss and every drain keep the service up.\n" + comment
	case i == 0:
		bounds.set("min", intNode(1)).set("max", intNode(2))
	default:
		bounds.set("min", intNode(1)).set("max", intNode(0))
	}
	m.setc("replicaBounds", comment, bounds.node())

	aws := newMap().set("region", str(rn.region)).node()
	switch {
	case rn.region == "":
		m.setc("aws", "FILL: the AWS region of this environment (secret stores, queues)", aws)
	case rn.inferred > 0:
		m.setc("aws", fmt.Sprintf("The AWS region of this environment (secret stores, queues), inferred:\nthe input names %s %d times. Check it.", rn.region, rn.inferred), aws)
	default:
		m.set("aws", aws)
	}
	m.setc("externalSecrets", "ClusterSecretStores to use instead of a SecretStore per service, by store.", newMap().
		set("clusterSecretStores", newMap().
			set("secretsManager", str("")).
			set("parameterStore", str("")).node()).node())
	m.setc("route", "Routes that name no host get <service>.<domain> when a domain is set.", newMap().
		set("domain", str("")).node())
	m.setc("nodeSelector", "Node labels every pod of this environment needs.", emptyMap())
	return document(fmt.Sprintf("Environment %s: only what differs between environments.\nThe keys environments may set are listed in ../base.yaml environmentKeys.", env), m)
}
