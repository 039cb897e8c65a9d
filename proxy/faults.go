package proxy

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

// Fault injection: resilience drills (cutover drill) make one side fail the
// way a real outage does, inside the data plane, so that what the drill
// proves is the proxy's real failure handling. Each kind enters roundTrip
// at the point where the real failure would show, and from there the
// ordinary code runs: a refused dial is retried on the other side whatever
// the method, a 5xx, a reset or a timeout of an idempotent request on the
// new side is replayed on legacy within the retry budget, anything else
// reaches the client with X-Cutover-Side. Stats count injected failures as
// the real ones, so the shift engine's judge sees them.
//
// When no fault is set the hot path pays one atomic pointer load per
// attempt. Faults are per process: a restart (SIGHUP hand-over) starts
// without any, and they do not touch mirrored copies.

// FaultKind is what an injected fault imitates.
type FaultKind string

const (
	// FaultRefuse fails the side at dial time with "connection refused",
	// as if its process had died; nothing is sent.
	FaultRefuse FaultKind = "refuse"
	// FaultLatency sends the request at once and holds the side's answer
	// back by Latency, as a slow upstream would. A Latency at or beyond
	// the response timeout (Config.ResponseHeaderTimeout) times out.
	FaultLatency FaultKind = "latency"
	// FaultErrors answers Status without contacting the upstream, as if
	// the side had answered it.
	FaultErrors FaultKind = "errors"
	// FaultDrop sends the request, then resets the connection to the
	// upstream before an answer: the upstream may have acted on it.
	FaultDrop FaultKind = "drop"
	// FaultBlackhole sends the request and never gets an answer: the
	// response timeout (Config.ResponseHeaderTimeout) fires.
	FaultBlackhole FaultKind = "blackhole"
)

// FaultKinds lists the kinds in the order the docs give them.
var FaultKinds = []FaultKind{FaultRefuse, FaultLatency, FaultErrors, FaultDrop, FaultBlackhole}

// Fault is a failure injected on one side.
type Fault struct {
	// Kind is what the fault imitates. Required.
	Kind FaultKind
	// Latency is the delay of FaultLatency; required (> 0) for it and
	// refused for the other kinds.
	Latency time.Duration
	// Status is the answer of FaultErrors, 400..599; zero means 503.
	// Refused for the other kinds.
	Status int
	// Percent is the share of attempts on the side that fail, in (0,
	// 100]; zero means 100. Each attempt draws on its own.
	Percent float64
	// For ends the fault on its own after this long, so a drill that
	// dies cannot leave a side broken; zero means until cleared.
	For time.Duration
}

// Faults are the faults of both sides; nil means none on that side.
type Faults struct {
	Legacy *Fault `json:"legacy"`
	New    *Fault `json:"new"`
}

// FaultState is a fault in force, as Faults and the admin API report it.
type FaultState struct {
	Fault
	// Since is when the fault was set.
	Since time.Time
	// Expires is when it ends on its own; zero means until cleared.
	Expires time.Time
	// Injected counts the attempts the fault has failed (or delayed).
	Injected uint64
}

// FaultsState are the faults in force; nil means none on that side.
type FaultsState struct {
	Legacy *FaultState `json:"legacy"`
	New    *FaultState `json:"new"`
}

// faultSet is what the hot path reads: immutable but for the counters.
type faultSet struct {
	sides [2]*fault
}

type fault struct {
	Fault
	since time.Time
	// until is the expiry in clock nanoseconds; 0 means none.
	until int64
	// share is Percent in hundredths of a percent, 1..10000.
	share    int
	status   int
	injected atomic.Uint64
}

// Validate checks f.
func (f *Fault) Validate() error {
	switch f.Kind {
	case FaultRefuse, FaultErrors, FaultDrop, FaultBlackhole, FaultLatency:
	case "":
		return errors.New("fault kind is required (refuse, latency, errors, drop or blackhole)")
	default:
		return fmt.Errorf("unknown fault kind %q (want refuse, latency, errors, drop or blackhole)", f.Kind)
	}
	if f.Kind == FaultLatency && f.Latency <= 0 {
		return errors.New("a latency fault needs a latency > 0")
	}
	if f.Kind != FaultLatency && f.Latency != 0 {
		return fmt.Errorf("latency applies to latency faults only, not %s", f.Kind)
	}
	if f.Kind == FaultErrors && f.Status != 0 && (f.Status < 400 || f.Status > 599) {
		return fmt.Errorf("status %d: want 400..599", f.Status)
	}
	if f.Kind != FaultErrors && f.Status != 0 {
		return fmt.Errorf("status applies to errors faults only, not %s", f.Kind)
	}
	if f.Percent < 0 || f.Percent > 100 || f.Percent != f.Percent {
		return fmt.Errorf("percent %v: want (0, 100]", f.Percent)
	}
	if f.For < 0 {
		return fmt.Errorf("for %s: want a duration ≥ 0", f.For)
	}
	return nil
}

// SetFaults replaces the faults in force with fs at once, for every new
// attempt; Faults{} clears them. Requests already delayed or failed by an
// earlier fault finish as they started.
func (p *Proxy) SetFaults(fs Faults) error {
	var set faultSet
	now, wall := nanotime(), time.Now()
	var errs []error
	for side, f := range [2]*Fault{fs.Legacy, fs.New} {
		if f == nil {
			continue
		}
		s := Side(side)
		if err := f.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s, err))
			continue
		}
		if len(p.sides[side].backends) == 0 {
			errs = append(errs, fmt.Errorf("%s: the side has no upstreams", s))
			continue
		}
		in := &fault{Fault: *f, since: wall, share: 10000, status: f.Status}
		if f.Percent > 0 {
			in.share = max(1, int(f.Percent*100+0.5))
		}
		if in.status == 0 && f.Kind == FaultErrors {
			in.status = http.StatusServiceUnavailable
		}
		if f.For > 0 {
			in.until = now + int64(f.For)
		}
		set.sides[side] = in
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if set.sides[0] == nil && set.sides[1] == nil {
		if p.faults.Swap(nil) != nil {
			p.cfg.Logger.Warn("fault injection cleared")
		}
		return nil
	}
	p.faults.Store(&set)
	var last time.Duration
	for side, f := range set.sides {
		if f == nil {
			continue
		}
		p.cfg.Logger.Warn("fault injection set", "side", Side(side).String(), "kind", string(f.Kind),
			"latency", f.Latency, "status", f.status, "percent", float64(f.share)/100, "for", f.For)
		if f.For == 0 {
			last = -1
		} else if last >= 0 {
			last = max(last, f.For)
		}
	}
	if last > 0 {
		// Back to the free hot path once every fault of the set expired
		// (unless another set replaced it meanwhile).
		time.AfterFunc(last, func() {
			if p.faults.CompareAndSwap(&set, nil) {
				p.cfg.Logger.Warn("fault injection expired")
			}
		})
	}
	return nil
}

// Faults returns the faults in force.
func (p *Proxy) Faults() FaultsState {
	var out FaultsState
	set := p.faults.Load()
	if set == nil {
		return out
	}
	now := nanotime()
	for side, f := range set.sides {
		if f == nil || f.until != 0 && now >= f.until {
			continue
		}
		st := &FaultState{Fault: f.Fault, Since: f.since, Injected: f.injected.Load()}
		st.Status = f.status
		if f.until != 0 {
			st.Expires = clockTime(f.until)
		}
		if Side(side) == SideLegacy {
			out.Legacy = st
		} else {
			out.New = st
		}
	}
	return out
}

// hit returns the fault this attempt on side suffers, or nil.
func (set *faultSet) hit(side Side, now int64) *fault {
	f := set.sides[side]
	if f == nil || f.until != 0 && now >= f.until {
		return nil
	}
	if f.share < 10000 && rand.IntN(10000) >= f.share {
		return nil
	}
	f.injected.Add(1)
	return f
}

// afterSend reports whether the fault acts once the request is out.
func (f *fault) afterSend() bool {
	return f.Kind == FaultLatency || f.Kind == FaultDrop || f.Kind == FaultBlackhole
}

// faultError is an injected failure. It unwraps to the error the real
// failure would give, so the failure rules classify it the same way.
type faultError struct {
	kind FaultKind
	err  error
}

func (e *faultError) Error() string {
	return "injected fault (" + string(e.kind) + "): " + e.err.Error()
}
func (e *faultError) Unwrap() error { return e.err }

var (
	errFaultRefused = &faultError{FaultRefuse, &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}
	errFaultReset   = &faultError{FaultDrop, &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}}
	errFaultTimeout = &faultError{FaultBlackhole, &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}}
)

// injectAfterSend stands in for readRespHead once the request is out on
// uc: it delays, resets or swallows the answer as f says.
func (p *Proxy) injectAfterSend(f *fault, ex *exchange, uc *upConn) (got bool, err error) {
	timeout := p.cfg.ResponseHeaderTimeout
	switch f.Kind {
	case FaultLatency:
		if f.Latency < timeout {
			// A shutdown ends the delay early: the answer then goes out as
			// soon as the side gives it.
			p.faultSleep(f.Latency)
			return p.readRespHead(ex, uc)
		}
		p.faultSleep(timeout)
		return false, errFaultTimeout
	case FaultDrop:
		resetConn(uc.c)
		return false, errFaultReset
	default: // FaultBlackhole
		p.faultSleep(timeout)
		return false, errFaultTimeout
	}
}

// faultSleep waits d, or less once a shutdown began, so that an injected
// delay never holds a drain or a hand-over up. It reports whether it
// waited the whole d.
func (p *Proxy) faultSleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-t.C:
			return true
		case <-tick.C:
			if p.closing.Load() {
				return false
			}
		}
	}
}

// resetConn closes c with an RST instead of a FIN, as a crashing peer or a
// middlebox dropping the connection does.
func resetConn(c net.Conn) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

// faultJSON is a Fault on the wire: durations as Go duration strings.
type faultJSON struct {
	Kind     FaultKind  `json:"kind"`
	Latency  string     `json:"latency,omitempty"`
	Status   int        `json:"status,omitempty"`
	Percent  float64    `json:"percent,omitempty"`
	For      string     `json:"for,omitempty"`
	Since    *time.Time `json:"since,omitempty"`
	Expires  *time.Time `json:"expires,omitempty"`
	Injected *uint64    `json:"injected,omitempty"`
}

// MarshalJSON writes durations as strings ("500ms").
func (f Fault) MarshalJSON() ([]byte, error) {
	return json.Marshal(f.wire())
}

func (f Fault) wire() faultJSON {
	j := faultJSON{Kind: f.Kind, Status: f.Status, Percent: f.Percent}
	if f.Latency != 0 {
		j.Latency = f.Latency.String()
	}
	if f.For != 0 {
		j.For = f.For.String()
	}
	return j
}

// UnmarshalJSON reads what MarshalJSON writes.
func (f *Fault) UnmarshalJSON(b []byte) error {
	var j faultJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return err
	}
	if j.Since != nil || j.Expires != nil || j.Injected != nil {
		return errors.New("since, expires and injected are reported, not set")
	}
	out := Fault{Kind: j.Kind, Status: j.Status, Percent: j.Percent}
	for _, d := range []struct {
		name string
		s    string
		to   *time.Duration
	}{{"latency", j.Latency, &out.Latency}, {"for", j.For, &out.For}} {
		if d.s == "" {
			continue
		}
		v, err := time.ParseDuration(d.s)
		if err != nil {
			return fmt.Errorf("%s %s: want a duration like 500ms", d.name, strconv.Quote(d.s))
		}
		*d.to = v
	}
	*f = out
	return nil
}

// MarshalJSON writes the fault with when it started, when it ends and how
// often it struck.
func (s FaultState) MarshalJSON() ([]byte, error) {
	j := s.Fault.wire()
	since, n := s.Since, s.Injected
	j.Since, j.Injected = &since, &n
	if !s.Expires.IsZero() {
		exp := s.Expires
		j.Expires = &exp
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads what MarshalJSON writes (for clients of the admin
// API).
func (s *FaultState) UnmarshalJSON(b []byte) error {
	var j faultJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	out := FaultState{Fault: Fault{Kind: j.Kind, Status: j.Status, Percent: j.Percent}}
	var err1, err2 error
	if j.Latency != "" {
		out.Latency, err1 = time.ParseDuration(j.Latency)
	}
	if j.For != "" {
		out.For, err2 = time.ParseDuration(j.For)
	}
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	if j.Since != nil {
		out.Since = *j.Since
	}
	if j.Expires != nil {
		out.Expires = *j.Expires
	}
	if j.Injected != nil {
		out.Injected = *j.Injected
	}
	*s = out
	return nil
}

// faultsHandlers adds the fault routes to the admin API:
//
//	GET    /v1/faults  the faults in force: {"legacy":null,"new":{...}}
//	PUT    /v1/faults  {"new":{"kind":"errors","status":503,"percent":100,"for":"30s"}}
//	                   replaces every fault; answers the faults in force
//	DELETE /v1/faults  clears them
func (p *Proxy) faultsHandlers(mux *http.ServeMux) {
	mux.Handle("GET /v1/faults", p.authorize(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, p.Faults())
	})))
	mux.Handle("PUT /v1/faults", p.authorize(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in Faults
		if err := readJSON(r, &in); err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		if err := p.SetFaults(in); err != nil {
			writeError(w, http.StatusUnprocessableEntity, err)
			return
		}
		writeJSON(w, http.StatusOK, p.Faults())
	})))
	mux.Handle("DELETE /v1/faults", p.authorize(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.SetFaults(Faults{})
		writeJSON(w, http.StatusOK, p.Faults())
	})))
}
