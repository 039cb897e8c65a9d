package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/internal/awsstub"
	"github.com/cutoverhq/cutover/internal/kinesisstub"
	"github.com/cutoverhq/cutover/metrics/prometheus/promtest"
)

var (
	testFnOnce sync.Once
	testFnPath string
	testFnErr  error
)

// testFunction builds the aws-lambda-go test function the lambda
// packages use (lambda/internal/testfn), once.
func testFunction(t *testing.T) string {
	t.Helper()
	testFnOnce.Do(func() {
		dir, err := os.MkdirTemp("", "cutover-cli-testfn")
		if err != nil {
			testFnErr = err
			return
		}
		testFnPath = filepath.Join(dir, "testfn")
		cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-o", testFnPath, "github.com/cutoverhq/cutover/lambda/internal/testfn")
		cmd.Stderr = os.Stderr
		testFnErr = cmd.Run()
	})
	if testFnErr != nil {
		t.Fatalf("cannot build the test function: %v", testFnErr)
	}
	return testFnPath
}

// TestServeParsesTheImporterCommands: the commands source/lambda writes
// into converted workloads parse into serve's flags, one group per source.
func TestServeParsesTheImporterCommands(t *testing.T) {
	env := map[string]string{"AWS_LAMBDA_FUNCTION_NAME": "payments-authorize", "AWS_LAMBDA_FUNCTION_TIMEOUT": "29", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1769"}
	getenv := func(k string) string { return env[k] }
	o, err := parseServeArgs([]string{"--source", "http", "--port", "8080", "--route", "apigw-v1 POST /payments/{paymentId}/authorize",
		"--route", "apigw-v2 GET /v2/status", "--", "/lambda-entrypoint.sh", "app.handler"}, getenv)
	if err != nil {
		t.Fatal(err)
	}
	want := []sourceArgs{{"http", []string{"--port", "8080", "--route", "apigw-v1 POST /payments/{paymentId}/authorize", "--route", "apigw-v2 GET /v2/status"}}}
	if !reflect.DeepEqual(o.sources, want) || !reflect.DeepEqual(o.command, []string{"/lambda-entrypoint.sh", "app.handler"}) {
		t.Errorf("sources %q command %q", o.sources, o.command)
	}
	if o.timeout != 29*time.Second || o.memory != 1769 || o.function != "payments-authorize" {
		t.Errorf("timeout %v memory %d function %q", o.timeout, o.memory, o.function)
	}

	// Two sources, and serve's flags between and after them.
	o, err = parseServeArgs([]string{"--concurrency", "4", "--source", "sqs", "--queue-url", "https://sqs/q", "--batch-size", "10", "--report-batch-item-failures",
		"--timeout=30s", "--source", "schedule", "--input", `{"mode": "full"}`, "--metrics", "", "--", "./bootstrap"}, getenv)
	if err != nil {
		t.Fatal(err)
	}
	want = []sourceArgs{{"sqs", []string{"--queue-url", "https://sqs/q", "--batch-size", "10", "--report-batch-item-failures"}}, {"schedule", []string{"--input", `{"mode": "full"}`}}}
	if !reflect.DeepEqual(o.sources, want) || o.concurrency != 4 || o.timeout != 30*time.Second || o.metrics != "" {
		t.Errorf("sources %q concurrency %d timeout %v metrics %q", o.sources, o.concurrency, o.timeout, o.metrics)
	}

	for _, bad := range [][]string{
		{"--source", "http"},                            // no command
		{"--source", "http", "--"},                      // empty command
		{"--port", "80", "--source", "http", "--", "x"}, // a source flag before any source
		{"--", "x"}, // no source
		{"--concurrency", "0", "--source", "job", "--", "x"},
		{"--timeout", "soon", "--source", "job", "--", "x"},
		{"--source"},
	} {
		if _, err := parseServeArgs(bad, getenv); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func runLambda(t *testing.T, ctx context.Context, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	err := Run(ctx, args, strings.NewReader(stdin), &out, &errb)
	code := ExitCode(err, &errb)
	return out.String(), errb.String(), code
}

func TestLambdaInvoke(t *testing.T) {
	fn := testFunction(t)
	ev := filepath.Join(t.TempDir(), "event.json")
	if err := os.WriteFile(ev, []byte(`{"orderId":"o-1"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errs, code := runLambda(t, context.Background(), "", "lambda", "invoke", "--event", ev, "--", fn, "echo")
	if code != 0 || out != "{\"orderId\":\"o-1\"}\n" {
		t.Errorf("echo: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if !strings.Contains(errs, "init done, handler echo") {
		t.Errorf("the function's own output is not on stderr: %q", errs)
	}

	out, errs, code = runLambda(t, context.Background(), `{}`, "lambda", "invoke", "--event", "-", "--", fn, "error")
	if code != 1 || out != "" || !strings.Contains(errs, `{"errorType":"errorString","errorMessage":"card declined: insufficient funds"}`) {
		t.Errorf("error: exit %d, stdout %q, stderr %q", code, out, errs)
	}

	_, _, code = runLambda(t, context.Background(), "not json", "lambda", "invoke", "--event", "-", "--", fn, "echo")
	if code != ExitUsage {
		t.Errorf("a non-JSON event: exit %d", code)
	}
}

func TestLambdaServeJob(t *testing.T) {
	fn := testFunction(t)
	out, errs, code := runLambda(t, context.Background(), "{\"n\":1}\n{\"n\":2}\n", "lambda", "serve", "--metrics", "", "--source", "job", "--items", "-", "--", fn, "echo")
	if code != 0 || strings.Count(out, `"ok":true`) != 2 {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errs)
	}
	_, errs, code = runLambda(t, context.Background(), "", "lambda", "serve", "--metrics", "", "--source", "job", "--", fn, "error")
	if code != 1 || !strings.Contains(errs, "invocations failed") {
		t.Errorf("failing job: exit %d, stderr %q", code, errs)
	}
	_, _, code = runLambda(t, context.Background(), "", "lambda", "serve", "--source", "nosuch", "--", fn, "echo")
	if code != ExitUsage {
		t.Errorf("unknown source: exit %d", code)
	}
	_, _, code = runLambda(t, context.Background(), "", "lambda", "serve", "--source", "http", "--bogus", "--", fn, "echo")
	if code != ExitUsage {
		t.Errorf("unknown source flag: exit %d", code)
	}
}

func waitHTTP(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s never answered 200", url)
}

// TestLambdaServeSIGTERMDrains runs the real cutover binary: SIGTERM
// while a request is in flight lets it finish, then serve exits 0.
func TestLambdaServeSIGTERMDrains(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the cutover binary")
	}
	fn := testFunction(t)
	bin := filepath.Join(t.TempDir(), "cutover")
	build := exec.Command("go", "build", "-o", bin, "github.com/cutoverhq/cutover/cmd/cutover")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		t.Fatal(err)
	}
	addr, metrics := promtest.FreeAddr(t), promtest.FreeAddr(t)
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "lambda", "serve", "--metrics", metrics, "--timeout", "10",
		"--source", "http", "--listen", addr, "--route", "apigw-v2 $default", "--", fn, "http-sleep")
	cmd.Stderr = &stderr
	cmd.Env = append(os.Environ(), "AWS_LAMBDA_FUNCTION_NAME=orders")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	waitHTTP(t, "http://"+metrics+"/readyz")

	type result struct {
		code int
		body string
		err  error
	}
	res := make(chan result, 1)
	go func() {
		resp, err := http.Get("http://" + addr + "/?sleep=800ms")
		if err != nil {
			res <- result{err: err}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		res <- result{resp.StatusCode, string(b), nil}
	}()
	time.Sleep(200 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	r := <-res
	if r.err != nil || r.code != 200 || !strings.Contains(r.body, `"pid"`) {
		t.Errorf("in-flight request: %d %q %v", r.code, r.body, r.err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("serve exited with %v; stderr:\n%s", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("serve did not exit; stderr:\n%s", stderr.String())
	}
	// Logs are JSON and the invocation's record carries its request id.
	var sawInvocation bool
	for _, l := range strings.Split(stderr.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(l), &rec) != nil {
			continue
		}
		if rec["msg"] == "invocation" && rec["requestId"] != "" && rec["outcome"] == "ok" {
			sawInvocation = true
		}
	}
	if !sawInvocation {
		t.Errorf("no invocation record in the log:\n%s", stderr.String())
	}
	if _, err := http.Get("http://" + addr + "/"); err == nil || !errors.Is(err, syscall.ECONNREFUSED) && !strings.Contains(err.Error(), "refused") {
		t.Errorf("still listening after exit: %v", err)
	}
}

func TestLambdaServeMetrics(t *testing.T) {
	fn := testFunction(t)
	addr, metrics := promtest.FreeAddr(t), promtest.FreeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		_, _, code := runLambda(t, ctx, "", "lambda", "serve", "--metrics", metrics, "--source", "http", "--listen", addr, "--", fn, "apigw-v2")
		done <- code
	}()
	waitHTTP(t, "http://"+metrics+"/readyz")
	for range 3 {
		resp, err := http.Get("http://" + addr + "/plain")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	resp, err := http.Get("http://" + metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"cutover_lambda_invocations_total 3", `cutover_lambda_http_requests_total{code="200",shape="apigw-v2"} 3`, "cutover_lambda_duration_seconds_count 3", "cutover_lambda_cold_starts_total 0", "cutover_lambda_throttles_total 0"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("exit %d", code)
	}
}

// TestLambdaServeKinesis: the command the importer writes for a Kinesis
// trigger starts and consumes (a protocol test: the SDK client serve
// builds goes to internal/kinesisstub through --endpoint-url).
func TestLambdaServeKinesis(t *testing.T) {
	fn := testFunction(t)
	awsstub.FakeEnv(t)
	stub := kinesisstub.New()
	defer stub.Close()
	arn := stub.CreateStream("card-authorisations", 1)
	var last string
	for i := range 3 {
		_, last, _ = stub.Put("card-authorisations", "card-1", []byte(fmt.Sprintf(`{"n":%d}`, i)))
	}
	cp := filepath.Join(t.TempDir(), "cp.json")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var errs string
	go func() {
		var code int
		_, errs, code = runLambda(t, ctx, "", "lambda", "serve", "--metrics", "", "--source", "kinesis", "--stream-arn", arn,
			"--region", "us-east-1", "--starting-position", "TRIM_HORIZON", "--batch-size", "500", "--bisect-on-error",
			"--endpoint-url", stub.URL, "--checkpoint-file", cp, "--", fn, "echo")
		done <- code
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, _ := os.ReadFile(cp)
		if strings.Contains(string(b), last) {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatalf("the last record was never checkpointed; stderr:\n%s", errs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("exit %d; stderr:\n%s", code, errs)
	}
}

// TestServeTakesEveryImporterCommand: every `cutover lambda serve`
// command in the Lambda importer's golden files parses, and each of its
// sources accepts its flags: the contract between convert and serve.
func TestServeTakesEveryImporterCommand(t *testing.T) {
	files, _ := filepath.Glob("../../source/lambda/testdata/*/service.json")
	if len(files) == 0 {
		t.Fatal("no importer goldens")
	}
	var seen int
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var svcs []struct {
			Name       string
			Containers []struct {
				Command []string
				Args    []string
			}
		}
		if err := json.Unmarshal(b, &svcs); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, svc := range svcs {
			for _, c := range svc.Containers {
				if len(c.Command) < 3 || c.Command[1] != "lambda" || c.Command[2] != "serve" {
					continue
				}
				seen++
				args := append(append([]string{}, c.Command[3:]...), c.Args...)
				for i, a := range args {
					// Kubernetes expands $(VAR) from the environment.
					if strings.HasPrefix(a, "$(") {
						args[i] = "filled-" + strings.Trim(a, "$()")
					}
				}
				o, err := parseServeArgs(args, func(string) string { return "" })
				if err != nil {
					t.Errorf("%s %s: %v\n%q", f, svc.Name, err, args)
					continue
				}
				for _, s := range o.sources {
					// Flags for values the user fills are not URLs or
					// ARNs yet.
					for i, a := range s.args {
						if !strings.HasPrefix(a, "filled-") || i == 0 {
							continue
						}
						switch {
						case s.args[i-1] == "--queue-url":
							s.args[i] = "https://sqs.eu-west-1.amazonaws.com/123456789012/q"
						case s.args[i-1] == "--stream-arn" && s.name == "kinesis":
							s.args[i] = "arn:aws:kinesis:eu-west-1:123456789012:stream/s"
						case s.args[i-1] == "--stream-arn" && s.name == "dynamodb":
							s.args[i] = "arn:aws:dynamodb:eu-west-1:123456789012:table/t/stream/2024-01-01T00:00:00.000"
						}
					}
					if _, err := lambdaNewSource(s); err != nil {
						t.Errorf("%s %s: --source %s %q: %v", f, svc.Name, s.name, s.args, err)
					}
				}
			}
		}
	}
	if seen == 0 {
		t.Fatal("no serve commands in the importer goldens")
	}
}

// FuzzServeArgs: any command line is parsed or refused, never a panic;
// a parsed one has a command and a source.
func FuzzServeArgs(f *testing.F) {
	f.Add("--source\x00http\x00--port\x008080\x00--\x00/lambda-entrypoint.sh\x00app.handler")
	f.Add("--concurrency=2\x00--source\x00job\x00--timeout\x00--\x00--\x00x")
	f.Fuzz(func(t *testing.T, joined string) {
		o, err := parseServeArgs(strings.Split(joined, "\x00"), func(string) string { return "" })
		if err != nil {
			return
		}
		if len(o.command) == 0 || len(o.sources) == 0 || o.concurrency < 1 {
			t.Fatalf("accepted %q as %+v", joined, o)
		}
	})
}
