package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Upgrader restarts the proxy without closing its listening sockets, so
// that not one connection is refused: the running process (the parent)
// starts a new one (the child) of the same binary, passing the sockets as
// inherited file descriptors; the child serves on them and says it is
// ready through a pipe; only then does the parent stop accepting and
// drain. Both accept from the same sockets in between, so the kernel's
// accept queue is never without a reader.
//
//	upg, err := proxy.NewUpgrader(proxy.UpgraderOptions{})
//	ln, err := upg.Listen("tcp", ":8080")      // inherited if the parent passed it
//	admin, err := upg.Listen("tcp", ":9090")
//	go p.Serve(ln)
//	upg.Ready()                                 // tell the parent, if any
//	for {
//		select {
//		case <-sighup:
//			if err := upg.Upgrade(ctx); err != nil { log; continue } // child failed: keep serving
//		case <-upg.Exit():                     // the child took over
//		case <-sigterm:
//		}
//		p.Shutdown(ctx) ...
//	}
//
// Sockets are matched between parent and child by the network and address
// strings given to Listen, so both must call Listen with the same ones.
type Upgrader struct {
	opts UpgraderOptions

	mu        sync.Mutex
	inherited map[string]*os.File
	owned     map[string]net.Listener
	ready     *os.File // write end of the parent's readiness pipe
	upgrading bool
	readyDone bool
	exit      chan struct{}
	exitOnce  sync.Once
}

// UpgraderOptions configures an Upgrader.
type UpgraderOptions struct {
	// Command is the program the child runs. "" means this process's
	// executable.
	Command string
	// Args are the child's arguments. nil means this process's.
	Args []string
	// Env is the child's environment, to which the hand-over variables
	// are added. nil means this process's.
	Env []string
	// ReadyTimeout bounds the wait for the child's readiness. 0 means
	// one minute.
	ReadyTimeout time.Duration
	// PIDFile, when set, is written by Ready with this process's id, so
	// that a supervisor can follow the process that serves.
	PIDFile string
}

// Environment variables of the hand-over: which inherited descriptor is
// which listener, and which is the readiness pipe.
const (
	envListeners = "CUTOVER_UPGRADE_LISTENERS"
	envReady     = "CUTOVER_UPGRADE_READY_FD"
)

type inheritedFD struct {
	Key string `json:"key"`
	FD  int    `json:"fd"`
}

// NewUpgrader reads what a parent passed, if anything, and removes the
// hand-over variables from the environment so that processes started
// later do not take them for their own.
func NewUpgrader(opts UpgraderOptions) (*Upgrader, error) {
	if opts.ReadyTimeout <= 0 {
		opts.ReadyTimeout = time.Minute
	}
	u := &Upgrader{
		opts:      opts,
		inherited: map[string]*os.File{},
		owned:     map[string]net.Listener{},
		exit:      make(chan struct{}),
	}
	if v := os.Getenv(envListeners); v != "" {
		var fds []inheritedFD
		if err := json.Unmarshal([]byte(v), &fds); err != nil {
			return nil, fmt.Errorf("cannot parse %s: %w", envListeners, err)
		}
		for _, f := range fds {
			if f.FD < 3 {
				return nil, fmt.Errorf("%s: descriptor %d of %q is not an inherited one", envListeners, f.FD, f.Key)
			}
			u.inherited[f.Key] = os.NewFile(uintptr(f.FD), f.Key)
		}
	}
	if v := os.Getenv(envReady); v != "" {
		fd, err := strconv.Atoi(v)
		if err != nil || fd < 3 {
			return nil, fmt.Errorf("%s: %q is not an inherited descriptor", envReady, v)
		}
		u.ready = os.NewFile(uintptr(fd), "cutover-upgrade-ready")
	}
	os.Unsetenv(envListeners)
	os.Unsetenv(envReady)
	return u, nil
}

// HasParent reports whether this process was started by Upgrade.
func (u *Upgrader) HasParent() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.ready != nil || len(u.inherited) > 0
}

func listenerKey(network, addr string) string { return network + "|" + addr }

// Listen returns the listener the parent passed for network and addr, or
// a new one. Supported networks: tcp, tcp4, tcp6, unix.
func (u *Upgrader) Listen(network, addr string) (net.Listener, error) {
	key := listenerKey(network, addr)
	u.mu.Lock()
	defer u.mu.Unlock()
	if _, dup := u.owned[key]; dup {
		return nil, fmt.Errorf("listen %s %s: already listening", network, addr)
	}
	var ln net.Listener
	if f, ok := u.inherited[key]; ok {
		delete(u.inherited, key)
		var err error
		ln, err = net.FileListener(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("inherited listener %s %s: %w", network, addr, err)
		}
	} else {
		var err error
		ln, err = net.Listen(network, addr)
		if err != nil {
			return nil, err
		}
	}
	if ul, ok := ln.(*net.UnixListener); ok {
		// The socket file belongs to whichever process serves last; a
		// parent closing its copy must not unlink it under the child.
		ul.SetUnlinkOnClose(false)
	}
	u.owned[key] = ln
	return ln, nil
}

// Ready tells the parent, if any, that this process serves, so that the
// parent stops accepting and drains. Inherited listeners not claimed by
// Listen are closed. It writes PIDFile when set.
func (u *Upgrader) Ready() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.readyDone {
		return nil
	}
	u.readyDone = true
	for key, f := range u.inherited {
		f.Close()
		delete(u.inherited, key)
	}
	if u.opts.PIDFile != "" {
		if err := writePIDFile(u.opts.PIDFile); err != nil {
			return err
		}
	}
	if u.ready == nil {
		return nil
	}
	_, err := u.ready.Write([]byte{1})
	u.ready.Close()
	u.ready = nil
	if err != nil {
		return fmt.Errorf("cannot signal readiness to the parent: %w", err)
	}
	return nil
}

func writePIDFile(path string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".pid-*")
	if err != nil {
		return fmt.Errorf("cannot write pid file: %w", err)
	}
	_, err = fmt.Fprintf(tmp, "%d\n", os.Getpid())
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("cannot write pid file: %w", err)
	}
	return nil
}

// ErrUpgrading is returned by Upgrade while another upgrade runs or after
// one succeeded.
var ErrUpgrading = errors.New("upgrade already in progress or done")

// Upgrade starts the child with every listener from Listen and waits until
// it is ready (nil: the caller now stops accepting and drains, and Exit is
// closed), it fails, or ctx or ReadyTimeout ends (the child is killed and
// this process goes on serving).
func (u *Upgrader) Upgrade(ctx context.Context) (err error) {
	u.mu.Lock()
	if u.upgrading {
		u.mu.Unlock()
		return ErrUpgrading
	}
	u.upgrading = true
	keys := make([]string, 0, len(u.owned))
	lns := make([]net.Listener, 0, len(u.owned))
	for k, ln := range u.owned {
		keys = append(keys, k)
		lns = append(lns, ln)
	}
	u.mu.Unlock()
	success := false
	defer func() {
		if !success {
			u.mu.Lock()
			u.upgrading = false
			u.mu.Unlock()
		}
	}()

	var files []*os.File
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	fds := make([]inheritedFD, 0, len(lns))
	for i, ln := range lns {
		f, err := listenerFile(ln, keys[i])
		if err != nil {
			return fmt.Errorf("upgrade: listener %s: %w", keys[i], err)
		}
		files = append(files, f)
		fds = append(fds, inheritedFD{Key: keys[i], FD: 3 + i})
	}
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("upgrade: %w", err)
	}
	defer r.Close()
	readyFD := 3 + len(files)
	extra := append(append([]*os.File(nil), files...), w)

	cmdPath := u.opts.Command
	if cmdPath == "" {
		if cmdPath, err = os.Executable(); err != nil {
			w.Close()
			return fmt.Errorf("upgrade: %w", err)
		}
	}
	args := u.opts.Args
	if args == nil {
		args = os.Args[1:]
	}
	env := u.opts.Env
	if env == nil {
		env = os.Environ()
	}
	clean := make([]string, 0, len(env)+2)
	for _, kv := range env {
		if !strings.HasPrefix(kv, envListeners+"=") && !strings.HasPrefix(kv, envReady+"=") {
			clean = append(clean, kv)
		}
	}
	list, _ := json.Marshal(fds)
	clean = append(clean, envListeners+"="+string(list), envReady+"="+strconv.Itoa(readyFD))
	cmd := exec.Command(cmdPath, args...)
	cmd.Env = clean
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.ExtraFiles = extra
	if err := cmd.Start(); err != nil {
		w.Close()
		return fmt.Errorf("upgrade: cannot start %s: %w", cmdPath, err)
	}
	// Only the child holds the write end now: EOF means it died.
	w.Close()

	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	readyc := make(chan error, 1)
	go func() {
		var b [1]byte
		_, err := io.ReadFull(r, b[:])
		readyc <- err
	}()
	timer := time.NewTimer(u.opts.ReadyTimeout)
	defer timer.Stop()
	fail := func(err error) error {
		cmd.Process.Kill()
		<-exited
		return err
	}
	select {
	case err := <-readyc:
		if err != nil {
			return fail(fmt.Errorf("upgrade: child %d exited before it was ready", cmd.Process.Pid))
		}
	case err := <-exited:
		return fmt.Errorf("upgrade: child exited before it was ready: %v", err)
	case <-timer.C:
		return fail(fmt.Errorf("upgrade: child %d not ready after %s", cmd.Process.Pid, u.opts.ReadyTimeout))
	case <-ctx.Done():
		return fail(fmt.Errorf("upgrade: %w", ctx.Err()))
	}
	success = true
	u.exitOnce.Do(func() { close(u.exit) })
	return nil
}

// Exit is closed once a child took over: stop accepting, drain, exit.
func (u *Upgrader) Exit() <-chan struct{} { return u.exit }

// Close closes the listeners from Listen and any inherited ones not
// claimed.
func (u *Upgrader) Close() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	var errs []error
	for k, ln := range u.owned {
		if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
		delete(u.owned, k)
	}
	for k, f := range u.inherited {
		f.Close()
		delete(u.inherited, k)
	}
	return errors.Join(errs...)
}

// listenerFile duplicates ln's descriptor for the child. Not with
// (*net.TCPListener).File: os/exec calls Fd on ExtraFiles, and Fd on such
// a file puts the descriptor in blocking mode — a flag the duplicate
// shares with the listener, whose pending Accept then blocks in the kernel
// and whose Close hangs until a connection arrives (and is then dropped).
// A file made by os.NewFile from an already non-blocking descriptor is
// left alone by Fd.
func listenerFile(ln net.Listener, name string) (*os.File, error) {
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return nil, errors.New("not a socket listener")
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil, err
	}
	var dup int
	var derr error
	if err := raw.Control(func(fd uintptr) {
		r, _, e := syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_DUPFD_CLOEXEC, 0)
		dup = int(r)
		if e != 0 {
			derr = e
		}
	}); err != nil {
		return nil, err
	}
	if derr != nil {
		return nil, os.NewSyscallError("fcntl", derr)
	}
	return os.NewFile(uintptr(dup), name), nil
}
