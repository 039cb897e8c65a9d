package lambda

import (
	"fmt"
	"strings"

	"github.com/cutoverhq/cutover/service"
)

// samDrops are function properties with no Kubernetes counterpart, and
// why.
var samDrops = map[string]string{
	"Description":                   "Kubernetes objects have no description; it stays in this report",
	"AutoPublishAlias":              "Lambda versions and aliases: an image tag per release and the Deployment's revision history take their place",
	"AutoPublishAliasAllProperties": "Lambda versions and aliases: an image tag per release takes their place",
	"AutoPublishCodeSha256":         "Lambda versions and aliases: an image tag per release takes their place",
	"VersionDescription":            "Lambda versions: an image tag per release takes their place",
	"VersionDeletionPolicy":         "Lambda versions: an image tag per release takes their place",
	"KmsKeyArn":                     "the key Lambda encrypted environment variables with at rest; on EKS turn on KMS envelope encryption of Secrets, and keep secrets out of the ConfigMap",
	"CodeSigningConfigArn":          "Lambda code signing: sign the image (cosign, Notation) and verify it with an admission policy",
	"RuntimeManagementConfig":       "the patch level of the managed runtime; the base image tag pins it now",
	"RecursiveLoop":                 "Lambda's recursive-loop detection has no counterpart; watch for loops between the function and its queues",
	"PropagateTags":                 "tags of the resources SAM generated; labels come from Tags",
	"RolePath":                      "the path of the role SAM generated; the IRSA role is named in values",
	"AssumeRolePolicyDocument":      "the trust policy of the role SAM generated; render/iam writes the IRSA trust policy",
	"PermissionsBoundary":           "the boundary of the role SAM generated: give the IRSA role the same boundary",
}

// samResourceDrops are resource attributes beside Properties.
var samResourceDrops = map[string]string{
	"DependsOn":           "CloudFormation creation order; Argo CD sync waves order Kubernetes objects if needed",
	"DeletionPolicy":      "CloudFormation deletion policy; Argo CD's prune settings decide what deleting does",
	"UpdateReplacePolicy": "CloudFormation replacement policy; no counterpart",
	"Condition":           "the function exists only when this CloudFormation condition holds; cutover converts it unconditionally",
}

// readSAM reads the AWS::Serverless::Function resources of a SAM template,
// with Globals.Function merged into each.
func readSAM(p *part) ([]*function, error) {
	doc := p.docVal()
	res := doc.get("Resources")
	if !res.isMap() {
		return nil, res.errf("a SAM template needs a Resources object")
	}
	r := newCFN(doc)
	types := r.resources
	globals := doc.get("Globals").get("Function")
	var fns []*function
	byID := map[string]*function{}
	for _, id := range res.keys() {
		if types[id] != "AWS::Serverless::Function" {
			continue
		}
		fn := newFunction(r, p.file.Path)
		rv := fn.rooted(res.get(id))
		var g *val
		if !globals.absent() {
			gv := fn.rooted(globals)
			g = &gv
		}
		if err := readSAMFunction(fn, id, rv, g, false); err != nil {
			return nil, err
		}
		fns = append(fns, fn)
		byID[id] = fn
	}
	if len(fns) == 0 {
		return nil, res.errf("the template defines no AWS::Serverless::Function")
	}
	for _, id := range res.keys() {
		if types[id] == "AWS::ApiGatewayV2::Route" && onWebSocketAPI(res, id, types) {
			webSocketRoute(res, id, types, byID)
		}
	}
	skip := map[string]bool{}
	for id, typ := range types {
		skip[id] = typ == "AWS::Serverless::Function"
	}
	samTemplateReport(fns[0], p, r, types, skip)
	return fns, nil
}

// samTemplateReport reports the template around the functions once, in
// the first function's report. skip holds the resources read into a
// function's report (the functions, the triggers of plain templates).
func samTemplateReport(fn *function, p *part, r *cfn, types map[string]string, skip map[string]bool) {
	t := fn.tracker(p.file.Path, p.pos, "")
	doc := val{n: p.root, t: t}
	for _, k := range doc.keys() {
		v := doc.get(k)
		if v.absent() {
			continue
		}
		switch k {
		case "AWSTemplateFormatVersion", "Transform":
			t.Use(k)
		case "Description":
			t.Drop(k, "the template's description")
		case "Globals":
			for _, g := range v.keys() {
				if g != "Function" {
					t.Drop(k+"."+g, "globals of "+g+" resources, which stay on AWS")
				}
			}
		case "Parameters":
			for _, id := range v.keys() {
				if r.used[id] {
					t.Use(k + "." + id)
				} else {
					t.Drop(k+"."+id, "no function property cutover maps refers to this parameter")
				}
			}
		case "Resources":
			for _, id := range v.keys() {
				typ := types[id]
				if skip[id] {
					continue
				}
				if onWebSocketAPI(v, id, types) {
					t.Drop(k+"."+id, typ+": part of a WebSocket API, which is not converted: Kubernetes has no counterpart of API Gateway's managed connections (it holds each client's connection, invokes the function per message and for $connect and $disconnect, and takes replies through @connections); keep the API on AWS invoking the function, or serve WebSockets from the application itself")
					continue
				}
				t.Drop(k+"."+id, resourceWhy(typ))
			}
		case "Outputs":
			t.Drop(k, "stack outputs; publish what other stacks need from the chart's values or a ConfigMap")
		case "Conditions", "Mappings", "Rules":
			t.Drop(k, "CloudFormation "+strings.ToLower(k)+"; cutover converts every function unconditionally")
		case "Metadata":
			t.Drop(k, "template metadata")
		default:
			t.Drop(k, "cutover does not map this section")
		}
	}
}

func resourceWhy(typ string) string {
	switch {
	case strings.HasPrefix(typ, "AWS::Serverless::Api"), strings.HasPrefix(typ, "AWS::Serverless::HttpApi"), strings.HasPrefix(typ, "AWS::ApiGateway"), strings.HasPrefix(typ, "AWS::ApiGatewayV2"):
		return typ + ": the API in front of the function; its routes are the functions' Api/HttpApi events, and a Gateway API HTTPRoute replaces it (authorizers, usage plans and stages are not converted)"
	case strings.HasPrefix(typ, "AWS::IAM::"):
		return typ + ": IAM stays on AWS; attach what the function needs to its IRSA role"
	case strings.HasPrefix(typ, "AWS::Lambda::Permission"):
		return typ + ": who may invoke the function; on Kubernetes, NetworkPolicy and the Gateway decide who reaches it"
	case typ == "AWS::Serverless::CapacityProvider", typ == "AWS::Lambda::CapacityProvider":
		return typ + ": the EC2 capacity Lambda Managed Instances ran the functions on; the cluster's nodes take its place (size them for the functions' memory and CPU)"
	case typ == "AWS::CDK::Metadata":
		return typ + ": CDK's record of the construct library versions, for AWS's usage statistics"
	case typ == "AWS::Lambda::Function":
		return typ + ": a plain Lambda function beside the SAM ones, which cutover does not read: convert it from its deployed form (aws lambda get-function --function-name <its name>)"
	case typ == "AWS::CloudFormation::Stack", typ == "AWS::Serverless::Application":
		return typ + ": a nested stack, whose resources are in a template of its own: give that template to convert too (cdk synth writes it to cdk.out/*.nested.template.json; sam build to .aws-sam/build/)"
	case strings.HasPrefix(typ, "AWS::Lambda::EventSourceMapping"):
		return typ + ": a plain CloudFormation mapping; give its deployed form (aws lambda list-event-source-mappings) to convert it"
	}
	return typ + ": stays on AWS; cutover moves compute only (manage it with CloudFormation, Terraform, Crossplane or ACK as today)"
}

// readSAMFunction reads an AWS::Serverless::Function, or with plain an
// AWS::Lambda::Function of a plain CloudFormation template: they share
// most property names, and plain ones differ in Code, DeadLetterConfig,
// TracingConfig and the CDK metadata.
func readSAMFunction(fn *function, id string, rv val, globals *val, plain bool) error {
	rv.t.Use("Type")
	props := rv.get("Properties")
	props.over = globals
	fn.root = props
	fn.svc.Name = kebab(id)
	if plain {
		fn.svc.Name = cdkName(rv, id)
	}
	fn.eventsAt = props.get("Events")
	fn.memoryAt, fn.timeoutAt, fn.reservedAt = props.get("MemorySize"), props.get("Timeout"), props.get("ReservedConcurrentExecutions")
	for _, k := range rv.keys() {
		if why, ok := samResourceDrops[k]; ok {
			rv.get(k).t.Drop(rv.get(k).field, why)
		}
	}

	// The deployed name: FunctionName, else CloudFormation makes one up
	// from the stack and the logical id.
	if v := props.get("FunctionName"); !v.absent() {
		lit, ref, note := fn.text(v, "functionName", "the deployed function name, which the code reads from AWS_LAMBDA_FUNCTION_NAME")
		if ref != "" {
			fn.nameValue = ref
		} else {
			fn.name = lit
			report(v, "AWS_LAMBDA_FUNCTION_NAME", note)
			if plain && service.SanitizeName(lit) != "" {
				// Plain templates' logical ids are CDK's hashes; the
				// deployed name is the one people know.
				fn.svc.Name = service.SanitizeName(lit)
			}
		}
	} else {
		fn.nameValue = fn.fill(props.get("FunctionName"), "functionName", "",
			"the deployed function name, which the code reads from AWS_LAMBDA_FUNCTION_NAME: CloudFormation generated it (<stack>-"+id+"-<random>; aws cloudformation describe-stack-resource --logical-resource-id "+id+")")
	}

	pt := props.get("PackageType")
	if !pt.absent() {
		s, note, ok := fn.word(pt)
		switch {
		case !ok:
		case s == "Image":
			fn.packageImage = true
			report(pt, "container image", note)
		case s == "Zip":
			report(pt, "container image built from the code", note)
		default:
			return pt.errf("package type %q is not Zip or Image", s)
		}
	}
	if err := fn.readRuntime(props.get("Runtime")); err != nil {
		return err
	}
	if v := props.get("Handler"); !v.absent() {
		lit, ref, note := fn.text(v, "handler", "the function's handler")
		fn.handlerAt = v
		if ref != "" {
			fn.handlerValue = ref
		} else {
			fn.handler = lit
			report(v, "_HANDLER and the entrypoint's argument", note)
		}
	}
	if plain {
		if err := fn.readCode(rv, props); err != nil {
			return err
		}
	} else if fn.packageImage {
		if v := props.get("ImageUri"); !v.absent() {
			fn.setImage(v, "")
			if md := rv.get("Metadata"); !md.absent() {
				md.t.Drop(md.field, fmt.Sprintf("how sam build builds the image (%s); the image is ImageUri's, so build and push it the same way in CI", md.text()))
			}
		} else {
			fn.imageAt = props.get("ImageUri")
			md := rv.get("Metadata")
			how := "sam build builds it"
			if !md.absent() {
				how = fmt.Sprintf("sam build builds it from Metadata (%s)", md.text())
				md.t.Use(md.field)
			}
			fn.imageValue = fn.fill(fn.imageAt, "image", "", "the function's container image: "+how+"; push it and name it here")
		}
		if err := fn.readImageConfig(props.get("ImageConfig"), "EntryPoint", "Command", "WorkingDirectory"); err != nil {
			return err
		}
	} else {
		if v := props.get("CodeUri"); !v.absent() {
			fn.codeHint = "CodeUri " + v.text()
			fn.imageAt = v
		} else if v := props.get("InlineCode"); !v.absent() {
			fn.codeHint = "the template's InlineCode"
			fn.imageAt = v
		} else {
			fn.imageAt = props.get("CodeUri")
		}
		if md := rv.get("Metadata"); !md.absent() {
			md.t.Drop(md.field, "sam build settings; the image build replaces them")
		}
	}

	if v := props.get("MemorySize"); !v.absent() {
		n, note, ok, err := fn.num(v)
		if err != nil {
			return err
		}
		if ok {
			if err := fn.setMemory(v, n, false); err != nil {
				return err
			}
			if note != "" {
				v.t.Warn(v.field, "", note)
			}
		}
	}
	if v := props.get("Timeout"); !v.absent() {
		n, note, ok, err := fn.num(v)
		if err != nil {
			return err
		}
		if ok {
			if err := fn.setTimeout(v, n); err != nil {
				return err
			}
			if note != "" {
				v.t.Warn(v.field, "", note)
			}
		}
	}
	if v := props.get("ReservedConcurrentExecutions"); !v.absent() {
		n, note, ok, err := fn.num(v)
		if err != nil {
			return err
		}
		if ok {
			if err := fn.setReserved(v, n); err != nil {
				return err
			}
			if note != "" {
				v.t.Warn(v.field, "", note)
			}
		}
	}
	if v := props.get("ProvisionedConcurrencyConfig").get("ProvisionedConcurrentExecutions"); !v.absent() {
		if n, note, ok, err := fn.num(v); err != nil {
			return err
		} else if ok {
			fn.provisioned, fn.provisionedAt = n, v
			noProvisioned(v, n, note)
		}
	}
	if v := props.get("EphemeralStorage").get("Size"); !v.absent() {
		if n, _, ok, err := fn.num(v); err != nil {
			return err
		} else if ok {
			if err := fn.setEphemeral(v, n); err != nil {
				return err
			}
		}
	}
	if v := props.get("Architectures"); !v.absent() {
		archs, err := v.strs()
		if err != nil {
			return err
		}
		if err := fn.setArchitectures(v, archs); err != nil {
			return err
		}
	}
	if v := props.get("Role"); !v.absent() {
		if err := fn.setRole(v); err != nil {
			return err
		}
	} else {
		fn.svc.ServiceAccount = &service.ServiceAccount{FormerPrincipal: "lambda.amazonaws.com"}
		why := "the IAM role for the pod: SAM generated one for the function (" + id + "Role) from its Policies; create an IRSA role with the same permissions"
		if plain {
			why = "the IAM role for the pod: the template names none (CloudFormation requires Role); name the role the function ran as"
		}
		fn.svc.ServiceAccount.RoleValue = fn.fill(props.get("Role"), "roleArn", "", why)
	}
	if v := props.get("Policies"); !v.absent() {
		v.t.Warn(v.field, "", "SAM policies and policy templates: attach the same permissions to the IRSA role ("+v.text()+")")
	}
	env := props.get("Environment").get("Variables")
	switch {
	case env.absent():
	case env.isMap() && !isIntrinsicMap(env):
		for _, k := range env.keys() {
			fn.addEnv(k, env.get(k))
		}
	default:
		env.t.Fill(env.field, "", "the environment is the expression "+env.text()+", which cannot be resolved outside CloudFormation: add its variables to the ConfigMap in values")
	}
	fn.setTags(props.get("Tags"))
	fn.readVPC(props.get("VpcConfig"))
	fn.readLayers(props.get("Layers"), "")
	if plain {
		fn.readDLQ(props.get("DeadLetterConfig").get("TargetArn"))
		fn.readTracing(props.get("TracingConfig").get("Mode"))
	} else {
		if v := props.get("DeadLetterQueue"); !v.absent() {
			fn.readDLQ(v)
		}
		if v := props.get("Tracing"); !v.absent() {
			fn.readTracing(v)
		}
	}
	if err := fn.readFileSystems(props.get("FileSystemConfigs"), "Arn", "LocalMountPath"); err != nil {
		return err
	}
	fn.readSnapStart(props.get("SnapStart"), "ApplyOn")
	fn.readCapacityProvider(props.get("CapacityProviderConfig"))
	fn.readLogging(props.get("LoggingConfig"))
	if v := props.get("DeploymentPreference"); !v.absent() {
		v.t.Warn(v.field, "", "CodeDeploy traffic shifting between versions: cutover shift does the canary between the old and new platforms, and Argo Rollouts or the chart's rollout strategy between releases")
	}
	if v := props.get("EventInvokeConfig"); !v.absent() {
		v.t.Drop(v.field, "asynchronous invocation settings: nothing invokes the pods asynchronously")
	}
	if v := props.get("FunctionUrlConfig"); !v.absent() {
		tr := &trigger{Trigger: service.Trigger{Kind: service.TriggerHTTP, Name: "url", Enabled: true, EventShape: "apigw-v2", Route: &service.Route{Path: catchAll}}, at: v}
		fn.addRoute(service.Route{Path: "/"})
		fn.urlOptions(v, "AuthType", "Cors", "InvokeMode")
		// Not v itself: a setting urlOptions does not read must be
		// reported, not covered.
		fn.addTrigger(tr)
	}
	for _, k := range props.keys() {
		if why, ok := samDrops[k]; ok {
			if v := props.get(k); !v.absent() {
				v.t.Drop(v.field, why)
			}
		}
	}
	events := props.get("Events")
	for _, name := range events.keys() {
		if err := fn.samEvent(name, events.get(name)); err != nil {
			return err
		}
	}
	return nil
}

func isIntrinsicMap(v val) bool {
	_, _, ok := intrinsic(v)
	return ok
}

// samEvent reads one entry of a SAM function's Events.
func (fn *function) samEvent(name string, ev val) error {
	typ, err := ev.get("Type").str()
	if err != nil {
		return err
	}
	ev.t.Use(ev.get("Type").field)
	p := ev.get("Properties")
	tr := &trigger{Trigger: service.Trigger{Name: kebab(name), Enabled: true}, at: ev}
	switch typ {
	case "SQS":
		tr.Kind = service.TriggerSQS
		if err := fn.queueSource(tr, p.get("Queue")); err != nil {
			return err
		}
	case "Kinesis", "DynamoDB":
		tr.Kind = service.TriggerKinesis
		if typ == "DynamoDB" {
			tr.Kind = service.TriggerDynamoDB
		}
		if err := fn.streamSource(tr, p.get("Stream")); err != nil {
			return err
		}
	case "MSK", "SelfManagedKafka":
		if err := fn.samKafka(tr, typ, p); err != nil {
			return err
		}
	case "Schedule", "ScheduleV2":
		if err := fn.samSchedule(tr, typ, p); err != nil {
			return err
		}
	case "Api", "HttpApi":
		if err := fn.samAPI(tr, typ, p); err != nil {
			return err
		}
	default:
		ev.t.Drop(ev.field, fmt.Sprintf("%s events have no Kubernetes source: keep the %s on AWS and have it call the function's HTTP route, or send to a queue the worker consumes", typ, eventNoun(typ)))
		return nil
	}
	if isQueue(tr.Kind) {
		if err := fn.mappingCommon(tr, p, nil); err != nil {
			return err
		}
		if v := p.get("KmsKeyArn"); !v.absent() {
			v.t.Drop(v.field, mappingStatus["KMSKeyArn"])
		}
	}
	fn.addTrigger(tr)
	return nil
}

func eventNoun(typ string) string {
	switch typ {
	case "S3":
		return "bucket notification"
	case "SNS":
		return "topic subscription"
	case "EventBridgeRule", "CloudWatchEvent":
		return "rule"
	}
	return "event source"
}

// samKafka reads MSK and SelfManagedKafka events.
func (fn *function) samKafka(tr *trigger, typ string, p val) error {
	tr.Kind = service.TriggerKafka
	if typ == "MSK" {
		sv := p.get("Stream")
		s := fn.res.resolve(sv)
		if !s.ok {
			tr.BrokersValue = fn.fill(sv, service.FillKey(tr.Name, "brokers"), "",
				"the bootstrap servers of the MSK cluster "+sv.text()+", comma-separated (aws kafka get-bootstrap-brokers): "+s.reason)
			// The function's events name the cluster (eventSourceArn), and
			// serve makes them MSK events only when it knows it.
			tr.clusterARNValue = fn.fill(sv, service.FillKey(tr.Name, "clusterArn"), "",
				"the ARN of the MSK cluster "+sv.text()+", which the function's events carry as eventSourceArn: "+s.reason)
		} else if err := fn.mskCluster(tr, sv, s.text); err != nil {
			return err
		}
	} else {
		bv := p.get("KafkaBootstrapServers")
		brokers, err := bv.strs()
		if err != nil {
			return err
		}
		if len(brokers) == 0 {
			return bv.errf("a SelfManagedKafka event needs KafkaBootstrapServers")
		}
		tr.Brokers = brokers
		bv.t.Mapped(bv.field, "KEDA kafka bootstrapServers and serve --brokers")
	}
	tv := p.get("Topics")
	topics, err := tv.strs()
	if err != nil {
		return err
	}
	if len(topics) != 1 {
		return tv.errf("a Kafka event takes exactly one topic, got %d", len(topics))
	}
	tr.Source = topics[0]
	tv.t.Mapped(tv.field, "KEDA kafka topic and serve --topic")
	if g := p.get("ConsumerGroupId"); !g.absent() {
		lit, ref, note := fn.text(g, service.FillKey(tr.Name, "consumerGroup"), "the Kafka consumer group")
		if ref != "" {
			tr.ConsumerGroupValue = ref
		} else {
			tr.ConsumerGroup = lit
			report(g, "KEDA kafka consumerGroup and serve --consumer-group", note)
		}
	} else {
		tr.ConsumerGroupValue = fn.fill(p.get("ConsumerGroupId"), service.FillKey(tr.Name, "consumerGroup"), "",
			"the consumer group Lambda used: the event source mapping's UUID (aws lambda list-event-source-mappings --function-name <deployed name>); the same group continues from its offsets, a new one starts at StartingPosition")
	}
	fn.kafkaAuth(tr, p.get("SourceAccessConfigurations"))
	return nil
}

// samSchedule reads Schedule (EventBridge rule) and ScheduleV2
// (EventBridge Scheduler) events.
func (fn *function) samSchedule(tr *trigger, typ string, p val) error {
	tr.Kind = service.TriggerSchedule
	key := "Schedule"
	if typ == "ScheduleV2" {
		key = "ScheduleExpression"
	}
	sv := p.get(key)
	expr, note, ok := fn.word(sv)
	if !ok {
		return sv.errf("the schedule expression cannot be resolved, and a CronJob needs one")
	}
	if err := fn.setSchedule(tr, sv, expr, note); err != nil {
		return err
	}
	fn.scheduleInput(tr, p.get("Input"))
	if v := p.get("Enabled"); !v.absent() {
		if b, _, ok, err := fn.flag(v); err != nil {
			return err
		} else if ok && !b {
			tr.Enabled = false
			v.t.Warn(v.field, "", "the schedule was disabled: suspend the CronJob in values")
		} else {
			v.t.Use(v.field)
		}
	}
	fn.scheduleStateAndZone(tr, p)
	for _, k := range []string{"Name", "Description", "GroupName"} {
		if v := p.get(k); !v.absent() {
			v.t.Drop(v.field, "the EventBridge rule's "+strings.ToLower(k))
		}
	}
	for _, k := range []string{"RetryPolicy", "DeadLetterConfig", "FlexibleTimeWindow", "StartDate", "EndDate", "RoleArn", "KmsKeyArn", "OmitName", "PermissionsBoundary"} {
		if v := p.get(k); !v.absent() {
			v.t.Warn(v.field, "", fmt.Sprintf("EventBridge %s has no CronJob counterpart (backoffLimit and startingDeadlineSeconds come closest)", k))
		}
	}
	return nil
}

// setSchedule converts a schedule expression for a trigger.
func (fn *function) setSchedule(tr *trigger, v val, expr, note string) error {
	cron, warn, err := convertSchedule(expr)
	if err != nil {
		return v.errf("%v", err)
	}
	tr.Schedule = cron
	if tr.Name == "" {
		tr.Name = "schedule"
	}
	msgs := []string{}
	if note != "" {
		msgs = append(msgs, note)
	}
	if warn != "" {
		msgs = append(msgs, warn)
	}
	target := fmt.Sprintf("CronJob schedule %q (UTC)", cron)
	if len(msgs) > 0 {
		v.t.Warn(v.field, target, strings.Join(msgs, "; "))
		return nil
	}
	v.t.Mapped(v.field, target)
	return nil
}

// samAPI reads Api (REST API, payload v1) and HttpApi (payload v2 unless
// PayloadFormatVersion says 1.0) events.
func (fn *function) samAPI(tr *trigger, typ string, p val) error {
	tr.Kind = service.TriggerHTTP
	tr.EventShape = "apigw-v1"
	if typ == "HttpApi" {
		tr.EventShape = "apigw-v2"
		if v := p.get("PayloadFormatVersion"); !v.absent() {
			s, _, _ := fn.word(v)
			switch s {
			case "1.0":
				tr.EventShape = "apigw-v1"
			case "2.0", "":
			default:
				return v.errf("payload format version %q is not 1.0 or 2.0", s)
			}
			v.t.Mapped(v.field, "serve --route event shape "+tr.EventShape)
		}
	}
	path, method := "/", ""
	if typ == "HttpApi" {
		// An HTTP API event without a path is the $default route.
		path = catchAll
	}
	if v := p.get("Path"); !v.absent() {
		s, note, ok := fn.word(v)
		if ok {
			path = s
			report(v, "HTTPRoute path and serve --route", note)
		}
	}
	if v := p.get("Method"); !v.absent() {
		s, note, ok := fn.word(v)
		if ok {
			method = strings.ToUpper(s)
			if method == "ANY" || method == "X-AMAZON-APIGATEWAY-ANY-METHOD" {
				method = ""
			}
			report(v, "HTTPRoute method and serve --route", note)
		}
	}
	if !strings.HasPrefix(path, "/") {
		return p.get("Path").errf("path %q does not start with /", path)
	}
	tr.Route = &service.Route{Path: path, Method: method}
	fn.addRoute(service.Route{Path: routePrefix(path), Method: method})
	for _, k := range []string{"RestApiId", "ApiId"} {
		if v := p.get(k); !v.absent() {
			v.t.Warn(v.field, "Gateway API HTTPRoute", "the API's stage, custom domain, throttling and usage plans stay with API Gateway; the chart's HTTPRoute takes the traffic once cutover shift moves it")
		}
	}
	if v := p.get("Auth"); !v.absent() {
		v.t.Warn(v.field, "", "API Gateway authorized these requests ("+v.text()+"); nothing checks them in front of the pod: enforce the same at the Gateway (JWT/OIDC filter, external auth) before exposing the route")
	}
	for _, k := range []string{"RequestModel", "RequestParameters", "TimeoutInMillis", "RouteSettings", "Stage", "RouteName", "Cors"} {
		if v := p.get(k); !v.absent() {
			v.t.Drop(v.field, "an API Gateway route setting ("+k+") with no counterpart in the HTTPRoute; enforce it in the code or the Gateway")
		}
	}
	return nil
}

// catchAll is the path template of a route that takes every path: a
// function URL, an HTTP API's $default route.
const catchAll = "/{proxy+}"

// routePrefix turns an API Gateway path template into the path prefix a
// Gateway API route matches: up to the first {parameter}.
func routePrefix(p string) string {
	if i := strings.IndexByte(p, '{'); i >= 0 {
		p = p[:i]
	}
	if len(p) > 1 {
		p = strings.TrimRight(p, "/")
	}
	if p == "" {
		p = "/"
	}
	return p
}

// scheduleInput reads a schedule's Input: the event the function
// receives, passed to serve --input.
func (fn *function) scheduleInput(tr *trigger, v val) {
	if v.absent() {
		return
	}
	if s := fn.res.resolve(v); s.ok {
		tr.Input = s.text
		report(v, "serve --input", s.note)
	} else {
		v.t.Warn(v.field, "", "the schedule's input cannot be resolved ("+s.reason+"): the function receives the default scheduled event; pass --input in values")
	}
}

// scheduleStateAndZone reads the State (DISABLED suspends the CronJob)
// and ScheduleExpressionTimezone of a SAM schedule event, an EventBridge
// rule or a Scheduler schedule.
func (fn *function) scheduleStateAndZone(tr *trigger, p val) {
	if v := p.get("State"); !v.absent() {
		if s, _, ok := fn.word(v); ok && strings.EqualFold(s, "DISABLED") {
			tr.Enabled = false
			v.t.Warn(v.field, "", "the schedule was disabled: suspend the CronJob in values")
		} else {
			v.t.Use(v.field)
		}
	}
	if v := p.get("ScheduleExpressionTimezone"); !v.absent() {
		fn.scheduleTimeZone(tr, v)
	}
}
