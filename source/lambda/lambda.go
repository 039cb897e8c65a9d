// Package lambda imports AWS Lambda functions: the AWS CLI's JSON
// (get-function, get-function-configuration, list-functions,
// list-event-source-mappings, get-function-url-config, and
// create-event-source-mapping input), AWS SAM templates
// and Serverless Framework serverless.yml files. Each function becomes one
// service.Service that runs the function's own code, unmodified, under
// `cutover lambda serve`, which serves it the Lambda Runtime API and feeds
// it from the function's triggers.
//
// # The serve command contract
//
// The container command this package writes is
//
//	cutover lambda serve [--source <kind> <flags>…]… -- <entrypoint>
//
// with the function's handler as the container's args. Flags after a
// --source belong to that source: http (--port, --route "<shape> <METHOD>
// <path>", and --response-stream for a function URL in RESPONSE_STREAM
// mode), sqs (--queue-url), kinesis and dynamodb (--stream-arn, and
// --checkpoint-configmap: the ConfigMap keeping the per-shard checkpoint and
// the Lease electing the one replica that consumes, see
// service.Service.Checkpoints), kafka
// (--brokers, --topic, --consumer-group, --auth, --auth-secret-env),
// each with --region, --batch-size, --batch-window, --starting-position,
// --starting-timestamp, --report-batch-item-failures, --max-retries,
// --max-record-age and --bisect-on-error as the trigger had them; schedule (--input) runs one
// invocation and exits, as does job. A value the user fills reaches a flag
// as $(ENV_NAME), which Kubernetes expands from the container's
// environment.
//
// One replica runs one invocation at a time, as one Lambda execution
// environment does, so reserved concurrency becomes the replica cap. A
// stream is the exception: one replica consumes it, the others stand by,
// so a function that consumes only streams runs two replicas and no
// autoscaler.
package lambda

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/cutoverhq/cutover/service"
	"github.com/cutoverhq/cutover/source"
)

func init() { source.Register("lambda", Importer{}) }

// Importer is the Lambda importer.
type Importer struct{}

var _ source.Importer = Importer{}

// docKind is what one input file is.
type docKind int

const (
	docUnknown    docKind = iota
	docFunction           // get-function or get-function-configuration
	docFunctions          // list-functions
	docMappings           // list-event-source-mappings
	docMapping            // one event source mapping
	docURL                // get-function-url-config
	docSAM                // SAM template
	docServerless         // serverless.yml
	// docCloudFormation is a plain CloudFormation template with
	// AWS::Lambda::Function resources: hand-written, or cdk synth's.
	docCloudFormation
)

// Detect recognises Lambda CLI JSON by its keys, SAM templates by their
// transform or function type, and serverless.yml by functions+provider.
func (Importer) Detect(f source.File) bool {
	if isJSON(f.Data) {
		var top map[string]json.RawMessage
		if json.Unmarshal(f.Data, &top) != nil {
			return false
		}
		switch classifyKeys(top) {
		case docUnknown:
			return false
		case docCloudFormation:
			return hasAppFunction(f)
		}
		return true
	}
	if !bytes.Contains(f.Data, []byte("AWS::Serverless")) && !bytes.Contains(f.Data, []byte("AWS::Lambda::Function")) && !(bytes.Contains(f.Data, []byte("functions")) && bytes.Contains(f.Data, []byte("provider"))) {
		return false
	}
	var root yaml.Node
	if yaml.Unmarshal(f.Data, &root) != nil {
		return false
	}
	switch classify(&root) {
	case docUnknown:
		return false
	case docCloudFormation:
		return hasAppFunction(f)
	}
	return true
}

// hasAppFunction says whether a plain CloudFormation template holds a
// function that is not a deploy-time handler (deployTimeHandlers): an ECS
// stack whose only functions are CDK's log retention and custom resources
// is the ECS importer's alone.
func hasAppFunction(f source.File) bool {
	root, pos, err := parseDoc(f)
	if err != nil {
		return false
	}
	doc := (&part{file: f, root: root, pos: pos}).docVal()
	res := doc.get("Resources")
	types := newCFN(doc).resources
	handlers := deployTimeHandlers(res, types)
	for _, id := range res.keys() {
		if types[id] == "AWS::Lambda::Function" && handlers[id] == "" {
			return true
		}
	}
	return false
}

func classifyKeys(top map[string]json.RawMessage) docKind {
	has := func(k string) bool {
		v, ok := top[k]
		return ok && string(v) != "null"
	}
	switch {
	case has("Resources") && (bytes.Contains(top["Resources"], []byte("AWS::Serverless::Function")) || bytes.Contains(top["Transform"], []byte("AWS::Serverless"))):
		return docSAM
	case has("Configuration"):
		return docFunction
	case has("FunctionName") && (has("EventSourceArn") || has("SelfManagedEventSource")) && !has("Runtime") && !has("Handler") && !has("PackageType"):
		// create-event-source-mapping input (--cli-input-json): the
		// function by FunctionName, not FunctionArn.
		return docMapping
	case has("FunctionName") && (has("Runtime") || has("PackageType") || has("FunctionArn") || has("Handler")):
		return docFunction
	case has("Functions"):
		return docFunctions
	case has("EventSourceMappings"):
		return docMappings
	case has("FunctionUrl") && has("FunctionArn"):
		return docURL
	case has("FunctionArn") && (has("EventSourceArn") || has("SelfManagedEventSource") || has("UUID")):
		return docMapping
	case has("functions") && has("provider"):
		return docServerless
	case has("Resources") && bytes.Contains(top["Resources"], []byte("AWS::Lambda::Function")):
		return docCloudFormation
	}
	return docUnknown
}

// classify looks at a parsed document's top-level keys.
func classify(root *yaml.Node) docKind {
	n := deref(root)
	if n == nil || n.Kind != yaml.MappingNode {
		return docUnknown
	}
	top := map[string]json.RawMessage{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i].Value, deref(n.Content[i+1])
		switch {
		case v == nil || v.Kind == yaml.ScalarNode && v.Tag == "!!null":
			top[k] = json.RawMessage("null")
		case k == "Resources" || k == "Transform":
			b, _ := yaml.Marshal(v)
			top[k] = b
		default:
			top[k] = json.RawMessage("1")
		}
	}
	return classifyKeys(top)
}

// part is a parsed input file.
type part struct {
	file source.File
	root *yaml.Node
	pos  *source.Positions
	kind docKind
}

// docVal returns the file's root value, read through a tracker that the
// caller re-roots per function (see function.rooted).
func (p *part) docVal() val {
	var r service.Report
	return val{n: p.root, t: source.NewTracker(p.file.Path, p.pos, &r)}
}

// Import reads the files, groups event source mappings and function URLs
// with the function their FunctionArn names, and returns one service per
// function, in input order.
func (Importer) Import(ctx context.Context, files []source.File, opts source.Options) ([]*service.Service, error) {
	var parts []*part
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		root, pos, err := parseDoc(f)
		if err != nil {
			return nil, err
		}
		p := &part{file: f, root: root, pos: pos, kind: classify(root)}
		if p.kind == docUnknown {
			return nil, &source.InputError{File: f.Path, Err: fmt.Errorf("not a Lambda input: want get-function, get-function-configuration, list-functions, list-event-source-mappings or get-function-url-config JSON, a SAM or CloudFormation template (cdk synth output) or a serverless.yml")}
		}
		parts = append(parts, p)
	}
	var fns []*function
	for _, p := range parts {
		var got []*function
		var err error
		switch p.kind {
		case docFunction:
			fn := newFunction(plainResolver{}, p.file.Path)
			err = readCLIFunction(fn, fn.rooted(p.docVal()))
			got = []*function{fn}
		case docFunctions:
			for _, it := range p.docVal().get("Functions").items() {
				fn := newFunction(plainResolver{}, p.file.Path)
				if err = readCLIFunction(fn, fn.rooted(it)); err != nil {
					break
				}
				got = append(got, fn)
			}
			if nm := p.docVal().get("NextMarker"); err == nil && !nm.absent() && len(got) > 0 {
				got[0].tracker(p.file.Path, p.pos, "").Warn("NextMarker", "", "the list is paginated and only its first page was given: functions on later pages are missing (aws lambda list-functions returns every page unless --max-items is set)")
			}
		case docSAM:
			got, err = readSAM(p)
		case docCloudFormation:
			got, err = readCFN(p)
		case docServerless:
			got, err = readServerless(p, opts)
		}
		if err != nil {
			return nil, err
		}
		fns = append(fns, got...)
	}
	if err := attach(fns, parts); err != nil {
		return nil, err
	}
	if err := uniqueNames(fns); err != nil {
		return nil, err
	}
	var out []*service.Service
	for _, fn := range fns {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		svc, err := fn.finish()
		if err != nil {
			return nil, err
		}
		out = append(out, svc)
	}
	return out, nil
}

// attach gives each event source mapping and function URL to the function
// its FunctionArn names. One that names no function among the inputs is an
// error: a trigger must not vanish from the conversion unnoticed.
func attach(fns []*function, parts []*part) error {
	byName := map[string][]*function{}
	for _, fn := range fns {
		if fn.name != "" {
			byName[fn.name] = append(byName[fn.name], fn)
		}
	}
	for _, p := range parts {
		var items []val
		doc := p.docVal()
		switch p.kind {
		case docMappings:
			items = doc.get("EventSourceMappings").items()
		case docMapping, docURL:
			items = []val{doc}
		default:
			continue
		}
		attached := map[*function]bool{}
		for _, it := range items {
			av := it.get("FunctionArn")
			if av.absent() && p.kind == docMapping {
				// create-event-source-mapping input: a name, an ARN or
				// a partial ARN (123456789012:function:orders).
				av = it.get("FunctionName")
			}
			s, err := av.str()
			if err != nil {
				return err
			}
			a, err := parseFunctionARN(s)
			if err != nil {
				switch _, ph := placeholderARN(err); {
				case ph:
					// The name is what joins; the account is the
					// sample's.
				case !strings.HasPrefix(s, "arn:"):
					a.Name = s
					if _, after, ok := strings.Cut(s, ":function:"); ok {
						a.Name, _, _ = strings.Cut(after, ":")
					}
				default:
					return av.errf("%v", err)
				}
			}
			cands := byName[a.Name]
			if len(cands) == 0 {
				return av.errf("names function %q, which no input file describes: add its `aws lambda get-function --function-name %s` output, or leave this out (list-event-source-mappings takes --function-name)", a.Name, a.Name)
			}
			fn := cands[0]
			if fn.region != "" && a.Region != "" && fn.region != a.Region {
				return av.errf("names function %q in %s, but the input describes it in %s", a.Name, a.Region, fn.region)
			}
			fn.svc.Origin.Files = addFile(fn.svc.Origin.Files, p.file.Path)
			m := fn.rooted(it)
			if p.kind == docURL {
				fn.addFunctionURL(m)
			} else if err := fn.addMapping(m); err != nil {
				return err
			}
			if p.kind == docMappings && !attached[fn] {
				attached[fn] = true
				if nm := doc.get("NextMarker"); !nm.absent() {
					t := fn.tracker(p.file.Path, p.pos, "")
					t.Warn("NextMarker", "", "the list is paginated and only its first page was given: mappings on later pages are missing (aws lambda list-event-source-mappings --function-name "+fn.name+" returns all of one function's)")
				}
			}
		}
	}
	return nil
}

func addFile(files []string, f string) []string {
	for _, x := range files {
		if x == f {
			return files
		}
	}
	return append(files, f)
}

// uniqueNames refuses two functions described twice, and gives distinct
// functions whose names sanitize alike distinct service names.
func uniqueNames(fns []*function) error {
	seen := map[string]*function{}
	for _, fn := range fns {
		if fn.name != "" && fn.region != "" {
			key := fn.region + "/" + fn.name
			if prev, ok := seen[key]; ok {
				return fn.root.get("FunctionName").errf("function %q is described twice (also in %s): give one of get-function or get-function-configuration", fn.name, strings.Join(prev.svc.Origin.Files, ", "))
			}
			seen[key] = fn
		}
	}
	taken := map[string]bool{}
	for _, fn := range fns {
		name := fn.svc.Name
		for i := 2; taken[name]; i++ {
			suffix := fmt.Sprintf("-%d", i)
			base := fn.svc.Name
			if len(base)+len(suffix) > 63 {
				base = strings.TrimRight(base[:63-len(suffix)], "-")
			}
			name = base + suffix
		}
		if name != fn.svc.Name {
			fn.eventsAt.t.Warn(fn.eventsAt.field, "service name "+name, fmt.Sprintf("another function also becomes %q", fn.svc.Name))
			fn.svc.Name = name
		}
		taken[name] = true
	}
	return nil
}
