package http

import (
	"fmt"
	"path"
	"sort"
	"strings"
)

// Shape is the Lambda event shape an HTTP route produces.
type Shape string

const (
	// ShapeV1 is API Gateway's REST API proxy event (payload format 1.0,
	// aws-lambda-go's events.APIGatewayProxyRequest).
	ShapeV1 Shape = "apigw-v1"
	// ShapeV2 is the HTTP API and function URL event (payload format 2.0,
	// events.APIGatewayV2HTTPRequest).
	ShapeV2 Shape = "apigw-v2"
	// ShapeALB is an Application Load Balancer target event
	// (events.ALBTargetGroupRequest).
	ShapeALB Shape = "alb"
)

// Route maps requests to one event shape: `--route "<shape> <METHOD>
// <path>"`, the contract source/lambda writes.
type Route struct {
	Shape Shape
	// Method is the HTTP method, upper case. Empty: any (ANY).
	Method string
	// Template is the path as the trigger had it: API Gateway's
	// /orders/{id} and /{proxy+}, an ALB glob /static/*, or "$default"
	// (HTTP API's catch-all route).
	Template string

	segs  []seg
	glob  bool
	order int
}

type segKind int

const (
	segGreedy  segKind = iota // {name+}: the rest of the path
	segParam                  // {name}: one segment
	segLiteral                // text
)

type seg struct {
	kind segKind
	text string // the literal, or the parameter's name
}

// ParseRoute reads "<shape> <METHOD> <path>" (or "<shape> $default").
func ParseRoute(spec string) (Route, error) {
	f := strings.Fields(spec)
	if len(f) == 2 && f[1] == "$default" {
		f = []string{f[0], "ANY", "$default"}
	}
	if len(f) != 3 {
		return Route{}, fmt.Errorf("route %q: want \"<shape> <METHOD> <path>\", e.g. \"apigw-v1 POST /orders/{id}\"", spec)
	}
	r := Route{Shape: Shape(f[0]), Method: strings.ToUpper(f[1]), Template: f[2]}
	switch r.Shape {
	case ShapeV1, ShapeV2, ShapeALB:
	default:
		return Route{}, fmt.Errorf("route %q: event shape %q is not apigw-v1, apigw-v2 or alb", spec, f[0])
	}
	if r.Method == "ANY" || r.Method == "*" || r.Method == "X-AMAZON-APIGATEWAY-ANY-METHOD" {
		r.Method = ""
	}
	for _, c := range r.Method {
		if c < 'A' || c > 'Z' {
			return Route{}, fmt.Errorf("route %q: method %q is not an HTTP method", spec, f[1])
		}
	}
	if r.Template == "$default" {
		if r.Shape != ShapeV2 {
			return Route{}, fmt.Errorf("route %q: $default is an HTTP API (apigw-v2) route", spec)
		}
		r.segs = []seg{{kind: segGreedy}}
		return r, nil
	}
	if !strings.HasPrefix(r.Template, "/") {
		return Route{}, fmt.Errorf("route %q: the path must start with /", spec)
	}
	if r.Shape == ShapeALB {
		r.glob = true
		if _, err := path.Match(r.Template, "/"); err != nil {
			return Route{}, fmt.Errorf("route %q: bad path pattern: %v", spec, err)
		}
		return r, nil
	}
	parts := splitPath(r.Template)
	for i, p := range parts {
		switch {
		case strings.HasPrefix(p, "{") && strings.HasSuffix(p, "+}"):
			if i != len(parts)-1 {
				return Route{}, fmt.Errorf("route %q: a greedy {name+} must be the last segment", spec)
			}
			r.segs = append(r.segs, seg{segGreedy, p[1 : len(p)-2]})
		case strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}"):
			name := p[1 : len(p)-1]
			if name == "" || strings.ContainsAny(name, "{}") {
				return Route{}, fmt.Errorf("route %q: bad parameter %q", spec, p)
			}
			r.segs = append(r.segs, seg{segParam, name})
		case strings.ContainsAny(p, "{}"):
			return Route{}, fmt.Errorf("route %q: a parameter must be a whole segment: %q", spec, p)
		default:
			r.segs = append(r.segs, seg{segLiteral, p})
		}
	}
	return r, nil
}

func splitPath(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// Key is the route as API Gateway names it: routeKey "POST /orders/{id}",
// "ANY /{proxy+}" or "$default".
func (r *Route) Key() string {
	if r.Template == "$default" {
		return "$default"
	}
	m := r.Method
	if m == "" {
		m = "ANY"
	}
	return m + " " + r.Template
}

// match reports whether the route takes method and the (decoded) path,
// with its path parameters.
func (r *Route) match(method, p string) (map[string]string, bool) {
	if r.Method != "" && r.Method != method {
		return nil, false
	}
	if r.glob {
		ok, _ := path.Match(r.Template, p)
		if !ok && strings.HasSuffix(r.Template, "*") {
			// An ALB * crosses slashes, path.Match's does not.
			ok = strings.HasPrefix(p, strings.TrimSuffix(r.Template, "*"))
		}
		return nil, ok
	}
	parts := splitPath(p)
	var params map[string]string
	set := func(k, v string) {
		if params == nil {
			params = map[string]string{}
		}
		params[k] = v
	}
	for i, s := range r.segs {
		if s.kind == segGreedy {
			if i >= len(parts) {
				// {proxy+} needs a segment; $default takes the root too.
				return params, r.Template == "$default"
			}
			if s.text != "" {
				set(s.text, strings.Join(parts[i:], "/"))
			}
			return params, true
		}
		if i >= len(parts) {
			return nil, false
		}
		switch s.kind {
		case segLiteral:
			if parts[i] != s.text {
				return nil, false
			}
		case segParam:
			set(s.text, parts[i])
		}
	}
	if len(parts) != len(r.segs) {
		return nil, false
	}
	return params, true
}

// sortRoutes orders routes as API Gateway chooses between them: the one
// with more literal segments first, a parameter before a greedy path, a
// route for the method before ANY; otherwise as given.
func sortRoutes(routes []Route) {
	for i := range routes {
		routes[i].order = i
	}
	sort.SliceStable(routes, func(i, j int) bool {
		a, b := &routes[i], &routes[j]
		for k := 0; k < len(a.segs) && k < len(b.segs); k++ {
			if a.segs[k].kind != b.segs[k].kind {
				return a.segs[k].kind > b.segs[k].kind
			}
		}
		if len(a.segs) != len(b.segs) && !a.glob && !b.glob {
			return len(a.segs) > len(b.segs)
		}
		if (a.Method == "") != (b.Method == "") {
			return a.Method != ""
		}
		if a.glob && b.glob {
			return len(a.Template) > len(b.Template)
		}
		return a.order < b.order
	})
}
