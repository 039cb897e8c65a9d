package proxy

import (
	"bytes"
	"strconv"
)

// This file holds the HTTP/1.x head parsers of the hot path. They work on
// a complete head in a caller-owned buffer and fill a reusable struct whose
// slices point into that buffer, so parsing allocates nothing.
//
// The request parser is deliberately stricter than RFC 9112 where leniency
// has been used for request smuggling: both Content-Length and
// Transfer-Encoding, a Transfer-Encoding other than exactly "chunked",
// duplicate or malformed Content-Length, whitespace before the colon,
// obs-fold and bare CR are all rejected with 400. A bare LF as line end is
// accepted in the head (RFC 9112 §2.2 allows it) because the head we send
// upstream is rebuilt with CRLF, so no other parser ever sees it; it is
// never accepted in chunked framing, which is forwarded.

// Header kinds the proxy acts on; everything else is hkOther and is
// forwarded as is.
const (
	hkOther uint8 = iota
	hkHost
	hkContentLength
	hkTransferEncoding
	hkConnection
	hkKeepAlive
	hkProxyConnection
	hkTE
	hkTrailer
	hkUpgrade
	hkExpect
	hkCookie
	hkXFF
	hkXFProto
	hkIdemKey
	hkProxyOther // Proxy, Proxy-Authorization, Proxy-Authenticate: never forwarded
)

// field is one header field. name and value point into the head buffer;
// value has surrounding whitespace trimmed.
type field struct {
	name, value []byte
	kind        uint8
	// hop marks a field named by a Connection token: hop-by-hop, dropped.
	hop bool
}

const (
	maxFields     = 128
	maxConnTokens = 16
)

// errHead is a malformed head; status is the answer the client gets.
type errHead struct {
	status int
	msg    string
}

func (e *errHead) Error() string { return e.msg }

func headErr(status int, msg string) error { return &errHead{status: status, msg: msg} }

// common holds what request and response heads share.
type common struct {
	minor  int // HTTP/1.minor
	fields []field
	// contentLength is -1 when absent.
	contentLength int64
	chunked       bool
	// connClose, connKeepAlive and connUpgrade are the Connection tokens
	// close, keep-alive and upgrade.
	connClose, connKeepAlive, connUpgrade bool
	upgrade                               []byte
	// connTokens are the other Connection tokens: names of hop-by-hop
	// fields.
	connTokens  [maxConnTokens][]byte
	connTokensN int
	// headLen is the length of the head including the empty line.
	headLen int
}

// reqHead is a parsed request head.
type reqHead struct {
	common
	method, target []byte
	host           []byte
	hostCount      int
	// absHost is the authority of an absolute-form target; it replaces
	// the Host field (RFC 9112 §3.2.2).
	absHost        []byte
	expectContinue bool
	idemKey        bool
	hasXFProto     bool
	// teTrailers is a TE field that says "trailers" (kept, for gRPC-ish
	// clients); other TE values are dropped.
	teTrailers bool
}

// respHead is a parsed response head.
type respHead struct {
	common
	status int
	// statusLine is "SSS reason" as the upstream sent it.
	statusLine []byte
	// keepAliveTimeout is the upstream's Keep-Alive: timeout=N in seconds,
	// 0 when absent.
	keepAliveTimeout int
	// bothCLTE: the upstream sent both framings; Transfer-Encoding wins and
	// the connection is not reused.
	bothCLTE bool
}

// headEnd returns the length of the head at the start of b through the
// empty line that ends it, or 0 when b does not hold a complete head yet.
// Leading empty lines are part of the head (RFC 9112 §2.2 lets a server
// skip them) and skipped by the parsers.
func headEnd(b []byte) int {
	i := 0
	for {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return 0
		}
		p := i + j
		if p+1 < len(b) && b[p+1] == '\n' {
			return p + 2
		}
		if p+2 < len(b) && b[p+1] == '\r' && b[p+2] == '\n' {
			return p + 3
		}
		if p+2 >= len(b) {
			return 0
		}
		i = p + 1
	}
}

// nextLine returns the line at the start of b without its end, and the
// rest. A bare CR anywhere is an error.
func nextLine(b []byte) (line, rest []byte, ok bool) {
	j := bytes.IndexByte(b, '\n')
	if j < 0 {
		return nil, nil, false
	}
	line, rest = b[:j], b[j+1:]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return line, rest, true
}

// parseRequestHead parses the head b, which must be complete (headEnd(b)
// == len(b)), into h.
func parseRequestHead(b []byte, h *reqHead) error {
	fields := h.fields[:0]
	*h = reqHead{}
	h.fields = fields
	h.contentLength = -1
	h.headLen = len(b)
	rest := b
	var line []byte
	var ok bool
	// Skip up to a few empty lines before the request line.
	for n := 0; ; n++ {
		line, rest, ok = nextLine(rest)
		if !ok {
			return headErr(400, "malformed request line")
		}
		if len(line) > 0 {
			break
		}
		if n == 4 {
			return headErr(400, "empty lines before the request line")
		}
	}
	// request-line = method SP request-target SP HTTP-version
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 {
		return headErr(400, "malformed request line")
	}
	h.method = line[:sp]
	for _, c := range h.method {
		if !isToken[c] {
			return headErr(400, "invalid method")
		}
	}
	line = line[sp+1:]
	sp = bytes.IndexByte(line, ' ')
	if sp <= 0 {
		return headErr(400, "malformed request line")
	}
	h.target = line[:sp]
	ver := line[sp+1:]
	if len(ver) != 8 || string(ver[:7]) != "HTTP/1." {
		if len(ver) >= 5 && string(ver[:5]) == "HTTP/" {
			return headErr(505, "HTTP version not supported")
		}
		return headErr(400, "malformed request line")
	}
	switch ver[7] {
	case '1':
		h.minor = 1
	case '0':
		h.minor = 0
	default:
		return headErr(505, "HTTP version not supported")
	}
	for _, c := range h.target {
		if c <= ' ' || c == 0x7f {
			return headErr(400, "invalid request target")
		}
	}
	switch {
	case h.target[0] == '/':
	case len(h.target) == 1 && h.target[0] == '*':
		if string(h.method) != "OPTIONS" {
			return headErr(400, "asterisk-form target outside OPTIONS")
		}
	case string(h.method) == "CONNECT":
		return headErr(405, "CONNECT is not supported")
	default:
		if !splitAbsolute(h) {
			return headErr(400, "invalid request target")
		}
	}
	if err := parseFields(rest, &h.common, true); err != nil {
		return err
	}
	for i := range h.fields {
		f := &h.fields[i]
		switch f.kind {
		case hkHost:
			h.hostCount++
			h.host = f.value
			for _, c := range f.value {
				if c <= ' ' || c == 0x7f || c == '/' || c == '?' || c == '#' || c == '@' {
					return headErr(400, "invalid Host")
				}
			}
		case hkExpect:
			if eqFold(f.value, "100-continue") {
				h.expectContinue = true
			} else {
				return headErr(417, "unsupported Expect")
			}
		case hkIdemKey:
			h.idemKey = true
		case hkXFProto:
			h.hasXFProto = true
		case hkTE:
			if eqFold(f.value, "trailers") {
				h.teTrailers = true
			}
		}
	}
	if h.minor == 1 && h.hostCount != 1 && h.absHost == nil {
		return headErr(400, "HTTP/1.1 request needs exactly one Host")
	}
	if h.hostCount > 1 {
		return headErr(400, "more than one Host")
	}
	if h.chunked && h.minor == 0 {
		return headErr(400, "Transfer-Encoding in an HTTP/1.0 request")
	}
	if h.minor == 0 && !h.connKeepAlive {
		h.connClose = true
	}
	return nil
}

// splitAbsolute turns an absolute-form target (http://host/path) into its
// origin-form path and authority. It reports false for anything else.
func splitAbsolute(h *reqHead) bool {
	t := h.target
	var n int
	switch {
	case len(t) > 7 && eqFold(t[:7], "http://"):
		n = 7
	case len(t) > 8 && eqFold(t[:8], "https://"):
		n = 8
	default:
		return false
	}
	rest := t[n:]
	end := len(rest)
	for i, c := range rest {
		if c == '/' || c == '?' || c == '#' {
			end = i
			break
		}
	}
	host := rest[:end]
	if len(host) == 0 || bytes.IndexByte(host, '@') >= 0 {
		return false
	}
	h.absHost = host
	path := rest[end:]
	if len(path) == 0 || path[0] != '/' {
		// "http://h" or "http://h?q": the path is "/"; the query must not
		// be lost, so only the bare authority form is accepted here.
		if len(path) != 0 {
			return false
		}
		path = slash
	}
	h.target = path
	return true
}

var slash = []byte("/")

// parseFields parses the header section b (after the start line, through
// the empty line) into c. strict selects request rules.
func parseFields(b []byte, c *common, request bool) error {
	bad := 400
	if !request {
		bad = 502
	}
	teCount := 0
	for {
		line, rest, ok := nextLine(b)
		if !ok {
			return headErr(bad, "malformed header section")
		}
		b = rest
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			return headErr(bad, "obsolete line folding")
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return headErr(bad, "malformed header field")
		}
		name := line[:colon]
		for _, ch := range name {
			if !isToken[ch] {
				return headErr(bad, "invalid header name")
			}
		}
		v := line[colon+1:]
		for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
			v = v[1:]
		}
		for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
			v = v[:len(v)-1]
		}
		for _, ch := range v {
			if ch < ' ' && ch != '\t' || ch == 0x7f {
				return headErr(bad, "invalid character in header value")
			}
		}
		if len(c.fields) == maxFields {
			return headErr(431, "too many header fields")
		}
		kind := kindOf(name)
		c.fields = append(c.fields, field{name: name, value: v, kind: kind})
		switch kind {
		case hkContentLength:
			if c.contentLength >= 0 {
				if request {
					return headErr(400, "more than one Content-Length")
				}
				// A response may repeat an identical value (RFC 9110
				// §8.6); anything else is fatal.
				n, ok := parseContentLength(v)
				if !ok || n != c.contentLength {
					return headErr(502, "conflicting Content-Length")
				}
				continue
			}
			n, ok := parseContentLength(v)
			if !ok {
				return headErr(bad, "invalid Content-Length")
			}
			c.contentLength = n
		case hkTransferEncoding:
			teCount++
			if teCount > 1 {
				return headErr(bad, "more than one Transfer-Encoding")
			}
			if !eqFold(v, "chunked") {
				if request {
					return headErr(501, "unsupported Transfer-Encoding")
				}
				// A response with another coding (say "gzip, chunked") is
				// delimited by "chunked" being last; other cases read to
				// close. Only exact chunked is framed here; the rest is
				// refused rather than guessed at.
				return headErr(502, "unsupported Transfer-Encoding")
			}
			c.chunked = true
		case hkConnection:
			if err := parseConnection(v, c); err != nil {
				return err
			}
		case hkUpgrade:
			c.upgrade = v
		}
	}
	if c.chunked && c.contentLength >= 0 {
		if request {
			return headErr(400, "both Content-Length and Transfer-Encoding")
		}
	}
	// Fields named by Connection are hop-by-hop. Marked once here so the
	// writers need not compare names again.
	if c.connTokensN > 0 {
		for i := range c.fields {
			f := &c.fields[i]
			if f.kind != hkOther {
				continue
			}
			for _, t := range c.connTokens[:c.connTokensN] {
				if len(t) == len(f.name) && eqFoldBytes(t, f.name) {
					f.hop = true
					break
				}
			}
		}
	}
	return nil
}

// parseConnection reads the tokens of a Connection field.
func parseConnection(v []byte, c *common) error {
	for len(v) > 0 {
		var tok []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			tok, v = v[:i], v[i+1:]
		} else {
			tok, v = v, nil
		}
		tok = trimOWS(tok)
		if len(tok) == 0 {
			continue
		}
		switch {
		case eqFold(tok, "close"):
			c.connClose = true
		case eqFold(tok, "keep-alive"):
			c.connKeepAlive = true
		case eqFold(tok, "upgrade"):
			c.connUpgrade = true
		default:
			if c.connTokensN == maxConnTokens {
				return headErr(400, "too many Connection options")
			}
			c.connTokens[c.connTokensN] = tok
			c.connTokensN++
		}
	}
	return nil
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// parseContentLength accepts 1*DIGIT only: no sign, no spaces, no list.
func parseContentLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// parseResponseHead parses the complete response head b into h.
func parseResponseHead(b []byte, h *respHead) error {
	fields := h.fields[:0]
	*h = respHead{}
	h.fields = fields
	h.contentLength = -1
	h.headLen = len(b)
	line, rest, ok := nextLine(b)
	if !ok {
		return headErr(502, "malformed status line")
	}
	// status-line = HTTP-version SP status-code [SP reason-phrase]
	if len(line) < 12 || string(line[:7]) != "HTTP/1." || line[8] != ' ' {
		return headErr(502, "malformed status line")
	}
	switch line[7] {
	case '0':
		h.minor = 0
	case '1':
		h.minor = 1
	default:
		return headErr(502, "malformed status line")
	}
	s := line[9:12]
	if s[0] < '1' || s[0] > '5' || s[1] < '0' || s[1] > '9' || s[2] < '0' || s[2] > '9' {
		return headErr(502, "malformed status code")
	}
	h.status = int(s[0]-'0')*100 + int(s[1]-'0')*10 + int(s[2]-'0')
	if len(line) > 12 && line[12] != ' ' {
		return headErr(502, "malformed status line")
	}
	for _, c := range line[12:] {
		if c < ' ' && c != '\t' || c == 0x7f {
			return headErr(502, "invalid reason phrase")
		}
	}
	h.statusLine = line[9:]
	if err := parseFields(rest, &h.common, false); err != nil {
		return err
	}
	if h.chunked && h.contentLength >= 0 {
		h.bothCLTE = true
		h.contentLength = -1
	}
	if h.minor == 0 && !h.connKeepAlive {
		h.connClose = true
	}
	for i := range h.fields {
		f := &h.fields[i]
		if f.kind == hkKeepAlive {
			h.keepAliveTimeout = keepAliveTimeout(f.value)
		}
	}
	return nil
}

// keepAliveTimeout reads timeout=N from a Keep-Alive field.
func keepAliveTimeout(v []byte) int {
	for len(v) > 0 {
		var p []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			p, v = v[:i], v[i+1:]
		} else {
			p, v = v, nil
		}
		p = trimOWS(p)
		if len(p) > 8 && eqFold(p[:8], "timeout=") {
			n, err := strconv.Atoi(string(p[8:]))
			if err == nil && n > 0 {
				return n
			}
		}
	}
	return 0
}

// kindOf classifies a header name.
func kindOf(name []byte) uint8 {
	switch len(name) {
	case 2:
		if eqFold(name, "te") {
			return hkTE
		}
	case 4:
		if eqFold(name, "host") {
			return hkHost
		}
	case 5:
		if eqFold(name, "proxy") {
			return hkProxyOther
		}
	case 6:
		if eqFold(name, "cookie") {
			return hkCookie
		}
		if eqFold(name, "expect") {
			return hkExpect
		}
	case 7:
		if eqFold(name, "upgrade") {
			return hkUpgrade
		}
		if eqFold(name, "trailer") {
			return hkTrailer
		}
	case 10:
		if eqFold(name, "connection") {
			return hkConnection
		}
		if eqFold(name, "keep-alive") {
			return hkKeepAlive
		}
	case 14:
		if eqFold(name, "content-length") {
			return hkContentLength
		}
	case 15:
		if eqFold(name, "x-forwarded-for") {
			return hkXFF
		}
		if eqFold(name, "idempotency-key") {
			return hkIdemKey
		}
	case 16:
		if eqFold(name, "proxy-connection") {
			return hkProxyConnection
		}
	case 17:
		if eqFold(name, "transfer-encoding") {
			return hkTransferEncoding
		}
		if eqFold(name, "x-forwarded-proto") {
			return hkXFProto
		}
	}
	if len(name) > 6 && eqFold(name[:6], "proxy-") {
		// Proxy-Authorization, Proxy-Authenticate and any other Proxy-*
		// field are for this hop only.
		return hkProxyOther
	}
	return hkOther
}

// eqFold reports whether b equals the lower-case ASCII string s, ignoring
// ASCII case.
func eqFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// eqFoldBytes compares two byte slices of equal length ignoring ASCII case.
func eqFoldBytes(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// isToken marks the tchar bytes of RFC 9110 §5.6.2.
var isToken = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()
