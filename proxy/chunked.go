package proxy

import "errors"

// chunkScanner follows chunked framing (RFC 9112 §7.1) across buffer
// boundaries without copying: the relay forwards the bytes it consumed as
// they are and learns where the message ends, and callers that need the
// payload (HTTP/1.0 clients, the HTTP/2 path, mirror hashing, request
// bodies) take the data spans it hands back. Framing must use CRLF: a bare
// LF in chunked framing is how smuggling payloads disagree between
// parsers, so it is an error here.
type chunkScanner struct {
	state     uint8
	digits    int
	size      int64
	lineLen   int
	trailer   int
	remaining int64
}

const (
	csSize uint8 = iota
	csExt
	csSizeLF
	csData
	csDataCR
	csDataLF
	csTrailerStart
	csTrailerLine
	csTrailerLF
	csEndLF
	csDone
)

const (
	maxChunkLine    = 4096
	maxTrailerBytes = 16 << 10
)

var errChunked = errors.New("malformed chunked encoding")

// done reports whether the last chunk and the trailer section were read.
func (s *chunkScanner) done() bool { return s.state == csDone }

// reset prepares s for a new message.
func (s *chunkScanner) reset() { *s = chunkScanner{} }

// next consumes framing and at most one data span from the start of p. It
// returns how many bytes of p belong to the message, and the payload bytes
// among them (always a suffix of p[:n]). It stops right after the message
// ends; bytes after that are not the message's.
func (s *chunkScanner) next(p []byte) (n int, data []byte, err error) {
	for n < len(p) {
		if s.state == csData {
			k := int64(len(p) - n)
			if k > s.remaining {
				k = s.remaining
			}
			data = p[n : n+int(k)]
			n += int(k)
			s.remaining -= k
			if s.remaining == 0 {
				s.state = csDataCR
			}
			return n, data, nil
		}
		c := p[n]
		n++
		switch s.state {
		case csSize:
			v := unhex(c)
			switch {
			case v >= 0:
				if s.digits == 15 {
					return n, nil, errChunked
				}
				s.digits++
				s.size = s.size<<4 | int64(v)
			case s.digits == 0:
				return n, nil, errChunked
			case c == '\r':
				s.state = csSizeLF
			case c == ';' || c == ' ' || c == '\t':
				s.state = csExt
				s.lineLen = s.digits + 1
			default:
				return n, nil, errChunked
			}
		case csExt:
			s.lineLen++
			switch {
			case c == '\r':
				s.state = csSizeLF
			case c == '\n' || c < ' ' && c != '\t' || c == 0x7f || s.lineLen > maxChunkLine:
				return n, nil, errChunked
			}
		case csSizeLF:
			if c != '\n' {
				return n, nil, errChunked
			}
			if s.size == 0 {
				s.state = csTrailerStart
			} else {
				s.state = csData
				s.remaining = s.size
			}
			s.size, s.digits = 0, 0
		case csDataCR:
			if c != '\r' {
				return n, nil, errChunked
			}
			s.state = csDataLF
		case csDataLF:
			if c != '\n' {
				return n, nil, errChunked
			}
			s.state = csSize
		case csTrailerStart:
			if c == '\r' {
				s.state = csEndLF
				break
			}
			if c == '\n' || c == ' ' || c == '\t' {
				return n, nil, errChunked
			}
			s.state = csTrailerLine
			s.trailer++
		case csTrailerLine:
			s.trailer++
			switch {
			case s.trailer > maxTrailerBytes:
				return n, nil, errChunked
			case c == '\r':
				s.state = csTrailerLF
			case c == '\n' || c < ' ' && c != '\t' || c == 0x7f:
				return n, nil, errChunked
			}
		case csTrailerLF:
			if c != '\n' {
				return n, nil, errChunked
			}
			s.state = csTrailerStart
		case csEndLF:
			if c != '\n' {
				return n, nil, errChunked
			}
			s.state = csDone
			return n, nil, nil
		case csDone:
			return n - 1, nil, nil
		}
	}
	return n, nil, nil
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// appendChunkHeader appends the size line of a chunk of n bytes.
func appendChunkHeader(b []byte, n int) []byte {
	const hexd = "0123456789abcdef"
	var tmp [16]byte
	i := len(tmp)
	for {
		i--
		tmp[i] = hexd[n&15]
		n >>= 4
		if n == 0 {
			break
		}
	}
	b = append(b, tmp[i:]...)
	return append(b, '\r', '\n')
}
