package http

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"mime"
	"net"
	nethttp "net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Request is one HTTP request as the event builders see it: the request,
// its whole body and what serve knows around it.
type Request struct {
	HTTP      *nethttp.Request
	Body      []byte
	Route     *Route
	Params    map[string]string
	RequestID string
	TraceID   string
	Time      time.Time
	// SourceIP is the client's address: the last X-Forwarded-For hop (the
	// one the proxy in front of serve added), else the peer's.
	SourceIP string
}

// EventOptions are the parts of an event that come from the API, not the
// request.
type EventOptions struct {
	// AccountID is requestContext.accountId. Empty: "000000000000".
	AccountID string
	// APIID is requestContext.apiId. Empty: "cutover".
	APIID string
	// Stage is requestContext.stage. Empty: "$default". A REST API's
	// requestContext.path starts with it unless it is $default.
	Stage string
	// StageVariables are the stage's variables. Nil: null in the event.
	StageVariables map[string]string
	// TargetGroupARN is requestContext.elb.targetGroupArn of ALB events.
	// Empty: a made-up ARN in the function's region and account.
	TargetGroupARN string
	// MultiValue makes ALB events carry multiValueHeaders and
	// multiValueQueryStringParameters, as a target group with
	// multi-value headers on does. False: headers and
	// queryStringParameters with the last value of each.
	MultiValue bool
	// BinaryTypes are the media types a REST API passes base64-encoded
	// (its binaryMediaTypes, "*/*" for all). Nil: only bodies that are
	// not UTF-8 text are.
	BinaryTypes []string
}

// Event builds the event the route's shape gives the function.
func Event(req *Request, opt EventOptions) ([]byte, error) {
	switch req.Route.Shape {
	case ShapeV1:
		return marshal(eventV1(req, opt))
	case ShapeALB:
		return marshal(eventALB(req, opt))
	default:
		return marshal(eventV2(req, opt))
	}
}

func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	// API Gateway does not escape <, > and & in events.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// The event types below follow what API Gateway and ALB send, field by
// field, including which fields are null and which are left out, since
// functions test for both (Node's event.body === null).

type v1Event struct {
	Resource                        string              `json:"resource"`
	Path                            string              `json:"path"`
	HTTPMethod                      string              `json:"httpMethod"`
	Headers                         map[string]string   `json:"headers"`
	MultiValueHeaders               map[string][]string `json:"multiValueHeaders"`
	QueryStringParameters           map[string]string   `json:"queryStringParameters"`
	MultiValueQueryStringParameters map[string][]string `json:"multiValueQueryStringParameters"`
	PathParameters                  map[string]string   `json:"pathParameters"`
	StageVariables                  map[string]string   `json:"stageVariables"`
	RequestContext                  v1Context           `json:"requestContext"`
	Body                            *string             `json:"body"`
	IsBase64Encoded                 bool                `json:"isBase64Encoded"`
}

type v1Context struct {
	AccountID         string     `json:"accountId"`
	APIID             string     `json:"apiId"`
	DomainName        string     `json:"domainName"`
	DomainPrefix      string     `json:"domainPrefix"`
	ExtendedRequestID string     `json:"extendedRequestId"`
	HTTPMethod        string     `json:"httpMethod"`
	Identity          v1Identity `json:"identity"`
	Path              string     `json:"path"`
	Protocol          string     `json:"protocol"`
	RequestID         string     `json:"requestId"`
	RequestTime       string     `json:"requestTime"`
	RequestTimeEpoch  int64      `json:"requestTimeEpoch"`
	ResourceID        string     `json:"resourceId"`
	ResourcePath      string     `json:"resourcePath"`
	Stage             string     `json:"stage"`
	Authorizer        any        `json:"authorizer"`
}

// v1Identity has the caller fields API Gateway fills from IAM, Cognito
// and API keys; nothing in front of serve checks those, so they are null.
type v1Identity struct {
	AccessKey                     *string `json:"accessKey"`
	AccountID                     *string `json:"accountId"`
	Caller                        *string `json:"caller"`
	CognitoAuthenticationProvider *string `json:"cognitoAuthenticationProvider"`
	CognitoAuthenticationType     *string `json:"cognitoAuthenticationType"`
	CognitoIdentityID             *string `json:"cognitoIdentityId"`
	CognitoIdentityPoolID         *string `json:"cognitoIdentityPoolId"`
	PrincipalOrgID                *string `json:"principalOrgId"`
	SourceIP                      string  `json:"sourceIp"`
	User                          *string `json:"user"`
	UserAgent                     string  `json:"userAgent"`
	UserArn                       *string `json:"userArn"`
	APIKey                        *string `json:"apiKey"`
	APIKeyID                      *string `json:"apiKeyId"`
	ClientCert                    any     `json:"clientCert"`
}

func eventV1(req *Request, opt EventOptions) v1Event {
	r := req.HTTP
	stage := orDefault(opt.Stage, "$default")
	single, multi := headersV1(req)
	mq := queryDecoded(r.URL.RawQuery)
	ev := v1Event{
		Resource:          req.Route.Template,
		Path:              r.URL.Path,
		HTTPMethod:        r.Method,
		Headers:           single,
		MultiValueHeaders: multi,
		StageVariables:    opt.StageVariables,
		PathParameters:    req.Params,
	}
	if len(mq) > 0 {
		ev.MultiValueQueryStringParameters = mq
		ev.QueryStringParameters = map[string]string{}
		for k, v := range mq {
			ev.QueryStringParameters[k] = v[len(v)-1]
		}
	}
	if len(req.Body) > 0 {
		body, b64 := encodeBody(req.Body, r.Header, opt.BinaryTypes, true)
		ev.Body, ev.IsBase64Encoded = &body, b64
	}
	host := hostOnly(r.Host)
	ctxPath := r.URL.Path
	if stage != "$default" {
		ctxPath = "/" + stage + ctxPath
	}
	ev.RequestContext = v1Context{
		AccountID:         orDefault(opt.AccountID, "000000000000"),
		APIID:             orDefault(opt.APIID, "cutover"),
		DomainName:        host,
		DomainPrefix:      prefix(host),
		ExtendedRequestID: req.RequestID,
		HTTPMethod:        r.Method,
		Identity:          v1Identity{SourceIP: req.SourceIP, UserAgent: r.UserAgent()},
		Path:              ctxPath,
		Protocol:          r.Proto,
		RequestID:         req.RequestID,
		RequestTime:       req.Time.UTC().Format("02/Jan/2006:15:04:05 -0700"),
		RequestTimeEpoch:  req.Time.UnixMilli(),
		ResourceID:        resourceID(req.Route),
		ResourcePath:      req.Route.Template,
		Stage:             stage,
	}
	return ev
}

type v2Event struct {
	Version               string            `json:"version"`
	RouteKey              string            `json:"routeKey"`
	RawPath               string            `json:"rawPath"`
	RawQueryString        string            `json:"rawQueryString"`
	Cookies               []string          `json:"cookies,omitempty"`
	Headers               map[string]string `json:"headers"`
	QueryStringParameters map[string]string `json:"queryStringParameters,omitempty"`
	PathParameters        map[string]string `json:"pathParameters,omitempty"`
	StageVariables        map[string]string `json:"stageVariables,omitempty"`
	RequestContext        v2Context         `json:"requestContext"`
	Body                  *string           `json:"body,omitempty"`
	IsBase64Encoded       bool              `json:"isBase64Encoded"`
}

type v2Context struct {
	AccountID    string `json:"accountId"`
	APIID        string `json:"apiId"`
	DomainName   string `json:"domainName"`
	DomainPrefix string `json:"domainPrefix"`
	HTTP         v2HTTP `json:"http"`
	RequestID    string `json:"requestId"`
	RouteKey     string `json:"routeKey"`
	Stage        string `json:"stage"`
	Time         string `json:"time"`
	TimeEpoch    int64  `json:"timeEpoch"`
}

type v2HTTP struct {
	Method    string `json:"method"`
	Path      string `json:"path"`
	Protocol  string `json:"protocol"`
	SourceIP  string `json:"sourceIp"`
	UserAgent string `json:"userAgent"`
}

func eventV2(req *Request, opt EventOptions) v2Event {
	r := req.HTTP
	headers := map[string]string{}
	var cookies []string
	for k, vs := range allHeaders(req) {
		lk := strings.ToLower(k)
		if lk == "cookie" {
			for _, v := range vs {
				for _, c := range strings.Split(v, ";") {
					if c = strings.TrimSpace(c); c != "" {
						cookies = append(cookies, c)
					}
				}
			}
			continue
		}
		// HTTP APIs join repeated headers with commas.
		headers[lk] = strings.Join(vs, ",")
	}
	ev := v2Event{
		Version:        "2.0",
		RouteKey:       req.Route.Key(),
		RawPath:        r.URL.EscapedPath(),
		RawQueryString: r.URL.RawQuery,
		Cookies:        cookies,
		Headers:        headers,
		PathParameters: req.Params,
		StageVariables: opt.StageVariables,
	}
	if mq := queryDecoded(r.URL.RawQuery); len(mq) > 0 {
		ev.QueryStringParameters = map[string]string{}
		for k, v := range mq {
			ev.QueryStringParameters[k] = strings.Join(v, ",")
		}
	}
	if len(req.Body) > 0 {
		body, b64 := encodeBody(req.Body, r.Header, nil, false)
		ev.Body, ev.IsBase64Encoded = &body, b64
	}
	host := hostOnly(r.Host)
	ev.RequestContext = v2Context{
		AccountID:    orDefault(opt.AccountID, "000000000000"),
		APIID:        orDefault(opt.APIID, "cutover"),
		DomainName:   host,
		DomainPrefix: prefix(host),
		HTTP: v2HTTP{
			Method:    r.Method,
			Path:      r.URL.Path,
			Protocol:  r.Proto,
			SourceIP:  req.SourceIP,
			UserAgent: r.UserAgent(),
		},
		RequestID: req.RequestID,
		RouteKey:  req.Route.Key(),
		Stage:     orDefault(opt.Stage, "$default"),
		Time:      req.Time.UTC().Format("02/Jan/2006:15:04:05 -0700"),
		TimeEpoch: req.Time.UnixMilli(),
	}
	return ev
}

type albEvent struct {
	RequestContext                  albContext          `json:"requestContext"`
	HTTPMethod                      string              `json:"httpMethod"`
	Path                            string              `json:"path"`
	QueryStringParameters           map[string]string   `json:"queryStringParameters,omitempty"`
	MultiValueQueryStringParameters map[string][]string `json:"multiValueQueryStringParameters,omitempty"`
	Headers                         map[string]string   `json:"headers,omitempty"`
	MultiValueHeaders               map[string][]string `json:"multiValueHeaders,omitempty"`
	Body                            string              `json:"body"`
	IsBase64Encoded                 bool                `json:"isBase64Encoded"`
}

type albContext struct {
	ELB struct {
		TargetGroupARN string `json:"targetGroupArn"`
	} `json:"elb"`
}

func eventALB(req *Request, opt EventOptions) albEvent {
	r := req.HTTP
	ev := albEvent{HTTPMethod: r.Method, Path: r.URL.EscapedPath()}
	ev.RequestContext.ELB.TargetGroupARN = opt.TargetGroupARN
	hs := allHeaders(req)
	// An ALB passes the query as it came, without decoding it.
	q := queryRaw(r.URL.RawQuery)
	if opt.MultiValue {
		ev.MultiValueHeaders = map[string][]string{}
		for k, vs := range hs {
			lk := strings.ToLower(k)
			ev.MultiValueHeaders[lk] = append(ev.MultiValueHeaders[lk], vs...)
		}
		// An ALB sends the key even with no query.
		ev.MultiValueQueryStringParameters = q
		if ev.MultiValueQueryStringParameters == nil {
			ev.MultiValueQueryStringParameters = map[string][]string{}
		}
	} else {
		ev.Headers = map[string]string{}
		for k, vs := range hs {
			ev.Headers[strings.ToLower(k)] = vs[len(vs)-1]
		}
		ev.QueryStringParameters = map[string]string{}
		for k, vs := range q {
			ev.QueryStringParameters[k] = vs[len(vs)-1]
		}
	}
	if len(req.Body) > 0 {
		ev.Body, ev.IsBase64Encoded = encodeBody(req.Body, r.Header, nil, false)
	}
	return ev
}

// allHeaders are the request's headers as the API passes them on: with
// Host, and the X-Forwarded-* and X-Amzn-Trace-Id headers API Gateway and
// ALB add when the request did not bring them.
func allHeaders(req *Request) nethttp.Header {
	r := req.HTTP
	h := r.Header.Clone()
	if h == nil {
		h = nethttp.Header{}
	}
	h.Del("Content-Length")
	if len(req.Body) > 0 || r.ContentLength > 0 {
		h["Content-Length"] = []string{strconv.Itoa(len(req.Body))}
	}
	if r.Host != "" {
		h["Host"] = []string{r.Host}
	}
	if h.Get("X-Forwarded-For") == "" && req.SourceIP != "" {
		h["X-Forwarded-For"] = []string{req.SourceIP}
	}
	if h.Get("X-Forwarded-Proto") == "" {
		proto := "http"
		if r.TLS != nil {
			proto = "https"
		}
		h["X-Forwarded-Proto"] = []string{proto}
	}
	if h.Get("X-Forwarded-Port") == "" {
		if p := localPort(r); p != "" {
			h["X-Forwarded-Port"] = []string{p}
		}
	}
	if h.Get("X-Amzn-Trace-Id") == "" && req.TraceID != "" {
		h["X-Amzn-Trace-Id"] = []string{req.TraceID}
	}
	return h
}

// headersV1 are a REST API's headers: the last value of each, and all.
func headersV1(req *Request) (map[string]string, map[string][]string) {
	hs := allHeaders(req)
	single := make(map[string]string, len(hs))
	multi := make(map[string][]string, len(hs))
	for k, vs := range hs {
		single[k] = vs[len(vs)-1]
		multi[k] = vs
	}
	return single, multi
}

// queryDecoded splits a query string into decoded names and values, in
// order; a part that does not decode is kept as it came.
func queryDecoded(raw string) map[string][]string {
	if raw == "" {
		return nil
	}
	out := map[string][]string{}
	for _, part := range strings.Split(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		out[unescape(k)] = append(out[unescape(k)], unescape(v))
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func unescape(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}

// queryRaw splits a query string without decoding it, as an ALB does.
func queryRaw(raw string) map[string][]string {
	if raw == "" {
		return nil
	}
	out := map[string][]string{}
	for _, part := range strings.Split(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		out[k] = append(out[k], v)
	}
	return out
}

// encodeBody is the body as the event carries it: text when it is text,
// base64 otherwise. A REST API (v1) passes base64 only for its binary
// media types, and text whenever it can.
func encodeBody(body []byte, h nethttp.Header, binaryTypes []string, restAPI bool) (string, bool) {
	ct := h.Get("Content-Type")
	if restAPI {
		if matchesMediaType(ct, binaryTypes) || !utf8.Valid(body) {
			return base64.StdEncoding.EncodeToString(body), true
		}
		return string(body), false
	}
	if h.Get("Content-Encoding") != "" || !isText(ct) || !utf8.Valid(body) {
		return base64.StdEncoding.EncodeToString(body), true
	}
	return string(body), false
}

// isText says whether a content type is one HTTP APIs and ALBs pass as
// text.
func isText(ct string) bool {
	if ct == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	switch {
	case strings.HasPrefix(mt, "text/"),
		strings.HasSuffix(mt, "/json"), strings.HasSuffix(mt, "+json"),
		strings.HasSuffix(mt, "/xml"), strings.HasSuffix(mt, "+xml"),
		mt == "application/javascript", mt == "application/x-www-form-urlencoded",
		mt == "application/graphql", mt == "application/yaml", mt == "application/x-yaml":
		return true
	}
	return false
}

func matchesMediaType(ct string, types []string) bool {
	if len(types) == 0 {
		return false
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		mt = strings.ToLower(strings.TrimSpace(ct))
	}
	for _, t := range types {
		t = strings.ToLower(strings.TrimSpace(t))
		switch {
		case t == "*/*", t == mt:
			return true
		case strings.HasSuffix(t, "/*") && strings.HasPrefix(mt, strings.TrimSuffix(t, "*")):
			return true
		}
	}
	return false
}

func hostOnly(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		return host
	}
	return h
}

func prefix(host string) string {
	p, _, _ := strings.Cut(host, ".")
	return p
}

func localPort(r *nethttp.Request) string {
	if a, ok := r.Context().Value(nethttp.LocalAddrContextKey).(net.Addr); ok {
		if _, p, err := net.SplitHostPort(a.String()); err == nil {
			return p
		}
	}
	return ""
}

// resourceID is a REST API's id for the route's resource: stable per
// route, six characters as API Gateway's are.
func resourceID(r *Route) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	var h uint32 = 2166136261
	for _, c := range []byte(r.Template) {
		h = (h ^ uint32(c)) * 16777619
	}
	b := make([]byte, 6)
	for i := range b {
		b[i] = alphabet[h%36]
		h /= 36
		if h == 0 {
			h = 2654435761
		}
	}
	return string(b)
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// sortedKeys is for deterministic output in tests and logs.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
