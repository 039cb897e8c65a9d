package proxy

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"strings"

	"golang.org/x/net/http2"
)

// The HTTP/2 front end: golang.org/x/net/http2 serves the connection and
// each stream comes here as an *http.Request. It shares routing, retries,
// replays, mirroring and stats with the HTTP/1 path through exchange and
// roundTrip; only the translation in and out differs. Upstreams are still
// spoken to in HTTP/1.1. Response trailers are not forwarded on this path.

func (cc *clientConn) serveH2(c net.Conn) {
	p := cc.p
	// The connection is served by the http2 package from here on; the
	// drain logic of the HTTP/1 path does not apply, the GOAWAY of
	// http2's graceful shutdown does.
	cc.state.Store(stActive)
	p.h2.ServeConn(c, &http2.ServeConnOpts{
		BaseConfig: p.h1srv,
		Handler:    http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { p.serveHTTP(w, r, cc.tls) }),
	})
}

// hopHeaders are never forwarded (RFC 9110 §7.6.1, and Proxy for httpoxy).
var hopHeaders = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Te": true,
	"Trailer": true, "Transfer-Encoding": true, "Upgrade": true, "Proxy-Authorization": true,
	"Proxy-Authenticate": true, "Proxy": true, "Expect": true, "Content-Length": true,
	"X-Forwarded-For": true, "Host": true,
}

// serveHTTP proxies one request of the slow path.
func (p *Proxy) serveHTTP(w http.ResponseWriter, r *http.Request, tls bool) {
	start := nanotime()
	p.budget.request(start)
	var key []byte
	setCookie := false
	if p.cfg.header != nil {
		if v := r.Header.Get(string(p.cfg.header)); v != "" {
			key = []byte(v)
		}
	}
	if key == nil && p.cfg.cookie != nil {
		if c, err := r.Cookie(string(p.cfg.cookie)); err == nil && c.Value != "" {
			key = []byte(c.Value)
		} else {
			key = newCookieValue(nil)
			setCookie = true
		}
	}
	bucket := 0
	if key != nil {
		bucket = bucketOf(key)
	} else {
		bucket = int(nanotime() % buckets)
	}
	_, idem := r.Header["Idempotency-Key"]
	ex := &exchange{
		p:          p,
		clen:       -1,
		start:      start,
		side:       p.pickSide(bucket),
		idempotent: isIdempotent([]byte(r.Method)) || idem,
		isHead:     r.Method == http.MethodHead,
		needHost:   p.cfg.RewriteHost,
	}
	ex.buf = p.appendH2RequestHead(nil, r, tls)
	ex.base = len(ex.buf)

	// Body: buffered up to MaxReplayBody, streamed beyond.
	if r.Body != nil && r.Body != http.NoBody {
		limit := p.cfg.MaxReplayBody
		buf, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
		if err != nil {
			p.stats.localReply(400)
			http.Error(w, "reading request body: "+err.Error(), http.StatusBadRequest)
			return
		}
		if int64(len(buf)) <= limit {
			ex.body = buf
			if len(buf) > 0 || r.ContentLength == 0 || methodHasBody(r.Method) {
				ex.clen = int64(len(buf))
			}
		} else {
			ex.stream = &h2Body{prefix: buf, r: r.Body}
			if r.ContentLength > 0 {
				ex.clen = r.ContentLength
			} else {
				ex.chunked = true
			}
		}
	} else if methodHasBody(r.Method) {
		ex.clen = 0
	}
	mirror := p.mirror.wantMethod(ex, r.Method)

	uc, err := p.roundTrip(ex)
	if err != nil {
		status := 502
		var ue *errUpstream
		if errors.As(err, &ue) {
			status = ue.status
		}
		p.stats.localReply(status)
		http.Error(w, statusText(status), status)
		return
	}
	var mj *mirrorJob
	if mirror && ex.side == SideLegacy && ex.stream == nil {
		mj = p.mirror.start(ex, routeOf([]byte(r.Method), []byte(r.URL.RequestURI())))
	}
	resp := &ex.resp
	hdr := w.Header()
	for i := range resp.fields {
		f := &resp.fields[i]
		if f.hop || f.kind == hkContentLength && (resp.bothCLTE || resp.chunked) {
			continue
		}
		name := textproto.CanonicalMIMEHeaderKey(string(f.name))
		if hopHeaders[name] && name != "Content-Length" {
			continue
		}
		hdr.Add(name, string(f.value))
	}
	if setCookie {
		hdr.Add("Set-Cookie", string(p.appendCookie(nil, key, tls)))
	}
	w.WriteHeader(resp.status)
	body := newRespBody(p, uc, resp, ex.isHead)
	fl, _ := w.(http.Flusher)
	buf := make([]byte, 16<<10)
	var uerr, cerr error
	for {
		n, err := body.Read(buf)
		if n > 0 {
			if mj != nil {
				mj.hash(buf[:n])
			}
			if _, werr := w.Write(buf[:n]); werr != nil {
				cerr = werr
				break
			}
			if fl != nil {
				fl.Flush()
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			uerr = err
			break
		}
	}
	if mj != nil {
		mj.legacyDone(resp.status, uerr == nil && cerr == nil)
	}
	p.release(ex, uc, uerr == nil && cerr == nil && body.clean(), uerr != nil)
	if uerr != nil {
		// Abort the stream so the client does not take a truncated body
		// for a whole one.
		panic(http.ErrAbortHandler)
	}
}

func methodHasBody(m string) bool {
	switch m {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		return true
	}
	return false
}

// appendH2RequestHead is appendRequestHead for a request of the slow path.
func (p *Proxy) appendH2RequestHead(b []byte, r *http.Request, tls bool) []byte {
	b = append(b, r.Method...)
	b = append(b, ' ')
	uri := r.RequestURI
	if uri == "" || !strings.HasPrefix(uri, "/") && uri != "*" {
		uri = r.URL.RequestURI()
	}
	b = append(b, uri...)
	b = append(b, " HTTP/1.1\r\n"...)
	if !p.cfg.RewriteHost {
		b = append(b, "Host: "...)
		b = append(b, r.Host...)
		b = append(b, '\r', '\n')
	}
	for name, vals := range r.Header {
		if hopHeaders[name] {
			if name == "Te" {
				for _, v := range vals {
					if strings.EqualFold(strings.TrimSpace(v), "trailers") {
						b = append(b, "TE: trailers\r\n"...)
						break
					}
				}
			}
			continue
		}
		if name == "Cookie" {
			// HTTP/2 may split cookies; HTTP/1.1 wants one field.
			b = append(b, "Cookie: "...)
			b = append(b, strings.Join(vals, "; ")...)
			b = append(b, '\r', '\n')
			continue
		}
		for _, v := range vals {
			b = append(b, name...)
			b = append(b, ':', ' ')
			b = append(b, v...)
			b = append(b, '\r', '\n')
		}
	}
	b = append(b, "X-Forwarded-For: "...)
	for _, v := range r.Header["X-Forwarded-For"] {
		b = append(b, v...)
		b = append(b, ',', ' ')
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	b = append(b, host...)
	b = append(b, '\r', '\n')
	if _, ok := r.Header["X-Forwarded-Proto"]; !ok {
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

// h2Body streams a request body beyond MaxReplayBody.
type h2Body struct {
	prefix []byte
	r      io.Reader
}

func (h *h2Body) streamBody(w io.Writer, chunked bool) error {
	src := io.MultiReader(bytesReader(h.prefix), h.r)
	buf := make([]byte, 32<<10)
	var hdr [20]byte
	for {
		n, err := src.Read(buf)
		if n > 0 {
			var werr error
			if chunked {
				bufs := net.Buffers{appendChunkHeader(hdr[:0], n), buf[:n], crlf}
				_, werr = bufs.WriteTo(w)
			} else {
				_, werr = w.Write(buf[:n])
			}
			if werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return &clientBodyError{err}
		}
	}
	if chunked {
		_, err := w.Write(lastChunk)
		return err
	}
	return nil
}

func bytesReader(b []byte) io.Reader { return &sliceReader{b} }

type sliceReader struct{ b []byte }

func (s *sliceReader) Read(p []byte) (int, error) {
	if len(s.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.b)
	s.b = s.b[n:]
	return n, nil
}
