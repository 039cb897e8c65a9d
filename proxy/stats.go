package proxy

import (
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Stats are the proxy's measurements per side: cumulative counters and a
// latency histogram (exposed to Prometheus), and a ring of time slots from
// which Window answers what happened in any recent interval. Recording is
// lock-free (atomic adds); a slot's mutex is taken only by the first
// request of a new 100 ms slot, to recycle it.
//
// What is counted: every attempt to an upstream is one request of the side
// it went to, so a request replayed from new to legacy counts once on each.
// Errors are 5xx answers and transport failures (refused or failed
// connections, resets, timeouts, malformed answers), whether or not the
// client saw them. Latency is the time from the request's arrival at the
// proxy until the upstream's response head (time to first byte); attempts
// without a response head have none.
type Stats struct {
	sides  [2]sideStats
	mirror mirrorStats
	// local counts answers the proxy made itself, by status code.
	local    sync.Map // int → *atomic.Uint64
	badHeads atomic.Uint64
}

// Ring geometry: 100 ms slots over the last minute, 10 s slots over the
// last ten minutes. Window uses the fine slots where they reach and the
// coarse ones before.
const (
	fineSlot    = 100 * time.Millisecond
	fineSlots   = 600
	coarseSlot  = 10 * time.Second
	coarseSlots = 60
	coarsePer   = int64(coarseSlot / fineSlot)
	fineSamples = 32
	// coarse slots keep more samples so that long windows still hold
	// enough for a rank test.
	coarseSamples = 1024
	// MaxSamples bounds Window.Samples.
	MaxSamples = 4096
)

type sideStats struct {
	requests     atomic.Uint64
	err5xx       atomic.Uint64
	errTransport atomic.Uint64
	retries      atomic.Uint64
	replays      atomic.Uint64
	inflight     atomic.Int64
	latSum       atomic.Uint64 // nanoseconds
	hist         [cumBuckets]atomic.Uint64
	fine         [fineSlots]wslot
	coarse       [coarseSlots]wslot
}

// wslot is one time slot of the ring.
type wslot struct {
	// epoch is the slot index this slot holds; -1 while it is recycled.
	epoch        atomic.Int64
	mu           sync.Mutex
	requests     atomic.Uint32
	err5xx       atomic.Uint32
	errTransport atomic.Uint32
	seen         atomic.Uint32 // latencies recorded
	hist         [winBuckets]atomic.Uint32
	samples      []atomic.Uint32 // microseconds + 1; 0 = not yet written
}

func newStats() *Stats {
	s := &Stats{}
	for i := range s.sides {
		ss := &s.sides[i]
		fs := make([]atomic.Uint32, fineSlots*fineSamples)
		for j := range ss.fine {
			ss.fine[j].epoch.Store(-1)
			ss.fine[j].samples = fs[j*fineSamples : (j+1)*fineSamples]
		}
		cs := make([]atomic.Uint32, coarseSlots*coarseSamples)
		for j := range ss.coarse {
			ss.coarse[j].epoch.Store(-1)
			ss.coarse[j].samples = cs[j*coarseSamples : (j+1)*coarseSamples]
		}
	}
	s.mirror.routes = map[string]*routeStats{}
	return s
}

// slotAt returns the slot of ring for index idx, recycling it if it holds
// an older one; nil when it already holds a newer one (a caller delayed by
// a whole ring).
func slotAt(ring []wslot, idx int64) *wslot {
	s := &ring[idx%int64(len(ring))]
	if s.epoch.Load() == idx {
		return s
	}
	s.mu.Lock()
	if e := s.epoch.Load(); e != idx {
		if e > idx {
			s.mu.Unlock()
			return nil
		}
		// Invalidate first so that a concurrent reader notices.
		s.epoch.Store(-1)
		s.requests.Store(0)
		s.err5xx.Store(0)
		s.errTransport.Store(0)
		s.seen.Store(0)
		for i := range s.hist {
			s.hist[i].Store(0)
		}
		for i := range s.samples {
			s.samples[i].Store(0)
		}
		s.epoch.Store(idx)
	}
	s.mu.Unlock()
	return s
}

func (s *wslot) add(lat int64, status int, transport bool) {
	s.requests.Add(1)
	if transport {
		s.errTransport.Add(1)
	} else if status >= 500 {
		s.err5xx.Add(1)
	}
	if lat < 0 {
		return
	}
	s.hist[histIndex(lat, winSubBits)].Add(1)
	// Reservoir sampling (algorithm R), lock-free: racing writers may
	// overwrite each other's pick, which keeps the sample uniform enough.
	n := s.seen.Add(1)
	k := uint32(len(s.samples))
	us := uint32(lat/1000) + 1
	if n <= k {
		s.samples[n-1].Store(us)
	} else if j := rand.Uint32N(n); j < k {
		s.samples[j].Store(us)
	}
}

// record counts one attempt on side that ended at now. lat < 0 means no
// response head arrived. status is the upstream's status (0 if none);
// transport marks a transport failure.
func (st *Stats) record(side Side, now, lat int64, status int, transport bool) {
	ss := &st.sides[side]
	ss.requests.Add(1)
	if transport {
		ss.errTransport.Add(1)
	} else if status >= 500 {
		ss.err5xx.Add(1)
	}
	if lat >= 0 {
		ss.hist[histIndex(lat, cumSubBits)].Add(1)
		ss.latSum.Add(uint64(lat))
	}
	if now < 0 {
		return // before the clock's start: no slot
	}
	idx := now / int64(fineSlot)
	if s := slotAt(ss.fine[:], idx); s != nil {
		s.add(lat, status, transport)
	}
	if s := slotAt(ss.coarse[:], idx/coarsePer); s != nil {
		s.add(lat, status, transport)
	}
}

func (st *Stats) localReply(code int) {
	v, ok := st.local.Load(code)
	if !ok {
		v, _ = st.local.LoadOrStore(code, new(atomic.Uint64))
	}
	v.(*atomic.Uint64).Add(1)
}

// Counters are cumulative counts of one side since the proxy started.
type Counters struct {
	// Requests is attempts sent (or tried) to the side.
	Requests uint64 `json:"requests"`
	// Errors5xx and ErrorsTransport split the side's errors.
	Errors5xx       uint64 `json:"errors_5xx"`
	ErrorsTransport uint64 `json:"errors_transport"`
	// Retries is requests that could not be sent to this side and went to
	// the other one.
	Retries uint64 `json:"retries"`
	// Replays is requests this side failed that were replayed on the
	// other one.
	Replays uint64 `json:"replays"`
	// InFlight is requests on the side now.
	InFlight int64 `json:"in_flight"`
}

// Counters returns the cumulative counters of side.
func (st *Stats) Counters(side Side) Counters {
	ss := &st.sides[side]
	return Counters{
		Requests:        ss.requests.Load(),
		Errors5xx:       ss.err5xx.Load(),
		ErrorsTransport: ss.errTransport.Load(),
		Retries:         ss.retries.Load(),
		Replays:         ss.replays.Load(),
		InFlight:        ss.inflight.Load(),
	}
}

// Window is what one side did over an interval.
type Window struct {
	// Since and Until are the interval actually covered: the requested
	// one in whole slots (100 ms within the last minute, 10 s before),
	// its start rounded up to a 100 ms slot (so no request before since
	// counts, unless coarse slots widen it), its end widened, and cut to
	// the last ten minutes.
	Since, Until time.Time
	// Requests is attempts that ended in the interval.
	Requests uint64
	// Errors is Errors5xx + ErrorsTransport.
	Errors, Errors5xx, ErrorsTransport uint64
	// Latencies is how many of the requests had a latency (a response
	// head); P50, P90 and P99 are their quantiles (±1.6 %), zero without
	// any.
	Latencies     uint64
	P50, P90, P99 time.Duration
	// Samples is a uniform random sample of at most MaxSamples of those
	// latencies (microsecond resolution), in no particular order.
	Samples []time.Duration
}

// ErrorRate is Errors / Requests; NaN without requests (no data is not a
// pass).
func (w Window) ErrorRate() float64 {
	if w.Requests == 0 {
		return math.NaN()
	}
	return float64(w.Errors) / float64(w.Requests)
}

// SampleSeconds returns Samples in seconds, as the judge's rank test
// takes them.
func (w Window) SampleSeconds() []float64 {
	out := make([]float64, len(w.Samples))
	for i, s := range w.Samples {
		out[i] = s.Seconds()
	}
	return out
}

var windowQuantiles = []float64{0.5, 0.9, 0.99}

// Window returns what side did between since and until. It is cheap
// enough to call every 100 ms.
func (st *Stats) Window(side Side, since, until time.Time) Window {
	return st.window(side, since, until, nanotime())
}

// window is Window as seen at clock time now.
func (st *Stats) window(side Side, since, until time.Time, now int64) Window {
	ss := &st.sides[side]
	cur := now / int64(fineSlot)
	// The start rounds up: a slot that began before since holds requests
	// the caller did not ask for (a shift step judged on the failures
	// that ended the previous run, 100 ms before its weight was set).
	a := (clockOf(since) + int64(fineSlot) - 1) / int64(fineSlot)
	u := clockOf(until)
	b := (u+int64(fineSlot)-1)/int64(fineSlot) - 1
	if b > cur {
		b = cur
	}
	oldest := (cur/coarsePer - coarseSlots + 1) * coarsePer
	if a < oldest {
		a = oldest
	}
	if a < 0 {
		a = 0
	}
	var w Window
	if b < a {
		w.Since, w.Until = since, until
		return w
	}
	// Fine slots from the first coarse boundary they fully cover; coarse
	// slots before it.
	fineFrom := cur - fineSlots + 1
	cb := (fineFrom + coarsePer - 1) / coarsePer * coarsePer
	if fineFrom <= 0 {
		cb = 0
	}
	var hist [winBuckets]uint64
	var parts []samplePart
	start, end := a, b+1 // in fine slot units
	take := func(s *wslot, idx int64) {
		if s.epoch.Load() != idx {
			return
		}
		r := uint64(s.requests.Load())
		e5 := uint64(s.err5xx.Load())
		et := uint64(s.errTransport.Load())
		seen := s.seen.Load()
		var h [winBuckets]uint32
		for i := range h {
			h[i] = s.hist[i].Load()
		}
		k := int(seen)
		if k > len(s.samples) {
			k = len(s.samples)
		}
		smp := make([]uint32, 0, k)
		for i := 0; i < k; i++ {
			if v := s.samples[i].Load(); v != 0 {
				smp = append(smp, v)
			}
		}
		if s.epoch.Load() != idx {
			return
		}
		w.Requests += r
		w.Errors5xx += e5
		w.ErrorsTransport += et
		w.Latencies += uint64(seen)
		for i, c := range h {
			hist[i] += uint64(c)
		}
		if seen > 0 {
			parts = append(parts, samplePart{n: uint64(seen), s: smp})
		}
	}
	if a < cb {
		for c := a / coarsePer; c*coarsePer < cb && c*coarsePer <= b; c++ {
			take(&ss.coarse[c%coarseSlots], c)
			if (c+1)*coarsePer > end {
				end = (c + 1) * coarsePer // a coarse slot ends the window
			}
		}
		start = a / coarsePer * coarsePer
		a = cb
	}
	for f := a; f <= b; f++ {
		take(&ss.fine[f%fineSlots], f)
	}
	w.Errors = w.Errors5xx + w.ErrorsTransport
	w.Since = clockTime(start * int64(fineSlot))
	w.Until = clockTime(end * int64(fineSlot))
	var q [3]time.Duration
	histQuantiles(hist[:], winSubBits, windowQuantiles, q[:])
	w.P50, w.P90, w.P99 = q[0], q[1], q[2]
	w.Samples = mergeSamples(parts, MaxSamples)
	return w
}

type samplePart struct {
	n uint64   // latencies the slot saw
	s []uint32 // its reservoir
}

// mergeSamples draws a uniform sample from per-slot reservoirs: each slot
// contributes in proportion to what it saw, and the total is cut so that
// no slot is asked for more than its reservoir holds (which would
// over-weight the quiet slots).
func mergeSamples(parts []samplePart, max int) []time.Duration {
	var total uint64
	for _, p := range parts {
		total += p.n
	}
	if total == 0 {
		return nil
	}
	size := float64(max)
	for _, p := range parts {
		if len(p.s) == 0 {
			continue
		}
		if lim := float64(len(p.s)) * float64(total) / float64(p.n); lim < size {
			size = lim
		}
	}
	out := make([]time.Duration, 0, int(size)+len(parts))
	for _, p := range parts {
		want := size * float64(p.n) / float64(total)
		k := int(want)
		if rand.Float64() < want-float64(k) {
			k++
		}
		if k > len(p.s) {
			k = len(p.s)
		}
		// Partial Fisher–Yates: a uniform k-subset of the reservoir.
		for i := 0; i < k; i++ {
			j := i + rand.IntN(len(p.s)-i)
			p.s[i], p.s[j] = p.s[j], p.s[i]
			out = append(out, time.Duration(p.s[i]-1)*time.Microsecond)
		}
	}
	return out
}

// mirrorStats counts mirror comparisons per route.
type mirrorStats struct {
	mu      sync.RWMutex
	routes  map[string]*routeStats
	dropped atomic.Uint64
}

type routeStats struct {
	match, mismatch, errors atomic.Uint64
}

// maxRoutes bounds the route label's cardinality; later routes count
// under "other".
const maxRoutes = 256

func (m *mirrorStats) route(name string) *routeStats {
	m.mu.RLock()
	r := m.routes[name]
	m.mu.RUnlock()
	if r != nil {
		return r
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if r = m.routes[name]; r != nil {
		return r
	}
	if len(m.routes) >= maxRoutes {
		name = "other"
		if r = m.routes[name]; r != nil {
			return r
		}
	}
	r = &routeStats{}
	m.routes[name] = r
	return r
}

// MirrorRoute is the mirror comparisons of one route.
type MirrorRoute struct {
	Route string `json:"route"`
	// Match and Mismatch count comparisons of status and body SHA-256;
	// Errors counts mirrored requests the new side did not answer.
	Match    uint64 `json:"match"`
	Mismatch uint64 `json:"mismatch"`
	Errors   uint64 `json:"errors"`
}

// Mirror returns the mirror comparisons per route, sorted by route, and
// how many mirrors were dropped because too many were in flight.
func (st *Stats) Mirror() (routes []MirrorRoute, dropped uint64) {
	st.mirror.mu.RLock()
	for name, r := range st.mirror.routes {
		routes = append(routes, MirrorRoute{Route: name, Match: r.match.Load(), Mismatch: r.mismatch.Load(), Errors: r.errors.Load()})
	}
	st.mirror.mu.RUnlock()
	sort.Slice(routes, func(i, j int) bool { return routes[i].Route < routes[j].Route })
	return routes, st.mirror.dropped.Load()
}

// routeOf names the route of a request for mirror counts: the method and
// the first two path segments, with segments holding a digit replaced by
// ":id" so that /users/42 and /users/43 count together.
func routeOf(method, target []byte) string {
	var sb strings.Builder
	sb.Write(method)
	sb.WriteByte(' ')
	path := target
	for i, c := range path {
		if c == '?' || c == '#' {
			path = path[:i]
			break
		}
	}
	segs := 0
	for len(path) > 0 && segs < 2 {
		path = path[1:]
		end := len(path)
		for i, c := range path {
			if c == '/' {
				end = i
				break
			}
		}
		seg := path[:end]
		path = path[end:]
		sb.WriteByte('/')
		digit := false
		for _, c := range seg {
			if c >= '0' && c <= '9' {
				digit = true
				break
			}
		}
		if digit {
			sb.WriteString(":id")
		} else {
			sb.Write(seg)
		}
		segs++
	}
	if segs == 0 {
		sb.WriteByte('/')
	}
	return sb.String()
}
