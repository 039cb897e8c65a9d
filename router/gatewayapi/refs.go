package gatewayapi

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Ref names one Service an HTTPRoute's backendRef points at: the legacy
// side (an ExternalName Service for the VMs, or a Service with manual
// Endpoints/EndpointSlices) or the new side (the converted workload's
// Service).
type Ref struct {
	// Name is the Service's name.
	Name string
	// Namespace is the Service's namespace; "" means the route's own
	// namespace, as in a backendRef without one.
	Namespace string
	// Port is the backendRef's port; zero matches a backendRef with any
	// port, which is enough while the rule names the Service only once.
	Port int32
}

func (r Ref) String() string {
	s := r.Name
	if r.Namespace != "" {
		s += "." + r.Namespace
	}
	if r.Port != 0 {
		s += ":" + strconv.Itoa(int(r.Port))
	}
	return s
}

// ParseRef reads a Service reference as a plan writes it: "name",
// "name:port", "name.namespace:port", an in-cluster DNS name
// ("name.namespace.svc.cluster.local:8080"), or such a name as a URL
// ("http://name.namespace.svc:8080/"), so that the addresses a plan
// already lists for probing name the backendRefs too.
func ParseRef(s string) (Ref, error) {
	in := s
	s = strings.TrimSpace(s)
	if i := strings.Index(s, "://"); i >= 0 {
		scheme := s[:i]
		if scheme != "http" && scheme != "https" {
			return Ref{}, fmt.Errorf("%q: scheme %q: want a Service name (name.namespace:port) or an http(s) URL of one", in, scheme)
		}
		s = s[i+3:]
		if j := strings.IndexAny(s, "/?#"); j >= 0 {
			s = s[:j]
		}
		if j := strings.LastIndex(s, "@"); j >= 0 {
			s = s[j+1:]
		}
	}
	if s == "" {
		return Ref{}, fmt.Errorf("%q: empty Service name", in)
	}
	var r Ref
	host := s
	if i := strings.LastIndex(s, ":"); i >= 0 {
		host = s[:i]
		p, err := strconv.Atoi(s[i+1:])
		if err != nil || p < 1 || p > 65535 {
			return Ref{}, fmt.Errorf("%q: port %q is not a number from 1 to 65535", in, s[i+1:])
		}
		r.Port = int32(p)
	}
	if host == "" {
		return Ref{}, fmt.Errorf("%q: empty Service name", in)
	}
	if net.ParseIP(strings.Trim(host, "[]")) != nil {
		return Ref{}, fmt.Errorf("%q is an IP address, not a Service: name the Service in front of it (an ExternalName Service, or one with manual Endpoints) in legacyRefs/newRefs", in)
	}
	parts := strings.Split(host, ".")
	r.Name = parts[0]
	if len(parts) > 1 {
		r.Namespace = parts[1]
	}
	if len(parts) > 2 && parts[2] != "svc" {
		return Ref{}, fmt.Errorf("%q does not name a Service: want name, name.namespace or name.namespace.svc[.cluster domain], with an optional :port", in)
	}
	// Service names are DNS-1035 labels: this refuses IP addresses and
	// host names outside the cluster with a message saying what is wanted.
	if errs := validation.IsDNS1035Label(r.Name); len(errs) > 0 {
		return Ref{}, fmt.Errorf("%q does not name a Service: %q %s", in, r.Name, strings.Join(errs, "; "))
	}
	if r.Namespace != "" {
		if errs := validation.IsDNS1123Label(r.Namespace); len(errs) > 0 {
			return Ref{}, fmt.Errorf("%q: namespace %q %s", in, r.Namespace, strings.Join(errs, "; "))
		}
	}
	return r, nil
}

// parseRefs parses one side's references; side names it in errors.
func parseRefs(side string, addrs []string) ([]Ref, error) {
	if len(addrs) == 0 {
		return nil, fmt.Errorf("no %s backendRef: set %sRefs or list the Service in spec.%s.addresses", side, side, side)
	}
	var out []Ref
	seen := map[Ref]bool{}
	for _, a := range addrs {
		r, err := ParseRef(a)
		if err != nil {
			return nil, fmt.Errorf("%s backendRef %w", side, err)
		}
		if seen[r] {
			return nil, fmt.Errorf("%s backendRef %s is listed twice", side, r)
		}
		seen[r] = true
		out = append(out, r)
	}
	return out, nil
}
