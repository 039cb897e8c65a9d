package proxy

import (
	"io"
	"net"
	"syscall"
	"unsafe"
)

// fdConn reads and writes a TCP connection of the hot path with raw
// system calls on its non-blocking descriptor, waiting through the
// runtime's poller (syscall.RawConn) only when the kernel says EAGAIN.
//
// Why: a plain net.Conn Read or Write enters and leaves the scheduler's
// syscall state around every call. On a busy proxy that is six calls per
// request, and the runtime's monitor keeps taking processors away from
// threads it sees in system calls and handing them to others: measured
// with perf, a fifth of the proxy's CPU went to those thread switches.
// Reads and writes on a non-blocking socket return at once, so they need
// none of it. Deadlines and Close work as usual: the poller still guards
// every wait.
type fdConn struct {
	c  net.Conn
	rc syscall.RawConn // nil: not a plain TCP connection, use c

	// The operation in progress, for the callbacks (kept as fields so
	// that the callbacks are method values made once, not closures made
	// per call).
	buf  []byte
	bufs [2][]byte
	nb   int
	n    int
	err  error
	rfn  func(uintptr) bool
	wfn  func(uintptr) bool
	wvfn func(uintptr) bool
	iov  [2]syscall.Iovec
}

func (f *fdConn) init(c net.Conn) {
	f.c = c
	f.rc = nil
	if tc, ok := c.(*net.TCPConn); ok {
		if rc, err := tc.SyscallConn(); err == nil {
			f.rc = rc
			f.rfn, f.wfn, f.wvfn = f.doRead, f.doWrite, f.doWritev
		}
	}
}

func (f *fdConn) Read(b []byte) (int, error) {
	if f.rc == nil {
		return f.c.Read(b)
	}
	if len(b) == 0 {
		return 0, nil
	}
	f.buf, f.n, f.err = b, 0, nil
	if err := f.rc.Read(f.rfn); err != nil {
		f.buf = nil
		return 0, err
	}
	f.buf = nil
	return f.n, f.err
}

func (f *fdConn) doRead(fd uintptr) bool {
	for {
		n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&f.buf[0])), uintptr(len(f.buf)))
		switch e {
		case 0:
			f.n = int(n)
			if n == 0 {
				f.err = io.EOF
			}
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		default:
			f.err = e
			return true
		}
	}
}

// Write writes all of b.
func (f *fdConn) Write(b []byte) (int, error) {
	if f.rc == nil {
		return f.c.Write(b)
	}
	if len(b) == 0 {
		return 0, nil
	}
	f.buf, f.n, f.err = b, 0, nil
	err := f.rc.Write(f.wfn)
	f.buf = nil
	if err == nil {
		err = f.err
	}
	return f.n, err
}

func (f *fdConn) doWrite(fd uintptr) bool {
	for f.n < len(f.buf) {
		rest := f.buf[f.n:]
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&rest[0])), uintptr(len(rest)))
		switch e {
		case 0:
			f.n += int(n)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			f.err = e
			return true
		}
	}
	return true
}

// writev writes a then b, in one system call when it can, and returns
// how many bytes went out.
func (f *fdConn) writev(a, b []byte) (int, error) {
	if f.rc == nil || len(a) == 0 || len(b) == 0 {
		if f.rc == nil {
			bufs := net.Buffers{a, b}
			n, err := bufs.WriteTo(f.c)
			return int(n), err
		}
		n, err := f.Write(a)
		if err != nil {
			return n, err
		}
		m, err := f.Write(b)
		return n + m, err
	}
	f.bufs[0], f.bufs[1], f.nb, f.n, f.err = a, b, 0, 0, nil
	err := f.rc.Write(f.wvfn)
	f.bufs[0], f.bufs[1] = nil, nil
	if err == nil {
		err = f.err
	}
	return f.n, err
}

func (f *fdConn) doWritev(fd uintptr) bool {
	for f.nb < 2 {
		cnt := 0
		for i := f.nb; i < 2; i++ {
			if len(f.bufs[i]) == 0 {
				continue
			}
			f.iov[cnt].Base = &f.bufs[i][0]
			f.iov[cnt].SetLen(len(f.bufs[i]))
			cnt++
		}
		if cnt == 0 {
			return true
		}
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&f.iov[0])), uintptr(cnt))
		f.iov[0].Base, f.iov[1].Base = nil, nil
		switch e {
		case 0:
			// Advance past what was written.
			k := int(n)
			f.n += k
			for f.nb < 2 && k >= len(f.bufs[f.nb]) {
				k -= len(f.bufs[f.nb])
				f.nb++
			}
			if f.nb < 2 {
				f.bufs[f.nb] = f.bufs[f.nb][k:]
			}
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			f.err = e
			return true
		}
	}
	return true
}
