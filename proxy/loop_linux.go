//go:build linux

package proxy

// The event-loop data plane. A goroutine per connection parked in the Go
// runtime's poller serves a request in a few microseconds of CPU, like
// HAProxy, but under load the runtime wakes parked goroutines in convoys
// and the latency tail grows to 1.6–1.9× HAProxy's (docs/proxy.md). Here
// one loop per GOMAXPROCS, each on a locked OS thread with its own epoll
// set, owns its client and upstream connections and moves bytes with raw
// non-blocking system calls, as HAProxy and NGINX do.
//
// A loop takes plain HTTP/1.1 exchanges: a request with no body or a
// Content-Length body up to MaxReplayBody (answering Expect: 100-continue
// itself), no Upgrade, while no mirror and no fault drill is set, to plain-HTTP upstreams. Any
// other request hands its connection, with the bytes already read, to the
// goroutine path (clientConn) before anything goes upstream, so no request
// is sent twice. Routing, head rewriting, stats, the retry budget and the
// failure rules (retryState) are the goroutine path's own code.

import (
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

type loop struct {
	p *Proxy
	// ep is the loop's epoll set; lfd its duplicate of the listening
	// socket, -1 once it stopped accepting.
	ep, lfd int
	conns   map[int]any // *lconn or *lup by descriptor
	idle    map[*backend][]*lup
	evs     []syscall.EpollEvent
	// next is no later than the earliest deadline of a connection.
	next     int64
	tags     int32
	draining bool
	stopped  func() // tells serveLoops the loop no longer accepts

	// Connections the goroutine path gives back (adopt), and the eventfd
	// that wakes the loop for them.
	efd     int
	mu      sync.Mutex
	adopted []int
	closed  bool
}

// loopSet is the loops of a Serve, for connections coming back to them.
type loopSet struct {
	loops []*loop
	next  atomic.Uint32
}

// Deadline kinds of a client connection.
const (
	dlNone  uint8 = iota
	dlIdle        // between requests: IdleTimeout, or drainGrace when draining
	dlHead        // a partial request head: ReadHeaderTimeout, then 408
	dlWrite       // answer bytes the client does not take: WriteTimeout
)

// lconn is a client connection owned by a loop.
type lconn struct {
	fd     int
	tag    int32
	events uint32 // epoll interest
	rb     rbuf
	out    []byte // answer bytes the socket did not take yet
	req    reqHead
	ex     exchange
	rt     retryState
	ip     []byte
	cookie [16]byte
	wb, ob []byte
	body   []byte // the request body, kept for retries
	up     *lup   // the attempt in flight
	dl     int64
	dlKind uint8
	need   int // bytes the read buffer must hold for the request coming
	// sent100: the request coming was answered 100 Continue.
	sent100 bool

	busy      bool // an exchange is in flight
	setCookie bool
	reqClose  bool
	keep      bool
	eof       bool // the client closed its side during an exchange
	draining  bool
	minor     int
	relay     uint8
	left      int64 // Content-Length answer bytes still to relay
	cs        chunkScanner
}

// Relay modes of an answer's body.
const (
	lrNone uint8 = iota
	lrCL
	lrChunked
	lrClose
)

// States of an upstream connection.
const (
	usIdle uint8 = iota
	usConnecting
	usSending
	usHead
	usBody
)

// lup is an upstream connection owned by a loop.
type lup struct {
	fd      int
	tag     int32
	events  uint32
	state   uint8
	b       *backend
	rb      rbuf
	cl      *lconn
	pending []byte // the request being written
	written int
	headLen int
	// early: writing failed after the head went out; an answer that
	// came before the upstream closed is still the outcome.
	early     bool
	paused    bool // not read while the client's socket is full
	requests  int
	idleSince int64
	maxIdle   time.Duration
	dl        int64
}

// loopEnabled says whether Serve runs event loops: on Linux unless
// CUTOVER_DATAPLANE=goroutine.
func loopEnabled() bool { return os.Getenv("CUTOVER_DATAPLANE") != "goroutine" }

// serveLoops runs one loop per GOMAXPROCS on ln until Shutdown. It returns
// once every loop stopped accepting; the loops go on draining their
// connections, counted in connWG like the goroutine path's.
func (p *Proxy) serveLoops(ln *net.TCPListener) error {
	rc, err := ln.SyscallConn()
	if err != nil {
		return err
	}
	n := runtime.GOMAXPROCS(0)
	fds := make([]int, 0, n)
	var derr error
	rc.Control(func(fd uintptr) {
		for range n {
			d, _, e := syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_DUPFD_CLOEXEC, 0)
			if e != 0 {
				derr = e
				return
			}
			fds = append(fds, int(d))
		}
	})
	if derr != nil {
		for _, fd := range fds {
			syscall.Close(fd)
		}
		return derr
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	set := &loopSet{}
	for _, fd := range fds {
		wg.Add(1)
		var once sync.Once
		set.loops = append(set.loops, &loop{p: p, lfd: fd, efd: -1, conns: map[int]any{}, idle: map[*backend][]*lup{},
			evs: make([]syscall.EpollEvent, 256), stopped: func() { once.Do(wg.Done) }})
	}
	p.loops.Store(set)
	for _, l := range set.loops {
		p.connWG.Add(1)
		go func() {
			defer p.connWG.Done()
			runtime.LockOSThread()
			err := l.run()
			l.stopped()
			if err != nil {
				p.cfg.Logger.Error("event loop failed", "err", err)
				errs <- err
			}
		}()
	}
	wg.Wait()
	runtime.KeepAlive(ln)
	select {
	case err = <-errs:
		if !p.closing.Load() {
			return err
		}
	default:
	}
	return ErrClosed
}

// ctl changes the loop's interest in fd. tag comes back with each event:
// an event read in the same batch as a close is for the descriptor's old
// connection when its number was reused since, and is dropped.
func (l *loop) ctl(op, fd int, tag int32, ev uint32) error {
	return syscall.EpollCtl(l.ep, op, fd, &syscall.EpollEvent{Events: ev, Fd: int32(fd), Pad: tag})
}

func (l *loop) newTag() int32 {
	l.tags++
	if l.tags <= 0 {
		l.tags = 1
	}
	return l.tags
}

const epollExclusive = 1 << 28

// loopTick bounds how long a loop sleeps: it notices Shutdown within it.
const loopTick = 50 * time.Millisecond

func (l *loop) run() (err error) {
	if l.ep, err = syscall.EpollCreate1(syscall.EPOLL_CLOEXEC); err != nil {
		syscall.Close(l.lfd)
		return err
	}
	defer syscall.Close(l.ep)
	defer l.closeAll()
	if err := l.ctl(syscall.EPOLL_CTL_ADD, l.lfd, 0, syscall.EPOLLIN|epollExclusive); err != nil {
		syscall.Close(l.lfd)
		l.lfd = -1
		return err
	}
	efd, _, e := syscall.RawSyscall(syscall.SYS_EVENTFD2, 0, efdCloexec|efdNonblock, 0)
	if e != 0 {
		return os.NewSyscallError("eventfd2", e)
	}
	l.mu.Lock()
	l.efd = int(efd)
	l.mu.Unlock()
	if err := l.ctl(syscall.EPOLL_CTL_ADD, l.efd, 0, syscall.EPOLLIN); err != nil {
		return err
	}
	l.next = nanotime() + int64(loopTick)
	for {
		p := l.p
		if p.aborting.Load() {
			return nil
		}
		if p.closing.Load() && l.drain() {
			return nil
		}
		now := nanotime()
		if now >= l.next {
			l.expire(now)
		}
		wait := min(l.next-now, int64(loopTick))
		ms := int((wait + int64(time.Millisecond) - 1) / int64(time.Millisecond))
		// Under load events are ready: a poll that does not block skips
		// the runtime's bookkeeping for a blocking system call (and the
		// hand-off of this thread's P that follows it).
		n, e := pollNow(l.ep, l.evs)
		if e == 0 && n == 0 {
			var err error
			n, err = syscall.EpollWait(l.ep, l.evs, max(ms, 0))
			if err != nil {
				if err == syscall.EINTR {
					continue
				}
				return err
			}
		} else if e != 0 {
			if e == syscall.EINTR {
				continue
			}
			return e
		}
		for i := 0; i < n; i++ {
			fd, ev, tag := int(l.evs[i].Fd), l.evs[i].Events, l.evs[i].Pad
			if tag == 0 {
				switch {
				case fd == l.lfd && l.lfd >= 0:
					l.accept()
				case fd == l.efd:
					l.takeAdopted()
				}
				continue
			}
			switch c := l.conns[fd].(type) {
			case *lconn:
				if c.tag != tag {
					continue
				}
				if ev&syscall.EPOLLOUT != 0 && !l.flush(c) {
					continue
				}
				if ev&(syscall.EPOLLIN|syscall.EPOLLHUP|syscall.EPOLLERR|syscall.EPOLLRDHUP) != 0 {
					l.clientReadable(c)
				}
			case *lup:
				if c.tag == tag {
					l.upEvent(c, ev)
				}
			}
		}
	}
}

// deadline sets a connection's deadline and keeps l.next no later.
func (l *loop) deadline(dl *int64, at int64) {
	*dl = at
	if at != 0 && at < l.next {
		l.next = at
	}
}

func (l *loop) clientDeadline(c *lconn, kind uint8, d time.Duration) {
	c.dlKind = kind
	if kind == dlNone {
		c.dl = 0
		return
	}
	l.deadline(&c.dl, nanotime()+int64(d))
}

// expire acts on the deadlines that passed and finds the next one.
func (l *loop) expire(now int64) {
	l.next = now + int64(time.Hour)
	for _, v := range l.conns {
		switch c := v.(type) {
		case *lconn:
			if c.fd < 0 || c.dl == 0 {
				continue
			}
			if c.dl > now {
				l.next = min(l.next, c.dl)
				continue
			}
			if c.dlKind == dlHead {
				// A partial head, never during an exchange.
				l.p.stats.localReply(408)
				c.ob = appendLocal(c.ob[:0], 408, false, "")
				l.write(c, c.ob)
			}
			l.closeClient(c)
		case *lup:
			if c.fd < 0 || c.dl == 0 {
				continue
			}
			if c.dl > now {
				l.next = min(l.next, c.dl)
				continue
			}
			l.upTimeout(c)
		}
	}
}

// drain is Shutdown seen by the loop: stop accepting, close idle upstream
// connections, give idle clients drainGrace for a last request (answered
// with Connection: close). It reports whether nothing is left.
func (l *loop) drain() bool {
	if !l.draining {
		l.mu.Lock()
		l.draining = true
		l.mu.Unlock()
		if l.lfd >= 0 {
			l.ctl(syscall.EPOLL_CTL_DEL, l.lfd, 0, 0)
			syscall.Close(l.lfd)
			l.lfd = -1
		}
		l.stopped()
		for _, v := range l.conns {
			if c, ok := v.(*lconn); ok && !c.busy && c.rb.len() == 0 && len(c.out) == 0 {
				c.draining = true
				l.clientDeadline(c, dlIdle, drainGrace)
			}
		}
	}
	clients := false
	for _, v := range l.conns {
		switch c := v.(type) {
		case *lconn:
			clients = true
		case *lup:
			if c.state == usIdle {
				l.closeUp(c)
			}
		}
	}
	return !clients
}

// closeAll ends every connection the loop still has (Shutdown's deadline
// passed, or the loop failed).
func (l *loop) closeAll() {
	for _, v := range l.conns {
		switch c := v.(type) {
		case *lconn:
			l.closeClient(c)
		case *lup:
			l.closeUp(c)
		}
	}
	if l.lfd >= 0 {
		syscall.Close(l.lfd)
		l.lfd = -1
	}
	l.mu.Lock()
	l.closed = true
	for _, fd := range l.adopted {
		syscall.Close(fd)
	}
	l.adopted = nil
	if l.efd >= 0 {
		syscall.Close(l.efd)
		l.efd = -1
	}
	l.mu.Unlock()
}

func (l *loop) accept() {
	// One connection per wakeup: with EPOLLEXCLUSIVE the kernel wakes one
	// loop per incoming connection, and a loop that drained the whole
	// backlog would take a burst of connections alone (measured: p99
	// 1.5× HAProxy's instead of 1.17×).
	fd, sa, err := syscall.Accept4(l.lfd, syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
	if err != nil {
		if err != syscall.EAGAIN && err != syscall.ECONNABORTED && err != syscall.EINTR {
			l.p.cfg.Logger.Warn("accept failed", "err", err)
			if err == syscall.EMFILE || err == syscall.ENFILE {
				time.Sleep(5 * time.Millisecond) // no descriptor: do not spin
			}
		}
		return
	}
	syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
	l.add(fd, sa)
}

// add makes fd, a connected non-blocking client socket, one of the loop's.
func (l *loop) add(fd int, sa syscall.Sockaddr) {
	c := &lconn{fd: fd, events: syscall.EPOLLIN | syscall.EPOLLRDHUP}
	c.rb.b = make([]byte, clientBufSize)
	c.req.fields = make([]field, 0, 32)
	c.ex.resp.fields = make([]field, 0, 32)
	switch a := sa.(type) {
	case *syscall.SockaddrInet4:
		c.ip, _ = net.IP(a.Addr[:]).AppendText(nil)
	case *syscall.SockaddrInet6:
		ip := net.IP(a.Addr[:])
		if ip4 := ip.To4(); ip4 != nil {
			ip = ip4
		}
		c.ip, _ = ip.AppendText(nil)
	}
	l.conns[fd] = c
	c.tag = l.newTag()
	if err := l.ctl(syscall.EPOLL_CTL_ADD, fd, c.tag, c.events); err != nil {
		delete(l.conns, fd)
		syscall.Close(fd)
		return
	}
	c.draining = l.draining
	if c.draining {
		l.clientDeadline(c, dlIdle, drainGrace)
	} else {
		l.clientDeadline(c, dlIdle, l.p.cfg.IdleTimeout)
	}
}

// pollNow is epoll_wait that returns at once.
func pollNow(ep int, evs []syscall.EpollEvent) (int, syscall.Errno) {
	n, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, uintptr(ep), uintptr(unsafe.Pointer(&evs[0])), uintptr(len(evs)), 0, 0, 0)
	return int(n), e
}

func rawRead(fd int, b []byte) (int, syscall.Errno)  { return rawIO(syscall.SYS_READ, fd, b) }
func rawWrite(fd int, b []byte) (int, syscall.Errno) { return rawIO(syscall.SYS_WRITE, fd, b) }

// rawIO reads or writes a non-blocking descriptor without the runtime's
// bookkeeping for a system call that might block.
func rawIO(trap uintptr, fd int, b []byte) (int, syscall.Errno) {
	for {
		n, _, e := syscall.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		if e == syscall.EINTR {
			continue
		}
		return int(n), e
	}
}

func (l *loop) setEvents(fd int, tag int32, have *uint32, want uint32) {
	if *have != want {
		*have = want
		l.ctl(syscall.EPOLL_CTL_MOD, fd, tag, want)
	}
}

// closeClient ends a client connection and the attempt it has in flight.
func (l *loop) closeClient(c *lconn) {
	if c.fd < 0 {
		return
	}
	syscall.Close(c.fd)
	delete(l.conns, c.fd)
	c.fd = -1
	if u := c.up; u != nil {
		// The client left mid-exchange: the attempt ends without a
		// verdict on the side, unless its answer had begun.
		c.up = nil
		if u.state == usBody {
			l.p.answered(&c.ex, nanotime(), false)
		} else {
			u.b.end()
		}
		l.closeUp(u)
	}
}

func (l *loop) closeUp(u *lup) {
	if u.fd < 0 {
		return
	}
	syscall.Close(u.fd)
	delete(l.conns, u.fd)
	u.fd = -1
	u.cl = nil
}

// write sends b to the client, keeping what the socket does not take. It
// returns false when the client is gone.
func (l *loop) write(c *lconn, b []byte) bool {
	if c.fd < 0 {
		return false
	}
	if len(c.out) == 0 && len(b) > 0 {
		n, e := rawWrite(c.fd, b)
		if e != 0 {
			if e != syscall.EAGAIN {
				l.closeClient(c)
				return false
			}
			n = 0
		}
		b = b[n:]
	}
	if len(b) > 0 {
		if len(c.out) == 0 {
			l.clientDeadline(c, dlWrite, l.p.cfg.WriteTimeout)
		}
		c.out = append(c.out, b...)
		l.setEvents(c.fd, c.tag, &c.events, c.events|syscall.EPOLLOUT)
	}
	return true
}

// flush writes what the client's socket did not take; once all is out, the
// exchange's relay resumes, or the next request starts.
func (l *loop) flush(c *lconn) bool {
	if len(c.out) > 0 {
		n, e := rawWrite(c.fd, c.out)
		if e != 0 {
			if e == syscall.EAGAIN {
				return true
			}
			l.closeClient(c)
			return false
		}
		c.out = c.out[:copy(c.out, c.out[n:])]
		if len(c.out) > 0 {
			l.clientDeadline(c, dlWrite, l.p.cfg.WriteTimeout)
			return true
		}
	}
	if cap(c.out) > 64<<10 {
		c.out = nil
	}
	l.setEvents(c.fd, c.tag, &c.events, c.events&^syscall.EPOLLOUT)
	if c.dlKind == dlWrite {
		l.clientDeadline(c, dlNone, 0)
	}
	if u := c.up; u != nil {
		if u.paused {
			u.paused = false
			l.setEvents(u.fd, u.tag, &u.events, syscall.EPOLLIN|syscall.EPOLLRDHUP)
			l.relay(u)
		}
		return c.fd >= 0
	}
	l.idleOrNext(c)
	return c.fd >= 0
}

// idleOrNext follows an exchange whose answer is all out: the connection
// closes, or waits for (or starts) the next request.
func (l *loop) idleOrNext(c *lconn) {
	if c.busy || c.fd < 0 {
		return
	}
	if cap(c.body) > 64<<10 {
		c.body = nil // let a large body go
	}
	if !c.keep || c.eof {
		l.closeClient(c)
		return
	}
	l.nextRequest(c)
}

func (l *loop) clientReadable(c *lconn) {
	rb := &c.rb
	if rb.w == len(rb.b) {
		if rb.r == 0 && (c.busy || len(c.out) > 0) {
			// Pipelined requests fill the buffer: read again once this
			// exchange is done.
			l.setEvents(c.fd, c.tag, &c.events, c.events&^(syscall.EPOLLIN|syscall.EPOLLRDHUP))
			return
		}
		// Room for a head up to MaxHeaderBytes, or for the request
		// whose body is coming.
		if !rb.room(max(c.need, l.p.cfg.MaxHeaderBytes)) {
			l.handoff(c) // the goroutine path answers 431
			return
		}
	}
	n, e := rawRead(c.fd, rb.b[rb.w:])
	if e == syscall.EAGAIN {
		return
	}
	if e != 0 || n == 0 {
		if e == 0 && (c.busy || len(c.out) > 0) {
			// A half close: the answer still goes out, then the
			// connection ends.
			c.eof = true
			l.setEvents(c.fd, c.tag, &c.events, c.events&^(syscall.EPOLLIN|syscall.EPOLLRDHUP))
			return
		}
		l.closeClient(c)
		return
	}
	rb.w += n
	if !c.busy && len(c.out) == 0 {
		l.nextRequest(c)
	}
}

// nextRequest starts the exchange of the client's next buffered request, waits
// for more of it, or hands the connection to the goroutine path when the
// request is not one the loop takes.
func (l *loop) nextRequest(c *lconn) {
	p := l.p
	if c.events&syscall.EPOLLIN == 0 {
		l.setEvents(c.fd, c.tag, &c.events, c.events|syscall.EPOLLIN|syscall.EPOLLRDHUP)
	}
	buf := c.rb.buffered()
	if len(buf) == 0 {
		if c.draining || p.closing.Load() {
			if !c.draining {
				c.draining = true
				l.clientDeadline(c, dlIdle, drainGrace)
			}
			return
		}
		l.clientDeadline(c, dlIdle, p.cfg.IdleTimeout)
		return
	}
	if buf[0] == 'P' && len(buf) < len(h2Preface) && string(buf) == string(h2Preface[:len(buf)]) {
		l.clientDeadline(c, dlHead, p.cfg.ReadHeaderTimeout)
		return // maybe HTTP/2 with prior knowledge: the goroutine path's
	}
	n := headEnd(buf)
	if n == 0 {
		if len(buf) >= p.cfg.MaxHeaderBytes {
			l.handoff(c)
			return
		}
		if c.dlKind != dlHead {
			l.clientDeadline(c, dlHead, p.cfg.ReadHeaderTimeout)
		}
		return
	}
	h := &c.req
	if n > p.cfg.MaxHeaderBytes || parseRequestHead(buf[:n], h) != nil {
		l.handoff(c) // the goroutine path answers the error
		return
	}
	if h.minor != 1 || h.chunked || (h.connUpgrade && len(h.upgrade) > 0) ||
		h.contentLength > p.cfg.MaxReplayBody {
		l.handoff(c)
		return
	}
	if p.faults.Load() != nil || p.mirrorPct.Load() > 0 {
		l.handoffFor(c, true)
		return
	}
	if h.contentLength > 0 && int64(len(buf)) < int64(n)+h.contentLength {
		// The body is on its way; the buffer grows to hold it (it is
		// kept whole so that the request can be sent again).
		c.need = n + int(h.contentLength)
		if h.expectContinue && !c.sent100 {
			// The client waits to be asked for its body. Expect is not
			// forwarded, so the upstream never waits for a 100 of its own.
			c.sent100 = true
			if !l.write(c, continue100) {
				return
			}
		}
		l.clientDeadline(c, dlIdle, p.cfg.IdleTimeout)
		return
	}
	c.need, c.sent100 = 0, false
	l.clientDeadline(c, dlNone, 0)
	start := nanotime()
	p.budget.request(start)
	var bucket int
	bucket, c.setCookie = p.route(h, &c.cookie)
	ex := &c.ex
	*ex = exchange{p: p, buf: c.wb[:0], clen: -1, start: start, side: p.pickSide(bucket),
		idempotent: isIdempotent(h.method) || h.idemKey, isHead: string(h.method) == "HEAD",
		resp: respHead{common: common{fields: ex.resp.fields[:0]}}}
	ex.buf = p.appendRequestHead(ex.buf, h, c.ip, false)
	ex.base = len(ex.buf)
	ex.needHost = p.cfg.RewriteHost || (h.hostCount == 0 && h.absHost == nil)
	c.minor, c.reqClose = h.minor, h.connClose
	if h.contentLength >= 0 {
		ex.clen = h.contentLength
	}
	c.body = append(c.body[:0], buf[n:int64(n)+max(h.contentLength, 0)]...)
	ex.body = c.body
	c.rb.consume(n + len(c.body))
	if len(c.rb.b) > 8*clientBufSize && c.rb.len() == 0 {
		c.rb.b = make([]byte, clientBufSize) // let a large body's buffer go
	}
	c.wb = ex.buf
	c.rt = retryState{side: ex.side}
	c.busy = true
	l.attempt(c)
}

// attempt sends the exchange to a backend of c.rt.side, as roundTrip's
// loop does, or answers the failure.
func (l *loop) attempt(c *lconn) {
	p := l.p
	ex := &c.ex
	for {
		now := nanotime()
		side := c.rt.side
		b := p.sides[side].pick(now, c.rt.exclude)
		if b == nil {
			if c.rt.toOther(p, false) {
				continue
			}
			l.fail(c, 502)
			return
		}
		b.begin()
		u, err := l.upstream(b, now)
		if err != nil {
			b.end()
			if c.rt.unreached(p, b, now, err) {
				continue
			}
			l.fail(c, 502)
			return
		}
		out := ex.attemptHead(b)
		u.headLen = len(out)
		out = append(out, ex.body...)
		ex.buf = out[:ex.base]
		c.wb = out
		u.pending, u.written, u.early = out, 0, false
		u.cl, c.up = c, u
		if u.state == usConnecting {
			return
		}
		u.state = usSending
		l.upWrite(u)
		return
	}
}

// fail answers a failure of the exchange's sides.
func (l *loop) fail(c *lconn, status int) {
	p := l.p
	p.stats.localReply(status)
	c.busy = false
	c.keep = !c.reqClose && !c.draining && !p.closing.Load()
	c.ob = appendLocal(c.ob[:0], status, c.keep, c.ex.side.String())
	if l.write(c, c.ob) && len(c.out) == 0 {
		l.idleOrNext(c)
	}
}

// upstream takes an idle pooled connection to b or starts connecting one.
func (l *loop) upstream(b *backend, now int64) (*lup, error) {
	for {
		idle := l.idle[b]
		k := len(idle)
		if k == 0 {
			break
		}
		u := idle[k-1]
		idle[k-1] = nil
		l.idle[b] = idle[:k-1]
		if u.fd < 0 {
			continue
		}
		if time.Duration(now-u.idleSince) >= u.maxIdle {
			l.closeUp(u)
			continue
		}
		u.dl = 0
		return u, nil
	}
	la, err := l.resolve(b, now)
	if err != nil {
		return nil, err
	}
	sa, family, addr := la.sa, la.family, la.tcp
	fd, err := syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
	syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1)
	u := &lup{fd: fd, b: b, maxIdle: l.p.cfg.UpstreamIdleTimeout}
	u.rb.b = make([]byte, upBufSize)
	u.events = syscall.EPOLLIN | syscall.EPOLLRDHUP
	// A copy: Connect writes into the sockaddr, which the loops share.
	switch sa := sa.(type) {
	case *syscall.SockaddrInet4:
		c := *sa
		err = syscall.Connect(fd, &c)
	case *syscall.SockaddrInet6:
		c := *sa
		err = syscall.Connect(fd, &c)
	}
	switch err {
	case nil:
	case syscall.EINPROGRESS:
		u.state = usConnecting
		u.events |= syscall.EPOLLOUT
		l.deadline(&u.dl, now+int64(l.p.cfg.DialTimeout))
	default:
		syscall.Close(fd)
		return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: addr, Err: os.NewSyscallError("connect", err)}
	}
	u.tag = l.newTag()
	if err := l.ctl(syscall.EPOLL_CTL_ADD, fd, u.tag, u.events); err != nil {
		syscall.Close(fd)
		return nil, err
	}
	l.conns[fd] = u
	return u, nil
}

// resolveEvery is how long a resolved backend address is used before it
// is looked up again (in the background; the old one serves meanwhile).
const resolveEvery = 5 * time.Second

// resolve returns b's address. An IP address needs no lookup; a name is
// looked up in the loop once, the first time, then refreshed by a
// goroutine every resolveEvery while the loops go on with the last answer.
func (l *loop) resolve(b *backend, now int64) (*loopAddr, error) {
	la := b.addr.Load()
	if la == nil {
		la = lookupAddr(b.u.host, now)
		b.addr.Store(la)
	} else if now-la.at > int64(resolveEvery) && la.tcp != nil && !isIPHost(b.u.host) && b.resolving.CompareAndSwap(false, true) {
		go func() {
			defer b.resolving.Store(false)
			if fresh := lookupAddr(b.u.host, nanotime()); fresh.err == nil {
				b.addr.Store(fresh)
			} else {
				b.p.cfg.Logger.Warn("upstream lookup failed; keeping the last address", "upstream", b.u.raw, "err", fresh.err)
			}
		}()
	} else if la.err != nil && now-la.at > int64(time.Second) {
		// The first lookup failed: try again, at most once a second.
		la = lookupAddr(b.u.host, now)
		b.addr.Store(la)
	}
	if la.err != nil {
		return nil, la.err
	}
	return la, nil
}

func isIPHost(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	return err == nil && net.ParseIP(host) != nil
}

func lookupAddr(hostport string, now int64) *loopAddr {
	addr, err := net.ResolveTCPAddr("tcp", hostport)
	if err != nil {
		return &loopAddr{err: err, at: now}
	}
	la := &loopAddr{tcp: addr, family: syscall.AF_INET, at: now}
	if ip4 := addr.IP.To4(); ip4 != nil {
		a := &syscall.SockaddrInet4{Port: addr.Port}
		copy(a.Addr[:], ip4)
		la.sa = a
	} else {
		a := &syscall.SockaddrInet6{Port: addr.Port, ZoneId: zoneID(addr.Zone)}
		copy(a.Addr[:], addr.IP.To16())
		la.sa, la.family = a, syscall.AF_INET6
	}
	return la
}

func zoneID(zone string) uint32 {
	if zone == "" {
		return 0
	}
	if ifi, err := net.InterfaceByName(zone); err == nil {
		return uint32(ifi.Index)
	}
	return 0
}

func (l *loop) upEvent(u *lup, ev uint32) {
	if !l.owned(u) {
		return
	}
	switch u.state {
	case usConnecting:
		if ev&(syscall.EPOLLOUT|syscall.EPOLLERR|syscall.EPOLLHUP) != 0 {
			l.connected(u)
		}
	case usIdle:
		// An idle connection that turns readable was closed by the
		// upstream (or sent bytes nobody asked for).
		for i, v := range l.idle[u.b] {
			if v == u {
				l.idle[u.b] = append(l.idle[u.b][:i], l.idle[u.b][i+1:]...)
				break
			}
		}
		l.closeUp(u)
	case usSending:
		if ev&(syscall.EPOLLIN|syscall.EPOLLRDHUP) != 0 && u.written >= u.headLen {
			// The upstream answers (or closes) before taking the whole
			// body: its answer, if one comes, is the outcome.
			u.early, u.state = true, usHead
			l.setEvents(u.fd, u.tag, &u.events, syscall.EPOLLIN|syscall.EPOLLRDHUP)
			l.deadline(&u.dl, nanotime()+int64(l.p.cfg.ResponseHeaderTimeout))
			l.upReadable(u)
			return
		}
		l.upWrite(u) // writable, or the write reports the error
	default:
		if ev&(syscall.EPOLLIN|syscall.EPOLLHUP|syscall.EPOLLERR|syscall.EPOLLRDHUP) != 0 {
			l.upReadable(u)
		}
	}
}

func (l *loop) connected(u *lup) {
	var err error
	if e, gerr := syscall.GetsockoptInt(u.fd, syscall.SOL_SOCKET, syscall.SO_ERROR); gerr != nil {
		err = gerr
	} else if e != 0 {
		err = os.NewSyscallError("connect", syscall.Errno(e))
	}
	if err != nil {
		l.unreachable(u, &net.OpError{Op: "dial", Net: "tcp", Err: err})
		return
	}
	u.state = usSending
	u.dl = 0
	l.upWrite(u)
}

// owned checks what the rest relies on: an upstream connection that is not
// idle serves a client (closeClient and closeUp keep it so). A breach would
// be a bug; the connection is closed rather than the loop crashed.
func (l *loop) owned(u *lup) bool {
	if u.state != usIdle && u.cl == nil {
		l.p.cfg.Logger.Error("event loop: an upstream connection in use has no client; closing it")
		l.closeUp(u)
		return false
	}
	return true
}

// unreachable: connecting u failed; nothing was sent.
func (l *loop) unreachable(u *lup, err error) {
	c, b := u.cl, u.b
	l.closeUp(u)
	c.up = nil
	p := l.p
	b.end()
	if c.rt.unreached(p, b, nanotime(), err) {
		l.attempt(c)
		return
	}
	l.fail(c, 502)
}

func (l *loop) upWrite(u *lup) {
	for u.written < len(u.pending) {
		n, e := rawWrite(u.fd, u.pending[u.written:])
		if e == syscall.EAGAIN {
			l.setEvents(u.fd, u.tag, &u.events, syscall.EPOLLIN|syscall.EPOLLRDHUP|syscall.EPOLLOUT)
			if u.dl == 0 {
				l.deadline(&u.dl, nanotime()+int64(l.p.cfg.WriteTimeout))
			}
			return
		}
		if e != 0 {
			if u.written >= u.headLen {
				// The upstream may have answered before taking the whole
				// body (413, 401) and closed: read its answer.
				u.early = true
				break
			}
			l.failed(u, e, false, false)
			return
		}
		u.written += n
	}
	u.state = usHead
	l.setEvents(u.fd, u.tag, &u.events, syscall.EPOLLIN|syscall.EPOLLRDHUP)
	l.deadline(&u.dl, nanotime()+int64(l.p.cfg.ResponseHeaderTimeout))
}

// upTimeout: an upstream deadline passed.
func (l *loop) upTimeout(u *lup) {
	if !l.owned(u) {
		return
	}
	switch u.state {
	case usConnecting:
		l.unreachable(u, &net.OpError{Op: "dial", Net: "tcp", Err: os.ErrDeadlineExceeded})
	case usIdle:
		l.closeUp(u)
	case usSending:
		l.failed(u, os.ErrDeadlineExceeded, u.written >= u.headLen, false)
	case usHead:
		l.failed(u, os.ErrDeadlineExceeded, true, u.rb.len() > 0)
	case usBody:
		l.bodyFailed(u)
	}
}

// failed ends an attempt without an answer, with roundTrip's rules: a
// request not sent in full goes elsewhere, a stale pooled connection is
// replaced, a replayable request the new side failed goes to legacy.
func (l *loop) failed(u *lup, err error, sent, got bool) {
	c, b, reused := u.cl, u.b, u.requests > 0
	l.closeUp(u)
	c.up = nil
	p := l.p
	ex := &c.ex
	b.end()
	if !sent {
		if c.rt.notSent(p, reused) {
			l.attempt(c)
			return
		}
		l.fail(c, 502)
		return
	}
	if !got && reused && isClosedConn(err) && ex.replayable() && c.rt.stale < maxStaleRetries {
		// The upstream closed the pooled connection as the request went
		// out: it was not processed; try a fresh one.
		c.rt.stale++
		l.attempt(c)
		return
	}
	p.stats.record(c.rt.side, nanotime(), -1, 0, true)
	if c.rt.replay(p, ex, nanotime()) {
		l.attempt(c)
		return
	}
	l.fail(c, timeoutStatus(err))
}

var errRespHeadTooLarge = headErr(502, "response head too large")

func (l *loop) upReadable(u *lup) {
	if u.paused {
		// Not read while the client's socket is full: an event now is a
		// reset or an error.
		l.bodyFailed(u)
		return
	}
	rb := &u.rb
	if !rb.room(maxRespHead) {
		l.failed(u, errRespHeadTooLarge, true, true)
		return
	}
	n, e := rawRead(u.fd, rb.b[rb.w:])
	if e == syscall.EAGAIN {
		return
	}
	if e != 0 || n == 0 {
		var err error = e
		if e == 0 {
			err = io.ErrUnexpectedEOF
		}
		switch u.state {
		case usHead:
			l.failed(u, err, true, rb.len() > 0)
		case usBody:
			if u.cl.relay == lrClose && e == 0 {
				l.finish(u, false) // the close ends the answer
				return
			}
			l.bodyFailed(u)
		default:
			l.closeUp(u)
		}
		return
	}
	rb.w += n
	if u.state == usHead {
		l.head(u)
		return
	}
	l.relay(u)
}

// head parses the answer's head once it is whole and starts the relay.
func (l *loop) head(u *lup) {
	c := u.cl
	p := l.p
	ex := &c.ex
	rb := &u.rb
	for {
		buf := rb.buffered()
		hl := headEnd(buf)
		if hl == 0 {
			if len(buf) >= maxRespHead {
				l.failed(u, errRespHeadTooLarge, true, true)
			}
			return
		}
		if err := parseResponseHead(buf[:hl], &ex.resp); err != nil {
			l.failed(u, err, true, true)
			return
		}
		rb.r += hl
		if ex.resp.status >= 200 {
			break
		}
		if ex.resp.status == 101 {
			l.failed(u, headErr(502, "101 without an upgrade request"), true, true)
			return
		}
		rb.consume(0) // 100 Continue, 103 Early Hints: not forwarded
	}
	resp := &ex.resp
	now := nanotime()
	ex.ttfb = now - ex.start
	side := c.rt.side
	if u.early {
		resp.connClose = true
	}
	if resp.status >= 500 && side == SideNew && c.rt.replay(p, ex, now) {
		// The new side failed an idempotent request: replay it on
		// legacy; the client never sees this answer.
		p.stats.record(SideNew, now, ex.ttfb, resp.status, false)
		b := u.b
		l.closeUp(u)
		c.up = nil
		b.end()
		l.attempt(c)
		return
	}
	ex.b, ex.side = u.b, side
	u.state = usBody
	u.dl = 0
	switch {
	case ex.isHead || resp.status == 204 || resp.status == 304:
		c.relay = lrNone
	case resp.chunked:
		c.relay = lrChunked
		c.cs.reset()
	case resp.contentLength >= 0:
		c.relay, c.left = lrCL, resp.contentLength
	default:
		c.relay = lrClose
	}
	c.keep = !c.reqClose && !c.draining && !p.closing.Load() && c.relay != lrClose
	var cookie []byte
	if c.setCookie {
		cookie = c.cookie[:]
	}
	c.ob = p.appendResponseHead(c.ob[:0], resp, c.relay == lrChunked, cookie, false, c.keep, c.minor)
	l.relayWith(u, c.ob)
}

func (l *loop) relay(u *lup) { l.relayWith(u, nil) }

// relayWith passes the answer's body bytes read so far to the client, after
// pre (the head), and finishes the exchange at the body's end. While the
// client's socket is full the upstream is not read.
func (l *loop) relayWith(u *lup, pre []byte) {
	c := u.cl
	rb := &u.rb
	avail := rb.buffered()
	k := 0
	done := false
	switch c.relay {
	case lrNone:
		done = true
	case lrCL:
		k = int(min(int64(len(avail)), c.left))
		c.left -= int64(k)
		done = c.left == 0
	case lrChunked:
		for k < len(avail) && !c.cs.done() {
			n, _, err := c.cs.next(avail[k:])
			if err != nil {
				l.bodyFailed(u)
				return
			}
			k += n
		}
		done = c.cs.done()
	case lrClose:
		k = len(avail)
	}
	if pre != nil {
		// One write for the head and the body bytes that came with it.
		pre = append(pre, avail[:k]...)
		c.ob = pre
		rb.consume(k)
		if !l.write(c, pre) {
			return
		}
	} else if k > 0 {
		if !l.write(c, avail[:k]) {
			return
		}
		rb.consume(k)
	}
	if done {
		l.finish(u, true)
		return
	}
	if len(c.out) > 0 {
		// The client's socket is full: the client's write deadline
		// governs until it drains.
		u.paused, u.dl = true, 0
		l.setEvents(u.fd, u.tag, &u.events, 0)
		return
	}
	l.deadline(&u.dl, nanotime()+int64(l.p.cfg.ResponseHeaderTimeout))
}

// bodyFailed: the upstream broke off its answer; the client, which has its
// head, loses the connection.
func (l *loop) bodyFailed(u *lup) {
	c := u.cl
	l.p.answered(&c.ex, nanotime(), true)
	c.up = nil
	l.closeUp(u)
	c.busy = false
	l.closeClient(c)
}

// finish ends an exchange whose answer was read whole, parking the
// upstream connection when it can serve another request.
func (l *loop) finish(u *lup, reusable bool) {
	c := u.cl
	p := l.p
	ex := &c.ex
	now := nanotime()
	p.answered(ex, now, false)
	u.cl, c.up, c.busy = nil, nil, false
	if reusable && !p.closing.Load() && len(l.idle[u.b]) < p.cfg.MaxIdlePerUpstream &&
		ex.keepUpstream(u.rb.len(), &u.maxIdle) {
		u.requests++
		u.rb.r, u.rb.w = 0, 0
		u.state, u.idleSince, u.paused = usIdle, now, false
		l.setEvents(u.fd, u.tag, &u.events, syscall.EPOLLIN|syscall.EPOLLRDHUP)
		l.deadline(&u.dl, now+int64(u.maxIdle))
		l.idle[u.b] = append(l.idle[u.b], u)
	} else {
		l.closeUp(u)
	}
	if len(c.out) == 0 {
		l.idleOrNext(c)
	}
}

const (
	efdCloexec  = 0x80000 // EFD_CLOEXEC
	efdNonblock = 0x800   // EFD_NONBLOCK
)

// toLoop gives a connection of the goroutine path back to a loop, between
// requests, when what made a loop hand it over (a mirror share, a fault
// drill) has ended. true: a loop has the socket; the caller closes its own
// descriptor.
func (p *Proxy) toLoop(cc *clientConn) bool {
	set := p.loops.Load()
	if set == nil || cc.tcp == nil || p.faults.Load() != nil || p.mirrorPct.Load() > 0 || p.closing.Load() {
		return false
	}
	rc, err := cc.tcp.SyscallConn()
	if err != nil {
		return false
	}
	nfd := -1
	rc.Control(func(fd uintptr) {
		if d, _, e := syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_DUPFD_CLOEXEC, 0); e == 0 {
			nfd = int(d)
		}
	})
	if nfd < 0 {
		return false
	}
	l := set.loops[int(set.next.Add(1))%len(set.loops)]
	if !l.adopt(nfd) {
		syscall.Close(nfd)
		return false
	}
	return true
}

// adopt queues a client socket for the loop and wakes it.
func (l *loop) adopt(fd int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.draining || l.efd < 0 {
		return false
	}
	l.adopted = append(l.adopted, fd)
	one := [8]byte{1}
	rawWrite(l.efd, one[:])
	return true
}

// takeAdopted makes the queued sockets the loop's.
func (l *loop) takeAdopted() {
	var buf [8]byte
	rawRead(l.efd, buf[:])
	l.mu.Lock()
	fds := l.adopted
	l.adopted = nil
	l.mu.Unlock()
	for _, fd := range fds {
		sa, err := syscall.Getpeername(fd)
		if err != nil {
			syscall.Close(fd)
			continue
		}
		l.add(fd, sa)
	}
}

// handoff gives the client connection, with the bytes it has buffered, to
// the goroutine path. It happens between exchanges only.
func (l *loop) handoff(c *lconn) { l.handoffFor(c, false) }

// handoffFor hands c over; back says it may come back to a loop once the
// reason (a mirror share, a fault drill) is gone.
func (l *loop) handoffFor(c *lconn, back bool) {
	l.ctl(syscall.EPOLL_CTL_DEL, c.fd, 0, 0)
	delete(l.conns, c.fd)
	f := os.NewFile(uintptr(c.fd), "")
	c.fd = -1
	nc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		l.p.cfg.Logger.Warn("handing a connection to the goroutine path failed", "err", err)
		return
	}
	cc := l.p.newClientConn(nc)
	if cc == nil {
		return
	}
	cc.seed = append([]byte(nil), c.rb.buffered()...)
	cc.back = back
	go cc.serve()
}
