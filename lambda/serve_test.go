package lambda_test

import (
	"context"
	"errors"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/lambda"
	"github.com/cutoverhq/cutover/lambda/internal/lambdatest"
)

// sourceFunc is a Source made of a function.
type sourceFunc func(ctx context.Context, inv lambda.Invoker) error

func (f sourceFunc) Run(ctx context.Context, inv lambda.Invoker) error { return f(ctx, inv) }

func serveConfig(t *testing.T, env []string, src lambda.Source) lambda.ServeConfig {
	return lambda.ServeConfig{
		Runtime: lambda.Config{Command: []string{lambdatest.GoFunction(t), "echo"}, Env: append(env, "PATH="+os.Getenv("PATH")), Prewarm: 1,
			Function: lambda.FunctionConfig{Timeout: 2 * time.Second}},
		Sources: []lambda.Source{src},
	}
}

// TestServeOpensSourcesAfterInit: no source takes work before the
// function is through its init, so an HTTP port (the readiness probe's)
// stays closed until then.
func TestServeOpensSourcesAfterInit(t *testing.T) {
	begin := time.Now()
	var started time.Duration
	src := sourceFunc(func(ctx context.Context, inv lambda.Invoker) error {
		started = time.Since(begin)
		resp, err := inv.Invoke(ctx, lambda.Invocation{Payload: []byte(`1`)})
		if err != nil || resp.Err != nil || resp.ColdStart {
			t.Errorf("invoke: %v %+v cold %v", err, resp.Err, resp.ColdStart)
		}
		return nil
	})
	if err := lambda.Serve(context.Background(), serveConfig(t, []string{"TESTFN_INIT_SLEEP=300ms"}, src)); err != nil {
		t.Fatal(err)
	}
	if started < 300*time.Millisecond {
		t.Errorf("the source started %v after serve, before the 300 ms init ended", started)
	}
}

func TestServeNeverOpensSourcesForAFunctionThatCannotInit(t *testing.T) {
	var ran atomic.Bool
	src := sourceFunc(func(ctx context.Context, inv lambda.Invoker) error { ran.Store(true); return nil })
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	if err := lambda.Serve(ctx, serveConfig(t, []string{"TESTFN_FAIL_INIT=no config"}, src)); err != nil {
		t.Errorf("serve: %v", err)
	}
	if ran.Load() {
		t.Error("a source ran although the function never initialised")
	}
}

// TestServeReturnsTheSourcesFailure: a source that ends with failed
// invocations ends serve with ErrInvocationsFailed; SIGTERM (ctx) with a
// source still running ends it cleanly.
func TestServeReturnsTheSourcesFailure(t *testing.T) {
	failing := sourceFunc(func(ctx context.Context, inv lambda.Invoker) error {
		return errors.Join(lambda.ErrInvocationsFailed, errors.New("1 of 1"))
	})
	if err := lambda.Serve(context.Background(), serveConfig(t, nil, failing)); !errors.Is(err, lambda.ErrInvocationsFailed) {
		t.Errorf("serve = %v", err)
	}
	blocking := sourceFunc(func(ctx context.Context, inv lambda.Invoker) error { <-ctx.Done(); return nil })
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	if err := lambda.Serve(ctx, serveConfig(t, nil, blocking)); err != nil {
		t.Errorf("serve after cancel = %v", err)
	}
}
