// Package proxy is cutover's embedded data plane: a reverse proxy that
// splits traffic between a legacy and a new backend by weight, keeps each
// user on one side, never drops a request it can still deliver, mirrors a
// share of traffic for comparison, and measures both sides for the shift
// engine's judge.
//
// # Use
//
//	p, err := proxy.New(proxy.Config{
//		Legacy:     []string{"http://10.0.0.1:8080"},
//		New:        []string{"http://new.svc:8080"},
//		Weights:    proxy.Weights{Legacy: 90, New: 10},
//		AdminToken: token,
//	})
//	go p.Serve(trafficListener)
//	go http.Serve(adminListener, p.AdminHandler())
//	...
//	p.SetWeights(proxy.Weights{Legacy: 50, New: 50}) // atomic, immediate
//	w := p.Stats().Window(proxy.SideNew, time.Now().Add(-10*time.Second), time.Now())
//	...
//	p.Shutdown(ctx) // on SIGTERM: stop accepting, drain, close
//
// Upgrader (upgrade.go) hands the listening sockets to a new process for a
// zero-downtime restart.
//
// # Routing
//
// A request's key is the value of Config.StickyHeader if set and present,
// else the sticky cookie. The key hashes to a bucket 0..9999 (BucketOf);
// the request goes to the new side iff bucket < new weight × 100. A
// request without a key gets a fresh random key, routed the same way, and
// the response sets it as the cookie, so the user stays where the first
// request went. Raising the new weight moves only legacy users to new.
// A side at weight 0 gets no new requests; requests already on it finish.
//
// # Failures
//
//   - A request whose connection to a side fails before anything was
//     written (dial error, refused, a pooled connection the upstream had
//     closed) is retried: on a fresh connection when a pooled one was
//     stale, on another address of the side when it has one up, then on
//     the other side, whatever the method and whatever that side's weight
//     (a safety net, not routing).
//   - An idempotent request (GET, HEAD, OPTIONS, or carrying an
//     Idempotency-Key) whose body was buffered, answered by the new side
//     with a 5xx or a reset or a timeout, is replayed on legacy within the
//     retry budget (RetryBudget × requests per second + RetryFloor).
//   - A pooled connection the upstream closed while the request was being
//     written is retried for idempotent requests only (the upstream might
//     have processed it).
//   - Bodies up to MaxReplayBody are buffered; larger ones are streamed
//     and their requests are never retried once the body started.
//
// # Mirroring
//
// SetMirror(n) copies n % of the GET, HEAD and OPTIONS requests bound for
// legacy (every method with Config.MirrorUnsafe) to the new side, in the
// background and under a concurrency bound, and counts per route whether
// the answers match (status and SHA-256 of the body). Clients only ever
// see legacy's answer.
//
// # Measurements
//
// Stats counts every attempt per side (requests, 5xx, transport errors,
// retries, replays, latency to the response head) without locks.
// Stats.Window answers for any interval of the last ten minutes, at 100 ms
// resolution over the last minute, with quantiles and a uniform latency
// sample for a rank test. AdminHandler serves the weights, the mirror
// share, windows and Prometheus metrics.
//
// # Protocols
//
// HTTP/1.1 (and 1.0) is served by a hand-written parser on raw
// connections, without allocations per request. HTTP/2 (h2c with prior
// knowledge, or h2 by ALPN when Config.TLS is set) goes through
// golang.org/x/net/http2 and a slower path that shares routing, retries
// and stats. Upgrade requests (WebSocket) are tunnelled after the 101.
// Upstreams are spoken to in HTTP/1.1 over pooled keep-alive connections.
//
// # Data planes
//
// On Linux, Serve runs event loops (loop_linux.go): one per GOMAXPROCS,
// each on a locked OS thread with its own epoll set, its own client and
// upstream connections and its own upstream pools. They serve plain
// HTTP/1.1 exchanges whose body, if any, has a Content-Length up to
// MaxReplayBody, with the same parser, routing, retry rules (retryState)
// and stats as the rest. Any other connection (TLS, HTTP/2, upgrades,
// streamed or chunked bodies,
// HTTP/1.0) and every connection while a mirror or a fault drill is
// set is handed, with the bytes already read, to a goroutine per connection
// (clientConn) before anything goes upstream. CUTOVER_DATAPLANE=goroutine,
// a TLS listener or an HTTPS upstream serve everything from goroutines; so
// do other systems.
package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
)

// Proxy is the data plane. Its methods are safe for concurrent use.
type Proxy struct {
	cfg   *settings
	sides [2]sideSet
	// newBuckets is the new side's weight × 100: buckets below it go new.
	newBuckets atomic.Int32
	mirrorPct  atomic.Int32
	stats      *Stats
	budget     retryBudget
	mirror     mirrorer
	h2         *http2.Server
	h1srv      *http.Server // carries http2's graceful shutdown hook
	tlsConf    *tls.Config

	// faults is nil unless a drill injects failures (faults.go): the hot
	// path's only cost is loading it.
	faults atomic.Pointer[faultSet]

	closing atomic.Bool
	// aborting: Shutdown's deadline passed; event loops close everything.
	aborting atomic.Bool
	// loops are the event loops serving, when there are.
	loops   atomic.Pointer[loopSet]
	mu      sync.Mutex
	lns     map[*net.Listener]struct{}
	conns   map[*clientConn]struct{}
	connWG  sync.WaitGroup
	serveWG sync.WaitGroup // Serve loops
	done    chan struct{}  // closed by Shutdown: stops the reaper
	stopped sync.Once
}

// ErrClosed is returned by Serve after Shutdown.
var ErrClosed = errors.New("proxy: closed")

// New checks cfg and returns a proxy that serves nothing until Serve.
func New(cfg Config) (*Proxy, error) {
	s, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("proxy config: %w", err)
	}
	p := &Proxy{
		cfg:   s,
		stats: newStats(),
		lns:   map[*net.Listener]struct{}{},
		conns: map[*clientConn]struct{}{},
		done:  make(chan struct{}),
	}
	p.budget.ratio = s.RetryBudget
	p.budget.floor = int64(s.RetryFloor)
	for i := range p.budget.slots {
		p.budget.slots[i].epoch.Store(-1)
	}
	for side, urls := range [2][]upstreamURL{s.legacy, s.new} {
		for _, u := range urls {
			b := &backend{side: Side(side), u: u, p: p}
			b.dialer.KeepAlive = 30 * time.Second
			if u.tls {
				tc := &tls.Config{}
				if s.UpstreamTLS != nil {
					tc = s.UpstreamTLS.Clone()
				}
				if tc.ServerName == "" {
					host, _, err := net.SplitHostPort(u.host)
					if err != nil {
						host = u.host
					}
					tc.ServerName = host
				}
				tc.NextProtos = []string{"http/1.1"}
				b.tlsConf = tc
			}
			p.sides[side].backends = append(p.sides[side].backends, b)
		}
	}
	p.newBuckets.Store(int32(s.Weights.New * 100))
	p.mirrorPct.Store(int32(s.MirrorPercent))
	p.mirror.init(p)
	p.h2 = &http2.Server{IdleTimeout: s.IdleTimeout}
	p.h1srv = &http.Server{ReadHeaderTimeout: s.ReadHeaderTimeout, ErrorLog: slog.NewLogLogger(s.Logger.Handler(), slog.LevelDebug)}
	if err := http2.ConfigureServer(p.h1srv, p.h2); err != nil {
		return nil, fmt.Errorf("proxy: http2: %w", err)
	}
	if s.TLS != nil {
		p.tlsConf = s.TLS.Clone()
		if len(p.tlsConf.NextProtos) == 0 {
			p.tlsConf.NextProtos = []string{"h2", "http/1.1"}
		}
	}
	go p.reaper()
	return p, nil
}

// SetWeights changes the split at once for every new request. Requests in
// flight finish where they are.
func (p *Proxy) SetWeights(w Weights) error {
	if err := w.Validate(); err != nil {
		return err
	}
	if err := p.cfg.checkWeights(w); err != nil {
		return err
	}
	old := p.Weights()
	p.newBuckets.Store(int32(w.New * 100))
	if old != w {
		p.cfg.Logger.Info("weights changed", "legacy", w.Legacy, "new", w.New)
	}
	return nil
}

// Weights returns the split in force.
func (p *Proxy) Weights() Weights {
	n := int(p.newBuckets.Load()) / 100
	return Weights{Legacy: 100 - n, New: n}
}

// SetMirror sets the share of legacy-bound requests copied to the new
// side, 0..100.
func (p *Proxy) SetMirror(percent int) error {
	if percent < 0 || percent > 100 {
		return fmt.Errorf("mirror percent %d is not in 0..100", percent)
	}
	if percent > 0 && len(p.sides[SideNew].backends) == 0 {
		return errors.New("mirror needs new upstreams")
	}
	p.mirrorPct.Store(int32(percent))
	return nil
}

// Mirror returns the mirrored share in percent.
func (p *Proxy) Mirror() int { return int(p.mirrorPct.Load()) }

// Stats returns the proxy's measurements.
func (p *Proxy) Stats() *Stats { return p.stats }

// Serve accepts connections on ln until Shutdown, and serves them. It
// returns ErrClosed after Shutdown, or the listener's error.
func (p *Proxy) Serve(ln net.Listener) error {
	p.mu.Lock()
	if p.closing.Load() {
		p.mu.Unlock()
		return ErrClosed
	}
	p.lns[&ln] = struct{}{}
	p.serveWG.Add(1)
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.lns, &ln)
		p.mu.Unlock()
		p.serveWG.Done()
	}()
	if tl, ok := ln.(*net.TCPListener); ok && p.tlsConf == nil && loopEnabled() && p.canLoop() {
		return p.serveLoops(tl)
	}
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if p.closing.Load() {
				return ErrClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporaryAccept(err) {
				// EMFILE and friends: back off instead of spinning.
				if backoff == 0 {
					backoff = 5 * time.Millisecond
				} else if backoff < time.Second {
					backoff *= 2
				}
				p.cfg.Logger.Warn("accept failed; retrying", "err", err, "in", backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		cc := p.newClientConn(c)
		if cc == nil {
			continue
		}
		go cc.serve()
	}
}

// canLoop: the event loops speak plain HTTP/1.1 to upstreams only.
func (p *Proxy) canLoop() bool {
	for i := range p.sides {
		for _, b := range p.sides[i].backends {
			if b.u.tls {
				return false
			}
		}
	}
	return true
}

func isTemporaryAccept(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// track registers a connection. It is called by Serve only, even after
// Shutdown began: a connection Accept returned as the listener was being
// closed has been taken from the kernel's queue, and dropping it would
// reset a client (it is served one request with Connection: close).
// Shutdown waits for every Serve to return before it waits for
// connections, so no Add races the Wait.
func (p *Proxy) track(cc *clientConn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.conns[cc] = struct{}{}
	p.connWG.Add(1)
	return true
}

func (p *Proxy) untrack(cc *clientConn) {
	p.mu.Lock()
	delete(p.conns, cc)
	p.mu.Unlock()
	p.connWG.Done()
}

// drainGrace is how long a keep-alive connection that is idle when a
// shutdown starts may still bring one last request (answered with
// Connection: close) before it is closed. Clients under load send their
// next request well within it and then reconnect, to the new process in a
// hand-over, instead of racing a close.
const drainGrace = 500 * time.Millisecond

// Shutdown stops accepting, lets requests in flight finish (each
// connection closes after its current response), closes idle connections
// after a short grace, then closes pooled upstream connections. If ctx
// ends first, remaining connections are closed and ctx's error returned.
func (p *Proxy) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	p.closing.Store(true)
	for ln := range p.lns {
		(*ln).Close()
	}
	p.mu.Unlock()
	p.serveWG.Wait()
	p.mu.Lock()
	conns := make([]*clientConn, 0, len(p.conns))
	for cc := range p.conns {
		conns = append(conns, cc)
	}
	p.mu.Unlock()
	for _, cc := range conns {
		cc.wakeIdle()
	}
	// HTTP/2 connections: GOAWAY, finish streams, close.
	p.h1srv.Shutdown(ctx)
	done := make(chan struct{})
	go func() {
		p.connWG.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
		p.aborting.Store(true)
		p.mu.Lock()
		for cc := range p.conns {
			cc.abort()
		}
		p.mu.Unlock()
		<-done
	}
	p.mirror.wait(ctx)
	p.stop()
	return err
}

// Close closes everything at once: listeners, client connections and
// upstream connections.
func (p *Proxy) Close() error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := p.Shutdown(ctx)
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

func (p *Proxy) stop() {
	p.stopped.Do(func() {
		close(p.done)
		now := nanotime()
		for i := range p.sides {
			for _, b := range p.sides[i].backends {
				b.reap(now, true)
			}
		}
	})
}

// reaper closes pooled upstream connections past their idle limit, so
// that the proxy, not the upstream, ends an idle connection.
func (p *Proxy) reaper() {
	period := p.cfg.UpstreamIdleTimeout / 4
	if period > time.Second {
		period = time.Second
	}
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-p.done:
			return
		case <-t.C:
			now := nanotime()
			for i := range p.sides {
				for _, b := range p.sides[i].backends {
					b.reap(now, false)
				}
			}
		}
	}
}

// pickSide returns the side of a request with bucket.
func (p *Proxy) pickSide(bucket int) Side {
	if int32(bucket) < p.newBuckets.Load() {
		return SideNew
	}
	return SideLegacy
}
