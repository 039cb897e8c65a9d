package source

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Positions maps field paths of a JSON or YAML document to their lines, so
// that errors and report findings can name the line of a field.
//
// Paths use dots for object keys and [i] for list items, starting at the
// document root: "taskDefinition.containerDefinitions[0].memory". A nil
// *Positions answers 0 (unknown) for every path.
type Positions struct {
	lines map[string]int
	// leaves are the paths of scalar values that say something: not null,
	// not "". Tracker uses them to report every field nobody mapped.
	leaves map[string]bool
	// aliasBudget bounds the nodes indexed, counting those reached through
	// aliases; see walk.
	aliasBudget int
}

// ParsePositions indexes data, which may be JSON or YAML. A syntax error is
// returned as an *InputError naming the file and line.
func ParsePositions(file string, data []byte) (*Positions, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, SyntaxError(file, err)
	}
	p := &Positions{lines: map[string]int{}, leaves: map[string]bool{}, aliasBudget: 100000}
	if len(root.Content) > 0 {
		p.walk("", root.Content[0])
	}
	return p, nil
}

func (p *Positions) walk(path string, n *yaml.Node) {
	// Aliases are expanded, so a field reached through one gets the line
	// where its value is written, but only within a budget: unbounded
	// expansion would let a "billion laughs" document of a few hundred
	// bytes index billions of paths.
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil || p.aliasBudget <= 0 {
			return
		}
		n = n.Alias
	}
	p.aliasBudget--
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag != "!!null" && n.Value != "" && path != "" {
			p.leaves[path] = true
		}
	case yaml.MappingNode:
		// Merged fields are indexed as the map's own, but only those it
		// does not override: the report describes what a decoder reads.
		for _, kv := range MapEntries(n) {
			k, v := kv[0], kv[1]
			child := k.Value
			if path != "" {
				child = path + "." + k.Value
			}
			if _, seen := p.lines[child]; !seen {
				p.lines[child] = k.Line
			}
			p.walk(child, v)
		}
	case yaml.SequenceNode:
		for i, v := range n.Content {
			child := fmt.Sprintf("%s[%d]", path, i)
			p.lines[child] = v.Line
			p.walk(child, v)
		}
	}
}

// MapEntries returns the key/value pairs of a YAML mapping as a decoder
// reads them: its own keys first, then those merged in with `<<` that it
// does not set itself, each key once. Of several merge sources
// (`<<: [*a, *b]`) the first that sets a key wins, and a source's own
// merge keys come after its own keys, as YAML's merge type says. Values
// are returned as written (an alias stays an alias).
func MapEntries(n *yaml.Node) [][2]*yaml.Node {
	var out [][2]*yaml.Node
	seen := map[string]bool{}
	// done holds the maps already merged: merging one twice adds no key,
	// and skipping it keeps a document that merges the same anchors over
	// and over (a "billion laughs" of merge keys) linear.
	done := map[*yaml.Node]bool{}
	var add func(m *yaml.Node)
	add = func(m *yaml.Node) {
		if done[m] {
			return
		}
		done[m] = true
		var merges []*yaml.Node
		for i := 0; i+1 < len(m.Content); i += 2 {
			k, v := m.Content[i], m.Content[i+1]
			if k.Value == "<<" {
				merges = append(merges, mergeSources(v)...)
				continue
			}
			if !seen[k.Value] {
				seen[k.Value] = true
				out = append(out, [2]*yaml.Node{k, v})
			}
		}
		for _, s := range merges {
			add(s)
		}
	}
	if n != nil && n.Kind == yaml.MappingNode {
		add(n)
	}
	return out
}

// mergeSources returns the maps a merge key's value names: an alias, or a
// sequence of aliases.
func mergeSources(v *yaml.Node) []*yaml.Node {
	var out []*yaml.Node
	add := func(n *yaml.Node) {
		if n.Kind == yaml.AliasNode && n.Alias != nil {
			n = n.Alias
		}
		if n.Kind == yaml.MappingNode {
			out = append(out, n)
		}
	}
	if v.Kind == yaml.SequenceNode {
		for _, n := range v.Content {
			add(n)
		}
	} else {
		add(v)
	}
	return out
}

// Line returns the line of path, or of its nearest indexed ancestor, or 0.
func (p *Positions) Line(path string) int {
	if p == nil {
		return 0
	}
	for path != "" {
		if l, ok := p.lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i <= 0 {
			break
		}
		path = path[:i]
	}
	return 0
}

// Holds reports whether the document has path: a key or a list item,
// whatever its value. A report row on a field the input does not hold
// must say so ("not set: …").
func (p *Positions) Holds(path string) bool {
	if p == nil {
		return false
	}
	_, ok := p.lines[path]
	return ok
}

// FieldAt returns the deepest field path whose key is on line, or "" when
// none is; parsers that only know a line (yaml.v3 type errors) use it to
// name the field.
func (p *Positions) FieldAt(line int) string {
	if p == nil || line <= 0 {
		return ""
	}
	best := ""
	for k, l := range p.lines {
		if l == line && (len(k) > len(best) || len(k) == len(best) && k < best) {
			best = k
		}
	}
	return best
}

// Sub returns a view of p rooted at prefix, so code that parses an inner
// object (the taskDefinition inside describe-task-definition output) can
// use paths relative to it.
func (p *Positions) Sub(prefix string) *Positions {
	if p == nil || prefix == "" {
		return p
	}
	q := &Positions{lines: map[string]int{}, leaves: map[string]bool{}}
	rel := func(k string) (string, bool) {
		if strings.HasPrefix(k, prefix+".") {
			return k[len(prefix)+1:], true
		}
		if strings.HasPrefix(k, prefix+"[") {
			return k[len(prefix):], true
		}
		return "", false
	}
	for k, l := range p.lines {
		if r, ok := rel(k); ok {
			q.lines[r] = l
		}
	}
	for k := range p.leaves {
		if r, ok := rel(k); ok {
			q.leaves[r] = true
		}
	}
	return q
}

// SyntaxError turns a JSON or YAML parser error into an *InputError with
// the line the parser reported.
func SyntaxError(file string, err error) error {
	line := 0
	var te *yaml.TypeError
	msg := err.Error()
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	// yaml.v3 messages look like "yaml: line 7: did not find expected key".
	if i := strings.Index(msg, "line "); i >= 0 {
		rest := msg[i+5:]
		j := 0
		for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
			j++
		}
		if n, convErr := strconv.Atoi(rest[:j]); convErr == nil {
			line = n
			msg = strings.TrimPrefix(strings.TrimSpace(strings.TrimPrefix(rest[j:], ":")), "yaml: ")
		}
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	return &InputError{File: file, Line: line, Err: fmt.Errorf("cannot parse: %s", msg)}
}

// LineOfOffset returns the 1-based line of a byte offset in data; JSON
// decoders report offsets.
func LineOfOffset(data []byte, offset int64) int {
	if offset > int64(len(data)) {
		offset = int64(len(data))
	}
	line := 1
	for _, b := range data[:offset] {
		if b == '\n' {
			line++
		}
	}
	return line
}
