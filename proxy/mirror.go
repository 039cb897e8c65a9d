package proxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"hash"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
)

// mirrorer copies a share of legacy-bound requests to the new side and
// compares the answers (status and SHA-256 of the decoded body). The copy
// runs in its own goroutine under a concurrency bound and never delays the
// client, who only ever sees legacy's answer. Mirrored requests carry
// "X-Cutover-Mirror: 1" so that the new side can tell them apart, and are
// not counted in the sides' stats (they would skew the split the judge
// compares).
type mirrorer struct {
	p   *Proxy
	sem chan struct{}
	wg  sync.WaitGroup
}

func (m *mirrorer) init(p *Proxy) {
	m.p = p
	m.sem = make(chan struct{}, p.cfg.MirrorConcurrency)
}

// want decides, before the request is sent, whether to mirror it.
func (m *mirrorer) want(ex *exchange, h *reqHead) bool {
	pct := m.p.mirrorPct.Load()
	if pct == 0 || ex.side != SideLegacy || ex.upgrade || len(m.p.sides[SideNew].backends) == 0 {
		return false
	}
	if !m.p.cfg.MirrorUnsafe && !isIdempotent(h.method) {
		return false
	}
	return rand.IntN(100) < int(pct)
}

// wantMethod is want for the HTTP/2 path.
func (m *mirrorer) wantMethod(ex *exchange, method string) bool {
	pct := m.p.mirrorPct.Load()
	if pct == 0 || ex.side != SideLegacy || len(m.p.sides[SideNew].backends) == 0 {
		return false
	}
	if !m.p.cfg.MirrorUnsafe && !isIdempotent([]byte(method)) {
		return false
	}
	return rand.IntN(100) < int(pct)
}

// mirrorJob is one mirrored request. Its two halves (legacy's answer
// relayed to the client, the new side's answer read by the job) finish in
// either order; the second compares.
type mirrorJob struct {
	m       *mirrorer
	route   string
	head    []byte
	host    bool
	body    []byte
	clen    int64
	legacy  hash.Hash
	lStatus int
	lOK     bool
	nStatus int
	nErr    error
	nSum    []byte
	pending atomic.Int32
}

// start launches the mirror of ex, whose legacy answer is about to be
// relayed; nil when too many mirrors are in flight.
func (m *mirrorer) start(ex *exchange, route string) *mirrorJob {
	select {
	case m.sem <- struct{}{}:
	default:
		m.p.stats.mirror.dropped.Add(1)
		return nil
	}
	j := &mirrorJob{
		m:      m,
		route:  route,
		head:   append(bytes.Clone(ex.buf[:ex.base]), "X-Cutover-Mirror: 1\r\n"...),
		host:   ex.needHost,
		body:   bytes.Clone(ex.body),
		clen:   ex.clen,
		legacy: sha256.New(),
	}
	j.pending.Store(2)
	m.wg.Add(1)
	go j.run(ex.isHead)
	return j
}

func (j *mirrorJob) hash(b []byte) { j.legacy.Write(b) }

// legacyDone reports legacy's answer after the relay; ok is false when it
// did not reach the client whole (nothing to compare then).
func (j *mirrorJob) legacyDone(status int, ok bool) {
	j.lStatus, j.lOK = status, ok
	j.half()
}

func (j *mirrorJob) half() {
	if j.pending.Add(-1) != 0 {
		return
	}
	if !j.lOK {
		return
	}
	r := j.m.p.stats.mirror.route(j.route)
	switch {
	case j.nErr != nil:
		r.errors.Add(1)
	case j.nStatus == j.lStatus && bytes.Equal(j.nSum, j.legacy.Sum(nil)):
		r.match.Add(1)
	default:
		r.mismatch.Add(1)
	}
}

func (j *mirrorJob) run(isHead bool) {
	defer func() {
		<-j.m.sem
		j.m.wg.Done()
	}()
	j.nStatus, j.nSum, j.nErr = j.send(isHead)
	j.half()
}

// send sends the mirror to the new side and hashes its answer.
func (j *mirrorJob) send(isHead bool) (int, []byte, error) {
	p := j.m.p
	now := nanotime()
	b := p.sides[SideNew].pick(now, nil)
	if b == nil {
		return 0, nil, errNoUpstream
	}
	ex := &exchange{p: p, buf: j.head, base: len(j.head), needHost: j.host, body: j.body, clen: j.clen, isHead: isHead}
	for attempt := 0; ; attempt++ {
		uc, err := b.get(nanotime())
		if err != nil {
			return 0, nil, err
		}
		_, err = p.send(ex, uc, b)
		var got bool
		if err == nil {
			got, err = p.readRespHead(ex, uc)
		}
		if err != nil {
			uc.close()
			if !got && uc.requests > 0 && attempt < maxStaleRetries {
				continue
			}
			return 0, nil, err
		}
		h := sha256.New()
		body := newRespBody(p, uc, &ex.resp, isHead)
		_, err = io.Copy(h, body)
		if err == nil && body.clean() && !ex.resp.connClose && !ex.resp.bothCLTE {
			uc.requests++
			b.put(uc, nanotime())
		} else {
			uc.close()
		}
		if err != nil {
			return 0, nil, err
		}
		return ex.resp.status, h.Sum(nil), nil
	}
}

// wait waits for mirrors in flight, or ctx.
func (m *mirrorer) wait(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		m.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
}
