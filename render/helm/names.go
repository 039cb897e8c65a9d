package helm

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/cutoverhq/cutover/service"
)

// routePath turns an input route path into a Gateway API PathPrefix value.
// API Gateway parameters ({id}, {proxy+}) and ALB wildcards (*, ?) cannot be
// expressed as a prefix: the path is cut before the first segment holding
// one, which widens the match and never narrows it, so no request the
// legacy route took is lost. changed reports that the path was widened or
// cleaned.
func routePath(p string) (out string, changed bool) {
	orig := p
	if p == "" || p == "$default" || p == "*" || p == "/*" {
		return "/", orig != "" && orig != "/"
	}
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	segs := strings.Split(p, "/")
	var kept []string
	for _, s := range segs[1:] {
		if s == "" || s == "." {
			continue
		}
		if s == ".." || strings.ContainsAny(s, "{}*?") || !validPathSegment(s) {
			// Cut at the first segment a prefix cannot hold.
			break
		}
		kept = append(kept, s)
	}
	out = "/" + strings.Join(kept, "/")
	return out, out != orig
}

// validPathSegment checks a segment against the characters Gateway API
// allows in a path value, and the escapes it forbids (%2f, %2F).
func validPathSegment(s string) bool {
	if strings.Contains(strings.ToLower(s), "%2f") {
		return false
	}
	return pathSegRE.MatchString(s)
}

var pathSegRE = regexp.MustCompile(`^(?:[-A-Za-z0-9._~!$&'()+,;=:@]|%[0-9a-fA-F]{2})+$`)

var httpMethods = map[string]bool{
	"GET": true, "HEAD": true, "POST": true, "PUT": true, "DELETE": true,
	"CONNECT": true, "OPTIONS": true, "TRACE": true, "PATCH": true,
}

// routeMethod returns the Gateway API method of an input method; "" for
// any (API Gateway ANY, "*", "") or one Gateway API cannot match.
func routeMethod(m string) (string, bool) {
	m = strings.ToUpper(strings.TrimSpace(m))
	if m == "" || m == "ANY" || m == "*" {
		return "", true
	}
	if httpMethods[m] {
		return m, true
	}
	return "", false
}

var hostnameRE = regexp.MustCompile(`^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)

// routeHost returns the Gateway API hostname of an input host: lowercase,
// without a port; ok is false when Gateway API cannot hold it (an IP
// address, a wildcard in the middle).
func routeHost(h string) (string, bool) {
	h = strings.ToLower(strings.TrimSpace(h))
	if i := strings.LastIndex(h, ":"); i >= 0 {
		if _, err := strconv.Atoi(h[i+1:]); err == nil {
			h = h[:i]
		}
	}
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 || !hostnameRE.MatchString(h) || isIP(h) {
		return "", false
	}
	return h, true
}

func isIP(h string) bool {
	for _, r := range h {
		if !(r >= '0' && r <= '9' || r == '.') {
			return false
		}
	}
	return true
}

// dnsLabel turns a name into a DNS-1123 label (volume names, route name
// suffixes), keeping it when it already is one.
func dnsLabel(s string) string {
	if service.ValidateName(s) == nil {
		return s
	}
	return service.SanitizeName(s)
}

var dataKeyRE = regexp.MustCompile(`[^-._a-zA-Z0-9]+`)

// dataKey turns a name into a ConfigMap or Secret data key
// ([-._a-zA-Z0-9]+).
func dataKey(s string) string {
	k := dataKeyRE.ReplaceAllString(s, "_")
	if k == "" || k == "." || k == ".." {
		k = "_" + k
	}
	if len(k) > 253 {
		k = k[:253]
	}
	return k
}

var envNameRE = regexp.MustCompile(`^[-._a-zA-Z][-._a-zA-Z0-9]*$`)

// validEnvName is Kubernetes' check of environment variable names.
func validEnvName(s string) bool { return envNameRE.MatchString(s) }

// portName returns a Kubernetes port name (IANA_SVC_NAME: at most 15
// characters, lowercase letters, digits and single inner hyphens, with a
// letter) for a port, unique among used.
func portName(p service.Port, preferHTTP bool, used map[string]bool) string {
	candidates := []string{}
	if n := portNameFrom(p.Name); n != "" {
		candidates = append(candidates, n, n+"-"+strconv.Itoa(int(p.ContainerPort)))
	}
	proto := strings.ToLower(p.Protocol)
	if proto == "" {
		proto = "tcp"
	}
	base := proto
	switch p.AppProtocol {
	case "http":
		base = "http"
	case "http2":
		base = "h2c"
	case "grpc":
		base = "grpc"
	default:
		if preferHTTP && proto == "tcp" {
			base = "http"
		}
	}
	candidates = append(candidates, base, base+"-"+strconv.Itoa(int(p.ContainerPort)))
	for _, c := range candidates {
		if len(c) <= 15 && validPortName(c) && !used[c] {
			used[c] = true
			return c
		}
	}
	for i := 2; ; i++ {
		c := "p" + strconv.Itoa(int(p.ContainerPort)) + "-" + strconv.Itoa(i)
		if !used[c] && len(c) <= 15 {
			used[c] = true
			return c
		}
	}
}

// portNameFrom makes an input port name a Kubernetes one when it can
// (metrics_port becomes metrics-port); "" when it cannot.
func portNameFrom(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	n := strings.TrimRight(b.String(), "-")
	if !validPortName(n) {
		return ""
	}
	return n
}

var portNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

func validPortName(s string) bool {
	if len(s) == 0 || len(s) > 15 || !portNameRE.MatchString(s) || strings.Contains(s, "--") {
		return false
	}
	return strings.IndexFunc(s, func(r rune) bool { return r >= 'a' && r <= 'z' }) >= 0
}

func sortedKeys[V any](m map[string]V) []string { return service.SortedKeys(m) }
