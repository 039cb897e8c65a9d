package http_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	nethttp "net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cutoverhq/cutover/lambda"
	lambdahttp "github.com/cutoverhq/cutover/lambda/http"
	"github.com/cutoverhq/cutover/lambda/internal/lambdatest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	lambdatest.Cleanup()
	os.Exit(code)
}

type server struct {
	url  string
	rt   *lambda.Runtime
	stop func()
	done chan error
}

// serve runs the Go test function's handler behind the runtime and the
// HTTP source with these flags, as `cutover lambda serve --source http`
// does.
func serve(t *testing.T, handler string, cfg lambda.Config, flags ...string) *server {
	t.Helper()
	cfg.Command = []string{lambdatest.GoFunction(t), handler}
	cfg.Env = []string{"PATH=" + os.Getenv("PATH")}
	if cfg.Function.Timeout == 0 {
		cfg.Function.Timeout = 5 * time.Second
	}
	cfg.Function.Name, cfg.Function.Region, cfg.Function.Account = "orders-api", "eu-west-1", "123456789012"
	if testing.Verbose() {
		cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	rt, err := lambda.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	src, err := lambda.NewSource("http", append([]string{"--listen", "127.0.0.1:0"}, flags...), lambda.SourceOptions{Function: rt.Config().Function, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	addr, err := src.(*lambdahttp.Source).Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{url: "http://" + addr.String(), rt: rt, stop: cancel, done: make(chan error, 1)}
	go func() { s.done <- src.Run(ctx, rt) }()
	t.Cleanup(func() {
		cancel()
		if err := <-s.done; err != nil {
			t.Errorf("source: %v", err)
		}
		_ = rt.Close()
	})
	return s
}

func do(t *testing.T, method, url, body string, header ...string) (*nethttp.Response, []byte) {
	t.Helper()
	req, err := nethttp.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	resp, err := nethttp.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// TestRESTAPIRoundTrip: an aws-lambda-go APIGatewayProxyRequest handler
// gets its route's event and its response comes back as API Gateway
// would send it.
func TestRESTAPIRoundTrip(t *testing.T) {
	s := serve(t, "apigw-v1", lambda.Config{}, "--route", "apigw-v1 POST /payments/{paymentId}/authorize", "--route", "apigw-v1 ANY /{proxy+}", "--stage", "prod", "--stage-variable", "backend=orders")
	resp, body := do(t, "POST", s.url+"/payments/pay_9/authorize?currency=EUR&tag=a&tag=b", `{"amount":4200}`, "Content-Type", "application/json", "Cookie", "k=v")
	if resp.StatusCode != 201 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if got := resp.Header.Values("Set-Cookie"); strings.Join(got, "|") != "a=1; Path=/|b=2; Path=/" {
		t.Errorf("Set-Cookie = %q", got)
	}
	if got := resp.Header.Values("X-Multi"); strings.Join(got, ",") != "x,y" {
		t.Errorf("X-Multi = %q", got)
	}
	if resp.Header.Get("X-Handler") != "apigw-v1" || resp.Header.Get("X-Amzn-Requestid") == "" {
		t.Errorf("headers %v", resp.Header)
	}
	var ev events.APIGatewayProxyRequest
	if err := json.Unmarshal(body, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Resource != "/payments/{paymentId}/authorize" || ev.PathParameters["paymentId"] != "pay_9" || ev.Body != `{"amount":4200}` {
		t.Errorf("event: resource %q params %v body %q", ev.Resource, ev.PathParameters, ev.Body)
	}
	if strings.Join(ev.MultiValueQueryStringParameters["tag"], ",") != "a,b" || ev.QueryStringParameters["tag"] != "b" {
		t.Errorf("query %v %v", ev.QueryStringParameters, ev.MultiValueQueryStringParameters)
	}
	if ev.RequestContext.Stage != "prod" || ev.RequestContext.Path != "/prod/payments/pay_9/authorize" || ev.StageVariables["backend"] != "orders" {
		t.Errorf("stage %q path %q vars %v", ev.RequestContext.Stage, ev.RequestContext.Path, ev.StageVariables)
	}
	if ev.RequestContext.AccountID != "123456789012" || ev.RequestContext.Identity.SourceIP != "127.0.0.1" || ev.RequestContext.RequestID != resp.Header.Get("X-Amzn-Requestid") {
		t.Errorf("context %+v", ev.RequestContext)
	}
	if ev.Headers["X-Forwarded-Port"] == "" || ev.Headers["Cookie"] != "k=v" {
		t.Errorf("headers %v", ev.Headers)
	}

	// A base64 body comes back binary.
	resp, body = do(t, "GET", s.url+"/binary", "")
	if resp.StatusCode != 201 || string(body) != "\x00\x01\x02\xff\xfe" || resp.Header.Get("Content-Type") != "application/octet-stream" {
		t.Errorf("binary: %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}

	// A handler error is API Gateway's 502.
	resp, body = do(t, "GET", s.url+"/fail", "")
	if resp.StatusCode != 502 || string(body) != `{"message":"Internal server error"}` {
		t.Errorf("handler error: %d %s", resp.StatusCode, body)
	}
}

func TestHTTPAPIRoundTrip(t *testing.T) {
	s := serve(t, "apigw-v2", lambda.Config{}, "--route", "apigw-v2 $default")
	resp, body := do(t, "PUT", s.url+"/carts/7?x=1&x=2", "\x00\x01binary", "Content-Type", "application/octet-stream", "Cookie", "a=1; b=2")
	if resp.StatusCode != 202 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if got := resp.Header.Values("Set-Cookie"); strings.Join(got, "|") != "session=abc; HttpOnly|theme=dark" {
		t.Errorf("Set-Cookie = %q", got)
	}
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(body, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.RouteKey != "$default" || ev.RawPath != "/carts/7" || ev.RawQueryString != "x=1&x=2" || ev.QueryStringParameters["x"] != "1,2" {
		t.Errorf("event %+v", ev)
	}
	if strings.Join(ev.Cookies, "|") != "a=1|b=2" || ev.Headers["cookie"] != "" {
		t.Errorf("cookies %q headers %v", ev.Cookies, ev.Headers)
	}
	if !ev.IsBase64Encoded || ev.Body != "AAFiaW5hcnk=" {
		t.Errorf("body %q base64 %v", ev.Body, ev.IsBase64Encoded)
	}
	if ev.RequestContext.HTTP.Method != "PUT" || ev.RequestContext.HTTP.SourceIP != "127.0.0.1" {
		t.Errorf("http %+v", ev.RequestContext.HTTP)
	}

	// No statusCode: a 200 with the answer as JSON.
	resp, body = do(t, "GET", s.url+"/plain", "")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || string(body) != `{"hello":"world"}` {
		t.Errorf("plain: %d %q %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	resp, body = do(t, "GET", s.url+"/binary", "")
	if resp.StatusCode != 200 || string(body) != "\x89PNG\x00" || resp.Header.Get("Content-Type") != "image/png" {
		t.Errorf("binary: %d %q", resp.StatusCode, body)
	}
}

func TestALBRoundTrip(t *testing.T) {
	s := serve(t, "alb", lambda.Config{}, "--route", "alb ANY /api/*")
	resp, body := do(t, "GET", s.url+"/api/users?id=a%20b&id=c", "", "X-Custom", "1", "X-Custom", "2")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var ev events.ALBTargetGroupRequest
	if err := json.Unmarshal(body, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Path != "/api/users" || ev.QueryStringParameters["id"] != "c" || ev.Headers["x-custom"] != "2" || ev.MultiValueHeaders != nil {
		t.Errorf("event %+v", ev)
	}
	if !strings.HasPrefix(ev.RequestContext.ELB.TargetGroupArn, "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/orders-api/") {
		t.Errorf("target group %q", ev.RequestContext.ELB.TargetGroupArn)
	}
	resp, _ = do(t, "GET", s.url+"/elsewhere", "")
	if resp.StatusCode != 404 {
		t.Errorf("unrouted: %d", resp.StatusCode)
	}

	m := serve(t, "alb", lambda.Config{}, "--route", "alb ANY /api/*", "--multi-value-headers")
	resp, body = do(t, "GET", m.url+"/api/users?id=a%20b&id=c", "", "X-Custom", "1", "X-Custom", "2")
	if err := json.Unmarshal(body, &ev); err != nil {
		t.Fatal(err)
	}
	if strings.Join(ev.MultiValueQueryStringParameters["id"], ",") != "a%20b,c" || strings.Join(ev.MultiValueHeaders["x-custom"], ",") != "1,2" {
		t.Errorf("multi-value event %+v", ev)
	}
	if got := resp.Header.Values("Set-Cookie"); strings.Join(got, ",") != "a=1,b=2" {
		t.Errorf("Set-Cookie %q", got)
	}
}

// TestTimeoutAndThrottleOverHTTP: a stuck function is a 504 and its
// process is replaced; requests over the concurrency are 429s.
func TestTimeoutAndThrottleOverHTTP(t *testing.T) {
	s := serve(t, "http-sleep", lambda.Config{Function: lambda.FunctionConfig{Timeout: 300 * time.Millisecond}, ThrottleWait: -1})
	resp, body := do(t, "GET", s.url+"/?sleep=5s", "")
	if resp.StatusCode != 504 || string(body) != `{"message":"Endpoint request timed out"}` {
		t.Errorf("timeout: %d %s", resp.StatusCode, body)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		resp, body := do(t, "GET", s.url+"/?sleep=200ms", "")
		if resp.StatusCode != 200 {
			t.Errorf("first: %d %s", resp.StatusCode, body)
		}
	}()
	time.Sleep(100 * time.Millisecond)
	resp, _ = do(t, "GET", s.url+"/?sleep=1ms", "")
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("over concurrency: %d", resp.StatusCode)
	}
	wg.Wait()
}

// TestStreamingOverHTTP: a streamed function response reaches the client
// chunk by chunk with the status and headers of its prelude.
func TestStreamingOverHTTP(t *testing.T) {
	s := serve(t, "stream", lambda.Config{}, "--response-stream")
	begin := time.Now()
	resp, err := nethttp.Get(s.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/plain" {
		t.Errorf("head: %d %v", resp.StatusCode, resp.Header)
	}
	r := bufio.NewReader(resp.Body)
	line, err := r.ReadString('\n')
	first := time.Since(begin)
	if err != nil || line != "chunk 0\n" {
		t.Fatalf("first line %q %v", line, err)
	}
	rest, err := io.ReadAll(r)
	total := time.Since(begin)
	if err != nil || string(rest) != "chunk 1\nchunk 2\n" {
		t.Errorf("rest %q %v", rest, err)
	}
	if total-first < 200*time.Millisecond {
		t.Errorf("first chunk at %v of %v: the response was buffered", first, total)
	}

	f := serve(t, "stream-fail", lambda.Config{}, "--response-stream")
	resp, err = nethttp.Get(f.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil || !errors.Is(err, io.ErrUnexpectedEOF) || string(b) != "xxxxxxxxxx" {
		t.Errorf("mid-stream failure: read %q, err %v (want a cut connection)", b, err)
	}
}

// TestDrainOverHTTP: when serve is told to stop, a request in flight gets
// its answer and the source returns.
func TestDrainOverHTTP(t *testing.T) {
	s := serve(t, "http-sleep", lambda.Config{})
	type result struct {
		code int
		err  error
	}
	res := make(chan result, 1)
	go func() {
		resp, err := nethttp.Get(s.url + "/?sleep=500ms")
		if err != nil {
			res <- result{0, err}
			return
		}
		resp.Body.Close()
		res <- result{resp.StatusCode, nil}
	}()
	time.Sleep(150 * time.Millisecond)
	s.stop()
	r := <-res
	if r.err != nil || r.code != 200 {
		t.Errorf("in-flight request: %d %v", r.code, r.err)
	}
	select {
	case err := <-s.done:
		s.done <- err
	case <-time.After(3 * time.Second):
		t.Fatal("the source did not return")
	}
	if _, err := nethttp.Get(s.url + "/"); err == nil {
		t.Error("still taking requests after stopping")
	}
}

func TestBodyLimit(t *testing.T) {
	s := serve(t, "apigw-v2", lambda.Config{}, "--max-body", "10")
	resp, body := do(t, "POST", s.url+"/", strings.Repeat("x", 11))
	if resp.StatusCode != 413 {
		t.Errorf("%d %s", resp.StatusCode, body)
	}
}
