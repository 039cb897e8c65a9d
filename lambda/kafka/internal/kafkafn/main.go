// Command kafkafn is a real Lambda function for the Kafka source's tests,
// built on github.com/aws/aws-lambda-go (lambda.Start, events.KafkaEvent)
// and run as a child process under the real runtime. It appends every
// record it is given to $KAFKAFN_LOG as "<topic-partition> <offset>
// <value>", and fails the first invocation holding a record whose value
// starts with "fail-once".
package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

var failed = map[string]bool{}

func handle(ctx context.Context, ev events.KafkaEvent) error {
	if ev.EventSource != "SelfManagedKafka" && ev.EventSource != "aws:kafka" {
		return fmt.Errorf("unexpected eventSource %q", ev.EventSource)
	}
	f, err := os.OpenFile(os.Getenv("KAFKAFN_LOG"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	// Check the whole batch first: a failed invocation has no effect.
	for key, recs := range ev.Records {
		for _, r := range recs {
			v, err := base64.StdEncoding.DecodeString(r.Value)
			if err != nil {
				return err
			}
			id := fmt.Sprintf("%s@%d", key, r.Offset)
			if strings.HasPrefix(string(v), "fail-once") && !failed[id] {
				failed[id] = true
				return errors.New("projection store unavailable")
			}
		}
	}
	for key, recs := range ev.Records {
		for _, r := range recs {
			v, _ := base64.StdEncoding.DecodeString(r.Value)
			fmt.Fprintf(f, "%s %d %s\n", key, r.Offset, v)
		}
	}
	return nil
}

func main() { lambda.Start(handle) }
