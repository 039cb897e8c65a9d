// Command streamfn is a real Lambda function for the stream sources'
// tests, built on github.com/aws/aws-lambda-go (lambda.Start,
// events.KinesisEvent, events.DynamoDBEvent and their batch responses) and
// run as a child process under the real runtime. It appends every record
// it handles to $STREAMFN_LOG as "<shard> <sequenceNumber> <data>" (for
// DynamoDB "- <sequenceNumber> <eventName> <id> <v>"), and, once per
// record (a marker file beside the log remembers it across processes):
//
//   - fails the whole invocation holding a record whose data holds
//     "fail-batch-once", before handling any record;
//   - reports a record whose data holds "fail-item-once" as the first
//     failed item, handling the records before it.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

type record struct{ shard, seq, data string }

// once says whether this is the first time for a record and remembers it.
func once(kind, seq string) bool {
	f, err := os.OpenFile(filepath.Join(filepath.Dir(os.Getenv("STREAMFN_LOG")), kind+"-"+seq), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

// run handles records in order and returns the sequence number of the
// first failed one, or "".
func run(recs []record) (string, error) {
	for _, r := range recs {
		if strings.Contains(r.data, "fail-batch-once") && once("fail", r.seq) {
			return "", errors.New("ledger unavailable")
		}
	}
	log, err := os.OpenFile(os.Getenv("STREAMFN_LOG"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return "", err
	}
	defer log.Close()
	for _, r := range recs {
		if strings.Contains(r.data, "fail-item-once") && once("item", r.seq) {
			return r.seq, nil
		}
		fmt.Fprintf(log, "%s %s %s\n", r.shard, r.seq, r.data)
	}
	return "", nil
}

func handle(ctx context.Context, raw json.RawMessage) (any, error) {
	var peek struct {
		Records []struct {
			EventSource string `json:"eventSource"`
		}
	}
	if err := json.Unmarshal(raw, &peek); err != nil || len(peek.Records) == 0 {
		return nil, fmt.Errorf("not a stream event: %v", err)
	}
	switch src := peek.Records[0].EventSource; src {
	case "aws:kinesis":
		var ev events.KinesisEvent
		if err := json.Unmarshal(raw, &ev); err != nil {
			return nil, err
		}
		var recs []record
		for _, r := range ev.Records {
			shard, _, _ := strings.Cut(r.EventID, ":")
			if r.EventName != "aws:kinesis:record" || r.Kinesis.KinesisSchemaVersion != "1.0" || r.EventSourceArn == "" {
				return nil, fmt.Errorf("unexpected record %+v", r)
			}
			recs = append(recs, record{shard, r.Kinesis.SequenceNumber, string(r.Kinesis.Data)})
		}
		failed, err := run(recs)
		if err != nil {
			return nil, err
		}
		resp := events.KinesisEventResponse{BatchItemFailures: []events.KinesisBatchItemFailure{}}
		if failed != "" {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.KinesisBatchItemFailure{ItemIdentifier: failed})
		}
		return resp, nil
	case "aws:dynamodb":
		var ev events.DynamoDBEvent
		if err := json.Unmarshal(raw, &ev); err != nil {
			return nil, err
		}
		var recs []record
		for _, r := range ev.Records {
			v := "-"
			if img := r.Change.NewImage; img != nil {
				if n, ok := img["v"]; ok {
					v = n.Number()
				}
			}
			recs = append(recs, record{"-", r.Change.SequenceNumber, fmt.Sprintf("%s %s %s", r.EventName, r.Change.Keys["id"].String(), v)})
		}
		failed, err := run(recs)
		if err != nil {
			return nil, err
		}
		resp := events.DynamoDBEventResponse{BatchItemFailures: []events.DynamoDBBatchItemFailure{}}
		if failed != "" {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.DynamoDBBatchItemFailure{ItemIdentifier: failed})
		}
		return resp, nil
	default:
		return nil, fmt.Errorf("unexpected eventSource %q", src)
	}
}

func main() { lambda.Start(handle) }
