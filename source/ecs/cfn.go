package ecs

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"sort"
	"strings"
	"unicode"

	"gopkg.in/yaml.v3"

	"github.com/cutoverhq/cutover/source"
)

// CloudFormation templates (what `cdk synth` writes into cdk.out, or a
// hand-written stack) hold the same task definitions and services as the
// AWS CLI, in PascalCase under Resources.<id>.Properties, with intrinsic
// functions where the stack resolves a value at deploy time. Each resource
// is read by the importer's own mapping: its keys are respelt as the CLI
// spells them (respellKeys), its intrinsics resolved where the template
// itself says the value (a literal, a parameter's Default) and turned into
// placeholders, and so values to fill, where only the stack knows it.

const (
	cfnTaskDef      = "AWS::ECS::TaskDefinition"
	cfnService      = "AWS::ECS::Service"
	cfnTargetGroup  = "AWS::ElasticLoadBalancingV2::TargetGroup"
	cfnTemplateName = "Resources"
	cfnTarget       = "AWS::ApplicationAutoScaling::ScalableTarget"
	cfnPolicy       = "AWS::ApplicationAutoScaling::ScalingPolicy"
)

// cfnResource is one entry of a template's Resources; encoding/json
// matches its keys in any case, which respelt templates need.
type cfnResource struct {
	Type       string          `json:"Type"`
	Properties json.RawMessage `json:"Properties"`
	Metadata   struct {
		CDKPath string `json:"aws:cdk:path"`
	} `json:"Metadata"`
	Condition           any `json:"Condition"`
	DependsOn           any `json:"DependsOn"`
	DeletionPolicy      any `json:"DeletionPolicy"`
	UpdateReplacePolicy any `json:"UpdateReplacePolicy"`
}

// attrNotes reports the CloudFormation attributes beside a converted
// resource's properties, none of which has a Kubernetes counterpart.
func (c cfnResource) attrNotes(id string) []cfnNote {
	var out []cfnNote
	at := func(attr string) string { return cfnTemplateName + "." + id + "." + attr }
	if c.Condition != nil {
		out = append(out, cfnNote{field: at("Condition"), msg: fmt.Sprintf(
			"the %s exists only where condition %v holds; cutover converts it for every environment: where the condition is false, leave the service out", c.Type, c.Condition)})
	}
	if c.DependsOn != nil {
		out = append(out, cfnNote{field: at("DependsOn"), msg: "CloudFormation's creation order; Kubernetes needs none (Argo CD sync waves order objects where it matters)"})
	}
	if c.DeletionPolicy != nil {
		out = append(out, cfnNote{field: at("DeletionPolicy"), msg: "CloudFormation's deletion policy; Argo CD's prune settings decide what deleting the application does"})
	}
	if c.UpdateReplacePolicy != nil {
		out = append(out, cfnNote{field: at("UpdateReplacePolicy"), msg: "CloudFormation's replacement policy; no counterpart"})
	}
	return out
}

type cfnTemplate struct {
	Parameters map[string]struct {
		Default json.RawMessage `json:"Default"`
	} `json:"Parameters"`
	Resources map[string]json.RawMessage `json:"Resources"`
}

// detectTemplate reports whether Detect should give the file to ecs: a
// template with a task definition, plain or SAM (convert gives a SAM
// template to the lambda importer as well, each converting its own).
func detectTemplate(top map[string]json.RawMessage) bool { return isTemplate(top) }

// isTemplate reports whether top is a CloudFormation template with an ECS
// task definition.
func isTemplate(top map[string]json.RawMessage) bool {
	r, ok := top[cfnTemplateName]
	if !ok {
		return false
	}
	var res map[string]cfnResource
	if json.Unmarshal(r, &res) != nil {
		return false
	}
	for _, v := range res {
		if v.Type == cfnTaskDef {
			return true
		}
	}
	return false
}

// respellYAMLKeys respells, in the YAML source itself, the keys inside
// the Properties of the template's ECS resources as respellKeys does in
// JSON, so that positions taken from the YAML name the fields the importer
// reads. Only same-length ASCII keys change: every line stays.
func respellYAMLKeys(src []byte) []byte {
	var root yaml.Node
	if yaml.Unmarshal(src, &root) != nil || len(root.Content) != 1 {
		return src
	}
	var starts []int
	starts = append(starts, 0)
	for i, b := range src {
		if b == '\n' {
			starts = append(starts, i+1)
		}
	}
	out := append([]byte{}, src...)
	var walk func(n *yaml.Node, free bool, depth int)
	walk = func(n *yaml.Node, free bool, depth int) {
		if n == nil || depth > 100 {
			return
		}
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := n.Content[i]
				key := k.Value
				quoted := k.Style == yaml.DoubleQuotedStyle || k.Style == yaml.SingleQuotedStyle
				if c, ok := ecsKeys[strings.ToLower(key)]; ok && !free && c != key && len(c) == len(key) && (k.Style == 0 || quoted) && k.Line > 0 && k.Line <= len(starts) {
					off := starts[k.Line-1] + k.Column - 1
					if quoted {
						off++
					}
					if off >= 0 && off+len(key) <= len(out) && string(out[off:off+len(key)]) == key {
						copy(out[off:], c)
						key = c
					}
				}
				walk(n.Content[i+1], free || freeFormKeys[key], depth+1)
			}
		case yaml.SequenceNode:
			for _, c := range n.Content {
				walk(c, free, depth+1)
			}
		}
	}
	top := root.Content[0]
	if top.Kind != yaml.MappingNode {
		return src
	}
	for i := 0; i+1 < len(top.Content); i += 2 {
		if top.Content[i].Value != cfnTemplateName || top.Content[i+1].Kind != yaml.MappingNode {
			continue
		}
		res := top.Content[i+1]
		for j := 0; j+1 < len(res.Content); j += 2 {
			r := res.Content[j+1]
			if r.Kind != yaml.MappingNode {
				continue
			}
			typ := ""
			var props *yaml.Node
			for k := 0; k+1 < len(r.Content); k += 2 {
				switch r.Content[k].Value {
				case "Type":
					typ = r.Content[k+1].Value
				case "Properties":
					props = r.Content[k+1]
				}
			}
			if typ == cfnTaskDef || typ == cfnService {
				walk(props, false, 0)
			}
		}
	}
	return out
}

// addTemplate reads a CloudFormation template's task definitions and
// services. src is the file as written, JSON or YAML: its keys inside the
// ECS resources are respelt in place, so its positions name the lines of
// the fields the importer reads.
func (in *inputs) addTemplate(file string, src []byte) error {
	src = respellYAMLKeys(src)
	var root yaml.Node
	if err := yaml.Unmarshal(src, &root); err != nil {
		return source.SyntaxError(file, err)
	}
	var data []byte
	if len(root.Content) == 1 {
		if v, ok := yamlValue(root.Content[0], 0); ok {
			data, _ = json.Marshal(v)
		}
	}
	var tpl cfnTemplate
	if err := json.Unmarshal(data, &tpl); err != nil {
		return &source.InputError{File: file, Line: 1, Err: fmt.Errorf("not a CloudFormation template: %w", err)}
	}
	pos, err := source.ParsePositions(file, src)
	if err != nil {
		return err
	}
	r := &cfnResolver{params: map[string]any{}, names: map[string]string{}, svcNames: map[string]string{}, types: map[string]string{}}
	for name, p := range tpl.Parameters {
		var v any
		if len(p.Default) > 0 && json.Unmarshal(p.Default, &v) == nil && v != nil {
			r.params[name] = v
		}
	}
	ids := make([]string, 0, len(tpl.Resources))
	res := map[string]cfnResource{}
	for id, raw := range tpl.Resources {
		var c cfnResource
		if json.Unmarshal(raw, &c) != nil {
			continue
		}
		ids = append(ids, id)
		res[id] = c
		r.types[id] = c.Type
	}
	sort.Strings(ids)
	svcs := map[string]*svcDoc{}
	// others are the resources another importer converts; each service
	// of the template reports them.
	var others []cfnNote
	// A task definition's name first, as services refer to it.
	for _, id := range ids {
		if c := res[id]; c.Type == cfnTaskDef {
			var p struct {
				Family any `json:"Family"`
			}
			_ = json.Unmarshal(c.Properties, &p)
			name := ""
			if s, ok := r.resolve(p.Family).(string); ok && !hasPlaceholder(s) {
				name = s
			}
			if name == "" || cdkGenerated(name, c.Metadata.CDKPath) {
				// CDK names the family after the construct path and a
				// hash (WorkerStackApiTaskDefF1E2D3C4): the construct id
				// is the name the user chose.
				name = kebab(cdkConstructID(c.Metadata.CDKPath, id))
			}
			r.names[id] = name
			r.svcNames[name] = kebab(name)
		} else if c.Type == "AWS::Lambda::Function" || c.Type == "AWS::Serverless::Function" {
			others = append(others, cfnNote{field: cfnTemplateName + "." + id, msg: fmt.Sprintf(
				"%s is a function, not part of the ECS service: the Lambda importer converts a template's application functions (convert gives it the template too unless --from names one importer), and those CDK adds for itself (log retention, custom resources) stay on AWS with the stack", c.Type)})
		} else if c.Type == cfnTargetGroup {
			r.names[id] = "arn:aws:elasticloadbalancing:${AWS::Region}:${AWS::AccountId}:targetgroup/" + id
		}
	}
	for _, id := range ids {
		c := res[id]
		if c.Type == cfnTargetGroup {
			if err := in.addTemplateTargetGroup(file, pos, id, tpl.Resources[id], c, r); err != nil {
				return err
			}
			continue
		}
		if c.Type != cfnTaskDef && c.Type != cfnService {
			continue
		}
		prefix := cfnTemplateName + "." + id + "." + propertiesKey(tpl.Resources[id])
		var props map[string]any
		if err := json.Unmarshal(c.Properties, &props); err != nil || props == nil {
			return &source.InputError{File: file, Line: pos.Line(prefix), Field: prefix, Err: fmt.Errorf("%s %s has no Properties mapping", c.Type, id)}
		}
		var named *cfnNote
		resolved, ok := r.resolve(props).(map[string]any)
		if !ok {
			// Properties: !If [...] or a Ref: the whole resource is the
			// stack's to decide.
			return &source.InputError{File: file, Line: pos.Line(prefix), Field: prefix, Err: fmt.Errorf("%s %s takes its whole Properties from an intrinsic function, which cutover cannot resolve: write them out", c.Type, id)}
		}
		switch c.Type {
		case cfnTaskDef:
			if s, _ := resolved["family"].(string); s != r.names[id] {
				// None, a placeholder, or CDK's generated one.
				resolved["family"] = r.names[id]
				why := "the template sets no Family"
				if s != "" {
					why = fmt.Sprintf("the Family %s is not a name to keep", s)
				}
				named = &cfnNote{field: cfnTemplateName + "." + id, msg: fmt.Sprintf("named %s after %s: %s", r.names[id], nameSource(c.Metadata.CDKPath, id), why)}
			}
		case cfnService:
			if s, _ := resolved["serviceName"].(string); s == "" || hasPlaceholder(s) {
				name := kebab(cdkConstructID(c.Metadata.CDKPath, id))
				if td, _ := resolved["taskDefinition"].(string); r.svcNames[td] != "" {
					name = r.svcNames[td]
				}
				resolved["serviceName"] = name
				named = &cfnNote{field: cfnTemplateName + "." + id, msg: fmt.Sprintf("named %s after its task definition: the template sets no ServiceName", name)}
			}
		}
		body, notes, err := cfnDecodable(file, pos, prefix, resolved, c.Type)
		if err != nil {
			return err
		}
		// The document as the trackers see it: the resolved properties
		// at their place in the template, so every path is the file's.
		whole, _ := json.Marshal(map[string]any{cfnTemplateName: map[string]any{id: map[string]any{propertiesKey(tpl.Resources[id]): resolved}}})
		d := &doc{path: file, data: whole, pos: pos, yaml: true, unresolved: notes, root: prefix, others: others, named: named, attrs: c.attrNotes(id)}
		in.addPresence(pos, whole)
		if c.Type == cfnTaskDef {
			d.kind = kindTaskDefInput
			var td taskDefinition
			_ = json.Unmarshal(body, &td) // cfnDecodable decoded it
			if err := in.addTaskDef(&tdDoc{doc: d, prefix: prefix, td: &td}); err != nil {
				return err
			}
			continue
		}
		d.kind = kindServiceInput
		var s ecsService
		_ = json.Unmarshal(body, &s)
		sd := &svcDoc{doc: d, prefix: prefix, s: &s}
		if _, ok := resolved["desiredCount"]; !ok {
			sd.defaultCount = cfnDefaultCount
		}
		in.addService(sd)
		svcs[id] = sd
	}
	return in.addTemplateScaling(file, pos, ids, res, tpl, r, svcs)
}

// addTemplateScaling reads the template's Application Auto Scaling
// resources. Their ResourceId is a Join of the cluster's and the service's
// attributes, which only the stack knows; the service they belong to is
// the one whose logical id they name, and they take its
// service/<cluster>/<name>, as describe-scalable-targets prints it.
func (in *inputs) addTemplateScaling(file string, pos *source.Positions, ids []string, res map[string]cfnResource, tpl cfnTemplate, r *cfnResolver, svcs map[string]*svcDoc) error {
	targets := map[string]map[string]any{}
	for _, kind := range []string{cfnTarget, cfnPolicy} {
		for _, id := range ids {
			c := res[id]
			if c.Type != kind {
				continue
			}
			prefix := cfnTemplateName + "." + id + "." + propertiesKey(tpl.Resources[id])
			var props map[string]any
			if json.Unmarshal(c.Properties, &props) != nil || props == nil {
				continue
			}
			resolved, ok := r.resolve(props).(map[string]any)
			if !ok {
				continue
			}
			if kind == cfnTarget {
				rid, _ := json.Marshal(props["ResourceId"])
				for sid, sd := range svcs {
					if regexp.MustCompile(`(^|[^A-Za-z0-9])` + regexp.QuoteMeta(sid) + `([^A-Za-z0-9]|$)`).Match(rid) {
						resolved["ResourceId"] = "service/" + sd.cluster + "/" + sd.s.ServiceName
					}
				}
				targets[id] = resolved
			} else if ref := cfnRefName(props["ScalingTargetId"]); ref != "" {
				if t, ok := targets[ref]; ok {
					for _, k := range []string{"ResourceId", "ScalableDimension", "ServiceNamespace"} {
						if _, set := resolved[k]; !set {
							resolved[k] = t[k]
						}
					}
				}
			}
			body, _ := json.Marshal(resolved)
			whole, _ := json.Marshal(map[string]any{cfnTemplateName: map[string]any{id: map[string]any{propertiesKey(tpl.Resources[id]): resolved}}})
			d := &doc{path: file, data: whole, pos: pos, yaml: true, root: prefix}
			in.addPresence(pos, whole)
			typeErr := func(err error) error {
				var te *json.UnmarshalTypeError
				field := prefix
				if errors.As(err, &te) && te.Field != "" {
					field = source.JoinPath(prefix, te.Field)
				}
				return &source.InputError{File: file, Line: pos.Line(field), Field: field, Err: fmt.Errorf("not %s properties: %w", kind, err)}
			}
			if kind == cfnTarget {
				var t scalableTarget
				if err := json.Unmarshal(body, &t); err != nil {
					return typeErr(err)
				}
				d.kind = kindScalableTargets
				in.targets = append(in.targets, &targetDoc{doc: d, prefix: prefix, t: &t})
			} else {
				var p scalingPolicy
				if err := json.Unmarshal(body, &p); err != nil {
					return typeErr(err)
				}
				d.kind = kindScalingPolicies
				in.policies = append(in.policies, &policyDoc{doc: d, prefix: prefix, p: &p})
			}
			in.aux = append(in.aux, d)
		}
	}
	return nil
}

// propertiesKey returns the spelling of a resource's Properties key.
func propertiesKey(raw json.RawMessage) string {
	var m map[string]json.RawMessage
	_ = json.Unmarshal(raw, &m)
	for k := range m {
		if strings.EqualFold(k, "Properties") {
			return k
		}
	}
	return "Properties"
}

// cdkConstructID returns the id of the construct a CDK path names below
// its stack (Stack/Api/TaskDef/Resource gives Api, the construct the user
// wrote, whose children CDK's patterns name TaskDef or Service), or id.
func cdkConstructID(path, id string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	if len(parts) >= 2 && parts[1] != "" && parts[1] != "Resource" && parts[1] != "Default" {
		return parts[1]
	}
	return id
}

var cdkHashRE = regexp.MustCompile(`^[A-Za-z0-9]+[0-9A-F]{8}$`)

// cdkGenerated reports whether family is the name CDK generates from a
// construct path (the path's ids run together, then an 8-digit hash)
// rather than one the user set.
func cdkGenerated(family, path string) bool {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	if path == "" || len(parts) < 2 || !cdkHashRE.MatchString(family) {
		return false
	}
	stack := strings.Map(func(r rune) rune {
		if r < '0' || r > '9' && r < 'A' || r > 'Z' && r < 'a' || r > 'z' {
			return -1
		}
		return r
	}, parts[0])
	return stack != "" && strings.HasPrefix(family, stack)
}

// kebab turns WebTaskDef or web_task into web-task-def, web-task: the
// lower-kebab names Kubernetes objects take.
func kebab(s string) string {
	var b strings.Builder
	rs := []rune(s)
	for i, r := range rs {
		switch {
		case unicode.IsUpper(r):
			// A hyphen where a word starts (taskDef, HTTPServer), not
			// inside a hash (F1E2D3C4).
			if i > 0 && b.Len() > 0 && !strings.HasSuffix(b.String(), "-") &&
				(unicode.IsLower(rs[i-1]) || unicode.IsUpper(rs[i-1]) && i+1 < len(rs) && unicode.IsLower(rs[i+1])) {
				b.WriteByte('-')
			}
			b.WriteRune(unicode.ToLower(r))
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			if b.Len() > 0 && !strings.HasSuffix(b.String(), "-") {
				b.WriteByte('-')
			}
		}
	}
	return strings.Trim(b.String(), "-")
}

// cfnResolver resolves intrinsic functions from what the template says.
type cfnResolver struct {
	params map[string]any
	// names are the task definitions' families by logical id: a
	// service's TaskDefinition: !Ref TaskDef becomes the family it runs,
	// and a target group's Ref the ARN its target group doc holds.
	names map[string]string
	// svcNames are the lower-kebab names of the task definitions'
	// services: the family, else the CDK construct id, else the logical
	// id.
	svcNames map[string]string
	types    map[string]string
}

var (
	// yamlIntrinsicRE matches what yamlAsJSON makes of a short form.
	yamlIntrinsicRE = regexp.MustCompile(`^\$\{!(Ref|Sub|GetAtt|ImportValue|Join|Select|If|FindInMap|Base64|Split|GetAZs|Cidr) ?(.*)\}$`)
	subVarRE        = regexp.MustCompile(`\$\{([^}!]*)\}`)
	cdkAssetRE      = regexp.MustCompile(`cdk-[a-z0-9]+-container-assets-.*:([0-9a-f]{6,})$`)
)

// placeholder is the text a value the stack resolves becomes: a ${…}
// placeholder that names the intrinsic, so the value to fill and the
// report say which.
func placeholder(fn, arg string) string {
	arg = strings.NewReplacer("{", "(", "}", ")", "\n", " ").Replace(strings.TrimSpace(arg))
	if len(arg) > 80 {
		arg = arg[:80] + "…"
	}
	return "${" + strings.TrimSpace(fn+" "+arg) + "}"
}

func (r *cfnResolver) resolve(v any) any {
	return r.resolveDepth(v, 0)
}

func (r *cfnResolver) resolveDepth(v any, depth int) any {
	if depth > 50 {
		return placeholder("nested", "")
	}
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 1 {
			for k, arg := range x {
				if k == "Ref" || strings.HasPrefix(k, "Fn::") {
					return r.intrinsic(strings.TrimPrefix(k, "Fn::"), arg, depth)
				}
			}
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = r.resolveDepth(e, depth+1)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = r.resolveDepth(e, depth+1)
		}
		return out
	case string:
		if m := yamlIntrinsicRE.FindStringSubmatch(x); m != nil {
			switch m[1] {
			case "Ref":
				return r.intrinsic("Ref", m[2], depth)
			case "Sub":
				return r.intrinsic("Sub", m[2], depth)
			}
			return placeholder("!"+m[1], m[2])
		}
		return r.asset(x)
	}
	return v
}

// asset turns a CDK asset image, which `cdk deploy` builds and pushes to
// the bootstrap repository, into a placeholder that says so.
func (r *cfnResolver) asset(s string) string {
	if m := cdkAssetRE.FindStringSubmatch(s); m != nil {
		return "${CDK asset image " + m[1] + " built and pushed by cdk deploy: push it to a registry the cluster pulls from}"
	}
	return s
}

func (r *cfnResolver) intrinsic(fn string, arg any, depth int) any {
	text := func() string {
		b, _ := json.Marshal(arg)
		return strings.Trim(string(b), `"`)
	}
	switch fn {
	case "Ref":
		name, _ := arg.(string)
		if p, ok := r.params[name]; ok {
			return p
		}
		if n, ok := r.names[name]; ok {
			return n
		}
		if t := r.types[name]; t != "" {
			return placeholder("Ref", name+" ("+t+")")
		}
		return placeholder("Ref", name)
	case "Sub":
		var tmpl string
		vars := map[string]any{}
		switch a := arg.(type) {
		case string:
			tmpl = a
		case []any:
			if len(a) == 2 {
				tmpl, _ = a[0].(string)
				if m, ok := a[1].(map[string]any); ok {
					for k, v := range m {
						vars[k] = r.resolveDepth(v, depth+1)
					}
				}
			}
		}
		if tmpl == "" {
			return placeholder("Fn::Sub", text())
		}
		out := subVarRE.ReplaceAllStringFunc(tmpl, func(m string) string {
			name := m[2 : len(m)-1]
			v, ok := vars[name]
			if !ok {
				v, ok = r.params[name]
			}
			if s, isStr := v.(string); ok && isStr {
				return s
			}
			if ok && v != nil {
				if _, isMap := v.(map[string]any); !isMap {
					return fmt.Sprint(v)
				}
			}
			return m
		})
		return r.asset(out)
	case "Join":
		a, ok := arg.([]any)
		if ok && len(a) == 2 {
			sep, _ := a[0].(string)
			if parts, ok := r.resolveDepth(a[1], depth+1).([]any); ok {
				var ss []string
				for _, p := range parts {
					s, ok := p.(string)
					if !ok {
						return placeholder("Fn::Join", text())
					}
					ss = append(ss, s)
				}
				return r.asset(strings.Join(ss, sep))
			}
		}
		return placeholder("Fn::Join", text())
	}
	return placeholder("Fn::"+fn, text())
}

// cfnDecodable returns the resolved properties as JSON the importer's
// types decode. An intrinsic the template cannot resolve where a list, an
// object or a boolean belongs (Subnets: !Split [",", !ImportValue x])
// leaves its placeholder where no string fits: the field is taken out, and
// the report says which intrinsic stood there. Any other type error is
// the user's, and named with its line.
func cfnDecodable(file string, pos *source.Positions, prefix string, resolved map[string]any, typ string) ([]byte, []cfnNote, error) {
	d := &doc{path: file, pos: pos.Sub(prefix), yaml: true}
	var notes []cfnNote
	for range 64 {
		body, err := json.Marshal(resolved)
		if err != nil {
			return nil, nil, &source.InputError{File: file, Line: pos.Line(prefix), Field: prefix, Err: err}
		}
		d.data = body
		var derr error
		if typ == cfnTaskDef {
			derr = decode(d, &taskDefinition{})
		} else {
			derr = decode(d, &ecsService{})
		}
		if derr == nil {
			return body, notes, nil
		}
		var ie *source.InputError
		if !errors.As(derr, &ie) {
			return nil, nil, derr
		}
		s, ok := "", false
		if ie.Field != "" {
			s, ok = cutPath(resolved, ie.Field)
		}
		if !ok || !strings.HasPrefix(s, "${") {
			// The user's error: name the field as the file does.
			field := source.JoinPath(prefix, ie.Field)
			return nil, nil, &source.InputError{File: file, Line: pos.Line(field), Field: field, Err: ie.Err}
		}
		notes = append(notes, cfnNote{field: ie.Field, msg: fmt.Sprintf(
			"the stack resolves this at deploy time (%s), and cutover cannot: it is left out; set what it stands for by hand", s)})
	}
	return nil, nil, &source.InputError{File: file, Line: pos.Line(prefix), Field: prefix, Err: errors.New("too many unresolved intrinsic functions")}
}

// cfnNote is a field of a template taken out because an intrinsic stood
// where the importer's types want no string.
type cfnNote struct{ field, msg string }

// cutPath removes the string at path (a.b[0].c) from v and returns it.
func cutPath(v any, path string) (string, bool) {
	var keys []any
	for _, part := range strings.Split(path, ".") {
		name, rest, _ := strings.Cut(part, "[")
		if name != "" {
			keys = append(keys, name)
		}
		for rest != "" {
			idx, after, _ := strings.Cut(rest, "]")
			var i int
			if _, err := fmt.Sscan(idx, &i); err != nil {
				return "", false
			}
			keys = append(keys, i)
			rest = strings.TrimPrefix(after, "[")
		}
	}
	if len(keys) == 0 {
		return "", false
	}
	cur := v
	for _, k := range keys[:len(keys)-1] {
		switch key := k.(type) {
		case string:
			m, ok := cur.(map[string]any)
			if !ok {
				return "", false
			}
			cur = m[key]
		case int:
			l, ok := cur.([]any)
			if !ok || key < 0 || key >= len(l) {
				return "", false
			}
			cur = l[key]
		}
	}
	switch key := keys[len(keys)-1].(type) {
	case string:
		m, ok := cur.(map[string]any)
		if !ok {
			return "", false
		}
		s, ok := m[key].(string)
		if ok {
			delete(m, key)
		}
		return s, ok
	case int:
		l, ok := cur.([]any)
		if !ok || key < 0 || key >= len(l) {
			return "", false
		}
		s, ok := l[key].(string)
		if ok {
			l[key] = nil
		}
		return s, ok
	}
	return "", false
}

// addTemplateTargetGroup reads a target group of the template: a service
// whose LoadBalancers name it by Ref finds it under the ARN the Ref
// resolves to, and its health check becomes the readiness probe as a
// describe-target-groups entry's does.
func (in *inputs) addTemplateTargetGroup(file string, pos *source.Positions, id string, raw json.RawMessage, c cfnResource, r *cfnResolver) error {
	prefix := cfnTemplateName + "." + id + "." + propertiesKey(raw)
	var props map[string]any
	if json.Unmarshal(c.Properties, &props) != nil || props == nil {
		return nil // a target group nobody can use; a service naming it says so
	}
	resolved, ok := r.resolve(props).(map[string]any)
	if !ok {
		return nil
	}
	var tg targetGroup
	body, _ := json.Marshal(resolved)
	if err := json.Unmarshal(body, &tg); err != nil {
		var te *json.UnmarshalTypeError
		field := prefix
		if errors.As(err, &te) && te.Field != "" {
			field = source.JoinPath(prefix, te.Field)
		}
		return &source.InputError{File: file, Line: pos.Line(field), Field: field, Err: fmt.Errorf("not a target group's properties: %w", err)}
	}
	tg.TargetGroupArn = r.names[id]
	whole, _ := json.Marshal(map[string]any{cfnTemplateName: map[string]any{id: map[string]any{propertiesKey(raw): resolved}}})
	d := &doc{path: file, data: whole, pos: pos, yaml: true, kind: kindTargetGroups, root: prefix}
	in.addPresence(pos, whole)
	in.tgs = append(in.tgs, &tgDoc{doc: d, prefix: prefix, tg: &tg})
	in.aux = append(in.aux, d)
	return nil
}

// addPresence adds a resource's paths to what its file holds: the
// resources of one template share the file's positions.
func (in *inputs) addPresence(pos *source.Positions, whole []byte) {
	in.present = addPaths(in.present, pos, presence(whole))
	in.blank = addPaths(in.blank, pos, blanks(whole))
}

// addPaths adds paths to m[pos], making what is missing.
func addPaths(m map[*source.Positions]map[string]bool, pos *source.Positions, paths map[string]bool) map[*source.Positions]map[string]bool {
	if m == nil {
		m = map[*source.Positions]map[string]bool{}
	}
	if m[pos] == nil {
		m[pos] = map[string]bool{}
	}
	maps.Copy(m[pos], paths)
	return m
}

// cfnRefName returns the logical id a Ref names, in either form.
func cfnRefName(v any) string {
	switch x := v.(type) {
	case map[string]any:
		if s, ok := x["Ref"].(string); ok {
			return s
		}
	case string:
		if m := yamlIntrinsicRE.FindStringSubmatch(x); m != nil && m[1] == "Ref" {
			return strings.TrimSpace(m[2])
		}
	}
	return ""
}

// nameSource says where a resource's name came from.
func nameSource(cdkPath, id string) string {
	if c := cdkConstructID(cdkPath, ""); c != "" {
		return "its CDK construct " + c
	}
	return "its logical id " + id
}
