package lambda

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/cutoverhq/cutover/service"
)

// readCFN reads the AWS::Lambda::Function resources of a plain
// CloudFormation template (hand-written, or what cdk synth writes into
// cdk.out), with the mappings, schedules and function URLs in the same
// template that target them. Intrinsics resolve as in SAM templates.
func readCFN(p *part) ([]*function, error) {
	doc := p.docVal()
	res := doc.get("Resources")
	if !res.isMap() {
		return nil, res.errf("a CloudFormation template needs a Resources object")
	}
	r := newCFN(doc)
	types := r.resources
	var fns []*function
	byID := map[string]*function{}
	handlers := deployTimeHandlers(res, types)
	for _, id := range res.keys() {
		if types[id] != "AWS::Lambda::Function" || handlers[id] != "" {
			continue
		}
		fn := newFunction(r, p.file.Path)
		if err := readSAMFunction(fn, id, fn.rooted(res.get(id)), nil, true); err != nil {
			return nil, err
		}
		fns = append(fns, fn)
		byID[id] = fn
	}
	if len(fns) == 0 {
		if len(handlers) > 0 {
			return nil, res.errf("the template's functions (%s) all run at deploy time for CloudFormation or CDK (custom resources, log retention): none is an application function to convert", strings.Join(slices.Sorted(maps.Keys(handlers)), ", "))
		}
		return nil, res.errf("the template defines no AWS::Lambda::Function")
	}
	consumed := map[string]bool{}
	for id := range byID {
		consumed[id] = true
	}
	t := fns[0].tracker(p.file.Path, p.pos, "")
	for _, id := range slices.Sorted(maps.Keys(handlers)) {
		t.Drop("Resources."+id, handlers[id])
		consumed[id] = true
	}
	for _, id := range res.keys() {
		ok, err := cfnTrigger(r, res, id, types[id], fns, byID)
		if err != nil {
			return nil, err
		}
		if ok {
			consumed[id] = true
		}
	}
	for _, id := range res.keys() {
		// A WebSocket API's routes are no HTTP routes: they stay
		// unconsumed, and the template's report says why.
		if types[id] != "AWS::ApiGatewayV2::Route" {
			continue
		}
		if onWebSocketAPI(res, id, types) {
			webSocketRoute(res, id, types, byID)
			continue
		}
		ok, err := cfnRoute(res, id, types, fns, byID, consumed)
		if err != nil {
			return nil, err
		}
		if ok {
			consumed[id] = true
		}
	}
	for _, id := range res.keys() {
		if types[id] != "AWS::ApiGateway::Method" {
			continue
		}
		ok, err := cfnRestMethod(res, id, types, byID, consumed)
		if err != nil {
			return nil, err
		}
		if ok {
			consumed[id] = true
		}
	}
	samTemplateReport(fns[0], p, r, types, consumed)
	return fns, nil
}

// cfnRestMethod reads a REST API (v1) method whose integration is a Lambda
// proxy to a function of the template (CDK's LambdaRestApi and
// LambdaIntegration, or the same by hand): an HTTP trigger with the
// API Gateway v1 event shape, at the path its resources spell.
func cfnRestMethod(res val, id string, types map[string]string, byID map[string]*function, consumed map[string]bool) (bool, error) {
	props := res.get(id).get("Properties")
	integ := props.get("Integration")
	typ, _ := integ.get("Type").raw()
	if typ != "AWS_PROXY" {
		return false, nil // MOCK (CORS preflight), HTTP, AWS service integrations
	}
	fn := byID[subRef(integ.get("Uri"), types, "AWS::Lambda::Function")]
	if fn == nil {
		return false, nil
	}
	// The path: PathPart up the ParentId chain to the API's root.
	var parts []string
	var chain []string
	cur := props.get("ResourceId")
	for depth := 0; depth < 32; depth++ {
		rid := subRef(cur, types, "AWS::ApiGateway::Resource")
		if types[rid] != "AWS::ApiGateway::Resource" {
			break // GetAtt Api.RootResourceId, or what cannot be followed
		}
		part, ok := res.get(rid).get("Properties").get("PathPart").raw()
		if !ok || part == "" {
			return false, props.get("ResourceId").errf("resource %s has no PathPart to build the route's path from", rid)
		}
		parts = append([]string{part}, parts...)
		chain = append(chain, rid)
		cur = res.get(rid).get("Properties").get("ParentId")
	}
	path := "/" + strings.Join(parts, "/")

	rv := fn.rooted(res.get(id))
	resourceAttrs(rv)
	p := rv.get("Properties")
	mv := p.get("HttpMethod")
	method, note, ok := fn.word(mv)
	if !ok {
		return false, mv.errf("the HTTP method cannot be resolved, and the HTTPRoute needs it")
	}
	method = strings.ToUpper(method)
	report(mv, "HTTPRoute method and serve --route", note)
	if method == "ANY" {
		method = ""
	}
	p.get("ResourceId").t.Mapped(p.get("ResourceId").field, "HTTPRoute path "+path)
	for _, rid := range chain {
		consumed[rid] = true
		rr := fn.rooted(res.get(rid))
		resourceAttrs(rr)
		rp := rr.get("Properties")
		rp.t.Mapped(rp.get("PathPart").field, "HTTPRoute path "+path)
		rp.t.Use(rp.get("ParentId").field)
		rp.t.Use(rp.get("RestApiId").field)
	}
	ip := p.get("Integration")
	for _, k := range ip.keys() {
		switch v := ip.get(k); k {
		case "Type", "Uri", "IntegrationHttpMethod":
			v.t.Use(v.field)
		default:
			if !v.absent() {
				v.t.Drop(v.field, "an API Gateway integration setting ("+k+") with no counterpart in the HTTPRoute")
			}
		}
	}
	fn.apiSettings(p, "RestApiId", "the API's stage, custom domain, throttling, API keys and usage plans", "method", "HttpMethod", "ResourceId", "Integration")
	tr := &trigger{Trigger: service.Trigger{Kind: service.TriggerHTTP, Name: cdkName(res.get(id), id), Enabled: true, EventShape: "apigw-v1"}, at: rv}
	tr.Route = &service.Route{Path: path, Method: method}
	fn.addRoute(service.Route{Path: routePrefix(path), Method: method})
	fn.addTrigger(tr)
	return true, nil
}

// cdkInternalFunctions are the logical id prefixes of the singleton
// functions CDK adds for itself, whose custom resource may sit in another
// stack of the app.
var cdkInternalFunctions = []string{
	"LogRetentionaae0aa3c5b4d4f87b02d85b201efdd8a",
	"AWS679f53fac002430cb0da5b7982bd2287",
	"BucketNotificationsHandler050a0587b7544547bf325f094a3db834",
	"CustomCDKBucketDeployment8693BB64968944B69AAFB0CC9EB8756C",
}

// deployTimeHandlers finds the template's functions that are not the
// application's: the handlers of custom resources (a ServiceToken names
// them), the functions such a handler calls (CDK's provider framework
// passes its user handlers as environment variables), and CDK's own
// singletons. It returns each one's logical id with the reason it is not
// converted.
func deployTimeHandlers(res val, types map[string]string) map[string]string {
	const fnType = "AWS::Lambda::Function"
	out := map[string]string{}
	var queue []string
	mark := func(id, why string) {
		if types[id] == fnType && out[id] == "" {
			out[id] = why
			queue = append(queue, id)
		}
	}
	for _, id := range res.keys() {
		typ := types[id]
		if typ == "AWS::CloudFormation::CustomResource" || strings.HasPrefix(typ, "Custom::") {
			if fid := subRef(res.get(id).get("Properties").get("ServiceToken"), types, fnType); fid != "" {
				mark(fid, fmt.Sprintf("%s: the handler of custom resource %s (%s), which CloudFormation calls while it deploys the stack; it is not a workload and stays on AWS with the stack", fnType, id, typ))
			}
		}
	}
	for _, id := range res.keys() {
		path, _ := res.get(id).get("Metadata").get("aws:cdk:path").raw()
		internal := strings.Contains(path, "/Custom::") || strings.Contains(path, "/AWSCDK")
		for _, pre := range cdkInternalFunctions {
			internal = internal || strings.HasPrefix(id, pre)
		}
		if internal {
			mark(id, fnType+": a function CDK adds for itself (log retention, custom resources, bucket deployments and notifications), which runs while the stack deploys; it is not a workload and stays on AWS with the stack")
		}
	}
	for len(queue) > 0 {
		id := queue[0]
		queue = queue[1:]
		vars := res.get(id).get("Properties").get("Environment").get("Variables")
		for _, k := range vars.keys() {
			if fid := subRef(vars.get(k), types, fnType); fid != "" {
				mark(fid, fmt.Sprintf("%s: called by %s, the deploy-time handler of a custom resource (through its variable %s); it is not a workload and stays on AWS with the stack", fnType, id, k))
			}
		}
	}
	return out
}

// cfnTarget finds the function a reference names: !Ref Fn, !GetAtt Fn.Arn,
// or a literal name or ARN of a function in the template.
func cfnTarget(v val, fns []*function, byID map[string]*function) *function {
	if name, arg, ok := intrinsic(v); ok {
		var id string
		switch name {
		case "Ref":
			id, _ = arg.raw()
		case "Fn::GetAtt":
			if items := arg.items(); len(items) > 0 {
				id, _ = items[0].raw()
			} else {
				s, _ := arg.raw()
				id, _, _ = strings.Cut(s, ".")
			}
		}
		return byID[id]
	}
	s, ok := v.raw()
	if !ok || s == "" {
		return nil
	}
	if a, err := parseFunctionARN(s); err == nil {
		s = a.Name
	}
	for _, fn := range fns {
		if fn.name != "" && fn.name == s {
			return fn
		}
	}
	return nil
}

// cfnTrigger reads one resource that triggers a function of the template,
// into that function's report. ok reports whether it did.
func cfnTrigger(r *cfn, res val, id, typ string, fns []*function, byID map[string]*function) (bool, error) {
	rv := res.get(id)
	props := rv.get("Properties")
	switch typ {
	case "AWS::Lambda::EventSourceMapping":
		fn := cfnTarget(props.get("FunctionName"), fns, byID)
		if fn == nil {
			return false, nil
		}
		m := fn.rooted(rv)
		resourceAttrs(m)
		return true, fn.cfnMapping(id, m.get("Properties"), r, res)
	case "AWS::Lambda::Url":
		fn := cfnTarget(props.get("TargetFunctionArn"), fns, byID)
		if fn == nil {
			return false, nil
		}
		u := fn.rooted(rv)
		resourceAttrs(u)
		up := u.get("Properties")
		up.t.Use(up.get("TargetFunctionArn").field)
		if v := up.get("Qualifier"); !v.absent() {
			v.t.Warn(v.field, "", "the URL invoked an alias or version; the pods run the one image the chart names")
		}
		fn.addFunctionURL(up)
		return true, nil
	case "AWS::Events::Rule":
		sched := props.get("ScheduleExpression")
		if sched.absent() {
			return false, nil
		}
		for i, tg := range props.get("Targets").items() {
			fn := cfnTarget(tg.get("Arn"), fns, byID)
			if fn == nil {
				continue
			}
			ev := fn.rooted(rv)
			resourceAttrs(ev)
			p := ev.get("Properties")
			t := p.get("Targets").items()[i]
			t.t.Use(t.get("Arn").field)
			t.t.Use(t.get("Id").field)
			tr := &trigger{Trigger: service.Trigger{Name: kebab(id), Enabled: true}, at: ev}
			if err := fn.cfnSchedule(tr, p, p.get("ScheduleExpression"), t.get("Input")); err != nil {
				return false, err
			}
			for j, o := range p.get("Targets").items() {
				if j != i {
					o.t.Drop(o.field, "another target of the rule, which stays on AWS")
				}
			}
			fn.addTrigger(tr)
			return true, nil
		}
	case "AWS::Scheduler::Schedule":
		fn := cfnTarget(props.get("Target").get("Arn"), fns, byID)
		if fn == nil {
			return false, nil
		}
		ev := fn.rooted(rv)
		resourceAttrs(ev)
		p := ev.get("Properties")
		t := p.get("Target")
		t.t.Use(t.get("Arn").field)
		tr := &trigger{Trigger: service.Trigger{Name: kebab(id), Enabled: true}, at: ev}
		if err := fn.cfnSchedule(tr, p, p.get("ScheduleExpression"), t.get("Input")); err != nil {
			return false, err
		}
		for _, k := range []string{"RoleArn", "RetryPolicy", "DeadLetterConfig"} {
			if v := t.get(k); !v.absent() {
				v.t.Warn(v.field, "", fmt.Sprintf("EventBridge Scheduler %s has no CronJob counterpart (backoffLimit and startingDeadlineSeconds come closest)", k))
			}
		}
		fn.addTrigger(tr)
		return true, nil
	}
	return false, nil
}

// cfnSchedule reads an EventBridge rule's or schedule's expression,
// state, time zone and input, through the SAM schedule reader's names.
func (fn *function) cfnSchedule(tr *trigger, p, expr, input val) error {
	tr.Kind = service.TriggerSchedule
	s, note, ok := fn.word(expr)
	if !ok {
		return expr.errf("the schedule expression cannot be resolved, and a CronJob needs one")
	}
	if err := fn.setSchedule(tr, expr, s, note); err != nil {
		return err
	}
	fn.scheduleInput(tr, input)
	fn.scheduleStateAndZone(tr, p)
	for _, k := range []string{"Name", "Description", "GroupName", "EventBusName"} {
		if v := p.get(k); !v.absent() {
			v.t.Drop(v.field, "the EventBridge rule's "+strings.ToLower(k))
		}
	}
	for _, k := range []string{"FlexibleTimeWindow", "StartDate", "EndDate", "KmsKeyArn", "RoleArn"} {
		if v := p.get(k); !v.absent() {
			v.t.Warn(v.field, "", fmt.Sprintf("EventBridge %s has no CronJob counterpart (backoffLimit and startingDeadlineSeconds come closest)", k))
		}
	}
	return nil
}

// cfnMapping reads an AWS::Lambda::EventSourceMapping resource, whose
// properties are the Lambda API's: the source's kind comes from the
// ARN, or from the type of the resource !GetAtt names in the template.
func (fn *function) cfnMapping(id string, m val, r *cfn, res val) error {
	m.t.Use(m.get("FunctionName").field)
	tr := &trigger{Trigger: service.Trigger{Name: kebab(id), Enabled: true}, at: m}
	src := m.get("EventSourceArn")
	kind, queueID := "", ""
	if name, arg, ok := intrinsic(src); ok && name == "Fn::GetAtt" {
		target := arg.text()
		if items := arg.items(); len(items) > 0 {
			target, _ = items[0].raw()
		}
		rid, _, _ := strings.Cut(target, ".")
		// Named after the source, as mappings from the Lambda API are,
		// not after CDK's long logical id of the mapping.
		switch r.resources[rid] {
		case "AWS::SQS::Queue":
			kind, queueID = "sqs", rid
		case "AWS::Kinesis::Stream":
			kind = "kinesis"
		case "AWS::DynamoDB::Table":
			kind = "dynamodb"
		}
		tr.Name = kind + "-" + cdkName(res.get(rid), rid)
	} else if s := fn.res.resolve(src); s.ok {
		if a, err := parseARN(s.text); err == nil || isPlaceholder(err) {
			kind = a.Service
			tr.Name = a.Service + "-" + lastSegment(a.Resource)
		}
	}
	switch kind {
	case "sqs":
		tr.Kind = service.TriggerSQS
		if queueID != "" {
			tr.SourceValue = fn.fill(src, service.FillKey(tr.Name, "queueUrl"), "", "the URL of the SQS queue the function consumed: "+templateQueue(fn, res.get(queueID), queueID))
		} else if err := fn.queueSource(tr, src); err != nil {
			return err
		}
	case "kinesis", "dynamodb":
		tr.Kind = service.TriggerKinesis
		if kind == "dynamodb" {
			tr.Kind = service.TriggerDynamoDB
		}
		if err := fn.streamSource(tr, src); err != nil {
			return err
		}
	default:
		m.t.Drop(m.field, "an event source mapping whose source cutover cannot tell from the template ("+src.text()+"): give its deployed form (aws lambda list-event-source-mappings --function-name <deployed name>) to convert it")
		return nil
	}
	return fn.addMappingTrigger(tr, m)
}

func isPlaceholder(err error) bool {
	_, ok := placeholderARN(err)
	return ok
}

// cdkName names the service of a plain template's function whose
// FunctionName the template does not set: CDK's construct id from
// aws:cdk:path (Stack/Orders/Resource: orders) rather than its logical
// id (Orders1A2B3C4D), else the logical id without CDK's hash.
// cdkHashRE matches a CDK logical id: the construct path's ids, then 8
// hex digits of its hash.
var cdkHashRE = regexp.MustCompile(`^([A-Za-z0-9]*[a-z0-9])([0-9A-F]{8})$`)

func cdkName(rv val, id string) string {
	if m := cdkHashRE.FindStringSubmatch(id); m != nil && strings.ContainsAny(m[2], "0123456789") {
		id = m[1]
	}
	path, ok := rv.get("Metadata").get("aws:cdk:path").raw()
	if !ok || path == "" {
		return kebab(id)
	}
	parts := strings.Split(path, "/")
	for i := len(parts) - 1; i > 0; i-- {
		if parts[i] != "Resource" && parts[i] != "" {
			if n := kebab(parts[i]); n != "" {
				return n
			}
		}
	}
	return kebab(id)
}

// readCode reads an AWS::Lambda::Function's Code and the CDK asset
// metadata beside it.
func (fn *function) readCode(rv val, props val) error {
	md := rv.get("Metadata")
	asset, _ := md.get("aws:asset:path").raw()
	for _, k := range md.keys() {
		v := md.get(k)
		switch {
		case k == "aws:cdk:path":
			v.t.Mapped(v.field, "service name (the construct id) unless FunctionName is set")
		case strings.HasPrefix(k, "aws:asset:"):
			v.t.Use(v.field)
		default:
			v.t.Drop(v.field, "resource metadata")
		}
	}
	code := props.get("Code")
	img := code.get("ImageUri")
	if !img.absent() {
		fn.packageImage = true
		s := fn.res.resolve(img)
		cdkAsset := strings.Contains(img.text(), "container-assets") || strings.Contains(img.text(), "AssetParameters") || asset != ""
		if !s.ok && cdkAsset {
			from := ""
			if asset != "" {
				from = " from cdk.out/" + asset
			}
			fn.imageAt = img
			fn.imageValue = fn.fill(img, "image", "", "the function's container image: a CDK asset that cdk deploy builds"+from+" and pushes to the bootstrap ECR repository (cdk-…-container-assets-<account>-<region>:<hash>); build and push it in CI the same way and name it here")
		} else {
			fn.setImage(img, "")
		}
	} else {
		switch {
		case !code.get("ZipFile").absent():
			zf := code.get("ZipFile")
			fn.imageAt = zf
			fn.codeHint = "the template's inline Code.ZipFile"
			zf.t.Warn(zf.field, "", "inline code in the template: save it as a file of the image the value image names")
		case !code.get("S3Bucket").absent() || !code.get("S3Key").absent():
			fn.imageAt = code
			if asset != "" {
				fn.codeHint = "the CDK asset cdk.out/" + asset
			} else {
				fn.codeHint = "the zip at s3://" + resolvedOr(fn, code.get("S3Bucket")) + "/" + resolvedOr(fn, code.get("S3Key"))
			}
			for _, k := range []string{"S3Bucket", "S3Key", "S3ObjectVersion", "SourceKMSKeyArn"} {
				code.t.Use(code.get(k).field)
			}
		default:
			// No Code (CloudFormation requires it; a trimmed template):
			// the image is a value to fill all the same.
			fn.imageAt = code
		}
	}
	return fn.readImageConfig(props.get("ImageConfig"), "EntryPoint", "Command", "WorkingDirectory")
}

// resolvedOr returns v's text, or the expression when the template alone
// cannot resolve it.
func resolvedOr(fn *function, v val) string {
	if s := fn.res.resolve(v); s.ok {
		return s.text
	}
	return v.text()
}

// resourceAttrs reads what a trigger resource has beside its Properties:
// its type, CDK's construct path, and the attributes SAM functions share.
func resourceAttrs(rv val) {
	rv.t.Use("Type")
	md := rv.get("Metadata")
	for _, k := range md.keys() {
		if v := md.get(k); k == "aws:cdk:path" {
			v.t.Use(v.field)
		} else {
			v.t.Drop(v.field, "resource metadata")
		}
	}
	for _, k := range rv.keys() {
		if why, ok := samResourceDrops[k]; ok {
			rv.get(k).t.Drop(rv.get(k).field, why)
		}
	}
}

// subRef returns the logical id an expression refers to: !Ref X, !GetAtt
// X.Arn, the first ${X} or ${X.Arn} of an Fn::Sub, or the first Ref in an
// Fn::Join.
func subRef(v val, types map[string]string, want string) string {
	name, arg, ok := intrinsic(v)
	if !ok {
		return ""
	}
	switch name {
	case "Ref":
		id, _ := arg.raw()
		return id
	case "Fn::GetAtt":
		if items := arg.items(); len(items) > 0 {
			id, _ := items[0].raw()
			return id
		}
		s, _ := arg.raw()
		id, _, _ := strings.Cut(s, ".")
		return id
	case "Fn::Sub":
		tmpl, ok := arg.raw()
		if !ok {
			if items := arg.items(); len(items) > 0 {
				tmpl, _ = items[0].raw()
			}
		}
		for _, m := range subVarRE.FindAllStringSubmatch(tmpl, -1) {
			id, _, _ := strings.Cut(m[1], ".")
			if types[id] == want {
				return id
			}
		}
	case "Fn::Join":
		if items := arg.items(); len(items) == 2 {
			for _, it := range items[1].items() {
				if id := subRef(it, types, want); types[id] == want {
					return id
				}
			}
		}
	}
	return ""
}

// onWebSocketAPI reports whether the resource id is an API Gateway v2
// API of ProtocolType WEBSOCKET, or a route, integration, stage or other
// part of one (its ApiId names it).
func onWebSocketAPI(res val, id string, types map[string]string) bool {
	if !strings.HasPrefix(types[id], "AWS::ApiGatewayV2::") {
		return false
	}
	api := id
	if types[id] != "AWS::ApiGatewayV2::Api" {
		api = subRef(res.get(id).get("Properties").get("ApiId"), types, "AWS::ApiGatewayV2::Api")
	}
	if types[api] != "AWS::ApiGatewayV2::Api" {
		return false
	}
	pt, _ := res.get(api).get("Properties").get("ProtocolType").raw()
	return strings.EqualFold(pt, "WEBSOCKET")
}

// webSocketRoute tells the function a WebSocket route invokes that the
// route is not converted, so that its report does not say nothing invoked
// it.
func webSocketRoute(res val, id string, types map[string]string, byID map[string]*function) {
	iid := subRef(res.get(id).get("Properties").get("Target"), types, "AWS::ApiGatewayV2::Integration")
	uri := res.get(iid).get("Properties").get("IntegrationUri")
	refs := []val{uri}
	if name, arg, ok := intrinsic(uri); ok && name == "Fn::Sub" {
		// !Sub [template, {FuncArn: !GetAtt Fn.Arn}]: the function is
		// in the variables.
		if items := arg.items(); len(items) == 2 {
			for _, k := range items[1].keys() {
				refs = append(refs, items[1].get(k))
			}
		}
	}
	for _, v := range refs {
		for _, typ := range []string{"AWS::Lambda::Function", "AWS::Serverless::Function"} {
			if fn := byID[subRef(v, types, typ)]; fn != nil {
				key, _ := res.get(id).get("Properties").get("RouteKey").raw()
				fn.droppedSources = append(fn.droppedSources, fmt.Sprintf("the WebSocket route %s, Resources.%s", key, id))
				return
			}
		}
	}
}

// cfnRoute reads an HTTP API route whose integration (AWS_PROXY to a
// function of the template) is in the template too: CDK's
// HttpLambdaIntegration, or the same written by hand.
func cfnRoute(res val, id string, types map[string]string, fns []*function, byID map[string]*function, consumed map[string]bool) (bool, error) {
	iid := subRef(res.get(id).get("Properties").get("Target"), types, "AWS::ApiGatewayV2::Integration")
	if iid == "" {
		return false, nil
	}
	fid := subRef(res.get(iid).get("Properties").get("IntegrationUri"), types, "AWS::Lambda::Function")
	fn := byID[fid]
	if fn == nil {
		return false, nil
	}
	rv := fn.rooted(res.get(id))
	resourceAttrs(rv)
	p := rv.get("Properties")
	tr := &trigger{Trigger: service.Trigger{Kind: service.TriggerHTTP, Name: cdkName(res.get(id), id), Enabled: true, EventShape: "apigw-v2"}, at: rv}
	if !consumed[iid] {
		consumed[iid] = true
		iv := fn.rooted(res.get(iid))
		resourceAttrs(iv)
		ip := iv.get("Properties")
		for _, k := range []string{"IntegrationType", "IntegrationUri", "IntegrationMethod", "ApiId"} {
			ip.t.Use(ip.get(k).field)
		}
		if v := ip.get("PayloadFormatVersion"); !v.absent() {
			v.t.Mapped(v.field, "serve --route event shape")
		}
		for _, k := range ip.keys() {
			if v := ip.get(k); !v.absent() && k != "PayloadFormatVersion" && k != "IntegrationType" && k != "IntegrationUri" && k != "IntegrationMethod" && k != "ApiId" {
				v.t.Drop(v.field, "an API Gateway integration setting ("+k+") with no counterpart in the HTTPRoute")
			}
		}
	}
	if s, _, ok := fn.word(res.get(iid).get("Properties").get("PayloadFormatVersion")); ok && s == "1.0" {
		tr.EventShape = "apigw-v1"
	}
	kv := p.get("RouteKey")
	key, note, ok := fn.word(kv)
	if !ok {
		return false, kv.errf("the route key cannot be resolved, and the HTTPRoute needs it")
	}
	path, method := catchAll, ""
	if key != "$default" {
		m, pth, found := strings.Cut(key, " ")
		if !found || !strings.HasPrefix(pth, "/") {
			return false, kv.errf("route key %q is not \"METHOD /path\" or $default", key)
		}
		path, method = pth, strings.ToUpper(m)
		if method == "ANY" {
			method = ""
		}
	}
	report(kv, "HTTPRoute path and serve --route", note)
	tr.Route = &service.Route{Path: path, Method: method}
	fn.addRoute(service.Route{Path: routePrefix(path), Method: method})
	p.t.Use(p.get("Target").field)
	fn.apiSettings(p, "ApiId", "the API's stage, custom domain, throttling and usage plans", "route", "RouteKey", "Target")
	fn.addTrigger(tr)
	return true, nil
}

// apiSettings reports what an API Gateway route (v2) or method (v1)
// says beyond its path and target: the API it belongs to (apiKey, whose
// stage-level settings stay behind), its authorization, and, as dropped,
// every property not in handled.
func (fn *function) apiSettings(p val, apiKey, stays, what string, handled ...string) {
	if v := p.get(apiKey); !v.absent() {
		v.t.Warn(v.field, "Gateway API HTTPRoute", stays+" stay with API Gateway; the chart's HTTPRoute takes the traffic once cutover shift moves it")
	}
	if v := p.get("AuthorizationType"); !v.absent() {
		if s, _, _ := fn.word(v); s == "NONE" {
			v.t.Use(v.field)
		} else {
			v.t.Warn(v.field, "", "API Gateway authorized these requests ("+v.text()+"); nothing checks them in front of the pod: enforce the same at the Gateway (JWT/OIDC filter, external auth) before exposing the route")
		}
	}
	for _, k := range p.keys() {
		if k == apiKey || k == "AuthorizationType" || slices.Contains(handled, k) {
			continue
		}
		if v := p.get(k); !v.absent() {
			v.t.Drop(v.field, "an API Gateway "+what+" setting ("+k+") with no counterpart in the HTTPRoute; enforce it in the code or the Gateway")
		}
	}
}

// templateQueue says what the template tells of a queue it creates: its
// name when QueueName sets it, else how CloudFormation names it.
func templateQueue(fn *function, q val, id string) string {
	if s := fn.res.resolve(q.get("Properties").get("QueueName")); s.ok && s.text != "" {
		return fmt.Sprintf("the queue %s the template creates (%s): https://sqs.<region>.amazonaws.com/<account>/%s (aws sqs get-queue-url --queue-name %s)", s.text, id, s.text, s.text)
	}
	return fmt.Sprintf("the queue %s the template creates, which CloudFormation named <stack>-%s-<random> (aws cloudformation describe-stack-resource --logical-resource-id %s gives its URL)", id, id, id)
}
