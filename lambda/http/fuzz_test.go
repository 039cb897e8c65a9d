package http

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

// FuzzEvent: any request the HTTP server would accept becomes, for every
// shape, an event that is JSON, decodes into aws-lambda-go's type and
// carries the body unchanged.
func FuzzEvent(f *testing.F) {
	dirs, _ := filepath.Glob("testdata/events/*/request.http")
	for _, d := range dirs {
		b, err := os.ReadFile(d)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, "/{proxy+}")
	}
	f.Add([]byte("GET /a%zz?%%=%&x=%ff HTTP/1.1\r\nHost: \r\nCookie: ;;=\r\n\r\n"), "/{a}/{b+}")
	f.Fuzz(func(t *testing.T, raw []byte, template string) {
		r, err := parseRawRequest(raw)
		if err != nil {
			return
		}
		for _, spec := range []string{"apigw-v1 ANY " + template, "apigw-v2 ANY " + template, "alb ANY " + template, "apigw-v2 $default"} {
			route, err := ParseRoute(spec)
			if err != nil {
				continue
			}
			body := make([]byte, 0)
			if r.Body != nil {
				var b bytes.Buffer
				_, _ = b.ReadFrom(r.Body)
				body = b.Bytes()
				r.Body = http0(body)
			}
			p := r.URL.Path
			if route.glob {
				p = r.URL.EscapedPath()
			}
			params, _ := route.match(r.Method, p)
			req := &Request{HTTP: r, Body: body, Route: &route, Params: params, RequestID: "id", TraceID: "Root=1-0-0", SourceIP: sourceIP(r)}
			ev, err := Event(req, EventOptions{})
			if err != nil {
				t.Fatalf("%s: %v", spec, err)
			}
			if !json.Valid(ev) {
				t.Fatalf("%s: event is not JSON: %s", spec, ev)
			}
			if got := bodyOf(t, route.Shape, ev); !bytes.Equal(got, body) {
				t.Fatalf("%s: body %q came back %q", spec, body, got)
			}
		}
	})
}

func http0(b []byte) *readCloser { return &readCloser{bytes.NewReader(b)} }

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

var shapes = []Shape{ShapeV1, ShapeV2, ShapeALB}

// FuzzParseResponse: no function answer panics the translation, and an
// accepted one has a real status; an HTTP API answer without statusCode
// is passed through as the body.
func FuzzParseResponse(f *testing.F) {
	dirs, _ := filepath.Glob("testdata/responses/*/payload.json")
	for _, d := range dirs {
		b, err := os.ReadFile(d)
		if err != nil {
			f.Fatal(err)
		}
		for i := range shapes {
			f.Add(uint8(i), b, false)
		}
	}
	f.Add(uint8(2), []byte(`{"statusCode":1e3,"multiValueHeaders":{"a":[1,null,{"x":1}]}}`), true)
	src, err := NewSource(Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, which uint8, payload []byte, multi bool) {
		shape := shapes[int(which)%len(shapes)]
		resp, err := ParseResponse(shape, payload, multi)
		if err != nil {
			return
		}
		if resp.Status < 100 || resp.Status > 599 {
			t.Fatalf("status %d", resp.Status)
		}
		// It can be written to a real response without a panic.
		w := httptest.NewRecorder()
		src.write(w, shape, resp)
		if w.Code != resp.Status || !bytes.Equal(w.Body.Bytes(), resp.Body) {
			t.Fatalf("written %d %q, want %d %q", w.Code, w.Body.Bytes(), resp.Status, resp.Body)
		}
	})
}

// FuzzStreamPrelude: a streamed answer cut into any chunks gives the same
// head and body as in one piece, or a malformed-response error; never a
// panic.
func FuzzStreamPrelude(f *testing.F) {
	f.Add([]byte("{\"statusCode\":201,\"headers\":{\"a\":\"b\"},\"cookies\":[\"c=d\"]}\x00\x00\x00\x00\x00\x00\x00\x00body"), 3)
	f.Add([]byte("{}\x00\x00\x00\x00\x00\x00\x00\x00"), 1)
	f.Add([]byte("not json\x00\x00\x00\x00\x00\x00\x00\x00x"), 5)
	f.Fuzz(func(t *testing.T, stream []byte, cut int) {
		whole := httptest.NewRecorder()
		a := &streamWriter{w: whole}
		a.StartStream(integrationType)
		_, _ = a.Write(stream)

		pieces := httptest.NewRecorder()
		b := &streamWriter{w: pieces}
		b.StartStream(integrationType)
		if cut <= 0 {
			cut = 1
		}
		for i := 0; i < len(stream); i += cut {
			_, _ = b.Write(stream[i:min(i+cut, len(stream))])
		}
		if (a.err == nil) != (b.err == nil) || a.headerSent != b.headerSent {
			t.Fatalf("whole: err %v sent %v; pieces: err %v sent %v", a.err, a.headerSent, b.err, b.headerSent)
		}
		if a.headerSent && (whole.Code != pieces.Code || !bytes.Equal(whole.Body.Bytes(), pieces.Body.Bytes())) {
			t.Fatalf("whole %d %q, pieces %d %q", whole.Code, whole.Body.Bytes(), pieces.Code, pieces.Body.Bytes())
		}
	})
}

// FuzzRoute: any --route either is refused or matches any path without a
// panic, and a match of a template's own path binds every parameter.
func FuzzRoute(f *testing.F) {
	for _, s := range []string{"apigw-v1 POST /payments/{paymentId}/authorize", "apigw-v2 ANY /{proxy+}", "alb GET /static/*", "apigw-v2 $default", "apigw-v1 GET /a/{b}/c/{d+}"} {
		f.Add(s, "/payments/p1/authorize")
	}
	f.Fuzz(func(t *testing.T, spec, path string) {
		r, err := ParseRoute(spec)
		if err != nil {
			return
		}
		_ = r.Key()
		params, ok := r.match(r.Method, path)
		if ok && !r.glob {
			for _, s := range r.segs {
				if s.kind == segParam {
					if _, bound := params[s.text]; !bound {
						t.Fatalf("%s matched %q without binding {%s}", spec, path, s.text)
					}
				}
			}
		}
		sortRoutes([]Route{r, r})
	})
}
