// Command testfn is a real Lambda function, built on
// github.com/aws/aws-lambda-go's lambda.Start, that the runtime's tests
// run as a child process. Which handler runs is chosen by _HANDLER, as a
// Lambda function's handler setting chooses it; each one exercises one
// behaviour of the Runtime API (errors, panics, timeouts, init failures,
// streaming, HTTP event shapes).
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

func main() {
	handler := os.Getenv("_HANDLER")
	if len(os.Args) > 1 {
		// As /lambda-entrypoint.sh takes it: the handler is the argument.
		handler = os.Args[1]
	}
	if os.Getenv("TESTFN_FAIL_INIT") != "" {
		// Init code that cannot run: a missing setting, a database that
		// does not answer. The process dies before it asks for work.
		log.Fatalf("init: %s", os.Getenv("TESTFN_FAIL_INIT"))
	}
	if d := os.Getenv("TESTFN_INIT_SLEEP"); d != "" {
		t, _ := time.ParseDuration(d)
		time.Sleep(t)
	}
	fmt.Println("init done, handler", handler)
	switch handler {
	case "echo":
		lambda.Start(func(ev json.RawMessage) (json.RawMessage, error) { return ev, nil })
	case "context":
		lambda.Start(contextHandler)
	case "error":
		lambda.Start(func(context.Context, json.RawMessage) (string, error) {
			return "", errors.New("card declined: insufficient funds")
		})
	case "panic":
		lambda.Start(func(context.Context, json.RawMessage) (string, error) {
			var m map[string]int
			m["boom"]++ // a nil map: the panic a real bug gives
			return "", nil
		})
	case "crash":
		lambda.Start(func(context.Context, json.RawMessage) (string, error) {
			fmt.Println("about to exit")
			os.Exit(3)
			return "", nil
		})
	case "sleep":
		lambda.Start(sleepHandler)
	case "apigw-v1":
		lambda.Start(apigwV1)
	case "apigw-v2":
		lambda.Start(apigwV2)
	case "alb":
		lambda.Start(alb)
	case "http-sleep":
		lambda.Start(httpSleep)
	case "stream":
		lambda.Start(stream)
	case "stream-fail":
		lambda.Start(streamFail)
	default:
		log.Fatalf("unknown handler %q", handler)
	}
}

// contextHandler answers what the function was told about the invocation
// and its environment.
func contextHandler(ctx context.Context, ev json.RawMessage) (map[string]any, error) {
	lc, _ := lambdacontext.FromContext(ctx)
	dl, _ := ctx.Deadline()
	env := map[string]string{}
	for _, k := range []string{"AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
		"AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_REGION", "AWS_DEFAULT_REGION", "LAMBDA_TASK_ROOT",
		"LAMBDA_RUNTIME_DIR", "TZ", "_HANDLER", "_X_AMZN_TRACE_ID", "AWS_LAMBDA_RUNTIME_API", "STAGE"} {
		env[k] = os.Getenv(k)
	}
	fmt.Println("handling", lc.AwsRequestID)
	return map[string]any{
		"event":           ev,
		"requestId":       lc.AwsRequestID,
		"functionArn":     lc.InvokedFunctionArn,
		"deadlineMs":      dl.UnixMilli(),
		"clientContext":   lc.ClientContext.Custom,
		"cognitoIdentity": lc.Identity.CognitoIdentityID,
		"env":             env,
		"pid":             os.Getpid(),
	}, nil
}

// sleepHandler sleeps as long as the event says, ignoring its deadline
// as a stuck function does, and answers its pid.
func sleepHandler(ctx context.Context, ev struct {
	Sleep string `json:"sleep"`
}) (map[string]any, error) {
	d, err := time.ParseDuration(ev.Sleep)
	if err != nil {
		return nil, err
	}
	time.Sleep(d)
	return map[string]any{"pid": os.Getpid(), "slept": ev.Sleep}, nil
}

// apigwV1 is an API Gateway REST (payload 1.0) handler: it answers the
// event it got, with multi-value headers, cookies and, on /binary, a
// base64 body.
func apigwV1(req events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
	if req.Path == "/fail" {
		return events.APIGatewayProxyResponse{}, errors.New("backend unavailable")
	}
	body, _ := json.Marshal(req)
	resp := events.APIGatewayProxyResponse{
		StatusCode:        201,
		Headers:           map[string]string{"Content-Type": "application/json", "X-Handler": "apigw-v1"},
		MultiValueHeaders: map[string][]string{"Set-Cookie": {"a=1; Path=/", "b=2; Path=/"}, "X-Multi": {"x", "y"}},
		Body:              string(body),
	}
	if req.Path == "/binary" {
		resp.Headers["Content-Type"] = "application/octet-stream"
		resp.Body = base64.StdEncoding.EncodeToString([]byte{0, 1, 2, 0xff, 0xfe})
		resp.IsBase64Encoded = true
	}
	return resp, nil
}

// apigwV2 is an HTTP API (payload 2.0) handler.
func apigwV2(req events.APIGatewayV2HTTPRequest) (any, error) {
	switch req.RawPath {
	case "/plain":
		// No statusCode: API Gateway answers 200 with this as JSON.
		return map[string]string{"hello": "world"}, nil
	case "/binary":
		return events.APIGatewayV2HTTPResponse{StatusCode: 200, Headers: map[string]string{"content-type": "image/png"},
			Body: base64.StdEncoding.EncodeToString([]byte{0x89, 'P', 'N', 'G', 0}), IsBase64Encoded: true}, nil
	}
	body, _ := json.Marshal(req)
	return events.APIGatewayV2HTTPResponse{
		StatusCode: 202,
		Headers:    map[string]string{"content-type": "application/json", "x-handler": "apigw-v2"},
		Cookies:    []string{"session=abc; HttpOnly", "theme=dark"},
		Body:       string(body),
	}, nil
}

// alb is an ALB target handler.
func alb(req events.ALBTargetGroupRequest) (events.ALBTargetGroupResponse, error) {
	body, _ := json.Marshal(req)
	resp := events.ALBTargetGroupResponse{
		StatusCode:        200,
		StatusDescription: "200 OK",
		Headers:           map[string]string{"Content-Type": "application/json"},
		Body:              string(body),
	}
	if req.MultiValueHeaders != nil {
		resp.Headers = nil
		resp.MultiValueHeaders = map[string][]string{"Content-Type": {"application/json"}, "Set-Cookie": {"a=1", "b=2"}}
	}
	return resp, nil
}

// httpSleep is an HTTP API handler that sleeps ?sleep= long (ignoring
// its deadline, as a stuck function does) and answers its pid.
func httpSleep(req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	d, _ := time.ParseDuration(req.QueryStringParameters["sleep"])
	time.Sleep(d)
	return events.APIGatewayV2HTTPResponse{StatusCode: 200, Body: fmt.Sprintf(`{"pid":%d}`, os.Getpid())}, nil
}

// stream answers in response-stream mode: the HTTP prelude, then chunks
// with pauses between them.
func stream(ctx context.Context, ev json.RawMessage) (*events.LambdaFunctionURLStreamingResponse, error) {
	r, w := io.Pipe()
	go func() {
		for i := range 3 {
			fmt.Fprintf(w, "chunk %d\n", i)
			time.Sleep(150 * time.Millisecond)
		}
		w.Close()
	}()
	return &events.LambdaFunctionURLStreamingResponse{
		StatusCode: 200,
		Headers:    map[string]string{"Content-Type": "text/plain"},
		Body:       r,
	}, nil
}

// streamFail streams a little, then fails: the error travels in trailers.
func streamFail(ctx context.Context, ev json.RawMessage) (*events.LambdaFunctionURLStreamingResponse, error) {
	r, w := io.Pipe()
	go func() {
		fmt.Fprint(w, strings.Repeat("x", 10))
		time.Sleep(50 * time.Millisecond)
		w.CloseWithError(errors.New("lost the database mid-stream"))
	}()
	return &events.LambdaFunctionURLStreamingResponse{StatusCode: 200, Body: r}, nil
}
