package sqs

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/cutoverhq/cutover/internal/golden"
)

const testARN = "arn:aws:sqs:eu-west-1:123456789012:orders"

// readReceive reads a ReceiveMessage answer as the SQS API writes it.
func readReceive(t testing.TB, path string) []types.Message {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out struct{ Messages []types.Message }
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out.Messages
}

func buildEvent(msgs []types.Message) Event {
	var ev Event
	for _, m := range msgs {
		ev.Records = append(ev.Records, NewRecord(m, testARN, "eu-west-1"))
	}
	return ev
}

// TestEvent checks the event built from each testdata/<case>/receive.json
// against event.json, and that aws-lambda-go reads it back as the same
// messages.
func TestEvent(t *testing.T) {
	dirs, _ := filepath.Glob("testdata/*/receive.json")
	if len(dirs) == 0 {
		t.Fatal("no cases")
	}
	for _, in := range dirs {
		dir := filepath.Dir(in)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			msgs := readReceive(t, in)
			ev := buildEvent(msgs)
			b, err := ev.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, b, "", "  "); err != nil {
				t.Fatal(err)
			}
			pretty.WriteByte('\n')
			golden.Assert(t, filepath.Join(dir, "event.json"), pretty.Bytes())

			var got events.SQSEvent
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatalf("aws-lambda-go cannot read the event: %v", err)
			}
			if len(got.Records) != len(msgs) {
				t.Fatalf("%d records for %d messages", len(got.Records), len(msgs))
			}
			for i, r := range got.Records {
				m := msgs[i]
				if r.MessageId != *m.MessageId || r.Body != *m.Body || r.ReceiptHandle != *m.ReceiptHandle || r.Md5OfBody != *m.MD5OfBody {
					t.Errorf("record %d = %+v, message %+v", i, r, m)
				}
				if r.EventSource != "aws:sqs" || r.EventSourceARN != testARN || r.AWSRegion != "eu-west-1" {
					t.Errorf("record %d source fields = %q %q %q", i, r.EventSource, r.EventSourceARN, r.AWSRegion)
				}
				if len(m.Attributes) > 0 && !reflect.DeepEqual(r.Attributes, m.Attributes) {
					t.Errorf("record %d attributes = %v, want %v", i, r.Attributes, m.Attributes)
				}
				for k, a := range m.MessageAttributes {
					ga := r.MessageAttributes[k]
					if ga.DataType != *a.DataType || !reflect.DeepEqual(ga.StringValue, a.StringValue) || !bytes.Equal(ga.BinaryValue, a.BinaryValue) {
						t.Errorf("record %d attribute %s = %+v, want %+v", i, k, ga, a)
					}
				}
			}
		})
	}
}

func TestParseBatchResponse(t *testing.T) {
	ids := map[string]bool{"a": true, "b": true, "c": true}
	for _, c := range []struct {
		name, payload string
		want          []string
		whole         bool // the whole batch fails
	}{
		{name: "empty", payload: ``},
		{name: "null", payload: `null`},
		{name: "empty object", payload: `{}`},
		{name: "null list", payload: `{"batchItemFailures":null}`},
		{name: "empty list", payload: `{"batchItemFailures":[]}`},
		{name: "other keys", payload: `{"processed":3}`},
		{name: "two failed", payload: `{"batchItemFailures":[{"itemIdentifier":"b"},{"itemIdentifier":"c"}]}`, want: []string{"b", "c"}},
		{name: "duplicate", payload: `{"batchItemFailures":[{"itemIdentifier":"b"},{"itemIdentifier":"b"}]}`, want: []string{"b"}},
		{name: "whitespace", payload: " \n{\"batchItemFailures\":[{\"itemIdentifier\":\"a\"}]}\n", want: []string{"a"}},
		{name: "empty identifier", payload: `{"batchItemFailures":[{"itemIdentifier":""}]}`, whole: true},
		{name: "null identifier", payload: `{"batchItemFailures":[{"itemIdentifier":null}]}`, whole: true},
		{name: "bad key", payload: `{"batchItemFailures":[{"itemId":"a"}]}`, whole: true},
		{name: "unknown id", payload: `{"batchItemFailures":[{"itemIdentifier":"zzz"}]}`, whole: true},
		{name: "number identifier", payload: `{"batchItemFailures":[{"itemIdentifier":1}]}`, whole: true},
		{name: "list not list", payload: `{"batchItemFailures":{"itemIdentifier":"a"}}`, whole: true},
		{name: "item not object", payload: `{"batchItemFailures":["a"]}`, whole: true},
		{name: "invalid json", payload: `{"batchItemFailures":[`, whole: true},
		{name: "string answer", payload: `"ok"`, whole: true},
		{name: "list answer", payload: `[]`, whole: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseBatchResponse([]byte(c.payload), ids)
			var bf *BatchFailureError
			if c.whole != errors.As(err, &bf) {
				t.Fatalf("error = %v, want whole-batch failure %v", err, c.whole)
			}
			if !c.whole && !reflect.DeepEqual(got, c.want) {
				t.Errorf("failed = %v, want %v", got, c.want)
			}
		})
	}
}

// FuzzParseBatchResponse: any answer is either a whole-batch failure or a
// list of distinct ids of the batch; it never panics.
func FuzzParseBatchResponse(f *testing.F) {
	for _, s := range []string{``, `null`, `{}`, `{"batchItemFailures":[{"itemIdentifier":"a"}]}`, `{"batchItemFailures":[{"itemIdentifier":null}]}`, `"x"`, `{"batchItemFailures":[{"itemIdentifier":"a"},{"itemIdentifier":"b"}]}`} {
		f.Add([]byte(s))
	}
	ids := map[string]bool{"a": true, "b": true}
	f.Fuzz(func(t *testing.T, payload []byte) {
		got, err := ParseBatchResponse(payload, ids)
		if err != nil {
			var bf *BatchFailureError
			if !errors.As(err, &bf) {
				t.Fatalf("error of another type: %v", err)
			}
			return
		}
		seen := map[string]bool{}
		for _, id := range got {
			if !ids[id] || seen[id] {
				t.Fatalf("ids %v: %q not of the batch or repeated", got, id)
			}
			seen[id] = true
		}
	})
}

// FuzzEvent: any message SQS can deliver becomes an event aws-lambda-go
// reads back with the same body and attributes.
func FuzzEvent(f *testing.F) {
	dirs, _ := filepath.Glob("testdata/*/receive.json")
	for _, in := range dirs {
		for _, m := range readReceive(f, in) {
			var sv string
			var bv []byte
			for _, a := range m.MessageAttributes {
				if a.StringValue != nil {
					sv = *a.StringValue
				}
				bv = append(bv, a.BinaryValue...)
			}
			f.Add(*m.Body, sv, bv, m.Attributes["AWSTraceHeader"])
		}
	}
	f.Fuzz(func(t *testing.T, body, str string, bin []byte, trace string) {
		if !validSQSText(body) || !validSQSText(str) || !validSQSText(trace) {
			t.Skip("SQS refuses this text")
		}
		id, handle, sum, dt, bt := "id-1", "handle", "md5", "String", "Binary"
		m := types.Message{MessageId: &id, ReceiptHandle: &handle, Body: &body, MD5OfBody: &sum,
			Attributes:        map[string]string{"AWSTraceHeader": trace},
			MessageAttributes: map[string]types.MessageAttributeValue{"s": {DataType: &dt, StringValue: &str}, "b": {DataType: &bt, BinaryValue: bin}},
		}
		b, err := buildEvent([]types.Message{m}).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if len(b) != len(`{"Records":[]}`)+recordSize(NewRecord(m, testARN, "eu-west-1"))-1 {
			t.Errorf("recordSize disagrees with the event's length")
		}
		var ev events.SQSEvent
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Fatalf("aws-lambda-go cannot read %s: %v", b, err)
		}
		r := ev.Records[0]
		if r.Body != body || *r.MessageAttributes["s"].StringValue != str || !bytes.Equal(r.MessageAttributes["b"].BinaryValue, bin) || r.Attributes["AWSTraceHeader"] != trace {
			t.Errorf("round trip changed the message: %+v", r)
		}
	})
}

// validSQSText is the text SQS accepts in a body or attribute.
func validSQSText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		switch {
		case r == 0x9 || r == 0xA || r == 0xD:
		case r >= 0x20 && r <= 0xD7FF:
		case r >= 0xE000 && r <= 0xFFFD:
		case r >= 0x10000 && r <= 0x10FFFF:
		default:
			return false
		}
	}
	return true
}
