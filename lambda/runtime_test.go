package lambda_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/lambda"
	"github.com/cutoverhq/cutover/lambda/internal/lambdatest"
)

type contextAnswer struct {
	Event           map[string]any    `json:"event"`
	RequestID       string            `json:"requestId"`
	FunctionARN     string            `json:"functionArn"`
	DeadlineMs      int64             `json:"deadlineMs"`
	ClientContext   map[string]string `json:"clientContext"`
	CognitoIdentity string            `json:"cognitoIdentity"`
	Env             map[string]string `json:"env"`
	PID             int               `json:"pid"`
}

// TestGoFunctionSeesLambdaContext: an aws-lambda-go function gets the
// request id, deadline, ARN, trace id, client context, Cognito identity
// and the environment Lambda gives it.
func TestGoFunctionSeesLambdaContext(t *testing.T) {
	h := start(t, "context", lambda.Config{Env: []string{"STAGE=prod", "AWS_LAMBDA_RUNTIME_API=169.254.100.1:9001"}})
	before := time.Now()
	resp, err := h.rt.Invoke(context.Background(), lambda.Invocation{
		Payload:         []byte(`{"amount":4200}`),
		RequestID:       "5f5e6b52-6ad2-4c39-9a2d-000000000001",
		TraceID:         "Root=1-5e9f0c65-1de4d666d4dd26aced652b6c;Parent=53995c3f42cd8ad8;Sampled=1",
		ClientContext:   []byte(`{"custom":{"tenant":"acme"}}`),
		CognitoIdentity: []byte(`{"cognitoIdentityId":"eu-west-1:abc","cognitoIdentityPoolId":"eu-west-1:pool"}`),
	})
	if err != nil || resp.Err != nil {
		t.Fatalf("invoke: %v %v", err, resp.Err)
	}
	got := decode[contextAnswer](t, resp.Payload)
	if got.Event["amount"] != 4200.0 {
		t.Errorf("event = %v", got.Event)
	}
	if got.RequestID != "5f5e6b52-6ad2-4c39-9a2d-000000000001" {
		t.Errorf("request id = %q", got.RequestID)
	}
	if got.FunctionARN != "arn:aws:lambda:eu-west-1:123456789012:function:payments-authorize" {
		t.Errorf("arn = %q", got.FunctionARN)
	}
	dl := time.UnixMilli(got.DeadlineMs)
	if dl.Before(before.Add(4*time.Second)) || dl.After(time.Now().Add(5*time.Second)) {
		t.Errorf("deadline %v is not the 5 s timeout from now", dl)
	}
	if got.ClientContext["tenant"] != "acme" || got.CognitoIdentity != "eu-west-1:abc" {
		t.Errorf("client context %v, cognito %q", got.ClientContext, got.CognitoIdentity)
	}
	want := map[string]string{
		"AWS_LAMBDA_FUNCTION_NAME":        "payments-authorize",
		"AWS_LAMBDA_FUNCTION_VERSION":     "$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
		"AWS_LAMBDA_LOG_GROUP_NAME":       "/aws/lambda/payments-authorize",
		"AWS_REGION":                      "eu-west-1",
		"AWS_DEFAULT_REGION":              "eu-west-1",
		"LAMBDA_TASK_ROOT":                "/var/task",
		"LAMBDA_RUNTIME_DIR":              "/var/runtime",
		"TZ":                              ":UTC",
		"_HANDLER":                        "context",
		"_X_AMZN_TRACE_ID":                "Root=1-5e9f0c65-1de4d666d4dd26aced652b6c;Parent=53995c3f42cd8ad8;Sampled=1",
		"STAGE":                           "prod",
	}
	for k, v := range want {
		if got.Env[k] != v {
			t.Errorf("%s = %q, want %q", k, got.Env[k], v)
		}
	}
	if api := got.Env["AWS_LAMBDA_RUNTIME_API"]; !strings.HasPrefix(api, "127.0.0.1:") {
		t.Errorf("AWS_LAMBDA_RUNTIME_API = %q, want the runtime's own loopback endpoint", api)
	}
	if !strings.Contains(got.Env["AWS_LAMBDA_LOG_STREAM_NAME"], "[$LATEST]") {
		t.Errorf("log stream %q", got.Env["AWS_LAMBDA_LOG_STREAM_NAME"])
	}
	if !resp.ColdStart {
		t.Error("the first invocation is not a cold start")
	}

	// The second runs warm on the same process.
	resp2 := h.invoke(t, `{}`)
	got2 := decode[contextAnswer](t, resp2.Payload)
	if resp2.ColdStart || got2.PID != got.PID {
		t.Errorf("second invocation: cold %v, pid %d (first %d)", resp2.ColdStart, got2.PID, got.PID)
	}
	if got2.RequestID == "" || got2.RequestID == got.RequestID {
		t.Errorf("generated request id %q", got2.RequestID)
	}
	if n := h.metric(t, "cutover_lambda_invocations_total"); n != 2 {
		t.Errorf("invocations = %v", n)
	}
	if n := h.metric(t, "cutover_lambda_cold_starts_total"); n != 1 {
		t.Errorf("cold starts = %v", n)
	}
	if n := h.metric(t, "cutover_lambda_duration_seconds"); n != 2 {
		t.Errorf("duration samples = %v", n)
	}

	// The function's output is relayed with the request id it belongs to.
	var found bool
	for _, r := range h.logs.records() {
		if r["msg"] == "handling "+got.RequestID && r["requestId"] == got.RequestID && r["stream"] == "stdout" {
			found = true
		}
	}
	if !found {
		t.Errorf("no relayed line carrying request id %s", got.RequestID)
	}
}

func TestHandlerError(t *testing.T) {
	h := start(t, "error", lambda.Config{})
	resp := h.invoke(t, `{}`)
	if resp.Err == nil {
		t.Fatalf("no error; payload %s", resp.Payload)
	}
	if resp.Err.Type != "errorString" || resp.Err.Message != "card declined: insufficient funds" || resp.Err.Crash || resp.Err.Timeout {
		t.Errorf("error = %+v", resp.Err)
	}
	if got := string(resp.Err.JSON()); got != `{"errorType":"errorString","errorMessage":"card declined: insufficient funds"}` {
		t.Errorf("error JSON = %s", got)
	}
	// A reported error keeps the process.
	resp2 := h.invoke(t, `{}`)
	if resp2.ColdStart {
		t.Error("the process was replaced after a handled error")
	}
	if n := h.metric(t, "cutover_lambda_errors_total", "kind", "error"); n != 2 {
		t.Errorf("errors = %v", n)
	}
}

func TestPanicReportsAndReplacesProcess(t *testing.T) {
	h := start(t, "panic", lambda.Config{})
	resp := h.invoke(t, `{}`)
	if resp.Err == nil || resp.Err.Type != "runtimeError" && !strings.Contains(resp.Err.Type, "Error") {
		t.Fatalf("error = %+v", resp.Err)
	}
	if !strings.Contains(resp.Err.Message, "assignment to entry in nil map") {
		t.Errorf("message = %q", resp.Err.Message)
	}
	if !bytes.Contains(resp.Err.StackTrace, []byte("main.go")) {
		t.Errorf("stack trace = %s", resp.Err.StackTrace)
	}
	// aws-lambda-go exits after a panic; the next invocation gets a
	// fresh process.
	resp2 := h.invoke(t, `{}`)
	if !resp2.ColdStart || resp2.Err == nil {
		t.Errorf("after a panic: cold %v err %v", resp2.ColdStart, resp2.Err)
	}
}

func TestCrashMidInvocation(t *testing.T) {
	h := start(t, "crash", lambda.Config{})
	resp := h.invoke(t, `{}`)
	if resp.Err == nil || !resp.Err.Crash || resp.Err.Type != "Runtime.ExitError" || !strings.Contains(resp.Err.Message, "exit status 3") {
		t.Fatalf("error = %+v", resp.Err)
	}
	if n := h.metric(t, "cutover_lambda_errors_total", "kind", "crash"); n != 1 {
		t.Errorf("crash errors = %v", n)
	}
}

func TestTimeoutKillsAndReplaces(t *testing.T) {
	h := start(t, "sleep", lambda.Config{Function: lambda.FunctionConfig{Name: "slow", Timeout: 400 * time.Millisecond, Handler: "sleep"}})
	begin := time.Now()
	resp := h.invoke(t, `{"sleep":"10s"}`)
	took := time.Since(begin)
	if resp.Err == nil || !resp.Err.Timeout || resp.Err.Type != "Sandbox.Timedout" || !strings.Contains(resp.Err.Message, "Task timed out after 0.4") {
		t.Fatalf("error = %+v", resp.Err)
	}
	if took > 3*time.Second {
		t.Errorf("the timeout took %v to report", took)
	}
	// The stuck process is gone; a fresh one answers.
	resp2 := h.invoke(t, `{"sleep":"1ms"}`)
	if resp2.Err != nil || !resp2.ColdStart {
		t.Errorf("after a timeout: %+v cold %v", resp2.Err, resp2.ColdStart)
	}
	if n := h.metric(t, "cutover_lambda_errors_total", "kind", "timeout"); n != 1 {
		t.Errorf("timeouts = %v", n)
	}
	// An invocation's own, earlier deadline wins over the function's.
	resp3, err := h.rt.Invoke(context.Background(), lambda.Invocation{Payload: []byte(`{"sleep":"5s"}`), Deadline: time.Now().Add(100 * time.Millisecond)})
	if err != nil || resp3.Err == nil || !resp3.Err.Timeout {
		t.Errorf("invocation deadline: %v %+v", err, resp3.Err)
	}
}

func TestInitFailureGoFunction(t *testing.T) {
	h := start(t, "echo", lambda.Config{Env: []string{"TESTFN_FAIL_INIT=DATABASE_URL is not set"}})
	resp := h.invoke(t, `{}`)
	if resp.Err == nil || !resp.Err.Crash || resp.Err.Type != "Runtime.ExitError" || !strings.Contains(resp.Err.Message, "exit status 1") {
		t.Fatalf("error = %+v", resp.Err)
	}
	if n := h.metric(t, "cutover_lambda_init_errors_total"); n != 1 {
		t.Errorf("init errors = %v", n)
	}
	var logged bool
	for _, r := range h.logs.records() {
		if strings.Contains(r["msg"].(string), "init: DATABASE_URL is not set") && r["phase"] == "init" {
			logged = true
		}
	}
	if !logged {
		t.Error("the function's init output was not relayed")
	}
}

func TestInitErrorReportedByBootstrap(t *testing.T) {
	h := start(t, "", lambda.Config{Command: []string{lambdatest.Bootstrap(t)}, Env: []string{"BOOTSTRAP_FAIL_INIT=no handler configured", "_HANDLER=echo"}})
	resp := h.invoke(t, `{}`)
	if resp.Err == nil || resp.Err.Type != "Runtime.ConfigError" || resp.Err.Message != "no handler configured" || !resp.Err.Crash {
		t.Fatalf("error = %+v", resp.Err)
	}
}

func TestShellBootstrap(t *testing.T) {
	h := start(t, "", lambda.Config{Command: []string{lambdatest.Bootstrap(t)}, Function: lambda.FunctionConfig{Name: "shell", Handler: "upper", Timeout: 5 * time.Second}})
	for i := range 3 {
		resp := h.invoke(t, `{"order":"abc"}`)
		if resp.Err != nil || string(resp.Payload) != `{"ORDER":"ABC"}` {
			t.Fatalf("invocation %d: %s %+v", i, resp.Payload, resp.Err)
		}
	}
	h2 := start(t, "", lambda.Config{Command: []string{lambdatest.Bootstrap(t)}, Function: lambda.FunctionConfig{Name: "shell", Handler: "fail", Timeout: 5 * time.Second}})
	resp := h2.invoke(t, `bad`)
	if resp.Err == nil || resp.Err.Type != "HandlerError" || !strings.Contains(resp.Err.Message, "cannot handle bad") {
		t.Fatalf("error = %+v", resp.Err)
	}
}

func TestMissingCommandIsAnInitError(t *testing.T) {
	h := start(t, "", lambda.Config{Command: []string{"/nonexistent/bootstrap"}})
	resp := h.invoke(t, `{}`)
	if resp.Err == nil || resp.Err.Type != "Runtime.InvalidEntrypoint" {
		t.Fatalf("error = %+v", resp.Err)
	}
}

// TestConcurrencyOneInvocationPerProcess: N parallel invocations run on N
// processes; the N+1th is throttled when nothing may wait, and waits for
// a free process when the throttle wait allows.
func TestConcurrencyOneInvocationPerProcess(t *testing.T) {
	const n = 3
	h := start(t, "sleep", lambda.Config{Concurrency: n, ThrottleWait: -1})
	var wg sync.WaitGroup
	pids := make(chan int, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp := h.invoke(t, `{"sleep":"600ms"}`)
			if resp.Err != nil {
				t.Errorf("invoke: %+v", resp.Err)
				return
			}
			pids <- decode[struct{ PID int }](t, resp.Payload).PID
		}()
	}
	// Wait until all n are running, then one more is refused.
	deadline := time.Now().Add(5 * time.Second)
	for h.metric(t, "cutover_lambda_concurrent_executions") < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	_, err := h.rt.Invoke(context.Background(), lambda.Invocation{Payload: []byte(`{"sleep":"1ms"}`)})
	if !errors.Is(err, lambda.ErrThrottled) {
		t.Errorf("invocation %d: err = %v, want throttled", n+1, err)
	}
	wg.Wait()
	close(pids)
	seen := map[int]bool{}
	for p := range pids {
		seen[p] = true
	}
	if len(seen) != n {
		t.Errorf("%d invocations ran on %d processes", n, len(seen))
	}
	if v := h.metric(t, "cutover_lambda_throttles_total"); v != 1 {
		t.Errorf("throttles = %v", v)
	}
	if v := h.metric(t, "cutover_lambda_processes"); v != n {
		t.Errorf("processes = %v", v)
	}
}

func TestConcurrencyWaitsForAFreeProcess(t *testing.T) {
	h := start(t, "sleep", lambda.Config{Concurrency: 2, ThrottleWait: 5 * time.Second})
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[int]int{}
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp := h.invoke(t, `{"sleep":"200ms"}`)
			if resp.Err != nil {
				t.Errorf("invoke: %+v", resp.Err)
				return
			}
			mu.Lock()
			seen[decode[struct{ PID int }](t, resp.Payload).PID]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(seen) != 2 {
		t.Errorf("5 invocations over concurrency 2 ran on %d processes: %v", len(seen), seen)
	}
	if v := h.metric(t, "cutover_lambda_throttles_total"); v != 0 {
		t.Errorf("throttles = %v", v)
	}
}

func TestThrottleWaitExpires(t *testing.T) {
	h := start(t, "sleep", lambda.Config{ThrottleWait: 100 * time.Millisecond})
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.invoke(t, `{"sleep":"1s"}`)
	}()
	for h.metric(t, "cutover_lambda_concurrent_executions") < 1 {
		time.Sleep(5 * time.Millisecond)
	}
	begin := time.Now()
	_, err := h.rt.Invoke(context.Background(), lambda.Invocation{Payload: []byte(`{"sleep":"1ms"}`)})
	if !errors.Is(err, lambda.ErrThrottled) || time.Since(begin) > 900*time.Millisecond {
		t.Errorf("err = %v after %v", err, time.Since(begin))
	}
	<-done
}

// writerFunc records streamed chunks as they arrive.
type chunkRecorder struct {
	mu     sync.Mutex
	chunks []string
	at     []time.Time
}

func (c *chunkRecorder) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.chunks = append(c.chunks, string(p))
	c.at = append(c.at, time.Now())
	return len(p), nil
}

func TestStreamedResponseArrivesAsWritten(t *testing.T) {
	h := start(t, "stream", lambda.Config{})
	rec := &chunkRecorder{}
	begin := time.Now()
	resp, err := h.rt.Invoke(context.Background(), lambda.Invocation{Payload: []byte(`{}`), Stream: rec})
	if err != nil || resp.Err != nil {
		t.Fatalf("invoke: %v %+v", err, resp.Err)
	}
	if !resp.Streamed || resp.ContentType != "application/vnd.awslambda.http-integration-response" || len(resp.Payload) != 0 {
		t.Errorf("streamed %v, content type %q, payload %q", resp.Streamed, resp.ContentType, resp.Payload)
	}
	all := strings.Join(rec.chunks, "")
	prelude, body, ok := strings.Cut(all, "\x00\x00\x00\x00\x00\x00\x00\x00")
	if !ok || prelude != `{"statusCode":200,"headers":{"Content-Type":"text/plain"}}` || body != "chunk 0\nchunk 1\nchunk 2\n" {
		t.Errorf("streamed %q", all)
	}
	// The first chunk came well before the end: it was not buffered.
	if first, total := rec.at[0].Sub(begin), time.Since(begin); total-first < 200*time.Millisecond {
		t.Errorf("first chunk after %v of %v: buffered", first, total)
	}

	// Without a writer, the response is buffered.
	resp2 := h.invoke(t, `{}`)
	if resp2.Streamed || !strings.HasSuffix(string(resp2.Payload), "chunk 2\n") {
		t.Errorf("collected stream: %q", resp2.Payload)
	}
}

func TestStreamErrorInTrailers(t *testing.T) {
	h := start(t, "stream-fail", lambda.Config{})
	rec := &chunkRecorder{}
	resp, err := h.rt.Invoke(context.Background(), lambda.Invocation{Payload: []byte(`{}`), Stream: rec})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Err == nil || resp.Err.Message != "lost the database mid-stream" || resp.Err.Type != "errorString" {
		t.Fatalf("error = %+v", resp.Err)
	}
	if !strings.HasSuffix(strings.Join(rec.chunks, ""), "xxxxxxxxxx") {
		t.Errorf("what was streamed before the error: %q", rec.chunks)
	}
}

// TestShutdownDrainsInFlight: SIGTERM's Shutdown lets a running
// invocation finish, refuses new ones, and stops the processes.
func TestShutdownDrainsInFlight(t *testing.T) {
	h := start(t, "sleep", lambda.Config{Prewarm: 1})
	type result struct {
		resp lambda.Response
		err  error
	}
	res := make(chan result, 1)
	go func() {
		r, err := h.rt.Invoke(context.Background(), lambda.Invocation{Payload: []byte(`{"sleep":"700ms"}`)})
		res <- result{r, err}
	}()
	for h.metric(t, "cutover_lambda_concurrent_executions") < 1 {
		time.Sleep(5 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- h.rt.Shutdown(ctx) }()
	time.Sleep(50 * time.Millisecond)
	if _, err := h.rt.Invoke(context.Background(), lambda.Invocation{Payload: []byte(`{}`)}); !errors.Is(err, lambda.ErrClosed) {
		t.Errorf("invoke while draining: %v", err)
	}
	if h.rt.Ready() {
		t.Error("ready while draining")
	}
	r := <-res
	if r.err != nil || r.resp.Err != nil {
		t.Errorf("in-flight invocation: %v %+v", r.err, r.resp.Err)
	}
	if err := <-shut; err != nil {
		t.Errorf("shutdown: %v", err)
	}
	if v := h.metric(t, "cutover_lambda_processes"); v != 0 {
		t.Errorf("%v processes left", v)
	}
}

func TestShutdownCutsOffAfterGrace(t *testing.T) {
	h := start(t, "sleep", lambda.Config{})
	res := make(chan lambda.Response, 1)
	go func() { res <- h.invoke(t, `{"sleep":"4s"}`) }()
	for h.metric(t, "cutover_lambda_concurrent_executions") < 1 {
		time.Sleep(5 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	begin := time.Now()
	if err := h.rt.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("shutdown = %v", err)
	}
	if took := time.Since(begin); took > 2*time.Second {
		t.Errorf("shutdown took %v", took)
	}
	r := <-res
	if r.Err == nil || !r.Err.Crash {
		t.Errorf("cut-off invocation: %+v", r.Err)
	}
}

// TestCrashLoopBacksOff: a function whose init always fails is restarted
// with growing delays, not in a tight loop.
func TestCrashLoopBacksOff(t *testing.T) {
	h := start(t, "echo", lambda.Config{Prewarm: 1, Backoff: 50 * time.Millisecond, Env: []string{"TESTFN_FAIL_INIT=broken"}})
	time.Sleep(1200 * time.Millisecond)
	// 50+100+200+400 ms of backoff fit in 1.2 s: about five starts, where
	// a tight loop would make hundreds.
	n := h.metric(t, "cutover_lambda_init_errors_total")
	if n < 2 || n > 7 {
		t.Errorf("%v init failures in 1.2 s", n)
	}
	if h.rt.Ready() {
		t.Error("ready although no process ever initialised")
	}
}

func TestPrewarmIsReady(t *testing.T) {
	h := start(t, "echo", lambda.Config{Prewarm: 2, Concurrency: 2})
	deadline := time.Now().Add(5 * time.Second)
	for !h.rt.Ready() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !h.rt.Ready() {
		t.Fatal("never ready")
	}
	resp := h.invoke(t, `"hi"`)
	if resp.ColdStart || string(resp.Payload) != `"hi"` {
		t.Errorf("prewarmed invocation: cold %v payload %s", resp.ColdStart, resp.Payload)
	}
}

func TestInvokeCancelledWhileQueued(t *testing.T) {
	h := start(t, "sleep", lambda.Config{})
	go func() {
		_, _ = h.rt.Invoke(context.Background(), lambda.Invocation{Payload: []byte(`{"sleep":"500ms"}`)})
	}()
	for h.metric(t, "cutover_lambda_concurrent_executions") < 1 {
		time.Sleep(5 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := h.rt.Invoke(ctx, lambda.Invocation{Payload: []byte(`{"sleep":"1ms"}`)}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v", err)
	}
}
