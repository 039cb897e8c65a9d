package sqs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// Event is the event Lambda's SQS event source mapping sends: the field
// names, their case and their order are Lambda's.
type Event struct {
	Records []Record `json:"Records"`
}

// Record is one message of an Event.
type Record struct {
	MessageID     string `json:"messageId"`
	ReceiptHandle string `json:"receiptHandle"`
	Body          string `json:"body"`
	// Attributes are the message's system attributes as SQS returned them
	// (ApproximateReceiveCount, SentTimestamp, SenderId,
	// ApproximateFirstReceiveTimestamp, AWSTraceHeader…). Never nil: {}
	// when there are none.
	Attributes map[string]string `json:"attributes"`
	// MessageAttributes are the user's message attributes. Never nil.
	MessageAttributes map[string]MessageAttribute `json:"messageAttributes"`
	// MD5OfMessageAttributes is null when the message has none, as in
	// Lambda's events.
	MD5OfMessageAttributes *string `json:"md5OfMessageAttributes"`
	MD5OfBody              string  `json:"md5OfBody"`
	EventSource            string  `json:"eventSource"`
	EventSourceARN         string  `json:"eventSourceARN"`
	AWSRegion              string  `json:"awsRegion"`
}

// MessageAttribute is a message attribute in the lowercase shape Lambda
// uses (the SQS API's is capitalised). Binary values are base64 in JSON;
// the list fields are always present, empty, as Lambda sends them.
type MessageAttribute struct {
	StringValue      *string  `json:"stringValue,omitempty"`
	BinaryValue      []byte   `json:"binaryValue,omitempty"`
	StringListValues []string `json:"stringListValues"`
	BinaryListValues [][]byte `json:"binaryListValues"`
	DataType         string   `json:"dataType"`
}

// eventSource is Lambda's eventSource for SQS records.
const eventSource = "aws:sqs"

// NewRecord turns a message as ReceiveMessage returned it into an event
// record.
func NewRecord(m types.Message, queueARN, region string) Record {
	r := Record{
		MessageID:         deref(m.MessageId),
		ReceiptHandle:     deref(m.ReceiptHandle),
		Body:              deref(m.Body),
		Attributes:        map[string]string{},
		MessageAttributes: map[string]MessageAttribute{},
		MD5OfBody:         deref(m.MD5OfBody),
		EventSource:       eventSource,
		EventSourceARN:    queueARN,
		AWSRegion:         region,
	}
	for k, v := range m.Attributes {
		r.Attributes[k] = v
	}
	for k, v := range m.MessageAttributes {
		a := MessageAttribute{
			StringValue:      v.StringValue,
			BinaryValue:      v.BinaryValue,
			StringListValues: v.StringListValues,
			BinaryListValues: v.BinaryListValues,
			DataType:         deref(v.DataType),
		}
		if a.StringListValues == nil {
			a.StringListValues = []string{}
		}
		if a.BinaryListValues == nil {
			a.BinaryListValues = [][]byte{}
		}
		r.MessageAttributes[k] = a
	}
	if m.MD5OfMessageAttributes != nil && *m.MD5OfMessageAttributes != "" {
		s := *m.MD5OfMessageAttributes
		r.MD5OfMessageAttributes = &s
	}
	return r
}

// Marshal encodes the event as Lambda does: no HTML escaping, so a body
// holding "<" or "&" reaches the function byte for byte as JSON text.
func (e Event) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// recordSize is how many bytes a record adds to the event, for the
// invocation payload limit.
func recordSize(r Record) int {
	b, err := Event{Records: []Record{r}}.Marshal()
	if err != nil {
		return 0
	}
	return len(b) - len(`{"Records":[]}`) + 1 // the comma before it
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// BatchFailureError says why a function's answer made its whole batch a
// failure under ReportBatchItemFailures.
type BatchFailureError struct{ Reason string }

func (e *BatchFailureError) Error() string { return "whole batch failed: " + e.Reason }

// ParseBatchResponse reads a function's answer to a batch under
// ReportBatchItemFailures and returns the ids of the messages it reports
// failed. It follows Lambda's rules:
//
//   - an empty or null answer, an answer without batchItemFailures, or
//     with it null or empty: every message succeeded;
//   - an answer that is not a JSON object, a batchItemFailures that is not
//     a list, an item without a non-empty string itemIdentifier (a null
//     or empty one, or one under another key), or an itemIdentifier that
//     names no message of the batch: the whole batch failed
//     (*BatchFailureError).
func ParseBatchResponse(payload []byte, ids map[string]bool) ([]string, error) {
	p := bytes.TrimSpace(payload)
	if len(p) == 0 || string(p) == "null" {
		return nil, nil
	}
	if p[0] != '{' {
		return nil, &BatchFailureError{Reason: fmt.Sprintf("the function returned %s, not a batch response object", excerpt(p))}
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(p, &top); err != nil {
		return nil, &BatchFailureError{Reason: "the function's answer is not valid JSON: " + err.Error()}
	}
	raw, ok := top["batchItemFailures"]
	if !ok || string(bytes.TrimSpace(raw)) == "null" {
		return nil, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, &BatchFailureError{Reason: "batchItemFailures is not a list"}
	}
	var failed []string
	seen := map[string]bool{}
	for i, it := range items {
		var item map[string]json.RawMessage
		if err := json.Unmarshal(it, &item); err != nil || item == nil {
			return nil, &BatchFailureError{Reason: fmt.Sprintf("batchItemFailures[%d] is not an object", i)}
		}
		rawID, ok := item["itemIdentifier"]
		if !ok {
			return nil, &BatchFailureError{Reason: fmt.Sprintf("batchItemFailures[%d] has no itemIdentifier", i)}
		}
		var id *string
		if err := json.Unmarshal(rawID, &id); err != nil || id == nil || *id == "" {
			return nil, &BatchFailureError{Reason: fmt.Sprintf("batchItemFailures[%d].itemIdentifier is null, empty or not a string", i)}
		}
		if !ids[*id] {
			return nil, &BatchFailureError{Reason: fmt.Sprintf("batchItemFailures[%d].itemIdentifier %q is no message id of the batch", i, *id)}
		}
		if !seen[*id] {
			seen[*id] = true
			failed = append(failed, *id)
		}
	}
	return failed, nil
}

// excerpt shortens a payload for an error message.
func excerpt(b []byte) string {
	s := string(b)
	if len(s) > 60 {
		s = s[:60] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}
