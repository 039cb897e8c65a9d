package proxy

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// clientConn is one client connection on the HTTP/1 fast path. One
// goroutine owns it and does everything for a request in turn: read the
// head, pick a side, write upstream, read the answer, relay it. No other
// goroutine, no channel, no allocation per request.
type clientConn struct {
	p   *Proxy
	c   net.Conn
	io  fdConn
	tcp *net.TCPConn // nil behind TLS
	tls bool
	rb  rbuf
	wb  []byte // request head to upstreams
	ob  []byte // response head to the client
	req reqHead
	ex  exchange
	ip  []byte // client address, for X-Forwarded-For

	// state and up let Shutdown wake an idle connection and abort a busy
	// one without locks on the hot path.
	state atomic.Int32
	up    atomic.Pointer[upConn]

	rdl, wdl int64
	draining bool
	requests int

	body   []byte // buffered request body when it did not fit rb
	cs     chunkScanner
	cookie [16]byte
	// stream state of the request body being streamed.
	streamLeft int64
	iov        net.Buffers
	// seed is what an event loop read before handing the connection over.
	seed []byte
	// back: the loop handed the connection over for a mirror share or a
	// fault drill; it goes back to a loop between requests once they end.
	back bool
}

const (
	stActive int32 = iota
	stIdle
	stClaimed // Shutdown is waking the idle connection
	stPoked   // Shutdown is done with it
)

const clientBufSize = 8 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, clientBufSize); return &b }}

func (p *Proxy) newClientConn(c net.Conn) *clientConn {
	cc := &clientConn{p: p, c: c}
	if !p.track(cc) {
		c.Close()
		return nil
	}
	return cc
}

func (cc *clientConn) setup() {
	bp := bufPool.Get().(*[]byte)
	cc.rb.b = (*bp)[:cap(*bp)]
	cc.wb = make([]byte, 0, 1024)
	cc.ob = make([]byte, 0, 1024)
	cc.ex.p = cc.p
	cc.ex.resp.fields = make([]field, 0, 32)
	cc.req.fields = make([]field, 0, 32)
	if ta, ok := cc.c.RemoteAddr().(*net.TCPAddr); ok {
		cc.ip, _ = ta.IP.AppendText(nil)
		if ip4 := ta.IP.To4(); ip4 != nil {
			cc.ip, _ = ip4.AppendText(cc.ip[:0])
		}
	} else if a := cc.c.RemoteAddr(); a != nil {
		host, _, err := net.SplitHostPort(a.String())
		if err != nil {
			host = a.String()
		}
		cc.ip = []byte(host)
	}
	cc.tcp, _ = cc.c.(*net.TCPConn)
	cc.io.init(cc.c)
	if len(cc.seed) > 0 {
		if len(cc.seed) > len(cc.rb.b) {
			cc.rb.b = make([]byte, len(cc.seed))
		}
		cc.rb.w = copy(cc.rb.b, cc.seed)
		cc.seed = nil
	}
}

func (cc *clientConn) finish() {
	cc.c.Close()
	if len(cc.rb.b) == clientBufSize {
		b := cc.rb.b
		bufPool.Put(&b)
	}
	cc.rb.b = nil
	cc.p.untrack(cc)
}

// wakeIdle is Shutdown's nudge: an idle connection's pending read returns
// so it can take one last request within drainGrace or close.
func (cc *clientConn) wakeIdle() {
	if cc.state.CompareAndSwap(stIdle, stClaimed) {
		cc.c.SetReadDeadline(time.Now())
		cc.state.Store(stPoked)
	}
}

// abort closes the connection and the upstream it waits on.
func (cc *clientConn) abort() {
	cc.c.Close()
	if uc := cc.up.Load(); uc != nil {
		uc.c.Close()
	}
}

func (cc *clientConn) serve() {
	defer func() {
		if r := recover(); r != nil {
			buf := make([]byte, 4<<10)
			buf = buf[:runtime.Stack(buf, false)]
			cc.p.cfg.Logger.Error("panic serving connection", "panic", r, "stack", string(buf))
		}
		cc.finish()
	}()
	cc.setup()
	if cc.p.tlsConf != nil {
		tc := tls.Server(cc.c, cc.p.tlsConf)
		tc.SetDeadline(time.Now().Add(cc.p.cfg.ReadHeaderTimeout))
		if err := tc.Handshake(); err != nil {
			return
		}
		tc.SetDeadline(time.Time{})
		cc.c, cc.tcp, cc.tls = tc, nil, true
		cc.io.init(tc)
		if tc.ConnectionState().NegotiatedProtocol == "h2" {
			cc.serveH2(tc)
			return
		}
	}
	for {
		if !cc.readRequest() {
			return
		}
		if !cc.handle() {
			return
		}
		cc.requests++
		if cc.back && cc.rb.len() == 0 && !cc.draining && cc.p.toLoop(cc) {
			return
		}
	}
}

var h2Preface = []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")

// readRequest reads and parses the next request head. false ends the
// connection (after an error answer when one is due).
func (cc *clientConn) readRequest() bool {
	p := cc.p
	partial := false
	for {
		if buf := cc.rb.buffered(); len(buf) > 0 {
			if cc.requests == 0 && !cc.tls && buf[0] == 'P' {
				n := min(len(buf), len(h2Preface))
				if bytes.Equal(buf[:n], h2Preface[:n]) {
					if n == len(h2Preface) {
						cc.serveH2(&prefixConn{Conn: cc.c, pre: buf})
						return false
					}
					goto more
				}
			}
			if n := headEnd(buf); n > 0 {
				if n > p.cfg.MaxHeaderBytes {
					cc.reject(431)
					return false
				}
				if err := parseRequestHead(buf[:n], &cc.req); err != nil {
					p.stats.badHeads.Add(1)
					status := 400
					var he *errHead
					if errors.As(err, &he) {
						status = he.status
					}
					cc.reject(status)
					return false
				}
				if partial || cc.draining {
					// The deadline was shortened for the head; give the
					// rest of the exchange the usual ones.
					cc.rdl = 0
				}
				return true
			}
			if len(buf) >= p.cfg.MaxHeaderBytes {
				cc.reject(431)
				return false
			}
		}
	more:
		idle := cc.rb.len() == 0
		now := nanotime()
		if idle {
			cc.state.Store(stIdle)
			if p.closing.Load() && !cc.draining {
				cc.draining = true
			}
			if cc.draining {
				cc.c.SetReadDeadline(time.Now().Add(drainGrace))
				cc.rdl = 0
			} else {
				setDeadline(cc.c, &cc.rdl, now, p.cfg.IdleTimeout, true)
			}
		} else if !partial {
			partial = true
			cc.c.SetReadDeadline(time.Now().Add(p.cfg.ReadHeaderTimeout))
			cc.rdl = 0
		}
		n, err := cc.rb.fill(&cc.io, p.cfg.MaxHeaderBytes)
		if idle && !cc.state.CompareAndSwap(stIdle, stActive) {
			// Shutdown woke this connection: wait until it is done
			// touching the deadline, then drain.
			for cc.state.Load() != stPoked {
				runtime.Gosched()
			}
			cc.state.Store(stActive)
			if !cc.draining {
				cc.draining = true
				if n == 0 && isTimeout(err) {
					continue // wait drainGrace for a last request
				}
			}
		}
		if err != nil {
			if cc.rb.len() == 0 {
				// Between requests: a close, an idle timeout or the end
				// of a drain. Nothing to answer.
				return false
			}
			if errors.Is(err, errHeadTooLarge) {
				cc.reject(431)
			} else if isTimeout(err) && !cc.draining {
				cc.reject(408)
			}
			return false
		}
	}
}

// reject answers a malformed request and ends the connection.
func (cc *clientConn) reject(status int) {
	cc.p.stats.localReply(status)
	cc.writeLocal(status, false, "")
}

// writeLocal sends an answer made by the proxy itself. side, when not "",
// names the side whose failure the answer reports (X-Cutover-Side), so a
// client or a test can tell a failure of the new side from one that never
// reached it.
func (cc *clientConn) writeLocal(status int, keep bool, side string) {
	cc.ob = appendLocal(cc.ob[:0], status, keep, side)
	cc.write(cc.ob)
}

// appendLocal writes an answer made by the proxy itself.
func appendLocal(b []byte, status int, keep bool, side string) []byte {
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	text := statusText(status)
	b = append(b, text...)
	if side != "" {
		b = append(b, "\r\nX-Cutover-Side: "...)
		b = append(b, side...)
	}
	b = append(b, "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(text)+1), 10)
	if !keep {
		b = append(b, "\r\nConnection: close"...)
	}
	b = append(b, "\r\n\r\n"...)
	b = append(b, text...)
	return append(b, '\n')
}

func (cc *clientConn) write(b []byte) error {
	setDeadline(cc.c, &cc.wdl, nanotime(), cc.p.cfg.WriteTimeout, false)
	_, err := cc.io.Write(b)
	return err
}

// Body kinds of a request.
const (
	bodyNone = iota
	bodyBuffered
	bodyStreamCL
	bodyStreamChunked
)

// handle proxies one parsed request. false ends the connection.
func (cc *clientConn) handle() bool {
	p := cc.p
	h := &cc.req
	ex := &cc.ex
	start := nanotime()
	p.budget.request(start)

	bucket, setCookie := p.route(h, &cc.cookie)

	*ex = exchange{
		p:          p,
		buf:        cc.wb[:0],
		clen:       -1,
		start:      start,
		side:       p.pickSide(bucket),
		idempotent: isIdempotent(h.method) || h.idemKey,
		upgrade:    h.connUpgrade && len(h.upgrade) > 0,
		isHead:     string(h.method) == "HEAD",
		track:      &cc.up,
		resp:       respHead{common: common{fields: ex.resp.fields[:0]}},
	}
	ex.buf = p.appendRequestHead(ex.buf, h, cc.ip, cc.tls)
	ex.base = len(ex.buf)
	ex.needHost = p.cfg.RewriteHost || (h.hostCount == 0 && h.absHost == nil)
	mirror := p.mirror.want(ex, h)
	var route string
	if mirror {
		route = routeOf(h.method, h.target)
	}
	minor := h.minor
	reqClose := h.connClose
	cc.rb.consume(h.headLen)

	// Body.
	kind := bodyNone
	switch {
	case h.chunked:
		kind = bodyStreamChunked
	case h.contentLength > 0 && h.contentLength <= p.cfg.MaxReplayBody:
		kind = bodyBuffered
	case h.contentLength > 0:
		kind = bodyStreamCL
	case h.contentLength == 0:
		ex.clen = 0
	}
	if kind != bodyNone && h.expectContinue && int64(cc.rb.len()) < max(h.contentLength, 1) {
		// The body is not here yet: ask for it. Expect is not forwarded,
		// so the upstream never waits for a 100 of its own.
		if cc.write(continue100) != nil {
			return false
		}
	}
	switch kind {
	case bodyBuffered:
		if !cc.readBody(h.contentLength) {
			return false
		}
		ex.clen = int64(len(ex.body))
	case bodyStreamCL:
		ex.clen = h.contentLength
		ex.stream = cc
		cc.streamLeft = h.contentLength
	case bodyStreamChunked:
		full, ok := cc.readChunkedBody()
		if !ok {
			return false
		}
		if full {
			kind = bodyBuffered
			ex.clen = int64(len(ex.body))
		} else {
			ex.chunked = true
			ex.stream = cc
		}
	}

	uc, err := p.roundTrip(ex)
	cc.wb = ex.buf[:0]
	if err != nil {
		status := 502
		var ue *errUpstream
		if errors.As(err, &ue) {
			status = ue.status
		}
		p.stats.localReply(status)
		// The connection can go on only if the request body was read.
		keep := !reqClose && !cc.draining && !p.closing.Load() && (ex.stream == nil || cc.streamDone())
		cc.up.Store(nil)
		cc.writeLocal(status, keep, ex.side.String())
		cc.resetBody()
		return keep
	}
	defer cc.up.Store(nil)

	resp := &ex.resp
	if resp.status == 101 {
		cc.tunnel(ex, uc, setCookie)
		return false
	}

	var mj *mirrorJob
	if mirror && ex.side == SideLegacy && ex.stream == nil {
		mj = p.mirror.start(ex, route)
	}

	// Framing of the answer.
	const (
		relayNone = iota
		relayCL
		relayChunked
		relayDechunk
		relayClose
	)
	relay := relayNone
	switch {
	case ex.isHead || resp.status == 204 || resp.status == 304:
	case resp.chunked && minor == 1:
		relay = relayChunked
	case resp.chunked:
		relay = relayDechunk
	case resp.contentLength >= 0:
		relay = relayCL
	default:
		relay = relayClose
	}
	keep := !reqClose && !cc.draining && !p.closing.Load() &&
		relay != relayClose && relay != relayDechunk &&
		(ex.stream == nil || cc.streamDone())

	ob := cc.appendResponseHead(cc.ob[:0], resp, relay == relayChunked, setCookie, keep, minor)
	cc.ob = ob

	var cerr, uerr error // client and upstream failures while relaying
	reusable := true
	switch relay {
	case relayNone:
		cerr = cc.write(ob)
		// Bytes after a bodiless answer: the upstream is confused.
		reusable = uc.rb.len() == 0
	case relayCL:
		cerr, uerr = cc.relayCL(uc, ob, resp.contentLength, mj)
	case relayChunked:
		cerr, uerr = cc.relayChunked(uc, ob, mj, false)
	case relayDechunk:
		cerr, uerr = cc.relayChunked(uc, ob, mj, true)
	case relayClose:
		cerr, uerr = cc.relayClose(uc, ob, mj)
		reusable = false
	}
	if cerr != nil || uerr != nil {
		reusable = false
		keep = false
	}
	if mj != nil {
		mj.legacyDone(resp.status, uerr == nil && cerr == nil)
	}
	p.release(ex, uc, reusable, uerr != nil)
	cc.resetBody()
	return keep
}

// resetBody keeps a small body buffer for the next request and lets a
// large one go.
func (cc *clientConn) resetBody() {
	cc.ex.body = nil
	if cap(cc.body) > 64<<10 {
		cc.body = nil
		return
	}
	cc.body = cc.body[:0]
}

// route returns the bucket of a request: its sticky header's or cookie's,
// or a fresh cookie's, written into cookie (setCookie: the answer sets it).
func (p *Proxy) route(h *reqHead, cookie *[16]byte) (bucket int, setCookie bool) {
	var key []byte
	if p.cfg.header != nil {
		key = headerValue(h, p.cfg.header)
	}
	if key == nil && p.cfg.cookie != nil {
		key = cookieValue(h, p.cfg.cookie)
		if key == nil {
			key = newCookieValue(cookie[:0])
			setCookie = true
		}
	}
	if key == nil {
		return rand.IntN(buckets), false
	}
	return bucketOf(key), setCookie
}

var continue100 = []byte("HTTP/1.1 100 Continue\r\n\r\n")

func isIdempotent(m []byte) bool {
	switch string(m) {
	case "GET", "HEAD", "OPTIONS":
		return true
	}
	return false
}

// readBody buffers a Content-Length body of n ≤ MaxReplayBody bytes into
// ex.body: in place in rb when it fits (the bytes stay valid until the
// next request is read), else in cc.body.
func (cc *clientConn) readBody(n int64) bool {
	ex := &cc.ex
	if int64(cc.rb.len()) < n {
		setDeadline(cc.c, &cc.rdl, nanotime(), cc.p.cfg.IdleTimeout, true)
	}
	if n <= int64(len(cc.rb.b)) {
		for int64(cc.rb.len()) < n {
			if _, err := cc.rb.fill(&cc.io, len(cc.rb.b)); err != nil {
				return false
			}
		}
		ex.body = cc.rb.buffered()[:n]
		cc.rb.consume(int(n))
		return true
	}
	if int64(cap(cc.body)) < n {
		cc.body = make([]byte, 0, n)
	}
	b := cc.body[:n]
	k := copy(b, cc.rb.buffered())
	cc.rb.consume(k)
	if _, err := io.ReadFull(&cc.io, b[k:]); err != nil {
		return false
	}
	cc.body = b
	ex.body = b
	return true
}

// readChunkedBody decodes a chunked request body into cc.body. full
// reports that the whole body is there (and in ex.body); otherwise the
// body passed MaxReplayBody and the rest is streamed after cc.body. ok is
// false when the connection must end.
func (cc *clientConn) readChunkedBody() (full, ok bool) {
	cs := &cc.cs
	cs.reset()
	body := cc.body[:0]
	limit := cc.p.cfg.MaxReplayBody
	for {
		for cc.rb.len() > 0 && !cs.done() {
			n, data, err := cs.next(cc.rb.buffered())
			if err != nil {
				cc.reject(400)
				return false, false
			}
			body = append(body, data...)
			cc.rb.consume(n)
			if int64(len(body)) > limit {
				cc.body = body
				return false, true
			}
		}
		if cs.done() {
			cc.body = body
			cc.ex.body = body
			return true, true
		}
		setDeadline(cc.c, &cc.rdl, nanotime(), cc.p.cfg.IdleTimeout, true)
		if _, err := cc.rb.fill(&cc.io, len(cc.rb.b)); err != nil {
			return false, false
		}
	}
}

// streamBody writes the rest of a large request body upstream: a
// Content-Length body as it comes, a chunked one re-framed chunk by chunk
// after the buffered prefix.
func (cc *clientConn) streamBody(w io.Writer, chunked bool) error {
	fill := func() error {
		setDeadline(cc.c, &cc.rdl, nanotime(), cc.p.cfg.IdleTimeout, true)
		if _, err := cc.rb.fill(&cc.io, len(cc.rb.b)); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return &clientBodyError{err}
		}
		return nil
	}
	if !chunked {
		for cc.streamLeft > 0 {
			if cc.rb.len() == 0 {
				if err := fill(); err != nil {
					return err
				}
			}
			k := min(int64(cc.rb.len()), cc.streamLeft)
			if _, err := w.Write(cc.rb.buffered()[:k]); err != nil {
				return err
			}
			cc.rb.consume(int(k))
			cc.streamLeft -= k
		}
		return nil
	}
	var hdr [20]byte
	chunk := func(data []byte) error {
		cc.iov = append(cc.iov[:0], appendChunkHeader(hdr[:0], len(data)), data, crlf)
		iov := cc.iov
		_, err := iov.WriteTo(w)
		return err
	}
	if len(cc.body) > 0 {
		if err := chunk(cc.body); err != nil {
			return err
		}
	}
	cs := &cc.cs
	for !cs.done() {
		if cc.rb.len() == 0 {
			if err := fill(); err != nil {
				return err
			}
		}
		n, data, err := cs.next(cc.rb.buffered())
		if err != nil {
			return &clientBodyError{err}
		}
		cc.rb.consume(n)
		if len(data) > 0 {
			if err := chunk(data); err != nil {
				return err
			}
		}
	}
	_, err := w.Write(lastChunk)
	return err
}

var (
	crlf      = []byte("\r\n")
	lastChunk = []byte("0\r\n\r\n")
)

// streamDone: the streamed request body was read to its end.
func (cc *clientConn) streamDone() bool {
	if cc.ex.chunked {
		return cc.cs.done()
	}
	return cc.streamLeft == 0
}

// appendResponseHead writes the head the client gets: the upstream's,
// minus hop-by-hop fields, plus the proxy's own.
func (cc *clientConn) appendResponseHead(b []byte, resp *respHead, chunked, setCookie, keep bool, minor int) []byte {
	var cookie []byte
	if setCookie {
		cookie = cc.cookie[:]
	}
	return cc.p.appendResponseHead(b, resp, chunked, cookie, cc.tls, keep, minor)
}

// appendResponseHead writes the head a client gets; cookie, when not nil,
// is the sticky cookie to set.
func (p *Proxy) appendResponseHead(b []byte, resp *respHead, chunked bool, cookie []byte, tls, keep bool, minor int) []byte {
	b = append(b, "HTTP/1.1 "...)
	b = append(b, resp.statusLine...)
	b = append(b, '\r', '\n')
	b = appendRespFields(b, resp, chunked)
	if chunked {
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	}
	if resp.status == 101 {
		b = append(b, "Connection: Upgrade\r\nUpgrade: "...)
		b = append(b, resp.upgrade...)
		b = append(b, '\r', '\n')
	}
	if cookie != nil {
		b = p.appendSetCookie(b, cookie, tls)
	}
	if resp.status != 101 {
		if !keep {
			b = append(b, "Connection: close\r\n"...)
		} else if minor == 0 {
			b = append(b, "Connection: keep-alive\r\n"...)
		}
	}
	return append(b, '\r', '\n')
}

// appendRespFields copies the end-to-end fields of resp.
func appendRespFields(b []byte, resp *respHead, chunked bool) []byte {
	for i := range resp.fields {
		f := &resp.fields[i]
		switch f.kind {
		case hkConnection, hkKeepAlive, hkProxyConnection, hkTE, hkTransferEncoding, hkUpgrade, hkProxyOther:
			continue
		case hkTrailer:
			if !chunked {
				continue
			}
		case hkContentLength:
			if resp.bothCLTE {
				continue
			}
		}
		if f.hop {
			continue
		}
		b = append(b, f.name...)
		b = append(b, ':', ' ')
		b = append(b, f.value...)
		b = append(b, '\r', '\n')
	}
	return b
}

func (p *Proxy) appendSetCookie(b, val []byte, secure bool) []byte {
	b = append(b, "Set-Cookie: "...)
	b = p.appendCookie(b, val, secure)
	return append(b, '\r', '\n')
}

// appendCookie writes the sticky cookie: a year long, for the whole site,
// out of scripts' reach.
func (p *Proxy) appendCookie(b, val []byte, secure bool) []byte {
	b = append(b, p.cfg.cookie...)
	b = append(b, '=')
	b = append(b, val...)
	b = append(b, "; Path=/; Max-Age=31536000; HttpOnly; SameSite=Lax"...)
	if secure {
		b = append(b, "; Secure"...)
	}
	return b
}

// relayCL relays a Content-Length body: what came with the head in the
// same write, then each read as it arrives.
func (cc *clientConn) relayCL(uc *upConn, head []byte, n int64, mj *mirrorJob) (cerr, uerr error) {
	avail := uc.rb.buffered()
	k := min(int64(len(avail)), n)
	first := avail[:k]
	if mj != nil {
		mj.hash(first)
	}
	cerr = cc.writeHeadAnd(head, first)
	uc.rb.consume(int(k))
	n -= k
	if cerr != nil {
		return cerr, nil
	}
	p := cc.p
	for n > 0 {
		buf := uc.rb.b
		if int64(len(buf)) > n {
			buf = buf[:n]
		}
		setDeadline(uc.c, &uc.rdl, nanotime(), p.cfg.ResponseHeaderTimeout, true)
		m, err := uc.io.Read(buf)
		if m > 0 {
			if mj != nil {
				mj.hash(buf[:m])
			}
			if werr := cc.write(buf[:m]); werr != nil {
				return werr, nil
			}
			n -= int64(m)
		}
		if err != nil && n > 0 {
			return nil, err
		}
	}
	return nil, nil
}

// writeHeadAnd writes head and the first body bytes in one system call.
func (cc *clientConn) writeHeadAnd(head, body []byte) error {
	if len(body) == 0 {
		return cc.write(head)
	}
	if len(body) <= 4<<10 {
		head = append(head, body...)
		cc.ob = head[:0]
		return cc.write(head)
	}
	setDeadline(cc.c, &cc.wdl, nanotime(), cc.p.cfg.WriteTimeout, false)
	_, err := cc.io.writev(head, body)
	return err
}

// relayChunked relays a chunked body: verbatim (its framing checked on the
// way, to find its end), or decoded for HTTP/1.0 clients. Each read from
// the upstream is written at once, so streams (SSE) flush as they come.
func (cc *clientConn) relayChunked(uc *upConn, head []byte, mj *mirrorJob, dechunk bool) (cerr, uerr error) {
	cs := &cc.cs
	cs.reset()
	first := true
	var plain []byte
	p := cc.p
	for {
		buf := uc.rb.buffered()
		used := 0
		plain = plain[:0]
		for used < len(buf) && !cs.done() {
			n, data, err := cs.next(buf[used:])
			if err != nil {
				return nil, err
			}
			if len(data) > 0 {
				if mj != nil {
					mj.hash(data)
				}
				if dechunk {
					plain = append(plain, data...)
				}
			}
			used += n
		}
		out := buf[:used]
		if dechunk {
			out = plain
		}
		if first {
			cerr = cc.writeHeadAnd(head, out)
			first = false
		} else if len(out) > 0 {
			cerr = cc.write(out)
		}
		uc.rb.consume(used)
		if cerr != nil {
			return cerr, nil
		}
		if cs.done() {
			return nil, nil
		}
		setDeadline(uc.c, &uc.rdl, nanotime(), p.cfg.ResponseHeaderTimeout, true)
		if _, err := uc.rb.fill(&uc.io, len(uc.rb.b)); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
}

// relayClose relays a body delimited by the upstream closing.
func (cc *clientConn) relayClose(uc *upConn, head []byte, mj *mirrorJob) (cerr, uerr error) {
	avail := uc.rb.buffered()
	if mj != nil {
		mj.hash(avail)
	}
	if cerr = cc.writeHeadAnd(head, avail); cerr != nil {
		return cerr, nil
	}
	uc.rb.consume(len(avail))
	p := cc.p
	for {
		setDeadline(uc.c, &uc.rdl, nanotime(), p.cfg.ResponseHeaderTimeout, true)
		m, err := uc.io.Read(uc.rb.b)
		if m > 0 {
			if mj != nil {
				mj.hash(uc.rb.b[:m])
			}
			if werr := cc.write(uc.rb.b[:m]); werr != nil {
				return werr, nil
			}
		}
		if err == io.EOF {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// tunnel joins client and upstream after a 101 until both directions end.
func (cc *clientConn) tunnel(ex *exchange, uc *upConn, setCookie bool) {
	p := cc.p
	head := cc.appendResponseHead(cc.ob[:0], &ex.resp, false, setCookie, true, 1)
	cc.ob = head
	transportErr := false
	defer func() { p.release(ex, uc, false, transportErr) }()
	if err := cc.writeHeadAnd(head, uc.rb.buffered()); err != nil {
		return
	}
	uc.rb.consume(uc.rb.len())
	if cc.rb.len() > 0 {
		if _, err := uc.c.Write(cc.rb.buffered()); err != nil {
			return
		}
		cc.rb.consume(cc.rb.len())
	}
	cc.c.SetDeadline(time.Time{})
	uc.c.SetDeadline(time.Time{})
	cc.rdl, cc.wdl, uc.rdl, uc.wdl = 0, 0, 0, 0
	done := make(chan struct{})
	go func() {
		io.Copy(uc.c, cc.c)
		closeWrite(uc.c)
		close(done)
	}()
	io.Copy(cc.c, uc.c)
	closeWrite(cc.c)
	<-done
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
		return
	}
	c.Close()
}

// prefixConn replays bytes already read before the connection's own.
type prefixConn struct {
	net.Conn
	pre []byte
}

func (c *prefixConn) Read(b []byte) (int, error) {
	if len(c.pre) > 0 {
		n := copy(b, c.pre)
		c.pre = c.pre[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}

func statusText(code int) string {
	switch code {
	case 400:
		return "Bad Request"
	case 405:
		return "Method Not Allowed"
	case 408:
		return "Request Timeout"
	case 417:
		return "Expectation Failed"
	case 431:
		return "Request Header Fields Too Large"
	case 501:
		return "Not Implemented"
	case 502:
		return "Bad Gateway"
	case 503:
		return "Service Unavailable"
	case 504:
		return "Gateway Timeout"
	case 505:
		return "HTTP Version Not Supported"
	}
	return "Error"
}
