package schedule_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/cutoverhq/cutover/lambda"
	"github.com/cutoverhq/cutover/lambda/internal/lambdatest"
	"github.com/cutoverhq/cutover/lambda/schedule"
)

func TestMain(m *testing.M) {
	code := m.Run()
	lambdatest.Cleanup()
	os.Exit(code)
}

func runtime(t *testing.T, handler string) *lambda.Runtime {
	t.Helper()
	rt, err := lambda.New(lambda.Config{Command: []string{lambdatest.GoFunction(t), handler}, Env: []string{"PATH=" + os.Getenv("PATH")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close() })
	return rt
}

var fn = lambda.FunctionConfig{Name: "settlement", Region: "eu-central-1", Account: "123456789012"}

// TestScheduledEventReachesAGoFunction: the function gets EventBridge's
// scheduled event, decodable as aws-lambda-go's CloudWatchEvent.
func TestScheduledEventReachesAGoFunction(t *testing.T) {
	var out bytes.Buffer
	src, err := lambda.NewSource("schedule", nil, lambda.SourceOptions{Function: fn, Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Run(context.Background(), runtime(t, "echo")); err != nil {
		t.Fatal(err)
	}
	var ev events.CloudWatchEvent
	if err := json.Unmarshal(out.Bytes(), &ev); err != nil {
		t.Fatalf("%s: %v", out.Bytes(), err)
	}
	if ev.DetailType != "Scheduled Event" || ev.Source != "aws.events" || ev.Region != "eu-central-1" || ev.AccountID != "123456789012" ||
		len(ev.Resources) != 1 || ev.Resources[0] != "arn:aws:events:eu-central-1:123456789012:rule/settlement" || string(ev.Detail) != "{}" {
		t.Errorf("event %+v", ev)
	}
	if time.Since(ev.Time) > time.Minute || ev.ID == "" {
		t.Errorf("time %v id %q", ev.Time, ev.ID)
	}
}

func TestInputIsTheEvent(t *testing.T) {
	var out bytes.Buffer
	src, err := lambda.NewSource("schedule", []string{"--input", `{"mode": "full"}`}, lambda.SourceOptions{Function: fn, Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Run(context.Background(), runtime(t, "echo")); err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(out.String()) != `{"mode":"full"}` {
		t.Errorf("output %q", out.String())
	}
}

func TestFailedRunFailsTheJob(t *testing.T) {
	var out bytes.Buffer
	src, err := lambda.NewSource("schedule", nil, lambda.SourceOptions{Function: fn, Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	rt := runtime(t, "error")
	err = src.Run(context.Background(), rt)
	// Lambda's asynchronous retries: three attempts in all.
	if !errors.Is(err, lambda.ErrInvocationsFailed) || !strings.Contains(err.Error(), "after 3 attempt(s)") {
		t.Errorf("err = %v", err)
	}
	if !strings.Contains(out.String(), `"errorMessage":"card declined: insufficient funds"`) {
		t.Errorf("output %q", out.String())
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{{"--input", "{"}, {"--retries", "-1"}, {"x"}} {
		if _, err := schedule.New(args, lambda.SourceOptions{}); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
}
