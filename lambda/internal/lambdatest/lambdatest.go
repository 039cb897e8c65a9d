// Package lambdatest builds the real Lambda functions the lambda packages'
// tests run under the runtime: the aws-lambda-go function in
// lambda/internal/testfn, each source's own function and the shell
// bootstrap.
package lambdatest

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/lambda"
)

var (
	mu     sync.Mutex
	dir    string
	builds = map[string]*build{}
)

type build struct {
	once sync.Once
	path string
	err  error
}

// GoFunction builds lambda/internal/testfn once per test binary and
// returns the binary's path. The handler is its first argument or
// _HANDLER.
func GoFunction(t testing.TB) string {
	t.Helper()
	return Build(t, "github.com/cutoverhq/cutover/lambda/internal/testfn")
}

// Build builds the function in the package pkg (an import path) once per
// test binary, as a provided.al2023 function is built (-tags lambda.norpc),
// and returns the binary's path.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	mu.Lock()
	b := builds[pkg]
	if b == nil {
		b = &build{}
		builds[pkg] = b
	}
	mu.Unlock()
	b.once.Do(func() {
		mu.Lock()
		if dir == "" {
			dir, b.err = os.MkdirTemp("", "cutover-testfn")
		}
		d := dir
		mu.Unlock()
		if b.err != nil {
			return
		}
		b.path = filepath.Join(d, filepath.Base(pkg))
		cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-o", b.path, pkg)
		cmd.Stderr = os.Stderr
		b.err = cmd.Run()
	})
	if b.err != nil {
		t.Fatalf("cannot build the test function: %v", b.err)
	}
	return b.path
}

// Bootstrap is the path of the shell bootstrap (bash and curl, as AWS's
// custom runtime tutorial writes one). _HANDLER names its handler: echo,
// upper or fail.
func Bootstrap(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	p := filepath.Join(filepath.Dir(file), "..", "testfn", "bootstrap")
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("the shell bootstrap needs curl (hack/deps.sh installs it)")
	}
	return p
}

// Cleanup removes the built functions; call it from TestMain after m.Run.
func Cleanup() {
	mu.Lock()
	defer mu.Unlock()
	if dir != "" {
		_ = os.RemoveAll(dir)
	}
}

// Run runs src with inv until the test ends; the returned stop cancels it
// and returns Run's error (the same error on every call).
func Run(t testing.TB, src lambda.Source, inv lambda.Invoker) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, inv) }()
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(30 * time.Second):
				runErr = errors.New("Run did not return 30 s after its context ended")
			}
		})
		return runErr
	}
	t.Cleanup(func() { stop() })
	return stop
}

// WaitFor polls cond until it holds, failing the test after d.
func WaitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
