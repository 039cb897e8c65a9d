//go:build linux

// Command evloop is a peer for bench/proxy.sh: a reverse proxy written as
// an epoll event loop instead of a goroutine per connection. One loop per
// GOMAXPROCS, each on a locked OS thread with its own epoll descriptor and
// its own SO_REUSEPORT listener; every connection, client or upstream, is
// a state machine driven by readiness, with no goroutine and no runtime
// poller involved. It splits 90/10 between two keep-alive upstreams and
// adds X-Forwarded-For, like the fasthttp peer.
//
// It answers one question: does the tail latency that cutover's proxy
// shows against HAProxy come from the goroutine-per-connection model?
// So it handles only what the benchmark sends: HTTP/1.1 requests without
// a body or with a Content-Length one, and answers framed by
// Content-Length. Anything else gets a 501 and a close. It is not a
// proxy to run, and it is a separate module so that nothing in cutover
// builds it.
package main

import (
	"bytes"
	"flag"
	"log"
	"net"
	"runtime"
	"strconv"
	"strings"
	"syscall"
)

const maxHead = 16 << 10

type conn struct {
	fd      int
	client  bool
	peer    *conn  // the other end of the exchange in progress
	in      []byte // bytes read and not yet consumed
	out     []byte // bytes not yet written
	want    int    // upstream: length of the answer in progress, -1 until its head is read
	side    int
	ip      string
	pollOut bool
}

type loop struct {
	ep    int
	lfd   int
	conns map[int]*conn
	idle  [2][]*conn
	ups   [2]syscall.SockaddrInet4
	n     uint64
	buf   []byte
}

func main() {
	listen := flag.String("listen", "", "address to listen on")
	legacy := flag.String("legacy", "", "legacy upstream URL")
	newer := flag.String("new", "", "new upstream URL")
	flag.Parse()
	var ups [2]syscall.SockaddrInet4
	for i, u := range []string{*legacy, *newer} {
		ups[i] = sockaddr(strings.TrimPrefix(u, "http://"))
	}
	la := sockaddr(*listen)
	loops := runtime.GOMAXPROCS(0)
	errs := make(chan error)
	for i := 0; i < loops; i++ {
		go func() {
			runtime.LockOSThread()
			l := &loop{conns: map[int]*conn{}, ups: ups, buf: make([]byte, 64<<10)}
			errs <- l.run(&la)
		}()
	}
	log.Fatal(<-errs)
}

func sockaddr(hostport string) syscall.SockaddrInet4 {
	ta, err := net.ResolveTCPAddr("tcp4", hostport)
	if err != nil {
		log.Fatalf("evloop: %s: %v", hostport, err)
	}
	sa := syscall.SockaddrInet4{Port: ta.Port}
	copy(sa.Addr[:], ta.IP.To4())
	return sa
}

func (l *loop) run(la *syscall.SockaddrInet4) error {
	lfd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	syscall.SetsockoptInt(lfd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
	syscall.SetsockoptInt(lfd, syscall.SOL_SOCKET, 0xf /* SO_REUSEPORT */, 1)
	if err := syscall.Bind(lfd, la); err != nil {
		return err
	}
	if err := syscall.Listen(lfd, 1024); err != nil {
		return err
	}
	l.lfd = lfd
	if l.ep, err = syscall.EpollCreate1(syscall.EPOLL_CLOEXEC); err != nil {
		return err
	}
	if err := l.ctl(syscall.EPOLL_CTL_ADD, lfd, syscall.EPOLLIN); err != nil {
		return err
	}
	evs := make([]syscall.EpollEvent, 256)
	for {
		n, err := syscall.EpollWait(l.ep, evs, -1)
		if err != nil {
			if err == syscall.EINTR {
				continue
			}
			return err
		}
		for i := 0; i < n; i++ {
			fd, ev := int(evs[i].Fd), evs[i].Events
			if fd == lfd {
				l.accept()
				continue
			}
			c := l.conns[fd]
			if c == nil {
				continue
			}
			if ev&syscall.EPOLLOUT != 0 && !l.flush(c) {
				continue
			}
			if ev&(syscall.EPOLLIN|syscall.EPOLLHUP|syscall.EPOLLERR) != 0 {
				l.readable(c)
			}
		}
	}
}

func (l *loop) ctl(op, fd int, events uint32) error {
	return syscall.EpollCtl(l.ep, op, fd, &syscall.EpollEvent{Events: events, Fd: int32(fd)})
}

func (l *loop) accept() {
	for {
		fd, sa, err := syscall.Accept4(l.lfd, syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
		if err != nil {
			return
		}
		syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
		c := &conn{fd: fd, client: true}
		if a, ok := sa.(*syscall.SockaddrInet4); ok {
			c.ip = net.IP(a.Addr[:]).String()
		}
		l.conns[fd] = c
		l.ctl(syscall.EPOLL_CTL_ADD, fd, syscall.EPOLLIN)
	}
}

func (l *loop) close(c *conn) {
	if c.fd < 0 {
		return
	}
	syscall.Close(c.fd)
	delete(l.conns, c.fd)
	c.fd = -1
	if p := c.peer; p != nil {
		c.peer, p.peer = nil, nil
		l.close(p)
	}
}

// readable reads what the kernel has and moves the exchange on.
func (l *loop) readable(c *conn) {
	m, err := syscall.Read(c.fd, l.buf)
	if m <= 0 {
		if err == syscall.EAGAIN || err == syscall.EINTR {
			return
		}
		l.close(c)
		return
	}
	c.in = append(c.in, l.buf[:m]...)
	if c.client {
		l.request(c)
	} else {
		l.answer(c)
	}
}

// write sends b, keeping what the socket does not take for EPOLLOUT.
func (l *loop) write(c *conn, b []byte) bool {
	if len(c.out) == 0 {
		m, err := syscall.Write(c.fd, b)
		if m < 0 {
			m = 0
			if err != syscall.EAGAIN {
				l.close(c)
				return false
			}
		}
		b = b[m:]
	}
	if len(b) > 0 {
		c.out = append(c.out, b...)
		if !c.pollOut {
			c.pollOut = true
			l.ctl(syscall.EPOLL_CTL_MOD, c.fd, syscall.EPOLLIN|syscall.EPOLLOUT)
		}
	}
	return true
}

func (l *loop) flush(c *conn) bool {
	if len(c.out) > 0 {
		m, err := syscall.Write(c.fd, c.out)
		if m < 0 {
			if err == syscall.EAGAIN {
				return true
			}
			l.close(c)
			return false
		}
		c.out = c.out[:copy(c.out, c.out[m:])]
	}
	if len(c.out) == 0 && c.pollOut {
		c.pollOut = false
		l.ctl(syscall.EPOLL_CTL_MOD, c.fd, syscall.EPOLLIN)
	}
	return true
}

var (
	crlf2 = []byte("\r\n\r\n")
	clKey = []byte("\r\ncontent-length:")
)

// contentLength finds the Content-Length of a head, -1 if it has none.
func contentLength(head []byte) int {
	lower := bytes.ToLower(head)
	i := bytes.Index(lower, clKey)
	if i < 0 {
		return -1
	}
	v := head[i+len(clKey):]
	if j := bytes.IndexByte(v, '\r'); j >= 0 {
		v = v[:j]
	}
	n, err := strconv.Atoi(string(bytes.TrimSpace(v)))
	if err != nil || n < 0 {
		return -2
	}
	return n
}

// request starts an exchange for the client's next complete request.
func (l *loop) request(c *conn) {
	if c.peer != nil {
		return // one exchange at a time; the rest waits in c.in
	}
	end := bytes.Index(c.in, crlf2)
	if end < 0 {
		if len(c.in) > maxHead {
			l.refuse(c)
		}
		return
	}
	head := c.in[:end]
	if bytes.Contains(bytes.ToLower(head), []byte("transfer-encoding")) {
		l.refuse(c)
		return
	}
	body := contentLength(head)
	if body == -2 {
		l.refuse(c)
		return
	}
	body = max(body, 0)
	total := end + 4 + body
	if len(c.in) < total {
		return
	}
	l.n++
	side := 0
	if l.n%10 == 0 {
		side = 1
	}
	u := l.upstream(side)
	if u == nil {
		l.write(c, []byte("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
		l.close(c)
		return
	}
	u.peer, c.peer, u.want = c, u, -1
	out := make([]byte, 0, total+48)
	out = append(out, head...)
	out = append(out, "\r\nX-Forwarded-For: "...)
	out = append(out, c.ip...)
	out = append(out, crlf2...)
	out = append(out, c.in[end+4:total]...)
	c.in = c.in[:copy(c.in, c.in[total:])]
	l.write(u, out)
}

func (l *loop) refuse(c *conn) {
	l.write(c, []byte("HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
	l.close(c)
}

// upstream takes an idle connection to a side or opens one (a blocking
// connect: the upstreams are on loopback).
func (l *loop) upstream(side int) *conn {
	if k := len(l.idle[side]); k > 0 {
		u := l.idle[side][k-1]
		l.idle[side] = l.idle[side][:k-1]
		return u
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	if err := syscall.Connect(fd, &l.ups[side]); err != nil {
		syscall.Close(fd)
		return nil
	}
	syscall.SetNonblock(fd, true)
	syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
	u := &conn{fd: fd, side: side}
	l.conns[fd] = u
	l.ctl(syscall.EPOLL_CTL_ADD, fd, syscall.EPOLLIN)
	return u
}

// answer relays an upstream's answer to its client once it is whole.
func (l *loop) answer(u *conn) {
	c := u.peer
	if c == nil {
		l.close(u) // bytes nobody asked for
		return
	}
	if u.want < 0 {
		end := bytes.Index(u.in, crlf2)
		if end < 0 {
			return
		}
		n := contentLength(u.in[:end])
		if n < 0 {
			l.refuse(c)
			return
		}
		u.want = end + 4 + n
	}
	if len(u.in) < u.want {
		return
	}
	if !l.write(c, u.in[:u.want]) {
		return
	}
	u.in = u.in[:copy(u.in, u.in[u.want:])]
	u.peer, c.peer = nil, nil
	l.idle[u.side] = append(l.idle[u.side], u)
	if len(c.in) > 0 {
		l.request(c)
	}
}
