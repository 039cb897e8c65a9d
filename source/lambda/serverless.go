package lambda

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/cutoverhq/cutover/service"
	"github.com/cutoverhq/cutover/source"
)

// sls resolves Serverless Framework variables, ${source:address, fallback},
// as far as the file alone allows: ${self:…} paths, ${opt:…} and ${env:…}
// through their fallbacks, ${sls:stage}, ${aws:region}, ${param:…} from
// stages. ${ssm:…} is a Parameter Store reference: a secret where an
// environment variable takes it. The rest (${file(…)}, ${cf:…}, ${s3:…},
// ${aws:accountId}) is known only when the Framework deploys.
// CloudFormation intrinsics, which serverless.yml also allows, go to cfn.
type sls struct {
	doc   val
	env   map[string]string
	stage string
	// stageNote is set when the stage came from a default.
	stageNote string
	// pinned is set when provider.stage names one stage outright: every
	// environment deploys as that stage. Otherwise each deployment chose
	// its stage (--stage, ${opt:stage, …}), and envs deploy as their own.
	pinned bool
	// envs are the environments of the output (source.Options.Envs).
	envs   []string
	region string
	cfn    *cfn
	// svcUnknown says why the service name could not be resolved ("":
	// it was).
	svcUnknown string
	// budget bounds the work of one resolve: variables that refer to
	// each other several times over would otherwise take exponential time.
	budget int
}

const (
	maxVarDepth = 10
	varBudget   = 2000
)

func (r *sls) resolve(v val) scalar {
	r.budget = varBudget
	if _, _, ok := intrinsic(v); ok {
		return r.cfn.resolve(v)
	}
	s, ok := v.raw()
	if !ok {
		if v.absent() {
			return scalar{reason: "not set"}
		}
		return scalar{reason: "not a plain value: " + v.describe()}
	}
	return r.interp(s, 0)
}

// interp substitutes every variable in s.
func (r *sls) interp(s string, depth int) scalar {
	if !strings.Contains(s, "${") {
		return literal(s)
	}
	if depth > maxVarDepth {
		return scalar{reason: s + ": variables refer to each other too deeply (a cycle?)"}
	}
	// A string that is one variable keeps what the variable is: a
	// Parameter Store reference stays a secret.
	if start, end, ok := nextVar(s, 0); ok && start == 0 && end == len(s) {
		return r.eval(s, s[2:end-1], depth)
	}
	var b strings.Builder
	var notes []string
	for i := 0; i < len(s); {
		start, end, ok := nextVar(s, i)
		if !ok {
			if strings.Contains(s[i:], "${") {
				return scalar{reason: s + ": a ${ is never closed"}
			}
			b.WriteString(s[i:])
			break
		}
		b.WriteString(s[i:start])
		x := r.eval(s[start:end], s[start+2:end-1], depth)
		if !x.ok {
			return scalar{reason: x.reason, sensitive: x.sensitive}
		}
		if x.note != "" {
			notes = append(notes, x.note)
		}
		b.WriteString(x.text)
		i = end
	}
	return scalar{text: b.String(), ok: true, note: strings.Join(notes, "; ")}
}

// nextVar finds the next ${…} at or after i, with nested variables
// inside; end is just past its closing brace.
func nextVar(s string, i int) (start, end int, ok bool) {
	j := strings.Index(s[i:], "${")
	if j < 0 {
		return 0, 0, false
	}
	start = i + j
	depth := 0
	for k := start; k < len(s); k++ {
		switch {
		case strings.HasPrefix(s[k:], "${"):
			depth++
			k++
		case s[k] == '}':
			depth--
			if depth == 0 {
				return start, k + 1, true
			}
		}
	}
	return 0, 0, false
}

// eval evaluates one variable's body: its sources in turn, the first that
// resolves wins.
func (r *sls) eval(whole, body string, depth int) scalar {
	inner := r.interp(body, depth+1)
	if !inner.ok {
		return scalar{reason: whole + ": " + inner.reason}
	}
	terms := splitTerms(inner.text)
	var tried []string
	var last scalar
	for i, term := range terms {
		x := r.term(term, depth)
		if x.ok && i > 0 && x.text == "" {
			// ${param:slack_url, ''}: an empty fallback is no value; the
			// user fills the one the unknown source would give.
			return scalar{reason: whole + ": " + last.reason + ", and its fallback is empty", sensitive: last.sensitive}
		}
		last = x
		if x.secret != nil && len(terms) == 1 {
			return x
		}
		if x.ok {
			var notes []string
			if inner.note != "" {
				notes = append(notes, inner.note)
			}
			if x.note != "" {
				notes = append(notes, x.note)
			}
			if i > 0 {
				notes = append(notes, fmt.Sprintf("%s resolved to its fallback %q (%s not known when converting); other stages or environments need their own value", whole, x.text, strings.Join(tried, ", ")))
			}
			return scalar{text: x.text, ok: true, note: strings.Join(notes, "; ")}
		}
		tried = append(tried, strings.TrimSpace(term))
	}
	return scalar{reason: whole + ": " + last.reason, sensitive: last.sensitive}
}

// stageProbe is a stage no file names: a value that resolves to
// something else under it than under the default stage depends on the
// stage.
const stageProbe = "cutover-stage-probe"

// perDeployment reports whether the stage is chosen per deployment and
// the output has environments to deploy: values that depend on the stage
// then resolve once per environment.
func (r *sls) perDeployment() bool { return !r.pinned && len(r.envs) > 0 }

// stageFor returns the stage environment env deploys as: its own name,
// as stages and environments are usually named alike, unless the file
// lists its stages (stages:, beside default) and env is none of them;
// ok is false then, and env's values are the user's to fill.
func (r *sls) stageFor(env string) (stage string, ok bool) {
	listed := false
	for _, k := range r.doc.get("stages").keys() {
		if k == env {
			return env, true
		}
		listed = listed || k != "default"
	}
	return env, !listed
}

// stageList names each environment's stage for a report row.
func (r *sls) stageList() string {
	var parts []string
	for _, env := range r.envs {
		if st, ok := r.stageFor(env); ok {
			parts = append(parts, env+": "+st)
		} else {
			parts = append(parts, env+": not among stages:")
		}
	}
	return strings.Join(parts, ", ")
}

// perEnv resolves v as each environment deploys it. vals is nil when v
// does not depend on the stage (or the stage is pinned, or there are no
// environments), or when it is no plain value under some stage; else it
// holds each environment's value, and unknown the environments that map
// to no stage.
func (r *sls) perEnv(v val) (vals map[string]string, unknown []string) {
	if !r.perDeployment() {
		return nil, nil
	}
	stage, note := r.stage, r.stageNote
	defer func() { r.stage, r.stageNote = stage, note }()
	at := func(st string) (string, bool) {
		r.stage, r.stageNote = st, ""
		x := r.resolve(v)
		return x.text, x.ok && x.secret == nil
	}
	base, ok := at(stage)
	if !ok {
		return nil, nil
	}
	probe, ok := at(stageProbe)
	dependent := !ok || probe != base
	vals = map[string]string{}
	for _, env := range r.envs {
		st, known := r.stageFor(env)
		if !known {
			unknown = append(unknown, env)
			continue
		}
		x, ok := at(st)
		if !ok {
			return nil, nil
		}
		vals[env] = x
		dependent = dependent || x != base
	}
	if !dependent {
		return nil, nil
	}
	return vals, unknown
}

// splitTerms splits a variable body on commas outside quotes and
// parentheses.
func splitTerms(s string) []string {
	var out []string
	var quote byte
	paren, start := 0, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '(':
			paren++
		case c == ')':
			paren--
		case c == ',' && paren == 0:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

var numberRE = regexp.MustCompile(`^-?\d+(\.\d+)?$`)

// term resolves one source of a variable.
func (r *sls) term(t string, depth int) scalar {
	if r.budget <= 0 {
		return scalar{reason: "the variables refer to each other too often to resolve"}
	}
	r.budget--
	t = strings.TrimSpace(t)
	if len(t) >= 2 && (t[0] == '\'' && t[len(t)-1] == '\'' || t[0] == '"' && t[len(t)-1] == '"') {
		return scalar{text: t[1 : len(t)-1], ok: true}
	}
	if numberRE.MatchString(t) || t == "true" || t == "false" {
		return scalar{text: t, ok: true}
	}
	if strings.HasPrefix(t, "file(") {
		// ${file(./secrets.yml):KEY}, ${file(config.${sls:stage}.json)}:
		// a file beside the serverless.yml, read when deploying. One
		// named for secrets holds secrets.
		f, key, _ := strings.Cut(strings.TrimPrefix(t, "file("), ")")
		what := "the file " + f
		if key = strings.TrimPrefix(key, ":"); key != "" {
			what = key + " from the file " + f
		}
		return scalar{reason: "the Serverless Framework reads " + what + " when deploying (serverless print shows the resolved configuration)", sensitive: strings.Contains(strings.ToLower(f), "secret")}
	}
	src, addr, found := strings.Cut(t, ":")
	if !found {
		return scalar{reason: fmt.Sprintf("%q is not a variable source", t)}
	}
	addr = strings.TrimSpace(addr)
	switch {
	case src == "self" && addr == "provider.stage" && !r.pinned:
		// The stage the deployment chose, as ${sls:stage} says it.
		return scalar{text: r.stage, ok: true, note: r.stageNote}
	case src == "self":
		n := r.lookup(addr)
		if n.absent() {
			if via, expr, ok := r.lookupVia(addr); ok {
				// custom.secrets: ${file(secrets.yml)}: the path goes
				// on inside what the Framework reads when deploying.
				x := r.interp(expr, depth+1)
				return scalar{reason: fmt.Sprintf("self:%s lies inside %s: %s", addr, via, x.reason), sensitive: x.sensitive}
			}
			return scalar{reason: "self:" + addr + " is not in the file"}
		}
		s, ok := n.raw()
		if _, _, fnOK := intrinsic(n); !ok && fnOK {
			// custom.db.host: {Fn::GetAtt: [Db, Endpoint.Address]}: what
			// the intrinsic says, not "not a plain value".
			x := r.cfn.resolve(n)
			if !x.ok {
				x.reason = "self:" + addr + ": " + x.reason
			}
			return x
		}
		if !ok {
			return scalar{reason: "self:" + addr + " is not a plain value"}
		}
		return r.interp(s, depth+1)
	case src == "opt":
		return scalar{reason: "the --" + addr + " option is only known when deploying"}
	case src == "env":
		if v, ok := r.env[addr]; ok {
			return scalar{text: v, ok: true, note: fmt.Sprintf("${env:%s} took %q from the environment cutover ran in", addr, v)}
		}
		return scalar{reason: "the environment variable " + addr + " is only known when deploying"}
	case src == "sls" && addr == "stage", src == "opt" && addr == "stage":
		return scalar{text: r.stage, ok: true, note: r.stageNote}
	case src == "aws" && addr == "region":
		return scalar{text: r.region, ok: true, note: "the region is the provider's (" + r.region + ")"}
	case src == "aws":
		return scalar{reason: "aws:" + addr + " is only known when deploying"}
	case src == "param":
		for _, st := range []string{r.stage, "default"} {
			n := r.doc.get("stages").get(st).get("params").get(addr)
			if s, ok := n.raw(); ok {
				x := r.interp(s, depth+1)
				if st == "default" && x.ok {
					x.note = strings.TrimPrefix(x.note+"; ", "; ") + fmt.Sprintf("param:%s comes from stages.default", addr)
				}
				return x
			}
		}
		return scalar{reason: "param:" + addr + " is set outside the file (Serverless Dashboard or --param)"}
	case src == "ssm" || strings.HasPrefix(src, "ssm("):
		name := strings.TrimSuffix(addr, "~true")
		sec := &service.Secret{Source: service.ParameterStore, Key: name}
		if strings.HasPrefix(src, "ssm(") {
			sec.Region = strings.Trim(strings.TrimPrefix(src, "ssm"), "()")
		}
		if a, err := parseARN(name); err == nil {
			sec.Region = a.Region
		}
		return scalar{secret: sec, reason: "the Parameter Store value ssm:" + addr + " is read when deploying"}
	}
	return scalar{reason: fmt.Sprintf("%s is resolved by the Serverless Framework when deploying", t)}
}

// lookup finds a dotted path in the file (self:custom.tables.orders).
func (r *sls) lookup(path string) val {
	v := r.doc
	for _, p := range strings.Split(path, ".") {
		if p == "" {
			continue
		}
		if i, err := strconv.Atoi(p); err == nil && v.isSeq() {
			items := v.items()
			if i < 0 || i >= len(items) {
				return val{}
			}
			v = items[i]
			continue
		}
		v = v.get(p)
	}
	return v
}

// lookupVia finds the first string on a dotted path that holds a
// variable (custom.secrets: ${file(secrets.yml)}), for a path that goes on
// inside it.
func (r *sls) lookupVia(path string) (via, expr string, ok bool) {
	v := r.doc
	var seen []string
	for _, p := range strings.Split(path, ".") {
		if p == "" {
			continue
		}
		if s, isStr := v.raw(); isStr && len(seen) > 0 {
			if strings.Contains(s, "${") {
				return strings.Join(seen, "."), s, true
			}
			return "", "", false
		}
		seen = append(seen, p)
		v = v.get(p)
		if v.absent() {
			return "", "", false
		}
	}
	return "", "", false
}

// object follows a value that is one ${self:…} variable naming an object
// or list (environment: ${self:custom.env}) to that object, reported at
// its own place. Anything else is returned as it is.
func (fn *function) object(v val, abs *source.Tracker) val {
	r, ok := fn.res.(*sls)
	for i := 0; ok && i < maxVarDepth; i++ {
		s, isStr := v.raw()
		if !isStr {
			return v
		}
		start, end, found := nextVar(s, 0)
		if !found || start != 0 || end != len(s) {
			return v
		}
		r.budget = varBudget
		body := r.interp(s[2:end-1], 0)
		if !body.ok {
			return v
		}
		src, addr, _ := strings.Cut(strings.TrimSpace(splitTerms(body.text)[0]), ":")
		if src != "self" {
			return v
		}
		target := r.lookup(strings.TrimSpace(addr))
		if target.absent() {
			return v
		}
		v.t.Use(v.field)
		v = val{n: target.n, t: abs, field: target.field}
	}
	return v
}

// slsDrops are top-level keys with no Kubernetes counterpart.
var slsDrops = map[string]string{
	"org":                         "Serverless Dashboard settings",
	"app":                         "Serverless Dashboard settings",
	"console":                     "Serverless Console settings",
	"dashboard":                   "Serverless Dashboard settings",
	"license":                     "Serverless license settings",
	"package":                     "packaging settings; the image build replaces them",
	"build":                       "the Framework's build (esbuild) settings; the image build replaces them",
	"layers":                      "layers the service publishes: build their content into the images that use them",
	"outputs":                     "stack outputs; publish what others need from the chart's values or a ConfigMap",
	"resources":                   "CloudFormation resources (queues, tables, buckets, roles) stay on AWS; cutover moves compute only",
	"useDotenv":                   "cutover does not read .env files: their variables are values to fill",
	"deprecationNotificationMode": "Framework settings",
	"disabledDeprecations":        "Framework settings",
	"configValidationMode":        "Framework settings",
	"variablesResolutionMode":     "Framework settings",
	"frameworkVersion":            "",
	"custom":                      "",
	"params":                      "",
	"stages":                      "",
	"service":                     "",
}

// slsProviderDrops are provider keys with no Kubernetes counterpart.
var slsProviderDrops = map[string]string{
	"profile":                 "the AWS CLI profile used to deploy",
	"stackTags":               "tags of the CloudFormation stack; labels come from tags",
	"stackName":               "the CloudFormation stack's name",
	"stackPolicy":             "the CloudFormation stack policy",
	"stackParameters":         "CloudFormation stack parameters",
	"deploymentBucket":        "where the Framework uploads packages",
	"deploymentMethod":        "how the Framework deploys the stack",
	"deploymentPrefix":        "where the Framework uploads packages",
	"versionFunctions":        "Lambda versions: an image tag per release takes their place",
	"lambdaHashingVersion":    "how the Framework hashes packages",
	"logRetentionInDays":      "CloudWatch log retention; the cluster's log pipeline decides retention",
	"logDataProtectionPolicy": "CloudWatch log data protection; apply it in the cluster's log pipeline",
	"kmsKeyArn":               "the key Lambda encrypted environment variables with at rest; on EKS turn on KMS envelope encryption of Secrets",
	"endpointType":            "the API Gateway endpoint type; the Gateway's listener replaces it",
	"apiGateway":              "API Gateway settings (keys, usage plans, binary types) are not converted; enforce them at the Gateway",
	"apiName":                 "the API Gateway's name",
	"httpApi":                 "HTTP API settings (CORS, authorizers) are not converted; enforce them at the Gateway",
	"websocketsApiName":       "websocket APIs are not converted",
	"logs":                    "API Gateway and function log settings; the cluster's log pipeline replaces them",
	"alb":                     "ALB target group settings; the Gateway's routes replace them",
	"eventBridge":             "EventBridge settings",
	"cfnRole":                 "the role CloudFormation deploys with",
	"rolePermissionsBoundary": "give the IRSA role the same permissions boundary",
	"notificationArns":        "CloudFormation stack notifications",
	"disableRollback":         "CloudFormation rollback; Argo CD's sync policy decides what a failed sync does",
	"runtimeManagement":       "the patch level of the managed runtime; the base image tag pins it now",
	"timeout":                 "",
	"name":                    "",
}

// slsFunctionDrops are function keys with no Kubernetes counterpart.
var slsFunctionDrops = map[string]string{
	"description":            "Kubernetes objects have no description; it stays in this report",
	"package":                "packaging settings; the image build replaces them",
	"logRetentionInDays":     "CloudWatch log retention; the cluster's log pipeline decides retention",
	"disableLogs":            "logs go to stdout; the cluster's log pipeline decides where",
	"logs":                   "function log settings; the cluster's log pipeline replaces them",
	"kmsKeyArn":              "the key Lambda encrypted environment variables with at rest; on EKS turn on KMS envelope encryption of Secrets",
	"versionFunction":        "Lambda versions: an image tag per release takes their place",
	"condition":              "a CloudFormation condition; cutover converts the function unconditionally",
	"dependsOn":              "CloudFormation creation order",
	"maximumRetryAttempts":   "retries of asynchronous invocations: nothing invokes the pods asynchronously",
	"maximumEventAge":        "age limit of asynchronous invocations: nothing invokes the pods asynchronously",
	"destinations":           "destinations of asynchronous invocations: nothing invokes the pods asynchronously",
	"runtimeManagement":      "the patch level of the managed runtime; the base image tag pins it now",
	"snapStart":              "SnapStart has no counterpart: a pod starts once and serves many invocations; keep minReplicas above zero where start-up is slow",
	"provisionedConcurrency": "",
}

// readServerless reads the functions of a serverless.yml.
func readServerless(p *part, opts source.Options) ([]*function, error) {
	doc := p.docVal()
	prov := doc.get("provider")
	if name, ok := prov.get("name").raw(); ok && name != "aws" {
		return nil, prov.get("name").errf("provider %q is not aws; cutover converts AWS Lambda functions", name)
	}
	r := &sls{doc: doc, env: opts.Env, cfn: &cfn{params: val{}, resources: map[string]string{}, used: map[string]bool{}}}
	res := doc.get("resources").get("Resources")
	for _, id := range res.keys() {
		typ, _ := res.get(id).get("Type").raw()
		if ref, ok := res.get(id).raw(); ok && typ == "" {
			// LambdaRole: ${file(./resource/LambdaRole.yml)}: defined,
			// in a file beside the input.
			typ = "resource (defined by " + ref + ")"
		}
		r.cfn.resources[id] = typ
	}
	r.stage, r.stageNote = "dev", "the stage is the Framework's default, dev; deploying another stage needs its own values"
	if sv := prov.get("stage"); !sv.absent() {
		if x := r.resolve(sv); x.ok {
			r.stage = x.text
			r.stageNote = x.note
		}
		if s, ok := sv.raw(); ok && !strings.Contains(s, "${") {
			r.pinned = true
		}
	}
	r.envs = opts.Envs
	r.region = "us-east-1"
	regionNote := "the region is the Framework's default, us-east-1"
	if rv := prov.get("region"); !rv.absent() {
		if x := r.resolve(rv); x.ok {
			r.region, regionNote = x.text, x.note
		}
	}
	if !isRegion(r.region) {
		return nil, prov.get("region").errf("%q is not an AWS region", r.region)
	}
	r.cfn.region, r.cfn.regionNote = r.region, regionNote
	svcName := ""
	sn := doc.get("service")
	if sn.isMap() {
		sn = sn.get("name")
	}
	svcNote := ""
	if x := r.resolve(sn); x.ok {
		svcName = x.text
	} else if !sn.absent() && !sn.isEmpty() {
		// service: ${file(./config.json):name} and the like: the
		// Framework knows the name when it deploys. The Kubernetes names
		// need one now, so they take the directory's (or the file's);
		// the deployed function names, which the code may read, become
		// values to fill.
		svcName = fallbackServiceName(p.file.Path)
		r.svcUnknown = x.reason
		svcNote = fmt.Sprintf("the service name is not known when converting (%s): the Kubernetes names use %q instead, and each function's deployed name is a value to fill", x.reason, svcName)
	}
	if svcName == "" {
		return nil, sn.errf("serverless.yml needs a service name")
	}
	funcs := doc.get("functions")
	if !funcs.isMap() {
		if s, ok := funcs.raw(); ok && strings.Contains(s, "${") {
			// functions: ${file(./functions.yml)}: only the Framework
			// reads it, and without the functions there is nothing to
			// convert; its resolved configuration has them.
			return nil, funcs.errf("the functions are %s, which the Serverless Framework resolves when deploying: convert the resolved configuration instead (serverless print --stage <stage> > serverless.resolved.yml)", s)
		}
		return nil, funcs.errf("functions must be an object of function definitions, got %s", funcs.describe())
	}
	var fns []*function
	for _, key := range funcs.keys() {
		fn := newFunction(r, p.file.Path)
		fv := fn.rooted(funcs.get(key))
		pv := fn.rooted(prov)
		abs := fn.tracker(p.file.Path, p.pos, "")
		if err := readSlsFunction(fn, r, svcName, key, fv, pv, abs, regionNote); err != nil {
			return nil, err
		}
		fns = append(fns, fn)
	}
	if len(fns) == 0 {
		return nil, funcs.errf("serverless.yml defines no functions")
	}
	t := fns[0].tracker(p.file.Path, p.pos, "")
	for _, k := range doc.keys() {
		if k == "provider" || k == "functions" || doc.get(k).absent() {
			continue
		}
		if k == "service" && svcNote != "" {
			t.Warn(k, "service names", svcNote)
			continue
		}
		switch why, known := slsDrops[k]; {
		case !known && doc.get(k).n != nil && doc.get(k).n.Anchor != "":
			// defaults: &defaults {memorySize: 512}, merged into
			// functions with <<: *defaults.
			t.Drop(k, fmt.Sprintf("holds the YAML anchor &%s; what it holds is reported where it is used (<<: *%s)", doc.get(k).n.Anchor, doc.get(k).n.Anchor))
		case k == "plugins":
			t.Warn(k, "", "plugins change what the Framework deploys ("+doc.get(k).text()+"); check each for behaviour the conversion misses")
		case known && why == "":
			t.Use(k)
		case known:
			t.Drop(k, why)
		default:
			t.Drop(k, "cutover does not map this key")
		}
	}
	return fns, nil
}

func readSlsFunction(fn *function, r *sls, svcName, key string, f, prov val, abs *source.Tracker, regionNote string) error {
	fn.root = f
	fn.svc.Name = kebab(svcName + "-" + key)
	fn.region = r.region
	fn.defaultMemoryMB, fn.defaultTimeout = 1024, 6
	fn.eventsAt = f.get("events")
	prov.t.Use("name")
	if v := prov.get("region"); !v.absent() {
		report(v, "AWS_REGION", regionNote)
	}
	if v := prov.get("stage"); !v.absent() {
		if r.perDeployment() {
			v.t.Warn(v.field, "values environments.<env>.fill", fmt.Sprintf("each deployment chose its stage; each environment deploys as the stage of its name (%s), and the values that depend on the stage are resolved per environment", r.stageList()))
		} else {
			report(v, "AWS_LAMBDA_FUNCTION_NAME (the stage is part of it)", r.stageNote)
		}
	}

	// The deployed name: name, else <service>-<stage>-<function>.
	if v := f.get("name"); !v.absent() {
		lit, ref, note := fn.text(v, "functionName", "the deployed function name, which the code reads from AWS_LAMBDA_FUNCTION_NAME")
		if ref != "" {
			fn.nameValue = ref
		} else {
			fn.name = lit
			report(v, "AWS_LAMBDA_FUNCTION_NAME", note)
		}
	} else if r.svcUnknown != "" {
		fn.nameValue = fn.fill(f.get("name"), "functionName", "", fmt.Sprintf("the deployed function name, which the code reads from AWS_LAMBDA_FUNCTION_NAME: <service>-%s-%s, and the service name is not known when converting (%s)", r.stage, key, r.svcUnknown))
	} else {
		fn.name = svcName + "-" + r.stage + "-" + key
		if r.perDeployment() {
			vals, unknown := map[string]string{}, []string(nil)
			for _, env := range r.envs {
				if st, ok := r.stageFor(env); ok {
					vals[env] = svcName + "-" + st + "-" + key
				} else {
					unknown = append(unknown, env)
				}
			}
			fn.nameValue = fn.perEnvValue(f.get("name"), "functionName", "the deployed function name, <service>-<stage>-"+key+", which the code reads from AWS_LAMBDA_FUNCTION_NAME,", vals, unknown)
		}
	}

	// pick returns the function's own setting, else the provider's.
	pick := func(fk, pk string) val {
		if v := f.get(fk); !v.absent() {
			if pv := prov.get(pk); !pv.absent() {
				pv.t.Use(pv.field)
			}
			return v
		}
		return prov.get(pk)
	}

	if err := fn.slsImage(f, prov, abs); err != nil {
		return err
	}
	if !fn.packageImage {
		if err := fn.readRuntime(pick("runtime", "runtime")); err != nil {
			return err
		}
		if v := f.get("handler"); !v.absent() {
			lit, ref, note := fn.text(v, "handler", "the function's handler")
			fn.handlerAt, fn.imageAt = v, v
			if ref != "" {
				fn.handlerValue = ref
			} else {
				fn.handler = lit
				fn.codeHint = "the service's code, packaged by `serverless package`; handler " + lit
				report(v, "_HANDLER and the entrypoint's argument", note)
			}
		} else {
			return f.errf("function %q has neither handler nor image", key)
		}
	} else if v := prov.get("runtime"); !v.absent() {
		v.t.Use(v.field)
	}

	fn.memoryAt = pick("memorySize", "memorySize")
	if v := fn.memoryAt; !v.absent() {
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
	} else {
		fn.memoryAt = f.get("memorySize")
	}
	fn.timeoutAt = pick("timeout", "timeout")
	if v := fn.timeoutAt; !v.absent() {
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
	} else {
		fn.timeoutAt = f.get("timeout")
	}
	fn.reservedAt = f.get("reservedConcurrency")
	if v := fn.reservedAt; !v.absent() {
		n, _, ok, err := fn.num(v)
		if err != nil {
			return err
		}
		if ok {
			if err := fn.setReserved(v, n); err != nil {
				return err
			}
		}
	}
	if v := f.get("provisionedConcurrency"); !v.absent() {
		if n, note, ok, err := fn.num(v); err != nil {
			return err
		} else if ok {
			fn.provisioned, fn.provisionedAt = n, v
			noProvisioned(v, n, note)
		}
	}
	if v := f.get("ephemeralStorageSize"); !v.absent() {
		if n, _, ok, err := fn.num(v); err != nil {
			return err
		} else if ok {
			if err := fn.setEphemeral(v, n); err != nil {
				return err
			}
		}
	}
	if v := pick("architecture", "architecture"); !v.absent() {
		if a, _, ok := fn.word(v); ok {
			if err := fn.setArchitectures(v, []string{a}); err != nil {
				return err
			}
		}
	}
	if err := fn.slsRole(f, prov); err != nil {
		return err
	}
	// serverless-iam-roles-per-function: the function's own role.
	if v := f.get("iamRoleStatements"); !v.absent() {
		v.t.Warn(v.field, "", "permissions of the function's own role (serverless-iam-roles-per-function): attach them to this service's IRSA role ("+v.text()+")")
	}
	for _, k := range []string{"iamRoleStatementsName", "iamRoleStatementsInherit", "iamPermissionsBoundary"} {
		if v := f.get(k); !v.absent() {
			v.t.Warn(v.field, "", "how serverless-iam-roles-per-function builds the function's own role ("+v.text()+"): build this service's IRSA role the same way")
		}
	}

	// Environment and tags merge, the function's keys winning.
	for _, k := range []string{"environment", "tags"} {
		own, shared := fn.object(f.get(k), abs), fn.object(prov.get(k), abs)
		for _, x := range []val{own, shared} {
			if !x.absent() && !x.isMap() {
				x.t.Fill(x.field, "", x.text()+" cannot be resolved outside the Framework: add its "+k+" to values")
			}
		}
		m := own
		if !own.isMap() {
			m = val{t: f.t, field: k}
		}
		if shared.isMap() {
			m.over = &shared
		}
		if k == "environment" {
			for _, name := range m.keys() {
				fn.addEnv(name, m.get(name))
			}
		} else {
			fn.setTags(m)
		}
	}
	fn.readVPC(pick("vpc", "vpc"))
	fn.readLayers(pick("layers", "layers"), "")
	if v := f.get("onError"); !v.absent() {
		fn.readDLQ(v)
	}
	if v := f.get("tracing"); !v.absent() {
		if s, _ := v.raw(); s == "Active" || s == "true" {
			fn.readTracing(val{n: nodeStr("Active"), t: v.t, field: v.field})
		} else {
			fn.readTracing(v)
		}
	} else if v := prov.get("tracing"); !v.absent() {
		l := v.get("lambda")
		if s, _ := l.raw(); s == "Active" || s == "true" {
			fn.readTracing(val{n: nodeStr("Active"), t: l.t, field: l.field})
		} else if !l.absent() {
			l.t.Drop(l.field, "pass-through tracing is the default: nothing to carry over")
		}
		if a := v.get("apiGateway"); !a.absent() {
			a.t.Drop(a.field, "API Gateway tracing; the Gateway's own tracing replaces it")
		}
	}
	if fs := f.get("fileSystemConfig"); !fs.absent() {
		a, err := fs.get("arn").str()
		if err != nil {
			return err
		}
		m, err := fs.get("localMountPath").str()
		if err != nil {
			return err
		}
		if err := fn.addEFS(fs, a, m, fs.get("arn"), fs.get("localMountPath")); err != nil {
			return err
		}
	}
	if v := f.get("url"); !v.absent() {
		on := true
		if b, err := v.boolean(); err == nil {
			on = b
		}
		if on {
			tr := &trigger{Trigger: service.Trigger{Kind: service.TriggerHTTP, Name: "url", Enabled: true, EventShape: "apigw-v2", Route: &service.Route{Path: catchAll}}, at: v}
			fn.addRoute(service.Route{Path: "/"})
			if v.isMap() {
				// Each setting is reported by urlOptions; one it does
				// not read must not be covered by the whole.
				fn.urlOptions(v, "authorizer", "cors", "invokeMode")
			} else {
				v.t.Use(v.field)
			}
			fn.addTrigger(tr)
		} else {
			v.t.Use(v.field)
		}
	}
	for _, k := range f.keys() {
		if why, ok := slsFunctionDrops[k]; ok && why != "" {
			if v := f.get(k); !v.absent() {
				v.t.Drop(v.field, why)
			}
		}
	}
	// Images under provider.ecr are reported by the functions that use
	// them.
	prov.t.Use("ecr")
	for _, k := range prov.keys() {
		if why, ok := slsProviderDrops[k]; ok && why != "" {
			if v := prov.get(k); !v.absent() {
				v.t.Drop(v.field, why)
			}
		}
	}
	events := fn.object(f.get("events"), abs)
	if !events.absent() && !events.isSeq() {
		return events.errf("events must be a list, got %s", events.describe())
	}
	for _, ev := range events.items() {
		if err := fn.slsEvent(fn.object(ev, abs), abs); err != nil {
			return err
		}
	}
	return nil
}

// slsImage reads an Image function: image is a URI, the name of an
// image under provider.ecr.images, or {name|uri, command, entryPoint,
// workingDirectory}.
func (fn *function) slsImage(f, prov val, abs *source.Tracker) error {
	iv := f.get("image")
	if iv.absent() {
		return nil
	}
	fn.packageImage = true
	fn.imageAt = iv
	ref := iv
	if iv.isMap() {
		if err := fn.readImageConfig(iv, "entryPoint", "command", "workingDirectory"); err != nil {
			return err
		}
		ref = iv.get("uri")
		if ref.absent() {
			ref = iv.get("name")
		}
	}
	s := fn.res.resolve(ref)
	if !s.ok {
		fn.imageValue = fn.fill(ref, "image", s.def, "the function's container image: "+s.reason)
		return nil
	}
	if strings.ContainsAny(s.text, "/:@") {
		fn.setImage(ref, s.text)
		return nil
	}
	// A name of an image the Framework builds or names in provider.ecr.
	img := prov.get("ecr").get("images").get(s.text)
	if img.absent() {
		return ref.errf("image %q is neither an image URI nor a name under provider.ecr.images", s.text)
	}
	ref.t.Use(ref.field)
	if u := img.get("uri"); !u.absent() {
		fn.setImage(u, "")
		return nil
	}
	how := img.text()
	for _, k := range img.keys() {
		img.get(k).t.Use(img.get(k).field)
	}
	fn.imageValue = fn.fill(img, "image", "", "the function's container image, which the Framework built from provider.ecr.images."+s.text+" ("+how+"): build and push it, and name it here")
	return nil
}

// slsRole maps the execution role: a function's role, else provider.iam.role
// (or the older provider.role); the Framework generates one otherwise.
func (fn *function) slsRole(f, prov val) error {
	rv := f.get("role")
	if rv.absent() {
		rv = prov.get("iam").get("role")
		if rv.absent() {
			rv = prov.get("role")
		}
	} else {
		prov.get("iam").get("role").t.Use(prov.get("iam").get("role").field)
	}
	for _, k := range []string{"iamRoleStatements", "iamManagedPolicies"} {
		if v := prov.get(k); !v.absent() {
			v.t.Warn(v.field, "", "permissions of the role the Framework generated: attach them to the IRSA role")
		}
	}
	if v := prov.get("iam").get("deploymentRole"); !v.absent() {
		v.t.Drop(v.field, "the role CloudFormation deploys with")
	}
	if s, ok := rv.raw(); ok && !strings.HasPrefix(s, "arn:") && !strings.Contains(s, "${") {
		fn.svc.ServiceAccount = &service.ServiceAccount{FormerPrincipal: "lambda.amazonaws.com"}
		fn.svc.ServiceAccount.RoleValue = fn.fill(rv, "roleArn", "", fmt.Sprintf("the IAM role %s the service's resources define: create an IRSA role with its permissions (or reuse it, with a trust policy for the cluster's OIDC provider)", s))
		return nil
	}
	if rv.isMap() && !isIntrinsicMap(rv) {
		// {name, statements, managedPolicies, …}: a role the Framework
		// generates with these permissions.
		fn.svc.ServiceAccount = &service.ServiceAccount{FormerPrincipal: "lambda.amazonaws.com"}
		fn.svc.ServiceAccount.RoleValue = fn.fill(rv, "roleArn", "", "the IAM role for the pod: the Framework generated one from provider.iam.role; create an IRSA role with the same permissions")
		for _, k := range rv.keys() {
			v := rv.get(k)
			switch k {
			case "statements", "managedPolicies":
				v.t.Warn(v.field, "", "permissions of the role the Framework generated: attach them to the IRSA role ("+v.text()+")")
			case "permissionsBoundary":
				v.t.Warn(v.field, "", "the boundary of the role the Framework generated ("+v.text()+"): give the IRSA role the same boundary")
			case "path", "tags":
				v.t.Drop(v.field, "the "+k+" of the role the Framework generated: give the IRSA role the same if your conventions need it")
			default:
				v.t.Use(v.field)
			}
		}
		return nil
	}
	if rv.absent() {
		fn.svc.ServiceAccount = &service.ServiceAccount{FormerPrincipal: "lambda.amazonaws.com"}
		fn.svc.ServiceAccount.RoleValue = fn.fill(rv, "roleArn", "", "the IAM role for the pod: the Framework generated one (IamRoleLambdaExecution, logs only unless provider.iam adds statements); create an IRSA role with the same permissions")
		return nil
	}
	return fn.setRole(rv)
}

// slsEvent reads one entry of a function's events.
func (fn *function) slsEvent(ev val, abs *source.Tracker) error {
	keys := ev.keys()
	if !ev.isMap() || len(keys) != 1 {
		return ev.errf("an event is an object with one key (http, sqs, schedule, …), got %s", ev.describe())
	}
	typ := keys[0]
	p := fn.object(ev.get(typ), abs)
	// Not ev itself: that would cover every key under the event, and an
	// event setting no handler reads must be reported, not vanish.
	tr := &trigger{Trigger: service.Trigger{Enabled: true}, at: p}
	switch typ {
	case "http", "httpApi", "alb":
		return fn.slsHTTP(tr, typ, p)
	case "schedule":
		return fn.slsSchedule(tr, p)
	case "sqs":
		tr.Kind, tr.Name = service.TriggerSQS, "sqs"
		src := p
		if p.isMap() {
			src = p.get("arn")
		}
		if err := fn.queueSource(tr, src); err != nil {
			return err
		}
		if tr.Source != "" {
			tr.Name = "sqs-" + lastSegment(tr.Source)
		}
	case "stream":
		src := p
		if p.isMap() {
			src = p.get("arn")
		}
		tr.Kind, tr.Name = service.TriggerKinesis, "stream"
		if t, _ := p.get("type").raw(); t == "dynamodb" {
			tr.Kind, tr.Name = service.TriggerDynamoDB, "dynamodb"
		}
		if p.isMap() {
			p.t.Use(p.get("type").field)
		}
		if err := fn.streamSource(tr, src); err != nil {
			return err
		}
		if tr.Source != "" {
			if a, err := parseARN(tr.Source); err == nil {
				tr.Name = a.Service + "-" + streamName(a)
			}
		}
	case "kafka", "msk":
		if err := fn.slsKafka(tr, typ, p); err != nil {
			return err
		}
	default:
		p.t.Drop(p.field, fmt.Sprintf("%s events have no Kubernetes source: keep the %s on AWS and have it call the function's HTTP route, or send to a queue the worker consumes", typ, eventNoun(slsEventNoun(typ))))
		return nil
	}
	if p.isMap() {
		keys := slsMappingKeys
		if typ == "stream" && !p.get("batchWindow").absent() && p.get("maximumBatchingWindow").absent() {
			// Stream events name the batching window batchWindow; SQS
			// events name it maximumBatchingWindow.
			keys = map[string]string{}
			for k, v := range slsMappingKeys {
				keys[k] = v
			}
			keys["MaximumBatchingWindowInSeconds"] = "batchWindow"
		}
		if err := fn.mappingCommon(tr, p, keys); err != nil {
			return err
		}
		if v := p.get("destinations").get("onFailure"); !v.absent() {
			v.t.Warn(v.field, "", fmt.Sprintf("serve does not send failed records to %s: a failed batch is retried per maximumRetryAttempts and then skipped; alert on serve's failure metric", v.text()))
		}
		if v := p.get("consumer"); !v.absent() {
			v.t.Warn(v.field, "", "the stream's enhanced fan-out consumer has no serve counterpart: serve reads the shards with GetRecords, sharing their read throughput with other readers")
		}
		for _, k := range p.keys() {
			want, ok := slsCFNSpellings[k]
			if v := p.get(k); ok && !v.absent() && p.get(want).absent() {
				v.t.Drop(v.field, fmt.Sprintf("%s is CloudFormation's spelling; the Framework's %s event calls it %s and ignores %s (or refuses it under configValidationMode: error), so the deployed mapping did not have it: rename it if it should hold", k, typ, want, k))
			}
		}
		if v := p.get("batchWindow"); !v.absent() && typ != "stream" {
			v.t.Drop(v.field, "batchWindow is a stream event setting: the Framework's schema has none on "+typ+" events (it warns and ignores it, or refuses it under configValidationMode: error), so Lambda did not batch by it; maximumBatchingWindow is their batching window")
		}
	}
	fn.addTrigger(tr)
	return nil
}

// slsCFNSpellings are event source mapping settings written the way
// CloudFormation spells them, which the Framework does not read, with
// the Framework's name.
var slsCFNSpellings = map[string]string{
	"maximumBatchingWindowInSeconds": "maximumBatchingWindow",
	"destinationConfig":              "destinations",
	"functionResponseTypes":          "functionResponseType",
}

func slsEventNoun(typ string) string {
	switch typ {
	case "s3":
		return "S3"
	case "sns":
		return "SNS"
	case "eventBridge", "cloudwatchEvent":
		return "EventBridgeRule"
	}
	return typ
}

// slsMappingKeys are the Framework's names for event source mapping
// fields.
var slsMappingKeys = map[string]string{
	"BatchSize":                        "batchSize",
	"MaximumBatchingWindowInSeconds":   "maximumBatchingWindow",
	"StartingPosition":                 "startingPosition",
	"StartingPositionTimestamp":        "startingPositionTimestamp",
	"Enabled":                          "enabled",
	"ScalingConfig.MaximumConcurrency": "maximumConcurrency",
	"FunctionResponseTypes":            "functionResponseType",
	"FilterCriteria":                   "filterPatterns",
	"MaximumRetryAttempts":             "maximumRetryAttempts",
	"MaximumRecordAgeInSeconds":        "maximumRecordAgeInSeconds",
	"BisectBatchOnFunctionError":       "bisectBatchOnFunctionError",
	"ParallelizationFactor":            "parallelizationFactor",
	"TumblingWindowInSeconds":          "tumblingWindowInSeconds",
}

// slsHTTP reads http (REST API, payload v1), httpApi (payload v2 unless
// provider.httpApi.payload says 1.0) and alb events.
func (fn *function) slsHTTP(tr *trigger, typ string, p val) error {
	tr.Kind = service.TriggerHTTP
	tr.Name = typ
	shape := map[string]string{"http": "apigw-v1", "httpApi": "apigw-v2", "alb": "alb"}[typ]
	if typ == "httpApi" {
		if s, ok := fn.res.(*sls).doc.get("provider").get("httpApi").get("payload").raw(); ok && s == "1.0" {
			shape = "apigw-v1"
		}
	}
	tr.EventShape = shape
	var method, path string
	switch {
	case p.isScalar():
		s, note, ok := fn.word(p)
		if !ok {
			return nil
		}
		if s == "*" {
			method, path = "", catchAll
		} else {
			m, pth, found := strings.Cut(strings.TrimSpace(s), " ")
			if !found {
				return p.errf("want \"METHOD path\", got %q", s)
			}
			method, path = m, strings.TrimSpace(pth)
		}
		report(p, "HTTPRoute and serve --route", note)
	case typ == "alb":
		c := p.get("conditions")
		paths, err := c.get("path").strs()
		if err != nil {
			return err
		}
		methods, err := c.get("method").strs()
		if err != nil {
			return err
		}
		if len(paths) > 0 {
			path = paths[0]
		}
		if len(methods) > 0 {
			method = methods[0]
		}
		if len(paths) > 1 || len(methods) > 1 {
			c.t.Warn(c.field, "HTTPRoute", "the listener rule matched several paths or methods; the route takes the first of each: add the others in values")
		} else {
			c.t.Mapped(c.field, "HTTPRoute and serve --route")
		}
		for _, k := range []string{"host", "header", "query", "ip"} {
			if v := c.get(k); !v.absent() {
				v.t.Warn(v.field, "HTTPRoute", "an ALB "+k+" condition: add it to the HTTPRoute's matches in values")
			}
		}
		for _, k := range []string{"listenerArn", "priority"} {
			if v := p.get(k); !v.absent() {
				v.t.Drop(v.field, "the ALB listener rule stays on AWS until cutover shift moves the traffic to the Gateway")
			}
		}
		for _, k := range []string{"multiValueHeaders", "healthCheck", "targetGroupName"} {
			if v := p.get(k); !v.absent() {
				v.t.Warn(v.field, "", "ALB target group setting "+k+": serve builds ALB events with single-value headers; check the function's expectations")
			}
		}
	default:
		pv, mv := p.get("path"), p.get("method")
		if s, note, ok := fn.word(pv); ok {
			path = s
			report(pv, "HTTPRoute path and serve --route", note)
		}
		if s, note, ok := fn.word(mv); ok {
			method = s
			report(mv, "HTTPRoute method and serve --route", note)
		}
		if pv.absent() && typ == "http" {
			return p.errf("an http event needs a path")
		}
		if pv.absent() {
			path = catchAll
		}
		for _, k := range []string{"authorizer", "private"} {
			if v := p.get(k); !v.absent() {
				v.t.Warn(v.field, "", "API Gateway authorized these requests ("+v.text()+"); nothing checks them in front of the pod: enforce the same at the Gateway before exposing the route")
			}
		}
		for _, k := range []string{"cors", "request", "response", "integration", "async", "operationId", "caching", "timeout"} {
			if v := p.get(k); !v.absent() {
				v.t.Drop(v.field, "an API Gateway route setting ("+k+") with no counterpart in the HTTPRoute; enforce it in the code or the Gateway")
			}
		}
	}
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	method = strings.ToUpper(method)
	if method == "ANY" || method == "*" {
		method = ""
	}
	tr.Route = &service.Route{Path: path, Method: method}
	fn.addRoute(service.Route{Path: routePrefix(path), Method: method})
	fn.addTrigger(tr)
	return nil
}

// slsSchedule reads a schedule event: an expression, or {rate: expr or
// [expr, …], enabled, input, …}. Each expression is a trigger.
func (fn *function) slsSchedule(tr *trigger, p val) error {
	tr.Kind = service.TriggerSchedule
	rates := []val{p}
	if p.isMap() {
		rv := p.get("rate")
		if rv.isSeq() {
			rates = rv.items()
		} else {
			rates = []val{rv}
		}
	}
	var input string
	enabled := true
	if p.isMap() {
		if v := p.get("input"); !v.absent() {
			if v.isMap() {
				input = compactJSON(v)
				v.t.Mapped(v.field, "serve --input")
			} else if s := fn.res.resolve(v); s.ok {
				input = s.text
				report(v, "serve --input", s.note)
			} else {
				v.t.Warn(v.field, "", "the schedule's input cannot be resolved ("+s.reason+"): pass --input in values")
			}
		}
		if v := p.get("enabled"); !v.absent() {
			if b, _, ok, err := fn.flag(v); err != nil {
				return err
			} else if ok && !b {
				enabled = false
				v.t.Warn(v.field, "", "the schedule was disabled: suspend the CronJob in values")
			} else {
				v.t.Use(v.field)
			}
		}
		if v := p.get("timezone"); !v.absent() {
			fn.scheduleTimeZone(tr, v)
		}
		for _, k := range []string{"name", "description", "method"} {
			if v := p.get(k); !v.absent() {
				v.t.Drop(v.field, "the EventBridge rule's "+k)
			}
		}
		for _, k := range []string{"inputPath", "inputTransformer"} {
			if v := p.get(k); !v.absent() {
				v.t.Warn(v.field, "", "EventBridge "+k+" shaped the event; serve delivers --input or the default scheduled event")
			}
		}
	}
	for i, rv := range rates {
		t := *tr
		t.Name = "schedule"
		if len(rates) > 1 {
			t.Name = fmt.Sprintf("schedule-%d", i)
		}
		t.Input, t.Enabled = input, enabled
		expr, note, ok := fn.word(rv)
		if !ok {
			return rv.errf("the schedule expression cannot be resolved, and a CronJob needs one")
		}
		if err := fn.setSchedule(&t, rv, expr, note); err != nil {
			return err
		}
		fn.addTrigger(&t)
	}
	return nil
}

// slsKafka reads kafka (self-managed) and msk events.
func (fn *function) slsKafka(tr *trigger, typ string, p val) error {
	tr.Kind, tr.Name = service.TriggerKafka, typ
	if typ == "msk" {
		av := p.get("arn")
		s := fn.res.resolve(av)
		if !s.ok {
			tr.BrokersValue = fn.fill(av, service.FillKey(typ, "brokers"), "", "the bootstrap servers of the MSK cluster "+av.text()+", comma-separated (aws kafka get-bootstrap-brokers): "+s.reason)
		} else if err := fn.mskCluster(tr, av, s.text); err != nil {
			return err
		}
	} else {
		bv := p.get("bootstrapServers")
		brokers, err := bv.strs()
		if err != nil {
			return err
		}
		if len(brokers) == 0 {
			return bv.errf("a kafka event needs bootstrapServers")
		}
		tr.Brokers = brokers
		bv.t.Mapped(bv.field, "KEDA kafka bootstrapServers and serve --brokers")
	}
	tv := p.get("topic")
	topic, note, ok := fn.word(tv)
	if !ok || topic == "" {
		return tv.errf("a %s event needs a topic", typ)
	}
	tr.Source, tr.Name = topic, "kafka-"+topic
	report(tv, "KEDA kafka topic and serve --topic", note)
	if g := p.get("consumerGroupId"); !g.absent() {
		lit, ref, note := fn.text(g, service.FillKey(tr.Name, "consumerGroup"), "the Kafka consumer group")
		if ref != "" {
			tr.ConsumerGroupValue = ref
		} else {
			tr.ConsumerGroup = lit
			report(g, "KEDA kafka consumerGroup and serve --consumer-group", note)
		}
	} else {
		tr.ConsumerGroupValue = fn.fill(g, service.FillKey(tr.Name, "consumerGroup"), "",
			"the consumer group Lambda used: the event source mapping's UUID (aws lambda list-event-source-mappings --function-name "+fn.name+"); the same group continues from its offsets, a new one starts at startingPosition")
	}
	ac := p.get("accessConfigurations")
	for _, k := range ac.keys() {
		v := ac.get(k)
		typ := map[string]string{
			"saslScram512Auth": "SASL_SCRAM_512_AUTH", "saslScram256Auth": "SASL_SCRAM_256_AUTH", "saslPlainAuth": "BASIC_AUTH",
			"clientCertificateTlsAuth": "CLIENT_CERTIFICATE_TLS_AUTH", "serverRootCaCertificate": "SERVER_ROOT_CA_CERTIFICATE",
		}[k]
		if typ == "" {
			v.t.Warn(v.field, "", "Lambda reached the brokers through "+k+" "+v.text()+"; the pods reach them from the cluster's VPC: check routes and security groups")
			continue
		}
		s, err := v.str()
		if err != nil {
			return err
		}
		fn.addKafkaSecret(tr, typ, s, v)
	}
	if v := p.get("saslScram512"); !v.absent() {
		s, err := v.str()
		if err != nil {
			return err
		}
		fn.addKafkaSecret(tr, "SASL_SCRAM_512_AUTH", s, v)
	}
	return nil
}

// addKafkaSecret makes a Kafka credential in Secrets Manager an
// ExternalSecret key serve reads.
func (fn *function) addKafkaSecret(tr *trigger, typ, uri string, at val) {
	name := envName("CUTOVER", tr.Name, typ)
	sec := service.Secret{Name: name, Source: service.SecretsManager, Key: uri}
	if a, err := parseARN(uri); err == nil {
		sec.Region = a.Region
	}
	fn.svc.Secrets = append(fn.svc.Secrets, sec)
	fn.env = append(fn.env, service.EnvVar{Name: name, Secret: name})
	tr.flags = append(tr.flags, "--auth", typ, "--auth-secret-env", name)
	at.t.Mapped(at.field, "ExternalSecret key "+name+" and serve --auth "+typ)
}

// fallbackServiceName names a service whose serverless.yml names it only
// through a variable resolved when deploying: after the input's
// directory, else its file name.
func fallbackServiceName(path string) string {
	dir := filepath.Base(filepath.Dir(path))
	if dir == "." || dir == "/" || dir == "" {
		dir = strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	}
	if n := kebab(dir); n != "" {
		return n
	}
	return "serverless"
}
