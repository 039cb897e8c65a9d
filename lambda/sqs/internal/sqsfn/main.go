// Command sqsfn is a real Lambda function for the SQS source's tests,
// built on github.com/aws/aws-lambda-go (lambda.Start, events.SQSEvent,
// events.SQSEventResponse) and run as a child process under the real
// runtime. What it does with a message depends on the message's body:
//
//	fail-once…   reported in batchItemFailures on its first delivery
//	error-once…  fails the whole invocation on its first delivery
//	sleep:<d>…   sleeps d before answering
//
// Every delivery is appended to the file $SQSFN_LOG as
// "<body> <ApproximateReceiveCount>", so tests see exactly what ran.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

var mu sync.Mutex

func record(body, count string) {
	mu.Lock()
	defer mu.Unlock()
	f, err := os.OpenFile(os.Getenv("SQSFN_LOG"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		panic(err)
	}
	defer f.Close()
	fmt.Fprintf(f, "%s %s\n", body, count)
}

func handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	var resp events.SQSEventResponse
	var fail error
	for _, m := range ev.Records {
		count := m.Attributes["ApproximateReceiveCount"]
		record(m.Body, count)
		if d, ok := strings.CutPrefix(m.Body, "sleep:"); ok {
			t, _ := time.ParseDuration(strings.Fields(d)[0])
			time.Sleep(t)
		}
		if count != "1" {
			continue
		}
		switch {
		case strings.HasPrefix(m.Body, "fail-once"):
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: m.MessageId})
		case strings.HasPrefix(m.Body, "error-once"):
			fail = errors.New("ledger unavailable")
		}
	}
	if fail != nil {
		return events.SQSEventResponse{}, fail
	}
	return resp, nil
}

func main() { lambda.Start(handle) }
