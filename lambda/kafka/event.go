package kafka

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Event sources Lambda names in Kafka events.
const (
	// SourceMSK is the eventSource of an Amazon MSK cluster.
	SourceMSK = "aws:kafka"
	// SourceSelfManaged is the eventSource of any other Kafka.
	SourceSelfManaged = "SelfManagedKafka"
)

// Event is the event Lambda sends for MSK and self-managed Kafka: records
// keyed "topic-partition". This source sends one partition per event.
type Event struct {
	EventSource string `json:"eventSource"`
	// EventSourceARN is the MSK cluster's ARN; omitted for self-managed
	// Kafka, as Lambda does.
	EventSourceARN   string              `json:"eventSourceArn,omitempty"`
	BootstrapServers string              `json:"bootstrapServers"`
	Records          map[string][]Record `json:"records"`
}

// Record is one Kafka record in Lambda's shape.
type Record struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	// Timestamp is in milliseconds since the epoch.
	Timestamp     int64  `json:"timestamp"`
	TimestampType string `json:"timestampType"`
	// Key and Value are base64; absent for a null key or value (a
	// tombstone), empty for an empty one.
	Key   *string `json:"key,omitempty"`
	Value *string `json:"value,omitempty"`
	// Headers keep their order and repeats, each value as a list of
	// signed bytes (Java's byte), as Lambda sends them. Never nil.
	Headers []map[string]SignedBytes `json:"headers"`
}

// SignedBytes is a byte string as a JSON list of numbers from -128 to
// 127, the way Lambda writes Kafka header values.
type SignedBytes []byte

// MarshalJSON writes the bytes as signed numbers.
func (b SignedBytes) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(len(b)*4 + 2)
	buf.WriteByte('[')
	for i, x := range b {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.WriteString(strconv.Itoa(int(int8(x))))
	}
	buf.WriteByte(']')
	return buf.Bytes(), nil
}

// UnmarshalJSON reads signed (or unsigned) numbers back.
func (b *SignedBytes) UnmarshalJSON(data []byte) error {
	var ns []int
	if err := json.Unmarshal(data, &ns); err != nil {
		return err
	}
	out := make(SignedBytes, len(ns))
	for i, n := range ns {
		if n < -128 || n > 255 {
			return fmt.Errorf("header byte %d out of range", n)
		}
		out[i] = byte(n)
	}
	*b = out
	return nil
}

// PartitionKey is the records key of a partition: "topic-partition".
func PartitionKey(topic string, partition int32) string {
	return topic + "-" + strconv.Itoa(int(partition))
}

// NewRecord turns a consumed record into Lambda's shape.
func NewRecord(r *kgo.Record) Record {
	out := Record{
		Topic:         r.Topic,
		Partition:     r.Partition,
		Offset:        r.Offset,
		Timestamp:     r.Timestamp.UnixMilli(),
		TimestampType: timestampType(r.Attrs.TimestampType()),
		Headers:       make([]map[string]SignedBytes, 0, len(r.Headers)),
	}
	if r.Key != nil {
		s := base64.StdEncoding.EncodeToString(r.Key)
		out.Key = &s
	}
	if r.Value != nil {
		s := base64.StdEncoding.EncodeToString(r.Value)
		out.Value = &s
	}
	for _, h := range r.Headers {
		v := h.Value
		if v == nil {
			v = []byte{}
		}
		out.Headers = append(out.Headers, map[string]SignedBytes{h.Key: v})
	}
	return out
}

// timestampType names a record's timestamp type as Kafka's Java client
// does.
func timestampType(t int8) string {
	switch t {
	case 0:
		return "CREATE_TIME"
	case 1:
		return "LOG_APPEND_TIME"
	}
	return "NO_TIMESTAMP_TYPE"
}

// Marshal encodes the event without HTML escaping, as Lambda does.
func (e Event) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// recordSize is at least a record's bytes in the event, for the payload
// limit: base64 of key and value, the header bytes as numbers, the
// strings as JSON writes them, and the fixed fields.
func recordSize(r *kgo.Record) int {
	n := 160 + 2*jsonLen(r.Topic) + base64.StdEncoding.EncodedLen(len(r.Key)) + base64.StdEncoding.EncodedLen(len(r.Value))
	for _, h := range r.Headers {
		n += 8 + jsonLen(h.Key) + 5*len(h.Value)
	}
	return n
}

// jsonLen is the length of s as a JSON string's content, without HTML
// escaping: control characters, quotes and backslashes are escaped,
// invalid UTF-8 becomes \ufffd.
func jsonLen(s string) int {
	n := 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1, r == '\u2028', r == '\u2029':
			n += 6
		case r == '"' || r == '\\' || r == '\n' || r == '\r' || r == '\t':
			n += 2
		case r < 0x20:
			n += 6
		default:
			n += size
		}
		i += size
	}
	return n
}

// BatchFailureError says why a function's answer failed its whole batch
// under ReportBatchItemFailures.
type BatchFailureError struct{ Reason string }

func (e *BatchFailureError) Error() string { return "whole batch failed: " + e.Reason }

// ParseBatchResponse reads a function's answer to one partition's batch
// under ReportBatchItemFailures, Lambda's Kafka shape:
// {"batchItemFailures":[{"itemIdentifier":{"partition":"topic-0","offset":N}}]}.
// It returns the offset to resume from (the lowest reported), or -1 when
// every record succeeded. As for Lambda, an empty or null answer or list
// is a success; an answer that is not an object, an item without a
// well-formed itemIdentifier, or one naming a partition or offset not in
// the batch fails the whole batch (*BatchFailureError).
func ParseBatchResponse(payload []byte, key string, offsets map[int64]bool) (int64, error) {
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
	resume := int64(-1)
	for i, it := range items {
		var item struct {
			ItemIdentifier *struct {
				Partition *string `json:"partition"`
				Offset    *int64  `json:"offset"`
			} `json:"itemIdentifier"`
		}
		if err := json.Unmarshal(it, &item); err != nil || item.ItemIdentifier == nil {
			return -1, &BatchFailureError{Reason: fmt.Sprintf("batchItemFailures[%d] has no itemIdentifier object {partition, offset}", i)}
		}
		id := item.ItemIdentifier
		if id.Partition == nil || id.Offset == nil {
			return -1, &BatchFailureError{Reason: fmt.Sprintf("batchItemFailures[%d].itemIdentifier lacks partition or offset", i)}
		}
		if *id.Partition != key {
			return -1, &BatchFailureError{Reason: fmt.Sprintf("batchItemFailures[%d] names partition %q, not the batch's %q", i, *id.Partition, key)}
		}
		if !offsets[*id.Offset] {
			return -1, &BatchFailureError{Reason: fmt.Sprintf("batchItemFailures[%d] names offset %d, not in the batch", i, *id.Offset)}
		}
		if resume < 0 || *id.Offset < resume {
			resume = *id.Offset
		}
	}
	return resume, nil
}

func excerpt(b []byte) string {
	s := string(b)
	if len(s) > 60 {
		s = s[:60] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}
