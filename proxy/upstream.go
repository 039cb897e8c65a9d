package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// rbuf is a read buffer over a connection: bytes b[r:w] are read and not
// yet consumed.
type rbuf struct {
	b    []byte
	r, w int
}

func (rb *rbuf) buffered() []byte { return rb.b[rb.r:rb.w] }
func (rb *rbuf) len() int         { return rb.w - rb.r }
func (rb *rbuf) consume(n int) {
	rb.r += n
	if rb.r == rb.w {
		rb.r, rb.w = 0, 0
	}
}

var errHeadTooLarge = errors.New("head too large")

// fill reads once from c into free space, compacting or growing the buffer
// up to max bytes; with a full buffer at max it returns errHeadTooLarge.
func (rb *rbuf) fill(c io.Reader, max int) (int, error) {
	if !rb.room(max) {
		return 0, errHeadTooLarge
	}
	n, err := c.Read(rb.b[rb.w:])
	rb.w += n
	return n, err
}

// loopAddr is a backend's address as the loops connect to it.
type loopAddr struct {
	sa     syscall.Sockaddr
	family int
	tcp    *net.TCPAddr
	err    error
	at     int64 // when resolved (clock ns)
}

// room makes free space at the end of a full buffer, compacting it or
// growing it up to max bytes. false: the buffer is full at max.
func (rb *rbuf) room(max int) bool {
	if rb.w < len(rb.b) {
		return true
	}
	switch {
	case rb.r > 0:
		n := copy(rb.b, rb.b[rb.r:rb.w])
		rb.r, rb.w = 0, n
	case len(rb.b) < max:
		nb := make([]byte, min(2*len(rb.b), max))
		copy(nb, rb.b[:rb.w])
		rb.b = nb
	default:
		return false
	}
	return true
}

// upConn is one connection to an upstream, owned by one request at a time
// and otherwise parked in its backend's idle pool.
type upConn struct {
	c   net.Conn
	io  fdConn
	raw syscall.RawConn // nil when not TCP
	rb  rbuf
	b   *backend
	// requests served on this connection; > 0 means reused.
	requests int
	// idleSince is when the connection was parked (clock nanoseconds).
	idleSince int64
	// maxIdle is this connection's idle limit.
	maxIdle time.Duration
	// Deadlines set last, to skip resetting near-identical ones.
	rdl, wdl int64
	peekFn   func(fd uintptr) bool
	peekDead bool
}

const upBufSize = 16 << 10

// setDeadline sets a read (or write) deadline d from now, skipping the
// call when the one already set is still ahead and within d/16 (at most
// 1 s) of it: deadlines here are coarse guards, and re-arming a runtime
// timer on every request is measurable.
func setDeadline(c net.Conn, last *int64, now int64, d time.Duration, read bool) {
	want := now + int64(d)
	slack := int64(d) / 16
	if slack > int64(time.Second) {
		slack = int64(time.Second)
	}
	if *last > now && want-*last < slack && *last-want < slack {
		return
	}
	*last = want
	t := clockTime(want)
	if read {
		c.SetReadDeadline(t)
	} else {
		c.SetWriteDeadline(t)
	}
}

// peek reports, without blocking, whether the upstream closed the idle
// connection (or sent something unasked, which makes it unusable too).
func (uc *upConn) peek(fd uintptr) bool {
	var b [1]byte
	for {
		_, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
			syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			uc.peekDead = false // nothing to read: open and quiet
		default:
			uc.peekDead = true // EOF, data or an error
		}
		return true
	}
}

// alive checks a pooled connection before reuse.
func (uc *upConn) alive() bool {
	if uc.raw == nil {
		return true
	}
	if err := uc.raw.Read(uc.peekFn); err != nil {
		return false
	}
	return !uc.peekDead
}

func (uc *upConn) close() {
	uc.c.Close()
}

// backend is one upstream address of one side.
type backend struct {
	side     Side
	u        upstreamURL
	p        *Proxy
	inflight atomic.Int64
	// downUntil (clock nanoseconds) skips the backend after a dial
	// failure while another of its side is up.
	downUntil atomic.Int64
	mu        sync.Mutex
	idle      []*upConn
	dialer    net.Dialer
	tlsConf   *tls.Config
	// addr is the address the event loops connect to, resolved off the
	// loops (a DNS lookup would stall every connection of a loop).
	addr      atomic.Pointer[loopAddr]
	resolving atomic.Bool
}

// begin and end count an attempt in flight on b, for b (least-loaded
// picking) and for its side (the in-flight gauge).
func (b *backend) begin() {
	b.p.stats.sides[b.side].inflight.Add(1)
	b.inflight.Add(1)
}

func (b *backend) end() {
	b.inflight.Add(-1)
	b.p.stats.sides[b.side].inflight.Add(-1)
}

// A pooled connection is checked before reuse (one non-blocking
// MSG_PEEK) for a close by the upstream, so that a request of any method
// never goes onto a dead connection. Measured: no difference in
// throughput under load, where the check is one syscall next to six. What
// remains is the race of an upstream closing in the microseconds between
// the check and the write; the retry rules in roundTrip cover it for
// idempotent requests.

// get returns a pooled connection or dials a new one.
func (b *backend) get(now int64) (*upConn, error) {
	for {
		b.mu.Lock()
		n := len(b.idle)
		if n == 0 {
			b.mu.Unlock()
			break
		}
		uc := b.idle[n-1]
		b.idle[n-1] = nil
		b.idle = b.idle[:n-1]
		b.mu.Unlock()
		idle := time.Duration(now - uc.idleSince)
		if idle >= uc.maxIdle {
			uc.close()
			continue
		}
		// The read deadline of the last request may have passed while
		// the connection was idle; the check needs a live one.
		setDeadline(uc.c, &uc.rdl, now, b.p.cfg.ResponseHeaderTimeout, true)
		if !uc.alive() {
			uc.close()
			continue
		}
		return uc, nil
	}
	return b.dial()
}

func (b *backend) dial() (*upConn, error) {
	s := b.p.cfg
	ctx, cancel := context.WithTimeout(context.Background(), s.DialTimeout)
	defer cancel()
	c, err := b.dialer.DialContext(ctx, "tcp", b.u.host)
	if err != nil {
		return nil, err
	}
	uc := &upConn{b: b, maxIdle: s.UpstreamIdleTimeout}
	uc.rb.b = make([]byte, upBufSize)
	uc.peekFn = uc.peek
	if tc, ok := c.(*net.TCPConn); ok {
		uc.raw, _ = tc.SyscallConn()
	}
	if b.u.tls {
		tc := tls.Client(c, b.tlsConf)
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, err
		}
		c = tc
	}
	uc.c = c
	uc.io.init(c)
	return uc, nil
}

// put parks a connection whose last exchange ended cleanly.
func (b *backend) put(uc *upConn, now int64) {
	uc.idleSince = now
	uc.rb.r, uc.rb.w = 0, 0
	b.mu.Lock()
	if len(b.idle) >= b.p.cfg.MaxIdlePerUpstream || b.p.closing.Load() {
		b.mu.Unlock()
		uc.close()
		return
	}
	b.idle = append(b.idle, uc)
	b.mu.Unlock()
}

// reap closes connections idle past their limit. The pool is a stack, so
// the oldest are at the bottom.
func (b *backend) reap(now int64, all bool) {
	b.mu.Lock()
	var dead []*upConn
	keep := b.idle[:0]
	for _, uc := range b.idle {
		if all || time.Duration(now-uc.idleSince) >= uc.maxIdle {
			dead = append(dead, uc)
		} else {
			keep = append(keep, uc)
		}
	}
	for i := len(keep); i < len(b.idle); i++ {
		b.idle[i] = nil
	}
	b.idle = keep
	b.mu.Unlock()
	for _, uc := range dead {
		uc.close()
	}
}

func (b *backend) idleCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.idle)
}

// sideSet is the backends of one side.
type sideSet struct {
	backends []*backend
	rr       atomic.Uint32
}

// markDownFor is how long a backend that refused a connection is skipped
// while another backend of its side is up.
const markDownFor = time.Second

// pick chooses the least-loaded backend that is up, starting at a
// rotating index so that ties spread round-robin. exclude is skipped
// unless it is the only one.
func (s *sideSet) pick(now int64, exclude *backend) *backend {
	n := len(s.backends)
	switch n {
	case 0:
		return nil
	case 1:
		if s.backends[0] == exclude {
			return nil
		}
		return s.backends[0]
	}
	start := int(s.rr.Add(1))
	var best *backend
	var bestLoad int64
	bestDown := true
	for i := 0; i < n; i++ {
		b := s.backends[(start+i)%n]
		if b == exclude {
			continue
		}
		down := b.downUntil.Load() > now
		load := b.inflight.Load()
		if best == nil || (bestDown && !down) || (down == bestDown && load < bestLoad) {
			best, bestLoad, bestDown = b, load, down
		}
	}
	return best
}

// anyUp reports whether some backend other than exclude is not marked
// down.
func (s *sideSet) anyUp(now int64, exclude *backend) bool {
	for _, b := range s.backends {
		if b != exclude && b.downUntil.Load() <= now {
			return true
		}
	}
	return false
}
