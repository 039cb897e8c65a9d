package helm

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
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

// child returns the mapping under key, appending an empty one when there
// is none.
func (m ymap) child(key string) ymap {
	for i := 0; i+1 < len(m.n.Content); i += 2 {
		if m.n.Content[i].Value == key && m.n.Content[i+1].Kind == yaml.MappingNode {
			return ymap{m.n.Content[i+1]}
		}
	}
	c := newMap()
	m.n.Style &^= yaml.FlowStyle // {} until now
	m.set(key, c.node())
	return c
}

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
	if k == "<<" {
		// Plain, it would be YAML 1.1's merge key.
		n.Style = yaml.DoubleQuotedStyle
	}
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
//
// Invalid UTF-8 (a systemd unit is read as bytes) is replaced by U+FFFD:
// YAML cannot hold it as a string, and the encoder would panic.
func str(s string) *yaml.Node {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
	if needsQuote(s) {
		n.Style = yaml.DoubleQuotedStyle
	}
	return n
}

// needsQuote reports whether s, written as a plain scalar after "key: ",
// would not read back as the same string with Helm's reader
// (sigs.k8s.io/yaml over go.yaml.in/yaml/v2, YAML 1.1): because the
// scanner would stop early or refuse it, or because the resolver would
// type it (bool, null, number).
//
// It decides from the rules directly. It used to ask the reader itself,
// which cost a full YAML parse per string and was 40% of converting a
// thousand task definitions; TestNeedsQuoteAgreesWithReader and
// FuzzNeedsQuote hold it to the reader's answer. Where a rule would be
// costly to state exactly it errs towards quoting, which is always safe.
func needsQuote(s string) bool {
	if s == "" {
		return true
	}
	if !plainSafeChars(s) {
		return true
	}
	switch c := s[0]; c {
	case ' ':
		return true
	case '-', '?', ':':
		// Indicators, unless a non-blank follows ("--port", ":8080").
		if len(s) == 1 || s[1] == ' ' {
			return true
		}
	case ',', '[', ']', '{', '}', '#', '&', '*', '!', '|', '>', '\'', '"', '%', '@', '`':
		return true
	}
	if s[len(s)-1] == ' ' || s[len(s)-1] == ':' {
		return true
	}
	if strings.Contains(s, ": ") || strings.Contains(s, " #") {
		return true
	}
	return resolvesAsNonString(s)
}

// plainSafeChars reports whether every character of s may stand in a
// one-line plain scalar: printable, not a line break or a tab, valid UTF-8.
// A byte order mark is quoted too, although the reader would keep it:
// other YAML tools strip or refuse it.
func plainSafeChars(s string) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				return false
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1,
			r >= 0x80 && r <= 0x9f,     // C1 controls, NEL (a YAML 1.1 line break)
			r == 0x2028 || r == 0x2029, // line and paragraph separators
			r == 0xfeff, r == 0xfffe, r == 0xffff:
			return false
		}
		i += n
	}
	return true
}

// yaml11Words are the plain scalars YAML 1.1 reads as a bool, a null,
// an infinity or not-a-number. (The merge key << is one only as a key.)
var yaml11Words = map[string]bool{}

func init() {
	for _, w := range strings.Fields(`y Y yes Yes YES n N no No NO true True TRUE false False FALSE
		on On ON off Off OFF ~ null Null NULL .nan .NaN .NAN .inf .Inf .INF
		+.inf +.Inf +.INF -.inf -.Inf -.INF`) {
		yaml11Words[w] = true
	}
}

// resolvesAsNonString reports whether the YAML 1.1 resolver of Helm's
// reader types the plain scalar s as something other than a string.
func resolvesAsNonString(s string) bool {
	if yaml11Words[s] {
		return true
	}
	switch c := s[0]; {
	case c == '.':
		_, err := strconv.ParseFloat(s, 64)
		return err == nil
	case c == '+' || c == '-' || c >= '0' && c <= '9':
	default:
		return false
	}
	// A date or timestamp (2024-01-31) is resolved as one, but kept as the
	// string it was when read into an interface{}, as Helm does: it stays
	// a string, and so is not a number either.
	if looksLikeTimestamp(s) {
		return false
	}
	plain := strings.ReplaceAll(s, "_", "")
	if _, err := strconv.ParseInt(plain, 0, 64); err == nil {
		return true
	}
	if _, err := strconv.ParseUint(plain, 0, 64); err == nil {
		return true
	}
	if yaml11Float(plain) {
		if _, err := strconv.ParseFloat(plain, 64); err == nil {
			return true
		}
	}
	if b, ok := strings.CutPrefix(plain, "0b"); ok {
		if _, err := strconv.ParseUint(b, 2, 64); err == nil {
			return true
		}
	} else if b, ok := strings.CutPrefix(plain, "-0b"); ok {
		if _, err := strconv.ParseInt("-"+b, 2, 64); err == nil {
			return true
		}
	}
	return false
}

// yaml11Float matches [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?,
// the YAML 1.1 float syntax the reader accepts, without a regexp.
func yaml11Float(s string) bool {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	} else {
		if digits() == 0 {
			return false
		}
		if i < len(s) && s[i] == '.' {
			i++
			digits()
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}

// timestampLayouts are the forms the reader takes for a YAML timestamp.
var timestampLayouts = []string{
	"2006-1-2T15:4:5.999999999Z07:00",
	"2006-1-2t15:4:5.999999999Z07:00",
	"2006-1-2 15:4:5.999999999",
	"2006-1-2",
}

// looksLikeTimestamp reports whether the reader resolves s as a
// timestamp: four digits, a dash, then one of timestampLayouts.
func looksLikeTimestamp(s string) bool {
	if len(s) < 5 || s[4] != '-' {
		return false
	}
	for i := 0; i < 4; i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	for _, l := range timestampLayouts {
		if _, err := time.Parse(l, s); err == nil {
			return true
		}
	}
	return false
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
