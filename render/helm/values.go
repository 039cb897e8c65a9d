package helm

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/cutoverhq/cutover/render"
	"github.com/cutoverhq/cutover/render/iam"
	"github.com/cutoverhq/cutover/service"
)

// builder turns one service into its values file, and records, as
// findings, every decision a reviewer should know about: what was widened,
// defaulted, dropped, or left to fill.
type builder struct {
	svc      *service.Service
	opts     render.Options // with Defaults applied
	file     string         // values/services/<name>.yaml
	findings []service.Finding
	// fills are the values to fill: the service's own, then those this
	// renderer needs (an IAM role, an EFS file system id).
	fills []service.Value
	// secretKeys maps a Service.Secrets name to its Kubernetes data key.
	secretKeys map[string]string
	// configKeys maps a Service.Config key to its ConfigMap key.
	configKeys map[string]string
	// volumes maps a Service.Volumes name to its pod volume name.
	volumes map[string]string
	// keda is true when KEDA triggers drive the workload.
	keda bool
	// checkpoints maps a stream trigger's name to the name of the
	// ConfigMap and Lease its consumer keeps its position in
	// (Service.Checkpoints).
	checkpoints map[string]string
}

func newBuilder(svc *service.Service, opts render.Options) *builder {
	b := &builder{
		svc:         svc,
		opts:        opts,
		file:        ServiceValuesFile(svc.Name),
		secretKeys:  map[string]string{},
		configKeys:  map[string]string{},
		volumes:     map[string]string{},
		checkpoints: map[string]string{},
	}
	for _, c := range svc.Checkpoints {
		b.checkpoints[c.Trigger] = c.Name
	}
	b.fills = append(b.fills, svc.Values...)
	return b
}

// origin is the input file findings name: the service's first.
func (b *builder) origin() string {
	if len(b.svc.Origin.Files) > 0 {
		return b.svc.Origin.Files[0]
	}
	return ""
}

func (b *builder) warn(field, target, format string, args ...any) {
	b.findings = append(b.findings, service.Finding{
		File: b.origin(), Field: field, Status: service.Warning,
		Target: target, Message: fmt.Sprintf(format, args...),
	})
}

func (b *builder) drop(field, format string, args ...any) {
	b.findings = append(b.findings, service.Finding{
		File: b.origin(), Field: field, Status: service.Dropped,
		Message: fmt.Sprintf(format, args...),
	})
}

// target names a place in the service's values file.
func (b *builder) target(path string) string { return b.file + " " + path }

// addFill adds a value to fill that the renderer needs, unless the service
// has it already, and returns its name.
func (b *builder) addFill(name, def, reason, field string) string {
	for _, v := range b.fills {
		if v.Name == name {
			return name
		}
	}
	b.fills = append(b.fills, service.Value{Name: name, Default: def, Reason: reason})
	b.findings = append(b.findings, service.Finding{
		File: b.origin(), Field: field, Status: service.Fill,
		Target: b.target("fill." + name), Message: reason,
	})
	return name
}

func (b *builder) kind() service.Kind { return b.svc.EffectiveKind() }

func (b *builder) long() bool {
	return b.kind() == service.KindServer || b.kind() == service.KindWorker
}

// build returns the values of the service's file.
func (b *builder) build() ymap {
	s := b.svc
	m := newMap()
	m.set("kind", str(string(b.kind())))
	if len(s.Labels) > 0 {
		m.set("labels", strMap(s.Labels))
	}

	// Keys are collected first so that containers can refer to them.
	for _, k := range sortedKeys(s.Config) {
		b.configKeys[k] = dataKey(k)
	}
	for _, sec := range s.Secrets {
		b.secretKeys[sec.Name] = dataKey(sec.Name)
	}
	usedVol := map[string]bool{}
	for _, v := range s.Volumes {
		n := dnsLabel(v.Name)
		for i := 2; usedVol[n]; i++ {
			n = dnsLabel(fmt.Sprintf("%s-%d", v.Name, i))
		}
		usedVol[n] = true
		b.volumes[v.Name] = n
	}

	triggers := b.kedaTriggers()
	b.keda = len(triggers) > 0
	b.scaling(m, triggers)
	b.schedule(m)

	if s.TerminationGracePeriodSeconds != nil {
		m.set("terminationGracePeriodSeconds", intNode(*s.TerminationGracePeriodSeconds))
	}
	b.rollout(m)

	ports := b.portNames()
	if main := s.Main(); main != nil {
		m.set("resources", b.resources(main.Resources, "containers["+main.Name+"]"))
	}
	m.set("containers", seq(b.containerList(s.Containers, "main", ports)...))
	m.set("initContainers", optSeq(b.containerList(s.InitContainers, "init", ports)...))
	m.set("sidecars", optSeq(b.containerList(s.Sidecars, "sidecar", ports)...))

	b.defaultsFindings()
	b.lowPorts(m)

	b.serviceAndRoutes(m, ports)

	if len(s.Config) > 0 {
		cm := newMap()
		for _, k := range sortedKeys(s.Config) {
			if b.configKeys[k] != k {
				b.warn("config."+k, b.target("config."+b.configKeys[k]), "renamed to %s: a ConfigMap key holds only letters, digits, '-', '_' and '.'", b.configKeys[k])
			}
			cm.set(b.configKeys[k], str(s.Config[k]))
		}
		m.set("config", cm.node())
	}
	m.set("secrets", b.secrets())
	sa, envs := b.serviceAccount()
	m.set("serviceAccount", sa)
	m.setc("checkpoints", checkpointsHead, b.checkpointValues())
	m.set("volumes", b.volumeValues())
	m.set("placement", b.placement())
	m.set("metrics", b.metrics())
	m.setc("fill", fillHead, b.fillValues())
	b.envFills(ymap{envs})
	m.setc("environments", environmentsHead, envs)
	return m
}

const checkpointsHead = `The ConfigMaps and Leases (one name each) in which the stream consumers keep
their checkpoints and elect the one replica that consumes. The pods get their
service account token, POD_NAMESPACE, and a Role on these names alone.`

const fillHead = `Values the input left for you to fill. Rendering fails, naming the value,
while one is empty or still the input's placeholder.`

const environmentsHead = `Overrides of this service for one environment, merged over everything
above when that environment is rendered, for example:
  prod:
    replicas: 6
    resources: {requests: {cpu: "1"}}
cutover lint reports overrides of values outside base.yaml environmentKeys.`

// scaling writes replicas, autoscaling and keda.
func (b *builder) scaling(m ymap, triggers []*yaml.Node) {
	s := b.svc
	sc := s.Scaling
	if !b.long() && b.kind() != service.KindJob && len(triggers) > 0 {
		// Only reached for cron; kedaTriggers already reported the drop.
		triggers = nil
	}
	if sc != nil && !b.long() {
		if b.kind() == service.KindJob && len(triggers) > 0 {
			// A ScaledJob: the maximum bounds concurrent jobs (kedaMax).
			if sc.TargetCPUPercent > 0 || sc.TargetMemoryPercent > 0 {
				b.drop("scaling", "a ScaledJob scales on its queue only; CPU and memory targets are not rendered")
			}
		} else {
			b.drop("scaling", "a %s workload has no autoscaler; each run is one pod", b.kind())
		}
		sc = nil
	}
	if b.kind() == service.KindWorker && b.streamsOnly() {
		b.standby(m)
		return
	}
	autoscaled := b.long() && (sc != nil || len(triggers) > 0)
	if s.Replicas != nil {
		if autoscaled {
			b.warn("replicas", "", "not rendered: the autoscaler owns the replica count")
		} else if b.long() {
			m.set("replicas", intNode(*s.Replicas))
			if *s.Replicas == 0 {
				b.warn("replicas", b.target("replicas"), "the service ran no replicas: rendered with 0 in every environment, whatever its minimum")
			}
		} else {
			b.drop("replicas", "a %s workload runs one pod per run", b.kind())
		}
	}
	behavior := func() *yaml.Node {
		if sc == nil {
			return nil
		}
		bh := newMap()
		if sc.ScaleDownStabilizationSeconds > 0 {
			bh.set("scaleDown", newMap().set("stabilizationWindowSeconds", intNode(sc.ScaleDownStabilizationSeconds)).node())
		}
		if sc.ScaleUpStabilizationSeconds > 0 {
			bh.set("scaleUp", newMap().set("stabilizationWindowSeconds", intNode(sc.ScaleUpStabilizationSeconds)).node())
		}
		return bh.orNil()
	}
	if len(triggers) == 0 {
		if sc == nil {
			return
		}
		min := sc.MinReplicas
		if min < 1 {
			min = 1
			b.warn("scaling.minReplicas", b.target("autoscaling.minReplicas"), "an HPA keeps at least one pod; the input allowed zero")
		}
		max := sc.MaxReplicas
		if max < min {
			max = min
		}
		a := newMap().set("enabled", boolNode(true)).
			set("minReplicas", intNode(min)).
			set("maxReplicas", intNode(max)).
			set("targetCPUUtilizationPercentage", optInt(sc.TargetCPUPercent)).
			set("targetMemoryUtilizationPercentage", optInt(sc.TargetMemoryPercent)).
			set("behavior", behavior())
		if sc.TargetCPUPercent == 0 && sc.TargetMemoryPercent == 0 {
			b.warn("scaling", b.target("autoscaling"), "no CPU or memory target in the input; the HPA scales on 80%% CPU, Kubernetes' default")
		}
		m.set("autoscaling", a.node())
		return
	}
	// KEDA owns scaling. CPU and memory targets become KEDA triggers.
	if sc != nil {
		a := newMap().
			set("targetCPUUtilizationPercentage", optInt(sc.TargetCPUPercent)).
			set("targetMemoryUtilizationPercentage", optInt(sc.TargetMemoryPercent)).
			set("behavior", behavior())
		m.set("autoscaling", a.orNil())
	}
	k := newMap()
	min := int32(0)
	if sc != nil {
		min = sc.MinReplicas
	}
	if b.long() && b.enabledStreams() > 0 && min < streamReplicas {
		b.warn("scaling.minReplicas", b.target("keda.minReplicaCount"), "%d, not %d: the workload also consumes a stream, which one replica consumes (the holder of its checkpoint's Lease) whatever the queues hold, so it never scales to zero and keeps a standby; replicas KEDA adds for the queues also stand by for the stream", streamReplicas, min)
		min = streamReplicas
	}
	if min > 0 {
		k.set("minReplicaCount", intNode(min))
	}
	k.set("maxReplicaCount", intNode(b.kedaMax()))
	k.set("triggers", seq(triggers...))
	m.set("keda", k.node())
}

// streamReplicas is the replica count of a workload that consumes only
// streams, and the least of one that also reads queues: one replica
// consumes each stream, one stands by to take over.
const streamReplicas = 2

// enabledStreams counts the enabled stream triggers.
func (b *builder) enabledStreams() int {
	n := 0
	for _, t := range b.svc.Triggers {
		if t.Kind.Stream() && t.Enabled {
			n++
		}
	}
	return n
}

// streamsOnly reports whether the workload has stream triggers and no
// enabled queue trigger besides: nothing for KEDA to scale on, since one
// replica consumes a stream whatever its backlog.
func (b *builder) streamsOnly() bool {
	streams := false
	for _, t := range b.svc.Triggers {
		switch {
		case t.Kind.Stream():
			streams = true
		case queueTrigger(t.Kind) && t.Enabled:
			return false
		}
	}
	return streams
}

// standby writes the replicas of a worker that consumes only streams: a
// fixed count, one consuming (the holder of each stream's Lease), the
// rest standing by; no autoscaler, since more replicas would only add
// standbys.
func (b *builder) standby(m ymap) {
	s := b.svc
	if s.Scaling != nil {
		b.drop("scaling", "not rendered: one replica consumes the streams and the others stand by, so an autoscaler would only add standbys")
	}
	missing := false
	for _, t := range s.Triggers {
		if t.Kind.Stream() && t.Enabled && b.checkpoints[t.Name] == "" {
			missing = true
		}
	}
	switch {
	case s.Replicas != nil:
		m.set("replicas", intNode(*s.Replicas))
		switch {
		case *s.Replicas == 0:
			b.warn("replicas", b.target("replicas"), "the service ran no replicas: rendered with 0 in every environment")
		case *s.Replicas == 1 && !missing:
			b.warn("replicas", b.target("replicas"), "one replica, as the input said: no standby, so the stream waits for a new pod when it goes; %d keeps one standing by", streamReplicas)
		}
	case b.enabledStreams() == 0:
		m.set("replicas", intNode(0))
		b.warn("triggers", b.target("replicas"), "every stream trigger is disabled in the input: rendered with 0 replicas until one is enabled")
	case missing:
		m.set("replicas", intNode(1))
		b.warn("triggers", b.target("replicas"), "one replica: a stream trigger has no checkpoint (Service.Checkpoints), so its consumer keeps its position in the pod and every replica would consume every shard")
	default:
		m.set("replicas", intNode(streamReplicas))
		b.warn("triggers", b.target("replicas"), "%d replicas and no autoscaler: one replica consumes the streams, holding each checkpoint's Lease, the other stands by and takes over within about 15 s; more would only add standbys, and the PodDisruptionBudget lets one go at a time", streamReplicas)
	}
}

// kedaMax is the most replicas (or concurrent jobs) KEDA may run: the
// reserved concurrency or autoscaler maximum, else the sum of the queue
// triggers' caps when every one has one, else 10.
func (b *builder) kedaMax() int32 {
	var sum int32
	capped := true
	for _, t := range b.svc.Triggers {
		// A stream adds no replicas: one of those the queues scale
		// consumes it.
		if !queueTrigger(t.Kind) || t.Kind.Stream() || !t.Enabled {
			continue
		}
		if t.MaxConcurrency <= 0 {
			capped = false
		}
		sum += t.MaxConcurrency
	}
	max := int32(0)
	if capped && sum > 0 {
		max = sum
	}
	if sc := b.svc.Scaling; sc != nil && sc.MaxReplicas > 0 && (max == 0 || sc.MaxReplicas < max) {
		max = sc.MaxReplicas
	}
	if max == 0 {
		max = 10
		b.warn("triggers", b.target("keda.maxReplicaCount"), "the input sets no concurrency limit; KEDA runs at most 10 replicas, set keda.maxReplicaCount to what the downstream systems take")
	}
	return max
}

func queueTrigger(k service.TriggerKind) bool {
	switch k {
	case service.TriggerSQS, service.TriggerKinesis, service.TriggerDynamoDB, service.TriggerKafka:
		return true
	}
	return false
}

// kedaTriggers maps the queue and stream triggers to KEDA triggers. What
// the input left to fill (a queue named by a CloudFormation reference, an
// MSK cluster's brokers) goes to metadataFill, which the chart resolves
// from fill.
func (b *builder) kedaTriggers() []*yaml.Node {
	var out []*yaml.Node
	for i, t := range b.svc.Triggers {
		if !queueTrigger(t.Kind) {
			continue
		}
		field := fmt.Sprintf("triggers[%d]", i)
		label := fmt.Sprintf("trigger-%d", i)
		if t.Name != "" {
			field = "triggers[" + t.Name + "]"
			label = dnsLabel(t.Name)
		}
		if b.kind() == service.KindCron {
			b.drop(field, "a cron workload runs on its schedule; the %s trigger is not rendered", t.Kind)
			continue
		}
		if t.Kind.Stream() {
			b.streamTrigger(t, field)
			continue
		}
		if b.kind() == service.KindWorker && b.streamsOnly() {
			// Disabled (streamsOnly): KEDA would pause the workload at
			// zero, and the streams with it.
			b.drop(field, "disabled in the input, and the workload consumes its streams at a fixed replica count, so no ScaledObject is rendered for this trigger: add it to keda.triggers once it is enabled")
			continue
		}
		batch := t.BatchSize
		if batch <= 0 {
			batch = 1
		}
		md := newMap()
		fills := newMap()
		region := t.Region
		typ := ""
		auth := true
		// source sets the metadata key that names the queue or stream, from
		// the input or from a value to fill.
		source := func(key, value string) {
			switch {
			case t.SourceValue != "":
				fills.set(key, str(t.SourceValue))
			case t.Source == "" || render.IsPlaceholder(t.Source):
				name := b.addFill(label+"-source", t.Source, fmt.Sprintf("the %s of the %s trigger %s, which the input does not name", key, t.Kind, label), field+".source")
				fills.set(key, str(name))
			default:
				md.set(key, str(value))
			}
		}
		switch t.Kind {
		case service.TriggerSQS:
			typ = "aws-sqs-queue"
			url, r := sqsQueueURL(t.Source)
			if region == "" {
				region = r
			}
			source("queueURL", url)
			md.set("queueLength", str(strconv.Itoa(int(batch))))
		case service.TriggerKinesis:
			typ = "aws-kinesis-stream"
			name, r := kinesisStream(t.Source)
			if region == "" {
				region = r
			}
			source("streamName", name)
			// One replica per shard, as Lambda runs one invocation per
			// shard (parallelization factor 1).
			md.set("shardCount", str("1"))
		case service.TriggerDynamoDB:
			typ = "aws-dynamodb-streams"
			name, r := dynamoDBTable(t.Source)
			if region == "" {
				region = r
			}
			source("tableName", name)
			md.set("shardCount", str("1"))
		case service.TriggerKafka:
			typ = "kafka"
			switch {
			case t.BrokersValue != "":
				fills.set("bootstrapServers", str(t.BrokersValue))
			case len(t.Brokers) == 0:
				name := b.addFill(label+"-brokers", "", "the Kafka bootstrap servers of the trigger "+label+", comma-separated", field+".brokers")
				fills.set("bootstrapServers", str(name))
			default:
				md.set("bootstrapServers", str(strings.Join(t.Brokers, ",")))
			}
			if t.ConsumerGroupValue != "" {
				fills.set("consumerGroup", str(t.ConsumerGroupValue))
			} else {
				group := t.ConsumerGroup
				if group == "" {
					group = b.svc.Name
				}
				md.set("consumerGroup", str(group))
			}
			source("topic", t.Source)
			lag := t.BatchSize
			if lag <= 0 {
				lag = 10
			}
			md.set("lagThreshold", str(strconv.Itoa(int(lag))))
			if t.StartingPosition == "TRIM_HORIZON" {
				md.set("offsetResetPolicy", str("earliest"))
			}
			iam, r := mskIAM(t.Brokers)
			if t.BrokersValue != "" {
				// An MSK cluster named by ARN: Lambda reached it with IAM.
				iam = true
				b.warn(field, b.target("keda.triggers"), "the brokers of an MSK cluster are assumed to take IAM authentication (port 9098); change the KEDA settings if the cluster uses SASL/SCRAM or TLS")
			}
			auth = iam
			if iam {
				if region == "" {
					region = r
				}
				md.set("sasl", str("oauthbearer"))
				md.set("saslTokenProvider", str("aws_msk_iam"))
				md.set("tls", str("enable"))
			} else {
				region = ""
				b.warn(field, b.target("keda.triggers"), "the Kafka brokers are not on an MSK IAM listener (port 9098); add the TLS or SASL settings KEDA needs to read consumer lag")
			}
		}
		if region != "" {
			md.set("awsRegion", str(region))
		}
		tr := newMap()
		tr.set("type", str(typ))
		tr.set("name", str(label))
		if !t.Enabled {
			tr.set("enabled", boolNode(false))
			b.warn(field, b.target("keda.triggers"), "disabled in the input: kept with enabled: false and left out of KEDA; while no trigger is enabled KEDA holds the workload at zero")
		}
		if auth {
			tr.set("auth", str("aws"))
		}
		tr.set("metadata", md.node())
		tr.set("metadataFill", fills.orNil())
		out = append(out, tr.node())
	}
	return out
}

// streamTrigger reports why a stream trigger is no KEDA trigger: one
// replica consumes a stream, so scaling on its shards adds only standbys.
func (b *builder) streamTrigger(t service.Trigger, field string) {
	switch name := b.checkpoints[t.Name]; {
	case b.kind() == service.KindJob:
		b.drop(field, "a job runs one invocation and exits; it does not consume the %s stream", t.Kind)
	case !t.Enabled:
		b.drop(field, "disabled in the input, and a stream is consumed by one replica, not scaled on: nothing is rendered for it")
	case name == "":
		b.warn(field, "", "no KEDA trigger, and no checkpoint: the model names no ConfigMap and Lease for this stream, so every replica consumes every shard and keeps its position in the pod; run one replica")
	default:
		b.warn(field, b.target("checkpoints"), "no KEDA trigger: one replica consumes the stream, the holder of the Lease %s, so scaling on its shards would only add standbys", name)
	}
}

// checkpointValues writes checkpoints: the names of the ConfigMaps and
// Leases of the stream consumers, which the chart's Role is limited to.
func (b *builder) checkpointValues() *yaml.Node {
	if len(b.svc.Checkpoints) == 0 {
		return nil
	}
	if !b.long() {
		b.drop("checkpoints", "a %s workload consumes no stream", b.kind())
		return nil
	}
	var names []string
	for _, c := range b.svc.Checkpoints {
		names = append(names, c.Name)
	}
	b.warn("checkpoints", b.target("checkpoints"),
		"Role and RoleBinding %s-checkpoints for ServiceAccount %s: get, update and patch on the ConfigMaps and get and update on the Leases named %s, and create on ConfigMaps and Leases in the namespace, since RBAC cannot limit create to a name; "+
			"the pods mount their service account token (automountServiceAccountToken stays false for every other workload) and read POD_NAMESPACE from the downward API; where networkPolicy.egress restricts egress, the NetworkPolicy also allows the API server (networkPolicy.apiServer). "+
			"serve creates the ConfigMaps and Leases, not the chart, so Argo CD neither syncs over the checkpoints nor prunes them: they outlive the release, and deleting one starts its stream over from StartingPosition",
		b.svc.Name, iam.ServiceAccountName(b.svc), strings.Join(names, ", "))
	return strSeq(names)
}

// schedule writes the cron and job settings.
func (b *builder) schedule(m ymap) {
	s := b.svc
	switch b.kind() {
	case service.KindCron:
		m.set("schedule", str(s.Schedule))
		if s.ScheduleTimeZone != "" {
			m.set("timeZone", str(s.ScheduleTimeZone))
		}
		if n := len(strings.Fields(s.Schedule)); n != 5 {
			b.warn("schedule", b.target("schedule"), "%q has %d fields; a CronJob needs five (minute hour day month weekday)", s.Schedule, n)
		}
		var on, off int
		for i, t := range s.Triggers {
			if t.Kind != service.TriggerSchedule {
				continue
			}
			if t.Enabled {
				on++
			} else {
				off++
			}
			if t.Schedule != "" && t.Schedule != s.Schedule {
				b.drop(fmt.Sprintf("triggers[%d]", i), "a second schedule %q: a CronJob has one; convert it as its own service", t.Schedule)
			}
			if t.Input != "" && !b.passesInput(t.Input) {
				b.warn(fmt.Sprintf("triggers[%d].input", i), "", "the fixed event the schedule delivered is not passed to the job; give it as args or env")
			}
		}
		if off > 0 && on == 0 {
			m.set("suspend", boolNode(true))
			b.warn("triggers", b.target("suspend"), "the schedule was disabled in the input: the CronJob is suspended")
		}
	case service.KindJob:
	default:
		if s.Schedule != "" {
			b.drop("schedule", "only a cron workload runs on a schedule")
		}
		if s.TimeoutSeconds > 0 {
			b.drop("timeoutSeconds", "a %s workload does not exit; the timeout bounds one invocation, which Kubernetes does not see", b.kind())
		}
		return
	}
	m.set("activeDeadlineSeconds", optInt(s.TimeoutSeconds))
}

func (b *builder) rollout(m ymap) {
	r := b.svc.Rollout
	if r == nil {
		return
	}
	if !b.long() {
		b.drop("rollout", "a %s workload has no rolling update", b.kind())
		return
	}
	if r.MaxSurgePercent == 0 && r.MaxUnavailablePercent == 0 {
		b.warn("rollout", "", "neither surge nor unavailability allowed, which Kubernetes refuses: the chart's default rollout is used")
		return
	}
	m.set("rollout", newMap().
		set("maxSurge", str(fmt.Sprintf("%d%%", r.MaxSurgePercent))).
		set("maxUnavailable", str(fmt.Sprintf("%d%%", r.MaxUnavailablePercent))).node())
}

func (b *builder) resources(r service.Resources, field string) *yaml.Node {
	req := newMap().
		set("cpu", optStr(r.CPURequest)).
		set("memory", optStr(r.MemoryRequest)).
		set("ephemeral-storage", optStr(r.EphemeralStorageRequest))
	lim := newMap().
		set("cpu", optStr(r.CPULimit)).
		set("memory", optStr(r.MemoryLimit)).
		set("ephemeral-storage", optStr(r.EphemeralStorageLimit))
	var unsaid []string
	for _, x := range []struct{ name, req, lim string }{
		{"cpu", r.CPURequest, r.CPULimit},
		{"memory", r.MemoryRequest, r.MemoryLimit},
	} {
		if x.req == "" && x.lim == "" {
			unsaid = append(unsaid, x.name)
		}
	}
	if len(unsaid) > 0 {
		b.warn(field+".resources", "", "the input sets no %s: base.yaml resourceDefaults apply; size them from the service's real use", strings.Join(unsaid, " or "))
	}
	return newMap().set("requests", req.orNil()).set("limits", lim.orNil()).orNil()
}

// portNames names every container port once for the pod.
func (b *builder) portNames() map[*service.Port]string {
	out := map[*service.Port]string{}
	used := map[string]bool{}
	exposed := int32(0)
	if b.svc.Expose != nil {
		exposed = b.svc.Expose.Port
	}
	for _, list := range [][]service.Container{b.svc.Containers, b.svc.Sidecars, b.svc.InitContainers} {
		for ci := range list {
			for pi := range list[ci].Ports {
				p := &list[ci].Ports[pi]
				out[p] = portName(*p, p.ContainerPort == exposed && p.AppProtocol == "", used)
			}
		}
	}
	return out
}

func (b *builder) containerList(cs []service.Container, role string, ports map[*service.Port]string) []*yaml.Node {
	var out []*yaml.Node
	for i := range cs {
		r := role
		if role == "main" && i > 0 {
			r = "app"
		}
		out = append(out, b.container(&cs[i], r, i, ports))
	}
	return out
}

// container writes one container. role is main (the application), app
// (another main container), sidecar or init; i is its index in its list.
func (b *builder) container(c *service.Container, role string, i int, ports map[*service.Port]string) *yaml.Node {
	list := "containers"
	switch role {
	case "init":
		list = "initContainers"
	case "sidecar":
		list = "sidecars"
	}
	// field names the container in the model's terms; vpath in the values
	// file.
	field := list + "[" + c.Name + "]"
	vpath := fmt.Sprintf("%s[%d]", list, i)
	m := newMap().set("name", str(c.Name))
	switch {
	case c.Image != "":
		m.set("image", str(c.Image))
		if service.UnpinnedImage(c.Image) {
			// What Kubernetes does for :latest anyway, stated; the image is
			// kept as given, and the report says so once (convert may have).
			m.set("imagePullPolicy", str("Always"))
			if !b.reported(c.Name, ksImageTag) {
				b.warn(field+".image", b.target(vpath+".image"), "image %q is tagged latest or untagged: it is kept as given, but pin a version or digest (kube-score reports %s CRITICAL)", c.Image, ksImageTag)
			}
		}
	case c.ImageValue != "":
		m.set("imageFill", str(c.ImageValue))
	}
	m.set("command", optSeq(strItems(c.Command)...))
	m.set("args", optSeq(strItems(c.Args)...))
	m.set("workingDir", optStr(c.WorkingDir))

	var ps []*yaml.Node
	for i := range c.Ports {
		p := &c.Ports[i]
		pm := newMap().set("name", str(ports[p])).set("containerPort", intNode(p.ContainerPort))
		if p.Protocol != "" && p.Protocol != "TCP" {
			pm.set("protocol", str(strings.ToUpper(p.Protocol)))
		}
		ps = append(ps, pm.node())
	}
	if role == "main" && b.svc.Expose != nil && b.svc.Expose.Port > 0 && !hasPort(c, b.svc.Expose.Port) && !podServes(b.svc, b.svc.Expose.Port) {
		// The port traffic reaches must be a named container port for the
		// Service and the probes.
		ps = append(ps, newMap().set("name", str(exposedPortName(b.svc, ports))).set("containerPort", intNode(b.svc.Expose.Port)).node())
	}
	m.set("ports", optSeq(ps...))

	var env []*yaml.Node
	for _, e := range c.Env {
		if !validEnvName(e.Name) {
			b.drop(field+".env."+e.Name, "not a valid environment variable name on Kubernetes")
			continue
		}
		em := newMap().set("name", str(e.Name))
		switch {
		case e.Secret != "":
			em.set("secret", str(b.secretKeys[e.Secret]))
		case e.ConfigKey != "":
			em.set("config", str(b.configKeys[e.ConfigKey]))
		case e.ValueRef != "":
			em.set("fill", str(e.ValueRef))
		default:
			em.set("value", str(e.Value))
		}
		env = append(env, em.node())
	}
	m.set("env", optSeq(env...))
	m.set("envFromConfig", optTrue(c.EnvFromConfig))
	if role != "main" {
		m.set("resources", b.resources(c.Resources, field))
	}

	if role == "init" {
		if c.Liveness != nil || c.Readiness != nil || c.Startup != nil {
			b.drop(field+".healthCheck", "an init container runs to completion; Kubernetes allows it no probes")
		}
		if c.PreStopSleepSeconds > 0 {
			b.drop(field+".preStop", "an init container has no preStop hook")
		}
	} else {
		readiness, derived := c.Readiness, false
		if readiness == nil && role == "main" && b.long() && b.svc.Expose != nil && b.svc.Expose.Port > 0 && (hasPort(c, b.svc.Expose.Port) || !podServes(b.svc, b.svc.Expose.Port)) {
			// A Service sends to a pod as soon as it is ready; without a
			// probe that is as soon as it starts. The load balancer's check
			// is the best evidence of what "ready" means.
			if p := b.svc.Expose.HealthPath; p != "" {
				readiness = &service.Probe{HTTPGet: &service.HTTPGet{Path: p, Port: b.svc.Expose.Port}}
				b.warn(field+".readiness", b.target(vpath+".readinessProbe"), "from the load balancer health check %s", p)
			} else {
				readiness = &service.Probe{TCPPort: b.svc.Expose.Port}
				b.warn(field+".readiness", b.target(vpath+".readinessProbe"), "no health check in the input: the pod is ready once port %d accepts connections; an HTTP check is better", b.svc.Expose.Port)
			}
			derived = true
		}
		liveness, readiness := b.distinctProbes(c, role, c.Liveness, readiness, derived, field, vpath)
		m.set("startupProbe", b.probe(c.Startup, false, field+".startup"))
		m.set("livenessProbe", b.probe(liveness, false, field+".liveness"))
		m.set("readinessProbe", b.probe(readiness, true, field+".readiness"))
		m.set("preStopSleepSeconds", optInt(c.PreStopSleepSeconds))
		if c.PreStopSleepSeconds > 0 && b.svc.TerminationGracePeriodSeconds != nil && *b.svc.TerminationGracePeriodSeconds <= c.PreStopSleepSeconds {
			b.warn(field+".preStop", "", "the preStop sleep (%ds) uses up the grace period (%ds): the process is killed without SIGTERM time", c.PreStopSleepSeconds, *b.svc.TerminationGracePeriodSeconds)
		}
	}

	sc := newMap()
	if c.RunAsUser != nil {
		sc.set("runAsUser", intNode(*c.RunAsUser))
	}
	if c.RunAsGroup != nil {
		sc.set("runAsGroup", intNode(*c.RunAsGroup))
	}
	if c.ReadOnlyRootFilesystem != nil {
		sc.set("readOnlyRootFilesystem", boolNode(*c.ReadOnlyRootFilesystem))
	}
	if len(c.CapAdd) > 0 {
		var caps []string
		for _, cp := range c.CapAdd {
			caps = append(caps, strings.TrimPrefix(strings.ToUpper(cp), "CAP_"))
		}
		sc.set("capabilities", newMap().set("add", strSeq(caps)).node())
		if len(caps) != 1 || caps[0] != "NET_BIND_SERVICE" {
			b.warn(field+".capAdd", b.target(vpath+".securityContext.capabilities"), "adds %s to the chart's drop ALL: the Pod Security restricted level allows only NET_BIND_SERVICE", strings.Join(caps, ", "))
		}
	}
	// CapDrop needs nothing: the chart drops ALL capabilities.
	if c.Privileged {
		sc.set("privileged", boolNode(true))
		b.warn(field+".privileged", b.target(vpath+".securityContext"), "privileged, as the input said: the Pod Security restricted and baseline levels refuse it, and kube-score reports %s CRITICAL", ksPrivileged)
	}
	switch {
	case c.RunAsUser != nil && *c.RunAsUser == 0:
		b.warn(field+".user", b.target(vpath+".securityContext.runAsUser"), "runs as root, as the input said: the Pod Security restricted level refuses it, and kube-score reports %s CRITICAL", ksUserGroupID)
	case lowID(c.RunAsUser) || lowID(c.RunAsGroup):
		var low []string
		if lowID(c.RunAsUser) {
			low = append(low, fmt.Sprintf("user %d", *c.RunAsUser))
		}
		if lowID(c.RunAsGroup) {
			low = append(low, fmt.Sprintf("group %d", *c.RunAsGroup))
		}
		b.warn(field+".user", b.target(vpath+".securityContext"), "runs as %s: the input's %s %s below %d, which kube-score reports as %s CRITICAL; keep %s while the image's files belong to %s", idText(c), strings.Join(low, " and "), oneOrMany(len(low), "is", "are"), minSafeID, ksUserGroupID, oneOrMany(len(low), "it", "them"), oneOrMany(len(low), "it", "them"))
	}
	if c.ReadOnlyRootFilesystem != nil && !*c.ReadOnlyRootFilesystem {
		b.warn(field+".readonlyRootFilesystem", b.target(vpath+".securityContext.readOnlyRootFilesystem"), "a writable root filesystem, as the input asked: kube-score reports %s CRITICAL; remove the setting if the application writes only to /tmp and its volumes", ksReadOnlyRoot)
	}
	m.set("securityContext", sc.orNil())

	var mounts []*yaml.Node
	for _, vm := range c.VolumeMounts {
		mm := newMap().set("name", str(b.volumes[vm.Name])).set("mountPath", str(vm.MountPath))
		if vm.ReadOnly {
			mm.set("readOnly", boolNode(true))
		}
		mm.set("subPath", optStr(vm.SubPath))
		mounts = append(mounts, mm.node())
	}
	m.set("volumeMounts", optSeq(mounts...))
	return m.node()
}

// defaultsFindings tells, once per service, what the chart's hardening
// defaults (base.yaml) decide for containers whose input did not say: the
// user and group they run as, their read-only root filesystem, and a CPU
// limit derived from the request. Each is a guess about the image that the
// reviewer should check, and each says where to change it.
func (b *builder) defaultsFindings() {
	s := b.svc
	var defaultID, namedID, inputID, readOnly, cpuRatio, memRatio []string
	tmpMounted := false
	for _, list := range [][]service.Container{s.Containers, s.InitContainers, s.Sidecars} {
		for i := range list {
			c := &list[i]
			switch {
			case c.RunAsUser == nil && c.RunAsGroup == nil && c.UserName != "":
				namedID = append(namedID, fmt.Sprintf("%s (user %q)", c.Name, c.UserName))
			case c.RunAsUser == nil && c.RunAsGroup == nil:
				defaultID = append(defaultID, c.Name)
			case c.RunAsUser == nil || c.RunAsGroup == nil:
				inputID = append(inputID, c.Name+" runs as "+idText(c))
			}
			if c.ReadOnlyRootFilesystem == nil {
				readOnly = append(readOnly, c.Name)
				for _, vm := range c.VolumeMounts {
					if strings.TrimSuffix(vm.MountPath, "/") == "/tmp" {
						tmpMounted = true
					}
				}
			}
			if c.Resources.CPULimit == "" {
				cpuRatio = append(cpuRatio, c.Name)
			}
			if c.Resources.MemoryRequest != "" && c.Resources.MemoryLimit == "" {
				memRatio = append(memRatio, c.Name)
			}
		}
	}
	change := "values/services/" + s.Name + ".yaml"
	if len(defaultID) > 0 || len(namedID) > 0 || len(inputID) > 0 {
		var parts []string
		if len(defaultID) > 0 {
			parts = append(parts, fmt.Sprintf("%s %s as user %d, group %d (base.yaml podSecurityContext): the input named no user", strings.Join(defaultID, ", "), oneOrMany(len(defaultID), "runs", "run"), defaultUID, defaultUID))
		}
		if len(namedID) > 0 {
			parts = append(parts, fmt.Sprintf("%s %s as user %d, group %d (base.yaml podSecurityContext): the input named the user by name, and Kubernetes runs only numeric ids", strings.Join(namedID, ", "), oneOrMany(len(namedID), "runs", "run"), defaultUID, defaultUID))
		}
		if len(inputID) > 0 {
			parts = append(parts, inputID...)
		}
		b.warn("user", BaseValuesFile+" podSecurityContext", "%s. If an image needs another user (its files belong to one), set runAsUser and runAsGroup in that container's securityContext in %s", strings.Join(parts, "; "), change)
	}
	if len(readOnly) > 0 {
		tmp := "/tmp is a writable emptyDir (base.yaml writableTmp)"
		if tmpMounted {
			tmp += " where the input mounts no volume there"
		}
		b.warn("readonlyRootFilesystem", BaseValuesFile+" containerSecurityContext.readOnlyRootFilesystem", "the root filesystem of %s is read-only (the input did not say); %s. If the application writes elsewhere, mount a volume there, or set readOnlyRootFilesystem: false in the container's securityContext in %s", strings.Join(readOnly, ", "), tmp, change)
	}
	if len(cpuRatio) > 0 {
		b.warn("cpu", BaseValuesFile+" resourceDefaults.cpuLimitRatio", "%s %s no CPU limit in the input: the limit is %d × the CPU request, so a runaway process cannot starve its node; a container at its limit is throttled, so raise its limits.cpu in %s if latency suffers", strings.Join(cpuRatio, ", "), oneOrMany(len(cpuRatio), "has", "have"), defaultCPULimitRatio, change)
	}
	if len(memRatio) > 0 {
		b.warn("memory", BaseValuesFile+" resourceDefaults.memoryLimitRatio", "%s %s a memory request but no limit in the input: the limit is %d × the request, so a leak is stopped in its container, not on the node; past it the container is OOM-killed, so set its limits.memory in %s from the container's peak", strings.Join(memRatio, ", "), oneOrMany(len(memRatio), "has", "have"), defaultMemoryLimitRatio, change)
	}
}

// kube-score checks that the input may force to fail, named in findings
// so that a reviewer can tell them from the chart's own gaps.
const (
	ksImageTag     = "container-image-tag"
	ksUserGroupID  = "container-security-context-user-group-id"
	ksReadOnlyRoot = "container-security-context-readonlyrootfilesystem"
	ksPrivileged   = "container-security-context-privileged"
	// minSafeID is the lowest user and group id kube-score accepts: ids
	// below it may be a node's own users.
	minSafeID = 10000
)

// reported reports whether the service's report already names a
// kube-score check beside a container (convert names unpinned images).
func (b *builder) reported(container, check string) bool {
	for _, f := range b.svc.Report.Findings {
		if strings.Contains(f.Message, check) && (strings.Contains(f.Field, "["+container+"]") || strings.Contains(f.Field, "."+container+".")) {
			return true
		}
	}
	return false
}

func lowID(id *int64) bool { return id != nil && *id < minSafeID }

// idText says which user and group a container whose input named one of
// them runs as.
func idText(c *service.Container) string {
	user, group := fmt.Sprintf("user %d (the chart's default)", defaultUID), fmt.Sprintf("group %d (the chart's default)", defaultUID)
	if c.RunAsUser != nil {
		user = fmt.Sprintf("user %d", *c.RunAsUser)
	}
	if c.RunAsGroup != nil {
		group = fmt.Sprintf("group %d", *c.RunAsGroup)
	}
	return user + ", " + group
}

// distinctProbes keeps liveness and readiness from being the same check
// (kube-score's pod-probes-identical), which restarts every pod at once
// when a shared dependency fails the check. convert separates the probes
// of a health check that gave both; this covers any other way a model
// reaches the chart, and a readiness probe derived here that equals the
// input's liveness. Readiness is kept; liveness becomes a TCP check of
// the serving port, or is left out when it already was one (its timings
// then go to a readiness probe derived here, which has none).
func (b *builder) distinctProbes(c *service.Container, role string, live, ready *service.Probe, derived bool, field, vpath string) (*service.Probe, *service.Probe) {
	if live == nil || ready == nil || !sameCheck(live, ready) {
		return live, ready
	}
	port := int32(0)
	if role == "main" && b.svc.Expose != nil {
		port = b.svc.Expose.Port
	}
	for _, p := range c.Ports {
		if port == 0 && (p.Protocol == "" || strings.EqualFold(p.Protocol, "TCP")) {
			port = p.ContainerPort
		}
	}
	switch {
	case port == 0:
		b.warn(field+".readiness", b.target(vpath+".livenessProbe"), "the readiness probe is the liveness probe: the container serves no port, so no Service sends it traffic and readiness adds nothing")
		return live, nil
	case live.TCPPort == port:
		b.warn(field+".liveness", b.target(vpath+".readinessProbe"), "the liveness probe is the readiness check (port %d accepts connections); it is rendered as readiness only: a failing check takes the pod out of rotation instead of restarting it", port)
		if derived {
			return nil, live
		}
		return nil, ready
	}
	l := *live
	l.Exec, l.HTTPGet, l.TCPPort = nil, nil, port
	if l.FailureThreshold < 3 {
		l.FailureThreshold = 3
	}
	b.warn(field+".liveness", b.target(vpath+".livenessProbe"), "liveness and readiness were the same check: readiness keeps it, liveness is a TCP check of port %d, so a failing dependency takes pods out of rotation instead of restarting them all", port)
	return &l, ready
}

// sameCheck reports whether two probes check the same thing, as
// kube-score compares them: the same handler, and the same path and port,
// port, or command. The handler is the one probe renders.
func sameCheck(a, b *service.Probe) bool {
	switch {
	case len(a.Exec) > 0 || len(b.Exec) > 0:
		return slices.Equal(a.Exec, b.Exec)
	case a.HTTPGet != nil || b.HTTPGet != nil:
		if a.HTTPGet == nil || b.HTTPGet == nil {
			return false
		}
		pa, pb := a.HTTPGet.Path, b.HTTPGet.Path
		if pa == "" {
			pa = "/"
		}
		if pb == "" {
			pb = "/"
		}
		return pa == pb && a.HTTPGet.Port == b.HTTPGet.Port
	}
	return a.TCPPort != 0 && a.TCPPort == b.TCPPort
}

func hasPort(c *service.Container, port int32) bool {
	for _, p := range c.Ports {
		if p.ContainerPort == port {
			return true
		}
	}
	return false
}

// podServes reports whether a container of the pod declares port for
// the Service: a main container, or a sidecar whose port is Served. Such
// a port is that container's, not one to add to the application's, and
// that container's readiness covers it.
func podServes(s *service.Service, port int32) bool {
	for i := range s.Containers {
		if hasPort(&s.Containers[i], port) {
			return true
		}
	}
	for i := range s.Sidecars {
		for _, p := range s.Sidecars[i].Ports {
			if p.Served && p.ContainerPort == port {
				return true
			}
		}
	}
	return false
}

// exposedPortName names the exposed port when no container declares it.
func exposedPortName(s *service.Service, ports map[*service.Port]string) string {
	used := map[string]bool{}
	for _, n := range ports {
		used[n] = true
	}
	for _, c := range []string{"http", fmt.Sprintf("http-%d", s.Expose.Port)} {
		if !used[c] {
			return c
		}
	}
	return fmt.Sprintf("p%d", s.Expose.Port)
}

func strItems(ss []string) []*yaml.Node {
	out := make([]*yaml.Node, len(ss))
	for i, s := range ss {
		out[i] = str(s)
	}
	return out
}

// probe writes a probe in Kubernetes' shape. readiness allows a success
// threshold above one; liveness and startup probes do not.
func (b *builder) probe(p *service.Probe, readiness bool, field string) *yaml.Node {
	if p == nil {
		return nil
	}
	m := newMap()
	switch {
	case len(p.Exec) > 0:
		m.set("exec", newMap().set("command", strSeq(p.Exec)).node())
	case p.HTTPGet != nil:
		path := p.HTTPGet.Path
		if path == "" {
			path = "/"
		}
		hg := newMap().set("path", str(path)).set("port", intNode(p.HTTPGet.Port))
		if p.HTTPGet.Scheme != "" && p.HTTPGet.Scheme != "HTTP" {
			hg.set("scheme", str(p.HTTPGet.Scheme))
		}
		m.set("httpGet", hg.node())
	case p.TCPPort > 0:
		m.set("tcpSocket", newMap().set("port", intNode(p.TCPPort)).node())
	default:
		b.drop(field, "a health check without a command, HTTP path or port")
		return nil
	}
	m.set("initialDelaySeconds", optInt(p.InitialDelaySeconds)).
		set("periodSeconds", optInt(p.PeriodSeconds)).
		set("timeoutSeconds", optInt(p.TimeoutSeconds)).
		set("failureThreshold", optInt(p.FailureThreshold))
	if p.SuccessThreshold > 1 {
		if readiness {
			m.set("successThreshold", intNode(p.SuccessThreshold))
		} else {
			b.warn(field, "", "success threshold %d not rendered: Kubernetes requires 1 for liveness and startup probes", p.SuccessThreshold)
		}
	}
	return m.node()
}

// serviceAndRoutes writes service and route.
func (b *builder) serviceAndRoutes(m ymap, ports map[*service.Port]string) {
	s := b.svc
	x := s.Expose
	httpRoutes := []service.Route{}
	for i, t := range s.Triggers {
		if t.Kind == service.TriggerHTTP {
			if t.Route == nil {
				b.warn(fmt.Sprintf("triggers[%d]", i), "", "an HTTP trigger without a route: only the Service is rendered")
				continue
			}
			httpRoutes = append(httpRoutes, *t.Route)
		}
	}
	if x == nil {
		if len(httpRoutes) > 0 {
			b.drop("triggers", "HTTP triggers but no exposed port: no Service or route is rendered")
		}
		return
	}
	if !b.long() {
		b.drop("expose", "a %s workload is not reached over the network", b.kind())
		return
	}
	var sp []*yaml.Node
	seen := map[int32]bool{}
	// Every port of the main containers, and the sidecars' ports that
	// clients reached before the move: the pod's containers share one
	// network namespace, so the Service reaches a sidecar's port as it
	// reaches the app's.
	var serving []*service.Port
	for ci := range s.Containers {
		for pi := range s.Containers[ci].Ports {
			serving = append(serving, &s.Containers[ci].Ports[pi])
		}
	}
	for ci := range s.Sidecars {
		for pi := range s.Sidecars[ci].Ports {
			if s.Sidecars[ci].Ports[pi].Served {
				serving = append(serving, &s.Sidecars[ci].Ports[pi])
			}
		}
	}
	for _, p := range serving {
		if p.Metrics {
			// Scraped where the pod runs (see metrics), not a port
			// for clients or the Gateway.
			continue
		}
		key := p.ContainerPort
		if strings.EqualFold(p.Protocol, "UDP") {
			key = -key
		}
		if seen[key] {
			continue
		}
		seen[key] = true
		pm := newMap().set("name", str(ports[p])).set("port", intNode(p.ContainerPort))
		if p.Protocol != "" && p.Protocol != "TCP" {
			pm.set("protocol", str(strings.ToUpper(p.Protocol)))
		}
		switch p.AppProtocol {
		case "http":
			pm.set("appProtocol", str("http"))
		case "http2":
			pm.set("appProtocol", str("kubernetes.io/h2c"))
		case "grpc":
			pm.set("appProtocol", str("grpc"))
		}
		sp = append(sp, pm.node())
	}
	if x.Port > 0 && !seen[x.Port] {
		sp = append(sp, newMap().set("name", str(exposedPortName(s, ports))).set("port", intNode(x.Port)).node())
	}
	if len(sp) == 0 {
		b.drop("expose", "exposed, but no port is known: no Service is rendered")
		return
	}
	m.set("service", newMap().set("enabled", boolNode(true)).set("ports", seq(sp...)).node())

	all := append(append([]service.Route{}, x.Routes...), httpRoutes...)
	if len(all) == 0 {
		return
	}
	if x.Port == 0 {
		b.drop("expose.routes", "routes, but no port traffic reaches: no HTTPRoute is rendered")
		return
	}
	type group struct {
		host    string
		matches []*yaml.Node
		seen    map[string]bool
	}
	var groups []*group
	byHost := map[string]*group{}
	for i, r := range all {
		field := fmt.Sprintf("expose.routes[%d]", i)
		if i >= len(x.Routes) {
			field = fmt.Sprintf("triggers.http[%d]", i-len(x.Routes))
		}
		host := ""
		if r.Host != "" {
			h, ok := routeHost(r.Host)
			if !ok {
				b.warn(field+".host", b.target("route.routes"), "host %q cannot be a Gateway API hostname: the route matches any host of the Gateway", r.Host)
			}
			host = h
		}
		path, changed := routePath(r.Path)
		if changed && r.Path != "" && r.Path != "/" {
			b.warn(field+".path", b.target("route.routes"), "%s matched as the prefix %s: Gateway API prefixes cannot hold parameters or wildcards, so the route takes more paths than before", r.Path, path)
		}
		method, ok := routeMethod(r.Method)
		if !ok {
			b.warn(field+".method", b.target("route.routes"), "method %q cannot be matched by Gateway API: the route takes every method", r.Method)
		}
		g := byHost[host]
		if g == nil {
			g = &group{host: host, seen: map[string]bool{}}
			byHost[host] = g
			groups = append(groups, g)
		}
		key := path + " " + method
		if g.seen[key] {
			continue
		}
		g.seen[key] = true
		g.matches = append(g.matches, newMap().set("path", str(path)).set("method", optStr(method)).node())
	}
	var routes []*yaml.Node
	usedNames := map[string]bool{}
	for _, g := range groups {
		g.matches = withoutShadowed(g.matches)
	}
	for i, g := range groups {
		rm := newMap()
		if i > 0 {
			n := dnsLabel(strings.ReplaceAll(strings.TrimPrefix(g.host, "*."), ".", "-"))
			if g.host == "" {
				n = "any-host"
			}
			for j := 2; usedNames[n]; j++ {
				n = fmt.Sprintf("%s-%d", n, j)
			}
			usedNames[n] = true
			rm.set("name", str(n))
		}
		if g.host != "" {
			rm.set("hostnames", strSeq([]string{g.host}))
		}
		rm.set("matches", seq(g.matches...))
		routes = append(routes, rm.node())
	}
	r := newMap().set("enabled", boolNode(true)).set("port", intNode(x.Port))
	if x.Internal {
		r.set("internal", boolNode(true))
	}
	r.set("routes", seq(routes...))
	m.set("route", r.node())
}

// needsRole reports whether the pods need an AWS identity: to read their
// secrets through External Secrets, or for KEDA to read their queues.
func (b *builder) needsRole() bool {
	for _, s := range b.svc.Secrets {
		if s.Source != service.SecretFile {
			return true
		}
	}
	for _, t := range b.svc.Triggers {
		if queueTrigger(t.Kind) && b.kind() != service.KindCron {
			if t.Kind != service.TriggerKafka {
				return true
			}
			if iam, _ := mskIAM(t.Brokers); iam {
				return true
			}
		}
	}
	return false
}

// serviceAccount writes serviceAccount and the environments: map that
// gives each environment its own IAM role (iam.Identities): the input's in
// production, a role to fill elsewhere. The role is never set for all
// environments at once, so an environment added later renders only once
// it names its own (roleRequired).
func (b *builder) serviceAccount() (*yaml.Node, *yaml.Node) {
	sa := b.svc.ServiceAccount
	m := newMap()
	if sa != nil && sa.Name != "" && sa.Name != b.svc.Name {
		m.set("name", str(dnsSubdomainOr(sa.Name, b.svc.Name)))
	}
	if sa == nil && !b.needsRole() {
		return m.orNil(), emptyMap()
	}
	svc := *b.svc
	if sa == nil {
		// What Render gives the service: a role to fill.
		svc.ServiceAccount = &service.ServiceAccount{RoleValue: iam.RoleFill}
	}
	ids := iam.Identities(&svc, b.opts)
	// Production's role first in fill:, as it is the input's.
	for _, id := range ids {
		if id.Prod && id.Fill == iam.RoleFill {
			reason := "the IAM role the pods assume through IRSA"
			if sa == nil {
				reason = "the IAM role that may read this service's secrets and queues (on ECS, the task execution role did); the pods assume it through IRSA"
			}
			reason += fmt.Sprintf(" in %s (iam/%s.trust-policy.json is its trust policy)", strings.Join(b.opts.ProdEnvs(), " and "), id.Name)
			b.addFill(iam.RoleFill, "", reason, "serviceAccount")
		}
	}
	envs := newMap()
	for _, id := range ids {
		role := newMap()
		switch {
		case id.ARN != "":
			role.set("roleArn", str(id.ARN))
		case id.Prod:
			role.set("roleArnFill", str(id.Fill))
		default:
			b.addFill(id.Fill, "", b.envRoleReason(id), "serviceAccount")
			role.set("roleArnFill", str(id.Fill))
		}
		envs.set(id.Env, newMap().set("serviceAccount", role.node()).node())
	}
	m.setc("roleRequired", "The pods need an IAM role in every environment, each environment its own\n(the input's in production): environments.<env>.serviceAccount names it,\nand the chart refuses to render an environment that names none.", boolNode(true))
	return m.node(), envs.node()
}

// envRoleReason is the FILL comment of a non-production environment's
// role: which role it is, and what it must trust.
func (b *builder) envRoleReason(id iam.Identity) string {
	partition := "aws"
	if sa := b.svc.ServiceAccount; sa != nil {
		if p, _, _, err := iam.ParseRoleARN(sa.RoleARN); err == nil {
			partition = p
		}
	}
	account := b.opts.Account(id.Env)
	if account == "" {
		account = iam.AccountPlaceholderFor(id.Env)
	}
	return fmt.Sprintf("the IAM role of %s in %s: a role of that environment's account, trusting only %s/%s (create arn:%s:iam::%s:role/%s with iam/%s.trust-policy.json)",
		b.svc.Name, id.Env, id.Namespace, id.ServiceAccount, partition, account, id.Name, id.Name)
}

// metrics writes metrics: the port Prometheus scrapes, which the chart
// opens to networkPolicy.metricsNamespaces and names in the pods'
// prometheus.io annotations.
func (b *builder) metrics() *yaml.Node {
	var found []service.Port
	for _, list := range [][]service.Container{b.svc.Containers, b.svc.Sidecars} {
		for _, c := range list {
			for _, p := range c.Ports {
				if p.Metrics && (p.Protocol == "" || strings.EqualFold(p.Protocol, "TCP")) {
					found = append(found, p)
				}
			}
		}
	}
	if len(found) == 0 {
		return nil
	}
	if len(found) > 1 {
		b.warn("containers.ports", b.target("metrics.port"), "%d ports serve metrics; the pods' prometheus.io annotations and the NetworkPolicy name only port %d: scrape the others with a PodMonitor and open them in networkPolicy.extraIngress", len(found), found[0].ContainerPort)
	}
	return newMap().set("port", intNode(found[0].ContainerPort)).node()
}

func dnsSubdomainOr(name, fallback string) string {
	if service.ValidateName(name) == nil {
		return name
	}
	return fallback
}

func (b *builder) secrets() *yaml.Node {
	var out []*yaml.Node
	for _, s := range b.svc.Secrets {
		field := "secrets[" + s.Name + "]"
		m := newMap().set("name", str(b.secretKeys[s.Name]))
		if b.secretKeys[s.Name] != s.Name {
			b.warn(field, b.target("secrets"), "key renamed to %s: a Secret key holds only letters, digits, '-', '_' and '.'", b.secretKeys[s.Name])
		}
		region := s.Region
		switch s.Source {
		case service.SecretsManager:
			m.set("store", str("secretsManager"))
			m.set("key", str(s.Key))
			if region == "" {
				region = secretsManagerRegion(s.Key)
			}
			m.set("property", optStr(s.Property))
			m.set("version", optStr(secretVersion(s.Version)))
		case service.ParameterStore:
			name, r := parameterName(s.Key)
			if region == "" {
				region = r
			}
			m.set("store", str("parameterStore"))
			m.set("key", str(name))
			m.set("version", optStr(s.Version))
			if s.Property != "" {
				m.set("property", str(s.Property))
			}
		case service.SecretFile:
			m.set("store", str("file"))
			m.set("key", str(s.Key))
			b.warn(field, b.target("secrets"), "a file secret (%s): create the Kubernetes Secret %s-files with the key %s in every namespace (or move it to Secrets Manager); cutover never reads it", s.Key, b.svc.Name, b.secretKeys[s.Name])
			region = ""
		default:
			b.drop(field, "unknown secret source %q", s.Source)
			continue
		}
		m.set("region", optStr(region))
		if s.Source != service.SecretFile && secretKeyPlaceholderRE.MatchString(s.Key) {
			store := "Secrets Manager"
			if s.Source == service.ParameterStore {
				store = "Parameter Store"
			}
			name := b.addFill(service.FillKey("secret", s.Name), "",
				fmt.Sprintf("the %s name or ARN of secret %s: the input gave the unrendered %q", store, s.Name, s.Key), field)
			m.set("keyFill", str(name))
		}
		out = append(out, m.node())
	}
	return optSeq(out...)
}

// secretKeyPlaceholderRE finds what a pipeline left in a secret's name or
// ARN (${ssm_parameter_arn}, #{SecretArn}, <SECRET_ARN>, {{ .arn }}):
// characters no Secrets Manager name, Parameter Store name or ARN holds.
var secretKeyPlaceholderRE = regexp.MustCompile(`[${}<>#%]`)

func (b *builder) volumeValues() *yaml.Node {
	var out []*yaml.Node
	replicas := b.long() && (b.svc.Scaling != nil || b.keda || b.svc.Replicas == nil || *b.svc.Replicas != 1)
	for _, v := range b.svc.Volumes {
		field := "volumes[" + v.Name + "]"
		m := newMap().set("name", str(b.volumes[v.Name]))
		switch v.Kind {
		case service.VolumeEmptyDir, "":
			m.set("type", str("emptyDir"))
			switch v.Medium {
			case "":
			case "Memory":
				m.set("medium", str("Memory"))
			default:
				b.drop(field+".medium", "unknown emptyDir medium %q: node disk is used", v.Medium)
			}
			m.set("sizeLimit", optStr(v.Size))
		case service.VolumeEFS:
			m.set("type", str("efs"))
			e := newMap()
			efs := v.EFS
			if efs == nil {
				efs = &service.EFSVolume{}
			}
			switch {
			case efs.FileSystemIDValue != "":
				e.set("fileSystemIdFill", str(efs.FileSystemIDValue))
			case efs.FileSystemID != "" && !render.IsPlaceholder(efs.FileSystemID):
				e.set("fileSystemId", str(efs.FileSystemID))
			default:
				name := b.addFill("efs-"+b.volumes[v.Name]+"-file-system-id", efs.FileSystemID, "the EFS file system (fs-...) of volume "+v.Name, field+".efs.fileSystemId")
				e.set("fileSystemIdFill", str(name))
			}
			e.set("accessPointId", optStr(efs.AccessPointID))
			if efs.AccessPointID == "" {
				e.set("rootDirectory", optStr(efs.RootDirectory))
			} else if efs.RootDirectory != "" && efs.RootDirectory != "/" {
				b.warn(field+".efs.rootDirectory", "", "ignored with an access point, as on ECS: the access point sets the root")
			}
			if !efs.TransitEncryption {
				b.warn(field+".efs.transitEncryption", b.target("volumes"), "encrypted in transit (TLS), which the input did not ask for; set efs.transitEncryption: false only if the file system refuses TLS")
			}
			m.set("efs", e.node())
			b.warn(field, b.target("volumes"), "a static EFS PersistentVolume per environment; every environment mounts the same file system unless you override volumes in environments")
		case service.VolumeClaim:
			m.set("type", str("pvc"))
			m.set("size", optStr(v.Size))
			if replicas {
				b.warn(field, b.target("volumes"), "a ReadWriteOnce claim: every replica must run on one node; use EFS, or one replica")
			}
		case service.VolumeSecret:
			m.set("type", str("secret"))
			var keys []string
			for _, s := range v.Secrets {
				keys = append(keys, b.secretKeys[s])
			}
			m.set("secrets", strSeq(keys))
		case service.VolumeConfig:
			m.set("type", str("config"))
		default:
			b.drop(field, "unknown volume kind %q", v.Kind)
			continue
		}
		out = append(out, m.node())
	}
	return optSeq(out...)
}

func (b *builder) placement() *yaml.Node {
	p := b.svc.Placement
	if p == nil {
		return nil
	}
	m := newMap().set("spot", optTrue(p.Spot))
	if p.Spot && p.SpotPercent > 0 && p.SpotPercent < 100 {
		b.warn("placement.spotPercent", b.target("placement.spot"), "%d%% Spot is rendered as a preference for Spot nodes; Kubernetes has no share of capacity types", p.SpotPercent)
	}
	switch p.Architecture {
	case "", "amd64", "arm64":
		m.set("architecture", optStr(p.Architecture))
	default:
		b.drop("placement.architecture", "unknown architecture %q", p.Architecture)
	}
	switch p.OS {
	case "", "linux":
	case "windows":
		m.set("os", str("windows"))
	default:
		b.drop("placement.os", "unknown operating system %q", p.OS)
	}
	return m.orNil()
}

// envFills sets, in each environment's overrides, the values to fill
// that the input gives per environment (service.Value.PerEnv): a
// Serverless value that depends on the stage. An environment the input
// gives none keeps fill's empty value, which the chart refuses to render
// until it is filled there.
func (b *builder) envFills(envs ymap) {
	for _, env := range b.opts.Envs {
		for _, v := range b.fills {
			if x, ok := v.PerEnv[env]; ok {
				envs.child(env).child("fill").set(v.Name, str(x))
			}
		}
	}
}

func (b *builder) fillValues() *yaml.Node {
	if len(b.fills) == 0 {
		return emptyMap()
	}
	m := newMap()
	for _, v := range b.fills {
		reason := v.Reason
		if reason == "" {
			reason = "the input had no value"
		}
		m.setc(v.Name, "FILL: "+reason, str(v.Default))
	}
	return m.node()
}

// withoutShadowed drops the matches of a path with a method when the same
// path is matched for every method: they add nothing.
func withoutShadowed(matches []*yaml.Node) []*yaml.Node {
	anyMethod := map[string]bool{}
	for _, m := range matches {
		if len(m.Content) == 2 { // path only
			anyMethod[m.Content[1].Value] = true
		}
	}
	var out []*yaml.Node
	for _, m := range matches {
		if len(m.Content) > 2 && anyMethod[m.Content[1].Value] {
			continue
		}
		out = append(out, m)
	}
	return out
}

// lowPorts lets a pod whose containers run as a user other than root bind
// the ports below 1024 they listen on (nginx on 80, a TLS listener on 443):
// the chart runs them as 10001 unless the input named a user, and a
// non-root process cannot bind such a port where the container runtime
// keeps the kernel's default (containerd before 2.0, EKS's included). The
// safe sysctl net.ipv4.ip_unprivileged_port_start, which the Pod Security
// restricted level allows, opens the ports from the lowest one used
// instead of adding NET_BIND_SERVICE, which a non-root process does not
// get from the pod spec.
func (b *builder) lowPorts(m ymap) {
	lowest, names := int32(0), []string{}
	for _, list := range [][]service.Container{b.svc.Containers, b.svc.Sidecars} {
		for i := range list {
			c := &list[i]
			if c.RunAsUser != nil && *c.RunAsUser == 0 {
				continue
			}
			for _, p := range c.Ports {
				if p.ContainerPort <= 0 || p.ContainerPort >= 1024 {
					continue
				}
				if lowest == 0 || p.ContainerPort < lowest {
					lowest = p.ContainerPort
				}
				names = append(names, fmt.Sprintf("%s:%d", c.Name, p.ContainerPort))
			}
		}
	}
	if lowest == 0 {
		return
	}
	sysctl := newMap().set("name", str("net.ipv4.ip_unprivileged_port_start")).set("value", str(strconv.Itoa(int(lowest))))
	m.set("podSecurityContext", newMap().set("sysctls", seq(sysctl.node())).node())
	b.warn("containers.ports", b.target("podSecurityContext.sysctls"), "%s %s below 1024 as a user other than root: the pod sets net.ipv4.ip_unprivileged_port_start=%d (a safe sysctl the Pod Security restricted level allows) so that it can bind %s; or move the application to a port above 1023 and remove the sysctl", strings.Join(names, ", "), oneOrMany(len(names), "listens on a port", "listen on ports"), lowest, oneOrMany(len(names), "it", "them"))
}

// passesInput reports whether the main container's command already hands
// a schedule's fixed event to the function (`cutover lambda serve --input
// EVENT`, which the Lambda importer writes).
func (b *builder) passesInput(input string) bool {
	c := b.svc.Main()
	if c == nil {
		return false
	}
	args := append(append([]string{}, c.Command...), c.Args...)
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "--input" && args[i+1] == input {
			return true
		}
	}
	return false
}

// oneOrMany returns one when n is 1, else many: the words that agree with
// a list of names in a message.
func oneOrMany(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
