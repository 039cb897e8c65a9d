// Package schedule is the schedule event source of `cutover lambda
// serve`, for a function an EventBridge rule or EventBridge Scheduler ran
// on a timetable: the Kubernetes CronJob keeps the timetable, and each of
// its runs invokes the function once with the event EventBridge would
// have sent (retrying a failure twice, as Lambda retries an asynchronous
// invocation), then exits: 0 if the function succeeded, 1 if it failed.
package schedule

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/spf13/pflag"

	"github.com/cutoverhq/cutover/lambda"
)

func init() { lambda.RegisterSource("schedule", New) }

// Usage lists the source's flags, for serve's help.
const Usage = `--source schedule flags (one invocation, then exit 0, or 1 if it failed):
  --input JSON                  the event, as the rule's Input (default: EventBridge's scheduled event)
  --rule ARN                    the rule the scheduled event names
  --retries N                   retry a failed invocation within the run (default 2, as Lambda
                                retries an asynchronous invocation; 0 leaves it to the Job's backoffLimit)`

// Source invokes the function once.
type Source struct {
	// Input is the event: the rule's constant input, or nil for the
	// scheduled event EventBridge sends.
	Input json.RawMessage
	// Rule is the ARN the scheduled event names in resources.
	Rule string
	// Account and Region are the scheduled event's.
	Account, Region string
	// Retries is how many times a failed invocation is tried again in
	// this run before the run fails. Zero: none; the Job's backoffLimit
	// decides. The flag's default is 2: EventBridge invoked the function
	// asynchronously, and Lambda retries a failed asynchronous invocation
	// twice.
	Retries int
	// Now is the clock. Nil: time.Now.
	Now func() time.Time

	log    *slog.Logger
	stdout io.Writer
}

var _ lambda.Source = (*Source)(nil)

// New builds a Source from serve's flags for it.
func New(args []string, so lambda.SourceOptions) (lambda.Source, error) {
	fs := pflag.NewFlagSet("schedule", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	input := fs.String("input", "", "the event, as the rule's Input (JSON); default: EventBridge's scheduled event")
	rule := fs.String("rule", "", "the rule ARN the scheduled event names (default: a rule named after the function)")
	retries := fs.Int("retries", 2, "times a failed invocation is retried within the run (Lambda retries an asynchronous invocation twice)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	s := &Source{Rule: *rule, Account: so.Function.Account, Region: so.Function.Region, Retries: *retries, log: so.Log, stdout: so.Stdout}
	if *input != "" {
		if !json.Valid([]byte(*input)) {
			return nil, fmt.Errorf("--input is not JSON: %q", *input)
		}
		s.Input = json.RawMessage(*input)
	}
	if s.Retries < 0 {
		return nil, fmt.Errorf("--retries %d is negative", s.Retries)
	}
	if s.Account == "" {
		s.Account = "000000000000"
	}
	if s.Region == "" {
		s.Region = "us-east-1"
	}
	if s.Rule == "" {
		name := so.Function.Name
		if name == "" {
			name = "function"
		}
		s.Rule = fmt.Sprintf("arn:aws:events:%s:%s:rule/%s", s.Region, s.Account, name)
	}
	return s, nil
}

// scheduledEvent is what EventBridge sends for a schedule rule
// (aws-lambda-go's events.CloudWatchEvent).
type scheduledEvent struct {
	Version    string          `json:"version"`
	ID         string          `json:"id"`
	DetailType string          `json:"detail-type"`
	Source     string          `json:"source"`
	Account    string          `json:"account"`
	Time       string          `json:"time"`
	Region     string          `json:"region"`
	Resources  []string        `json:"resources"`
	Detail     json.RawMessage `json:"detail"`
}

// Event is the payload of one run.
func (s *Source) Event() []byte {
	if s.Input != nil {
		return s.Input
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	var id [16]byte
	_, _ = rand.Read(id[:])
	x := hex.EncodeToString(id[:])
	b, _ := json.Marshal(scheduledEvent{
		Version:    "0",
		ID:         x[:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:],
		DetailType: "Scheduled Event",
		Source:     "aws.events",
		Account:    s.Account,
		Time:       now().UTC().Truncate(time.Second).Format(time.RFC3339),
		Region:     s.Region,
		Resources:  []string{s.Rule},
		Detail:     json.RawMessage("{}"),
	})
	return b
}

// Run invokes once (and up to Retries more times while it fails).
func (s *Source) Run(ctx context.Context, inv lambda.Invoker) error {
	log := s.log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	payload := s.Event()
	var last *lambda.FunctionError
	for attempt := 0; attempt <= s.Retries; attempt++ {
		if ctx.Err() != nil {
			return fmt.Errorf("stopped before the run succeeded: %w", ctx.Err())
		}
		resp, err := inv.Invoke(ctx, lambda.Invocation{Payload: payload})
		if err != nil {
			return err
		}
		if resp.Err == nil {
			log.Info("scheduled invocation succeeded", "attempt", attempt+1, "durationMs", resp.Duration.Milliseconds())
			if s.stdout != nil {
				_, _ = s.stdout.Write(append(resp.Payload, '\n'))
			}
			return nil
		}
		last = resp.Err
		log.Warn("scheduled invocation failed", "attempt", attempt+1, "errorType", resp.Err.Type, "errorMessage", resp.Err.Message)
	}
	if s.stdout != nil {
		_, _ = s.stdout.Write(append(last.JSON(), '\n'))
	}
	return fmt.Errorf("%w: the scheduled run failed after %d attempt(s): %v", lambda.ErrInvocationsFailed, s.Retries+1, errors.New(last.Error()))
}
