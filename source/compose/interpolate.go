package compose

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/compose-spec/compose-go/v2/template"
	"gopkg.in/yaml.v3"

	"github.com/cutoverhq/cutover/source"
)

// Interpolation happens here rather than in compose-go, because compose-go
// fails the whole load on `${VAR:?err}` and silently blanks `${VAR}` when
// VAR is unset, while a conversion must go on and tell the user what to
// fill. Before compose-go sees a file, every `$` expression is resolved
// against the environment; an unset variable without a default becomes a
// sentinel in the few fields where the importer can turn it into a value
// to fill (image, environment, command…), and anywhere else the field is
// left out and reported. The result is re-escaped ($ → $$) so compose-go's
// own interpolation is a no-op on it.

const (
	sentinelOpen  = "\u2983" // ⦃
	sentinelClose = "\u2984" // ⦄
)

var sentinelRe = regexp.MustCompile(sentinelOpen + `([A-Za-z0-9_]+)` + sentinelClose)

func sentinel(name string) string { return sentinelOpen + name + sentinelClose }

// sentinelVars returns the unset variables a string holds, in order, once.
func sentinelVars(s string) []string {
	var out []string
	seen := map[string]bool{}
	for _, m := range sentinelRe.FindAllStringSubmatch(s, -1) {
		if !seen[m[1]] {
			seen[m[1]] = true
			out = append(out, m[1])
		}
	}
	return out
}

// hasSentinel reports whether s holds an unset variable.
func hasSentinel(s string) bool { return strings.Contains(s, sentinelOpen) }

// restoreVars writes the sentinels of s back as ${NAME}, the form the user
// wrote, for defaults and messages.
func restoreVars(s string) string {
	return sentinelRe.ReplaceAllString(s, "$${$1}")
}

// replaceVars replaces every sentinel of s with f(name).
func replaceVars(s string, f func(name string) string) string {
	return sentinelRe.ReplaceAllStringFunc(s, func(m string) string {
		return f(sentinelRe.FindStringSubmatch(m)[1])
	})
}

// unsetVar is a variable the input used without a value and without a
// default.
type unsetVar struct {
	Name string
	// Message is the `${VAR:?message}` text; "" when none.
	Message string
}

// omitted is a field left out because it used an unset variable where a
// value to fill cannot go (a port, a duration, a count).
type omitted struct {
	File string
	Path string
	Vars []string
	// Raw is the value as written.
	Raw string
	// Kept is what was kept of a port whose host side was unset: its
	// container port ("8000/tcp"); "" when the whole field was left out.
	Kept string
}

// interpolator resolves the variables of one compose project.
type interpolator struct {
	env     map[string]string
	unset   map[string]*unsetVar
	omitted []omitted
	// defaulted lists the variables whose default was used.
	defaulted map[string]bool
	// blank lists the unset variables an included file uses where no
	// value to fill can stand: compose-go substitutes them as "" there
	// (see project.scanIncluded).
	blank map[string]bool
	// withheld lists the variables that are set but look like secrets
	// (LDAP_ADMIN_PASSWORD) and were used in a field the importer maps
	// back from a sentinel: their value is never written to the output,
	// the container reads them from Secrets Manager (see conv.varEnv).
	withheld map[string]bool
	// path is the field being interpolated; "" outside prepare, where
	// nothing is withheld (paths read from the compose host).
	path string
}

func newInterpolator(env map[string]string) *interpolator {
	return &interpolator{env: env, unset: map[string]*unsetVar{}, defaulted: map[string]bool{}, blank: map[string]bool{}, withheld: map[string]bool{}}
}

func (ip *interpolator) lookup(name string) (string, bool) {
	v, ok := ip.env[name]
	return v, ok
}

var varNameRe = regexp.MustCompile(`^\$\{?([A-Za-z_][A-Za-z0-9_]*)(.*)$`)

// replace is a template.ReplacementFunc: it resolves one `$` expression.
func (ip *interpolator) replace(substring string, mapping template.Mapping, cfg *template.Config) (string, error) {
	m := varNameRe.FindStringSubmatch(substring)
	if m == nil {
		// "$$" and malformed expressions: compose-go's rules.
		return template.DefaultReplacementFunc(substring, mapping, cfg)
	}
	name, rest := m[1], m[2]
	braced := strings.HasPrefix(substring, "${")
	if end := closingBrace(substring); braced && end >= 0 && end+1 < len(substring) {
		// compose-go hands "${A:-x}:${B}" over as one expression and
		// would substitute ":${B}" itself: blank, and logged, where B is
		// unset. Each expression is resolved here.
		head, err := ip.replace(substring[:end+1], mapping, cfg)
		if err != nil {
			return "", err
		}
		tail, err := ip.substitute(substring[end+1:])
		if err != nil {
			return "", err
		}
		return head + tail, nil
	}
	op := ""
	if braced {
		for _, o := range []string{":?", "?", ":-", "-", ":+", "+"} {
			if strings.HasPrefix(rest, o) {
				op = o
				break
			}
		}
	}
	val, set := ip.env[name]
	if set && val != "" && op != ":+" && op != "+" && secretField(ip.path) && secretLooking(name, val) {
		// A password interpolated into a command or health check would
		// land in the chart in plain text.
		ip.withheld[name] = true
		return sentinel(name), nil
	}
	switch op {
	case ":-", "-", ":+", "+":
		if !set || (val == "" && strings.HasPrefix(op, ":")) {
			if op == ":-" || op == "-" {
				ip.defaulted[name] = true
			}
		}
		return template.DefaultReplacementFunc(substring, mapping, cfg)
	case ":?", "?":
		if set && (val != "" || op == "?") {
			return val, nil
		}
		msg := strings.TrimSuffix(strings.TrimPrefix(rest, op), "}")
		ip.markUnset(name, msg)
		return ip.unsetValue(name), nil
	}
	if set {
		return template.DefaultReplacementFunc(substring, mapping, cfg)
	}
	ip.markUnset(name, "")
	return ip.unsetValue(name), nil
}

// split returns, once each and in order, the variables of vars that are
// unset and those withheld as secrets.
func (ip *interpolator) split(vars []string) (unset, secret []string) {
	seen := map[string]bool{}
	for _, v := range vars {
		if seen[v] {
			continue
		}
		seen[v] = true
		if ip.withheld[v] {
			secret = append(secret, v)
		} else {
			unset = append(unset, v)
		}
	}
	return unset, secret
}

// closingBrace returns the index of the brace that closes the "${" s
// starts with, counting nested ones (${A:-${B}}), or -1.
func closingBrace(s string) int {
	depth := 0
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

// unsetValue is what an unset variable without a default becomes: its
// sentinel, or "" where an included file uses it in a field no value to
// fill can take.
func (ip *interpolator) unsetValue(name string) string {
	if ip.blank[name] {
		return ""
	}
	return sentinel(name)
}

func (ip *interpolator) markUnset(name, msg string) {
	if u, ok := ip.unset[name]; ok {
		if u.Message == "" {
			u.Message = msg
		}
		return
	}
	ip.unset[name] = &unsetVar{Name: name, Message: msg}
}

func (ip *interpolator) substitute(s string) (string, error) {
	return template.SubstituteWithOptions(s, ip.lookup,
		template.WithReplacementFunction(ip.replace), template.WithoutLogging)
}

// maxNodes bounds alias expansion: a file of nested aliases (the "billion
// laughs") must fail, not exhaust memory.
const maxNodes = 200_000

// prepare resolves the variables of one file and returns the YAML that
// compose-go loads. root is the parsed document; it is modified.
func (ip *interpolator) prepare(file string, pos *source.Positions, root *yaml.Node) ([]byte, error) {
	budget := maxNodes
	if err := expandAliases(root, &budget, 0); err != nil {
		return nil, &source.InputError{File: file, Err: err}
	}
	if len(root.Content) == 0 {
		return nil, &source.InputError{File: file, Err: errors.New("the file is empty")}
	}
	if err := ip.walk(file, pos, "", root.Content[0], false); err != nil {
		return nil, err
	}
	out, err := yaml.Marshal(root)
	if err != nil {
		return nil, &source.InputError{File: file, Err: fmt.Errorf("cannot re-encode after interpolation: %w", err)}
	}
	return out, nil
}

func (ip *interpolator) walk(file string, pos *source.Positions, path string, n *yaml.Node, ext bool) error {
	switch n.Kind {
	case yaml.ScalarNode:
		return nil // handled by the parent, which may remove it
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			child := path
			if k.Value != "<<" {
				child = joinPath(path, k.Value)
			}
			childExt := ext || (path == "" && strings.HasPrefix(k.Value, "x-"))
			keep, err := ip.scalar(file, pos, child, v, childExt)
			if err != nil {
				return err
			}
			if !keep {
				n.Content = append(n.Content[:i], n.Content[i+2:]...)
				i -= 2
				continue
			}
			if err := ip.walk(file, pos, child, v, childExt); err != nil {
				return err
			}
		}
	case yaml.SequenceNode:
		kept := n.Content[:0]
		for i, v := range n.Content {
			child := fmt.Sprintf("%s[%d]", path, i)
			keep, err := ip.scalar(file, pos, child, v, ext)
			if err != nil {
				return err
			}
			if !keep {
				continue
			}
			// A long-syntax entry (a volume or port mapping) missing the
			// field an unset variable held is invalid or wrong (a bind
			// mount without source): the whole entry is left out, as a
			// short-syntax one is.
			raw := ""
			if v.Kind == yaml.MappingNode && hasDollar(v) {
				raw = flowText(v)
			}
			before := len(ip.omitted)
			if err := ip.walk(file, pos, child, v, ext); err != nil {
				return err
			}
			if raw != "" && len(ip.omitted) > before && !onlyPublished(path, ip.omitted[before:]) {
				var vars []string
				seen := map[string]bool{}
				for _, o := range ip.omitted[before:] {
					for _, name := range o.Vars {
						if !seen[name] {
							seen[name] = true
							vars = append(vars, name)
						}
					}
				}
				ip.omitted = append(ip.omitted[:before], omitted{File: file, Path: child, Vars: vars, Raw: raw})
				continue
			}
			kept = append(kept, v)
		}
		n.Content = kept
	}
	return nil
}

// hasDollar reports whether a scalar under n holds a $.
func hasDollar(n *yaml.Node) bool {
	if n.Kind == yaml.ScalarNode {
		return strings.Contains(n.Value, "$")
	}
	for _, c := range n.Content {
		if hasDollar(c) {
			return true
		}
	}
	return false
}

// flowText is n as one line of flow YAML, for the report.
func flowText(n *yaml.Node) string {
	cp := *n
	cp.Style = yaml.FlowStyle
	cp.HeadComment, cp.LineComment, cp.FootComment = "", "", ""
	out, err := yaml.Marshal(&cp)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// scalar interpolates a scalar node in place and reports whether it stays.
func (ip *interpolator) scalar(file string, pos *source.Positions, path string, n *yaml.Node, ext bool) (bool, error) {
	if n.Kind != yaml.ScalarNode || !strings.Contains(n.Value, "$") {
		return true, nil
	}
	ip.path = path
	out, err := ip.substitute(n.Value)
	ip.path = ""
	if err != nil {
		return false, &source.InputError{File: file, Line: pos.Line(path), Field: path,
			Err: fmt.Errorf("invalid interpolation %q: write a literal $ as $$", n.Value)}
	}
	if vars := sentinelVars(out); len(vars) > 0 && !ext && !sentinelAllowed(path) {
		if v, ok := unsetBindSource(path, out); ok {
			// "${UPLOAD_LOCATION}:/data": the mount stays, its host
			// side unknown; storage.go says what it became.
			n.Value = strings.ReplaceAll(v, "$", "$$")
			n.Tag = "!!str"
			n.Style = yaml.DoubleQuotedStyle
			return true, nil
		}
		if target, ok := unpublished(path, out); ok {
			// "${HOST_PORT}:8000": only the host port is unknown, and
			// on Kubernetes the container port is what counts.
			ip.omitted = append(ip.omitted, omitted{File: file, Path: path, Vars: vars, Raw: n.Value, Kept: target})
			n.Value = target
			n.Tag = "!!str"
			n.Style = yaml.DoubleQuotedStyle
			return true, nil
		}
		ip.omitted = append(ip.omitted, omitted{File: file, Path: path, Vars: vars, Raw: n.Value})
		return false, nil
	}
	n.Value = strings.ReplaceAll(out, "$", "$$")
	n.Tag = "!!str"
	n.Style = yaml.DoubleQuotedStyle
	return true, nil
}

// sentinelAllowed reports whether an unset variable at path can become a
// value to fill: the importer maps the sentinel back there. Elsewhere
// compose-go would reject or misread it (a port, a size, a count).
func sentinelAllowed(path string) bool {
	parts := splitPath(path)
	if len(parts) < 3 || parts[0] != "services" {
		if len(parts) == 3 && (parts[0] == "secrets" || parts[0] == "configs") && parts[2] == "file" {
			return true
		}
		return false
	}
	switch parts[2] {
	case "image", "environment", "command", "entrypoint", "working_dir", "user", "labels", "build":
		return true
	case "healthcheck":
		return len(parts) >= 4 && parts[3] == "test"
	case "deploy":
		return len(parts) >= 4 && parts[3] == "labels"
	}
	return false
}

// secretField reports whether a secret-looking variable at path is
// withheld (left as a sentinel): every field whose sentinels the importer
// maps back, so that no secret reaches the chart in plain text. In a
// command, entrypoint or health check the sentinel becomes a reference to
// an env var read from the Secret; in an environment value, the variable
// itself does; the image, working_dir, user, labels and build args cannot
// refer to an env var, so there the value is left out or left to fill.
func secretField(path string) bool { return sentinelAllowed(path) && splitPath(path)[0] == "services" }

// splitPath splits "services.web.ports[0]" into services, web, ports, [0].
func splitPath(path string) []string {
	var out []string
	for _, p := range strings.Split(path, ".") {
		if i := strings.IndexByte(p, '['); i > 0 {
			out = append(out, p[:i], p[i:])
			continue
		}
		out = append(out, p)
	}
	return out
}

func joinPath(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

// expandAliases replaces every alias node with a copy of its anchor, so
// each use is interpolated (and reported) at its own path.
func expandAliases(n *yaml.Node, budget *int, depth int) error {
	if depth > 200 {
		return errors.New("cannot parse: YAML nested too deeply")
	}
	for i, c := range n.Content {
		*budget--
		if *budget < 0 {
			return errors.New("cannot parse: too many YAML nodes after alias expansion")
		}
		if c.Kind == yaml.AliasNode && c.Alias != nil {
			cp, err := copyNode(c.Alias, budget, depth+1)
			if err != nil {
				return err
			}
			n.Content[i] = cp
			continue
		}
		if err := expandAliases(c, budget, depth+1); err != nil {
			return err
		}
	}
	return nil
}

func copyNode(n *yaml.Node, budget *int, depth int) (*yaml.Node, error) {
	if depth > 200 {
		return nil, errors.New("cannot parse: YAML nested too deeply")
	}
	*budget--
	if *budget < 0 {
		return nil, errors.New("cannot parse: too many YAML nodes after alias expansion")
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		return copyNode(n.Alias, budget, depth+1)
	}
	cp := *n
	cp.Anchor = ""
	cp.Content = make([]*yaml.Node, len(n.Content))
	for i, c := range n.Content {
		cc, err := copyNode(c, budget, depth+1)
		if err != nil {
			return nil, err
		}
		cp.Content[i] = cc
	}
	return &cp, nil
}

// emptyAfterInterpolation marks handled the fields under prefix that
// interpolation made empty (`platform: ${DOCKER_PLATFORM:-}`): compose
// ignores an empty field, and so does the conversion, rather than report
// a field it "does not map" that says nothing.
func (pr *project) emptyAfterInterpolation(t *ftrack, prefix string) {
	for i, f := range pr.files {
		var walk func(path string, n *yaml.Node, depth int)
		walk = func(path string, n *yaml.Node, depth int) {
			n = resolve(n)
			if n == nil || depth > 50 {
				return
			}
			switch n.Kind {
			case yaml.ScalarNode:
				if !strings.Contains(n.Value, "$") {
					return
				}
				if out, err := pr.ip.substitute(n.Value); err == nil && strings.TrimSpace(out) == "" {
					t.in(i).Use(path)
				}
			case yaml.MappingNode:
				for _, kv := range source.MapEntries(n) {
					if kv[0].Value != "<<" {
						walk(path+"."+kv[0].Value, kv[1], depth+1)
					}
				}
			case yaml.SequenceNode:
				for j, c := range n.Content {
					walk(fmt.Sprintf("%s[%d]", path, j), c, depth+1)
				}
			}
		}
		walk(prefix, f.node(prefix), 0)
	}
}

var portTargetRe = regexp.MustCompile(`^[0-9]{1,5}(-[0-9]{1,5})?(/[a-z]+)?$`)

// unpublished returns the container side of a short-syntax port entry
// (services.x.ports[i]) whose unset variables are all on its host side.
func unpublished(path, value string) (string, bool) {
	parts := splitPath(path)
	if len(parts) != 4 || parts[0] != "services" || parts[2] != "ports" {
		return "", false
	}
	i := strings.LastIndexByte(value, ':')
	if i < 0 {
		return "", false
	}
	target := value[i+1:]
	if hasSentinel(target) || !portTargetRe.MatchString(target) {
		return "", false
	}
	return target, true
}

// onlyPublished reports whether the fields left out of a long-syntax port
// entry are only its host side (published, host_ip): the entry stays,
// unpublished, with its container port.
func onlyPublished(list string, left []omitted) bool {
	if !strings.HasSuffix(list, ".ports") {
		return false
	}
	for _, o := range left {
		if !strings.HasSuffix(o.Path, ".published") && !strings.HasSuffix(o.Path, ".host_ip") {
			return false
		}
	}
	return true
}

// unsetBindSource returns a short-syntax volume entry (services.x.volumes[i])
// whose unset variables are all in its host path, rewritten so compose
// reads it as a bind mount ("/⦃X⦄:/data"), or false.
func unsetBindSource(path, value string) (string, bool) {
	parts := splitPath(path)
	if len(parts) != 4 || parts[0] != "services" || parts[2] != "volumes" {
		return "", false
	}
	src, rest, ok := strings.Cut(value, ":")
	if !ok || !hasSentinel(src) || hasSentinel(rest) || !strings.HasPrefix(rest, "/") {
		return "", false
	}
	if !strings.HasPrefix(src, "/") && !strings.HasPrefix(src, ".") && !strings.HasPrefix(src, "~") {
		src = "/" + src
	}
	return src + ":" + rest, true
}
