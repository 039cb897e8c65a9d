package streams

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	dtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// Event sources and names Lambda writes into stream events.
const (
	// EventSourceKinesis is a Kinesis record's eventSource.
	EventSourceKinesis = "aws:kinesis"
	// EventNameKinesis is a Kinesis record's eventName.
	EventNameKinesis = "aws:kinesis:record"
	// EventSourceDynamoDB is a DynamoDB stream record's eventSource.
	EventSourceDynamoDB = "aws:dynamodb"
)

// KinesisRecord is one record of Lambda's Kinesis event, its fields in the
// order Lambda writes them.
type KinesisRecord struct {
	Kinesis      KinesisData `json:"kinesis"`
	EventSource  string      `json:"eventSource"`
	EventVersion string      `json:"eventVersion"`
	// EventID is "<shardId>:<sequenceNumber>".
	EventID   string `json:"eventID"`
	EventName string `json:"eventName"`
	// InvokeIdentityARN is the role the function runs as. Lambda always
	// writes it; empty when the pod's role is not known.
	InvokeIdentityARN string `json:"invokeIdentityArn"`
	AWSRegion         string `json:"awsRegion"`
	EventSourceARN    string `json:"eventSourceARN"`
}

// KinesisData is the kinesis object of a record.
type KinesisData struct {
	KinesisSchemaVersion string `json:"kinesisSchemaVersion"`
	PartitionKey         string `json:"partitionKey"`
	SequenceNumber       string `json:"sequenceNumber"`
	// Data is the record's bytes, base64 in the event.
	Data []byte `json:"data"`
	// ApproximateArrivalTimestamp is seconds since the epoch with
	// milliseconds, as Lambda writes it (1545084650.987).
	ApproximateArrivalTimestamp EpochSeconds `json:"approximateArrivalTimestamp"`
	// EncryptionType is "KMS" for a record of a stream with server-side
	// encryption; omitted otherwise, as Lambda does.
	EncryptionType string `json:"encryptionType,omitempty"`
}

// EpochSeconds is a time written as seconds since the epoch with up to
// millisecond decimals.
type EpochSeconds time.Time

// MarshalJSON writes 1545084650.987 (or 1545084650 for a whole second).
func (e EpochSeconds) MarshalJSON() ([]byte, error) {
	ms := time.Time(e).UnixMilli()
	sign := ""
	if ms < 0 {
		sign, ms = "-", -ms
	}
	sec, frac := ms/1000, ms%1000
	if frac == 0 {
		return []byte(sign + strconv.FormatInt(sec, 10)), nil
	}
	return []byte(sign + strings.TrimRight(fmt.Sprintf("%d.%03d", sec, frac), "0")), nil
}

// UnmarshalJSON reads seconds since the epoch.
func (e *EpochSeconds) UnmarshalJSON(b []byte) error {
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("not seconds since the epoch: %s", b)
	}
	*e = EpochSeconds(time.UnixMilli(int64(math.Round(f * 1000))))
	return nil
}

// NewKinesisRecord puts a record read from a shard into Lambda's shape.
func NewKinesisRecord(r ktypes.Record, shardID, streamARN, region, identity string) KinesisRecord {
	var arrival time.Time
	if r.ApproximateArrivalTimestamp != nil {
		arrival = *r.ApproximateArrivalTimestamp
	}
	seq := deref(r.SequenceNumber)
	data := r.Data
	if data == nil {
		data = []byte{}
	}
	out := KinesisRecord{
		Kinesis: KinesisData{KinesisSchemaVersion: "1.0", PartitionKey: deref(r.PartitionKey), SequenceNumber: seq,
			Data: data, ApproximateArrivalTimestamp: EpochSeconds(arrival)},
		EventSource: EventSourceKinesis, EventVersion: "1.0", EventID: shardID + ":" + seq, EventName: EventNameKinesis,
		InvokeIdentityARN: identity, AWSRegion: region, EventSourceARN: streamARN,
	}
	if r.EncryptionType == ktypes.EncryptionTypeKms {
		out.Kinesis.EncryptionType = string(ktypes.EncryptionTypeKms)
	}
	return out
}

// DynamoDBRecord is one record of Lambda's DynamoDB Streams event, its
// fields in the order Lambda writes them.
type DynamoDBRecord struct {
	EventID string `json:"eventID"`
	// EventName is INSERT, MODIFY or REMOVE.
	EventName    string               `json:"eventName"`
	EventVersion string               `json:"eventVersion"`
	EventSource  string               `json:"eventSource"`
	AWSRegion    string               `json:"awsRegion"`
	DynamoDB     DynamoDBStreamRecord `json:"dynamodb"`
	// EventSourceARN is the stream's ARN.
	EventSourceARN string `json:"eventSourceARN"`
	// UserIdentity is set for a deletion by Time to Live; nil (omitted)
	// otherwise.
	UserIdentity *UserIdentity `json:"userIdentity,omitempty"`
}

// DynamoDBStreamRecord is the dynamodb object of a record: the images in
// DynamoDB JSON ({"id": {"S": "o-1"}}), binary values in base64.
type DynamoDBStreamRecord struct {
	// ApproximateCreationDateTime is whole seconds since the epoch; nil
	// (omitted) when the stream did not say.
	ApproximateCreationDateTime *int64         `json:"ApproximateCreationDateTime,omitempty"`
	Keys                        map[string]any `json:"Keys,omitempty"`
	NewImage                    map[string]any `json:"NewImage,omitempty"`
	OldImage                    map[string]any `json:"OldImage,omitempty"`
	SequenceNumber              string         `json:"SequenceNumber"`
	SizeBytes                   int64          `json:"SizeBytes"`
	StreamViewType              string         `json:"StreamViewType"`
}

// UserIdentity names who made a change: for Time to Live deletions,
// principalId dynamodb.amazonaws.com and type Service.
type UserIdentity struct {
	PrincipalID string `json:"principalId"`
	Type        string `json:"type"`
}

// NewDynamoDBRecord puts a record read from a DynamoDB stream into
// Lambda's shape. It fails only on an attribute value of a type DynamoDB
// does not have.
func NewDynamoDBRecord(r dtypes.Record, streamARN string) (DynamoDBRecord, error) {
	out := DynamoDBRecord{EventID: deref(r.EventID), EventName: string(r.EventName), EventVersion: deref(r.EventVersion),
		EventSource: deref(r.EventSource), AWSRegion: deref(r.AwsRegion), EventSourceARN: streamARN}
	if out.EventSource == "" {
		out.EventSource = EventSourceDynamoDB
	}
	if out.EventVersion == "" {
		out.EventVersion = "1.1"
	}
	if r.UserIdentity != nil {
		out.UserIdentity = &UserIdentity{PrincipalID: deref(r.UserIdentity.PrincipalId), Type: deref(r.UserIdentity.Type)}
	}
	if d := r.Dynamodb; d != nil {
		if d.ApproximateCreationDateTime != nil {
			sec := d.ApproximateCreationDateTime.Unix()
			out.DynamoDB.ApproximateCreationDateTime = &sec
		}
		var err error
		if out.DynamoDB.Keys, err = attributeMap(d.Keys); err != nil {
			return out, fmt.Errorf("Keys: %w", err)
		}
		if out.DynamoDB.NewImage, err = attributeMap(d.NewImage); err != nil {
			return out, fmt.Errorf("NewImage: %w", err)
		}
		if out.DynamoDB.OldImage, err = attributeMap(d.OldImage); err != nil {
			return out, fmt.Errorf("OldImage: %w", err)
		}
		out.DynamoDB.SequenceNumber = deref(d.SequenceNumber)
		if d.SizeBytes != nil {
			out.DynamoDB.SizeBytes = *d.SizeBytes
		}
		out.DynamoDB.StreamViewType = string(d.StreamViewType)
	}
	return out, nil
}

func attributeMap(m map[string]dtypes.AttributeValue) (map[string]any, error) {
	if m == nil {
		return nil, nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		a, err := Attribute(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		out[k] = a
	}
	return out, nil
}

// Attribute writes one attribute value in DynamoDB JSON, as Lambda puts
// it in the event: {"S": "…"}, {"N": "12.5"}, {"B": base64},
// {"BOOL": true}, {"NULL": true}, {"SS"|"NS"|"BS": […]}, {"L": […]},
// {"M": {…}}.
func Attribute(v dtypes.AttributeValue) (any, error) {
	switch a := v.(type) {
	case *dtypes.AttributeValueMemberS:
		return map[string]any{"S": a.Value}, nil
	case *dtypes.AttributeValueMemberN:
		return map[string]any{"N": a.Value}, nil
	case *dtypes.AttributeValueMemberB:
		b := a.Value
		if b == nil {
			b = []byte{}
		}
		return map[string]any{"B": b}, nil
	case *dtypes.AttributeValueMemberBOOL:
		return map[string]any{"BOOL": a.Value}, nil
	case *dtypes.AttributeValueMemberNULL:
		return map[string]any{"NULL": a.Value}, nil
	case *dtypes.AttributeValueMemberSS:
		return map[string]any{"SS": nonNil(a.Value)}, nil
	case *dtypes.AttributeValueMemberNS:
		return map[string]any{"NS": nonNil(a.Value)}, nil
	case *dtypes.AttributeValueMemberBS:
		bs := make([][]byte, len(a.Value))
		for i, b := range a.Value {
			if b == nil {
				b = []byte{}
			}
			bs[i] = b
		}
		return map[string]any{"BS": bs}, nil
	case *dtypes.AttributeValueMemberL:
		l := make([]any, len(a.Value))
		for i, x := range a.Value {
			y, err := Attribute(x)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			l[i] = y
		}
		return map[string]any{"L": l}, nil
	case *dtypes.AttributeValueMemberM:
		m, err := attributeMap(a.Value)
		if err != nil {
			return nil, err
		}
		if m == nil {
			m = map[string]any{}
		}
		return map[string]any{"M": m}, nil
	case *dtypes.UnknownUnionMember:
		return nil, fmt.Errorf("attribute type %q is not one DynamoDB has", a.Tag)
	}
	return nil, fmt.Errorf("attribute value %T is not one DynamoDB has", v)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// marshal encodes without HTML escaping, as Lambda does.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// eventOf joins encoded records into {"Records":[…]}.
func eventOf(records [][]byte) []byte {
	n := len(`{"Records":[]}`) + len(records)
	for _, r := range records {
		n += len(r)
	}
	b := make([]byte, 0, n)
	b = append(b, `{"Records":[`...)
	for i, r := range records {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, r...)
	}
	return append(b, "]}"...)
}

// eventSize is the size of the event holding records of these sizes.
func eventSize(n, recordBytes int) int {
	return len(`{"Records":[]}`) + recordBytes + max(n-1, 0)
}

// BatchFailureError says why a function's answer failed its whole batch
// under ReportBatchItemFailures.
type BatchFailureError struct{ Reason string }

func (e *BatchFailureError) Error() string { return "whole batch failed: " + e.Reason }

// ParseBatchResponse reads a function's answer to a batch under
// ReportBatchItemFailures, Lambda's stream shape:
// {"batchItemFailures":[{"itemIdentifier":"<sequenceNumber>"}]}. seqs are
// the batch's sequence numbers in order. It returns the index of the
// first failed record (Lambda resumes from the lowest sequence number
// reported), or -1 when every record succeeded. As for Lambda, an empty
// or null answer, an empty object, and an empty or null list are a
// success; an answer that is not an object, or an item whose
// itemIdentifier is missing, null, empty, not a string, or not a sequence
// number of the batch, fails the whole batch (*BatchFailureError).
func ParseBatchResponse(payload []byte, seqs []string) (int, error) {
	p := bytes.TrimSpace(payload)
	if len(p) == 0 || string(p) == "null" {
		return -1, nil
	}
	if p[0] != '{' {
		return -1, &BatchFailureError{Reason: fmt.Sprintf("the function returned %s, not a batch response object", excerpt(p))}
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(p, &top); err != nil {
		return -1, &BatchFailureError{Reason: "the function's answer is not valid JSON: " + err.Error()}
	}
	raw, ok := top["batchItemFailures"]
	if !ok || string(bytes.TrimSpace(raw)) == "null" {
		return -1, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return -1, &BatchFailureError{Reason: "batchItemFailures is not a list"}
	}
	index := make(map[string]int, len(seqs))
	for i, s := range seqs {
		index[s] = i
	}
	first := -1
	for i, it := range items {
		var item map[string]json.RawMessage
		if err := json.Unmarshal(it, &item); err != nil || item == nil {
			return -1, &BatchFailureError{Reason: fmt.Sprintf("batchItemFailures[%d] is not an object", i)}
		}
		idRaw, ok := item["itemIdentifier"]
		if !ok {
			return -1, &BatchFailureError{Reason: fmt.Sprintf("batchItemFailures[%d] has no itemIdentifier", i)}
		}
		var id *string
		if err := json.Unmarshal(idRaw, &id); err != nil || id == nil || *id == "" {
			return -1, &BatchFailureError{Reason: fmt.Sprintf("batchItemFailures[%d].itemIdentifier is %s, not a sequence number", i, excerpt(idRaw))}
		}
		at, ok := index[*id]
		if !ok {
			return -1, &BatchFailureError{Reason: fmt.Sprintf("batchItemFailures[%d] names sequence number %s, not in the batch", i, excerpt([]byte(*id)))}
		}
		if first < 0 || at < first {
			first = at
		}
	}
	return first, nil
}

func excerpt(b []byte) string {
	s := string(b)
	if len(s) > 60 {
		s = s[:60] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
