package helm

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
	sigsyaml "sigs.k8s.io/yaml"
)

// The values files are written as yaml.v3 node trees rather than marshalled
// from maps: keys keep the order a reader expects (name before image, the
// fill comments above their keys), and the output is the same byte for byte
// on every run.

// ymap is a YAML mapping under construction.
type ymap struct{ n *yaml.Node }

func newMap() ymap { return ymap{&yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}} }

// set appends key: v. A nil v is skipped, so optional fields read as
// m.set("x", optional(...)).
func (m ymap) set(key string, v *yaml.Node) ymap {
	if v == nil {
		return m
	}
	m.n.Content = append(m.n.Content, keyNode(key), v)
	return m
}

// setc appends key: v with comment lines above the key.
func (m ymap) setc(key, comment string, v *yaml.Node) ymap {
	if v == nil {
		return m
	}
	k := keyNode(key)
	k.HeadComment = commentText(comment)
	m.n.Content = append(m.n.Content, k, v)
	return m
}

func (m ymap) node() *yaml.Node { return m.n }

func (m ymap) empty() bool { return len(m.n.Content) == 0 }

// orNil returns the mapping, or nil when it is empty.
func (m ymap) orNil() *yaml.Node {
	if m.empty() {
		return nil
	}
	return m.n
}

func keyNode(k string) *yaml.Node {
	n := str(k)
	return n
}

// commentText turns a free text into comment lines: yaml.v3 prefixes each
// line with "# " itself.
func commentText(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = "# " + l
	}
	return strings.Join(lines, "\n")
}

// str is a string scalar, quoted when a YAML 1.1 reader (Helm reads values
// with sigs.k8s.io/yaml) would take it for something else: "on", "yes",
// "0755", "1e3", "null", "~".
func str(s string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
	if needsQuote(s) {
		n.Style = yaml.DoubleQuotedStyle
	}
	return n
}

func needsQuote(s string) bool {
	if s == "" || strings.ContainsAny(s, "\n\t") {
		return true
	}
	var v map[string]any
	if err := sigsyaml.Unmarshal([]byte("v: "+s), &v); err != nil {
		return true
	}
	got, ok := v["v"].(string)
	return !ok || got != s
}

func intNode[T ~int32 | ~int64 | ~int](i T) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.FormatInt(int64(i), 10)}
}

func boolNode(b bool) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(b)}
}

// optStr is str(s), or nil when s is "".
func optStr(s string) *yaml.Node {
	if s == "" {
		return nil
	}
	return str(s)
}

// optInt is intNode(i), or nil when i is zero.
func optInt[T ~int32 | ~int64 | ~int](i T) *yaml.Node {
	if i == 0 {
		return nil
	}
	return intNode(i)
}

// optTrue is true, or nil when b is false.
func optTrue(b bool) *yaml.Node {
	if !b {
		return nil
	}
	return boolNode(true)
}

func seq(items ...*yaml.Node) *yaml.Node {
	n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	for _, it := range items {
		if it != nil {
			n.Content = append(n.Content, it)
		}
	}
	if len(n.Content) == 0 {
		n.Style = yaml.FlowStyle
	}
	return n
}

// optSeq is seq(items...), or nil when there are none.
func optSeq(items ...*yaml.Node) *yaml.Node {
	s := seq(items...)
	if len(s.Content) == 0 {
		return nil
	}
	return s
}

func strSeq(ss []string) *yaml.Node {
	items := make([]*yaml.Node, len(ss))
	for i, s := range ss {
		items[i] = str(s)
	}
	return seq(items...)
}

// emptyMap is {}.
func emptyMap() *yaml.Node {
	return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Style: yaml.FlowStyle}
}

// strMap is a mapping of strings in key order.
func strMap(m map[string]string) *yaml.Node {
	out := newMap()
	for _, k := range sortedKeys(m) {
		out.set(k, str(m[k]))
	}
	if out.empty() {
		return emptyMap()
	}
	return out.node()
}

// document encodes a mapping as a YAML document with a head comment.
func document(head string, m ymap) []byte {
	doc := &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{m.node()}}
	if head != "" {
		doc.HeadComment = commentText(head)
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		// Every node is built here from strings, ints and bools; an
		// encoding failure is a bug in this package.
		panic(fmt.Sprintf("helm: cannot encode values: %v", err))
	}
	_ = enc.Close()
	return b.Bytes()
}
