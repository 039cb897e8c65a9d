// Package job is the job event source of `cutover lambda serve`, for a
// function that ran when something invoked it (the Invoke API, S3, SNS,
// Step Functions): a Kubernetes Job runs it over its work and exits with
// a status that tells Kubernetes whether to retry: 0 when every
// invocation succeeded, 1 when some failed.
//
// The work is one event (--event, "{}" by default), or a file of events,
// one JSON document per line (--items FILE, or "-" for standard input),
// run up to --parallel at a time. Each invocation's result is written to
// standard output as one JSON line, in the order the items finish.
package job

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"

	"github.com/spf13/pflag"

	"github.com/cutoverhq/cutover/lambda"
)

func init() { lambda.RegisterSource("job", New) }

// Usage lists the source's flags, for serve's help.
const Usage = `--source job flags (exit 0 when every invocation succeeded, 1 when some failed):
  --event JSON                  the one event to invoke with (default {})
  --items FILE                  events, one JSON per line, each an invocation ("-": stdin)
  --parallel N                  items at once (default: --concurrency)
  --retries N                   retry a failed item (default 0)`

// maxItem is the largest event a line may hold: Lambda's 6 MB limit on a
// synchronous invocation's payload (its asynchronous one is 1 MB less
// strict here: the Job invokes synchronously).
const maxItem = 6 * 1024 * 1024

// Source invokes the function for each item.
type Source struct {
	// Event is the one event run when Items is empty. Nil: "{}".
	Event json.RawMessage
	// Items names the file of events, one per line; "-" is Stdin.
	// Empty: run Event once.
	Items string
	// Parallel is how many items run at once. Zero: 1.
	Parallel int
	// Retries is how many times a failed item is tried again. Zero: none.
	Retries int

	stdin  io.Reader
	stdout io.Writer
	log    *slog.Logger
	outMu  sync.Mutex
}

var _ lambda.Source = (*Source)(nil)

// New builds a Source from serve's flags for it.
func New(args []string, so lambda.SourceOptions) (lambda.Source, error) {
	fs := pflag.NewFlagSet("job", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	event := fs.String("event", "", `the one event to invoke with (JSON; default {})`)
	items := fs.String("items", "", `a file of events, one JSON document per line ("-": standard input)`)
	parallel := fs.Int("parallel", 0, "items run at once (default: serve's --concurrency)")
	retries := fs.Int("retries", 0, "times a failed item is retried")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *event != "" && *items != "" {
		return nil, errors.New("--event and --items exclude each other")
	}
	s := &Source{Items: *items, Parallel: *parallel, Retries: *retries, stdin: so.Stdin, stdout: so.Stdout, log: so.Log}
	if *event != "" {
		if !json.Valid([]byte(*event)) {
			return nil, fmt.Errorf("--event is not JSON: %q", *event)
		}
		s.Event = json.RawMessage(*event)
	}
	if s.Parallel == 0 {
		s.Parallel = max(so.Concurrency, 1)
	}
	if s.Parallel < 0 || s.Retries < 0 {
		return nil, errors.New("--parallel and --retries cannot be negative")
	}
	if s.Items == "-" && s.stdin == nil {
		return nil, errors.New("--items -: no standard input")
	}
	return s, nil
}

// result is one line of the job's output.
type result struct {
	Item      int             `json:"item"`
	RequestID string          `json:"requestId,omitempty"`
	OK        bool            `json:"ok"`
	Attempts  int             `json:"attempts"`
	Response  json.RawMessage `json:"response,omitempty"`
	Error     json.RawMessage `json:"error,omitempty"`
}

// Run invokes the function for each item and returns
// lambda.ErrInvocationsFailed (wrapped with the count) when any failed.
func (s *Source) Run(ctx context.Context, inv lambda.Invoker) error {
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.Items == "" {
		ev := s.Event
		if ev == nil {
			ev = json.RawMessage("{}")
		}
		if !s.runItem(ctx, inv, 1, ev) {
			return fmt.Errorf("%w: the invocation failed", lambda.ErrInvocationsFailed)
		}
		return nil
	}
	r := s.stdin
	if s.Items != "-" {
		f, err := os.Open(s.Items)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	var (
		wg      sync.WaitGroup
		total   int
		failed  atomic.Int64
		slots   = make(chan struct{}, s.Parallel)
		readErr error
	)
	br := bufio.NewReaderSize(r, 64*1024)
	for line := 1; ; line++ {
		b, err := readLine(br)
		if errors.Is(err, errTooLong) {
			total++
			failed.Add(1)
			s.fail(line, "InvalidEvent", err.Error())
			continue
		}
		if len(bytes.TrimSpace(b)) > 0 {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
			}
			if ctx.Err() != nil {
				break
			}
			total++
			wg.Add(1)
			go func(n int, ev []byte) {
				defer wg.Done()
				defer func() { <-slots }()
				if !s.runItem(ctx, inv, n, ev) {
					failed.Add(1)
				}
			}(line, b)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			readErr = fmt.Errorf("%s line %d: %w", s.Items, line, err)
			break
		}
	}
	wg.Wait()
	switch {
	case readErr != nil:
		return readErr
	case ctx.Err() != nil:
		return fmt.Errorf("stopped after %d items, %d failed: %w", total, failed.Load(), ctx.Err())
	case failed.Load() > 0:
		return fmt.Errorf("%w: %d of %d items", lambda.ErrInvocationsFailed, failed.Load(), total)
	}
	s.log.Info("job done", "items", total)
	return nil
}

var errTooLong = fmt.Errorf("an event over %d bytes", maxItem)

// readLine reads one line of any length up to maxItem.
func readLine(br *bufio.Reader) ([]byte, error) {
	var out []byte
	for {
		b, err := br.ReadSlice('\n')
		out = append(out, b...)
		if len(out) > maxItem+1 {
			// Skip the rest of the line, then report it.
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
			if err != nil && err != io.EOF {
				return nil, err
			}
			return nil, errTooLong
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return bytes.TrimRight(out, "\r\n"), err
	}
}

// runItem invokes one item, with retries, and writes its result.
func (s *Source) runItem(ctx context.Context, inv lambda.Invoker, n int, ev []byte) bool {
	res := result{Item: n}
	if !json.Valid(ev) {
		s.fail(n, "InvalidEvent", "the line is not JSON")
		return false
	}
	for attempt := 0; attempt <= s.Retries; attempt++ {
		res.Attempts = attempt + 1
		resp, err := inv.Invoke(context.WithoutCancel(ctx), lambda.Invocation{Payload: ev})
		if err != nil {
			res.Error, _ = json.Marshal(map[string]string{"errorType": "Invoke", "errorMessage": err.Error()})
			s.write(res)
			return false
		}
		if resp.Err == nil {
			res.OK, res.Error = true, nil
			if json.Valid(resp.Payload) && len(bytes.TrimSpace(resp.Payload)) > 0 {
				res.Response = resp.Payload
			} else if len(resp.Payload) > 0 {
				res.Response, _ = json.Marshal(string(resp.Payload))
			}
			s.write(res)
			return true
		}
		res.Error = resp.Err.JSON()
		s.log.Warn("item failed", "item", n, "attempt", attempt+1, "errorType", resp.Err.Type, "errorMessage", resp.Err.Message)
	}
	s.write(res)
	return false
}

// fail records an item that could not be invoked.
func (s *Source) fail(n int, typ, msg string) {
	s.log.Warn("item not invoked", "item", n, "error", msg)
	e, _ := json.Marshal(map[string]string{"errorType": typ, "errorMessage": msg})
	s.write(result{Item: n, Error: e})
}

func (s *Source) write(r result) {
	if s.stdout == nil {
		return
	}
	b, _ := json.Marshal(r)
	s.outMu.Lock()
	defer s.outMu.Unlock()
	_, _ = s.stdout.Write(append(b, '\n'))
}
