// Package lambda runs unmodified AWS Lambda functions on Kubernetes. It
// serves the Lambda Runtime API (2018-06-01) to a pool of function
// processes, each started as a child with the environment Lambda gives
// it, and feeds them invocations from event sources: HTTP (API Gateway and
// ALB event shapes), SQS, Kafka, a schedule or a Job.
//
// The pieces meet at two small interfaces. An Invoker runs one invocation
// on the function; the Runtime (a pool of processes) is the one real
// implementation. A Source turns something outside (an HTTP request, a
// queue message, a line of a file) into invocations and their results
// back into what the outside expects. Sources live in their own packages
// (lambda/http, lambda/sqs, …) and register a constructor with
// RegisterSource, so `cutover lambda serve --source NAME` finds them.
package lambda

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cutoverhq/cutover/internal/registry"
)

// Invoker runs one invocation on the function.
//
// Invoke waits for a free function process while ctx allows (and at most
// the runtime's throttle wait: then ErrThrottled). Once the invocation is
// handed to a process it runs to its end or its deadline whatever ctx
// does, as on Lambda, where a caller that goes away does not stop the
// function; so a source that stops on SIGTERM still gets the results of
// what it started. A function failure is not an error: it is
// Response.Err. Invoke is safe for concurrent use.
type Invoker interface {
	Invoke(ctx context.Context, inv Invocation) (Response, error)
}

// Invocation is one event for the function.
type Invocation struct {
	// Payload is the event, usually JSON, handed to the function as is.
	Payload []byte
	// RequestID is the invocation's id (Lambda-Runtime-Aws-Request-Id).
	// Empty: the runtime generates a UUID.
	RequestID string
	// Deadline is when the invocation times out. Zero: now plus the
	// function's timeout. A deadline later than that is cut to it.
	Deadline time.Time
	// TraceID is the X-Ray trace header (Lambda-Runtime-Trace-Id), also
	// set as _X_AMZN_TRACE_ID for the function. Empty: none is sent.
	TraceID string
	// ClientContext is the mobile client context JSON
	// (Lambda-Runtime-Client-Context). Nil: none is sent.
	ClientContext []byte
	// CognitoIdentity is the Cognito identity JSON
	// (Lambda-Runtime-Cognito-Identity). Nil: none is sent.
	CognitoIdentity []byte
	// Stream, when not nil, makes this a response-streaming invocation
	// (Lambda's InvokeWithResponseStream, a function URL in
	// RESPONSE_STREAM mode): the response body is written here as the
	// function sends it, with no size limit, and Response.Payload stays
	// empty. If it is a StreamStarter, it learns the response's content
	// type before the first byte; if it has a Flush method, it is flushed
	// after each chunk. Nil: the response is buffered into
	// Response.Payload, up to Lambda's 6 MB (20 MB for a function that
	// streams).
	Stream io.Writer
}

// StreamStarter is an Invocation.Stream that needs a streamed response's
// content type before its body (the HTTP source: the content type says
// whether the body begins with an HTTP status-and-headers prelude).
type StreamStarter interface {
	StartStream(contentType string)
}

// Response is what the function answered.
type Response struct {
	// Payload is the response body the function posted (or streamed,
	// when Invocation.Stream was nil). Empty when the function failed.
	Payload []byte
	// ContentType is the Content-Type the function posted its response
	// with; for a streamed HTTP response
	// "application/vnd.awslambda.http-integration-response". Empty: not
	// given.
	ContentType string
	// Err is set when the function reported an error (…/error), crashed,
	// or timed out. Nil: the function succeeded.
	Err *FunctionError
	// Streamed says the response went to Invocation.Stream as it came.
	Streamed bool
	// Duration is how long the invocation ran on its process, from
	// handing it out on …/next to the response.
	Duration time.Duration
	// ColdStart says the invocation started its process, so it waited
	// for the process's start and init, as a Lambda cold start does. The
	// first invocation on a prewarmed process is not one.
	ColdStart bool
}

// FunctionError is a function's failure, in the shape Lambda reports it
// to callers: {"errorType", "errorMessage", "stackTrace"}.
type FunctionError struct {
	// Type is the errorType (Lambda-Runtime-Function-Error-Type or the
	// body's errorType): "errorString", "Runtime.ExitError",
	// "Sandbox.Timedout"… Empty: the function gave none.
	Type string `json:"errorType,omitempty"`
	// Message is the errorMessage.
	Message string `json:"errorMessage"`
	// StackTrace is the stackTrace exactly as the runtime client sent it
	// (a list of strings for Node and Python, of frame objects for Go).
	// Nil: none.
	StackTrace json.RawMessage `json:"stackTrace,omitempty"`
	// Timeout says the invocation ran past its deadline and its process
	// was killed.
	Timeout bool `json:"-"`
	// Crash says the process exited (or failed its init) during the
	// invocation instead of answering it.
	Crash bool `json:"-"`
}

func (e *FunctionError) Error() string {
	if e.Type == "" {
		return e.Message
	}
	return e.Type + ": " + e.Message
}

// JSON is the error as Lambda returns it to a synchronous caller.
func (e *FunctionError) JSON() []byte {
	b, err := json.Marshal(e)
	if err != nil {
		// Only an invalid StackTrace can fail; drop it.
		c := *e
		c.StackTrace = nil
		b, _ = json.Marshal(&c)
	}
	return b
}

// Errors Invoke returns when no invocation ran.
var (
	// ErrThrottled: every process stayed busy for the runtime's throttle
	// wait (Lambda's TooManyRequestsException, HTTP 429).
	ErrThrottled = errors.New("lambda: throttled: no free function process")
	// ErrClosed: the runtime is shutting down and takes no new work.
	ErrClosed = errors.New("lambda: runtime is shutting down")
)

// Source feeds invocations until ctx ends or the source is exhausted
// (schedule, job). Cancelling ctx means stop taking new work: Run then
// waits for the invocations it started and returns nil. An error means the
// source itself failed (a listener could not bind, a queue cannot be
// read) or, for a source that ends on its own, ErrInvocationsFailed.
type Source interface {
	Run(ctx context.Context, inv Invoker) error
}

// ErrInvocationsFailed is what a source that ends on its own (schedule,
// job) returns, wrapped with a count, when some of its invocations failed:
// serve exits 1 for it, which tells a Kubernetes Job to retry.
var ErrInvocationsFailed = errors.New("invocations failed")

// SourceOptions is what serve gives every source's constructor.
type SourceOptions struct {
	// Log is the source's logger. Nil: logs are discarded.
	Log *slog.Logger
	// Registerer is where the source registers its own metrics
	// (cutover_lambda_<source>_…). Nil: the source registers none.
	Registerer prometheus.Registerer
	// Function is what the source may need to know of the function.
	Function FunctionConfig
	// Stdin is what a source that reads items may read (job reads "-"
	// from it). Nil: no standard input.
	Stdin io.Reader
	// Concurrency is serve's --concurrency, the most invocations the
	// runtime runs at once: a source that polls (sqs, kafka) runs that
	// many batches at a time, so no batch waits for a process while its
	// messages are held. Zero: 1.
	Concurrency int
	// Stdout is where a source that ends on its own writes each
	// invocation's result (schedule, job). Nil: results are only logged.
	Stdout io.Writer
}

// NewSourceFunc builds a source from its command-line words: those after
// `--source NAME` up to the next --source or the "--" before the command
// (serve's own flags already taken out, so a source must not define
// --concurrency, --prewarm, --timeout, --throttle-wait, --init-timeout,
// --grace, --metrics, --function-name, --memory, --account or
// --log-level). It parses and checks
// them and does no I/O; its errors are the user's (exit 2).
type NewSourceFunc func(args []string, opt SourceOptions) (Source, error)

var sources = registry.New[NewSourceFunc]("lambda event source")

// RegisterSource makes a source available to `serve --source name`. It is
// called from an init func; a duplicate name panics.
func RegisterSource(name string, fn NewSourceFunc) { sources.Register(name, fn) }

// NewSource builds the source registered under name. An unknown name is an
// error listing the known ones.
func NewSource(name string, args []string, opt SourceOptions) (Source, error) {
	fn, err := sources.Lookup(name)
	if err != nil {
		return nil, err
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	s, err := fn(args, opt)
	if err != nil {
		return nil, fmt.Errorf("--source %s: %w", name, err)
	}
	return s, nil
}

// SourceNames lists the registered sources, sorted.
func SourceNames() []string { return sources.Names() }

// FunctionConfig is what Lambda knows of a function and tells its runtime
// through the environment.
type FunctionConfig struct {
	// Name is AWS_LAMBDA_FUNCTION_NAME. Empty: "function".
	Name string
	// Version is AWS_LAMBDA_FUNCTION_VERSION. Empty: "$LATEST".
	Version string
	// MemoryMB is AWS_LAMBDA_FUNCTION_MEMORY_SIZE. Zero: 128, Lambda's
	// default. The runtime does not enforce it: the pod's limit does.
	MemoryMB int
	// Timeout is the longest one invocation may run. Zero: 3 s, Lambda's
	// default.
	Timeout time.Duration
	// Region is AWS_REGION. Empty: left as the environment has it.
	Region string
	// Account is the account id in the function ARN the runtime hands
	// out. Empty: "000000000000".
	Account string
	// Handler is _HANDLER. Empty: left as the environment has it.
	Handler string
}

// withDefaults fills the zero values with what their docs say.
func (c FunctionConfig) withDefaults() FunctionConfig {
	if c.Name == "" {
		c.Name = "function"
	}
	if c.Version == "" {
		c.Version = "$LATEST"
	}
	if c.MemoryMB == 0 {
		c.MemoryMB = 128
	}
	if c.Timeout == 0 {
		c.Timeout = 3 * time.Second
	}
	if c.Account == "" {
		c.Account = "000000000000"
	}
	return c
}

// ARN is the function ARN the runtime hands out as
// Lambda-Runtime-Invoked-Function-Arn.
func (c FunctionConfig) ARN() string {
	c = c.withDefaults()
	region := c.Region
	if region == "" {
		region = "us-east-1"
	}
	return fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", region, c.Account, c.Name)
}
