package lambda

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/cutoverhq/cutover/service"
	"github.com/cutoverhq/cutover/source"
)

func isQueue(k service.TriggerKind) bool {
	switch k {
	case service.TriggerSQS, service.TriggerKinesis, service.TriggerDynamoDB, service.TriggerKafka:
		return true
	}
	return false
}

// droppedEvents returns the fields of the function's events the report
// already drops: a function whose only sources had no Kubernetes
// counterpart did have event sources, and the report must not say it had
// none.
func (fn *function) droppedEvents() []string {
	at := source.JoinPath(fn.eventsAt.t.Prefix, fn.eventsAt.field)
	out := slices.Clone(fn.droppedSources)
	for _, f := range fn.svc.Report.Findings {
		if f.Status == service.Dropped && (strings.HasPrefix(f.Field, at+".") || strings.HasPrefix(f.Field, at+"[")) {
			out = append(out, f.Field)
		}
	}
	return out
}

// finishKind decides how the workload runs from its triggers: HTTP makes a
// server, a queue or stream a worker, a schedule a CronJob, nothing a Job.
func (fn *function) finishKind() {
	var http, queue, sched bool
	for _, tr := range fn.triggers {
		switch {
		case tr.Kind == service.TriggerHTTP:
			http = true
		case isQueue(tr.Kind):
			queue = true
		case tr.Kind == service.TriggerSchedule:
			sched = true
		}
	}
	svc := fn.svc
	switch {
	case http:
		svc.Kind = service.KindServer
	case queue:
		svc.Kind = service.KindWorker
	case sched:
		svc.Kind = service.KindCron
	default:
		svc.Kind = service.KindJob
		if dropped := fn.droppedEvents(); len(dropped) > 0 {
			fn.eventsAt.t.Warn(fn.eventsAt.field, "Job", fn.eventsAt.unset(
				fmt.Sprintf("the function's event sources were dropped (%s, each reported with why), so nothing on Kubernetes invokes it; it becomes a Job that runs one invocation: keep those sources on AWS calling a server, or have their callers create Jobs", strings.Join(dropped, ", "))))
		} else {
			fn.eventsAt.t.Warn(fn.eventsAt.field, "Job", fn.eventsAt.unset(
				"the function has no event source: it ran when something invoked it (the Invoke API, S3, SNS, Step Functions, another function); it becomes a Job that runs one invocation, so those callers must now create Jobs or call a server"))
		}
	}
	for _, tr := range fn.triggers {
		switch {
		case svc.Kind != service.KindServer || !isQueue(tr.Kind) || !tr.Enabled:
		case tr.Kind.Stream():
			warnOnly(tr.at, "serve --source "+string(tr.Kind),
				"the function also serves HTTP, so it becomes a server; one of its replicas consumes this stream (the one holding its checkpoint's Lease), the others stand by for it; the HPA scales on CPU: split the function if the stream needs a replica of its own")
		default:
			warnOnly(tr.at, "serve --source "+string(tr.Kind),
				"the function also serves HTTP, so it becomes a server whose replicas also consume this source; the HPA scales on CPU, not on the backlog: split the function if the backlog must drive scaling")
		}
	}
	first := true
	for _, tr := range fn.triggers {
		if tr.Kind != service.TriggerSchedule {
			continue
		}
		switch {
		case svc.Kind != service.KindCron:
			warnOnly(tr.at, "not served",
				fmt.Sprintf("the function also has %s triggers, so it becomes a %s; this schedule is not run by it: convert the schedule separately as a CronJob (every replica firing it would run it many times)", kindWord(svc.Kind), svc.Kind))
		case first && tr.Enabled:
			svc.Schedule, svc.ScheduleTimeZone = tr.Schedule, tr.TimeZone
			first = false
		case tr.Enabled:
			warnOnly(tr.at, "trigger "+tr.Name,
				fmt.Sprintf("cutover makes one CronJob per service, on the first schedule (%s); this schedule (%s) is kept as a trigger: add a second CronJob for it", svc.Schedule, tr.Schedule))
		}
	}
	if svc.Kind == service.KindCron && svc.Schedule == "" {
		// Every schedule was disabled: keep the first, suspended in spirit.
		for _, tr := range fn.triggers {
			if tr.Kind == service.TriggerSchedule {
				svc.Schedule, svc.ScheduleTimeZone = tr.Schedule, tr.TimeZone
				break
			}
		}
	}
}

func kindWord(k service.Kind) string {
	if k == service.KindServer {
		return "HTTP"
	}
	return "queue or stream"
}

// finishImage settles the image: an Image function's URI, or for a zip
// package a value to fill with how to build it.
func (fn *function) finishImage() {
	c := fn.main()
	switch {
	case fn.image != "":
		c.Image = fn.image
		return
	case fn.imageValue != "":
		c.ImageValue = fn.imageValue
		return
	}
	at := fn.imageAt
	if at.t == nil {
		at = fn.runtimeAt
	}
	if fn.packageImage {
		c.ImageValue = fn.fill(at, "image", "", "the function's container image: the input does not name it")
		return
	}
	base := fn.rt.BaseImage
	if base == "" {
		base = "the AWS Lambda base image of its runtime (public.ecr.aws/lambda/<runtime>)"
	}
	code := ""
	if fn.codeHint != "" {
		code = " (" + fn.codeHint + ")"
	}
	rt := fn.runtime
	if rt == "" {
		rt = "runtime unknown"
	}
	reason := fmt.Sprintf("the function is a zip package (%s): build its code%s into an image FROM %s, code in /var/task, and push it; "+
		"the pod runs `cutover lambda serve`, so the image must contain the cutover binary (COPY --from the cutover image)", rt, code, base)
	c.ImageValue = fn.fill(at, "image", "", reason)
}

// finishTiming maps the timeout to the invocation deadline, the job
// deadline and the shutdown grace period.
func (fn *function) finishTiming() {
	svc := fn.svc
	at := fn.timeoutAt
	var parts []string
	parts = append(parts, fmt.Sprintf("serve enforces the %d s invocation deadline (AWS_LAMBDA_FUNCTION_TIMEOUT)", fn.timeout))
	if svc.Kind == service.KindCron || svc.Kind == service.KindJob {
		svc.TimeoutSeconds = fn.timeout + jobStartMarginSeconds
		parts = append(parts, fmt.Sprintf("activeDeadlineSeconds %d adds %d s for scheduling, image pull and init", svc.TimeoutSeconds, jobStartMarginSeconds))
	}
	grace := fn.timeout + 5
	if svc.Kind == service.KindServer {
		// A preStop sleep lets endpoints drop the pod before SIGTERM; the
		// in-flight request still gets its whole timeout after it.
		fn.main().PreStopSleepSeconds = 5
		grace += 5
	}
	if grace < 30 {
		grace = 30
	}
	capped := false
	if grace > maxGraceSeconds {
		grace, capped = maxGraceSeconds, true
	}
	svc.TerminationGracePeriodSeconds = &grace
	parts = append(parts, fmt.Sprintf("terminationGracePeriodSeconds %d lets an in-flight invocation finish on shutdown", grace))
	if capped {
		parts = append(parts, fmt.Sprintf("capped at %d s: an invocation still running then is cut off (a queue message returns after its visibility timeout, an HTTP request fails); shorten the timeout or raise the cap in values", maxGraceSeconds))
	}
	if fn.timeoutDefault {
		parts = append([]string{fmt.Sprintf("not set: the default of %d s applies", fn.timeout)}, parts...)
	}
	if capped || svc.TimeoutSeconds > 0 || fn.timeoutDefault {
		at.t.Warn(at.field, "AWS_LAMBDA_FUNCTION_TIMEOUT, terminationGracePeriodSeconds", strings.Join(parts, "; "))
		return
	}
	at.t.Mapped(at.field, fmt.Sprintf("AWS_LAMBDA_FUNCTION_TIMEOUT, terminationGracePeriodSeconds %d", grace))
}

// finishCheckpoints names, for every enabled stream trigger, the
// ConfigMap that keeps the consumer's per-shard checkpoint and the Lease
// its replicas elect the consumer with (serve --checkpoint-configmap), and
// reports where the position lives now.
func (fn *function) finishCheckpoints() {
	for _, tr := range fn.triggers {
		if !tr.Kind.Stream() {
			continue
		}
		at := tr.sourceAt
		if at.t == nil {
			at = tr.at
		}
		if !tr.Enabled {
			at.t.Warn(at.field, "",
				fmt.Sprintf("the trigger is disabled, so serve does not consume the stream; to consume it, add --source %s --stream-arn … --checkpoint-configmap <name> to the command and <name> to checkpoints in the service's values, which the chart's Role is limited to", tr.Kind))
			continue
		}
		tr.checkpoint = checkpointName(fn.svc.Name, tr.Name)
		fn.svc.Checkpoints = append(fn.svc.Checkpoints, service.Checkpoint{Trigger: tr.Name, Name: tr.checkpoint})
		pos := tr.StartingPosition
		if pos == "" {
			pos = "LATEST, serve's default"
		}
		advice := "TRIM_HORIZON processes again what Lambda already did, LATEST skips what arrives before the pods start; AT_TIMESTAMP (--starting-timestamp) at the moment the Lambda mapping is disabled avoids both"
		if tr.StartingPosition == "AT_TIMESTAMP" {
			advice = "make --starting-timestamp the moment the Lambda mapping is disabled, so the pods neither process again what Lambda did nor skip what came after"
		}
		msg := fmt.Sprintf("serve keeps the per-shard checkpoint in the ConfigMap and holds the Lease, both in the pod's namespace: one replica consumes the stream, the others stand by and take over within about 15 s when it stops (the chart gives the pods a Role on these two objects alone); "+
			"Lambda's own position is not carried over, so StartingPosition (%s) decides where the consumer begins on first start: %s", pos, advice)
		if tr.sourceNote != "" {
			msg = tr.sourceNote + "; " + msg
		}
		at.t.Warn(at.field, "serve --stream-arn; checkpoint ConfigMap and Lease "+tr.checkpoint, msg)
	}
}

// streamsOnly reports whether every enabled queue or stream trigger of
// the function is a stream, and one is enabled: one replica consumes
// them all (the Lease holder), so replicas beyond a standby add nothing.
func (fn *function) streamsOnly() bool {
	streams := false
	for _, tr := range fn.triggers {
		if !isQueue(tr.Kind) || !tr.Enabled {
			continue
		}
		if !tr.Kind.Stream() {
			return false
		}
		streams = true
	}
	return streams
}

// hasStream reports whether an enabled stream trigger is consumed.
func (fn *function) hasStream() bool {
	for _, tr := range fn.triggers {
		if tr.Kind.Stream() && tr.Enabled {
			return true
		}
	}
	return false
}

// streamReplicas is the fixed replica count of a worker that consumes
// only streams: one consumes, one stands by.
const streamReplicas = 2

// finishScaling turns reserved and provisioned concurrency into replica
// bounds. One replica runs one invocation at a time, as one Lambda
// execution environment does, so concurrency and replicas are the same
// number; except for streams, which one replica consumes (see
// finishCheckpoints).
func (fn *function) finishScaling() {
	svc := fn.svc
	for _, tr := range fn.triggers {
		if fn.reserved != nil && *fn.reserved > 0 && (tr.MaxConcurrency == 0 || int64(tr.MaxConcurrency) > *fn.reserved) {
			tr.MaxConcurrency = int32(*fn.reserved)
		}
	}
	at := fn.reservedAt
	if fn.reserved != nil && *fn.reserved == 0 {
		zero := int32(0)
		svc.Replicas = &zero
		at.t.Warn(at.field, "replicas 0", "reserved concurrency 0 throttles the function: it ran no invocations, so the workload starts with 0 replicas")
		return
	}
	if svc.Kind == service.KindCron || svc.Kind == service.KindJob {
		if fn.reserved != nil {
			at.t.Warn(at.field, "", fmt.Sprintf("reserved concurrency %d: a %s runs one pod per run; use concurrencyPolicy Forbid if runs must not overlap", *fn.reserved, svc.Kind))
		}
		return
	}
	if svc.Kind == service.KindWorker && fn.streamsOnly() {
		n := int32(streamReplicas)
		svc.Replicas = &n
		msg := "one replica consumes the streams, holding their checkpoints' Leases; the other stands by and takes over within about 15 s when it stops, and the PodDisruptionBudget lets only one go at a time; more replicas would only add standbys, so nothing autoscales the workload"
		if fn.reserved != nil {
			msg = fmt.Sprintf("reserved concurrency %d is not a replica count for a stream consumer: ", *fn.reserved) + msg
		}
		at.t.Warn(at.field, fmt.Sprintf("Deployment replicas %d, no autoscaler", n), at.unset(msg))
		if fn.provisioned > 0 {
			fn.provisionedAt.t.Warn(fn.provisionedAt.field, "", fmt.Sprintf("provisioned concurrency %d: the standby replica is the warm capacity a stream consumer needs", fn.provisioned))
		}
		return
	}
	max, why := int32(defaultMaxReplicas), ""
	switch {
	case fn.reserved != nil:
		max = int32(min(*fn.reserved, 1000))
	default:
		var m int32
		for _, tr := range fn.triggers {
			if tr.MaxConcurrency > m {
				m = tr.MaxConcurrency
			}
		}
		if m > 0 {
			max, why = m, "the event source's maximum concurrency"
		} else {
			why = fmt.Sprintf("Lambda scaled to the account's concurrency limit; %d replicas is cutover's default cap, raise it in values", defaultMaxReplicas)
		}
	}
	var minR int32
	stream := ""
	switch {
	case svc.Kind == service.KindServer:
		// Two replicas so a node or zone loss does not take the endpoint
		// down; Lambda's warm pool gave the same without asking.
		minR = 2
	case fn.hasStream():
		// A stream is consumed whatever the queues hold: never scale to
		// zero, and keep a standby for the stream's consumer.
		minR = streamReplicas
		stream = fmt.Sprintf("; minReplicas %d: the function also consumes a stream, which one replica consumes (holding its checkpoint's Lease) whatever the queues hold, while another stands by; the queues scale the rest", streamReplicas)
	}
	if fn.provisioned > 0 {
		minR = int32(min(fn.provisioned, 1000))
		fn.provisionedAt.t.Warn(fn.provisionedAt.field, "minReplicas", fmt.Sprintf("provisioned concurrency %d keeps %d replicas warm", fn.provisioned, minR))
	}
	if minR > max {
		minR = max
	}
	svc.Scaling = &service.Scaling{MinReplicas: minR, MaxReplicas: max}
	target := "KEDA ScaledObject maxReplicaCount"
	msg := "one replica runs one invocation at a time, as a Lambda execution environment does; minReplicas 0 lets KEDA scale the consumer to zero when the source is idle (the renderer decides)"
	if stream != "" {
		msg = "one replica runs one invocation at a time, as a Lambda execution environment does" + stream
	}
	if svc.Kind == service.KindServer {
		svc.Scaling.TargetCPUPercent = 70
		target = "HorizontalPodAutoscaler maxReplicas"
		msg = "one replica runs one request at a time, as a Lambda execution environment does; the HPA scales on 70% CPU, which lags Lambda's per-request scaling (KEDA's HTTP add-on scales on concurrency)"
	}
	if why != "" {
		msg = why + "; " + msg
	}
	at.t.Warn(at.field, fmt.Sprintf("%s %d", target, max), at.unset(msg))
}

// finishEnv adds the environment the Lambda runtime set for the function,
// which code and runtime interface clients read.
func (fn *function) finishEnv() {
	svc := fn.svc
	if svc.Config == nil {
		svc.Config = map[string]string{}
	}
	set := map[string]bool{}
	for _, e := range fn.env {
		set[e.Name] = true
	}
	add := func(name, value string) {
		if set[name] {
			return
		}
		set[name] = true
		svc.Config[name] = value
		fn.env = append(fn.env, service.EnvVar{Name: name, ConfigKey: name})
	}
	addRef := func(name, ref string) {
		if set[name] {
			return
		}
		set[name] = true
		fn.env = append(fn.env, service.EnvVar{Name: name, ValueRef: ref})
	}
	switch {
	case fn.nameValue != "":
		addRef("AWS_LAMBDA_FUNCTION_NAME", fn.nameValue)
	default:
		add("AWS_LAMBDA_FUNCTION_NAME", fn.name)
	}
	add("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", strconv.FormatInt(fn.memoryMB, 10))
	add("AWS_LAMBDA_FUNCTION_TIMEOUT", strconv.FormatInt(fn.timeout, 10))
	add("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
	add("LAMBDA_TASK_ROOT", "/var/task")
	add("LAMBDA_RUNTIME_DIR", "/var/runtime")
	if fn.runtime != "" && !fn.packageImage {
		add("AWS_EXECUTION_ENV", "AWS_Lambda_"+fn.runtime)
	}
	switch {
	case fn.handler != "":
		add("_HANDLER", fn.handler)
	case fn.handlerValue != "":
		addRef("_HANDLER", fn.handlerValue)
	}
	if fn.region != "" {
		add("AWS_REGION", fn.region)
		add("AWS_DEFAULT_REGION", fn.region)
	}
	add("TZ", ":UTC")
}

// finishCommand builds the container command: `cutover lambda serve`,
// one flag group per event source (flags after a --source belong to it),
// then "--" and the function's own entrypoint, which serve starts with
// AWS_LAMBDA_RUNTIME_API pointing at itself.
func (fn *function) finishCommand() {
	svc, c := fn.svc, fn.main()
	// serve's Prometheus metrics and health endpoints, named so the port
	// is declared and scraped whatever serve's default becomes.
	cmd := []string{"cutover", "lambda", "serve", "--metrics", ":" + strconv.Itoa(MetricsPort)}
	switch svc.Kind {
	case service.KindCron:
		cmd = append(cmd, "--source", "schedule")
		for _, tr := range fn.triggers {
			if tr.Kind == service.TriggerSchedule && tr.Schedule == svc.Schedule {
				if tr.Input != "" {
					cmd = append(cmd, "--input", tr.Input)
				}
				break
			}
		}
	case service.KindJob:
		cmd = append(cmd, "--source", "job")
	default:
		var routes []string
		for _, tr := range fn.triggers {
			if tr.Kind == service.TriggerHTTP && tr.Route != nil {
				m := tr.Route.Method
				if m == "" {
					m = "ANY"
				}
				routes = append(routes, "--route", fmt.Sprintf("%s %s %s", tr.EventShape, m, orSlash(tr.Route.Path)))
			}
		}
		if len(routes) > 0 {
			cmd = append(cmd, "--source", "http", "--port", strconv.Itoa(Port))
			cmd = append(cmd, routes...)
			if fn.responseStream {
				cmd = append(cmd, "--response-stream")
			}
		}
		for _, tr := range fn.triggers {
			if isQueue(tr.Kind) && tr.Enabled {
				cmd = append(cmd, fn.sourceFlags(tr)...)
			}
		}
	}
	cmd = append(cmd, "--")
	var entry, args []string
	switch {
	case fn.packageImage && fn.entrypoint != nil:
		entry = fn.entrypoint
	case fn.packageImage:
		ref := fn.fill(fn.imageAt, "entrypoint", "/lambda-entrypoint.sh",
			"the image's ENTRYPOINT (docker inspect --format '{{json .Config.Entrypoint}}' <image>): /lambda-entrypoint.sh for AWS base images, the bootstrap binary for custom runtimes")
		fn.env = append(fn.env, service.EnvVar{Name: "LAMBDA_ENTRYPOINT", ValueRef: ref})
		entry = []string{"$(LAMBDA_ENTRYPOINT)"}
	default:
		entry = []string{"/lambda-entrypoint.sh"}
	}
	if !fn.packageImage && fn.handler == "" && fn.handlerValue == "" {
		fn.handlerValue = fn.fill(fn.imageAt, "handler", "", "the function's handler (file.function for scripting runtimes, Class::method for Java), which the input does not say")
		fn.env = append(fn.env, service.EnvVar{Name: "_HANDLER", ValueRef: fn.handlerValue})
	}
	switch {
	case fn.packageImage && fn.cmd != nil:
		args = fn.cmd
	case fn.handler != "" && !fn.packageImage:
		args = []string{fn.handler}
	default:
		if fn.handlerValue == "" && fn.packageImage {
			fn.handlerValue = fn.fill(fn.imageAt, "handler", "",
				"the image's CMD, which AWS base images take as the handler (docker inspect --format '{{json .Config.Cmd}}' <image>), e.g. app.handler; any word for a custom runtime")
			fn.env = append(fn.env, service.EnvVar{Name: "_HANDLER", ValueRef: fn.handlerValue})
		}
		if fn.handlerValue != "" {
			args = []string{"$(_HANDLER)"}
		}
	}
	c.Command = append(cmd, entry...)
	c.Args = args
	c.Env = fn.env
	if svc.Kind == service.KindServer {
		c.Ports = []service.Port{{Name: "http", ContainerPort: Port, AppProtocol: "http"}}
		if svc.Expose == nil {
			svc.Expose = &service.Expose{}
		}
		svc.Expose.Port = Port
	}
	c.Ports = append(c.Ports, service.Port{Name: "metrics", ContainerPort: MetricsPort, AppProtocol: "http", Metrics: true})
}

func orSlash(p string) string {
	if p == "" {
		return "/"
	}
	return p
}

// sourceFlags are the serve flags of one queue or stream trigger. A field
// the user fills reaches the command through an environment variable,
// which Kubernetes expands in $(NAME).
func (fn *function) sourceFlags(tr *trigger) []string {
	ref := func(suffix, value string) string {
		name := envName("CUTOVER", tr.Name, suffix)
		fn.env = append(fn.env, service.EnvVar{Name: name, ValueRef: value})
		return "$(" + name + ")"
	}
	src := tr.Source
	if tr.SourceValue != "" {
		src = ref("SOURCE", tr.SourceValue)
	}
	var out []string
	switch tr.Kind {
	case service.TriggerSQS:
		out = []string{"--source", "sqs", "--queue-url", src}
	case service.TriggerKinesis, service.TriggerDynamoDB:
		out = []string{"--source", string(tr.Kind), "--stream-arn", src}
		if tr.checkpoint != "" {
			// The checkpoint in a ConfigMap and the Lease that elects the
			// consumer, in the pod's namespace ($POD_NAMESPACE).
			out = append(out, "--checkpoint-configmap", tr.checkpoint)
		}
	case service.TriggerKafka:
		brokers := strings.Join(tr.Brokers, ",")
		if tr.BrokersValue != "" {
			brokers = ref("BROKERS", tr.BrokersValue)
		}
		group := tr.ConsumerGroup
		if tr.ConsumerGroupValue != "" {
			group = ref("GROUP", tr.ConsumerGroupValue)
		}
		if group == "" {
			group = fn.svc.Name
		}
		out = []string{"--source", "kafka", "--brokers", brokers, "--topic", src, "--consumer-group", group}
		switch {
		case tr.clusterARNValue != "":
			out = append(out, "--cluster-arn", ref("CLUSTER_ARN", tr.clusterARNValue))
		case tr.clusterARN != "":
			// Lambda's MSK events carry the cluster as eventSourceArn.
			out = append(out, "--cluster-arn", tr.clusterARN)
		}
	}
	if tr.Region != "" {
		out = append(out, "--region", tr.Region)
	}
	if tr.StartingPosition != "" {
		out = append(out, "--starting-position", tr.StartingPosition)
	}
	if tr.BatchSize > 0 {
		out = append(out, "--batch-size", strconv.Itoa(int(tr.BatchSize)))
	}
	return append(out, tr.flags...)
}

// warnOnly reports a finding about a whole event without covering the
// fields under it: Tracker.Warn would mark every setting of the event
// handled, and one that no reader took must still be reported as
// dropped.
func warnOnly(v val, target, msg string) {
	f := source.JoinPath(v.t.Prefix, v.field)
	v.t.Report.Warn(v.t.File, v.t.Pos.Line(f), f, target, msg)
}
