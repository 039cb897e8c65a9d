package lambda

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/cutoverhq/cutover/service"
	"github.com/cutoverhq/cutover/source"
)

// statusFields are read-only facts about a deployed function or mapping:
// nothing of them carries over, and the report says so once each.
var statusFields = map[string]string{
	"CodeSize":                   "the size of the deployed package",
	"CodeSha256":                 "the hash of the deployed package; the image digest takes its place",
	"LastModified":               "when the function was last changed",
	"LastUpdateStatus":           "the status of the last update",
	"LastUpdateStatusReason":     "the status of the last update",
	"LastUpdateStatusReasonCode": "the status of the last update",
	"RevisionId":                 "Lambda's optimistic-locking revision",
	"Version":                    "the published version ($LATEST is what runs); the image tag takes its place",
	"State":                      "the function's state on Lambda",
	"StateReason":                "the function's state on Lambda",
	"StateReasonCode":            "the function's state on Lambda",
	"MasterArn":                  "a Lambda@Edge replica's main function; edge functions stay at CloudFront",
	"RuntimeVersionConfig":       "the patch level of the managed runtime; the base image tag pins it now",
	"SigningProfileVersionArn":   "Lambda code signing: sign the image (cosign, Notation) and verify it with an admission policy",
	"SigningJobArn":              "Lambda code signing: sign the image (cosign, Notation) and verify it with an admission policy",
	"Description":                "Kubernetes objects have no description; it stays in this report",
}

// readCLIFunction reads a function configuration (get-function-configuration
// output, get-function's Configuration, an entry of list-functions). top is
// the object that holds Configuration/Code/Tags/Concurrency, or the
// configuration itself.
func readCLIFunction(fn *function, top val) error {
	cfg := top
	if c := top.get("Configuration"); !c.absent() {
		cfg = c
		fn.readGetFunctionExtras(top)
	}
	fn.root, fn.eventsAt = cfg, cfg.get("FunctionName")
	fn.memoryAt, fn.timeoutAt = cfg.get("MemorySize"), cfg.get("Timeout")
	if fn.reservedAt.t == nil {
		fn.reservedAt = cfg.get("FunctionName")
	}

	// Name and ARN.
	nameV, arnV := cfg.get("FunctionName"), cfg.get("FunctionArn")
	if !arnV.absent() {
		s, err := arnV.str()
		if err != nil {
			return err
		}
		a, err := parseFunctionARN(s)
		switch {
		case err != nil && !nameV.absent():
			// A redacted or hand-edited export: FunctionName names the
			// function; the region is not known from the ARN.
			why, ok := placeholderARN(err)
			if !ok {
				why = err.Error()
			}
			if ok && isRegion(a.Region) {
				// Only the account is redacted: the region holds.
				fn.region = a.Region
				arnV.t.Warn(arnV.field, "AWS_REGION "+a.Region, why+"; the function is named by FunctionName")
				break
			}
			arnV.t.Warn(arnV.field, "", why+"; the function is named by FunctionName, and AWS_REGION is not set from the ARN: set it in values if the code needs it")
		case err != nil:
			return arnV.errf("%v", err)
		case a.Account == "000000000000":
			// LocalStack and moto answer the AWS CLI with this account:
			// an export from an emulator, not from the deployed function.
			fn.name, fn.region, fn.emulator = a.Name, a.Region, true
			if fn.codeHint != "" {
				// get-function's Code, read before: not a presigned S3
				// link but the emulator's copy.
				fn.codeHint = "the deployment package at Code.Location, the emulator's copy"
			}
			arnV.t.Warn(arnV.field, "AWS_REGION "+a.Region, "account 000000000000 is LocalStack's (or moto's): this export comes from an emulator, so its role is a value to fill and its code location is the emulator's; export the deployed function to convert what runs")
		default:
			fn.name, fn.region = a.Name, a.Region
			arnV.t.Mapped(arnV.field, "AWS_REGION "+a.Region)
		}
	}
	if !nameV.absent() {
		s, err := nameV.str()
		if err != nil {
			return err
		}
		if a, err := parseFunctionARN(s); err == nil {
			s = a.Name
		}
		if fn.name != "" && s != fn.name {
			return nameV.errf("FunctionName %q differs from the name in FunctionArn %q", s, fn.name)
		}
		fn.name = s
		nameV.t.Mapped(nameV.field, "service name and AWS_LAMBDA_FUNCTION_NAME")
	}
	if fn.name == "" {
		return nameV.errf("the function has no name (neither FunctionName nor FunctionArn)")
	}
	fn.svc.Name = service.SanitizeName(fn.name)

	// Package, runtime, handler, image.
	pt := cfg.get("PackageType")
	if !pt.absent() {
		s, err := pt.str()
		if err != nil {
			return err
		}
		switch s {
		case "Zip":
			pt.t.Use(pt.field)
		case "Image":
			fn.packageImage = true
			pt.t.Use(pt.field)
		default:
			return pt.errf("package type %q is not Zip or Image", s)
		}
	}
	if err := fn.readRuntime(cfg.get("Runtime")); err != nil {
		return err
	}
	if fn.imageAt.t == nil {
		fn.imageAt = pt
		if pt.absent() {
			fn.imageAt = cfg.get("Runtime")
		}
	}
	if h := cfg.get("Handler"); !h.absent() {
		s, err := h.str()
		if err != nil {
			return err
		}
		fn.handler, fn.handlerAt = s, h
		h.t.Mapped(h.field, "_HANDLER and the entrypoint's argument")
	}
	if ic := cfg.get("ImageConfigResponse"); !ic.absent() {
		if err := fn.readImageConfig(ic.get("ImageConfig"), "EntryPoint", "Command", "WorkingDirectory"); err != nil {
			return err
		}
		if e := ic.get("Error"); !e.absent() {
			e.t.Drop(e.field, "Lambda could not read the image configuration; check the image")
		}
	}

	// Sizing.
	if v := cfg.get("MemorySize"); !v.absent() {
		n, err := v.int()
		if err != nil {
			return err
		}
		if err := fn.setMemory(v, n, false); err != nil {
			return err
		}
	}
	if v := cfg.get("Timeout"); !v.absent() {
		n, err := v.int()
		if err != nil {
			return err
		}
		if err := fn.setTimeout(v, n); err != nil {
			return err
		}
	}
	if v := cfg.get("EphemeralStorage").get("Size"); !v.absent() {
		n, err := v.int()
		if err != nil {
			return err
		}
		if err := fn.setEphemeral(v, n); err != nil {
			return err
		}
	}
	if v := cfg.get("Architectures"); !v.absent() {
		archs, err := v.strs()
		if err != nil {
			return err
		}
		if err := fn.setArchitectures(v, archs); err != nil {
			return err
		}
	}

	if v := cfg.get("Role"); !v.absent() {
		if err := fn.setRole(v); err != nil {
			return err
		}
	} else {
		fn.svc.ServiceAccount = &service.ServiceAccount{FormerPrincipal: "lambda.amazonaws.com"}
		fn.svc.ServiceAccount.RoleValue = fn.fill(v, "roleArn", "", "the IAM role the function ran as, which the input does not say (aws lambda get-function-configuration --function-name "+fn.name+" --query Role); its trust policy must admit the cluster's OIDC provider")
	}
	env := cfg.get("Environment")
	vars := env.get("Variables")
	if !vars.absent() && !vars.isMap() {
		return vars.errf("want an object of environment variables, got %s", vars.describe())
	}
	for _, k := range vars.keys() {
		fn.addEnv(k, vars.get(k))
	}
	if e := env.get("Error"); !e.absent() {
		e.t.Drop(e.field, "Lambda could not decrypt the environment when this was exported; the values above may be incomplete")
	}
	if v := cfg.get("KMSKeyArn"); !v.absent() {
		v.t.Drop(v.field, "the key Lambda encrypted environment variables with at rest; on EKS turn on KMS envelope encryption of Secrets, and keep secrets out of the ConfigMap")
	}
	if err := fn.readFileSystems(cfg.get("FileSystemConfigs"), "Arn", "LocalMountPath"); err != nil {
		return err
	}
	fn.readVPC(cfg.get("VpcConfig"))
	fn.readDLQ(cfg.get("DeadLetterConfig").get("TargetArn"))
	fn.readTracing(cfg.get("TracingConfig").get("Mode"))
	fn.readLayers(cfg.get("Layers"), "Arn")
	fn.readSnapStart(cfg.get("SnapStart"), "ApplyOn")
	fn.readCapacityProvider(cfg.get("CapacityProviderConfig"))
	fn.readLogging(cfg.get("LoggingConfig"))
	for _, k := range cfg.keys() {
		if why, ok := statusFields[k]; ok {
			if v := cfg.get(k); !v.absent() {
				v.t.Drop(v.field, why)
			}
		}
	}
	return nil
}

// readGetFunctionExtras reads what get-function adds around the
// configuration: the code location, tags and reserved concurrency.
func (fn *function) readGetFunctionExtras(top val) {
	code := top.get("Code")
	if v := code.get("RepositoryType"); !v.absent() {
		v.t.Use(v.field)
	}
	if v := code.get("ImageUri"); !v.absent() {
		if s, err := v.str(); err == nil {
			fn.setImage(v, s)
		}
	}
	if v := code.get("ResolvedImageUri"); !v.absent() {
		v.t.Drop(v.field, "the digest the tag pointed at when Lambda deployed it: pin the image to it for an exact copy")
	}
	if v := code.get("Location"); !v.absent() {
		// A presigned S3 link to the zip: it expires, and cutover fetches
		// nothing. It is where the image value's code comes from.
		fn.imageAt = v
		fn.codeHint = "the deployment package at Code.Location, a presigned link valid for 10 minutes: aws lambda get-function again to download it"
	}
	fn.setTags(top.get("Tags"))
	if v := top.get("TagsError"); !v.absent() {
		v.t.Drop(v.field, "Lambda could not list the tags when this was exported")
	}
	rc := top.get("Concurrency").get("ReservedConcurrentExecutions")
	if !rc.absent() {
		fn.reservedAt = rc
		if n, err := rc.int(); err == nil {
			_ = fn.setReserved(rc, n)
		}
	}
}

// setImage records an Image function's image reference.
func (fn *function) setImage(v val, _ string) {
	fn.imageAt = v
	lit, ref, note := fn.text(v, "image", "the function's container image")
	if ref != "" {
		fn.imageValue = ref
		return
	}
	fn.image = lit
	if note != "" {
		v.t.Warn(v.field, "container image", note)
		return
	}
	v.t.Mapped(v.field, "container image")
}

func (fn *function) readRuntime(v val) error {
	fn.runtimeAt = v
	if v.absent() {
		return nil
	}
	lit, ref, note := fn.text(v, "runtime", "the function's runtime")
	if ref != "" {
		return nil
	}
	info, err := lookupRuntime(lit)
	if err != nil {
		return v.errf("%v", err)
	}
	fn.runtime, fn.rt = lit, info
	msg := "the image is built FROM " + info.BaseImage
	if info.Deprecated != "" {
		msg = fmt.Sprintf("%s: AWS no longer patches %s, move to %s", msg, lit, info.Deprecated)
	}
	if note != "" {
		msg = note + "; " + msg
	}
	if info.Deprecated != "" || note != "" {
		v.t.Warn(v.field, "AWS_EXECUTION_ENV", msg)
		return nil
	}
	v.t.Mapped(v.field, "AWS_EXECUTION_ENV and the base image "+info.BaseImage)
	return nil
}

// readImageConfig reads the ENTRYPOINT, CMD and working directory an
// Image function overrides; keys differ between the CLI and SAM.
func (fn *function) readImageConfig(ic val, entryKey, cmdKey, dirKey string) error {
	if v := ic.get(entryKey); !v.absent() {
		l, err := v.strs()
		if err != nil {
			return err
		}
		fn.entrypoint = l
		v.t.Mapped(v.field, "container command, after serve's --")
	}
	if v := ic.get(cmdKey); !v.absent() {
		l, err := v.strs()
		if err != nil {
			return err
		}
		fn.cmd = l
		if len(l) > 0 && fn.handler == "" {
			fn.handler = l[0]
		}
		v.t.Mapped(v.field, "container args and _HANDLER")
	}
	if v := ic.get(dirKey); !v.absent() {
		s, err := v.str()
		if err != nil {
			return err
		}
		fn.main().WorkingDir = s
		v.t.Mapped(v.field, "container workingDir")
	}
	for _, k := range ic.keys() {
		// serverless.yml's image object (camelCase keys) also holds name
		// and uri, which its own reader consumes.
		if k == entryKey || k == cmdKey || k == dirKey || entryKey != "EntryPoint" {
			continue
		}
		// Typically a function property indented one level too deep
		// (Timeout, MemorySize): Lambda has no such image setting, so
		// the deployed function never had it.
		if v := ic.get(k); !v.absent() {
			v.t.Drop(v.field, fmt.Sprintf("the image configuration has only %s, %s and %s, so the deployed function did not have this %s (is it indented one level too deep?)", entryKey, cmdKey, dirKey, k))
		}
	}
	return nil
}

func (fn *function) readFileSystems(v val, arnKey, mountKey string) error {
	for _, fs := range v.items() {
		av, mv := fs.get(arnKey), fs.get(mountKey)
		a, err := av.str()
		if err != nil {
			return err
		}
		m, err := mv.str()
		if err != nil {
			return err
		}
		if err := fn.addEFS(fs, a, m, av, mv); err != nil {
			return err
		}
	}
	return nil
}

func (fn *function) readVPC(v val) {
	if !v.t.Has(v.field) {
		if !v.absent() {
			v.t.Use(v.field)
		}
		return
	}
	v.t.Warn(v.field, "",
		"the function ran in these subnets and security groups; pods run in the cluster's VPC: check it reaches the same databases and endpoints (peering, Transit Gateway), and express the security groups as SecurityGroupPolicy (VPC CNI) or NetworkPolicy")
}

func (fn *function) readDLQ(v val) {
	if v.absent() {
		return
	}
	v.t.Warn(v.field, "", "the dead-letter queue took failed asynchronous invocations; on Kubernetes nothing invokes asynchronously, so it receives nothing: queue triggers use the queue's own redrive policy")
}

func (fn *function) readTracing(v val) {
	if v.absent() {
		return
	}
	s, _ := v.raw()
	if s == "Active" {
		v.t.Warn(v.field, "", "X-Ray active tracing: run the X-Ray daemon or an ADOT collector in the cluster and point AWS_XRAY_DAEMON_ADDRESS at it; serve passes the trace header it receives")
		return
	}
	v.t.Drop(v.field, "pass-through tracing is the default: nothing to carry over")
}

func (fn *function) readLayers(v val, arnKey string) {
	for _, l := range v.items() {
		a := l
		if arnKey != "" && l.isMap() {
			a = l.get(arnKey)
			for _, k := range l.keys() {
				l.get(k).t.Use(l.get(k).field)
			}
		}
		l.t.Warn(l.field, "the image", fmt.Sprintf("layer %s: Lambda unpacked it into /opt; build its content into the image (aws lambda get-layer-version-by-arn gives a download link)", a.text()))
	}
}

func (fn *function) readSnapStart(v val, key string) {
	if v.absent() {
		return
	}
	on := v.get(key)
	s, _ := on.raw()
	if s == "" || s == "None" {
		v.t.Drop(v.field, "SnapStart is off")
		return
	}
	v.t.Drop(v.field, "SnapStart has no counterpart: a pod starts once and serves many invocations, so start-up is paid per pod, not per cold start; keep minReplicas above zero where start-up is slow")
}

// readCapacityProvider reports Lambda Managed Instances: the function ran
// on EC2 capacity, several requests at once in one execution environment,
// where serve gives a replica one at a time.
func (fn *function) readCapacityProvider(v val) {
	if v.absent() {
		return
	}
	per := ""
	for _, p := range []val{v, v.get("LambdaManagedInstancesCapacityProviderConfig")} {
		if s, ok := p.get("PerExecutionEnvironmentMaxConcurrency").raw(); ok {
			per = s
		}
	}
	msg := "Lambda Managed Instances ran the function on EC2 capacity, several requests at once per execution environment"
	if per != "" {
		msg = "Lambda Managed Instances ran the function on EC2 capacity, up to " + per + " requests at once per execution environment"
	}
	v.t.Warn(v.field, "", msg+"; a replica of serve runs one at a time, so the same load needs that many times the replicas: raise maxReplicas (and the requests' memory is per replica), or keep the function on Lambda Managed Instances")
}

func (fn *function) readLogging(v val) {
	if v.absent() {
		return
	}
	if f := v.get("LogFormat"); !f.absent() {
		if s, ok := f.raw(); ok {
			fn.addStandardEnv("AWS_LAMBDA_LOG_FORMAT", s)
			f.t.Mapped(f.field, "AWS_LAMBDA_LOG_FORMAT")
		}
	}
	if f := v.get("ApplicationLogLevel"); !f.absent() {
		if s, ok := f.raw(); ok {
			fn.addStandardEnv("AWS_LAMBDA_LOG_LEVEL", s)
			f.t.Mapped(f.field, "AWS_LAMBDA_LOG_LEVEL")
		}
	}
	if f := v.get("SystemLogLevel"); !f.absent() {
		f.t.Drop(f.field, "the level of Lambda's own platform logs; serve logs to stderr at its own level")
	}
	if f := v.get("LogGroup"); !f.absent() {
		f.t.Drop(f.field, "logs go to the container's stdout; the cluster's log shipper sends them on (Fluent Bit to this log group, if it must stay)")
	}
}

// addStandardEnv sets an environment variable Lambda set for the
// function.
func (fn *function) addStandardEnv(name, value string) {
	if fn.svc.Config == nil {
		fn.svc.Config = map[string]string{}
	}
	for _, e := range fn.env {
		if e.Name == name {
			return
		}
	}
	fn.svc.Config[name] = value
	fn.env = append(fn.env, service.EnvVar{Name: name, ConfigKey: name})
}

// mappingStatus are read-only facts about an event source mapping.
var mappingStatus = map[string]string{
	"LastModified":          "when the mapping last changed",
	"LastProcessingResult":  "the mapping's last poll result",
	"StateTransitionReason": "why the mapping last changed state",
	"EventSourceMappingArn": "the mapping's own ARN; the Deployment replaces it",
	"FilterCriteriaError":   "Lambda could not decrypt the filter criteria when this was exported",
	"KMSKeyArn":             "the key Lambda encrypted the filter criteria with; serve does not filter",
	"MetricsConfig":         "Lambda's mapping metrics; serve exports its own Prometheus metrics",
}

// addMapping reads an event source mapping into a trigger.
func (fn *function) addMapping(m val) error {
	m.t.Use("FunctionArn")
	// create-event-source-mapping input names the function instead.
	m.t.Use("FunctionName")
	tr := &trigger{Trigger: service.Trigger{Enabled: true}, at: m}
	src := m.get("EventSourceArn")
	topics, err := m.get("Topics").strs()
	if err != nil {
		return err
	}
	smk := m.get("SelfManagedEventSource")
	switch {
	case !smk.absent():
		bs := smk.get("Endpoints").get("KAFKA_BOOTSTRAP_SERVERS")
		brokers, err := bs.strs()
		if err != nil {
			return err
		}
		if len(brokers) == 0 {
			return smk.errf("a self-managed Kafka source with no KAFKA_BOOTSTRAP_SERVERS")
		}
		tr.Kind, tr.Brokers = service.TriggerKafka, brokers
		smk.t.Mapped(smk.field, "KEDA kafka bootstrapServers and serve --brokers")
	case src.absent():
		return src.errf("the event source mapping names no EventSourceArn")
	default:
		s, err := src.str()
		if err != nil {
			return err
		}
		a, err := parseARN(s)
		if _, ph := placeholderARN(err); err != nil && !ph {
			return src.errf("%v", err)
		}
		// A placeholder account still says the kind of source; the
		// source's own reader makes the ARN a value to fill.
		switch a.Service {
		case "sqs":
			tr.Kind, tr.Name = service.TriggerSQS, "sqs-"+a.Resource
			if err := fn.queueSource(tr, src); err != nil {
				return err
			}
		case "kinesis", "dynamodb":
			tr.Name = a.Service + "-" + streamName(a)
			if err := fn.streamSource(tr, src); err != nil {
				return err
			}
		case "kafka":
			tr.Name = "kafka"
			if err := fn.mskCluster(tr, src, s); err != nil {
				return err
			}
		default:
			src.t.Drop(src.field, fmt.Sprintf("cutover has no %s event source (Amazon MQ and DocumentDB streams are not converted): keep this function on Lambda or consume the source in the application", a.Service))
			for _, k := range m.keys() {
				m.t.Use(k)
			}
			return nil
		}
	}
	if tr.Kind == service.TriggerKafka {
		if len(topics) != 1 {
			return m.get("Topics").errf("a Kafka source takes exactly one topic, got %d", len(topics))
		}
		tr.Source = topics[0]
		tr.Name = "kafka-" + topics[0]
		tv := m.get("Topics")
		tv.t.Mapped(tv.field, "KEDA kafka topic and serve --topic")
		if err := fn.kafkaGroup(tr, m); err != nil {
			return err
		}
		fn.kafkaAuth(tr, m.get("SourceAccessConfigurations"))
	} else if !m.get("Topics").absent() {
		return m.get("Topics").errf("topics belong to Kafka sources only")
	}
	return fn.addMappingTrigger(tr, m)
}

func streamName(a arn) string {
	r := strings.TrimPrefix(strings.TrimPrefix(a.Resource, "stream/"), "table/")
	name, _, _ := strings.Cut(r, "/")
	return name
}

// kafkaGroup maps the consumer group. Lambda's default group id is the
// mapping's UUID: keeping it lets the pods continue from the offsets
// Lambda committed.
func (fn *function) kafkaGroup(tr *trigger, m val) error {
	for _, k := range []string{"AmazonManagedKafkaEventSourceConfig", "SelfManagedKafkaEventSourceConfig"} {
		g := m.get(k).get("ConsumerGroupId")
		if g.absent() {
			continue
		}
		s, err := g.str()
		if err != nil {
			return err
		}
		tr.ConsumerGroup = s
		g.t.Mapped(g.field, "KEDA kafka consumerGroup and serve --consumer-group")
		m.t.Use("UUID")
		return nil
	}
	if u := m.get("UUID"); !u.absent() {
		s, err := u.str()
		if err != nil {
			return err
		}
		tr.ConsumerGroup = s
		u.t.Warn(u.field, "KEDA kafka consumerGroup and serve --consumer-group",
			"Lambda used the mapping's UUID as the consumer group: the pods join the same group and continue from its committed offsets; disable the Lambda mapping first, or both consume")
		return nil
	}
	tr.ConsumerGroupValue = fn.fill(m.get("UUID"), service.FillKey(tr.Name, "consumerGroup"), "",
		"the consumer group Lambda used: its event source mapping's UUID unless ConsumerGroupId was set (aws lambda list-event-source-mappings --function-name "+fn.name+"); the same group continues from its offsets, a new one starts at StartingPosition")
	return nil
}

// kafkaAuth maps SourceAccessConfigurations: credentials in Secrets
// Manager become ExternalSecret keys serve reads; network settings are
// the cluster's now.
func (fn *function) kafkaAuth(tr *trigger, v val) {
	for _, sac := range v.items() {
		typ, _ := sac.get("Type").raw()
		uri, _ := sac.get("URI").raw()
		switch typ {
		case "VPC_SUBNET", "VPC_SECURITY_GROUP":
			sac.t.Warn(sac.field, "", "Lambda reached the brokers from "+uri+"; the pods reach them from the cluster's VPC: check routes and security groups")
		case "BASIC_AUTH", "SASL_SCRAM_256_AUTH", "SASL_SCRAM_512_AUTH", "CLIENT_CERTIFICATE_TLS_AUTH", "SERVER_ROOT_CA_CERTIFICATE":
			fn.addKafkaSecret(tr, typ, uri, sac)
		default:
			sac.t.Drop(sac.field, "cutover does not know this access configuration type")
		}
	}
}

// addMappingTrigger reads the fields an API mapping (list-event-source-
// mappings, or an AWS::Lambda::EventSourceMapping) shares with every kind
// of source, drops its read-only status fields and adds tr to fn.
func (fn *function) addMappingTrigger(tr *trigger, m val) error {
	if err := fn.mappingCommon(tr, m, nil); err != nil {
		return err
	}
	for _, k := range m.keys() {
		if why, ok := mappingStatus[k]; ok {
			if v := m.get(k); !v.absent() {
				v.t.Drop(v.field, why)
			}
		}
	}
	fn.addTrigger(tr)
	return nil
}

// mappingCommon reads the batching, position, state and error handling
// fields every kind of mapping shares. SAM event properties and the
// Lambda API use the same names for them; keys renames them for formats
// that do not (nil: the API's names).
func (fn *function) mappingCommon(tr *trigger, m val, keys map[string]string) error {
	return fn.mappingFields(tr, keyed{m, keys})
}

// keyed reads a mapping's fields under another format's names.
type keyed struct {
	v    val
	keys map[string]string
}

func (k keyed) get(name string) val {
	if k.keys != nil {
		alias, ok := k.keys[name]
		if !ok {
			// The format has no such field: an absent value.
			return val{t: k.v.t, field: source.JoinPath(k.v.field, name)}
		}
		name = alias
	}
	v := k.v
	for _, part := range strings.Split(name, ".") {
		v = v.get(part)
	}
	return v
}

func (fn *function) mappingFields(tr *trigger, m keyed) error {
	if v := m.get("BatchSize"); !v.absent() {
		n, note, ok, err := fn.num(v)
		if err != nil {
			return err
		}
		if ok {
			if n < 1 || n > 10000 {
				return v.errf("batch size %d is outside 1–10000", n)
			}
			tr.BatchSize = int32(n)
			report(v, "serve --batch-size", note)
		}
	}
	if v := m.get("MaximumBatchingWindowInSeconds"); !v.absent() {
		n, note, ok, err := fn.num(v)
		if err != nil {
			return err
		}
		if ok {
			if n < 0 || n > 300 {
				return v.errf("batching window %d s is outside 0–300 s", n)
			}
			if n > 0 {
				tr.flags = append(tr.flags, "--batch-window", strconv.FormatInt(n, 10)+"s")
			}
			report(v, "serve --batch-window", note)
		}
	}
	if v := m.get("StartingPosition"); !v.absent() {
		if s, note, ok := fn.word(v); ok {
			if err := fn.setStartingPosition(tr, v, s, note); err != nil {
				return err
			}
		}
	}
	if v := m.get("StartingPositionTimestamp"); !v.absent() {
		if s, note, ok := fn.word(v); ok {
			tr.flags = append(tr.flags, "--starting-timestamp", s)
			report(v, "serve --starting-timestamp", note)
		}
	}
	if v := m.get("State"); !v.absent() {
		s, err := v.str()
		if err != nil {
			return err
		}
		switch s {
		case "Enabled", "Enabling", "Creating", "Updating":
			v.t.Use(v.field)
		case "Disabled", "Disabling", "Deleting":
			tr.Enabled = false
			v.t.Warn(v.field, "trigger "+tr.Name+" disabled", "the mapping was "+strings.ToLower(s)+": the workload does not consume this source until it is enabled in values")
		default:
			return v.errf("mapping state %q is not one Lambda reports", s)
		}
	}
	if v := m.get("Enabled"); !v.absent() {
		b, note, ok, err := fn.flag(v)
		if err != nil {
			return err
		}
		switch {
		case ok && !b:
			tr.Enabled = false
			v.t.Warn(v.field, "trigger "+tr.Name+" disabled", "the event source was disabled: the workload does not consume it until it is enabled in values")
		case ok:
			report(v, "trigger "+tr.Name+" enabled", note)
		}
	}
	if v := m.get("ScalingConfig.MaximumConcurrency"); !v.absent() {
		n, note, ok, err := fn.num(v)
		if err != nil {
			return err
		}
		if ok {
			if n < 2 || n > 1000 {
				return v.errf("maximum concurrency %d is outside 2–1000", n)
			}
			tr.MaxConcurrency = int32(n)
			report(v, "trigger maxConcurrency (replica cap)", note)
		}
	}
	if v := m.get("FunctionResponseTypes"); !v.absent() {
		types, err := v.strs()
		if err != nil {
			return err
		}
		for _, t := range types {
			if t != "ReportBatchItemFailures" {
				return v.errf("function response type %q is not ReportBatchItemFailures", t)
			}
		}
		if len(types) > 0 {
			tr.flags = append(tr.flags, "--report-batch-item-failures")
			v.t.Mapped(v.field, "serve --report-batch-item-failures")
		} else {
			v.t.Use(v.field)
		}
	}
	dc := m.get("DestinationConfig")
	for _, k := range []string{"OnFailure", "OnSuccess"} {
		d := dc.get(k).get("Destination")
		if d.absent() {
			if o := dc.get(k); !o.absent() {
				o.t.Use(o.field)
			}
			continue
		}
		msg := fmt.Sprintf("serve does not send records to %s: ", d.text())
		if tr.Kind == service.TriggerSQS {
			msg += "redrive is left to the queue (its redrive policy moves a message to its DLQ after maxReceiveCount)"
		} else if k == "OnFailure" {
			msg += "a failed batch is retried per MaximumRetryAttempts and then skipped; alert on serve's failure metric"
		} else {
			msg += "successful invocations are not recorded anywhere"
		}
		d.t.Warn(d.field, "", msg)
		dc.get(k).t.Use(dc.get(k).field)
	}
	if v := m.get("FilterCriteria"); v.t.Has(v.field) {
		v.t.Warn(v.field, "", "serve does not filter events: the function now receives every record, where Lambda dropped those no filter matched (and for SQS deleted them); filter in the code or upstream")
	} else if !v.absent() {
		v.t.Use(v.field)
	}
	for _, f := range []struct{ key, flag string }{
		{"MaximumRetryAttempts", "--max-retries"},
		{"MaximumRecordAgeInSeconds", "--max-record-age"},
	} {
		v := m.get(f.key)
		if v.absent() {
			continue
		}
		n, note, ok, err := fn.num(v)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		if n >= 0 {
			s := strconv.FormatInt(n, 10)
			if f.key == "MaximumRecordAgeInSeconds" {
				s += "s"
			}
			tr.flags = append(tr.flags, f.flag, s)
		}
		report(v, "serve "+f.flag, note)
	}
	if v := m.get("BisectBatchOnFunctionError"); !v.absent() {
		b, note, ok, err := fn.flag(v)
		if err != nil {
			return err
		}
		if ok {
			if b {
				tr.flags = append(tr.flags, "--bisect-on-error")
			}
			report(v, "serve --bisect-on-error", note)
		}
	}
	if v := m.get("ParallelizationFactor"); !v.absent() {
		n, _, ok, err := fn.num(v)
		if err != nil {
			return err
		}
		if ok && n > 1 {
			v.t.Warn(v.field, "", fmt.Sprintf("Lambda ran %d batches per shard at once; serve's one active replica consumes each shard in order, a batch at a time, so throughput per shard is lower: add shards (more replicas only add standbys)", n))
		} else if ok {
			v.t.Use(v.field)
		}
	}
	if v := m.get("TumblingWindowInSeconds"); !v.absent() {
		if n, _, ok, _ := fn.num(v); ok && n > 0 {
			v.t.Drop(v.field, "tumbling-window aggregation state is not carried between batches by serve; aggregate in a store the function owns")
		} else if ok {
			v.t.Use(v.field)
		}
	}
	if v := m.get("ProvisionedPollerConfig"); !v.absent() {
		v.t.Drop(v.field, "provisioned pollers: KEDA's minReplicaCount keeps consumers ready instead")
	}
	if v := m.get("UUID"); !v.absent() {
		v.t.Use(v.field)
	}
	return nil
}

func (fn *function) setStartingPosition(tr *trigger, v val, s, note string) error {
	switch strings.ToUpper(s) {
	case "LATEST", "TRIM_HORIZON", "AT_TIMESTAMP":
	default:
		return v.errf("starting position %q is not LATEST, TRIM_HORIZON or AT_TIMESTAMP", s)
	}
	tr.StartingPosition = strings.ToUpper(s)
	report(v, "serve --starting-position", note)
	return nil
}

// addFunctionURL reads get-function-url-config output: an HTTP trigger
// with the API Gateway v2 payload a function URL sends.
func (fn *function) addFunctionURL(u val) {
	u.t.Use("FunctionArn")
	tr := &trigger{Trigger: service.Trigger{Kind: service.TriggerHTTP, Name: "url", Enabled: true, EventShape: "apigw-v2", Route: &service.Route{Path: catchAll}}, at: u}
	fn.addRoute(service.Route{Path: "/"})
	if v := u.get("FunctionUrl"); !v.absent() {
		v.t.Warn(v.field, "HTTPRoute /", "the function URL stays with Lambda; point clients or DNS at the route the chart exposes (cutover shift moves the traffic)")
	}
	fn.urlOptions(u, "AuthType", "Cors", "InvokeMode")
	for _, k := range []string{"CreationTime", "LastModifiedTime"} {
		if v := u.get(k); !v.absent() {
			v.t.Drop(v.field, "when the function URL was made or changed")
		}
	}
	fn.addTrigger(tr)
}

// urlOptions reports a function URL's auth, CORS and invoke mode.
func (fn *function) urlOptions(u val, authKey, corsKey, modeKey string) {
	if v := u.get(authKey); !v.absent() {
		if s, _ := v.raw(); strings.EqualFold(s, "AWS_IAM") {
			v.t.Warn(v.field, "", "the URL required SigV4-signed requests; nothing checks signatures in front of the pod: put an authenticating gateway in front before exposing it")
		} else {
			v.t.Warn(v.field, "", "the URL was public (AuthType NONE); the route the chart exposes is as public as its Gateway")
		}
	}
	if v := u.get(corsKey); !v.absent() {
		v.t.Warn(v.field, "", "CORS was answered by Lambda; configure it on the Gateway/Ingress (or in the code)")
	}
	if v := u.get(modeKey); !v.absent() {
		if s, _ := v.raw(); s == "RESPONSE_STREAM" {
			fn.responseStream = true
			v.t.Mapped(v.field, "serve --response-stream")
		} else {
			v.t.Use(v.field)
		}
	}
}

// addRoute adds an HTTP route to Expose, once.
func (fn *function) addRoute(r service.Route) {
	if fn.svc.Expose == nil {
		fn.svc.Expose = &service.Expose{Port: Port}
	}
	for _, x := range fn.svc.Expose.Routes {
		if x == r {
			return
		}
	}
	fn.svc.Expose.Routes = append(fn.svc.Expose.Routes, r)
}
