// Package haproxy is the router for HAProxy: it moves traffic by setting
// the weights of a backend's servers through HAProxy's runtime API (the
// stats socket, unix or TCP), and reads them back with `get weight`.
//
// The plan's legacy and new addresses name servers of one backend
// ("be_payments/legacy1"); each side may have several. The new side's
// percentage becomes integer server weights (0..256) whose sums give that
// share as exactly as integers allow (see split). Several HAProxy
// instances carrying the same traffic (an active/active pair) are driven
// together and must agree when read back.
package haproxy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/cutoverhq/cutover/router"
)

func init() { router.Register("haproxy", New) }

// Settings are the plan's router settings for type "haproxy".
type Settings struct {
	// Socket is the stats socket of the HAProxy instance, declared with
	// `level admin`: a unix path ("/run/haproxy/admin.sock") or a TCP
	// address ("127.0.0.1:9999"). Exactly one of Socket and Sockets is set.
	Socket string `yaml:"socket"`
	// Sockets are the stats sockets of several instances that carry the
	// same traffic (an HAProxy pair); each gets the same weights.
	Sockets []string `yaml:"sockets"`
	// Backend is the backend of addresses that name only a server
	// ("legacy1"); "" means every address names "backend/server".
	Backend string `yaml:"backend"`
	// Timeout bounds each runtime API command; "" means 5s.
	Timeout string `yaml:"timeout"`
}

// Router drives the weights of one backend's servers.
type Router struct {
	sockets       []socket
	backend       string
	legacy, newer []string // server names in backend
	// mu keeps two SetWeights of this process from interleaving their
	// commands.
	mu sync.Mutex
}

var (
	_ router.Router  = (*Router)(nil)
	_ router.Checker = (*Router)(nil)
)

// New builds the router from the plan's settings. It does not contact
// HAProxy: Check does, and every call does.
func New(ctx context.Context, b router.Backends, decode func(v any) error) (router.Router, error) {
	var s Settings
	if err := decode(&s); err != nil {
		return nil, err
	}
	timeout := 5 * time.Second
	if s.Timeout != "" {
		d, err := time.ParseDuration(s.Timeout)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("timeout %q is not a positive duration (5s, 500ms)", s.Timeout)
		}
		timeout = d
	}
	addrs := s.Sockets
	switch {
	case s.Socket != "" && len(s.Sockets) > 0:
		return nil, errors.New("set socket (one HAProxy) or sockets (several), not both")
	case s.Socket != "":
		addrs = []string{s.Socket}
	case len(addrs) == 0:
		return nil, errors.New("set socket: HAProxy's stats socket (a path or host:port) declared with level admin")
	}
	r := &Router{}
	seenSock := map[string]bool{}
	for _, a := range addrs {
		sk, err := parseSocket(a, timeout)
		if err != nil {
			return nil, err
		}
		if seenSock[sk.network+sk.addr] {
			return nil, fmt.Errorf("stats socket %s is listed twice", a)
		}
		seenSock[sk.network+sk.addr] = true
		r.sockets = append(r.sockets, sk)
	}
	if s.Backend != "" && !validName(s.Backend) {
		return nil, fmt.Errorf("backend %q is not an HAProxy name (letters, digits, - _ . :)", s.Backend)
	}
	seen := map[string]string{}
	for _, side := range []struct {
		name  string
		addrs []string
		out   *[]string
	}{{"legacy", b.Legacy, &r.legacy}, {"new", b.New, &r.newer}} {
		if len(side.addrs) == 0 {
			return nil, fmt.Errorf("the %s side names no HAProxy server", side.name)
		}
		for _, a := range side.addrs {
			be, srv, err := parseServer(a, s.Backend)
			if err != nil {
				return nil, fmt.Errorf("%s address %q: %w", side.name, a, err)
			}
			if r.backend == "" {
				r.backend = be
			} else if be != r.backend {
				return nil, fmt.Errorf("%s address %q is in backend %s, others in %s: HAProxy splits by weight only among one backend's servers", side.name, a, be, r.backend)
			}
			if prev, dup := seen[srv]; dup {
				return nil, fmt.Errorf("server %s/%s is named twice (%s and %s side)", be, srv, prev, side.name)
			}
			seen[srv] = side.name
			*side.out = append(*side.out, srv)
		}
	}
	return r, nil
}

// parseServer splits "backend/server", or takes a bare server name in
// backend def.
func parseServer(a, def string) (backend, server string, err error) {
	if strings.Contains(a, "://") {
		return "", "", errors.New("is a URL: the haproxy router's addresses name HAProxy servers, backend/server (be_payments/legacy1)")
	}
	backend, server, ok := strings.Cut(a, "/")
	if !ok {
		if def == "" {
			return "", "", errors.New("names no backend: write backend/server, or set the router's backend")
		}
		backend, server = def, a
	}
	if !validName(backend) || !validName(server) {
		return "", "", errors.New("is not backend/server with HAProxy names (letters, digits, - _ . :)")
	}
	return backend, server, nil
}

// validName accepts the characters HAProxy allows in proxy and server
// names. It also keeps a name from smuggling a second command (";", a
// newline) into the runtime API.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.', c == ':':
		default:
			return false
		}
	}
	return true
}

// serverWeight is one server's weights as `get weight` reads them.
type serverWeight struct {
	name      string
	cur, init int
}

// read returns the weights of every plan server on one instance, legacy
// first.
func (r *Router) read(ctx context.Context, sk socket) (legacy, newer []serverWeight, err error) {
	get := func(names []string) ([]serverWeight, error) {
		out := make([]serverWeight, 0, len(names))
		for _, n := range names {
			ans, err := sk.do(ctx, "get weight "+r.backend+"/"+n)
			if err != nil {
				return nil, err
			}
			cur, init, err := parseWeight(ans)
			if err != nil {
				return nil, fmt.Errorf("haproxy %s: server %s/%s: %w", sk, r.backend, n, err)
			}
			out = append(out, serverWeight{name: n, cur: cur, init: init})
		}
		return out, nil
	}
	if legacy, err = get(r.legacy); err != nil {
		return nil, nil, err
	}
	if newer, err = get(r.newer); err != nil {
		return nil, nil, err
	}
	return legacy, newer, nil
}

func sum(ws []serverWeight) int {
	n := 0
	for _, w := range ws {
		n += w.cur
	}
	return n
}

func inits(ws []serverWeight) []int {
	out := make([]int, len(ws))
	for i, w := range ws {
		out[i] = w.init
	}
	return out
}

// Weights reads the split back from every instance: the new side's share
// of the servers' current weights, rounded to a whole percent.
func (r *Router) Weights(ctx context.Context) (router.Weights, error) {
	var first router.Weights
	for i, sk := range r.sockets {
		legacy, newer, err := r.read(ctx, sk)
		if err != nil {
			return router.Weights{}, err
		}
		pct, ok := share(sum(newer), sum(legacy))
		if !ok {
			return router.Weights{}, fmt.Errorf("haproxy %s: every server of the plan in backend %s has weight 0: HAProxy has nowhere to send requests", sk, r.backend)
		}
		w := router.ForNew(pct)
		if i == 0 {
			first = w
		} else if w != first {
			return router.Weights{}, fmt.Errorf("HAProxy instances disagree: %s has %v, %s has %v", r.sockets[0], first, sk, w)
		}
	}
	return first, nil
}

// change is one server's weight going from old to want on one instance.
type change struct {
	sk        socket
	server    string
	old, want int
}

// SetWeights gives the servers the weights that split traffic as w, on
// every instance, then reads each one back. Weights that go up are set
// before weights that go down, so no instant has every server at 0. When
// a command fails, the servers already changed get their old weights back
// before the error returns.
func (r *Router) SetWeights(ctx context.Context, w router.Weights) error {
	if err := w.Validate(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var ups, downs []change
	for _, sk := range r.sockets {
		legacy, newer, err := r.read(ctx, sk)
		if err != nil {
			return err
		}
		if w.New > 0 && w.New < 100 {
			if err := r.refuseStatic(ctx, sk, w); err != nil {
				return err
			}
		}
		tl, tn, err := split(w.New, inits(legacy), inits(newer))
		if err != nil {
			return fmt.Errorf("haproxy %s: %w", sk, err)
		}
		for _, side := range []struct {
			now    []serverWeight
			target []int
		}{{legacy, tl}, {newer, tn}} {
			for i, s := range side.now {
				c := change{sk: sk, server: s.name, old: s.cur, want: side.target[i]}
				switch {
				case c.want > c.old:
					ups = append(ups, c)
				case c.want < c.old:
					downs = append(downs, c)
				}
			}
		}
	}
	// A new side that takes traffic again must be out of maintenance
	// before its weights go up (see evict).
	if w.New > 0 {
		if err := r.setState(ctx, "ready"); err != nil {
			return err
		}
	}
	var done []change
	for _, c := range append(ups, downs...) {
		if err := r.set(ctx, c, w); err != nil {
			r.restore(ctx, done)
			return err
		}
		done = append(done, c)
	}
	// The weights read back must be the weights set: anything else means
	// someone else changed them meanwhile, or HAProxy did not take them.
	for _, sk := range r.sockets {
		legacy, newer, err := r.read(ctx, sk)
		if err != nil {
			return fmt.Errorf("reading back: %w", err)
		}
		tl, tn, _ := split(w.New, inits(legacy), inits(newer))
		for _, side := range []struct {
			now    []serverWeight
			target []int
		}{{legacy, tl}, {newer, tn}} {
			for i, s := range side.now {
				if s.cur != side.target[i] {
					return fmt.Errorf("haproxy %s: server %s/%s reads weight %d after it was set to %d", sk, r.backend, s.name, s.cur, side.target[i])
				}
			}
		}
	}
	if w.New == 0 {
		return r.setState(ctx, "maint")
	}
	return nil
}

// setState puts every new-side server in state (ready or maint). At 0 %
// the new side goes into maintenance: weight 0 alone only stops new
// clients, while HAProxy keeps sending it the clients whose persistence
// cookie names one of its servers, and after a rollback those must move
// to legacy at once (option redispatch sends them on). ready is what a
// server configured without "disabled" starts in, so it is idempotent.
func (r *Router) setState(ctx context.Context, state string) error {
	for _, sk := range r.sockets {
		for _, name := range r.newer {
			cmd := fmt.Sprintf("set server %s/%s state %s", r.backend, name, state)
			ans, err := sk.do(ctx, cmd)
			if err != nil {
				return err
			}
			if a := strings.TrimSpace(ans); a != "" {
				return fmt.Errorf("haproxy %s: %s: %v", sk, cmd, answerError(ans))
			}
		}
	}
	return nil
}

func (r *Router) set(ctx context.Context, c change, w router.Weights) error {
	sk := c.sk
	cmd := fmt.Sprintf("set server %s/%s weight %d", r.backend, c.server, c.want)
	ans, err := sk.do(ctx, cmd)
	if err != nil {
		return err
	}
	if strings.TrimSpace(ans) == "" {
		return nil
	}
	if isStaticRefusal(ans) {
		if w.New == 0 || w.New == 100 {
			// All or nothing was refused: the server's configured weight
			// is 0, and 100 % of 0 is all a static algorithm gives it.
			return fmt.Errorf("backend %s has a %w, which gives a server only 0 or its configured weight, and server %s/%s is configured with weight 0: give it a weight in HAProxy's configuration", r.backend, ErrStaticAlgorithm, r.backend, c.server)
		}
		return r.staticError(ctx, sk, w)
	}
	return fmt.Errorf("haproxy %s: %s: %v", sk, cmd, answerError(ans))
}

// restore gives changed servers their old weights back. It runs even when
// ctx is cancelled (a cancelled step must not leave half its weights
// set), within one timeout per command.
func (r *Router) restore(ctx context.Context, done []change) {
	rctx := context.WithoutCancel(ctx)
	for i := len(done) - 1; i >= 0; i-- {
		c := done[i]
		c.sk.do(rctx, fmt.Sprintf("set server %s/%s weight %d", r.backend, c.server, c.old))
	}
}

// stat reads the backend's statistics. `show stat <name>` picks the first
// proxy of that name, which is a frontend when one shares the backend's
// name; then every backend's statistics are read instead.
func (r *Router) stat(ctx context.Context, sk socket) (backendStat, error) {
	for _, filter := range []string{r.backend, "-1"} {
		ans, err := sk.do(ctx, "show stat "+filter+" 6 -1")
		if err != nil {
			return backendStat{}, err
		}
		if strings.HasPrefix(strings.TrimSpace(ans), "No such") {
			continue
		}
		st, err := parseStat(ans, r.backend)
		if errors.Is(err, errNoBackend) {
			continue
		}
		if err != nil {
			return backendStat{}, fmt.Errorf("haproxy %s: backend %s: %w", sk, r.backend, err)
		}
		return st, nil
	}
	return backendStat{}, fmt.Errorf("haproxy %s has no backend %s", sk, r.backend)
}

// refuseStatic refuses, before anything changes, a split that the
// backend's balance algorithm cannot do.
func (r *Router) refuseStatic(ctx context.Context, sk socket, w router.Weights) error {
	st, err := r.stat(ctx, sk)
	if err != nil {
		return err
	}
	if classify(st.Algo) == staticAlgo {
		return staticError(r.backend, st.Algo, w)
	}
	return nil
}

// staticError is the error for a refusal from HAProxy itself, which
// happens for hash algorithms with map-based hashing.
func (r *Router) staticError(ctx context.Context, sk socket, w router.Weights) error {
	algo := ""
	if st, err := r.stat(ctx, sk); err == nil {
		algo = st.Algo
	}
	return staticError(r.backend, algo, w)
}

// ErrStaticAlgorithm is returned (wrapped) when the backend's balance
// algorithm takes only 0 % and 100 % of a server's weight.
var ErrStaticAlgorithm = errors.New("static balance algorithm")

func staticError(backend, algo string, w router.Weights) error {
	fix := "use balance roundrobin or leastconn"
	how := "balances with " + algo
	switch {
	case algo == "":
		how = "has a static balance algorithm"
	case classify(algo) == hashAlgo:
		how = "balances with " + algo + " and map-based hashing (HAProxy's default hash-type)"
		fix = "add `hash-type consistent` to the backend, or use balance roundrobin or leastconn"
	}
	return fmt.Errorf("backend %s %s, a %w: HAProxy takes only 0 %% and 100 %% of a server's configured weight there, so it cannot send %d %% to the new side; %s", backend, how, ErrStaticAlgorithm, w.New, fix)
}

// Check tells, in one line, everything that would keep a shift from
// working: a socket that does not answer or lacks `level admin`, a
// missing backend or server, a static balance algorithm, servers in
// maintenance, drain or down, backup servers in the plan, and servers of
// the backend outside the plan that would take a share of traffic.
func (r *Router) Check(ctx context.Context) error {
	var problems []string
	for _, sk := range r.sockets {
		ps := r.check(ctx, sk)
		if len(r.sockets) > 1 {
			for i := range ps {
				ps[i] = "haproxy " + sk.String() + ": " + ps[i]
			}
		}
		problems = append(problems, ps...)
	}
	if len(problems) == 0 {
		return nil
	}
	return errors.New(strings.Join(problems, "; "))
}

func (r *Router) check(ctx context.Context, sk socket) []string {
	ans, err := sk.do(ctx, "show cli level")
	if err != nil {
		return []string{err.Error()}
	}
	var problems []string
	switch lvl := strings.TrimSpace(ans); lvl {
	case "admin":
	case "user", "operator":
		problems = append(problems, fmt.Sprintf("stats socket %s has level %s: weights need `level admin` on the `stats socket` line", sk, lvl))
	}
	st, err := r.stat(ctx, sk)
	if err != nil {
		return append(problems, err.Error())
	}
	switch classify(st.Algo) {
	case staticAlgo:
		problems = append(problems, fmt.Sprintf("backend %s balances with %s, which takes only 0 %% and 100 %% of a server's weight: use balance roundrobin or leastconn for steps in between", r.backend, st.Algo))
	}
	byName := map[string]serverStat{}
	for _, s := range st.Servers {
		byName[s.Name] = s
	}
	inPlan := map[string]bool{}
	for _, side := range []struct {
		name    string
		servers []string
	}{{"legacy", r.legacy}, {"new", r.newer}} {
		for _, n := range side.servers {
			inPlan[n] = true
			s, ok := byName[n]
			switch {
			case !ok:
				problems = append(problems, fmt.Sprintf("backend %s has no server %s (%s side)", r.backend, n, side.name))
			case s.Backup:
				problems = append(problems, fmt.Sprintf("server %s/%s is a backup server: it takes traffic only when every active server is down, whatever its weight", r.backend, n))
			case strings.HasPrefix(s.Status, "MAINT"), strings.HasPrefix(s.Status, "DRAIN"), strings.HasPrefix(s.Status, "DOWN"), strings.HasPrefix(s.Status, "NOLB"):
				problems = append(problems, fmt.Sprintf("server %s/%s is %s: it takes no traffic whatever its weight", r.backend, n, s.Status))
			}
		}
	}
	var others []string
	for _, s := range st.Servers {
		if !inPlan[s.Name] && !s.Backup && s.Weight > 0 {
			others = append(others, s.Name)
		}
	}
	if len(others) > 0 {
		problems = append(problems, fmt.Sprintf("backend %s has servers in neither side that take a share of traffic (%s): add them to a side or set their weight to 0", r.backend, strings.Join(others, ", ")))
	}
	return problems
}
