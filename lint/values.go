package lint

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	yaml3 "gopkg.in/yaml.v3"
	"sigs.k8s.io/yaml"

	"github.com/cutoverhq/cutover/source"
)

// node is one place in a merged values tree: a map of children, or a
// leaf value, remembering which file set it.
type node struct {
	children map[string]*node // non-nil for a map
	value    any              // a leaf: scalar, list, or nil
	file     string           // the file that set this node last
}

func (n *node) isMap() bool { return n.children != nil }

// valuesFile is one parsed values file.
type valuesFile struct {
	// Path is relative to the layout directory, slash-separated.
	Path string
	Data map[string]any
	// Lines maps the dotted path of every map key to its line.
	Lines map[string]int
}

// parseValues reads a values file the way Helm does (sigs.k8s.io/yaml,
// so keys are strings and numbers are JSON numbers). An empty file is an
// empty map. The error is a *source.InputError naming file and line.
func parseValues(path string, data []byte) (valuesFile, error) {
	var m map[string]any
	if err := yaml.Unmarshal(data, &m); err != nil {
		return valuesFile{}, &source.InputError{File: path, Line: yamlErrLine(err), Err: fmt.Errorf("cannot parse values: %w", err)}
	}
	if m == nil {
		m = map[string]any{}
	}
	lines := map[string]int{}
	var root yaml3.Node
	if yaml3.Unmarshal(data, &root) == nil && len(root.Content) > 0 {
		indexLines(lines, "", root.Content[0], 0)
	}
	return valuesFile{Path: path, Data: m, Lines: lines}, nil
}

// indexLines records the line of every map key by dotted path, for
// findings that point into a values file.
//
// Aliases are not followed: expanding them is exponential in the worst
// case (a billion laughs), and a key reached through an alias has no line
// of its own anyway.
func indexLines(out map[string]int, prefix string, n *yaml3.Node, depth int) {
	if n.Kind != yaml3.MappingNode || depth > 64 {
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		p := n.Content[i].Value
		if prefix != "" {
			p = prefix + "." + p
		}
		if _, seen := out[p]; !seen {
			out[p] = n.Content[i].Line
		}
		indexLines(out, p, n.Content[i+1], depth+1)
	}
}

var lineRE = regexp.MustCompile(`line (\d+)`)

func yamlErrLine(err error) int {
	if m := lineRE.FindStringSubmatch(err.Error()); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return 0
}

// merge applies src over dst with Helm's rules for -f files: a map
// merges into a map, anything else replaces what was there (so a later
// file wins), and every node set remembers file.
func merge(dst *node, src map[string]any, file string) {
	for k, v := range src {
		sub, isMap := v.(map[string]any)
		cur := dst.children[k]
		if isMap && cur != nil && cur.isMap() {
			cur.file = file
			merge(cur, sub, file)
			continue
		}
		dst.children[k] = build(v, file)
	}
}

func build(v any, file string) *node {
	m, ok := v.(map[string]any)
	if !ok {
		return &node{value: v, file: file}
	}
	n := &node{children: map[string]*node{}, file: file}
	merge(n, m, file)
	return n
}

func newTree() *node { return &node{children: map[string]*node{}} }

// leaf is one flattened value with the file that set it.
type leaf struct {
	value any
	file  string
}

// flatten lists the tree's leaves by dotted path. A null is kept, with
// the file that set it, although it means no value (Helm deletes keys set
// to null when it coalesces; show prints both as unset): the file that
// nulls a key is the one to blame when that key differs. An empty map is
// a leaf of its own, so that `{}` in one environment against values in
// another is seen.
func flatten(n *node, prefix string, out map[string]leaf) {
	if !n.isMap() {
		out[prefix] = leaf{n.value, n.file}
		return
	}
	if len(n.children) == 0 && prefix != "" {
		out[prefix] = leaf{map[string]any{}, n.file}
		return
	}
	for k, c := range n.children {
		p := k
		if prefix != "" {
			p = prefix + "." + k
		}
		flatten(c, p, out)
	}
}

// get returns the node at a dotted path, or nil.
func (n *node) get(path ...string) *node {
	for _, k := range path {
		if n == nil || !n.isMap() {
			return nil
		}
		n = n.children[k]
	}
	return n
}

// effective merges the values one environment of one service renders
// with: base, then the environment file, then the service file, then the
// service file's `environments.<env>` section, which the chart merges over
// the rest for that environment (<env> is the `environment` value, as the
// chart reads it, or else the environment file's name). The
// `environments` map itself is left out: no template reads it directly.
func effective(base, env, svc valuesFile, envName string) *node {
	t := newTree()
	merge(t, base.Data, base.Path)
	merge(t, env.Data, env.Path)
	rest := map[string]any{}
	for k, v := range svc.Data {
		if k != "environments" {
			rest[k] = v
		}
	}
	merge(t, rest, svc.Path)
	key := envName
	if n := t.get("environment"); n != nil && !n.isMap() {
		if s, ok := n.value.(string); ok && s != "" {
			key = s
		}
	}
	var over map[string]any
	if envs, ok := svc.Data["environments"].(map[string]any); ok {
		over, _ = envs[key].(map[string]any)
	}
	if over != nil {
		// Labelled by the environment file's name, which is what lint
		// reports on, even when its `environment` value differs.
		merge(t, over, svc.Path+envSection(envName))
	}
	return t
}

// environmentKeys reads base.yaml's `environmentKeys:` list.
func environmentKeys(base valuesFile) ([]string, error) {
	raw, ok := base.Data["environmentKeys"]
	if !ok || raw == nil {
		return nil, nil
	}
	list, ok := raw.([]any)
	if !ok {
		return nil, &source.InputError{File: base.Path, Field: "environmentKeys", Err: fmt.Errorf("must be a list of dotted value paths, not %s", typeName(raw))}
	}
	var keys []string
	for i, v := range list {
		s, ok := v.(string)
		if !ok || strings.TrimSpace(s) == "" {
			return nil, &source.InputError{File: base.Path, Field: fmt.Sprintf("environmentKeys[%d]", i), Err: fmt.Errorf("must be a dotted value path, not %s", typeName(v))}
		}
		keys = append(keys, strings.TrimSpace(s))
	}
	return keys, nil
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "a map"
	case []any:
		return "a list"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	default:
		return "a number"
	}
}

// declared reports whether path is an environment key or lies under one.
func declared(path string, keys []string) bool {
	for _, k := range keys {
		if path == k || strings.HasPrefix(path, k+".") {
			return true
		}
	}
	return false
}

// envValues is one environment's flattened effective values.
type envValues struct {
	Env    string
	Leaves map[string]leaf
	// Specific names the files whose content applies to this environment
	// only: a difference can only come from one of them.
	Specific map[string]bool
}

// drift compares the environments' values and returns one finding per
// environment and undeclared path whose value differs from another
// environment's, blamed on the environment-specific file that set it.
func drift(service string, envs []envValues, keys []string, baseFile string, files map[string]valuesFile) []Finding {
	paths := map[string]bool{}
	for _, e := range envs {
		for p := range e.Leaves {
			paths[p] = true
		}
	}
	var out []Finding
	for _, p := range sortedKeys(paths) {
		if p == "environmentKeys" || strings.HasPrefix(p, "environmentKeys.") || declared(p, keys) {
			continue
		}
		vals := make([]string, len(envs))
		same := true
		for i, e := range envs {
			vals[i] = show(e.Leaves[p])
			if vals[i] != vals[0] {
				same = false
			}
		}
		if same {
			continue
		}
		for i, e := range envs {
			l, ok := e.Leaves[p]
			if !ok || !e.Specific[l.file] {
				continue
			}
			var others []string
			for j, o := range envs {
				if j != i && vals[j] != vals[i] {
					others = append(others, fmt.Sprintf("%s in %s", vals[j], o.Env))
				}
			}
			file, line := lineOf(files, l.file, p)
			_, section := splitOrigin(l.file)
			if section != "" {
				section = " (set under " + section + ")"
			}
			out = append(out, Finding{
				Severity: Error,
				Service:  service,
				Env:      e.Env,
				Check:    CheckDrift,
				Source:   SourceCutover,
				Message: fmt.Sprintf("%s is %s here%s but %s; it is not an environment key: set it alike for every environment, or list it under environmentKeys in %s",
					p, vals[i], section, strings.Join(others, ", "), baseFile),
				File: file,
				Line: line,
			})
		}
	}
	return out
}

// show renders a leaf for a message: JSON, cut short.
func show(l leaf) string {
	if l.value == nil {
		return "unset"
	}
	b, err := json.Marshal(l.value)
	if err != nil {
		return fmt.Sprint(l.value)
	}
	s := string(b)
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// placeholderRE matches what CI templating leaves in place of a value:
// <IMAGE1_NAME>, ${IMAGE}, #{Image}, {{ .Image }}, __IMAGE__.
var placeholderRE = regexp.MustCompile(`^\s*(<[^<>]+>|\$\{[^}]*\}|#\{[^}]*\}|\{\{.*\}\}|__[A-Z0-9_]+__)\s*$`)

// unfilled lists the `fill:` keys of an environment's values that are
// still empty or still a CI placeholder, with the file that sets each.
func unfilled(t *node) []leafAt {
	f := t.get("fill")
	if f == nil || !f.isMap() {
		return nil
	}
	var out []leafAt
	for _, k := range sortedKeys(f.children) {
		c := f.children[k]
		if c.isMap() {
			continue
		}
		switch v := c.value.(type) {
		case nil:
			out = append(out, leafAt{Path: "fill." + k, File: c.file})
		case string:
			if strings.TrimSpace(v) == "" || placeholderRE.MatchString(v) {
				out = append(out, leafAt{Path: "fill." + k, File: c.file, Value: v})
			}
		}
	}
	return out
}

type leafAt struct {
	Path, File, Value string
}

// findLeaf finds the value a finding on a rendered object is about, so
// the finding can name the values file and line to change without knowing
// the chart's value names: the leaf whose value is exactly value (an image
// reference), or else the leaf named key (its last path segment) under a
// path containing scope ("maxUnavailable" under "pdb"). The first match in
// path order wins.
func findLeaf(leaves map[string]leaf, value, key, scope string) (string, leaf, bool) {
	for _, p := range sortedKeys(leaves) {
		l := leaves[p]
		if value != "" {
			if s, ok := l.value.(string); ok && s == value {
				return p, l, true
			}
			continue
		}
		if key == "" {
			return "", leaf{}, false
		}
		last := p
		if i := strings.LastIndex(p, "."); i >= 0 {
			last = p[i+1:]
		}
		if last == key && strings.Contains(strings.ToLower(p), scope) {
			return p, l, true
		}
	}
	return "", leaf{}, false
}

// envSection marks values a service file sets for one environment only.
func envSection(env string) string { return " (environments." + env + ")" }

// splitOrigin separates a node's origin into the file and the section of
// it, for messages.
func splitOrigin(origin string) (file, section string) {
	if i := strings.Index(origin, " ("); i >= 0 {
		return origin[:i], strings.Trim(origin[i+2:], ")")
	}
	return origin, ""
}

// lineOf finds the line of path in the file an origin names (under its
// environments.<env> section when it has one). files is keyed by path.
func lineOf(files map[string]valuesFile, origin, path string) (string, int) {
	file, section := splitOrigin(origin)
	if section != "" {
		path = section + "." + path
	}
	return file, files[file].Lines[path]
}
