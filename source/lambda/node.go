package lambda

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/cutoverhq/cutover/source"
)

// val is one value of an input document together with where it came
// from: the tracker of its file and its path relative to the tracker's
// prefix. Every front end (CLI JSON, SAM, Serverless) reads through vals so
// that each mapping decision lands in the report at the right file, line
// and field.
//
// over is a fallback value whose fields show through where the val has
// none; it implements SAM's Globals (maps merge, lists append, scalars of
// the function win) without copying nodes, so each field still reports at
// its own place.
type val struct {
	n     *yaml.Node
	t     *source.Tracker
	field string
	over  *val
}

// absent reports whether the value is missing, null or the empty string:
// console exports write "" where a field was never set.
func (v val) absent() bool {
	return v.isEmpty() && (v.over == nil || v.over.absent())
}

// unset returns msg for a report row on v, said to be about a field the
// input did not set when v is absent: the report describes the input's
// fields, and a row on one it lacks names the default that applies.
func (v val) unset(msg string) string {
	if !v.absent() || strings.HasPrefix(msg, "not set") {
		return msg
	}
	return "not set: " + msg
}

func (v val) isEmpty() bool {
	if v.isNull() {
		return true
	}
	n := deref(v.n)
	return n.Kind == yaml.ScalarNode && n.Value == "" && (n.Tag == "!!str" || n.Tag == "")
}

func (v val) self() val { v.over = nil; return v }

func (v val) isNull() bool {
	n := deref(v.n)
	return n == nil || n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// kind returns the YAML node kind after aliases; 0 when absent.
func (v val) kind() yaml.Kind {
	if v.isNull() {
		if v.over != nil {
			return v.over.kind()
		}
		return 0
	}
	return deref(v.n).Kind
}

func (v val) isMap() bool    { return v.kind() == yaml.MappingNode }
func (v val) isSeq() bool    { return v.kind() == yaml.SequenceNode }
func (v val) isScalar() bool { return v.kind() == yaml.ScalarNode }

func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	if n != nil && n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		return deref(n.Content[0])
	}
	return n
}

// get returns the child value under key. Absent children are vals with a
// nil node, still carrying the path, so a caller can report a default at
// the parent's line.
func (v val) get(key string) val {
	c := v.self().child(key)
	if v.over == nil {
		return c
	}
	o := v.over.get(key)
	if c.isNull() {
		if o.isNull() {
			return c
		}
		return o
	}
	if o.isNull() {
		return c
	}
	// Both have it: maps merge and lists append (SAM Globals); a scalar
	// of the function wins, and the overridden global is consumed.
	if (c.isMap() && o.isMap()) || (c.isSeq() && o.isSeq()) {
		c.over = &o
		return c
	}
	o.t.Use(o.field)
	return c
}

func (v val) child(key string) val {
	out := val{t: v.t, field: source.JoinPath(v.field, key)}
	n := deref(v.n)
	if n == nil || n.Kind != yaml.MappingNode {
		return out
	}
	ks, vs := pairs(n, 0)
	for i, k := range ks {
		if k == key {
			out.n = vs[i]
			return out
		}
	}
	return out
}

// pairs returns a mapping's keys and values with YAML merge keys
// (<<: *defaults, <<: [*a, *b]) resolved: the map's own keys first and
// winning, then each merged map's in order, as YAML 1.1 and the
// Serverless Framework read them.
func pairs(n *yaml.Node, depth int) (keys []string, vals []*yaml.Node) {
	n = deref(n)
	if n == nil || n.Kind != yaml.MappingNode || depth > 10 {
		return nil, nil
	}
	seen := map[string]bool{}
	var merged []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if k.Value == "<<" && k.Tag == "!!merge" {
			if v := deref(n.Content[i+1]); v != nil && v.Kind == yaml.SequenceNode {
				merged = append(merged, v.Content...)
			} else {
				merged = append(merged, n.Content[i+1])
			}
			continue
		}
		if !seen[k.Value] {
			seen[k.Value] = true
			keys, vals = append(keys, k.Value), append(vals, n.Content[i+1])
		}
	}
	for _, m := range merged {
		mk, mv := pairs(m, depth+1)
		for i, k := range mk {
			if !seen[k] {
				seen[k] = true
				keys, vals = append(keys, k), append(vals, mv[i])
			}
		}
	}
	return keys, vals
}

// keys returns the keys of a map in input order, fallback keys after
// the value's own.
func (v val) keys() []string {
	var out []string
	seen := map[string]bool{}
	add := func(n *yaml.Node) {
		ks, _ := pairs(n, 0)
		for _, k := range ks {
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	add(v.n)
	for o := v.over; o != nil; o = o.over {
		add(o.n)
	}
	return out
}

// items returns the elements of a list: the fallback's first (SAM puts
// Globals list items before the function's), then the value's own.
func (v val) items() []val {
	var out []val
	if v.over != nil {
		out = append(out, v.over.items()...)
	}
	n := deref(v.n)
	if n == nil || n.Kind != yaml.SequenceNode {
		return out
	}
	for i, c := range n.Content {
		out = append(out, val{n: c, t: v.t, field: fmt.Sprintf("%s[%d]", v.field, i)})
	}
	return out
}

// line is the 1-based line of the value, or of its nearest present
// ancestor.
func (v val) line() int {
	if v.t != nil {
		if l := v.t.Line(v.field); l > 0 {
			return l
		}
	}
	if v.n != nil {
		return v.n.Line
	}
	return 0
}

// errf returns an *source.InputError at the value.
func (v val) errf(format string, args ...any) error {
	return &source.InputError{File: v.t.File, Line: v.line(), Field: source.JoinPath(v.t.Prefix, v.field), Err: fmt.Errorf(format, args...)}
}

// path is the value's full field path in its file.
func (v val) path() string { return source.JoinPath(v.t.Prefix, v.field) }

// raw returns the scalar text of a plain (untagged or core-tagged) scalar.
// ok is false for maps, lists, nulls and custom-tagged scalars such as
// !Ref: those are intrinsics the front end must resolve.
func (v val) raw() (string, bool) {
	if v.isNull() {
		return "", false
	}
	n := deref(v.n)
	if n.Kind != yaml.ScalarNode || !strings.HasPrefix(n.Tag, "!!") {
		return "", false
	}
	return n.Value, true
}

// str returns a plain scalar as a string; a map, list or intrinsic is an
// input error, because the field only takes text.
func (v val) str() (string, error) {
	s, ok := v.raw()
	if !ok {
		return "", v.errf("want a string, got %s", v.describe())
	}
	return s, nil
}

// int returns a plain scalar as an integer.
func (v val) int() (int64, error) {
	s, ok := v.raw()
	if !ok {
		return 0, v.errf("want a number, got %s", v.describe())
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if ferr != nil || f != float64(int64(f)) {
			return 0, v.errf("want a whole number, got %q", s)
		}
		n = int64(f)
	}
	return n, nil
}

// boolean returns a plain scalar as a bool ("true", "false", any case).
func (v val) boolean() (bool, error) {
	s, ok := v.raw()
	if !ok {
		return false, v.errf("want true or false, got %s", v.describe())
	}
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "yes", "on":
		return true, nil
	case "false", "no", "off":
		return false, nil
	}
	return false, v.errf("want true or false, got %q", s)
}

// strs returns a list of plain strings, or a single string as a list of
// one (CloudFormation and Serverless accept both in many places).
func (v val) strs() ([]string, error) {
	if v.absent() {
		return nil, nil
	}
	if v.isScalar() {
		s, err := v.str()
		if err != nil {
			return nil, err
		}
		return []string{s}, nil
	}
	if !v.isSeq() {
		return nil, v.errf("want a list of strings, got %s", v.describe())
	}
	var out []string
	for _, it := range v.items() {
		s, err := it.str()
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// describe names what the value is, for error messages.
func (v val) describe() string {
	n := deref(v.n)
	switch {
	case v.isNull():
		return "nothing"
	case n.Kind == yaml.MappingNode:
		if len(n.Content) >= 2 && isIntrinsicKey(n.Content[0].Value) {
			return "the intrinsic " + n.Content[0].Value
		}
		return "an object"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case !strings.HasPrefix(n.Tag, "!!"):
		return "the intrinsic " + n.Tag
	}
	return fmt.Sprintf("%q", n.Value)
}

// text renders any value as compact text for reports and value
// defaults: scalars as they are, intrinsics in their short YAML form.
func (v val) text() string {
	n := deref(v.n)
	if n == nil {
		return ""
	}
	if n.Kind == yaml.ScalarNode {
		if strings.HasPrefix(n.Tag, "!!") {
			return n.Value
		}
		return n.Tag + " " + n.Value
	}
	c := *n
	c.Style = yaml.FlowStyle
	b, err := yaml.Marshal(&c)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func isIntrinsicKey(k string) bool {
	return k == "Ref" || k == "Condition" || strings.HasPrefix(k, "Fn::")
}

// parseDoc parses a JSON or YAML file into its root node and the position
// index the tracker uses. JSON is checked by encoding/json first so a
// syntax error names the line the JSON decoder saw.
func parseDoc(f source.File) (*yaml.Node, *source.Positions, error) {
	data := f.Data
	if isJSON(data) {
		if err := checkJSON(f.Path, data); err != nil {
			return nil, nil, err
		}
		data = unescapeSlashes(data)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, nil, source.SyntaxError(f.Path, err)
	}
	// The position index walks aliases as if they were copies: a
	// recursive alias would never end, and nested ones could multiply a
	// small file into billions of nodes.
	budget := maxExpandedNodes
	if err := checkAliases(f.Path, &root, map[*yaml.Node]bool{}, &budget); err != nil {
		return nil, nil, err
	}
	pos, err := source.ParsePositions(f.Path, data)
	if err != nil {
		return nil, nil, err
	}
	return &root, pos, nil
}

func isJSON(data []byte) bool {
	t := bytes.TrimLeft(data, " \t\r\n\ufeff")
	t = bytes.TrimPrefix(t, []byte("\xef\xbb\xbf"))
	return len(t) > 0 && (t[0] == '{' || t[0] == '[')
}

// unescapeSlashes turns the JSON escape \/ (which YAML does not know)
// into /, leaving every other byte and so every line number alone.
func unescapeSlashes(data []byte) []byte {
	if !bytes.Contains(data, []byte(`\/`)) {
		return data
	}
	out := make([]byte, 0, len(data))
	inStr, esc := false, false
	for _, c := range data {
		switch {
		case esc:
			esc = false
			if c == '/' {
				out = out[:len(out)-1]
			}
		case inStr && c == '\\':
			esc = true
		case c == '"':
			inStr = !inStr
		}
		out = append(out, c)
	}
	return out
}

// checkJSON reports a JSON syntax error with its line.
func checkJSON(file string, data []byte) error {
	var v any
	err := json.Unmarshal(data, &v)
	if err == nil {
		return nil
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return &source.InputError{File: file, Line: source.LineOfOffset(data, se.Offset), Err: fmt.Errorf("cannot parse JSON: %v", err)}
	}
	return &source.InputError{File: file, Err: fmt.Errorf("cannot parse JSON: %v", err)}
}

// nodeStr is a plain string node, for values the importer supplies.
func nodeStr(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
}

// compactJSON renders an object as compact JSON (a schedule's input).
func compactJSON(v val) string {
	var x any
	if err := deref(v.n).Decode(&x); err != nil {
		return v.text()
	}
	b, err := json.Marshal(x)
	if err != nil {
		return v.text()
	}
	return string(b)
}

// maxExpandedNodes bounds a document with its aliases expanded.
const maxExpandedNodes = 200_000

// checkAliases refuses aliases that refer to their own anchor, and
// documents that expand beyond maxExpandedNodes.
func checkAliases(file string, n *yaml.Node, path map[*yaml.Node]bool, budget *int) error {
	if n == nil {
		return nil
	}
	*budget--
	if *budget < 0 {
		return &source.InputError{File: file, Line: n.Line, Err: fmt.Errorf("YAML aliases expand to more than %d nodes", maxExpandedNodes)}
	}
	if n.Kind == yaml.AliasNode {
		if path[n.Alias] {
			return &source.InputError{File: file, Line: n.Line, Err: fmt.Errorf("alias *%s refers to its own anchor", n.Value)}
		}
		return checkAliases(file, n.Alias, path, budget)
	}
	path[n] = true
	defer delete(path, n)
	for _, c := range n.Content {
		if err := checkAliases(file, c, path, budget); err != nil {
			return err
		}
	}
	return nil
}
