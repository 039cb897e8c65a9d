package lambda

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/cutoverhq/cutover/service"
	"github.com/cutoverhq/cutover/source"
)

// Port is the container port `cutover lambda serve` listens on for HTTP
// triggers.
const Port = 8080

// MetricsPort is the container port `cutover lambda serve --metrics`
// serves Prometheus metrics, /healthz and /readyz on.
const MetricsPort = 9102

// Defaults Lambda applies when a function does not say.
const (
	lambdaDefaultMemoryMB = 128
	lambdaDefaultTimeout  = 3
	// defaultMaxReplicas caps a function that had no reserved concurrency:
	// Lambda scaled to the account limit (1000 by default), a cluster needs
	// a number.
	defaultMaxReplicas = 10
	// maxGraceSeconds caps terminationGracePeriodSeconds: longer holds up
	// node drains and rollouts for everyone else on the node.
	maxGraceSeconds = 600
	// jobStartMarginSeconds is added to a job's timeout for its
	// activeDeadlineSeconds, which also counts scheduling and image pulls;
	// the invocation deadline itself is enforced by `cutover lambda serve`.
	jobStartMarginSeconds = 120
	// mbPerVCPU is where Lambda gives a function one full vCPU; CPU
	// grows in proportion to memory.
	mbPerVCPU = 1769
)

// function is one Lambda function on its way to a service.Service. Front
// ends (CLI JSON, SAM, Serverless) fill it and report format-specific
// fields as they read them; finish derives what depends on several
// fields: kind, command, scaling, the standard environment.
type function struct {
	svc *service.Service
	// responseStream says a function URL invoked it in RESPONSE_STREAM
	// mode: serve's HTTP source streams its responses.
	responseStream bool
	res            resolver
	// root is the function's definition: the object that holds its
	// properties.
	root val
	// eventsAt is where the function's events are (or would be); the
	// finding for a function without any lands there.
	eventsAt val
	// droppedSources name the sources that invoked the function outside
	// its events (a WebSocket route) and that were not converted.
	droppedSources []string
	// trackers are the trackers of every file part the function read;
	// finish reports what none of them consumed.
	trackers []*source.Tracker
	// defaultMemoryMB and defaultTimeout are what the format assumes
	// when the function does not say; zero means Lambda's own.
	defaultMemoryMB int64
	defaultTimeout  int64

	// name is the deployed function name, what the code reads from
	// AWS_LAMBDA_FUNCTION_NAME; nameValue names a value to fill when the
	// input could not say it.
	name      string
	nameValue string
	region    string

	runtime   string
	runtimeAt val
	rt        runtimeInfo
	handler   string
	handlerAt val
	// handlerValue names a value to fill when the handler is unresolved.
	handlerValue string

	packageImage bool
	// image is the image reference of an Image function; imageValue the
	// value to fill when it is unknown.
	image      string
	imageValue string
	imageAt    val
	// codeHint says where a zip function's code is, for the reason of the
	// image value ("CodeUri src/orders").
	codeHint string

	// entrypoint and cmd are the image's ENTRYPOINT and CMD as the
	// function overrides them (ImageConfig); nil when unknown.
	entrypoint []string
	cmd        []string

	memoryMB  int64
	memoryAt  val
	timeout   int64
	timeoutAt val
	// memoryDefault and timeoutDefault are set when the input did not
	// say and the format's default applies.
	memoryDefault, timeoutDefault bool
	// reserved is the reserved concurrency; nil when not set.
	reserved      *int64
	reservedAt    val
	provisioned   int64
	provisionedAt val
	// emulator is set when the export came from LocalStack or moto
	// (account 000000000000): its role is the emulator's, not one to
	// keep.
	emulator bool

	triggers []*trigger
	env      []service.EnvVar
}

// trigger is a trigger of the function with the serve flags it needs.
type trigger struct {
	service.Trigger
	// at is the trigger's definition in the input.
	at val
	// flags are extra `cutover lambda serve` flags of this source.
	flags []string
	// clusterARN is the MSK cluster of a Kafka trigger, which serve puts in
	// each event's eventSourceArn (--cluster-arn); clusterARNValue names
	// the value that holds it when the input could not say it. Both ""
	// for self-managed Kafka.
	clusterARN      string
	clusterARNValue string
	// sourceAt is where a stream trigger's ARN is in the input, and
	// sourceNote what resolving it assumed; finishCheckpoints reports
	// there where the consumer keeps its position.
	sourceAt   val
	sourceNote string
	// checkpoint names the ConfigMap and Lease of an enabled stream
	// trigger (serve --checkpoint-configmap); "" for other triggers.
	checkpoint string
}

func newFunction(res resolver, files ...string) *function {
	return &function{
		svc: &service.Service{Origin: service.Origin{Format: "lambda", Files: files}},
		res: res,
	}
}

// tracker returns a tracker of file that writes to the function's report.
func (fn *function) tracker(file string, pos *source.Positions, prefix string) *source.Tracker {
	t := source.NewTracker(file, pos, &fn.svc.Report)
	if prefix != "" {
		t = t.At(prefix)
	}
	return t
}

// rooted returns v as the root of a new tracker of v's file (prefix v's
// path) that writes to the function's report; finish reports whatever in
// it nobody consumed.
func (fn *function) rooted(v val) val {
	t := fn.tracker(v.t.File, v.t.Pos, v.path())
	fn.trackers = append(fn.trackers, t)
	return val{n: v.n, t: t, over: v.over}
}

// fill declares a value the user fills, reports it at v, and returns its
// name. A name already taken by a different value gets a number.
func (fn *function) fill(v val, name, def, reason string) string {
	base, n := name, 2
	for {
		clash := false
		for _, x := range fn.svc.Values {
			if x.Name == name {
				if x.Reason == reason && x.Default == def {
					v.t.Fill(v.field, "values fill."+name, v.unset(reason))
					return name
				}
				clash = true
			}
		}
		if !clash {
			break
		}
		name = base + strconv.Itoa(n)
		n++
	}
	fn.svc.AddValue(name, def, reason)
	v.t.Fill(v.field, "values fill."+name, v.unset(reason))
	return name
}

// perEnvValue declares name, a value each environment of a serverless.yml
// takes as the stage it deploys as gives it (vals; unknown are the environments that map to
// no stage and fill it themselves), reports it at v, and returns its
// name. what says what the value is.
func (fn *function) perEnvValue(v val, name, what string, vals map[string]string, unknown []string) string {
	var order []string
	if r, ok := fn.res.(*sls); ok {
		order = r.envs
	}
	var parts []string
	for _, env := range order {
		if x, ok := vals[env]; ok {
			parts = append(parts, fmt.Sprintf("%s %q", env, x))
		}
	}
	reason := what + " depends on the Serverless stage, which each deployment chose: each environment takes the value of the stage of its name"
	if len(parts) > 0 {
		reason += " (" + strings.Join(parts, ", ") + ")"
	}
	name = fn.svc.AddValue(name, "", reason)
	for i := range fn.svc.Values {
		if fn.svc.Values[i].Name == name {
			fn.svc.Values[i].PerEnv = vals
		}
	}
	target := "values environments.<env>.fill." + name
	if len(unknown) > 0 {
		who := "environment " + unknown[0] + " deploys"
		if len(unknown) > 1 {
			who = "environments " + strings.Join(unknown, ", ") + " deploy"
		}
		v.t.Fill(v.field, target, v.unset(fmt.Sprintf("%s; %s as no stage the file lists (stages:): fill environments.%s.fill.%s", reason, who, unknown[0], name)))
		return name
	}
	v.t.Warn(v.field, target, v.unset(reason))
	return name
}

// text resolves v; when it cannot, it declares a value to fill and
// returns its name as ref. note is non-empty when the text was resolved
// by an assumption the caller should report as a warning.
func (fn *function) text(v val, name, what string) (lit, ref, note string) {
	s := fn.res.resolve(v)
	if s.ok {
		return s.text, "", s.note
	}
	reason := what + ": " + s.reason
	return "", fn.fill(v, name, s.def, reason), ""
}

// addEnv maps one environment variable of the function.
func (fn *function) addEnv(name string, v val) {
	if v.isNull() {
		// A null variable (console exports) is not set at all.
		return
	}
	s := fn.res.resolve(v)
	if !s.ok && v.isEmpty() {
		s = scalar{ok: true}
	}
	switch {
	case s.secret != nil:
		sec := *s.secret
		sec.Name = name
		fn.svc.Secrets = append(fn.svc.Secrets, sec)
		fn.env = append(fn.env, service.EnvVar{Name: name, Secret: name})
		v.t.Mapped(v.field, fmt.Sprintf("ExternalSecret key %s (%s %s)", name, sec.Source, sec.Key))
	case !s.ok && (secretName(name) || connectionName(name) || source.WebhookName(name) || source.SecretURL(name, s.def) || s.sensitive):
		// A credential the input does not say must not become a value in
		// a values file either, nor a connection URL, which usually
		// carries one (and the fallback must not be written out when it
		// does).
		why := "the name looks like a credential"
		switch {
		case secretName(name):
		case s.sensitive:
			why = "it comes from a file of secrets"
		case source.WebhookName(name) || source.SecretURL(name, s.def) && !source.URLHasPassword(s.def):
			why = "a webhook URL carries the token that lets anyone post to it"
		default:
			why = "a connection URL usually carries a password"
		}
		key := fn.secretKeyPrefix() + name
		fn.svc.Secrets = append(fn.svc.Secrets, service.Secret{Name: name, Source: service.SecretsManager, Key: key})
		fn.env = append(fn.env, service.EnvVar{Name: name, Secret: name})
		v.t.Fill(v.field, "ExternalSecret key "+name,
			fmt.Sprintf("%s; %s, so it is an ExternalSecret key: store the value in Secrets Manager as %q (or point the key elsewhere)", s.reason, why, key))
	case !s.ok:
		ref := fn.fill(v, service.FillKey("env", name), s.def, "environment variable "+name+": "+s.reason)
		fn.env = append(fn.env, service.EnvVar{Name: name, ValueRef: ref})
	case looksSecret(name, s.text):
		// Console exports carry decrypted environment values. A value
		// that looks like a credential must not land in a ConfigMap in
		// Git: it becomes an ExternalSecret key to store first.
		key := fn.secretKeyPrefix() + name
		fn.svc.Secrets = append(fn.svc.Secrets, service.Secret{Name: name, Source: service.SecretsManager, Key: key})
		fn.env = append(fn.env, service.EnvVar{Name: name, Secret: name})
		why := "the name looks like a credential"
		switch {
		case source.URLHasPassword(s.text):
			why = "the value is a URL with a password in it"
		case source.SecretURL(name, s.text):
			why = "the value is a webhook URL, whose token lets anyone post to it"
		}
		v.t.Warn(v.field, "ExternalSecret key "+name,
			fmt.Sprintf("%s: cutover did not copy its value; store it in Secrets Manager as %q (or point the key elsewhere) and rotate it, since it was in plain text", why, key))
	case s.ok && fn.stageDependent(v):
		vals, unknown := fn.res.(*sls).perEnv(v)
		ref := fn.perEnvValue(v, service.FillKey("env", name), "environment variable "+name, vals, unknown)
		fn.env = append(fn.env, service.EnvVar{Name: name, ValueRef: ref})
	default:
		if fn.svc.Config == nil {
			fn.svc.Config = map[string]string{}
		}
		fn.svc.Config[name] = s.text
		fn.env = append(fn.env, service.EnvVar{Name: name, ConfigKey: name})
		switch {
		case s.note != "":
			v.t.Warn(v.field, "ConfigMap key "+name, s.note)
		case strings.HasPrefix(s.text, "arn:") && strings.Contains(s.text, ":secretsmanager:"),
			strings.HasPrefix(s.text, "arn:") && strings.Contains(s.text, ":ssm:") && strings.Contains(s.text, ":parameter/"):
			v.t.Warn(v.field, "ConfigMap key "+name, "the function fetches this secret itself: the value stays the ARN, and the IRSA role needs secretsmanager:GetSecretValue / ssm:GetParameter (and kms:Decrypt) on it")
		case name == "AWS_LAMBDA_EXEC_WRAPPER" && s.text == "/opt/bootstrap":
			// Lambda Web Adapter: the code is an ordinary web server.
			v.t.Warn(v.field, "ConfigMap key "+name, fmt.Sprintf("the Lambda Web Adapter runs the code as an HTTP server (on PORT, 8080 unless set) and turns invocations into requests: serve drives it like any function if the image holds the adapter's layer in /opt, and PORT must not be %d, where serve itself listens; the server could also run on its own in a Deployment, without serve and the adapter", Port))
		default:
			v.t.Mapped(v.field, "ConfigMap key "+name)
		}
	}
}

// stageDependent reports whether v, a value of a serverless.yml, resolves
// differently per environment's stage.
func (fn *function) stageDependent(v val) bool {
	r, ok := fn.res.(*sls)
	if !ok {
		return false
	}
	vals, unknown := r.perEnv(v)
	return vals != nil || len(unknown) > 0
}

func (fn *function) secretKeyPrefix() string {
	if fn.name != "" {
		return fn.name + "/"
	}
	return fn.svc.Name + "/"
}

// looksSecret reports whether an environment variable looks like a
// credential by its name, and its value is not an identifier of one.
func looksSecret(name, value string) bool {
	if source.SecretURL(name, value) {
		return true
	}
	return secretName(name) && len(value) >= 8 && !strings.HasPrefix(value, "arn:") && !strings.HasPrefix(value, "/")
}

// connectionNameRE matches variables that hold a connection URL or DSN
// (DATABASE_URL, MONGODB_URI, SENTRY_DSN, DB_CONNECTION_STRING).
var connectionNameRE = regexp.MustCompile(`(?i)((^|_)(DATABASE|DB|POSTGRES(QL)?|PG|MYSQL|MARIADB|MONGO(DB)?|REDIS|AMQP|RABBITMQ|CLOUDAMQP|ELASTICSEARCH|OPENSEARCH)_(URL|URI)$|(^|_)DSN$|CONN(ECTION)?_?STR(ING)?$)`)

// connectionName reports whether a variable's name says it holds a
// connection URL, which usually carries the credentials: when its value
// is not known, it is an ExternalSecret key rather than a value written
// into the values file.
func connectionName(name string) bool { return connectionNameRE.MatchString(name) }

// secretName reports whether a variable's name says it holds a
// credential rather than the name, ARN or location of one.
func secretName(name string) bool {
	u := strings.ToUpper(name)
	hit := false
	for _, w := range []string{"PASSWORD", "PASSWD", "SECRET", "TOKEN", "PRIVATE_KEY", "API_KEY", "APIKEY", "CREDENTIAL", "ACCESS_KEY", "CLIENT_KEY", "SIGNING_KEY"} {
		if strings.Contains(u, w) {
			hit = true
		}
	}
	if !hit {
		return false
	}
	for _, suf := range []string{"_ARN", "_NAME", "_ID", "_URL", "_URI", "_PATH", "_TABLE", "_ENDPOINT", "_REGION", "_HEADER", "_TTL", "_EXPIRY", "_TYPE", "_FILE", "_PARAM", "_PARAMETER"} {
		if strings.HasSuffix(u, suf) {
			return false
		}
	}
	return true
}

// setMemory maps MemorySize: memory request = limit, CPU in proportion.
func (fn *function) setMemory(v val, mb int64, def bool) error {
	if mb < 128 || mb > 10240 {
		return v.errf("memory %d MB is outside Lambda's 128–10240 MB", mb)
	}
	fn.memoryMB, fn.memoryAt = mb, v
	fn.memoryDefault = def
	return nil
}

// setTimeout maps Timeout.
func (fn *function) setTimeout(v val, s int64) error {
	if s < 1 || s > 900 {
		return v.errf("timeout %d s is outside Lambda's 1–900 s", s)
	}
	fn.timeout, fn.timeoutAt = s, v
	return nil
}

// setReserved maps reserved concurrency.
func (fn *function) setReserved(v val, n int64) error {
	if n < 0 || n > 1_000_000 {
		return v.errf("reserved concurrency %d is not a count", n)
	}
	fn.reserved, fn.reservedAt = &n, v
	return nil
}

// setArchitectures maps Architectures: one of x86_64, arm64.
func (fn *function) setArchitectures(v val, archs []string) error {
	if len(archs) == 0 {
		return nil
	}
	if len(archs) > 1 {
		return v.errf("Lambda takes one architecture, got %d", len(archs))
	}
	var a string
	switch archs[0] {
	case "x86_64":
		a = "amd64"
	case "arm64":
		a = "arm64"
	default:
		return v.errf("architecture %q is not x86_64 or arm64", archs[0])
	}
	if fn.svc.Placement == nil {
		fn.svc.Placement = &service.Placement{}
	}
	fn.svc.Placement.Architecture = a
	v.t.Mapped(v.field, "nodeSelector kubernetes.io/arch="+a)
	return nil
}

// setTags maps tags to labels; AWS-managed tags stay behind.
func (fn *function) setTags(v val) {
	if v.isSeq() {
		// CloudFormation's list of {Key, Value}.
		for _, it := range v.items() {
			k, ok := it.get("Key").raw()
			if !ok || k == "" {
				it.t.Drop(it.field, "a tag without a Key")
				continue
			}
			it.t.Use(it.get("Key").field)
			fn.setTag(k, it.get("Value"))
		}
		return
	}
	for _, k := range v.keys() {
		fn.setTag(k, v.get(k))
	}
}

// setTag maps one tag to a label.
func (fn *function) setTag(k string, tv val) {
	if strings.HasPrefix(k, "aws:") || strings.HasPrefix(k, "lambda:") {
		tv.t.Drop(tv.field, "AWS sets this tag itself; it has no meaning on Kubernetes")
		return
	}
	s := fn.res.resolve(tv)
	if !s.ok {
		tv.t.Drop(tv.field, "the tag's value is not known until CloudFormation or Serverless deploys it ("+s.def+"): set it as a label in values")
		return
	}
	lk, ok := labelKey(k)
	if !ok {
		tv.t.Drop(tv.field, "the tag key has nothing usable as a label key")
		return
	}
	lv := labelValue(s.text)
	if fn.svc.Labels == nil {
		fn.svc.Labels = map[string]string{}
	}
	fn.svc.Labels[lk] = lv
	if lk != k || lv != s.text {
		tv.t.Warn(tv.field, "label "+lk, fmt.Sprintf("rewritten to label syntax as %s=%q", lk, lv))
	} else {
		tv.t.Mapped(tv.field, "label "+lk)
	}
}

// setEphemeral maps EphemeralStorage.Size (MB of /tmp).
func (fn *function) setEphemeral(v val, mb int64) error {
	if mb < 512 || mb > 10240 {
		return v.errf("ephemeral storage %d MB is outside Lambda's 512–10240 MB", mb)
	}
	c := fn.main()
	c.Resources.EphemeralStorageRequest = fmt.Sprintf("%dMi", mb)
	c.Resources.EphemeralStorageLimit = c.Resources.EphemeralStorageRequest
	v.t.Mapped(v.field, "container resources ephemeral-storage (the /tmp emptyDir counts against it)")
	return nil
}

// addEFS maps one FileSystemConfigs entry: an EFS access point mounted
// at a path under /mnt.
func (fn *function) addEFS(v val, apARN, mount string, arnAt, mountAt val) error {
	a, err := parseARNOf(apARN, "elasticfilesystem")
	if err != nil {
		return arnAt.errf("%v", err)
	}
	if !strings.HasPrefix(a.Resource, "access-point/fsap-") {
		return arnAt.errf("%q is not an EFS access point ARN (…:access-point/fsap-…)", apARN)
	}
	if !strings.HasPrefix(mount, "/mnt/") {
		return mountAt.errf("local mount path %q must be under /mnt/, as Lambda requires", mount)
	}
	ap := strings.TrimPrefix(a.Resource, "access-point/")
	name := service.SanitizeName("efs-" + lastSegment(mount))
	for _, vol := range fn.svc.Volumes {
		if vol.Name == name {
			name = service.SanitizeName(name + "-" + strconv.Itoa(len(fn.svc.Volumes)))
		}
	}
	fsValue := fn.fill(arnAt, service.FillKey(name, "fileSystemId"), "",
		fmt.Sprintf("the EFS file system of access point %s: Lambda names only the access point (aws efs describe-access-points --access-point-id %s --query 'AccessPoints[0].FileSystemId')", ap, ap))
	fn.svc.Volumes = append(fn.svc.Volumes, service.Volume{
		Name: name, Kind: service.VolumeEFS,
		EFS: &service.EFSVolume{AccessPointID: ap, TransitEncryption: true, FileSystemIDValue: fsValue},
	})
	c := fn.main()
	c.VolumeMounts = append(c.VolumeMounts, service.VolumeMount{Name: name, MountPath: mount})
	mountAt.t.Mapped(mountAt.field, "volumeMount "+mount+" of volume "+name+" (EFS CSI, TLS as Lambda uses)")
	return nil
}

func (fn *function) main() *service.Container {
	if len(fn.svc.Containers) == 0 {
		fn.svc.Containers = []service.Container{{Name: "function"}}
	}
	return &fn.svc.Containers[0]
}

// role maps the execution role to an IRSA service account.
func (fn *function) setRole(v val) error {
	s := fn.res.resolve(v)
	sa := &service.ServiceAccount{FormerPrincipal: "lambda.amazonaws.com"}
	fn.svc.ServiceAccount = sa
	if !s.ok {
		sa.RoleValue = fn.fill(v, "roleArn", s.def, "the IAM role the function ran as: "+s.reason+"; its trust policy must admit the cluster's OIDC provider instead of lambda.amazonaws.com")
		return nil
	}
	a, err := parseARN(s.text)
	if err != nil {
		// Samples and redacted exports mangle the role's ARN
		// (arn:aws:iam:<account>:role/…, XXXXXX for the account). The
		// role is the user's to name anyway: a value to fill, not a
		// refusal of the whole function.
		why, ok := placeholderARN(err)
		if !ok {
			why = err.Error()
		}
		sa.RoleValue = fn.fill(v, "roleArn", s.text, "the IAM role the function ran as: "+why+"; name the deployed role, whose trust policy must admit the cluster's OIDC provider instead of lambda.amazonaws.com")
		return nil
	}
	if a.Service != "iam" || !strings.HasPrefix(a.Resource, "role/") {
		// A well-formed ARN of something else is a mistake in the input,
		// not a placeholder.
		return v.errf("%q is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)", s.text)
	}
	if fn.emulator {
		sa.RoleValue = fn.fill(v, "roleArn", s.text, "the IAM role the function ran as: "+s.text+" is the emulator's (the export is LocalStack's or moto's, account 000000000000); name the deployed role, whose trust policy must admit the cluster's OIDC provider instead of lambda.amazonaws.com")
		return nil
	}
	sa.RoleARN = s.text
	msg := "the role's trust policy must admit the cluster's OIDC provider (render/iam writes it) as well as lambda.amazonaws.com during the move"
	if s.note != "" {
		msg = s.note + "; " + msg
	}
	v.t.Warn(v.field, "ServiceAccount eks.amazonaws.com/role-arn", msg)
	return nil
}

// addTrigger adds a trigger with a name unique within the service.
func (fn *function) addTrigger(tr *trigger) {
	base := service.SanitizeName(tr.Name)
	name, n := base, 2
	for taken := true; taken; {
		taken = false
		for _, o := range fn.triggers {
			if o.Name == name {
				taken = true
				name = fmt.Sprintf("%s-%d", base, n)
				n++
				break
			}
		}
	}
	tr.Name = name
	fn.triggers = append(fn.triggers, tr)
}

// queueSource sets an SQS trigger's source from a queue ARN (or an
// unresolved expression, which becomes a value to fill).
func (fn *function) queueSource(tr *trigger, v val) error {
	lit, ref, note := fn.text(v, service.FillKey(tr.Name, "queueUrl"), "the URL of the SQS queue the function consumed")
	if ref != "" {
		tr.SourceValue = ref
		return nil
	}
	if strings.HasPrefix(lit, "https://") {
		tr.Source = lit
		v.t.Mapped(v.field, "KEDA aws-sqs-queue queueURL and serve --queue-url")
		return nil
	}
	a, err := parseARNOf(lit, "sqs")
	if why, ok := placeholderARN(err); ok {
		tr.SourceValue = fn.fill(v, service.FillKey(tr.Name, "queueUrl"), queueURL(a), "the URL of the SQS queue the function consumed: "+why)
		if isRegion(a.Region) {
			tr.Region = a.Region
		}
		return nil
	}
	if err != nil {
		return v.errf("%v", err)
	}
	if a.Region == "" || a.Account == "" {
		return v.errf("queue ARN %q has no region or account", lit)
	}
	tr.Source, tr.Region = queueURL(a), a.Region
	msg := "queue URL derived from the ARN"
	if note != "" {
		msg = note + "; " + msg
	}
	v.t.Warn(v.field, "KEDA aws-sqs-queue queueURL "+tr.Source, msg+"; the IRSA role needs sqs:ReceiveMessage, DeleteMessage, GetQueueAttributes and ChangeMessageVisibility on it")
	return nil
}

// streamSource sets a Kinesis or DynamoDB stream trigger's source.
func (fn *function) streamSource(tr *trigger, v val) error {
	tr.sourceAt = v
	lit, ref, note := fn.text(v, service.FillKey(tr.Name, "streamArn"), "the ARN of the stream the function consumed")
	if ref != "" {
		tr.SourceValue = ref
		return nil
	}
	a, err := parseARNOf(lit, "kinesis", "dynamodb", "kafka")
	if why, ok := placeholderARN(err); ok && a.Service != "kafka" {
		// The kind still shows in the ARN; the stream is the user's to
		// name.
		tr.Kind = service.TriggerKinesis
		if a.Service == "dynamodb" {
			tr.Kind = service.TriggerDynamoDB
		}
		tr.SourceValue = fn.fill(v, service.FillKey(tr.Name, "streamArn"), lit, "the ARN of the stream the function consumed: "+why)
		if isRegion(a.Region) {
			tr.Region = a.Region
		}
		return nil
	}
	if err != nil {
		return v.errf("%v", err)
	}
	switch {
	case a.Service == "kinesis":
		tr.Kind = service.TriggerKinesis
		if !strings.HasPrefix(a.Resource, "stream/") {
			return v.errf("%q is not a Kinesis stream ARN (…:stream/<name>)", lit)
		}
	case a.Service == "dynamodb":
		tr.Kind = service.TriggerDynamoDB
		if !strings.HasPrefix(a.Resource, "table/") || !strings.Contains(a.Resource, "/stream/") {
			return v.errf("%q is not a DynamoDB stream ARN (…:table/<name>/stream/<label>)", lit)
		}
	default:
		tr.Kind = service.TriggerKafka
		tr.Source = ""
		return fn.mskCluster(tr, v, lit)
	}
	// Reported by finishCheckpoints, once the service and trigger names
	// that name the checkpoint are final.
	tr.Source, tr.Region, tr.sourceNote = lit, a.Region, note
	return nil
}

// mskCluster handles an MSK cluster ARN: its bootstrap servers are a value
// to fill, since the ARN does not say them.
func (fn *function) mskCluster(tr *trigger, v val, clusterARN string) error {
	a, err := parseARNOf(clusterARN, "kafka")
	if err != nil {
		return v.errf("%v", err)
	}
	if !strings.HasPrefix(a.Resource, "cluster/") {
		return v.errf("%q is not an MSK cluster ARN (…:cluster/<name>/<uuid>)", clusterARN)
	}
	tr.Kind, tr.Region, tr.clusterARN = service.TriggerKafka, a.Region, clusterARN
	tr.BrokersValue = fn.fill(v, service.FillKey(tr.Name, "brokers"), "",
		"the bootstrap servers of MSK cluster "+clusterARN+" (aws kafka get-bootstrap-brokers --cluster-arn "+clusterARN+"), comma-separated; IAM auth needs the IRSA role to allow kafka-cluster:Connect/ReadData")
	return nil
}

// finish derives the service from everything the front end read.
func (fn *function) finish() (*service.Service, error) {
	svc := fn.svc
	c := fn.main()
	fn.finishKind()
	fn.finishImage()

	// Resources: memory request = limit as Lambda enforces it; CPU in
	// proportion to memory as Lambda allots it, requested but not capped.
	if fn.memoryMB == 0 {
		def := fn.defaultMemoryMB
		if def == 0 {
			def = lambdaDefaultMemoryMB
		}
		_ = fn.setMemory(fn.memoryAt, def, true)
	}
	c.Resources.MemoryRequest = fmt.Sprintf("%dMi", fn.memoryMB)
	c.Resources.MemoryLimit = c.Resources.MemoryRequest
	milli := (fn.memoryMB*1000 + mbPerVCPU - 1) / mbPerVCPU
	c.Resources.CPURequest = fmt.Sprintf("%dm", milli)
	msg := fmt.Sprintf("memory %dMi request and limit; cpu %dm requested in proportion as Lambda allots it (1769 MB = 1 vCPU); the CPU limit comes from the chart's cpuLimitRatio (values/base.yaml)", fn.memoryMB, milli)
	if fn.memoryDefault {
		msg = fmt.Sprintf("not set: the default %d MB applies; ", fn.memoryMB) + msg
	}
	fn.memoryAt.t.Warn(fn.memoryAt.field, "container resources memory request=limit, cpu request", msg)

	if fn.timeout == 0 {
		fn.timeout = fn.defaultTimeout
		if fn.timeout == 0 {
			fn.timeout = lambdaDefaultTimeout
		}
		fn.timeoutDefault = true
	}
	fn.finishTiming()
	fn.finishCheckpoints()
	fn.finishScaling()
	fn.finishEnv()
	fn.finishCommand()
	for _, tr := range fn.triggers {
		svc.Triggers = append(svc.Triggers, tr.Trigger)
	}

	// Lambda gives a function a read-only file system with a writable
	// /tmp; the pod gets the same, so code that worked there works here.
	c.ReadOnlyRootFilesystem = boolPtr(true)
	svc.Volumes = append(svc.Volumes, service.Volume{Name: "tmp", Kind: service.VolumeEmptyDir})
	c.VolumeMounts = append(c.VolumeMounts, service.VolumeMount{Name: "tmp", MountPath: "/tmp"})

	for _, t := range fn.trackers {
		t.Finish()
	}
	if err := svc.Validate(); err != nil {
		return nil, &source.InputError{File: fn.root.t.File, Line: fn.root.line(), Field: fn.root.path(), Err: err}
	}
	return svc, nil
}

func boolPtr(b bool) *bool { return &b }
