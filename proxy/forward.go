package proxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

// exchange is one client request on its way to an upstream: the request
// as it will be sent, whether it may be sent again, and where it went.
// Both front ends (HTTP/1 and HTTP/2) fill one and call roundTrip, so
// routing, retries, replays and stats are the same for both.
type exchange struct {
	p *Proxy
	// buf[:base] is the upstream request head up to its last field,
	// without Host (when needHost), framing and the empty line, which
	// each attempt appends.
	buf      []byte
	base     int
	needHost bool
	// body is the whole request body when buffered.
	body []byte
	// clen is the Content-Length to send, -1 for none; chunked sends
	// Transfer-Encoding: chunked (streamed bodies of unknown length).
	clen    int64
	chunked bool
	// stream, when set, writes the body after the head; such a request
	// is not sent twice once the stream started.
	stream bodyStreamer
	// idempotent: GET, HEAD, OPTIONS or an Idempotency-Key.
	idempotent bool
	// upgrade marks a protocol upgrade request.
	upgrade bool
	// isHead: the response has no body whatever its framing says.
	isHead bool
	// start is when the request arrived (clock ns).
	start int64
	side  Side
	resp  respHead
	// track, when set, holds the upstream connection in use so that a
	// forced shutdown can close it.
	track *atomic.Pointer[upConn]
	// Filled by roundTrip.
	b    *backend
	ttfb int64
}

// bodyStreamer writes a streamed request body to an upstream connection.
type bodyStreamer interface {
	streamBody(w io.Writer, chunked bool) error
}

// errUpstream is a failure to get an answer; status is what the client
// gets.
type errUpstream struct {
	status int
	err    error
}

func (e *errUpstream) Error() string { return e.err.Error() }

var errNoUpstream = errors.New("no upstream available")

// replayable: the request may be sent again after it reached an upstream.
func (ex *exchange) replayable() bool { return ex.idempotent && ex.stream == nil && !ex.upgrade }

// maxStaleRetries bounds fresh-connection retries after stale pooled ones.
const maxStaleRetries = 4

// retryState is what the attempts of one exchange learned so far. roundTrip
// and the event loops (loop_linux.go) apply the same failure rules through
// its methods, so both data planes retry and replay alike.
type retryState struct {
	side       Side
	triedOther bool
	replayed   bool
	// unreachable marks a side this request could not reach: no replay
	// goes back to it.
	unreachable [2]bool
	exclude     *backend
	stale       int
}

// toOther moves to the other side, once per exchange, after a failure that
// sent nothing. count records it as a retry of the side left.
func (st *retryState) toOther(p *Proxy, count bool) bool {
	o := st.side.other()
	if st.triedOther || len(p.sides[o].backends) == 0 {
		return false
	}
	if count {
		p.stats.sides[st.side].retries.Add(1)
	}
	st.triedOther, st.side, st.exclude = true, o, nil
	return true
}

// unreached: connecting to b failed, so nothing was sent and any method
// may go elsewhere: another address of the side if one is up, else the
// other side. The caller has released b's in-flight count.
func (st *retryState) unreached(p *Proxy, b *backend, now int64, err error) bool {
	p.stats.record(st.side, nanotime(), -1, 0, true)
	p.markDown(b, now, err)
	st.unreachable[st.side] = true
	if st.exclude == nil && p.sides[st.side].anyUp(now, b) {
		st.exclude = b
		return true
	}
	return st.toOther(p, true)
}

// notSent: the request did not leave in full, so the upstream cannot have
// acted on it. reused says the connection was a pooled one, which the
// upstream may have closed: a fresh connection is tried first.
func (st *retryState) notSent(p *Proxy, reused bool) bool {
	if reused && st.stale < maxStaleRetries {
		st.stale++
		return true
	}
	p.stats.record(st.side, nanotime(), -1, 0, true)
	st.unreachable[st.side] = true
	return st.toOther(p, true)
}

// replay: the new side failed ex after it was sent (a 5xx, a reset, a
// timeout). A replayable request goes to legacy, once, within the retry
// budget; the client never sees the failure.
func (st *retryState) replay(p *Proxy, ex *exchange, now int64) bool {
	if st.side != SideNew || st.replayed || !ex.replayable() || len(p.sides[SideLegacy].backends) == 0 ||
		st.unreachable[SideLegacy] || !p.budget.allow(now) {
		return false
	}
	p.stats.sides[SideNew].replays.Add(1)
	st.replayed, st.triedOther, st.side, st.exclude = true, true, SideLegacy, nil
	return true
}

// roundTrip sends ex to ex.side (or the other side, per the failure rules
// in the package comment) and returns the upstream connection positioned
// after the response head, which is in ex.resp. The caller relays the
// body and calls release.
func (p *Proxy) roundTrip(ex *exchange) (*upConn, error) {
	st := retryState{side: ex.side}
	for {
		now := nanotime()
		side := st.side
		set := &p.sides[side]
		b := set.pick(now, st.exclude)
		if b == nil {
			if st.toOther(p, false) {
				continue
			}
			return nil, &errUpstream{502, errNoUpstream}
		}
		var f *fault
		if set := p.faults.Load(); set != nil {
			f = set.hit(side, now)
			if f != nil && f.Kind == FaultErrors {
				// The side "answered" f.status: the same rules as a real
				// answer of the side, without an upstream connection.
				t := nanotime()
				p.stats.record(side, t, t-ex.start, f.status, false)
				if f.status >= 500 && st.replay(p, ex, t) {
					continue
				}
				ex.side = side
				return nil, &errUpstream{f.status, &faultError{FaultErrors, fmt.Errorf("status %d", f.status)}}
			}
		}
		b.begin()
		var uc *upConn
		var err error
		if f != nil && f.Kind == FaultRefuse {
			err = errFaultRefused
		} else {
			uc, err = b.get(now)
		}
		if err != nil {
			// Nothing was sent: any method may go elsewhere.
			b.end()
			if st.unreached(p, b, now, err) {
				continue
			}
			return nil, &errUpstream{502, err}
		}
		if ex.track != nil {
			ex.track.Store(uc)
		}
		sent, err := p.send(ex, uc, b)
		early := false
		if err != nil && sent && !isClientBodyErr(err) {
			// The upstream may have answered before taking the whole body
			// (413, 401, a handler that ignores it) and closed: its
			// answer, not the broken write, is the outcome.
			if _, rerr := p.readRespHead(ex, uc); rerr == nil {
				err, early = nil, true
				ex.resp.connClose = true
			}
		}
		if err == nil {
			var got bool
			if !early {
				if f != nil && f.afterSend() {
					got, err = p.injectAfterSend(f, ex, uc)
				} else {
					got, err = p.readRespHead(ex, uc)
				}
			}
			if err == nil {
				ex.b = b
				ex.side = side
				ex.ttfb = nanotime() - ex.start
				if ex.resp.status >= 500 && side == SideNew && st.replay(p, ex, nanotime()) {
					// The new side failed an idempotent request: replay
					// it on legacy; the client never sees this answer.
					p.stats.record(SideNew, nanotime(), ex.ttfb, ex.resp.status, false)
					p.discard(uc)
					b.end()
					continue
				}
				return uc, nil
			}
			if !got && uc.requests > 0 && isClosedConn(err) && ex.replayable() && st.stale < maxStaleRetries {
				// The upstream closed the pooled connection as the request
				// went out: it was not processed; try a fresh one.
				uc.close()
				b.end()
				st.stale++
				continue
			}
			sent = true
		}
		uc.close()
		b.end()
		if isClientBodyErr(err) {
			// The client broke off its own body: not the side's fault.
			return nil, &errUpstream{400, err}
		}
		if !sent {
			if st.notSent(p, uc.requests > 0) {
				continue
			}
			return nil, &errUpstream{502, err}
		}
		p.stats.record(side, nanotime(), -1, 0, true)
		if st.replay(p, ex, nanotime()) {
			continue
		}
		return nil, &errUpstream{timeoutStatus(err), err}
	}
}

// timeoutStatus is the status a client gets for an upstream failure.
func timeoutStatus(err error) int {
	if isTimeout(err) {
		return 504
	}
	return 502
}

func (p *Proxy) markDown(b *backend, now int64, err error) {
	was := b.downUntil.Swap(now + int64(markDownFor))
	if was <= now {
		p.cfg.Logger.Warn("upstream unreachable", "side", b.side.String(), "upstream", b.u.raw, "err", err)
	}
}

// send writes the request to uc. sent is false when the upstream surely
// did not get the whole head (so it cannot have acted on the request);
// once the head is out, an upstream may act without reading the body.
func (p *Proxy) send(ex *exchange, uc *upConn, b *backend) (sent bool, err error) {
	buf := ex.attemptHead(b)
	headLen := len(buf)
	now := nanotime()
	setDeadline(uc.c, &uc.wdl, now, p.cfg.WriteTimeout, false)
	var n int
	switch {
	case len(ex.body) == 0:
		n, err = uc.io.Write(buf)
	case len(ex.body) <= 8<<10:
		buf = append(buf, ex.body...)
		n, err = uc.io.Write(buf)
	default:
		n, err = uc.io.writev(buf, ex.body)
	}
	ex.buf = buf[:ex.base]
	if err != nil {
		return n >= headLen, err
	}
	if ex.stream != nil {
		if err := ex.stream.streamBody(&uc.io, ex.chunked); err != nil {
			return true, err
		}
	}
	return true, nil
}

// attemptHead completes the request head for an attempt on b: Host (when
// needHost), the framing and the empty line after ex.buf[:ex.base].
func (ex *exchange) attemptHead(b *backend) []byte {
	buf := ex.buf[:ex.base]
	if ex.needHost {
		buf = append(buf, "Host: "...)
		buf = append(buf, b.u.hostHdr...)
		buf = append(buf, '\r', '\n')
	}
	switch {
	case ex.chunked:
		buf = append(buf, "Transfer-Encoding: chunked\r\n"...)
	case ex.clen >= 0:
		buf = append(buf, "Content-Length: "...)
		buf = strconv.AppendInt(buf, ex.clen, 10)
		buf = append(buf, '\r', '\n')
	}
	return append(buf, '\r', '\n')
}

// clientBodyError is a failure reading the client's body while streaming
// it: the client's fault, not the upstream's.
type clientBodyError struct{ err error }

func (e *clientBodyError) Error() string { return "reading request body: " + e.err.Error() }
func (e *clientBodyError) Unwrap() error { return e.err }

// isClientBodyErr is errors.As in a frame of its own: the target escapes,
// and the hot path must not pay that allocation when err is nil.
func isClientBodyErr(err error) bool {
	var ce *clientBodyError
	return errors.As(err, &ce)
}

const maxRespHead = 64 << 10

// readRespHead reads the response head into ex.resp, skipping 1xx
// answers other than 101. got reports whether any byte arrived.
func (p *Proxy) readRespHead(ex *exchange, uc *upConn) (got bool, err error) {
	setDeadline(uc.c, &uc.rdl, nanotime(), p.cfg.ResponseHeaderTimeout, true)
	for {
		if uc.rb.len() > 0 {
			got = true
			buf := uc.rb.buffered()
			if n := headEnd(buf); n > 0 {
				if err := parseResponseHead(buf[:n], &ex.resp); err != nil {
					return true, err
				}
				uc.rb.r += n
				if ex.resp.status < 200 && ex.resp.status != 101 {
					// 100 Continue, 103 Early Hints: not forwarded.
					uc.rb.consume(0)
					continue
				}
				if ex.resp.status == 101 && !ex.upgrade {
					return true, headErr(502, "101 without an upgrade request")
				}
				return true, nil
			}
			if len(buf) >= maxRespHead {
				return true, headErr(502, "response head too large")
			}
		}
		if _, err := uc.rb.fill(&uc.io, maxRespHead); err != nil {
			if uc.rb.len() > 0 {
				got = true
			}
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return got, err
		}
	}
}

// discard drops a response the client will not see. Small bodies already
// buffered are skipped so the connection can be reused; otherwise the
// connection is closed.
func (p *Proxy) discard(uc *upConn) {
	uc.close()
}

// release ends an attempt that returned a response: records it, and parks
// the upstream connection when reusable.
func (p *Proxy) release(ex *exchange, uc *upConn, reusable bool, transportErr bool) {
	now := nanotime()
	p.answered(ex, now, transportErr)
	if reusable && ex.keepUpstream(uc.rb.len(), &uc.maxIdle) {
		uc.requests++
		ex.b.put(uc, now)
		return
	}
	uc.close()
}

// answered ends an attempt that got an answer (whole, or broken off when
// transportErr): it is recorded, and no longer counted in flight.
func (p *Proxy) answered(ex *exchange, now int64, transportErr bool) {
	p.stats.record(ex.side, now, ex.ttfb, ex.resp.status, transportErr)
	ex.b.end()
}

// keepUpstream reports whether the upstream connection may serve another
// request after ex's answer, buffered bytes being left unread on it; then
// maxIdle is kept under the upstream's own keep-alive timeout.
func (ex *exchange) keepUpstream(buffered int, maxIdle *time.Duration) bool {
	if ex.resp.connClose || ex.resp.bothCLTE || buffered != 0 {
		return false
	}
	if t := ex.resp.keepAliveTimeout; t > 0 {
		if lim := timeSeconds(t) * 3 / 4; lim < *maxIdle {
			*maxIdle = lim
		}
	}
	return true
}

// isClosedConn: the peer closed or reset the connection.
func isClosedConn(err error) bool {
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func timeSeconds(n int) time.Duration { return time.Duration(n) * time.Second }

func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// appendRequestHead writes the upstream request head of h, up to its last
// field: the request line in HTTP/1.1, the end-to-end fields as the client
// sent them, and the proxy's own. Framing, Host (when needHost) and the
// empty line are added per attempt by send.
func (p *Proxy) appendRequestHead(b []byte, h *reqHead, ip []byte, tls bool) []byte {
	b = append(b, h.method...)
	b = append(b, ' ')
	b = append(b, h.target...)
	b = append(b, " HTTP/1.1\r\n"...)
	nxff := 0
	for i := range h.fields {
		f := &h.fields[i]
		switch f.kind {
		case hkOther:
			if f.hop {
				continue
			}
		case hkHost:
			if p.cfg.RewriteHost || h.absHost != nil {
				continue
			}
		case hkCookie, hkIdemKey, hkXFProto:
		case hkXFF:
			nxff++
			continue
		default:
			// Framing, Connection and the fields it names, Keep-Alive,
			// Proxy-*, TE, Trailer, Upgrade and Expect are hop-by-hop
			// or answered here.
			continue
		}
		b = append(b, f.name...)
		b = append(b, ':', ' ')
		b = append(b, f.value...)
		b = append(b, '\r', '\n')
	}
	if h.absHost != nil && !p.cfg.RewriteHost {
		b = append(b, "Host: "...)
		b = append(b, h.absHost...)
		b = append(b, '\r', '\n')
	}
	if h.teTrailers {
		b = append(b, "TE: trailers\r\n"...)
	}
	if h.connUpgrade && len(h.upgrade) > 0 {
		b = append(b, "Connection: Upgrade\r\nUpgrade: "...)
		b = append(b, h.upgrade...)
		b = append(b, '\r', '\n')
	}
	if len(ip) > 0 {
		b = append(b, "X-Forwarded-For: "...)
		if nxff > 0 {
			for i := range h.fields {
				if f := &h.fields[i]; f.kind == hkXFF && len(f.value) > 0 {
					b = append(b, f.value...)
					b = append(b, ',', ' ')
				}
			}
		}
		b = append(b, ip...)
		b = append(b, '\r', '\n')
	}
	if !h.hasXFProto {
		if tls {
			b = append(b, "X-Forwarded-Proto: https\r\n"...)
		} else {
			b = append(b, "X-Forwarded-Proto: http\r\n"...)
		}
	}
	if p.cfg.Via != "" {
		b = append(b, "Via: "...)
		b = append(b, p.cfg.Via...)
		b = append(b, '\r', '\n')
	}
	return b
}

// respBody reads a response body from an upstream connection by its
// framing, decoded: the slow paths (HTTP/2, mirrors) use it as an
// io.Reader.
type respBody struct {
	uc   *upConn
	p    *Proxy
	mode int // relayNone, relayCL, relayChunked or relayClose
	left int64
	cs   chunkScanner
	eof  bool
}

const (
	bodyModeNone = iota
	bodyModeCL
	bodyModeChunked
	bodyModeClose
)

func newRespBody(p *Proxy, uc *upConn, resp *respHead, isHead bool) *respBody {
	r := &respBody{uc: uc, p: p}
	switch {
	case isHead || resp.status == 204 || resp.status == 304:
		r.mode = bodyModeNone
	case resp.chunked:
		r.mode = bodyModeChunked
	case resp.contentLength >= 0:
		r.mode, r.left = bodyModeCL, resp.contentLength
	default:
		r.mode = bodyModeClose
	}
	return r
}

// clean reports whether the body was read to its end and nothing else
// came: the connection can be reused.
func (r *respBody) clean() bool {
	return r.eof && r.mode != bodyModeClose && r.uc.rb.len() == 0
}

func (r *respBody) fill() error {
	setDeadline(r.uc.c, &r.uc.rdl, nanotime(), r.p.cfg.ResponseHeaderTimeout, true)
	_, err := r.uc.rb.fill(&r.uc.io, len(r.uc.rb.b))
	return err
}

func (r *respBody) Read(b []byte) (int, error) {
	if r.eof {
		return 0, io.EOF
	}
	rb := &r.uc.rb
	switch r.mode {
	case bodyModeNone:
		r.eof = true
		return 0, io.EOF
	case bodyModeCL:
		if r.left == 0 {
			r.eof = true
			return 0, io.EOF
		}
		if rb.len() == 0 {
			if err := r.fill(); err != nil {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return 0, err
			}
		}
		n := copy(b[:min(int64(len(b)), r.left)], rb.buffered())
		rb.consume(n)
		r.left -= int64(n)
		return n, nil
	case bodyModeChunked:
		for {
			if r.cs.done() {
				r.eof = true
				return 0, io.EOF
			}
			if rb.len() == 0 {
				if err := r.fill(); err != nil {
					if err == io.EOF {
						err = io.ErrUnexpectedEOF
					}
					return 0, err
				}
			}
			in := rb.buffered()
			if len(in) > len(b) {
				in = in[:len(b)]
			}
			n, data, err := r.cs.next(in)
			if err != nil {
				return 0, err
			}
			k := copy(b, data)
			rb.consume(n)
			if k > 0 {
				return k, nil
			}
		}
	default:
		if rb.len() > 0 {
			n := copy(b, rb.buffered())
			rb.consume(n)
			return n, nil
		}
		setDeadline(r.uc.c, &r.uc.rdl, nanotime(), r.p.cfg.ResponseHeaderTimeout, true)
		n, err := r.uc.io.Read(b)
		if err == io.EOF {
			r.eof = true
		}
		return n, err
	}
}
