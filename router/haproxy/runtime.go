package haproxy

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// maxAnswer bounds what one runtime API answer may hold: `show stat` of a
// backend with thousands of servers is a few megabytes.
const maxAnswer = 32 << 20

// socket is one HAProxy instance's stats socket in runtime API mode.
type socket struct {
	network, addr string
	timeout       time.Duration
}

// parseSocket reads a stats socket address the way HAProxy's own `stats
// socket` line and socat users write it: a path ("/run/haproxy/admin.sock",
// "unix@…", "unix:…") or host:port ("127.0.0.1:9999", "ipv4@…", "tcp:…").
func parseSocket(s string, timeout time.Duration) (socket, error) {
	for _, p := range []string{"unix@", "unix:", "unix-connect:"} {
		if rest, ok := strings.CutPrefix(s, p); ok {
			if rest == "" {
				return socket{}, fmt.Errorf("stats socket %q: no path", s)
			}
			return socket{network: "unix", addr: rest, timeout: timeout}, nil
		}
	}
	for _, p := range []string{"ipv4@", "ipv6@", "tcp@", "tcp:", "tcp-connect:", "tcp4:", "tcp6:"} {
		if rest, ok := strings.CutPrefix(s, p); ok {
			s = rest
			break
		}
	}
	if strings.ContainsRune(s, '/') {
		return socket{network: "unix", addr: s, timeout: timeout}, nil
	}
	if _, _, err := net.SplitHostPort(s); err != nil {
		return socket{}, fmt.Errorf("stats socket %q is neither a path nor host:port", s)
	}
	return socket{network: "tcp", addr: s, timeout: timeout}, nil
}

func (s socket) String() string { return s.addr }

// errNoAnswer marks a socket that took the connection but said nothing in
// time: HAProxy is stuck, or the address is not a stats socket.
var errNoAnswer = errors.New("no answer")

// do sends one command in non-interactive mode (HAProxy answers, then
// closes the connection) and returns the answer without its closing blank
// line. A command that failed still answers: callers read the text.
func (s socket) do(ctx context.Context, cmd string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("haproxy %s: %s: %w", s, cmd, err)
	}
	start := time.Now()
	deadline := start.Add(s.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	wait := deadline.Sub(start)
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(dctx, s.network, s.addr)
	if err != nil {
		return "", fmt.Errorf("haproxy stats socket %s does not accept connections: %w", s, unwrapOp(err))
	}
	defer c.Close()
	c.SetDeadline(deadline)
	// A cancelled context ends the exchange at once, not at the deadline.
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := io.WriteString(c, cmd+"\n"); err != nil {
		return "", fmt.Errorf("haproxy %s: %s: %w", s, cmd, unwrapOp(err))
	}
	b, err := io.ReadAll(io.LimitReader(c, maxAnswer+1))
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return "", fmt.Errorf("haproxy %s: %s: %w", s, cmd, cerr)
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return "", fmt.Errorf("haproxy stats socket %s: %w to %q within %v", s, errNoAnswer, cmd, wait.Round(time.Millisecond))
		}
		return "", fmt.Errorf("haproxy %s: %s: %w", s, cmd, unwrapOp(err))
	}
	if len(b) > maxAnswer {
		return "", fmt.Errorf("haproxy %s: %s: answer longer than %d bytes", s, cmd, maxAnswer)
	}
	if len(b) == 0 {
		// HAProxy always ends an answer with a blank line; nothing at all
		// means the peer closed without answering (not a stats socket, or
		// a process being stopped).
		return "", fmt.Errorf("haproxy stats socket %s closed the connection without answering %q", s, cmd)
	}
	return strings.TrimRight(string(b), "\n"), nil
}

func unwrapOp(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err
	}
	return err
}

// parseWeight reads the answer to `get weight <backend>/<server>`: the
// current weight and, in parentheses, the configured one ("10 (initial
// 10)" since HAProxy 1.5; older ones wrote "10 (10)").
func parseWeight(ans string) (cur, init int, err error) {
	line := strings.TrimSpace(ans)
	head, tail, ok := strings.Cut(line, " (")
	if !ok || !strings.HasSuffix(tail, ")") {
		return 0, 0, answerError(ans)
	}
	tail = strings.TrimPrefix(strings.TrimSuffix(tail, ")"), "initial ")
	cur, err1 := strconv.Atoi(head)
	init, err2 := strconv.Atoi(tail)
	if err1 != nil || err2 != nil || cur < 0 || init < 0 || cur > maxWeight || init > maxWeight {
		return 0, 0, answerError(ans)
	}
	return cur, init, nil
}

// answerError turns an answer that is not what the command returns on
// success into an error: HAProxy's own message ("No such server.") when it
// is one line, else the first line, quoted.
func answerError(ans string) error {
	ans = strings.TrimSpace(ans)
	first, _, _ := strings.Cut(ans, "\n")
	if len(first) > 200 {
		first = first[:200] + "…"
	}
	if first == "" {
		return errors.New("empty answer")
	}
	return errors.New(strings.TrimSuffix(first, "."))
}

// backendStat is what `show stat <backend> 6 -1` tells about a backend.
type backendStat struct {
	// Algo is the balance algorithm as HAProxy names it ("roundrobin",
	// "static-rr", "source", …); HAProxy 2.6 says "unknown" for random.
	Algo    string
	Servers []serverStat
}

// serverStat is one server's row.
type serverStat struct {
	Name string
	// Status is "UP", "DOWN", "MAINT", "DRAIN", "no check", "UP 1/3", …
	Status string
	// Weight is the effective weight (0 for a server in drain).
	Weight int
	// Backup is true for a `backup` server, which takes traffic only when
	// every active server is down.
	Backup bool
}

// errNoBackend is parseStat's answer for statistics without the backend.
var errNoBackend = errors.New("no such backend in the statistics")

// parseStat reads HAProxy's CSV statistics for one backend. Columns are
// found by the header's names, so versions that add columns still parse.
func parseStat(ans, backend string) (backendStat, error) {
	body := strings.TrimSpace(ans)
	if !strings.HasPrefix(body, "# ") {
		return backendStat{}, answerError(ans)
	}
	r := csv.NewReader(strings.NewReader(strings.TrimPrefix(body, "# ")))
	r.FieldsPerRecord = -1
	r.LazyQuotes = true
	r.ReuseRecord = false
	header, err := r.Read()
	if err != nil {
		return backendStat{}, fmt.Errorf("statistics header: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		if _, dup := col[h]; !dup {
			col[h] = i
		}
	}
	for _, need := range []string{"pxname", "svname", "status", "weight", "bck"} {
		if _, ok := col[need]; !ok {
			return backendStat{}, fmt.Errorf("statistics have no %q column", need)
		}
	}
	get := func(rec []string, name string) string {
		i, ok := col[name]
		if !ok || i >= len(rec) {
			return ""
		}
		return rec[i]
	}
	var out backendStat
	found := false
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return backendStat{}, fmt.Errorf("statistics: %w", err)
		}
		if get(rec, "pxname") != backend {
			continue
		}
		switch sv := get(rec, "svname"); sv {
		case "FRONTEND":
		case "BACKEND":
			found = true
			out.Algo = get(rec, "algo")
		default:
			w, err := strconv.Atoi(strings.TrimSpace(get(rec, "weight")))
			if err != nil && get(rec, "weight") != "" {
				return backendStat{}, fmt.Errorf("statistics: server %s/%s: weight %q is not a number", backend, sv, get(rec, "weight"))
			}
			out.Servers = append(out.Servers, serverStat{Name: sv, Status: get(rec, "status"), Weight: w, Backup: get(rec, "bck") == "1"})
		}
	}
	if !found {
		return backendStat{}, errNoBackend
	}
	return out, nil
}

// algoKind sorts balance algorithms by what they do with weights.
type algoKind int

const (
	// dynamicAlgo honours any weight at run time: roundrobin, leastconn,
	// random ("unknown" in HAProxy 2.6's statistics).
	dynamicAlgo algoKind = iota
	// staticAlgo takes only 0 % and 100 % of a server's configured weight:
	// static-rr, first.
	staticAlgo
	// hashAlgo is dynamic with `hash-type consistent` and static with the
	// default map-based hashing; the runtime API does not tell which, so a
	// refusal from HAProxy is what says it.
	hashAlgo
)

func classify(algo string) algoKind {
	switch algo {
	case "static-rr", "first":
		return staticAlgo
	case "source", "uri", "url_param", "hdr", "rdp-cookie", "hash":
		return hashAlgo
	}
	return dynamicAlgo
}

// isStaticRefusal tells HAProxy's answer to a weight a static algorithm
// cannot take.
func isStaticRefusal(ans string) bool {
	return strings.Contains(ans, "static LB algorithm")
}
