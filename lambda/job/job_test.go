package job_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/lambda"
	"github.com/cutoverhq/cutover/lambda/internal/lambdatest"
	_ "github.com/cutoverhq/cutover/lambda/job"
)

func TestMain(m *testing.M) {
	code := m.Run()
	lambdatest.Cleanup()
	os.Exit(code)
}

type line struct {
	Item     int             `json:"item"`
	OK       bool            `json:"ok"`
	Attempts int             `json:"attempts"`
	Response json.RawMessage `json:"response"`
	Error    struct {
		Type    string `json:"errorType"`
		Message string `json:"errorMessage"`
	} `json:"error"`
}

func lines(t *testing.T, out string) []line {
	t.Helper()
	var ls []line
	for _, s := range strings.Split(strings.TrimSpace(out), "\n") {
		if s == "" {
			continue
		}
		var l line
		if err := json.Unmarshal([]byte(s), &l); err != nil {
			t.Fatalf("output line %q: %v", s, err)
		}
		ls = append(ls, l)
	}
	sort.Slice(ls, func(i, j int) bool { return ls[i].Item < ls[j].Item })
	return ls
}

func runtime(t *testing.T, handler string) *lambda.Runtime {
	t.Helper()
	rt, err := lambda.New(lambda.Config{Command: []string{lambdatest.GoFunction(t), handler}, Concurrency: 2, Env: []string{"PATH=" + os.Getenv("PATH")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close() })
	return rt
}

// TestItemsFromAFileWithARealFunction: each line is an invocation of an
// aws-lambda-go function; a line that is not JSON fails alone, and the
// run says some failed.
func TestItemsFromAFileWithARealFunction(t *testing.T) {
	rt := runtime(t, "echo")
	file := filepath.Join(t.TempDir(), "items.jsonl")
	if err := os.WriteFile(file, []byte("{\"order\":1}\n\n{\"order\":2}\r\nnot json\n[3]"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	src, err := lambda.NewSource("job", []string{"--items", file, "--parallel", "2"}, lambda.SourceOptions{Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	err = src.Run(context.Background(), rt)
	if !errors.Is(err, lambda.ErrInvocationsFailed) || !strings.Contains(err.Error(), "1 of 4 items") {
		t.Errorf("err = %v", err)
	}
	ls := lines(t, out.String())
	if len(ls) != 4 {
		t.Fatalf("results %+v", ls)
	}
	want := []struct {
		item int
		ok   bool
		resp string
	}{{1, true, `{"order":1}`}, {3, true, `{"order":2}`}, {4, false, ""}, {5, true, `[3]`}}
	for i, w := range want {
		if ls[i].Item != w.item || ls[i].OK != w.ok || w.ok && string(ls[i].Response) != w.resp {
			t.Errorf("result %d = %+v, want %+v", i, ls[i], w)
		}
	}
	if ls[2].Error.Type != "InvalidEvent" {
		t.Errorf("bad line error %+v", ls[2].Error)
	}
}

func TestOneEventSucceedsOrFails(t *testing.T) {
	var out bytes.Buffer
	src, err := lambda.NewSource("job", []string{"--event", `{"id":7}`}, lambda.SourceOptions{Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Run(context.Background(), runtime(t, "echo")); err != nil {
		t.Errorf("echo: %v", err)
	}
	if ls := lines(t, out.String()); len(ls) != 1 || !ls[0].OK || string(ls[0].Response) != `{"id":7}` {
		t.Errorf("output %s", out.String())
	}

	out.Reset()
	src, _ = lambda.NewSource("job", nil, lambda.SourceOptions{Stdout: &out})
	err = src.Run(context.Background(), runtime(t, "error"))
	if !errors.Is(err, lambda.ErrInvocationsFailed) {
		t.Errorf("failing function: %v", err)
	}
	if ls := lines(t, out.String()); len(ls) != 1 || ls[0].OK || ls[0].Error.Type != "errorString" {
		t.Errorf("output %s", out.String())
	}
}

// fakeInvoker fails the first n invocations of each payload and counts
// how many run at once.
type fakeInvoker struct {
	failFirst int
	mu        sync.Mutex
	seen      map[string]int
	running   atomic.Int32
	peak      atomic.Int32
}

func (f *fakeInvoker) Invoke(ctx context.Context, inv lambda.Invocation) (lambda.Response, error) {
	n := f.running.Add(1)
	defer f.running.Add(-1)
	for {
		p := f.peak.Load()
		if n <= p || f.peak.CompareAndSwap(p, n) {
			break
		}
	}
	time.Sleep(20 * time.Millisecond)
	f.mu.Lock()
	f.seen[string(inv.Payload)]++
	k := f.seen[string(inv.Payload)]
	f.mu.Unlock()
	if k <= f.failFirst {
		return lambda.Response{Err: &lambda.FunctionError{Type: "Flaky", Message: "try again"}}, nil
	}
	return lambda.Response{Payload: []byte(`"ok"`)}, nil
}

func TestRetriesAndParallelism(t *testing.T) {
	f := &fakeInvoker{failFirst: 1, seen: map[string]int{}}
	var items strings.Builder
	for i := range 10 {
		items.WriteString(`{"n":` + string(rune('0'+i)) + "}\n")
	}
	var out bytes.Buffer
	src, err := lambda.NewSource("job", []string{"--items", "-", "--parallel", "3", "--retries", "1"}, lambda.SourceOptions{Stdin: strings.NewReader(items.String()), Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Run(context.Background(), f); err != nil {
		t.Fatalf("run: %v", err)
	}
	ls := lines(t, out.String())
	if len(ls) != 10 {
		t.Fatalf("%d results", len(ls))
	}
	for _, l := range ls {
		if !l.OK || l.Attempts != 2 {
			t.Errorf("item %+v", l)
		}
	}
	if p := f.peak.Load(); p != 3 {
		t.Errorf("peak parallelism %d, want 3", p)
	}
}

func TestFlagsRefused(t *testing.T) {
	for _, args := range [][]string{{"--event", "{"}, {"--event", "{}", "--items", "x"}, {"--parallel", "-1"}, {"extra"}, {"--items", "-"}} {
		if _, err := lambda.NewSource("job", args, lambda.SourceOptions{}); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
}
