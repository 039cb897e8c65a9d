package http

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	nethttp "net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/cutoverhq/cutover/internal/golden"
)

// readRequest parses a testdata request: an HTTP/1.1 request written with
// plain newlines in its head.
func readRequest(t testing.TB, raw []byte) *nethttp.Request {
	t.Helper()
	r, err := parseRawRequest(raw)
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	return r
}

func parseRawRequest(raw []byte) (*nethttp.Request, error) {
	head, body, _ := bytes.Cut(raw, []byte("\n\n"))
	if i := bytes.Index(raw, []byte("\r\n\r\n")); i >= 0 {
		head, body = raw[:i], raw[i+4:]
	}
	head = bytes.ReplaceAll(bytes.ReplaceAll(head, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
	r, err := nethttp.ReadRequest(bufio.NewReader(io.MultiReader(bytes.NewReader(head), strings.NewReader("\r\n\r\n"), bytes.NewReader(body))))
	if err != nil {
		return nil, err
	}
	r.RemoteAddr = "203.0.113.7:51234"
	return r, nil
}

// caseOptions reads a case's route file: the route, then options.
func caseOptions(t testing.TB, dir string) (Route, EventOptions) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "route"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	r, err := ParseRoute(lines[0])
	if err != nil {
		t.Fatal(err)
	}
	opt := EventOptions{AccountID: "123456789012", APIID: "a1b2c3d4e5", TargetGroupARN: "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/orders/73e2d6bc24d8a067"}
	for _, l := range lines[1:] {
		switch f := strings.Fields(l); f[0] {
		case "multi-value":
			opt.MultiValue = true
		case "stage":
			opt.Stage = f[1]
			opt.StageVariables = map[string]string{"backend": "orders-" + f[1]}
		}
	}
	return r, opt
}

func fixedRequest(t testing.TB, r *nethttp.Request, route *Route) *Request {
	t.Helper()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	p := r.URL.Path
	if route.glob {
		p = r.URL.EscapedPath()
	}
	params, ok := route.match(r.Method, p)
	if !ok {
		t.Fatalf("route %s does not match %s %s", route.Key(), r.Method, p)
	}
	trace := r.Header.Get("X-Amzn-Trace-Id")
	if trace == "" {
		trace = "Root=1-66322b00-0123456789abcdef01234567"
	}
	return &Request{HTTP: r, Body: body, Route: route, Params: params, RequestID: "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
		TraceID: trace, Time: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC), SourceIP: sourceIP(r)}
}

// TestEvents: each testdata/events case's request becomes the event in
// event.json; the event also decodes into aws-lambda-go's type for its
// shape and carries the body back unchanged.
func TestEvents(t *testing.T) {
	dirs, _ := filepath.Glob("testdata/events/*")
	if len(dirs) == 0 {
		t.Fatal("no cases")
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			route, opt := caseOptions(t, dir)
			raw, err := os.ReadFile(filepath.Join(dir, "request.http"))
			if err != nil {
				t.Fatal(err)
			}
			req := fixedRequest(t, readRequest(t, raw), &route)
			ev, err := Event(req, opt)
			if err != nil {
				t.Fatal(err)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, ev, "", "  "); err != nil {
				t.Fatalf("event is not JSON: %v", err)
			}
			pretty.WriteByte('\n')
			golden.Assert(t, filepath.Join(dir, "event.json"), pretty.Bytes())
			if got := bodyOf(t, route.Shape, ev); !bytes.Equal(got, req.Body) {
				t.Errorf("body through the event = %q, want %q", got, req.Body)
			}
		})
	}
}

// bodyOf decodes an event with aws-lambda-go's types, as a Go function
// would, and returns its body.
func bodyOf(t testing.TB, shape Shape, ev []byte) []byte {
	t.Helper()
	var body string
	var b64 bool
	switch shape {
	case ShapeV1:
		var e events.APIGatewayProxyRequest
		if err := json.Unmarshal(ev, &e); err != nil {
			t.Fatalf("not an APIGatewayProxyRequest: %v", err)
		}
		body, b64 = e.Body, e.IsBase64Encoded
	case ShapeV2:
		var e events.APIGatewayV2HTTPRequest
		if err := json.Unmarshal(ev, &e); err != nil {
			t.Fatalf("not an APIGatewayV2HTTPRequest: %v", err)
		}
		body, b64 = e.Body, e.IsBase64Encoded
	case ShapeALB:
		var e events.ALBTargetGroupRequest
		if err := json.Unmarshal(ev, &e); err != nil {
			t.Fatalf("not an ALBTargetGroupRequest: %v", err)
		}
		body, b64 = e.Body, e.IsBase64Encoded
	}
	if !b64 {
		return []byte(body)
	}
	out, err := base64.StdEncoding.DecodeString(body)
	if err != nil {
		t.Fatalf("body is not base64: %v", err)
	}
	return out
}

// dumpResponse writes a translated response for a golden file.
func dumpResponse(resp *Response, err error) []byte {
	var b bytes.Buffer
	if err != nil {
		fmt.Fprintf(&b, "error: %v\n", err)
		return b.Bytes()
	}
	fmt.Fprintf(&b, "HTTP %d\n", resp.Status)
	keys := make([]string, 0, len(resp.Header))
	for k := range resp.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, v := range resp.Header[k] {
			fmt.Fprintf(&b, "%s: %s\n", k, v)
		}
	}
	b.WriteString("\n")
	if json.Valid(resp.Body) || isPrintable(resp.Body) {
		b.Write(resp.Body)
	} else {
		fmt.Fprintf(&b, "base64:%s", base64.StdEncoding.EncodeToString(resp.Body))
	}
	b.WriteString("\n")
	return b.Bytes()
}

func isPrintable(b []byte) bool {
	for _, c := range b {
		if c < 0x20 && c != '\n' && c != '\t' || c >= 0x7f {
			return false
		}
	}
	return true
}

// TestResponses: each testdata/responses case's function answer becomes
// the HTTP response in http.txt.
func TestResponses(t *testing.T) {
	dirs, _ := filepath.Glob("testdata/responses/*")
	if len(dirs) == 0 {
		t.Fatal("no cases")
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(dir, "shape"))
			if err != nil {
				t.Fatal(err)
			}
			f := strings.Fields(string(b))
			payload, err := os.ReadFile(filepath.Join(dir, "payload.json"))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := ParseResponse(Shape(f[0]), payload, len(f) > 1 && f[1] == "multi-value")
			golden.Assert(t, filepath.Join(dir, "http.txt"), dumpResponse(resp, err))
		})
	}
}

func TestRouteMatchingPrefersTheMostSpecific(t *testing.T) {
	var routes []Route
	for _, spec := range []string{"apigw-v1 ANY /{proxy+}", "apigw-v1 GET /orders/{id}", "apigw-v1 GET /orders/summary", "apigw-v1 POST /orders/{id}", "apigw-v2 ANY /orders/{id}/items/{item+}"} {
		r, err := ParseRoute(spec)
		if err != nil {
			t.Fatal(err)
		}
		routes = append(routes, r)
	}
	sortRoutes(routes)
	s := &Source{opt: Options{Routes: routes}}
	for _, c := range []struct{ method, path, want, params string }{
		{"GET", "/orders/summary", "GET /orders/summary", ""},
		{"GET", "/orders/42", "GET /orders/{id}", "id=42"},
		{"POST", "/orders/42", "POST /orders/{id}", "id=42"},
		{"DELETE", "/orders/42", "ANY /{proxy+}", "proxy=orders/42"},
		{"GET", "/orders/42/items/a/b", "ANY /orders/{id}/items/{item+}", "id=42 item=a/b"},
		{"GET", "/", "", ""},
	} {
		r, _ := nethttp.NewRequest(c.method, "http://x"+c.path, nil)
		route, params := s.route(r)
		got := ""
		if route != nil {
			got = route.Key()
		}
		var ps []string
		for _, k := range sortedKeys(params) {
			ps = append(ps, k+"="+params[k])
		}
		if got != c.want || strings.Join(ps, " ") != c.params {
			t.Errorf("%s %s: route %q params %v, want %q %q", c.method, c.path, got, ps, c.want, c.params)
		}
	}
}

func TestParseRouteRefusesBadSpecs(t *testing.T) {
	for _, spec := range []string{"", "apigw-v1 GET", "apigw-v3 GET /", "apigw-v1 GET orders", "apigw-v1 GET /{proxy+}/x", "apigw-v1 GET /a{b}", "alb $default", "apigw-v1 G3T /", "alb GET /[a"} {
		if _, err := ParseRoute(spec); err == nil {
			t.Errorf("%q: no error", spec)
		}
	}
}
