package lambda

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Config configures a Runtime.
type Config struct {
	// Command is the function's process: its bootstrap, or the image's
	// entrypoint and handler. Required.
	Command []string
	// Env is the environment function processes start with, before the
	// runtime adds Lambda's variables to it. Nil: this process's
	// environment.
	Env []string
	// Dir is the processes' working directory. Empty: this process's.
	Dir string
	// Function is what the runtime tells the function about itself.
	Function FunctionConfig
	// Concurrency is the most function processes at once, so the most
	// invocations in flight: each process runs one at a time, as a Lambda
	// execution environment does. Zero: 1.
	Concurrency int
	// Prewarm is how many processes start and init before the first
	// invocation and are kept started (up to Concurrency). Zero: none; a
	// process starts when an invocation finds no idle one, as on Lambda.
	Prewarm int
	// ThrottleWait is how long an invocation waits for a free process
	// when Concurrency processes are busy, before ErrThrottled. Zero: as
	// long as the caller's ctx allows. Negative: not at all, as Lambda
	// answers a synchronous invoke over its concurrency.
	ThrottleWait time.Duration
	// InitTimeout bounds a process's init, from its start to its first
	// request for an invocation. Zero: 10 s, Lambda's init limit.
	InitTimeout time.Duration
	// Backoff is the delay before a process starts after one failed (an
	// init error, an exit nobody asked for); it doubles with each failure
	// in a row up to MaxBackoff, so a crash loop does not spin. An
	// invocation that completes resets it. Zero: 100 ms.
	Backoff time.Duration
	// MaxBackoff caps Backoff. Zero: 10 s.
	MaxBackoff time.Duration
	// Log receives the runtime's records and, unless Output is set, each
	// line the function writes, with the request id it belongs to. Nil:
	// discarded.
	Log *slog.Logger
	// Output, when set, receives the function's stdout and stderr as they
	// are instead of as log records (`cutover lambda invoke` shows them as
	// `sam local invoke` does); unless it is an *os.File, writes to it are
	// serialized, so share it with other writers through a SyncWriter.
	// Nil: lines go to Log.
	Output io.Writer
	// Registerer receives the runtime's metrics. Nil: none are exported.
	Registerer prometheus.Registerer
}

// Runtime serves the Lambda Runtime API to a pool of function processes
// and runs invocations on them. It is the Invoker every source uses.
type Runtime struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	baseEnv []string

	mu        sync.Mutex
	procs     []*proc
	idle      []*proc // waiting in …/next with nothing assigned, last = warmest
	waiting   []*call // accepted, no process yet, first = oldest
	inflight  int     // calls accepted and not finished
	drained   chan struct{}
	closed    bool
	seq       int
	failures  int       // process failures in a row
	holdUntil time.Time // no process starts before this (backoff)
	holdTimer *time.Timer
	everInit  bool
	initOnce  chan struct{} // closed when a process first gets through init
	wg        sync.WaitGroup
}

var _ Invoker = (*Runtime)(nil)

// New checks cfg and starts the Prewarm processes.
func New(cfg Config) (*Runtime, error) {
	if len(cfg.Command) == 0 || cfg.Command[0] == "" {
		return nil, errors.New("lambda: no function command")
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 1
	}
	if cfg.Prewarm > cfg.Concurrency {
		cfg.Prewarm = cfg.Concurrency
	}
	if cfg.InitTimeout <= 0 {
		cfg.InitTimeout = 10 * time.Second
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 100 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 10 * time.Second
	}
	cfg.Function = cfg.Function.withDefaults()
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Output != nil {
		if _, ok := cfg.Output.(*os.File); !ok {
			// The function's stdout and stderr are copied by two
			// goroutines per process.
			cfg.Output = &SyncWriter{W: cfg.Output}
		}
	}
	rt := &Runtime{cfg: cfg, log: cfg.Log, metrics: newMetrics(cfg.Registerer), initOnce: make(chan struct{})}
	base := cfg.Env
	if base == nil {
		base = os.Environ()
	}
	rt.baseEnv = lambdaEnv(base, cfg.Function)
	rt.mu.Lock()
	rt.fillLocked()
	rt.mu.Unlock()
	return rt, nil
}

// Config returns the configuration in force, defaults filled in.
func (rt *Runtime) Config() Config { return rt.cfg }

// call is one invocation from Invoke to its result.
type call struct {
	inv       Invocation
	id        string
	accepted  time.Time
	started   time.Time // handed out on …/next
	deadline  time.Time
	cold      bool
	proc      *proc
	timer     *time.Timer
	done      chan struct{} // closed when resp/err are final
	resp      Response
	err       error
	finished  bool          // guarded by rt.mu
	streaming chan struct{} // closed when the response handler stops writing to inv.Stream; nil if it never began
}

// Invoke runs one invocation; see Invoker.
func (rt *Runtime) Invoke(ctx context.Context, inv Invocation) (Response, error) {
	c := &call{inv: inv, id: inv.RequestID, accepted: time.Now(), done: make(chan struct{})}
	if c.id == "" {
		c.id = newUUID()
	}
	rt.mu.Lock()
	if rt.closed {
		rt.mu.Unlock()
		return Response{}, ErrClosed
	}
	rt.inflight++
	rt.waiting = append(rt.waiting, c)
	rt.dispatchLocked()
	queued := slices.Contains(rt.waiting, c)
	if queued && rt.cfg.ThrottleWait < 0 && rt.liveLocked() >= rt.cfg.Concurrency {
		rt.dropWaitingLocked(c)
		rt.mu.Unlock()
		rt.metrics.throttles.Inc()
		return Response{}, ErrThrottled
	}
	rt.mu.Unlock()

	if queued {
		var expire <-chan time.Time
		if rt.cfg.ThrottleWait > 0 {
			t := time.NewTimer(rt.cfg.ThrottleWait)
			defer t.Stop()
			expire = t.C
		}
		select {
		case <-c.done:
		case <-ctx.Done():
			if rt.abandon(c) {
				return Response{}, ctx.Err()
			}
		case <-expire:
			if rt.abandon(c) {
				rt.metrics.throttles.Inc()
				return Response{}, ErrThrottled
			}
		}
	}
	<-c.done
	if c.streaming != nil {
		<-c.streaming
	}
	return c.resp, c.err
}

// abandon takes a call that still waits for a process off the queue; it
// reports false when a process already has it, so it will run.
func (rt *Runtime) abandon(c *call) bool {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if !slices.Contains(rt.waiting, c) {
		return false
	}
	rt.dropWaitingLocked(c)
	return true
}

func (rt *Runtime) dropWaitingLocked(c *call) {
	rt.waiting = slices.DeleteFunc(rt.waiting, func(x *call) bool { return x == c })
	rt.doneLocked()
}

// doneLocked counts one accepted call as finished.
func (rt *Runtime) doneLocked() {
	rt.inflight--
	if rt.inflight == 0 && rt.drained != nil {
		close(rt.drained)
		rt.drained = nil
	}
}

// dispatchLocked hands waiting calls to idle processes and starts
// processes for the rest, within Concurrency and the backoff.
func (rt *Runtime) dispatchLocked() {
	for len(rt.waiting) > 0 {
		if n := len(rt.idle); n > 0 {
			p := rt.idle[n-1]
			rt.idle = rt.idle[:n-1]
			c := rt.waiting[0]
			rt.waiting = rt.waiting[1:]
			p.assigned = c
			p.state = stateBusy
			p.wake <- struct{}{}
			continue
		}
		if rt.liveLocked() >= rt.cfg.Concurrency || rt.holdingLocked() {
			return
		}
		c := rt.waiting[0]
		rt.waiting = rt.waiting[1:]
		rt.startLocked(c)
	}
}

// liveLocked counts the processes that hold a slot of Concurrency. One
// killed for a timeout is gone in moments, and its replacement need not
// wait for it, as on Lambda; one that failed holds its slot until it has
// exited and the backoff allows another.
func (rt *Runtime) liveLocked() int {
	n := 0
	for _, p := range rt.procs {
		if p.kill != killTimeout {
			n++
		}
	}
	return n
}

// fillLocked keeps Prewarm processes started.
func (rt *Runtime) fillLocked() {
	for !rt.closed && rt.liveLocked() < rt.cfg.Prewarm && !rt.holdingLocked() {
		rt.startLocked(nil)
	}
}

// holdingLocked reports whether the backoff holds process starts back,
// and arranges to try again when it ends.
func (rt *Runtime) holdingLocked() bool {
	wait := time.Until(rt.holdUntil)
	if wait <= 0 {
		return false
	}
	if rt.holdTimer == nil {
		rt.holdTimer = time.AfterFunc(wait, func() {
			rt.mu.Lock()
			rt.holdTimer = nil
			rt.dispatchLocked()
			rt.fillLocked()
			rt.mu.Unlock()
		})
	}
	return true
}

// failedLocked records a process failure and backs off.
func (rt *Runtime) failedLocked() {
	rt.failures++
	d := rt.cfg.Backoff
	for i := 1; i < rt.failures && d < rt.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, rt.cfg.MaxBackoff)
	rt.holdUntil = time.Now().Add(d)
	rt.log.Warn("function process failed; backing off", "failures", rt.failures, "backoff", d.String())
}

// finishLocked makes a call's result final, once.
func (rt *Runtime) finishLocked(c *call, resp Response, err error) bool {
	if c.finished {
		return false
	}
	c.finished = true
	if c.timer != nil {
		c.timer.Stop()
	}
	if !c.started.IsZero() {
		resp.Duration = time.Since(c.started)
		resp.ColdStart = c.cold
		rt.metrics.busy.Dec()
	}
	c.resp, c.err = resp, err
	if err == nil {
		// Counted before the caller hears of it.
		rt.metrics.observe(resp)
		rt.logInvocation(c, resp)
	}
	close(c.done)
	rt.doneLocked()
	if resp.Err == nil || (!resp.Err.Crash && !resp.Err.Timeout) {
		// The function ran an invocation to its end: whatever failed
		// before is over.
		rt.failures = 0
	}
	return true
}

func (rt *Runtime) logInvocation(c *call, resp Response) {
	attrs := []any{"requestId", c.id, "durationMs", float64(resp.Duration.Microseconds()) / 1000, "coldStart", resp.ColdStart}
	if c.proc != nil {
		attrs = append(attrs, "process", c.proc.n)
	}
	if resp.Err == nil {
		rt.log.Info("invocation", append(attrs, "outcome", "ok")...)
		return
	}
	rt.log.Warn("invocation", append(attrs, "outcome", outcome(resp.Err), "errorType", resp.Err.Type, "errorMessage", resp.Err.Message)...)
}

func outcome(e *FunctionError) string {
	switch {
	case e == nil:
		return "ok"
	case e.Timeout:
		return "timeout"
	case e.Crash:
		return "crash"
	}
	return "error"
}

// Ready reports whether the runtime takes invocations: not shutting down,
// and, when it prewarms, with one process through its init since start.
func (rt *Runtime) Ready() bool {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return !rt.closed && (rt.cfg.Prewarm == 0 || rt.everInit)
}

// WaitReady waits until a process has got through its init, so a
// function that cannot start is never offered work: serve opens its
// sources (and so its HTTP port, which the pod's readiness probe checks)
// only then. It returns ctx's error if ctx ends first.
func (rt *Runtime) WaitReady(ctx context.Context) error {
	select {
	case <-rt.initOnce:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Shutdown stops taking invocations, lets those accepted finish until ctx
// ends, then stops every function process (SIGTERM, then SIGKILL after
// half a second) and fails what is left. It returns ctx.Err() when it had
// to cut invocations off.
func (rt *Runtime) Shutdown(ctx context.Context) error {
	rt.mu.Lock()
	rt.closed = true
	var drained chan struct{}
	if rt.inflight > 0 {
		if rt.drained == nil {
			rt.drained = make(chan struct{})
		}
		drained = rt.drained
	}
	rt.mu.Unlock()
	var err error
	if drained != nil {
		select {
		case <-drained:
		case <-ctx.Done():
			err = ctx.Err()
		}
	}

	rt.mu.Lock()
	for _, c := range rt.waiting {
		if !c.finished {
			c.finished = true
			c.err = ErrClosed
			close(c.done)
			rt.inflight--
		}
	}
	rt.waiting = nil
	if rt.holdTimer != nil {
		rt.holdTimer.Stop()
		rt.holdTimer = nil
	}
	procs := slices.Clone(rt.procs)
	for _, p := range procs {
		p.stopLocked(killShutdown, syscall.SIGTERM)
	}
	rt.mu.Unlock()

	grace := time.AfterFunc(500*time.Millisecond, func() {
		for _, p := range procs {
			p.signal(syscall.SIGKILL)
		}
	})
	rt.wg.Wait()
	grace.Stop()
	return err
}

// Close stops the runtime at once: Shutdown with no time to drain.
func (rt *Runtime) Close() error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := rt.Shutdown(ctx)
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// procState is where a process is in its life.
type procState int

const (
	stateStarting procState = iota // started, not yet in …/next
	stateIdle                      // in …/next, nothing assigned
	stateBusy                      // has an invocation (assigned, running or finishing)
	stateDead                      // stopped or exited
)

// killReason says why the runtime stopped a process; killNone is an
// exit nobody asked for.
type killReason string

const (
	killNone        killReason = ""
	killTimeout     killReason = "timeout"
	killInitTimeout killReason = "init timeout"
	killInitError   killReason = "init error"
	killShutdown    killReason = "shutdown"
)

// proc is one function process with its own Runtime API endpoint.
type proc struct {
	rt      *Runtime
	n       int
	ln      net.Listener
	srv     *http.Server
	cmd     *exec.Cmd
	started time.Time
	outputs []*outputPipe // stdout, stderr; nil with Config.Output

	// Guarded by rt.mu.
	state       procState
	first       *call // the invocation that started it (cold start)
	assigned    *call // handed over while idle, not yet delivered
	current     *call // delivered and not yet answered
	lastID      string
	invocations int
	initDone    bool
	initErr     *FunctionError
	kill        killReason
	initTimer   *time.Timer

	wake  chan struct{} // cap 1: assigned was set
	dying chan struct{} // closed when the process is being stopped or has exited
}

// startLocked starts a process, reserved for c when c is not nil.
func (rt *Runtime) startLocked(c *call) {
	rt.seq++
	p := &proc{rt: rt, n: rt.seq, first: c, state: stateStarting, wake: make(chan struct{}, 1), dying: make(chan struct{})}
	if c != nil {
		c.proc = p
	}
	rt.procs = append(rt.procs, p)
	rt.metrics.processes.Inc()
	if err := p.start(); err != nil {
		// The command cannot run at all (missing, not executable): as
		// Lambda reports a runtime that cannot start.
		p.initErr = &FunctionError{Type: "Runtime.InvalidEntrypoint", Message: err.Error(), Crash: true}
		rt.wg.Add(1)
		go func() {
			defer rt.wg.Done()
			rt.mu.Lock()
			defer rt.mu.Unlock()
			p.exitedLocked(err)
		}()
		return
	}
	rt.wg.Add(1)
	go p.wait()
}

func (p *proc) start() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("cannot listen for the Runtime API: %w", err)
	}
	p.ln = ln
	p.srv = &http.Server{Handler: p.handler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slogErrorLog(p.rt.log)}

	cfg := p.rt.cfg
	cmd := exec.Command(cfg.Command[0], cfg.Command[1:]...)
	cmd.Env = append(slices.Clone(p.rt.baseEnv), "AWS_LAMBDA_RUNTIME_API="+ln.Addr().String())
	cmd.Dir = cfg.Dir
	// Its own process group, so a bootstrap script's children die with
	// it; and killed if serve itself dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	var childEnds []*os.File
	if cfg.Output != nil {
		cmd.Stdout, cmd.Stderr = cfg.Output, cfg.Output
	} else {
		for _, stream := range []string{"stdout", "stderr"} {
			o, w, err := newOutputPipe(&lineWriter{p: p, stream: stream})
			if err != nil {
				_ = p.srv.Close()
				return err
			}
			p.outputs = append(p.outputs, o)
			childEnds = append(childEnds, w)
		}
		cmd.Stdout, cmd.Stderr = childEnds[0], childEnds[1]
	}
	// Serve once p is complete: its handlers read it.
	go func() { _ = p.srv.Serve(ln) }()
	cmd.WaitDelay = time.Second
	p.started = time.Now()
	err = cmd.Start()
	for _, f := range childEnds {
		_ = f.Close() // the child holds its own copies
	}
	for _, o := range p.outputs {
		if err != nil {
			_ = o.r.Close()
			continue
		}
		go o.run()
	}
	if err != nil {
		_ = p.srv.Close()
		return err
	}
	p.cmd = cmd
	p.rt.log.Debug("function process started", "process", p.n, "pid", cmd.Process.Pid, "runtimeApi", ln.Addr().String())
	p.initTimer = time.AfterFunc(cfg.InitTimeout, func() {
		p.rt.mu.Lock()
		defer p.rt.mu.Unlock()
		if !p.initDone {
			p.initErr = &FunctionError{Type: "Sandbox.Timedout", Message: fmt.Sprintf("init timed out after %.2f seconds", cfg.InitTimeout.Seconds()), Timeout: true, Crash: true}
			p.stopLocked(killInitTimeout, syscall.SIGKILL)
		}
	})
	return nil
}

// wait reaps the process.
func (p *proc) wait() {
	defer p.rt.wg.Done()
	err := p.cmd.Wait()
	for _, o := range p.outputs {
		// A child of the process may hold the pipe open: do not wait for
		// it forever.
		select {
		case <-o.done:
		case <-time.After(time.Second):
			_ = o.r.SetReadDeadline(time.Now())
		}
	}
	p.rt.mu.Lock()
	defer p.rt.mu.Unlock()
	p.exitedLocked(err)
}

// exitedLocked cleans up after the process ended, fails what it held and
// starts what should run now.
func (p *proc) exitedLocked(waitErr error) {
	rt := p.rt
	if p.initTimer != nil {
		p.initTimer.Stop()
	}
	if !p.initDone && p.kill != killShutdown {
		// Counted before the waiting invocation hears of it.
		rt.metrics.initErrors.Inc()
	}
	p.markDyingLocked()
	p.state = stateDead
	if p.srv != nil {
		_ = p.srv.Close()
	}
	rt.procs = slices.DeleteFunc(rt.procs, func(x *proc) bool { return x == p })
	rt.idle = slices.DeleteFunc(rt.idle, func(x *proc) bool { return x == p })
	rt.metrics.processes.Dec()

	exitMsg := "Runtime exited without providing a reason"
	if waitErr != nil {
		exitMsg = "Runtime exited with error: " + waitErr.Error()
	}
	crash := func(c *call) {
		fe := &FunctionError{Type: "Runtime.ExitError", Message: "RequestId: " + c.id + " Error: " + exitMsg, Crash: true}
		if p.kill == killShutdown {
			fe = &FunctionError{Type: "Runtime.ExitError", Message: "RequestId: " + c.id + " Error: the runtime shut down before the function answered", Crash: true}
		}
		rt.finishLocked(c, Response{Err: fe}, nil)
	}
	if c := p.current; c != nil && !c.finished {
		crash(c)
	}
	if c := p.first; c != nil && !c.finished {
		// It never got its invocation: init failed.
		fe := p.initErr
		if fe == nil {
			fe = &FunctionError{Type: "Runtime.ExitError", Message: "RequestId: " + c.id + " Error: " + exitMsg, Crash: true}
		}
		rt.finishLocked(c, Response{Err: fe}, nil)
		p.first = nil
	}
	if c := p.assigned; c != nil && !c.finished {
		// Handed over but never delivered: another process can run it.
		c.proc = nil
		rt.waiting = append([]*call{c}, rt.waiting...)
		p.assigned = nil
	}
	if p.kill != killShutdown && p.kill != killTimeout && !rt.closed {
		rt.failedLocked()
	}
	if p.kill == killNone && !rt.closed {
		rt.log.Warn("function process exited", "process", p.n, "error", exitMsg, "invocations", p.invocations)
	}
	if rt.closed {
		for _, c := range rt.waiting {
			if !c.finished {
				c.finished = true
				c.err = ErrClosed
				close(c.done)
				rt.doneLocked()
			}
		}
		rt.waiting = nil
		return
	}
	rt.dispatchLocked()
	rt.fillLocked()
}

func (p *proc) markDyingLocked() {
	select {
	case <-p.dying:
	default:
		close(p.dying)
	}
}

// stopLocked stops the process for a reason.
func (p *proc) stopLocked(why killReason, sig syscall.Signal) {
	if p.state == stateDead {
		return
	}
	if p.kill == killNone {
		p.kill = why
	}
	p.markDyingLocked()
	p.rt.idle = deleteProc(p.rt.idle, p)
	if c := p.assigned; c != nil {
		// Not yet delivered: another process can run it.
		p.assigned = nil
		c.proc = nil
		p.rt.waiting = append([]*call{c}, p.rt.waiting...)
	}
	if why == killTimeout && !p.rt.closed {
		// Its slot is free now. A failed init's is not: the backoff
		// decides when, once it has exited.
		p.rt.dispatchLocked()
	}
	p.signal(sig)
}

func (p *proc) isDying() bool {
	select {
	case <-p.dying:
		return true
	default:
		return false
	}
}

func (p *proc) signal(sig syscall.Signal) {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	// The whole group: a bootstrap script's children too.
	_ = syscall.Kill(-p.cmd.Process.Pid, sig)
}

// SyncWriter serializes writes to W, for a writer (a test's buffer, a
// pipe) that the function's output and other writers share.
type SyncWriter struct {
	W  io.Writer
	mu sync.Mutex
}

func (s *SyncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.W.Write(p)
}

// newUUID returns a random (version 4) UUID, the shape of Lambda's
// request ids.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	const hex = "0123456789abcdef"
	out := make([]byte, 0, 36)
	for i, x := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out = append(out, '-')
		}
		out = append(out, hex[x>>4], hex[x&0xf])
	}
	return string(out)
}

// lambdaEnv is the environment Lambda gives a function: what the
// container has, with the function's own variables set from cfg and the
// defaults Lambda always sets where the container has none.
func lambdaEnv(base []string, f FunctionConfig) []string {
	env := map[string]string{}
	var order []string
	set := func(k, v string, override bool) {
		if _, ok := env[k]; ok && !override {
			return
		}
		if _, ok := env[k]; !ok {
			order = append(order, k)
		}
		env[k] = v
	}
	for _, kv := range base {
		k, v, ok := cut(kv)
		if !ok {
			continue
		}
		set(k, v, true)
	}
	set("AWS_LAMBDA_FUNCTION_NAME", f.Name, true)
	set("AWS_LAMBDA_FUNCTION_VERSION", f.Version, true)
	set("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", strconv.Itoa(f.MemoryMB), true)
	set("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/"+f.Name, false)
	set("AWS_LAMBDA_LOG_STREAM_NAME", time.Now().UTC().Format("2006/01/02")+"/["+f.Version+"]"+newUUID()[:8]+newUUID()[24:], false)
	set("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand", false)
	if f.Handler != "" {
		set("_HANDLER", f.Handler, true)
	}
	if f.Region != "" {
		set("AWS_REGION", f.Region, true)
		set("AWS_DEFAULT_REGION", f.Region, false)
	}
	set("LAMBDA_TASK_ROOT", "/var/task", false)
	set("LAMBDA_RUNTIME_DIR", "/var/runtime", false)
	set("TZ", ":UTC", false)
	// Serve sets AWS_LAMBDA_RUNTIME_API per process; one from outside
	// would point the function at some other endpoint.
	order = slices.DeleteFunc(order, func(k string) bool { return k == "AWS_LAMBDA_RUNTIME_API" })
	out := make([]string, 0, len(order))
	for _, k := range order {
		out = append(out, k+"="+env[k])
	}
	return out
}

func cut(kv string) (string, string, bool) {
	for i := 1; i < len(kv); i++ {
		if kv[i] == '=' {
			return kv[:i], kv[i+1:], true
		}
	}
	return "", "", false
}
