// Package ecs imports Amazon ECS services into cutover's workload model.
//
// It reads what the AWS CLI prints, as users export it: task definitions
// (describe-task-definition output or register-task-definition input),
// services (describe-services output or create-service input), target
// groups (elbv2 describe-target-groups) and Application Auto Scaling
// policies and scalable targets. Files that describe one service are
// joined: a service names its task definition, a load balancer names its
// target group, and scaling resources name "service/<cluster>/<service>".
// CloudFormation templates (cdk synth output, hand-written JSON or YAML)
// are read too: their task definitions, services, target groups and
// scaling resources, joined by Ref, go through the same mapping (cfn.go).
//
// Every field of every file ends in the report: mapped, mapped with a
// warning, dropped with the reason, or left as a value for the user to
// fill. Secret values are never read: secrets stay references to Secrets
// Manager and Parameter Store.
package ecs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/cutoverhq/cutover/service"
	"github.com/cutoverhq/cutover/source"
)

func init() { source.Register("ecs", Importer{}) }

// Importer is the ECS importer; the registry holds it under "ecs".
type Importer struct{}

var _ source.Importer = Importer{}

// Detect reports whether f looks like ECS or its neighbours' JSON: it
// decodes only the top-level keys, and for Application Auto Scaling files
// it checks the namespace, because Lambda's provisioned concurrency uses
// the same API.
func (Importer) Detect(f source.File) bool {
	data := bytes.TrimSpace(bytes.TrimPrefix(f.Data, bom))
	if !json.Valid(data) {
		if q := quoteTemplates(data); q != nil {
			data = q
		} else if y := yamlAsJSON(data); y != nil {
			data = y
		}
	}
	if r := respellKeys(data); r != nil {
		data = r
	}
	if len(data) > 0 && data[0] == '[' {
		return containerList(data)
	}
	if len(data) == 0 || data[0] != '{' {
		return false
	}
	var top map[string]json.RawMessage
	if json.Unmarshal(data, &top) != nil {
		return false
	}
	if isTemplate(top) {
		return detectTemplate(top)
	}
	_, err := classify(top)
	return err == nil
}

var bom = []byte("\xef\xbb\xbf")

type fileKind int

const (
	kindTaskDefOutput   fileKind = iota + 1 // describe-task-definition output
	kindTaskDefInput                        // register-task-definition input
	kindServices                            // describe-services output
	kindServiceInput                        // create-service input
	kindTargetGroups                        // elbv2 describe-target-groups output
	kindScalingPolicies                     // describe-scaling-policies output
	kindScalableTargets                     // describe-scalable-targets output
	kindServiceOutput                       // create-service / update-service output: {"service": {…}}
	kindContainerList                       // a bare containerDefinitions array (Terraform, CDK, CloudFormation)
)

// containerList reports whether data is a JSON array of container
// definitions, as Terraform's container_definitions and CDK synthesize
// them: objects that each name a container, and at least one image.
func containerList(data []byte) bool {
	var list []map[string]json.RawMessage
	if json.Unmarshal(data, &list) != nil || len(list) == 0 {
		return false
	}
	image := false
	for _, c := range list {
		if c == nil {
			return false
		}
		if _, ok := c["name"]; !ok {
			return false
		}
		if _, ok := c["image"]; ok {
			image = true
		}
	}
	return image
}

var errUnknownFile = errors.New("not an ECS task definition, ECS service, target group or Application Auto Scaling file: " +
	"expected describe-task-definition or describe-services output, register-task-definition or create-service input, " +
	"elbv2 describe-target-groups, describe-scaling-policies / describe-scalable-targets output, " +
	"or a CloudFormation template with an AWS::ECS::TaskDefinition")

// classify names a file's kind from its top-level keys.
func classify(top map[string]json.RawMessage) (fileKind, error) {
	isObject := func(r json.RawMessage) bool { r = bytes.TrimSpace(r); return len(r) > 0 && r[0] == '{' }
	isString := func(r json.RawMessage) bool { r = bytes.TrimSpace(r); return len(r) > 0 && r[0] == '"' }
	if r, ok := top["taskDefinition"]; ok && isObject(r) {
		return kindTaskDefOutput, nil
	}
	if _, ok := top["containerDefinitions"]; ok {
		return kindTaskDefInput, nil
	}
	if r, ok := top["services"]; ok {
		var list []struct {
			TaskDefinition json.RawMessage `json:"taskDefinition"`
			ServiceName    json.RawMessage `json:"serviceName"`
		}
		if json.Unmarshal(r, &list) == nil {
			for _, s := range list {
				if s.TaskDefinition != nil || s.ServiceName != nil {
					return kindServices, nil
				}
			}
			if len(list) == 0 {
				if _, ok := top["failures"]; ok {
					return kindServices, nil
				}
			}
		}
	}
	if r, ok := top["taskDefinition"]; ok && isString(r) {
		return kindServiceInput, nil
	}
	if r, ok := top["service"]; ok && isObject(r) {
		// create-service, update-service and delete-service print the
		// service they acted on under "service".
		var s struct {
			TaskDefinition json.RawMessage `json:"taskDefinition"`
			ServiceName    json.RawMessage `json:"serviceName"`
		}
		if json.Unmarshal(r, &s) == nil && isString(s.TaskDefinition) && isString(s.ServiceName) {
			return kindServiceOutput, nil
		}
	}
	if r, ok := top["serviceName"]; ok && isString(r) {
		if _, ok := top["desiredCount"]; ok {
			return kindServiceInput, nil
		}
	}
	if r, ok := top["TargetGroups"]; ok {
		var list []struct{ TargetType string }
		if json.Unmarshal(r, &list) == nil && !all(list, func(t struct{ TargetType string }) bool { return t.TargetType == "lambda" }) {
			return kindTargetGroups, nil
		}
	}
	ecsNS := func(r json.RawMessage) bool {
		var list []struct{ ServiceNamespace string }
		if json.Unmarshal(r, &list) != nil {
			return false
		}
		return len(list) == 0 || !all(list, func(e struct{ ServiceNamespace string }) bool {
			return e.ServiceNamespace != "" && e.ServiceNamespace != "ecs"
		})
	}
	if r, ok := top["ScalingPolicies"]; ok && ecsNS(r) {
		return kindScalingPolicies, nil
	}
	if r, ok := top["ScalableTargets"]; ok && ecsNS(r) {
		return kindScalableTargets, nil
	}
	return 0, errUnknownFile
}

// all reports whether f holds for every element of a non-empty list.
func all[T any](list []T, f func(T) bool) bool {
	if len(list) == 0 {
		return false
	}
	for _, e := range list {
		if !f(e) {
			return false
		}
	}
	return true
}

// Import reads the files, joins the ones that describe one service, and
// returns one Service per ECS service, plus one per task definition that
// no service runs.
func (Importer) Import(ctx context.Context, files []source.File, _ source.Options) ([]*service.Service, error) {
	var in inputs
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := in.add(f); err != nil {
			return nil, err
		}
	}
	return in.convert(ctx)
}

// doc is one parsed input file.
type doc struct {
	path string
	data []byte
	pos  *source.Positions
	kind fileKind
	// matched is set when an auxiliary file (target groups, scaling)
	// contributed to some service.
	matched bool
	// yaml is set when the file is YAML and data the JSON it stands for:
	// offsets in data are no lines of the file, positions are.
	yaml bool
	// unresolved are the fields of a CloudFormation resource taken out
	// because an intrinsic stood where no string fits.
	unresolved []cfnNote
	// root is, for a CloudFormation resource, the path of its properties:
	// the only part of the template the resource's trackers report on.
	root string
	// others are a template's resources that another importer converts,
	// with their whole path: every service of the template reports them.
	others []cfnNote
	// named says, for a CloudFormation resource that names no service,
	// where its name came from.
	named *cfnNote
	// attrs are the CloudFormation attributes beside the resource's
	// properties (Condition, DependsOn, policies), with their whole path.
	attrs []cfnNote
}

// positions indexes the lines of a file's fields: from the YAML itself
// when the file is YAML, else from the JSON.
func positions(file string, data, yamlSrc []byte) (*source.Positions, error) {
	if yamlSrc != nil {
		return source.ParsePositions(file, yamlSrc)
	}
	return source.ParsePositions(file, yamlSafe(data))
}

// tdDoc is one task definition.
type tdDoc struct {
	*doc
	prefix string // "taskDefinition" for describe output, "" for input
	td     *taskDefinition
	// outerTags are the tags describe-task-definition --include TAGS
	// prints beside the task definition.
	outerTags tagList
	used      bool
	// bare is set for a list of container definitions without the task
	// definition around them: container i is at "[i]".
	bare bool
	// badRevision, when not empty, is the JSON kind the revision held
	// instead of a whole number; the revision is then the ARN's, if any.
	badRevision string
}

// containerPath is the path of the i-th container definition.
func (td *tdDoc) containerPath(i int) string {
	if td.bare {
		return fmt.Sprintf("[%d]", i)
	}
	return fmt.Sprintf("containerDefinitions[%d]", i)
}

// svcDoc is one ECS service.
type svcDoc struct {
	*doc
	prefix  string // "services[i]" for describe output, "" for input
	s       *ecsService
	cluster string
	// defaultCount is the task count the service runs when it sets no
	// desiredCount: CloudFormation's default for a template's service;
	// 0 for the CLI's files, where the chart's default applies.
	defaultCount int32
}

// cfnDefaultCount is the DesiredCount CloudFormation gives a new service
// whose template sets none.
const cfnDefaultCount = 1

type tgDoc struct {
	*doc
	prefix string
	tg     *targetGroup
}

type policyDoc struct {
	*doc
	prefix string
	p      *scalingPolicy
}

type targetDoc struct {
	*doc
	prefix string
	t      *scalableTarget
}

type inputs struct {
	tds      []*tdDoc
	svcs     []*svcDoc
	tgs      []*tgDoc
	policies []*policyDoc
	targets  []*targetDoc
	aux      []*doc
	// present indexes, per file, the paths that hold a value.
	present map[*source.Positions]map[string]bool
	// blank indexes, per file, the objects whose every value is "", 0,
	// false or null: what `--generate-cli-skeleton` prints.
	blank map[*source.Positions]map[string]bool
}

// add parses one file and files its contents by kind.
func (in *inputs) add(f source.File) error {
	data := bytes.TrimPrefix(f.Data, bom)
	var yamlSrc []byte
	if !json.Valid(data) {
		// A template: its variables become placeholders. YAML: the JSON
		// it stands for. A file that is neither keeps its own syntax
		// error.
		if q := quoteTemplates(data); q != nil {
			data = q
		} else if y := yamlAsJSON(data); y != nil {
			yamlSrc, data = data, y
		} else if t := bytes.TrimSpace(data); len(t) > 0 && t[0] != '{' && t[0] != '[' {
			// Neither JSON nor a template of it: YAML's own error says
			// more than JSON's about its first character.
			var n yaml.Node
			if err := yaml.Unmarshal(data, &n); err != nil {
				return source.SyntaxError(f.Path, err)
			}
			return &source.InputError{File: f.Path, Line: 1, Err: errUnknownFile}
		}
	}
	orig := data
	if yamlSrc != nil {
		orig = yamlSrc
	}
	if r := respellKeys(data); r != nil && yamlSrc == nil {
		data = r
	}
	if t := bytes.TrimSpace(data); len(t) > 0 && t[0] == '[' {
		return in.addContainerList(f.Path, data, yamlSrc)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return jsonError(f.Path, data, err)
	}
	if top == nil {
		return &source.InputError{File: f.Path, Line: 1, Err: errors.New("the file holds null, not a JSON object")}
	}
	if isTemplate(top) {
		return in.addTemplate(f.Path, orig)
	}
	kind, err := classify(top)
	if err != nil {
		return &source.InputError{File: f.Path, Line: 1, Err: err}
	}
	pos, err := positions(f.Path, data, yamlSrc)
	if err != nil {
		return err
	}
	d := &doc{path: f.Path, data: data, pos: pos, kind: kind, yaml: yamlSrc != nil}
	if in.present == nil {
		in.present = map[*source.Positions]map[string]bool{}
	}
	in.present[pos] = presence(data)
	if in.blank == nil {
		in.blank = map[*source.Positions]map[string]bool{}
	}
	in.blank[pos] = blanks(data)
	switch kind {
	case kindTaskDefOutput:
		var v struct {
			TaskDefinition *taskDefinition `json:"taskDefinition"`
			Tags           tagList         `json:"tags"`
		}
		if err := decode(d, &v); err != nil {
			return err
		}
		return in.addTaskDef(&tdDoc{doc: d, prefix: "taskDefinition", td: v.TaskDefinition, outerTags: v.Tags})
	case kindTaskDefInput:
		var td taskDefinition
		if err := decode(d, &td); err != nil {
			return err
		}
		return in.addTaskDef(&tdDoc{doc: d, td: &td})
	case kindServices:
		var v struct {
			Services []*ecsService `json:"services"`
		}
		if err := decode(d, &v); err != nil {
			return err
		}
		for i, s := range v.Services {
			if s == nil {
				continue
			}
			in.addService(&svcDoc{doc: d, prefix: fmt.Sprintf("services[%d]", i), s: s})
		}
	case kindServiceOutput:
		var v struct {
			Service *ecsService `json:"service"`
		}
		if err := decode(d, &v); err != nil {
			return err
		}
		in.addService(&svcDoc{doc: d, prefix: "service", s: v.Service})
	case kindServiceInput:
		var s ecsService
		if err := decode(d, &s); err != nil {
			return err
		}
		in.addService(&svcDoc{doc: d, s: &s})
	case kindTargetGroups:
		var v struct {
			TargetGroups []*targetGroup `json:"TargetGroups"`
		}
		if err := decode(d, &v); err != nil {
			return err
		}
		for i, tg := range v.TargetGroups {
			if tg != nil {
				in.tgs = append(in.tgs, &tgDoc{doc: d, prefix: fmt.Sprintf("TargetGroups[%d]", i), tg: tg})
			}
		}
		in.aux = append(in.aux, d)
	case kindScalingPolicies:
		var v struct {
			ScalingPolicies []*scalingPolicy `json:"ScalingPolicies"`
		}
		if err := decode(d, &v); err != nil {
			return err
		}
		for i, p := range v.ScalingPolicies {
			if p != nil && (p.ServiceNamespace == "" || p.ServiceNamespace == "ecs") {
				in.policies = append(in.policies, &policyDoc{doc: d, prefix: fmt.Sprintf("ScalingPolicies[%d]", i), p: p})
			}
		}
		in.aux = append(in.aux, d)
	case kindScalableTargets:
		var v struct {
			ScalableTargets []*scalableTarget `json:"ScalableTargets"`
		}
		if err := decode(d, &v); err != nil {
			return err
		}
		for i, t := range v.ScalableTargets {
			if t != nil && (t.ServiceNamespace == "" || t.ServiceNamespace == "ecs") {
				in.targets = append(in.targets, &targetDoc{doc: d, prefix: fmt.Sprintf("ScalableTargets[%d]", i), t: t})
			}
		}
		in.aux = append(in.aux, d)
	}
	return nil
}

// addContainerList reads a bare list of container definitions, the
// container_definitions of Terraform's aws_ecs_task_definition or what CDK
// synthesizes: a task definition with containers and nothing else.
func (in *inputs) addContainerList(file string, data, yamlSrc []byte) error {
	pos, err := positions(file, data, yamlSrc)
	if err != nil {
		return err
	}
	d := &doc{path: file, data: data, pos: pos, kind: kindContainerList, yaml: yamlSrc != nil}
	var defs []containerDef
	if err := decode(d, &defs); err != nil {
		return err
	}
	if !containerList(data) {
		return &source.InputError{File: file, Line: 1, Err: errors.New("a list, but not of ECS container definitions (objects with a name and an image): " + errUnknownFile.Error())}
	}
	if in.present == nil {
		in.present = map[*source.Positions]map[string]bool{}
	}
	in.present[pos] = presence(data)
	return in.addTaskDef(&tdDoc{doc: d, td: &taskDefinition{ContainerDefinitions: defs}, bare: true})
}

func (in *inputs) addTaskDef(td *tdDoc) error {
	if td.td == nil {
		return &source.InputError{File: td.path, Line: td.pos.Line("taskDefinition"), Field: "taskDefinition", Err: errors.New("taskDefinition is null: nothing to convert")}
	}
	if t := td.td; t.Revision.set {
		if _, ok := t.Revision.int(); !ok {
			// Metadata AWS assigns: kept aside for the report, not a
			// reason to refuse the file.
			td.badRevision, t.Revision = jsonKind([]byte(t.Revision.raw)), num{}
		}
	}
	if t := td.td; !t.Revision.set && t.TaskDefinitionArn.s != "" {
		// The revision is also the last part of the ARN, and services
		// name it.
		if ref, err := parseTaskDefRef(t.TaskDefinitionArn.s); err == nil && ref.Revision != "" {
			t.Revision = num{raw: ref.Revision, set: true}
		}
	}
	in.tds = append(in.tds, td)
	return nil
}

func (in *inputs) addService(sd *svcDoc) {
	sd.cluster = clusterName(sd.s.ClusterArn.s)
	if sd.s.ClusterArn.s == "" {
		if c := clusterFromServiceARN(sd.s.ServiceArn.s); c != "" {
			sd.cluster = c
		} else {
			sd.cluster = clusterName(sd.s.Cluster)
		}
	}
	in.svcs = append(in.svcs, sd)
}

// presence returns every path of a JSON document that holds a non-null,
// non-empty value, itself or below it: the paths Tracker.Has says yes to.
func presence(data []byte) map[string]bool {
	var v any
	out := map[string]bool{}
	if json.Unmarshal(data, &v) != nil {
		return out
	}
	var walk func(path string, v any) bool
	walk = func(path string, v any) bool {
		has := false
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if walk(source.JoinPath(path, k), e) {
					has = true
				}
			}
		case []any:
			for i, e := range x {
				if walk(path+"["+strconv.Itoa(i)+"]", e) {
					has = true
				}
			}
		case nil:
		case string:
			has = x != ""
		default:
			has = true
		}
		if has && path != "" {
			out[path] = true
		}
		return has
	}
	walk("", v)
	return out
}

// blanks returns every object path of a JSON document whose leaves are
// all "", 0, false or null. The CLI's skeletons are full of such entries
// (a load balancer with no target group, container or port), which say
// nothing and are left out.
func blanks(data []byte) map[string]bool {
	var v any
	out := map[string]bool{}
	if json.Unmarshal(data, &v) != nil {
		return out
	}
	var walk func(path string, v any) bool
	walk = func(path string, v any) bool {
		switch x := v.(type) {
		case map[string]any:
			blank := true
			for k, e := range x {
				if !walk(source.JoinPath(path, k), e) {
					blank = false
				}
			}
			if blank && path != "" {
				out[path] = true
			}
			return blank
		case []any:
			blank := true
			for i, e := range x {
				if !walk(path+"["+strconv.Itoa(i)+"]", e) {
					blank = false
				}
			}
			return blank
		case nil:
			return true
		case string:
			return x == ""
		case bool:
			return !x
		case float64:
			return x == 0
		}
		return false
	}
	walk("", v)
	return out
}

// locate finds the path, list indexes included, of the first value of
// kind ("array", "string", "number"…) at field, which encoding/json names
// without indexes; field itself when there is none.
func locate(data []byte, field, kind string) string {
	var v any
	if json.Unmarshal(data, &v) != nil {
		return field
	}
	kindOf := func(v any) string {
		switch v.(type) {
		case map[string]any:
			return "object"
		case []any:
			return "array"
		case string:
			return "string"
		case float64:
			return "number"
		case bool:
			return "bool"
		}
		return "null"
	}
	found := ""
	var walk func(path, bare string, v any)
	walk = func(path, bare string, v any) {
		if found != "" {
			return
		}
		if bare == field && kindOf(v) == kind {
			found = path
			return
		}
		switch x := v.(type) {
		case map[string]any:
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				walk(source.JoinPath(path, k), source.JoinPath(bare, k), x[k])
			}
		case []any:
			for i, e := range x {
				walk(path+"["+strconv.Itoa(i)+"]", bare, e)
			}
		}
	}
	walk("", "", v)
	if found == "" {
		return field
	}
	return found
}

// decode unmarshals the whole file into v, so that type errors carry the
// file offset, and turns them into InputErrors.
func decode(d *doc, v any) error {
	if err := json.Unmarshal(d.data, v); err != nil {
		if d.yaml {
			// Offsets are in the JSON made from the YAML; the field's
			// position is in the YAML.
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) && te.Field != "" {
				field := locate(d.data, te.Field, te.Value)
				return &source.InputError{File: d.path, Line: d.pos.Line(field), Field: field, Err: fmt.Errorf("want %s, found %s", goTypeName(te.Type.String()), te.Value)}
			}
			return &source.InputError{File: d.path, Line: 1, Err: fmt.Errorf("want a mapping of ECS fields: %w", err)}
		}
		return jsonError(d.path, d.data, err)
	}
	return nil
}

// jsonError turns an encoding/json error into an InputError with the line
// and, for a type mismatch, the field path.
func jsonError(file string, data []byte, err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		line := source.LineOfOffset(data, se.Offset)
		msg := "invalid JSON: " + strings.TrimPrefix(se.Error(), "json: ")
		key, value := lineKeyValue(data, line)
		if key != "" {
			msg = "invalid JSON: " + strings.TrimPrefix(se.Error(), "json: ")
		}
		if templateValueRE.MatchString(value) {
			msg += fmt.Sprintf("; %s looks like an expression of a template language (jq, Jsonnet, Handlebars): render the template first and convert its output", strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(value), ",")))
		}
		// Without positions (the file does not parse) the field is the
		// key that starts the line, not its whole path.
		return &source.InputError{File: file, Line: line, Field: key, Err: errors.New(msg)}
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			return &source.InputError{File: file, Line: source.LineOfOffset(data, te.Offset), Err: fmt.Errorf("want a JSON object, found %s", te.Value)}
		}
		return &source.InputError{File: file, Line: source.LineOfOffset(data, te.Offset), Field: field, Err: fmt.Errorf("want %s, found %s", goTypeName(te.Type.String()), te.Value)}
	}
	return &source.InputError{File: file, Err: fmt.Errorf("invalid JSON: %w", err)}
}

// lineKeyRE finds the object key a line starts with and the value after
// it.
var (
	lineKeyRE       = regexp.MustCompile(`^\s*"([^"\\]+)"\s*:\s*(.*)$`)
	templateValueRE = regexp.MustCompile(`^\s*(env\.|\$[A-Za-z_(]|\(|[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_]|\{\{|<%)`)
)

// lineKeyValue returns the key and the raw value on a line of data, or ""
// when the line does not start with a key.
func lineKeyValue(data []byte, line int) (key, value string) {
	lines := strings.Split(string(data), "\n")
	if line < 1 || line > len(lines) {
		return "", ""
	}
	m := lineKeyRE.FindStringSubmatch(lines[line-1])
	if m == nil {
		return "", ""
	}
	return m[1], m[2]
}

func goTypeName(t string) string {
	switch {
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case t == "string":
		return "a string"
	case t == "bool" || t == "*bool":
		return "true or false"
	case strings.HasPrefix(t, "map[") || strings.Contains(t, "struct") || strings.Contains(t, "ecs."):
		return "an object"
	}
	return t
}

// yamlSafe rewrites the JSON strings that the YAML parser behind
// source.ParsePositions rejects ("\/", surrogate pairs, invalid UTF-8, raw
// non-printable characters such as U+0085) into equivalent strings it
// accepts. It keeps every newline, so lines stay where they were. data is
// valid JSON: encoding/json has checked it.
func yamlSafe(data []byte) []byte {
	if plainASCII(data) {
		return data
	}
	out := make([]byte, 0, len(data))
	for i := 0; i < len(data); {
		if data[i] != '"' {
			out = append(out, data[i])
			i++
			continue
		}
		j := i + 1
		for j < len(data) && data[j] != '"' {
			if data[j] == '\\' {
				j++
			}
			j++
		}
		if j >= len(data) {
			return append(out, data[i:]...)
		}
		tok := data[i : j+1]
		if !plainASCII(tok) {
			var s string
			if json.Unmarshal(tok, &s) == nil {
				tok = quoteForYAML(s)
			}
		}
		out = append(out, tok...)
		i = j + 1
	}
	return out
}

// plainASCII reports whether data has no backslash and only printable
// ASCII and whitespace, which YAML reads as JSON does.
func plainASCII(data []byte) bool {
	for _, b := range data {
		if b == '\\' || b >= 0x7f || b < 0x20 && b != '\n' && b != '\r' && b != '\t' {
			return false
		}
	}
	return true
}

// quoteForYAML quotes s as a double-quoted scalar both JSON and YAML read
// the same way: printable runes as themselves, the rest as \uXXXX escapes
// of the BMP (YAML refuses surrogate escapes).
func quoteForYAML(s string) []byte {
	var b bytes.Buffer
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 || r == 0x2028 || r == 0x2029 || r == 0xfeff || r == 0xfffe || r == 0xffff:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.Bytes()
}

// convert joins services with their task definitions, target groups and
// scaling resources, and maps each.
func (in *inputs) convert(ctx context.Context) ([]*service.Service, error) {
	var out []*service.Service
	names := map[string]string{} // service name → where it came from
	add := func(svc *service.Service, file string, line int, field string) error {
		if prev, dup := names[svc.Name]; dup {
			return &source.InputError{File: file, Line: line, Field: field, Err: fmt.Errorf("a second service named %q (the first comes from %s): convert them in separate runs or give one another name", svc.Name, prev)}
		}
		names[svc.Name] = file
		out = append(out, svc)
		return nil
	}
	for _, sd := range in.svcs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		td, err := in.taskDefFor(sd)
		if err != nil {
			return nil, err
		}
		td.used = true
		m := newMapper(in, td, sd)
		m.attach(in)
		svc, err := m.run()
		if err != nil {
			return nil, err
		}
		if err := add(svc, sd.path, sd.pos.Line(source.JoinPath(sd.prefix, "serviceName")), source.JoinPath(sd.prefix, "serviceName")); err != nil {
			return nil, err
		}
	}
	for _, td := range in.tds {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if td.used {
			continue
		}
		for _, other := range in.tds {
			if other.used && other.td.Family == td.td.Family && td.td.Family != "" {
				f := source.JoinPath(td.prefix, "revision")
				return nil, &source.InputError{File: td.path, Line: td.pos.Line(f), Field: f, Err: fmt.Errorf(
					"no service runs %s:%s, while a service runs %s:%s from %s: pass only the revision the service runs",
					td.td.Family, td.td.Revision.raw, other.td.Family, other.td.Revision.raw, other.path)}
			}
		}
		m := newMapper(in, td, nil)
		m.attach(in)
		svc, err := m.run()
		if err != nil {
			return nil, err
		}
		if err := add(svc, td.path, td.pos.Line(source.JoinPath(td.prefix, "family")), source.JoinPath(td.prefix, "family")); err != nil {
			return nil, err
		}
	}
	if len(out) == 0 {
		f := "the input"
		if len(in.aux) > 0 {
			f = in.aux[0].path
		}
		return nil, &source.InputError{File: f, Err: errors.New("no task definition among the ECS files: add `aws ecs describe-task-definition` output")}
	}
	for _, d := range in.aux {
		if !d.matched {
			if err := in.unmatched(d, out); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// unmatched fails for an auxiliary file none of whose entries belongs to a
// converted service: the user named it, so it was meant to change
// something, and a silent no-op would hide a typo in a cluster name. A file
// with no entries at all says nothing and is accepted.
func (in *inputs) unmatched(d *doc, out []*service.Service) error {
	var names []string
	for _, s := range out {
		names = append(names, s.Name)
	}
	var field, what string
	switch d.kind {
	case kindTargetGroups:
		for _, tg := range in.tgs {
			if tg.doc == d {
				field, what = source.JoinPath(tg.prefix, "TargetGroupArn"), "no target group here is named by a service's loadBalancers"
				break
			}
		}
	case kindScalingPolicies:
		for _, p := range in.policies {
			if p.doc == d {
				field, what = source.JoinPath(p.prefix, "ResourceId"), "no scaling policy here is for a service in the input (ResourceId service/<cluster>/<service>)"
				break
			}
		}
	case kindScalableTargets:
		for _, t := range in.targets {
			if t.doc == d {
				field, what = source.JoinPath(t.prefix, "ResourceId"), "no scalable target here is for a service in the input (ResourceId service/<cluster>/<service>)"
				break
			}
		}
	}
	if field == "" {
		return nil
	}
	return &source.InputError{File: d.path, Line: d.pos.Line(field), Field: field, Err: fmt.Errorf("%s; services converted: %s", what, strings.Join(names, ", "))}
}

// taskDefFor finds the task definition a service runs.
func (in *inputs) taskDefFor(sd *svcDoc) (*tdDoc, error) {
	field := source.JoinPath(sd.prefix, "taskDefinition")
	if strings.TrimSpace(sd.s.TaskDefinition) == "" {
		return nil, &source.InputError{File: sd.path, Line: sd.pos.Line(field), Field: field, Err: errors.New("the service names no task definition")}
	}
	if hasPlaceholder(sd.s.TaskDefinition) {
		// A template (CloudFormation, a pipeline) names the task
		// definition it registers just before; with one task definition
		// in the input there is no doubt which it is.
		var free []*tdDoc
		for _, td := range in.tds {
			if !td.used {
				free = append(free, td)
			}
		}
		if len(free) == 1 {
			return free[0], nil
		}
		return nil, &source.InputError{File: sd.path, Line: sd.pos.Line(field), Field: field, Err: fmt.Errorf(
			"the service names its task definition with the placeholder %s, and the input holds %d task definitions no other service runs: convert the service with only the one it runs", sd.s.TaskDefinition, len(free))}
	}
	ref, err := parseTaskDefRef(sd.s.TaskDefinition)
	if err != nil {
		return nil, &source.InputError{File: sd.path, Line: sd.pos.Line(field), Field: field, Err: err}
	}
	var cands []*tdDoc
	for _, td := range in.tds {
		if td.td.Family == ref.Family {
			cands = append(cands, td)
		}
	}
	if len(cands) == 0 {
		// A list of container definitions, or a template whose family is
		// a variable, has no family to match; when it is the only such
		// task definition, it is the one.
		var anon []*tdDoc
		for _, td := range in.tds {
			if !td.used && (strings.TrimSpace(td.td.Family) == "" || hasPlaceholder(td.td.Family)) {
				anon = append(anon, td)
			}
		}
		if len(anon) == 1 {
			return anon[0], nil
		}
	}
	if len(cands) == 0 {
		return nil, &source.InputError{File: sd.path, Line: sd.pos.Line(field), Field: field, Err: fmt.Errorf(
			"the service runs task definition %s, which no input file holds: add the output of `aws ecs describe-task-definition --task-definition %s`",
			sd.s.TaskDefinition, ref.Family+suffix(":", ref.Revision))}
	}
	if ref.Revision != "" {
		for _, td := range cands {
			if td.td.Revision.raw == ref.Revision {
				return td, nil
			}
		}
		if len(cands) == 1 {
			// The mapper warns that the revisions differ.
			return cands[0], nil
		}
		return nil, &source.InputError{File: sd.path, Line: sd.pos.Line(field), Field: field, Err: fmt.Errorf(
			"the service runs %s:%s, and the input holds %d other revisions of %s: pass the one the service runs", ref.Family, ref.Revision, len(cands), ref.Family)}
	}
	// A family alone means its latest revision.
	best := cands[0]
	for _, td := range cands[1:] {
		a, _ := strconv.Atoi(best.td.Revision.raw)
		b, _ := strconv.Atoi(td.td.Revision.raw)
		if b > a {
			best = td
		}
	}
	return best, nil
}

func suffix(sep, s string) string {
	if s == "" {
		return ""
	}
	return sep + s
}

// fileBase is a file's name without directory and extension, the last
// resort for a service name.
func fileBase(p string) string {
	b := path.Base(strings.ReplaceAll(p, "\\", "/"))
	return strings.TrimSuffix(b, path.Ext(b))
}
