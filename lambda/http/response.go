package http

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	nethttp "net/http"
	"strconv"
	"strings"
)

// Response is the HTTP answer a function's response payload stands for.
type Response struct {
	Status int
	Header nethttp.Header
	Body   []byte
}

// ErrMalformed says a function's answer is not a response of its event
// shape; API Gateway and ALB answer such with a 502 (HTTP API with 500).
var ErrMalformed = errors.New("malformed Lambda proxy response")

// proxyResponse is the union of the three shapes' response fields. Each
// field is raw so a wrong type is reported, not guessed at.
type proxyResponse struct {
	StatusCode        json.RawMessage `json:"statusCode"`
	StatusDescription json.RawMessage `json:"statusDescription"`
	Headers           json.RawMessage `json:"headers"`
	MultiValueHeaders json.RawMessage `json:"multiValueHeaders"`
	Cookies           json.RawMessage `json:"cookies"`
	Body              json.RawMessage `json:"body"`
	IsBase64Encoded   json.RawMessage `json:"isBase64Encoded"`
}

// ParseResponse translates a function's answer into the HTTP response
// API Gateway (REST or HTTP API) or an ALB would send for it.
func ParseResponse(shape Shape, payload []byte, multiValue bool) (*Response, error) {
	trimmed := bytes.TrimSpace(payload)
	if shape == ShapeV2 {
		// An HTTP API takes any JSON without a statusCode as the body of
		// a 200 application/json response.
		if !json.Valid(trimmed) {
			return nil, fmt.Errorf("%w: the function's answer is not JSON", ErrMalformed)
		}
		var probe map[string]json.RawMessage
		if len(trimmed) == 0 || trimmed[0] != '{' || json.Unmarshal(trimmed, &probe) != nil || probe["statusCode"] == nil {
			h := nethttp.Header{"Content-Type": {"application/json"}}
			return &Response{Status: 200, Header: h, Body: bytes.Clone(payload)}, nil
		}
	}
	var pr proxyResponse
	if err := json.Unmarshal(trimmed, &pr); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	status, err := statusCode(pr.StatusCode)
	if err != nil {
		return nil, err
	}
	resp := &Response{Status: status, Header: nethttp.Header{}}

	var single map[string]any
	if err := nullOr(pr.Headers, &single, "headers"); err != nil {
		return nil, err
	}
	var multi map[string][]any
	if err := nullOr(pr.MultiValueHeaders, &multi, "multiValueHeaders"); err != nil {
		return nil, err
	}
	switch shape {
	case ShapeV1:
		// API Gateway merges both; a name in multiValueHeaders takes its
		// values from there.
		addMulti(resp.Header, multi)
		for k, v := range single {
			if resp.Header.Values(k) == nil {
				resp.Header.Add(k, scalar(v))
			}
		}
	case ShapeV2:
		for k, v := range single {
			resp.Header.Add(k, scalar(v))
		}
		var cookies []string
		if err := nullOr(pr.Cookies, &cookies, "cookies"); err != nil {
			return nil, err
		}
		for _, c := range cookies {
			resp.Header.Add("Set-Cookie", c)
		}
	case ShapeALB:
		// A target group uses one or the other, as it is configured.
		if multiValue {
			addMulti(resp.Header, multi)
		} else {
			for k, v := range single {
				resp.Header.Add(k, scalar(v))
			}
		}
	}
	for _, k := range []string{"Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive", "Upgrade", "Trailer"} {
		// Framing is the server's, not the function's.
		resp.Header.Del(k)
	}

	var body string
	if len(pr.Body) > 0 && string(pr.Body) != "null" {
		if err := json.Unmarshal(pr.Body, &body); err != nil {
			return nil, fmt.Errorf("%w: body is not a string", ErrMalformed)
		}
	}
	var b64 bool
	if len(pr.IsBase64Encoded) > 0 && string(pr.IsBase64Encoded) != "null" {
		if err := json.Unmarshal(pr.IsBase64Encoded, &b64); err != nil {
			return nil, fmt.Errorf("%w: isBase64Encoded is not a boolean", ErrMalformed)
		}
	}
	if b64 {
		raw, err := base64.StdEncoding.DecodeString(body)
		if err != nil {
			return nil, fmt.Errorf("%w: body is not base64: %v", ErrMalformed, err)
		}
		resp.Body = raw
	} else {
		resp.Body = []byte(body)
	}
	return resp, nil
}

func statusCode(raw json.RawMessage) (int, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, fmt.Errorf("%w: no statusCode", ErrMalformed)
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		// A string "200" is accepted, as API Gateway accepts it.
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return 0, fmt.Errorf("%w: statusCode is not a number", ErrMalformed)
		}
		n = json.Number(s)
	}
	code, err := strconv.Atoi(string(n))
	if err != nil || code < 100 || code > 599 {
		return 0, fmt.Errorf("%w: statusCode %s is not an HTTP status", ErrMalformed, n)
	}
	return code, nil
}

func nullOr(raw json.RawMessage, v any, field string) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrMalformed, field, err)
	}
	return nil
}

func addMulti(h nethttp.Header, multi map[string][]any) {
	for _, k := range sortedKeys(multi) {
		for _, v := range multi[k] {
			h.Add(k, scalar(v))
		}
	}
}

// scalar is a header value as API Gateway writes one: numbers and
// booleans as their JSON text.
func scalar(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return ""
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// streamPrelude is the head of a streamed HTTP response: JSON with the
// status, headers and cookies, then eight NUL bytes, then the body.
type streamPrelude struct {
	StatusCode        json.RawMessage  `json:"statusCode"`
	Headers           map[string]any   `json:"headers"`
	MultiValueHeaders map[string][]any `json:"multiValueHeaders"`
	Cookies           []string         `json:"cookies"`
}

// preludeSeparator ends a streamed response's prelude.
var preludeSeparator = []byte{0, 0, 0, 0, 0, 0, 0, 0}

// parsePrelude reads a streamed response's prelude into a status and
// headers. A missing statusCode is 200, as Lambda's streaming does.
func parsePrelude(b []byte) (int, nethttp.Header, error) {
	var p streamPrelude
	if err := json.Unmarshal(bytes.TrimSpace(b), &p); err != nil {
		return 0, nil, fmt.Errorf("%w: stream prelude: %v", ErrMalformed, err)
	}
	status := 200
	if len(p.StatusCode) > 0 && string(p.StatusCode) != "null" {
		s, err := statusCode(p.StatusCode)
		if err != nil {
			return 0, nil, err
		}
		status = s
	}
	h := nethttp.Header{}
	addMulti(h, p.MultiValueHeaders)
	for k, v := range p.Headers {
		if h.Values(k) == nil {
			h.Add(k, scalar(v))
		}
	}
	for _, c := range p.Cookies {
		h.Add("Set-Cookie", c)
	}
	for _, k := range []string{"Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive", "Upgrade", "Trailer"} {
		h.Del(k)
	}
	return status, h, nil
}

// errorBody is what API Gateway or an ALB answers when it has no answer
// from the function.
func errorBody(shape Shape, status int) (string, []byte) {
	if shape == ShapeALB {
		text := strconv.Itoa(status) + " " + nethttp.StatusText(status)
		return "text/html", []byte("<html>\r\n<head><title>" + text + "</title></head>\r\n<body>\r\n<center><h1>" + text + "</h1></center>\r\n</body>\r\n</html>\r\n")
	}
	msg := map[int]string{
		400: "Bad Request",
		404: "Not Found",
		413: "Request Entity Too Large",
		429: "Too Many Requests",
		500: "Internal Server Error",
		502: "Internal server error",
		503: "Service Unavailable",
		504: "Endpoint request timed out",
	}[status]
	if msg == "" {
		msg = nethttp.StatusText(status)
	}
	if shape == ShapeV2 && status == 500 {
		msg = "Internal Server Error"
	}
	b, _ := json.Marshal(map[string]string{"message": msg})
	return "application/json", b
}

// validHeader says whether k can be a header name on the wire.
func validHeader(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("()<>@,;:\\\"/[]?={}", c) >= 0 {
			return false
		}
	}
	return true
}
