package audit

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// The canonical encoding is RFC 8785, the JSON Canonicalization Scheme
// (JCS): object members sorted by their names' UTF-16 code units, no
// insignificant whitespace, strings with the minimal escapes, numbers as
// ECMAScript prints a double. An auditor can therefore re-check a log with
// any JCS library instead of re-implementing ours (docs/audit.md).

// maxDepth bounds nesting so hostile input cannot exhaust the stack.
const maxDepth = 64

// maxSafeInteger is 2^53, beyond which a double no longer holds every
// integer; record sequence numbers stay below it.
const maxSafeInteger = 1 << 53

// errCanonical marks input that is valid JSON but has no canonical form
// without losing information (a duplicate member, an integer beyond 2^53).
var errCanonical = errors.New("no canonical form")

// Canonicalize returns the RFC 8785 encoding of the JSON text in. It
// refuses what JCS cannot encode faithfully: invalid UTF-8, lone UTF-16
// surrogates, duplicate member names, numbers outside the range of a
// double, and integers written without a fraction or exponent that a
// double cannot hold with the same digits (beyond 2^53, a double would
// round them silently: write such values as strings).
func Canonicalize(in []byte) ([]byte, error) {
	p := &jcsParser{in: in}
	p.skipSpace()
	out, err := p.value(nil, 0)
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.pos != len(p.in) {
		return nil, p.errorf("unexpected data after the JSON value")
	}
	return out, nil
}

type jcsParser struct {
	in  []byte
	pos int
}

func (p *jcsParser) errorf(format string, args ...any) error {
	return fmt.Errorf("offset %d: %s", p.pos, fmt.Sprintf(format, args...))
}

func (p *jcsParser) skipSpace() {
	for p.pos < len(p.in) {
		switch p.in[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

// value appends the canonical form of the value at p.pos to out.
func (p *jcsParser) value(out []byte, depth int) ([]byte, error) {
	if depth > maxDepth {
		return nil, p.errorf("nested deeper than %d", maxDepth)
	}
	if p.pos >= len(p.in) {
		return nil, p.errorf("unexpected end of JSON")
	}
	switch c := p.in[p.pos]; {
	case c == '{':
		return p.object(out, depth)
	case c == '[':
		return p.array(out, depth)
	case c == '"':
		s, err := p.string()
		if err != nil {
			return nil, err
		}
		return appendString(out, s), nil
	case c == 't':
		return p.literal(out, "true")
	case c == 'f':
		return p.literal(out, "false")
	case c == 'n':
		return p.literal(out, "null")
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number(out)
	default:
		return nil, p.errorf("unexpected character %q", c)
	}
}

func (p *jcsParser) literal(out []byte, lit string) ([]byte, error) {
	if len(p.in)-p.pos < len(lit) || string(p.in[p.pos:p.pos+len(lit)]) != lit {
		return nil, p.errorf("invalid literal")
	}
	p.pos += len(lit)
	return append(out, lit...), nil
}

type member struct {
	name  string
	key   []uint16 // the name in UTF-16, JCS's sort key
	value []byte
}

func (p *jcsParser) object(out []byte, depth int) ([]byte, error) {
	p.pos++ // {
	var members []member
	p.skipSpace()
	if p.pos < len(p.in) && p.in[p.pos] == '}' {
		p.pos++
		return append(out, '{', '}'), nil
	}
	for {
		p.skipSpace()
		if p.pos >= len(p.in) || p.in[p.pos] != '"' {
			return nil, p.errorf("expected a member name")
		}
		name, err := p.string()
		if err != nil {
			return nil, err
		}
		p.skipSpace()
		if p.pos >= len(p.in) || p.in[p.pos] != ':' {
			return nil, p.errorf("expected ':' after member name")
		}
		p.pos++
		p.skipSpace()
		v, err := p.value(nil, depth+1)
		if err != nil {
			return nil, err
		}
		members = append(members, member{name: name, value: v})
		p.skipSpace()
		if p.pos >= len(p.in) {
			return nil, p.errorf("unexpected end of JSON in object")
		}
		if p.in[p.pos] == ',' {
			p.pos++
			continue
		}
		if p.in[p.pos] == '}' {
			p.pos++
			break
		}
		return nil, p.errorf("expected ',' or '}' in object")
	}
	if len(members) > 1 {
		sorted := true
		for i := 1; i < len(members); i++ {
			if members[i-1].name >= members[i].name {
				sorted = false
				break
			}
		}
		// UTF-8 byte order equals code point order, which differs from
		// UTF-16 order only for names holding characters above U+FFFF
		// beside ones in U+E000..U+FFFF; compare in UTF-16 when unsure.
		if !sorted || !allBMPBelowSurrogates(members) {
			for i := range members {
				members[i].key = utf16.Encode([]rune(members[i].name))
			}
			sort.SliceStable(members, func(i, j int) bool { return lessUTF16(members[i].key, members[j].key) })
		}
		for i := 1; i < len(members); i++ {
			if members[i-1].name == members[i].name {
				return nil, fmt.Errorf("member %q appears twice: %w", members[i].name, errCanonical)
			}
		}
	}
	out = append(out, '{')
	for i, m := range members {
		if i > 0 {
			out = append(out, ',')
		}
		out = appendString(out, m.name)
		out = append(out, ':')
		out = append(out, m.value...)
	}
	return append(out, '}'), nil
}

func allBMPBelowSurrogates(ms []member) bool {
	for _, m := range ms {
		for i := 0; i < len(m.name); i++ {
			if m.name[i] >= 0xED { // lead bytes of U+D000 and above
				return false
			}
		}
	}
	return true
}

func lessUTF16(a, b []uint16) bool {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return len(a) < len(b)
}

func (p *jcsParser) array(out []byte, depth int) ([]byte, error) {
	p.pos++ // [
	out = append(out, '[')
	p.skipSpace()
	if p.pos < len(p.in) && p.in[p.pos] == ']' {
		p.pos++
		return append(out, ']'), nil
	}
	for n := 0; ; n++ {
		if n > 0 {
			out = append(out, ',')
		}
		p.skipSpace()
		var err error
		if out, err = p.value(out, depth+1); err != nil {
			return nil, err
		}
		p.skipSpace()
		if p.pos >= len(p.in) {
			return nil, p.errorf("unexpected end of JSON in array")
		}
		if p.in[p.pos] == ',' {
			p.pos++
			continue
		}
		if p.in[p.pos] == ']' {
			p.pos++
			return append(out, ']'), nil
		}
		return nil, p.errorf("expected ',' or ']' in array")
	}
}

// string reads a JSON string and returns its value.
func (p *jcsParser) string() (string, error) {
	p.pos++ // "
	start := p.pos
	// Fast path: no escapes.
	for p.pos < len(p.in) {
		c := p.in[p.pos]
		if c == '"' {
			s := p.in[start:p.pos]
			if !utf8.Valid(s) {
				return "", p.errorf("invalid UTF-8 in string")
			}
			p.pos++
			return string(s), nil
		}
		if c == '\\' || c < 0x20 {
			break
		}
		p.pos++
	}
	var b strings.Builder
	b.Write(p.in[start:p.pos])
	for {
		if p.pos >= len(p.in) {
			return "", p.errorf("unterminated string")
		}
		c := p.in[p.pos]
		switch {
		case c == '"':
			p.pos++
			s := b.String()
			if !utf8.ValidString(s) {
				return "", p.errorf("invalid UTF-8 in string")
			}
			return s, nil
		case c < 0x20:
			return "", p.errorf("control character in string")
		case c == '\\':
			if p.pos+1 >= len(p.in) {
				return "", p.errorf("unterminated escape")
			}
			e := p.in[p.pos+1]
			p.pos += 2
			switch e {
			case '"', '\\', '/':
				b.WriteByte(e)
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'u':
				r, err := p.hex4()
				if err != nil {
					return "", err
				}
				if utf16.IsSurrogate(r) {
					if r >= 0xDC00 {
						return "", p.errorf("lone low surrogate")
					}
					if p.pos+1 >= len(p.in) || p.in[p.pos] != '\\' || p.in[p.pos+1] != 'u' {
						return "", p.errorf("lone high surrogate")
					}
					p.pos += 2
					r2, err := p.hex4()
					if err != nil {
						return "", err
					}
					if r2 < 0xDC00 || r2 > 0xDFFF {
						return "", p.errorf("high surrogate not followed by a low one")
					}
					r = utf16.DecodeRune(r, r2)
				}
				b.WriteRune(r)
			default:
				return "", p.errorf("invalid escape \\%c", e)
			}
		default:
			b.WriteByte(c)
			p.pos++
		}
	}
}

func (p *jcsParser) hex4() (rune, error) {
	if p.pos+4 > len(p.in) {
		return 0, p.errorf("short \\u escape")
	}
	v, err := strconv.ParseUint(string(p.in[p.pos:p.pos+4]), 16, 32)
	if err != nil {
		return 0, p.errorf("invalid \\u escape")
	}
	p.pos += 4
	return rune(v), nil
}

func (p *jcsParser) number(out []byte) ([]byte, error) {
	start := p.pos
	if p.in[p.pos] == '-' {
		p.pos++
	}
	digits := func() int {
		n := 0
		for p.pos < len(p.in) && p.in[p.pos] >= '0' && p.in[p.pos] <= '9' {
			p.pos++
			n++
		}
		return n
	}
	if p.pos < len(p.in) && p.in[p.pos] == '0' {
		p.pos++
	} else if digits() == 0 {
		return nil, p.errorf("invalid number")
	}
	integer := true
	if p.pos < len(p.in) && p.in[p.pos] == '.' {
		integer = false
		p.pos++
		if digits() == 0 {
			return nil, p.errorf("invalid number: no digits after '.'")
		}
	}
	if p.pos < len(p.in) && (p.in[p.pos] == 'e' || p.in[p.pos] == 'E') {
		integer = false
		p.pos++
		if p.pos < len(p.in) && (p.in[p.pos] == '+' || p.in[p.pos] == '-') {
			p.pos++
		}
		if digits() == 0 {
			return nil, p.errorf("invalid number: no digits in exponent")
		}
	}
	lit := string(p.in[start:p.pos])
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil {
		return nil, fmt.Errorf("number %s out of range: %w", lit, errCanonical)
	}
	// An integer a double cannot hold exactly would come out with other
	// digits: refuse it rather than change a count or an ID silently. The
	// test is whether the literal is its double's shortest spelling, which
	// every canonical output is, so canonicalizing stays idempotent.
	if integer && strconv.FormatFloat(f, 'f', -1, 64) != lit {
		return nil, fmt.Errorf("integer %s does not fit a double and would change digits; write it as a string: %w", lit, errCanonical)
	}
	return appendNumber(out, f), nil
}

// appendNumber appends f as ECMAScript's Number.prototype.toString prints
// it, which is what RFC 8785 requires: the shortest digits that read back
// as f, in plain notation for 1e-7 <= |f| < 1e21, exponent notation
// otherwise. f must be finite.
func appendNumber(out []byte, f float64) []byte {
	if f == 0 {
		return append(out, '0') // -0 too
	}
	if f < 0 {
		out = append(out, '-')
		f = -f
	}
	// FormatFloat 'e' with precision -1 gives the shortest round-trip
	// digits: d.ddddde±xx.
	s := strconv.FormatFloat(f, 'e', -1, 64)
	ePos := strings.IndexByte(s, 'e')
	mant, exp := s[:ePos], s[ePos+1:]
	digits := strings.Replace(mant, ".", "", 1)
	e, _ := strconv.Atoi(exp)
	k := len(digits)
	n := e + 1 // f = 0.digits × 10^n
	switch {
	case k <= n && n <= 21:
		out = append(out, digits...)
		for i := 0; i < n-k; i++ {
			out = append(out, '0')
		}
	case 0 < n && n <= 21:
		out = append(out, digits[:n]...)
		out = append(out, '.')
		out = append(out, digits[n:]...)
	case -6 < n && n <= 0:
		out = append(out, '0', '.')
		for i := 0; i < -n; i++ {
			out = append(out, '0')
		}
		out = append(out, digits...)
	default:
		out = append(out, digits[0])
		if k > 1 {
			out = append(out, '.')
			out = append(out, digits[1:]...)
		}
		out = append(out, 'e')
		if n-1 >= 0 {
			out = append(out, '+')
		}
		out = strconv.AppendInt(out, int64(n-1), 10)
	}
	return out
}

// appendString appends s as a JCS string: only '"', '\\' and the control
// characters are escaped, the common ones by their short forms, the rest
// as \u00xx in lower-case hex. s must be valid UTF-8.
func appendString(out []byte, s string) []byte {
	const hex = "0123456789abcdef"
	out = append(out, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		out = append(out, s[start:i]...)
		switch c {
		case '"':
			out = append(out, '\\', '"')
		case '\\':
			out = append(out, '\\', '\\')
		case '\b':
			out = append(out, '\\', 'b')
		case '\f':
			out = append(out, '\\', 'f')
		case '\n':
			out = append(out, '\\', 'n')
		case '\r':
			out = append(out, '\\', 'r')
		case '\t':
			out = append(out, '\\', 't')
		default:
			out = append(out, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
		}
		start = i + 1
	}
	out = append(out, s[start:]...)
	return append(out, '"')
}

// checkCanonical reports whether b is exactly its own RFC 8785 encoding:
// what Canonicalize(b) == b says, without building anything, because
// verify asks it of every record's data. It returns ErrNotCanonical, or
// the error Canonicalize gives for what is not JSON at all.
func checkCanonical(b []byte) error {
	c := &jcsChecker{in: b}
	if err := c.value(0); err != nil {
		return err
	}
	if c.pos != len(b) {
		return ErrNotCanonical
	}
	return nil
}

type jcsChecker struct {
	in  []byte
	pos int
}

func (c *jcsChecker) value(depth int) error {
	if depth > maxDepth || c.pos >= len(c.in) {
		return ErrNotCanonical
	}
	switch ch := c.in[c.pos]; {
	case ch == '{':
		return c.object(depth)
	case ch == '[':
		c.pos++
		if c.pos < len(c.in) && c.in[c.pos] == ']' {
			c.pos++
			return nil
		}
		for {
			if err := c.value(depth + 1); err != nil {
				return err
			}
			if c.pos >= len(c.in) {
				return ErrNotCanonical
			}
			if c.in[c.pos] == ']' {
				c.pos++
				return nil
			}
			if c.in[c.pos] != ',' {
				return ErrNotCanonical
			}
			c.pos++
		}
	case ch == '"':
		_, _, err := c.string()
		return err
	case ch == 't':
		return c.literal("true")
	case ch == 'f':
		return c.literal("false")
	case ch == 'n':
		return c.literal("null")
	case ch == '-' || ch >= '0' && ch <= '9':
		return c.number()
	}
	return ErrNotCanonical
}

func (c *jcsChecker) literal(lit string) error {
	if len(c.in)-c.pos < len(lit) || string(c.in[c.pos:c.pos+len(lit)]) != lit {
		return ErrNotCanonical
	}
	c.pos += len(lit)
	return nil
}

func (c *jcsChecker) object(depth int) error {
	c.pos++ // {
	if c.pos < len(c.in) && c.in[c.pos] == '}' {
		c.pos++
		return nil
	}
	var prev []byte // the previous name's raw bytes
	prevEscaped := false
	for {
		if c.pos >= len(c.in) || c.in[c.pos] != '"' {
			return ErrNotCanonical
		}
		name, escaped, err := c.string()
		if err != nil {
			return err
		}
		if prev != nil && !namesInOrder(prev, prevEscaped, name, escaped) {
			return ErrNotCanonical
		}
		prev, prevEscaped = name, escaped
		if c.pos >= len(c.in) || c.in[c.pos] != ':' {
			return ErrNotCanonical
		}
		c.pos++
		if err := c.value(depth + 1); err != nil {
			return err
		}
		if c.pos >= len(c.in) {
			return ErrNotCanonical
		}
		if c.in[c.pos] == '}' {
			c.pos++
			return nil
		}
		if c.in[c.pos] != ',' {
			return ErrNotCanonical
		}
		c.pos++
	}
}

// namesInOrder reports whether name a sorts strictly before name b in
// UTF-16 order, given their raw (canonically escaped) bytes. The common
// case, plain names below U+D000, compares bytes; the rest decodes.
func namesInOrder(a []byte, aEsc bool, b []byte, bEsc bool) bool {
	if !aEsc && !bEsc && belowD000(a) && belowD000(b) {
		return string(a) < string(b)
	}
	pa := &jcsParser{in: append(append([]byte{'"'}, a...), '"')}
	pb := &jcsParser{in: append(append([]byte{'"'}, b...), '"')}
	sa, err1 := pa.string()
	sb, err2 := pb.string()
	if err1 != nil || err2 != nil {
		return false
	}
	return lessUTF16(utf16.Encode([]rune(sa)), utf16.Encode([]rune(sb)))
}

func belowD000(s []byte) bool {
	for _, c := range s {
		if c >= 0xED {
			return false
		}
	}
	return true
}

// string checks a string is in canonical form (valid UTF-8, escapes only
// where JCS writes them, in its spelling) and returns its raw bytes
// between the quotes, and whether they hold an escape.
func (c *jcsChecker) string() ([]byte, bool, error) {
	c.pos++ // "
	start := c.pos
	escaped := false
	for c.pos < len(c.in) {
		ch := c.in[c.pos]
		switch {
		case ch == '"':
			raw := c.in[start:c.pos]
			c.pos++
			if !utf8.Valid(raw) {
				return nil, false, ErrNotCanonical
			}
			return raw, escaped, nil
		case ch < 0x20:
			return nil, false, ErrNotCanonical
		case ch == '\\':
			escaped = true
			if c.pos+1 >= len(c.in) {
				return nil, false, ErrNotCanonical
			}
			switch c.in[c.pos+1] {
			case '"', '\\', 'b', 'f', 'n', 'r', 't':
				c.pos += 2
			case 'u':
				// Only control characters without a short form, as
				// \u00xx in lower-case hex.
				if c.pos+6 > len(c.in) {
					return nil, false, ErrNotCanonical
				}
				h := c.in[c.pos+2 : c.pos+6]
				if h[0] != '0' || h[1] != '0' || !(h[2] == '0' || h[2] == '1') || !(h[3] >= '0' && h[3] <= '9' || h[3] >= 'a' && h[3] <= 'f') {
					return nil, false, ErrNotCanonical
				}
				switch v := (h[2]-'0')<<4 | unhex(h[3]); v {
				case '\b', '\f', '\n', '\r', '\t':
					return nil, false, ErrNotCanonical
				}
				c.pos += 6
			default:
				return nil, false, ErrNotCanonical
			}
		default:
			c.pos++
		}
	}
	return nil, false, ErrNotCanonical
}

func unhex(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return c - 'a' + 10
}

// number checks the literal is what appendNumber prints for its value.
func (c *jcsChecker) number() error {
	start := c.pos
	for c.pos < len(c.in) {
		ch := c.in[c.pos]
		if !(ch >= '0' && ch <= '9' || ch == '-' || ch == '+' || ch == '.' || ch == 'e' || ch == 'E') {
			break
		}
		c.pos++
	}
	lit := c.in[start:c.pos]
	if smallInteger(lit) {
		return nil // the common case: counts, steps, weights
	}
	f, err := strconv.ParseFloat(string(lit), 64)
	if err != nil {
		return ErrNotCanonical
	}
	var buf [32]byte
	if string(appendNumber(buf[:0], f)) != string(lit) {
		return ErrNotCanonical
	}
	return nil
}

// smallInteger reports whether lit is an integer below 10^15 in its
// canonical spelling: no sign but a minus, no leading zero, no "-0".
// Every such integer is a double exactly, and printed the same.
func smallInteger(lit []byte) bool {
	d := lit
	if len(d) > 0 && d[0] == '-' {
		d = d[1:]
		if len(d) == 1 && d[0] == '0' {
			return false
		}
	}
	if len(d) == 0 || len(d) > 15 || (d[0] == '0' && len(d) > 1) {
		return false
	}
	for _, c := range d {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
