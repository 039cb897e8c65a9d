// Package lambdatest builds the real Lambda functions the lambda packages'
// tests run under the runtime: the aws-lambda-go function in
// lambda/internal/testfn and its shell bootstrap.
package lambdatest

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

var (
	once  sync.Once
	built string
	err   error
	dir   string
)

// GoFunction builds lambda/internal/testfn once per test binary (as a
// provided.al2023 function is built: -tags lambda.norpc) and returns the
// binary's path. The handler is its first argument or _HANDLER.
func GoFunction(t testing.TB) string {
	t.Helper()
	once.Do(func() {
		dir, err = os.MkdirTemp("", "cutover-testfn")
		if err != nil {
			return
		}
		built = filepath.Join(dir, "testfn")
		cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-o", built, "github.com/cutoverhq/cutover/lambda/internal/testfn")
		cmd.Stderr = os.Stderr
		err = cmd.Run()
	})
	if err != nil {
		t.Fatalf("cannot build the test function: %v", err)
	}
	return built
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

// Cleanup removes the built function; call it from TestMain after m.Run.
func Cleanup() {
	if dir != "" {
		_ = os.RemoveAll(dir)
	}
}
