// Package http is the HTTP event source of `cutover lambda serve`: it
// answers HTTP requests by invoking the function with the event API
// Gateway (REST API payload 1.0, HTTP API and function URL payload 2.0)
// or an Application Load Balancer would have sent for them, and turns
// the function's answer back into the HTTP response those would have
// given: status, headers and multi-value headers, cookies, base64 bodies,
// and streamed responses as they are written.
//
// Nothing in front of serve authorizes requests as API Gateway did
// (IAM, Cognito, Lambda authorizers, API keys): requestContext carries
// no authorizer and identity holds only the source IP and user agent.
package http

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	nethttp "net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"

	"github.com/cutoverhq/cutover/lambda"
)

func init() { lambda.RegisterSource("http", New) }

// Usage lists the source's flags, for serve's help.
const Usage = `--source http flags:
  --port N                      serve on this port, all interfaces (default 8080)
  --listen ADDR                 serve on this address instead
  --route "SHAPE METHOD PATH"   apigw-v1 (REST API), apigw-v2 (HTTP API, function URL) or alb;
                                ANY for every method; /orders/{id}, /{proxy+}, /static/* (alb),
                                or "apigw-v2 $default"; repeat (default "apigw-v2 $default")
  --stage NAME                  the stage events name (default $default)
  --stage-variable K=V          a stage variable (repeat)
  --api-id ID                   the API id events name (default cutover)
  --binary-media-types LIST     media types a REST API passes base64-encoded
  --multi-value-headers         ALB target group with multi-value headers on
  --target-group-arn ARN        the target group ALB events name
  --response-stream             stream responses (function URL InvokeMode RESPONSE_STREAM)
  --max-body BYTES              largest request body (default 6 MB, Lambda's limit)
  --shutdown-delay D            keep taking requests this long after SIGTERM`

// Options configure a Source.
type Options struct {
	// Listen is the address to serve on. Empty: ":8080".
	Listen string
	// Routes map requests to event shapes. Empty: every request is an
	// HTTP API $default route (apigw-v2), as a function URL sends them.
	Routes []Route
	// Event fills what the API, not the request, says in events.
	Event EventOptions
	// MaxBody is the largest request body taken. Zero: 6 MB, Lambda's
	// limit on a synchronous invocation's payload.
	MaxBody int64
	// ShutdownDelay keeps taking requests this long after serve is told
	// to stop, while Kubernetes takes the pod out of its endpoints. Zero:
	// stop taking them at once.
	ShutdownDelay time.Duration
	// ResponseStream invokes in response-streaming mode, as a function
	// URL with InvokeMode RESPONSE_STREAM does: the function's answer is
	// sent on as it comes, and one of content type
	// application/vnd.awslambda.http-integration-response begins with
	// its status and headers. False: answers are buffered and read as
	// the route's shape of response.
	ResponseStream bool
	// Log is for access and error records. Nil: discarded.
	Log *slog.Logger
	// Registerer receives the source's metrics. Nil: none.
	Registerer prometheus.Registerer
}

// Source serves HTTP and invokes the function for each request.
type Source struct {
	opt      Options
	log      *slog.Logger
	requests *prometheus.CounterVec

	mu  sync.Mutex
	ln  net.Listener
	inv lambda.Invoker
}

var _ lambda.Source = (*Source)(nil)

// New builds a Source from serve's flags for it.
func New(args []string, so lambda.SourceOptions) (lambda.Source, error) {
	fs := pflag.NewFlagSet("http", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	port := fs.Int("port", 8080, "port to serve HTTP on (all interfaces)")
	listen := fs.String("listen", "", "address to serve HTTP on; overrides --port")
	routes := fs.StringArray("route", nil, `"<shape> <METHOD> <path>": apigw-v1, apigw-v2 or alb; ANY for every method (repeat)`)
	stage := fs.String("stage", "$default", "the API stage events name")
	apiID := fs.String("api-id", "cutover", "the API id events name")
	stageVars := fs.StringToString("stage-variable", nil, "a stage variable NAME=VALUE (repeat)")
	binary := fs.StringSlice("binary-media-types", nil, "media types a REST API (apigw-v1) passes base64-encoded, e.g. image/*,application/pdf")
	multi := fs.Bool("multi-value-headers", false, "ALB events and responses with multi-value headers, as the target group setting")
	tg := fs.String("target-group-arn", "", "the target group ARN ALB events name")
	maxBody := fs.Int64("max-body", 6*1024*1024, "largest request body taken, in bytes")
	delay := fs.Duration("shutdown-delay", 0, "keep taking requests this long after SIGTERM")
	stream := fs.Bool("response-stream", false, "stream responses as a function URL in RESPONSE_STREAM mode does")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	opt := Options{
		Listen:         *listen,
		MaxBody:        *maxBody,
		ShutdownDelay:  *delay,
		ResponseStream: *stream,
		Log:            so.Log,
		Registerer:     so.Registerer,
		Event: EventOptions{
			AccountID:      so.Function.Account,
			APIID:          *apiID,
			Stage:          *stage,
			StageVariables: *stageVars,
			TargetGroupARN: *tg,
			MultiValue:     *multi,
			BinaryTypes:    *binary,
		},
	}
	if len(opt.Event.StageVariables) == 0 {
		opt.Event.StageVariables = nil
	}
	if opt.Listen == "" {
		if *port < 0 || *port > 65535 {
			return nil, fmt.Errorf("--port %d is not a port", *port)
		}
		opt.Listen = ":" + strconv.Itoa(*port)
	}
	if opt.Event.TargetGroupARN == "" {
		region := orDefault(so.Function.Region, "us-east-1")
		name := orDefault(so.Function.Name, "function")
		if len(name) > 32 {
			name = name[:32]
		}
		opt.Event.TargetGroupARN = fmt.Sprintf("arn:aws:elasticloadbalancing:%s:%s:targetgroup/%s/0000000000000000", region, orDefault(so.Function.Account, "000000000000"), name)
	}
	for _, spec := range *routes {
		r, err := ParseRoute(spec)
		if err != nil {
			return nil, err
		}
		opt.Routes = append(opt.Routes, r)
	}
	return NewSource(opt)
}

// NewSource builds a Source from opt.
func NewSource(opt Options) (*Source, error) {
	if opt.Listen == "" {
		opt.Listen = ":8080"
	}
	if opt.MaxBody <= 0 {
		opt.MaxBody = 6 * 1024 * 1024
	}
	if len(opt.Routes) == 0 {
		r, _ := ParseRoute("apigw-v2 $default")
		opt.Routes = []Route{r}
	}
	opt.Routes = append([]Route(nil), opt.Routes...)
	sortRoutes(opt.Routes)
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	s := &Source{opt: opt, log: opt.Log.With("source", "http")}
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cutover_lambda_http_requests_total",
		Help: "HTTP requests answered, by status code and the route's event shape.",
	}, []string{"code", "shape"})
	if opt.Registerer != nil {
		if err := opt.Registerer.Register(s.requests); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Listen binds the address now, so a taken port fails before the
// function starts, and says where it listens (":0" picks a port).
func (s *Source) Listen() (net.Addr, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		ln, err := net.Listen("tcp", s.opt.Listen)
		if err != nil {
			return nil, err
		}
		s.ln = ln
	}
	return s.ln.Addr(), nil
}

// Run serves until ctx ends, then waits ShutdownDelay, stops taking
// requests and returns when those in flight are answered.
func (s *Source) Run(ctx context.Context, inv lambda.Invoker) error {
	if _, err := s.Listen(); err != nil {
		return err
	}
	s.mu.Lock()
	s.inv = inv
	ln := s.ln
	s.mu.Unlock()
	srv := &nethttp.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.log.Info("serving HTTP", "address", ln.Addr().String(), "routes", len(s.opt.Routes))
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	if s.opt.ShutdownDelay > 0 {
		s.log.Info("still taking requests while the pod leaves its endpoints", "delay", s.opt.ShutdownDelay.String())
		select {
		case <-time.After(s.opt.ShutdownDelay):
		case err := <-errc:
			return err
		}
	}
	// In-flight requests end with their invocations, which the runtime
	// bounds by the function's timeout.
	err := srv.Shutdown(context.WithoutCancel(ctx))
	if errors.Is(err, nethttp.ErrServerClosed) {
		err = nil
	}
	return err
}

// route finds the route for a request.
func (s *Source) route(r *nethttp.Request) (*Route, map[string]string) {
	for i := range s.opt.Routes {
		rt := &s.opt.Routes[i]
		p := r.URL.Path
		if rt.glob {
			p = r.URL.EscapedPath()
		}
		if params, ok := rt.match(r.Method, p); ok {
			return rt, params
		}
	}
	return nil, nil
}

// ServeHTTP answers one request through one invocation.
func (s *Source) ServeHTTP(w nethttp.ResponseWriter, r *nethttp.Request) {
	now := time.Now()
	route, params := s.route(r)
	if route == nil {
		s.fail(w, r, s.opt.Routes[0].Shape, nethttp.StatusNotFound, "no route", nil)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, s.opt.MaxBody+1))
	if err != nil {
		s.fail(w, r, route.Shape, nethttp.StatusBadRequest, "cannot read the request body", err)
		return
	}
	if int64(len(body)) > s.opt.MaxBody {
		s.fail(w, r, route.Shape, nethttp.StatusRequestEntityTooLarge, "request body over --max-body", nil)
		return
	}
	id := newRequestID()
	trace := r.Header.Get("X-Amzn-Trace-Id")
	if trace == "" {
		trace = newTraceID(now)
	}
	req := &Request{HTTP: r, Body: body, Route: route, Params: params, RequestID: id, TraceID: trace, Time: now, SourceIP: sourceIP(r)}
	payload, err := Event(req, s.opt.Event)
	if err != nil {
		s.fail(w, r, route.Shape, nethttp.StatusInternalServerError, "cannot build the event", err)
		return
	}
	w.Header().Set("X-Amzn-Requestid", id)
	if route.Shape == ShapeV2 {
		w.Header().Set("Apigw-Requestid", id)
	}
	sw := &streamWriter{w: w, shape: route.Shape}
	inv := lambda.Invocation{Payload: payload, RequestID: id, TraceID: trace}
	if s.opt.ResponseStream {
		inv.Stream = sw
	}
	resp, err := s.inv.Invoke(r.Context(), inv)
	switch {
	case errors.Is(err, lambda.ErrThrottled):
		w.Header().Set("Retry-After", "1")
		s.fail(w, r, route.Shape, nethttp.StatusTooManyRequests, "throttled", nil)
		return
	case errors.Is(err, lambda.ErrClosed):
		w.Header().Set("Connection", "close")
		s.fail(w, r, route.Shape, nethttp.StatusServiceUnavailable, "shutting down", nil)
		return
	case err != nil:
		// The client went away while the request waited.
		s.count(499, route.Shape)
		return
	}
	if sw.headerSent {
		// Streamed: what was sent stays sent. A failure after the head
		// cuts the connection, so the client does not take a truncated
		// body for a whole one.
		s.count(sw.status, route.Shape)
		if resp.Err != nil || sw.err != nil {
			s.log.Warn("streamed response failed", "requestId", id, "error", errText(resp.Err, sw.err))
			panic(nethttp.ErrAbortHandler)
		}
		return
	}
	if resp.Err != nil {
		code := nethttp.StatusBadGateway
		switch {
		case resp.Err.Timeout:
			code = nethttp.StatusGatewayTimeout
		case route.Shape == ShapeV2:
			code = nethttp.StatusInternalServerError
		}
		s.fail(w, r, route.Shape, code, "function error", resp.Err)
		return
	}
	if sw.err != nil {
		s.fail(w, r, route.Shape, badGateway(route.Shape), "malformed streamed response", sw.err)
		return
	}
	if sw.started {
		// A stream that never got past its prelude: the prelude alone.
		status, h, err := sw.finish()
		if err != nil {
			s.fail(w, r, route.Shape, badGateway(route.Shape), "malformed streamed response", err)
			return
		}
		s.write(w, route.Shape, &Response{Status: status, Header: h})
		return
	}
	out, err := ParseResponse(route.Shape, resp.Payload, s.opt.Event.MultiValue)
	if err != nil {
		s.fail(w, r, route.Shape, badGateway(route.Shape), "malformed response", err)
		return
	}
	s.write(w, route.Shape, out)
}

func badGateway(shape Shape) int {
	if shape == ShapeV2 {
		return nethttp.StatusInternalServerError
	}
	return nethttp.StatusBadGateway
}

func errText(fe *lambda.FunctionError, err error) string {
	if fe != nil {
		return fe.Error()
	}
	return err.Error()
}

func (s *Source) write(w nethttp.ResponseWriter, shape Shape, out *Response) {
	h := w.Header()
	for k, vs := range out.Header {
		if validHeader(k) {
			h[nethttp.CanonicalHeaderKey(k)] = vs
		}
	}
	if h.Get("Content-Type") == "" {
		if shape == ShapeALB {
			// Do not let net/http guess one.
			h["Content-Type"] = nil
		} else {
			h.Set("Content-Type", "application/json")
		}
	}
	h.Set("Content-Length", strconv.Itoa(len(out.Body)))
	w.WriteHeader(out.Status)
	_, _ = w.Write(out.Body)
	s.count(out.Status, shape)
}

// fail answers as API Gateway or an ALB answers when the function gave no
// usable answer.
func (s *Source) fail(w nethttp.ResponseWriter, r *nethttp.Request, shape Shape, code int, why string, err error) {
	ct, body := errorBody(shape, code)
	if code == nethttp.StatusNotFound || code == nethttp.StatusTooManyRequests || code == nethttp.StatusServiceUnavailable {
		s.log.Debug(why, "method", r.Method, "path", r.URL.Path, "status", code)
	} else {
		attrs := []any{"method", r.Method, "path", r.URL.Path, "status", code, "requestId", w.Header().Get("X-Amzn-Requestid")}
		if err != nil {
			attrs = append(attrs, "error", err.Error())
		}
		s.log.Warn(why, attrs...)
	}
	if shape == ShapeV1 && code >= 500 {
		if t := map[int]string{502: "InternalServerErrorException", 504: "IntegrationTimeout"}[code]; t != "" {
			w.Header().Set("X-Amzn-Errortype", t)
		}
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	_, _ = w.Write(body)
	s.count(code, shape)
}

func (s *Source) count(code int, shape Shape) {
	s.requests.WithLabelValues(strconv.Itoa(code), string(shape)).Inc()
}

// streamWriter takes a streamed response from the runtime and sends it
// on: an HTTP integration stream's prelude becomes the status and
// headers, the rest the body, flushed as it comes.
type streamWriter struct {
	w     nethttp.ResponseWriter
	shape Shape

	started    bool // StartStream was called
	prelude    bool // the stream begins with a prelude
	buf        []byte
	headerSent bool
	status     int
	err        error
}

// integrationType is the content type of a streamed HTTP response with a
// prelude (awslambda.HttpResponseStream, aws-lambda-go's
// LambdaFunctionURLStreamingResponse).
const integrationType = "application/vnd.awslambda.http-integration-response"

// maxPrelude bounds the status-and-headers prelude of a stream.
const maxPrelude = 1 << 20

func (sw *streamWriter) StartStream(ct string) {
	sw.started = true
	if ct == integrationType {
		sw.prelude = true
		return
	}
	if ct == "" {
		ct = "application/octet-stream"
	}
	sw.send(200, nethttp.Header{"Content-Type": {ct}})
}

func (sw *streamWriter) send(status int, h nethttp.Header) {
	dst := sw.w.Header()
	for k, vs := range h {
		if validHeader(k) {
			dst[nethttp.CanonicalHeaderKey(k)] = vs
		}
	}
	if dst.Get("Content-Type") == "" {
		dst["Content-Type"] = nil
	}
	sw.w.WriteHeader(status)
	sw.headerSent, sw.status = true, status
}

func (sw *streamWriter) Write(p []byte) (int, error) {
	if sw.err != nil {
		return len(p), nil
	}
	if sw.prelude && !sw.headerSent {
		sw.buf = append(sw.buf, p...)
		i := bytes.Index(sw.buf, preludeSeparator)
		if i < 0 {
			if len(sw.buf) > maxPrelude {
				sw.err = fmt.Errorf("%w: no end to the stream prelude in %d bytes", ErrMalformed, maxPrelude)
			}
			return len(p), nil
		}
		status, h, err := parsePrelude(sw.buf[:i])
		if err != nil {
			sw.err = err
			return len(p), nil
		}
		sw.send(status, h)
		rest := sw.buf[i+len(preludeSeparator):]
		sw.buf = nil
		if len(rest) == 0 {
			return len(p), nil
		}
		if _, err := sw.w.Write(rest); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return sw.w.Write(p)
}

func (sw *streamWriter) Flush() {
	if sw.headerSent {
		if f, ok := sw.w.(nethttp.Flusher); ok {
			f.Flush()
		}
	}
}

// finish reads a prelude that the stream ended without separating.
func (sw *streamWriter) finish() (int, nethttp.Header, error) {
	if !sw.prelude {
		return 200, nethttp.Header{}, nil
	}
	if len(bytes.TrimSpace(sw.buf)) == 0 {
		return 200, nethttp.Header{}, nil
	}
	return parsePrelude(sw.buf)
}

// sourceIP is the client's address: the hop the proxy in front of serve
// appended to X-Forwarded-For (earlier hops are the client's word), or
// the peer's address.
func sourceIP(r *nethttp.Request) string {
	if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
		last := xff[len(xff)-1]
		if i := strings.LastIndexByte(last, ','); i >= 0 {
			last = last[i+1:]
		}
		if ip := strings.TrimSpace(last); net.ParseIP(ip) != nil {
			return ip
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// newRequestID is a UUID, the shape of Lambda's request ids.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	x := hex.EncodeToString(b[:])
	return x[:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:]
}

// newTraceID is an X-Ray trace header, as API Gateway and ALB add one to
// each request that has none.
func newTraceID(now time.Time) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("Root=1-%08x-%s", now.Unix(), hex.EncodeToString(b[:]))
}
