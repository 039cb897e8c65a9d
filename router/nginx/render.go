package nginx

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// sideWeights maps the new side's percentage to NGINX server weights.
// NGINX takes weights ≥ 1 and refuses 0, so the side at 0 % has its
// servers marked `down`; otherwise pct/(100-pct) is reduced by its
// greatest common divisor and scaled by the least multiple that splits
// each side's total evenly over its servers. The share is exact: 90/10
// with one server a side is 9 and 1; with three legacy servers and one
// new one, 3, 3, 3 and 1.
func sideWeights(pct, kl, kn int) (legacy, newer int) {
	switch pct {
	case 0:
		return 1, 0
	case 100:
		return 0, 1
	}
	g := gcd(pct, 100-pct)
	a, b := pct/g, (100-pct)/g
	m := lcm(kn/gcd(a, kn), kl/gcd(b, kl))
	return m * b / kl, m * a / kn
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func lcm(a, b int) int { return a / gcd(a, b) * b }

// upstreamAddr turns a plan address into an upstream server address:
// "http://10.0.1.12:8080" → "10.0.1.12:8080" (80 or 443 when the URL has
// no port), "10.0.1.12:8080" and "unix:/run/app.sock" as they are.
func upstreamAddr(a string) (string, error) {
	if strings.HasPrefix(a, "unix:") {
		if len(a) == len("unix:") || strings.ContainsAny(a, " \t\n;{}#\"'") {
			return "", errors.New("is not a unix socket path")
		}
		return a, nil
	}
	if strings.Contains(a, "://") {
		u, err := url.Parse(a)
		if err != nil {
			return "", errors.New("is not a URL")
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			return "", fmt.Errorf("has scheme %q; NGINX upstream servers are http or https", u.Scheme)
		}
		if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return "", errors.New("has more than scheme, host and port: an upstream server is only host:port")
		}
		host, port := u.Hostname(), u.Port()
		if port == "" {
			port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
		}
		a = net.JoinHostPort(host, port)
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil || host == "" {
		return "", errors.New("is neither host:port, a URL nor unix:/path")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("has port %q", port)
	}
	if strings.ContainsAny(host, " \t\n;{}#\"'$") {
		return "", errors.New("has a host NGINX cannot take")
	}
	return a, nil
}

// validName accepts what an upstream name may be in cutover's files: it
// is also part of a server_name and a location, so no spaces or quotes.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

// validDirective accepts one directive (or server parameters) without
// its semicolon: nothing that would end it or open a block, so a setting
// cannot reach outside the upstream block.
func validDirective(s string) bool {
	s = strings.TrimSpace(s)
	return s != "" && !strings.ContainsAny(s, ";{}#\n\r")
}

// file is what one include file holds.
type file struct {
	upstream      string
	legacy, newer []string // upstream server addresses
	directives    []string // extra lines of the upstream block
	serverParams  string   // appended to every server line
	status        string   // host:port of the status server
	service       string
}

// status is what the status location answers: the generation of the
// configuration the answering worker runs, the split, and a digest of the
// upstream block.
type status struct {
	Upstream, Generation string
	Weights              [2]int // legacy, new
	Digest               string
}

func (s status) line() string {
	return fmt.Sprintf("cutover upstream=%s generation=%s legacy=%d new=%d digest=%s", s.Upstream, s.Generation, s.Weights[0], s.Weights[1], s.Digest)
}

// parseHeader reads the first line of an include file cutover wrote: a
// comment holding the status line its workers answer.
func parseHeader(content string) (status, error) {
	line, _, _ := strings.Cut(content, "\n")
	rest, ok := strings.CutPrefix(line, "# ")
	if !ok {
		return status{}, errors.New("no cutover header line")
	}
	return parseStatus(rest)
}

// parseStatus reads a status answer.
func parseStatus(body string) (status, error) {
	line, _, _ := strings.Cut(strings.TrimSpace(body), "\n")
	fields := strings.Fields(line)
	if len(fields) == 0 || fields[0] != "cutover" {
		return status{}, errors.New("not a cutover status line")
	}
	var s status
	seen := map[string]bool{}
	for _, f := range fields[1:] {
		k, v, ok := strings.Cut(f, "=")
		if !ok || seen[k] {
			return status{}, fmt.Errorf("status field %q", f)
		}
		seen[k] = true
		switch k {
		case "upstream":
			s.Upstream = v
		case "generation":
			s.Generation = v
		case "digest":
			s.Digest = v
		case "legacy", "new":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 100 {
				return status{}, fmt.Errorf("status field %q", f)
			}
			if k == "legacy" {
				s.Weights[0] = n
			} else {
				s.Weights[1] = n
			}
		}
	}
	for _, k := range []string{"upstream", "generation", "legacy", "new", "digest"} {
		if !seen[k] {
			return status{}, fmt.Errorf("status has no %s", k)
		}
	}
	if s.Weights[0]+s.Weights[1] != 100 {
		return status{}, fmt.Errorf("status weights %d/%d do not sum to 100", s.Weights[0], s.Weights[1])
	}
	return s, nil
}

// location is the status location's path.
func (f *file) location() string { return "/cutover/" + f.upstream }

// serverName routes status requests to this file's server block, so
// several services' files may share one status address.
func (f *file) serverName() string { return "cutover-" + f.upstream }

// render writes the include file for the new side at pct percent, and
// the status line its workers will answer.
func (f *file) render(pct int, generation string) ([]byte, status) {
	wl, wn := sideWeights(pct, len(f.legacy), len(f.newer))
	var up strings.Builder
	fmt.Fprintf(&up, "upstream %s {\n", f.upstream)
	for _, side := range []struct {
		addrs  []string
		weight int
	}{{f.legacy, wl}, {f.newer, wn}} {
		for _, a := range side.addrs {
			fmt.Fprintf(&up, "    server %s", a)
			if side.weight == 0 {
				// NGINX refuses weight=0; down keeps the server in the
				// block (and in the digest) without sending it requests.
				up.WriteString(" down")
			} else {
				fmt.Fprintf(&up, " weight=%d", side.weight)
			}
			if f.serverParams != "" {
				up.WriteString(" " + strings.TrimSpace(f.serverParams))
			}
			up.WriteString(";\n")
		}
	}
	for _, d := range f.directives {
		fmt.Fprintf(&up, "    %s;\n", strings.TrimSpace(d))
	}
	up.WriteString("}\n")
	sum := sha256.Sum256([]byte(up.String()))
	st := status{Upstream: f.upstream, Generation: generation, Weights: [2]int{100 - pct, pct}, Digest: hex.EncodeToString(sum[:8])}

	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n", st.line())
	fmt.Fprintf(&b, "# Written by cutover's nginx router for service %s at %d %% to the new side.\n", f.service, pct)
	b.WriteString("# Every step of the shift rewrites this file: change the plan, not the file.\n")
	b.WriteString(up.String())
	b.WriteString("\n# cutover reads back from here which configuration the workers really run.\n")
	b.WriteString("server {\n")
	fmt.Fprintf(&b, "    listen %s;\n", f.status)
	fmt.Fprintf(&b, "    server_name %s;\n", f.serverName())
	b.WriteString("    access_log off;\n")
	fmt.Fprintf(&b, "    location = %s {\n", f.location())
	b.WriteString("        default_type text/plain;\n")
	fmt.Fprintf(&b, "        return 200 \"%s\\n\";\n", st.line())
	b.WriteString("    }\n}\n")
	return []byte(b.String()), st
}
