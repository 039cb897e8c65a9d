package lambda

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/cutoverhq/cutover/service"
)

// scalar is a field's value after the front end tried to resolve it.
type scalar struct {
	// text is the value when ok.
	text string
	ok   bool
	// note is non-empty when the value was resolved by an assumption
	// (a parameter's default, a stage's default): the caller warns.
	note string
	// secret is set when the value is a reference to a secret store
	// (a Serverless ${ssm:…}, a CloudFormation {{resolve:…}}); an
	// environment variable becomes an ExternalSecret key.
	secret *service.Secret
	// def is the default of the value to fill when !ok: the placeholder
	// the input had, or "".
	def string
	// reason says why the value is unknown, for the report.
	reason string
	// sensitive is set when an unknown value comes from somewhere that
	// holds secrets (a serverless.yml ${file(secrets.yml)}): it must
	// not become a value written into the values file.
	sensitive bool
}

// resolver turns a field into text the way its format evaluates it.
type resolver interface {
	resolve(v val) scalar
}

// plainResolver reads AWS CLI output: values are what they are, except
// CI placeholders that a pipeline was meant to replace.
type plainResolver struct{}

func (plainResolver) resolve(v val) scalar {
	s, ok := v.raw()
	if !ok {
		if v.absent() {
			return scalar{reason: "not set"}
		}
		return scalar{reason: "not a plain value: " + v.describe()}
	}
	return literal(s)
}

// literal checks a string for CI placeholders.
func literal(s string) scalar {
	if p := placeholder(s); p != "" {
		return scalar{def: s, reason: fmt.Sprintf("the input holds the placeholder %s, which a pipeline was meant to replace", p)}
	}
	return scalar{text: s, ok: true}
}

var placeholderRE = regexp.MustCompile(`\$\{[^}]*\}|#\{[^}]*\}|\{\{[^}]*\}\}|<[A-Z][A-Z0-9_]*>|^__[A-Z0-9_]+__$`)

// placeholder returns the first CI placeholder in s (<IMAGE1_NAME>,
// ${IMAGE}, #{Image}, {{image}}, __IMAGE__), or "".
func placeholder(s string) string {
	return placeholderRE.FindString(s)
}

// dynamicRef parses a CloudFormation dynamic reference,
// {{resolve:secretsmanager:id:SecretString:key:stage:version}},
// {{resolve:ssm-secure:name:version}} or {{resolve:ssm:name:version}}:
// values CloudFormation fetched at deploy time, which External Secrets
// fetches now.
func dynamicRef(s string) (*service.Secret, bool) {
	if !strings.HasPrefix(s, "{{resolve:") || !strings.HasSuffix(s, "}}") || strings.Count(s, "{{") != 1 {
		return nil, false
	}
	body := s[len("{{resolve:") : len(s)-2]
	store, rest, _ := strings.Cut(body, ":")
	switch store {
	case "secretsmanager":
		// The secret id may itself be an ARN, which holds six colons.
		id, tail := rest, ""
		if strings.HasPrefix(rest, "arn:") {
			parts := strings.SplitN(rest, ":", 8)
			if len(parts) < 7 {
				return nil, false
			}
			id = strings.Join(parts[:7], ":")
			if len(parts) == 8 {
				tail = parts[7]
			}
		} else if i := strings.IndexByte(rest, ':'); i >= 0 {
			id, tail = rest[:i], rest[i+1:]
		}
		if id == "" {
			return nil, false
		}
		sec := &service.Secret{Source: service.SecretsManager, Key: id}
		if a, err := parseARN(id); err == nil {
			sec.Region = a.Region
		}
		f := strings.Split(tail, ":")
		if len(f) > 1 {
			sec.Property = f[1]
		}
		if len(f) > 3 && f[3] != "" {
			sec.Version = f[3]
		} else if len(f) > 2 {
			sec.Version = f[2]
		}
		return sec, true
	case "ssm", "ssm-secure":
		name, _, _ := strings.Cut(rest, ":")
		if name == "" {
			return nil, false
		}
		return &service.Secret{Source: service.ParameterStore, Key: name}, true
	}
	return nil, false
}

// cfn resolves CloudFormation intrinsic functions as far as a template
// alone allows: parameters with a Default, the partition, joins and
// substitutions of those. Everything else (resource attributes, the
// account, imports) is only known once the stack exists.
type cfn struct {
	// params are the template's Parameters.
	params val
	// resources maps logical ids to their Type.
	resources map[string]string
	// used records parameters a converted property refers to (through
	// their Default or as a value to fill), so that the others are
	// reported as unused.
	used map[string]bool
	// region is the region the stack deploys to when the input says it
	// (serverless.yml's provider.region), for AWS::Region; "" when only
	// the deployment knows (SAM).
	region, regionNote string
}

// newCFN returns the resolver of a template's intrinsics: its Parameters
// and the Type of each of its Resources.
func newCFN(doc val) *cfn {
	res := doc.get("Resources")
	types := map[string]string{}
	for _, id := range res.keys() {
		typ, _ := res.get(id).get("Type").raw()
		types[id] = typ
	}
	return &cfn{params: doc.get("Parameters"), resources: types, used: map[string]bool{}}
}

// intrinsic returns the function name and argument of a CloudFormation
// intrinsic in short (!Ref x) or long ({"Ref": x}) form.
func intrinsic(v val) (string, val, bool) {
	n := deref(v.n)
	if n == nil {
		return "", val{}, false
	}
	if t := n.Tag; strings.HasPrefix(t, "!") && !strings.HasPrefix(t, "!!") {
		name := strings.TrimPrefix(t, "!")
		if name != "Ref" && name != "Condition" {
			name = "Fn::" + name
		}
		arg := v
		c := *n
		switch c.Kind {
		case yaml.MappingNode:
			c.Tag = "!!map"
		case yaml.SequenceNode:
			c.Tag = "!!seq"
		default:
			c.Tag = "!!str"
		}
		arg.n = &c
		return name, arg, true
	}
	if n.Kind == yaml.MappingNode && len(n.Content) == 2 && isIntrinsicKey(n.Content[0].Value) {
		return n.Content[0].Value, v.get(n.Content[0].Value), true
	}
	return "", val{}, false
}

func (r *cfn) resolve(v val) scalar { return r.eval(v, 0) }

func (r *cfn) eval(v val, depth int) scalar {
	if depth > 20 {
		return scalar{reason: "intrinsics nest too deep"}
	}
	name, arg, ok := intrinsic(v)
	if !ok {
		s, ok := v.raw()
		if !ok {
			if v.absent() {
				return scalar{reason: "not set"}
			}
			return scalar{reason: "not a plain value: " + v.describe()}
		}
		if sec, ok := dynamicRef(s); ok {
			return scalar{secret: sec, reason: fmt.Sprintf("%s is a dynamic reference CloudFormation resolved at deploy time", s)}
		}
		return literal(s)
	}
	unresolved := func(why string) scalar {
		return scalar{reason: fmt.Sprintf("%s cannot be resolved outside CloudFormation: %s", v.text(), why)}
	}
	switch name {
	case "Ref":
		id, ok := arg.raw()
		if !ok {
			return unresolved("Ref takes a name")
		}
		return r.ref(v, id)
	case "Fn::Sub":
		return r.sub(v, arg, depth)
	case "Fn::Join":
		items := arg.items()
		if len(items) != 2 {
			return unresolved("Fn::Join takes [delimiter, [values]]")
		}
		delim, ok := items[0].raw()
		if !ok {
			return unresolved("the delimiter is not a string")
		}
		var parts, notes []string
		for _, it := range items[1].items() {
			s := r.eval(it, depth+1)
			if !s.ok {
				return scalar{reason: fmt.Sprintf("%s: %s", v.text(), s.reason)}
			}
			parts = append(parts, s.text)
			if s.note != "" {
				notes = append(notes, s.note)
			}
		}
		return scalar{text: strings.Join(parts, delim), ok: true, note: strings.Join(notes, "; ")}
	case "Fn::GetAtt":
		target := arg.text()
		if items := arg.items(); len(items) > 0 {
			var p []string
			for _, it := range items {
				s, _ := it.raw()
				p = append(p, s)
			}
			target = strings.Join(p, ".")
		}
		id, _, _ := strings.Cut(target, ".")
		if typ := r.resources[id]; typ != "" {
			return unresolved(fmt.Sprintf("an attribute of the %s %s, known once the stack is deployed (aws cloudformation describe-stack-resources)", typ, id))
		}
		return unresolved("an attribute of a resource this template does not define")
	case "Fn::ImportValue":
		return unresolved("an export of another stack (aws cloudformation list-exports)")
	}
	return unresolved(name + " depends on the deployed stack or its conditions")
}

// ref resolves a Ref to a parameter or pseudo parameter.
func (r *cfn) ref(v val, id string) scalar {
	switch id {
	case "AWS::Partition":
		return scalar{text: "aws", ok: true, note: "AWS::Partition taken as aws"}
	case "AWS::URLSuffix":
		return scalar{text: "amazonaws.com", ok: true, note: "AWS::URLSuffix taken as amazonaws.com"}
	case "AWS::Region":
		if r.region != "" {
			note := "AWS::Region is the region the stack deploys to, " + r.region
			if r.regionNote != "" {
				note += " (" + r.regionNote + ")"
			}
			return scalar{text: r.region, ok: true, note: note + "; an environment in another region needs its own value"}
		}
		return scalar{reason: fmt.Sprintf("%s is the deployed stack's Region", v.text())}
	case "AWS::AccountId", "AWS::StackName", "AWS::StackId", "AWS::NotificationARNs", "AWS::NoValue":
		return scalar{reason: fmt.Sprintf("%s is the deployed stack's %s", v.text(), strings.TrimPrefix(id, "AWS::"))}
	}
	if p := r.params.get(id); !p.absent() {
		d := p.get("Default")
		if s, ok := d.raw(); ok && !d.absent() {
			r.used[id] = true
			d.t.Use(d.field)
			return scalar{text: s, ok: true, note: fmt.Sprintf("!Ref %s uses the parameter's Default %q; deployments that pass another value need it set in values", id, s)}
		}
		// Referenced: the parameter is reported with the value to fill
		// it became, not as unused.
		r.used[id] = true
		why := fmt.Sprintf("!Ref %s names a template parameter with no Default; its value is passed at deploy time", id)
		if allowed := p.get("AllowedValues").items(); len(allowed) > 0 {
			var vals []string
			for _, a := range allowed {
				if s, ok := a.raw(); ok {
					vals = append(vals, s)
				}
			}
			why += " (one of " + strings.Join(vals, ", ") + ")"
		}
		return scalar{reason: why}
	}
	if typ := r.resources[id]; typ != "" {
		return scalar{reason: fmt.Sprintf("!Ref %s names the %s the stack creates (its physical id is known once deployed: aws cloudformation describe-stack-resources)", id, typ)}
	}
	return scalar{reason: fmt.Sprintf("!Ref %s names nothing in this template", id)}
}

var subVarRE = regexp.MustCompile(`\$\{([^}]*)\}`)

// sub evaluates Fn::Sub "text ${Param} ${AWS::Partition}" and the
// [text, {vars}] form; ${!Literal} writes ${Literal}.
func (r *cfn) sub(v, arg val, depth int) scalar {
	tmpl, ok := arg.raw()
	var vars val
	if !ok {
		items := arg.items()
		if len(items) != 2 {
			return scalar{reason: v.text() + ": Fn::Sub takes a string or [string, {variables}]"}
		}
		if tmpl, ok = items[0].raw(); !ok {
			return scalar{reason: v.text() + ": Fn::Sub's template is not a string"}
		}
		vars = items[1]
	}
	var notes []string
	var failed *scalar
	out := subVarRE.ReplaceAllStringFunc(tmpl, func(m string) string {
		name := m[2 : len(m)-1]
		if strings.HasPrefix(name, "!") {
			return "${" + name[1:] + "}"
		}
		var s scalar
		switch vv := vars.get(name); {
		case vars.n != nil && !vv.absent():
			s = r.eval(vv, depth+1)
		case strings.Contains(name, "."):
			id, _, _ := strings.Cut(name, ".")
			s = scalar{reason: fmt.Sprintf("${%s} is an attribute of %s, known once the stack is deployed", name, id)}
		default:
			s = r.ref(v, name)
		}
		if !s.ok {
			if failed == nil {
				failed = &s
			}
			return m
		}
		if s.note != "" {
			notes = append(notes, s.note)
		}
		return s.text
	})
	if failed != nil {
		return scalar{reason: fmt.Sprintf("%s cannot be resolved outside CloudFormation: %s", v.text(), failed.reason)}
	}
	return scalar{text: out, ok: true, note: strings.Join(notes, "; ")}
}

// num resolves a numeric field. An expression the template alone cannot
// resolve leaves the format's default in place, with a warning: there is
// no value to fill in a number's place.
func (fn *function) num(v val) (n int64, note string, ok bool, err error) {
	s := fn.res.resolve(v)
	if !s.ok {
		v.t.Warn(v.field, "", s.reason+": the default applies; set it in values if it matters")
		return 0, "", false, nil
	}
	t := strings.TrimSpace(s.text)
	n, perr := strconv.ParseInt(t, 10, 64)
	if perr != nil {
		f, ferr := strconv.ParseFloat(t, 64)
		if ferr != nil || f != float64(int64(f)) {
			return 0, "", false, v.errf("want a whole number, got %q", s.text)
		}
		n = int64(f)
	}
	return n, s.note, true, nil
}

// word resolves a field that takes one of a few words (an enum): an
// expression cannot become a value to fill, so it leaves the default.
func (fn *function) word(v val) (w, note string, ok bool) {
	s := fn.res.resolve(v)
	if !s.ok {
		v.t.Warn(v.field, "", s.reason+": the default applies; set it in values if it matters")
		return "", "", false
	}
	return s.text, s.note, true
}

// flag resolves a boolean field.
func (fn *function) flag(v val) (b bool, note string, ok bool, err error) {
	w, note, ok := fn.word(v)
	if !ok {
		return false, "", false, nil
	}
	switch strings.ToLower(strings.TrimSpace(w)) {
	case "true", "yes", "on":
		return true, note, true, nil
	case "false", "no", "off":
		return false, note, true, nil
	}
	return false, "", false, v.errf("want true or false, got %q", w)
}

// report records v as mapped to target, or as a warning when it was
// resolved by an assumption.
func report(v val, target, note string) {
	if note != "" {
		v.t.Warn(v.field, target, note)
		return
	}
	v.t.Mapped(v.field, target)
}

// noProvisioned reports a provisioned concurrency of 0, which finish does
// not (it reports the replicas a positive one keeps warm): often the
// fallback of ${self:custom.isProd, 0} or an !If, whose note says so.
func noProvisioned(v val, n int64, note string) {
	if n != 0 {
		return
	}
	if note != "" {
		v.t.Warn(v.field, "", note+"; provisioned concurrency 0 keeps no replica warm beyond the autoscaler's minimum")
		return
	}
	v.t.Use(v.field)
}
