package kafka

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cutoverhq/cutover/internal/golden"
)

// testInput is a case's records.json: records as Kafka holds them.
type testInput struct {
	EventSource      string `json:"eventSource"`
	ClusterARN       string `json:"clusterArn"`
	BootstrapServers string `json:"bootstrapServers"`
	Records          []struct {
		Topic         string  `json:"topic"`
		Partition     int32   `json:"partition"`
		Offset        int64   `json:"offset"`
		TimestampMs   int64   `json:"timestampMs"`
		LogAppendTime bool    `json:"logAppendTime"`
		Key           *string `json:"key"`
		Value         *string `json:"value"`
		ValueBytes    []byte  `json:"-"`
		ValueInts     []int   `json:"valueBytes"`
		Headers       []struct {
			Key        string `json:"key"`
			Value      string `json:"value"`
			ValueBytes []int  `json:"valueBytes"`
		} `json:"headers"`
	} `json:"records"`
}

func ints(ns []int) []byte {
	b := make([]byte, len(ns))
	for i, n := range ns {
		b[i] = byte(n)
	}
	return b
}

func readCase(t testing.TB, path string) (testInput, []*kgo.Record) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var in testInput
	if err := json.Unmarshal(raw, &in); err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	for _, r := range in.Records {
		k := &kgo.Record{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: time.UnixMilli(r.TimestampMs)}
		if r.LogAppendTime {
			k.Attrs = kgo.NewRecordAttrs(kgo.RecordAttrsOpts{TimestampType: 1})
		}
		if r.Key != nil {
			k.Key = []byte(*r.Key)
		}
		switch {
		case r.ValueInts != nil:
			k.Value = ints(r.ValueInts)
		case r.Value != nil:
			k.Value = []byte(*r.Value)
		}
		for _, h := range r.Headers {
			v := []byte(h.Value)
			if h.ValueBytes != nil {
				v = ints(h.ValueBytes)
			}
			k.Headers = append(k.Headers, kgo.RecordHeader{Key: h.Key, Value: v})
		}
		recs = append(recs, k)
	}
	return in, recs
}

func event(in testInput, recs []*kgo.Record) Event {
	ev := Event{EventSource: in.EventSource, EventSourceARN: in.ClusterARN, BootstrapServers: in.BootstrapServers, Records: map[string][]Record{}}
	for _, r := range recs {
		k := PartitionKey(r.Topic, r.Partition)
		ev.Records[k] = append(ev.Records[k], NewRecord(r))
	}
	return ev
}

// TestEvent checks the event built from each testdata/<case>/records.json
// against event.json, and that aws-lambda-go reads back the same records.
func TestEvent(t *testing.T) {
	cases, _ := filepath.Glob("testdata/*/records.json")
	if len(cases) == 0 {
		t.Fatal("no cases")
	}
	for _, path := range cases {
		dir := filepath.Dir(path)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			in, recs := readCase(t, path)
			b, err := event(in, recs).Marshal()
			if err != nil {
				t.Fatal(err)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, b, "", "  "); err != nil {
				t.Fatal(err)
			}
			pretty.WriteByte('\n')
			golden.Assert(t, filepath.Join(dir, "event.json"), pretty.Bytes())

			var got events.KafkaEvent
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatalf("aws-lambda-go cannot read the event: %v", err)
			}
			if got.EventSource != in.EventSource || got.EventSourceARN != in.ClusterARN || got.BootstrapServers != in.BootstrapServers {
				t.Errorf("event fields = %q %q %q", got.EventSource, got.EventSourceARN, got.BootstrapServers)
			}
			i := 0
			for _, r := range recs {
				gr := got.Records[PartitionKey(r.Topic, r.Partition)]
				var g events.KafkaRecord
				for _, x := range gr {
					if x.Offset == r.Offset {
						g = x
					}
				}
				i++
				if g.Topic != r.Topic || g.Partition != int64(r.Partition) || g.Timestamp.UnixMilli() != r.Timestamp.UnixMilli() {
					t.Errorf("record %d = %+v", r.Offset, g)
				}
				if key, _ := base64.StdEncoding.DecodeString(g.Key); !bytes.Equal(key, r.Key) {
					t.Errorf("record %d key %q, want %q", r.Offset, key, r.Key)
				}
				if val, _ := base64.StdEncoding.DecodeString(g.Value); !bytes.Equal(val, r.Value) {
					t.Errorf("record %d value %q, want %q", r.Offset, val, r.Value)
				}
				if len(g.Headers) != len(r.Headers) {
					t.Fatalf("record %d has %d headers, want %d", r.Offset, len(g.Headers), len(r.Headers))
				}
				for j, h := range r.Headers {
					if v := g.Headers[j][h.Key]; !bytes.Equal(v, h.Value) {
						t.Errorf("record %d header %d %s = %v, want %v", r.Offset, j, h.Key, []byte(v), h.Value)
					}
				}
			}
			if i != len(in.Records) {
				t.Errorf("%d records, want %d", i, len(in.Records))
			}
		})
	}
}

func TestParseBatchResponse(t *testing.T) {
	offsets := map[int64]bool{10: true, 11: true, 12: true}
	for _, c := range []struct {
		name, payload string
		want          int64
		whole         bool
	}{
		{name: "empty", payload: ``, want: -1},
		{name: "null", payload: `null`, want: -1},
		{name: "empty object", payload: `{}`, want: -1},
		{name: "empty list", payload: `{"batchItemFailures":[]}`, want: -1},
		{name: "null list", payload: `{"batchItemFailures":null}`, want: -1},
		{name: "one", payload: `{"batchItemFailures":[{"itemIdentifier":{"partition":"t-0","offset":11}}]}`, want: 11},
		{name: "lowest wins", payload: `{"batchItemFailures":[{"itemIdentifier":{"partition":"t-0","offset":12}},{"itemIdentifier":{"partition":"t-0","offset":10}}]}`, want: 10},
		{name: "string identifier", payload: `{"batchItemFailures":[{"itemIdentifier":"t-0@11"}]}`, whole: true},
		{name: "null identifier", payload: `{"batchItemFailures":[{"itemIdentifier":null}]}`, whole: true},
		{name: "other partition", payload: `{"batchItemFailures":[{"itemIdentifier":{"partition":"t-1","offset":11}}]}`, whole: true},
		{name: "offset not in batch", payload: `{"batchItemFailures":[{"itemIdentifier":{"partition":"t-0","offset":9}}]}`, whole: true},
		{name: "no offset", payload: `{"batchItemFailures":[{"itemIdentifier":{"partition":"t-0"}}]}`, whole: true},
		{name: "bad key", payload: `{"batchItemFailures":[{"id":{"partition":"t-0","offset":11}}]}`, whole: true},
		{name: "not an object", payload: `"done"`, whole: true},
		{name: "invalid", payload: `{"batchItemFailures":`, whole: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseBatchResponse([]byte(c.payload), "t-0", offsets)
			var bf *BatchFailureError
			if c.whole != errors.As(err, &bf) {
				t.Fatalf("error = %v, want whole-batch failure %v", err, c.whole)
			}
			if !c.whole && got != c.want {
				t.Errorf("resume = %d, want %d", got, c.want)
			}
		})
	}
}

func TestSignedBytes(t *testing.T) {
	b, _ := json.Marshal(SignedBytes{118, 220, 0, 127, 128, 255})
	if string(b) != `[118,-36,0,127,-128,-1]` {
		t.Errorf("marshal = %s", b)
	}
	var back SignedBytes
	if err := json.Unmarshal(b, &back); err != nil || !bytes.Equal(back, []byte{118, 220, 0, 127, 128, 255}) {
		t.Errorf("unmarshal = %v %v", back, err)
	}
}

// FuzzEvent: any record becomes an event aws-lambda-go reads back with the
// same key, value and headers; recordSize never underestimates it.
func FuzzEvent(f *testing.F) {
	cases, _ := filepath.Glob("testdata/*/records.json")
	for _, path := range cases {
		_, recs := readCase(f, path)
		for _, r := range recs {
			var hk string
			var hv []byte
			if len(r.Headers) > 0 {
				hk, hv = r.Headers[0].Key, r.Headers[0].Value
			}
			f.Add(r.Topic, r.Key, r.Value, hk, hv, r.Offset)
		}
	}
	f.Fuzz(func(t *testing.T, topic string, key, value []byte, hk string, hv []byte, offset int64) {
		r := &kgo.Record{Topic: topic, Partition: 1, Offset: offset, Key: key, Value: value, Timestamp: time.UnixMilli(1700000000000),
			Headers: []kgo.RecordHeader{{Key: hk, Value: hv}}}
		ev := Event{EventSource: SourceSelfManaged, BootstrapServers: "b:9092", Records: map[string][]Record{PartitionKey(topic, 1): {NewRecord(r)}}}
		b, err := ev.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if n := len(b) - len(`{"eventSource":"SelfManagedKafka","bootstrapServers":"b:9092","records":{}}`); n > recordSize(r) {
			t.Errorf("record takes %d bytes, recordSize says %d", n, recordSize(r))
		}
		var got events.KafkaEvent
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("aws-lambda-go cannot read %s: %v", b, err)
		}
		var g events.KafkaRecord
		for _, rs := range got.Records {
			g = rs[0]
		}
		k, _ := base64.StdEncoding.DecodeString(g.Key)
		v, _ := base64.StdEncoding.DecodeString(g.Value)
		if !bytes.Equal(k, key) || !bytes.Equal(v, value) || g.Offset != offset {
			t.Errorf("round trip changed the record: %+v", g)
		}
		if len(g.Headers) != 1 {
			t.Fatalf("headers = %v", g.Headers)
		}
		for gk, gv := range g.Headers[0] {
			// A key that is not UTF-8 arrives with U+FFFD, as from
			// Java's String.
			if !bytes.Equal(gv, hv) || (gk != hk && utf8.ValidString(hk)) {
				t.Errorf("header %q=%v, want %q=%v", gk, []byte(gv), hk, hv)
			}
		}
	})
}

// FuzzParseBatchResponse never panics and resumes only at an offset of
// the batch.
func FuzzParseBatchResponse(f *testing.F) {
	for _, s := range []string{``, `{}`, `{"batchItemFailures":[{"itemIdentifier":{"partition":"t-0","offset":11}}]}`, `{"batchItemFailures":[{"itemIdentifier":"x"}]}`} {
		f.Add([]byte(s))
	}
	offsets := map[int64]bool{10: true, 11: true}
	f.Fuzz(func(t *testing.T, payload []byte) {
		resume, err := ParseBatchResponse(payload, "t-0", offsets)
		if err != nil {
			var bf *BatchFailureError
			if !errors.As(err, &bf) {
				t.Fatalf("error of another type: %v", err)
			}
			return
		}
		if resume != -1 && !offsets[resume] {
			t.Fatalf("resume at %d, not in the batch", resume)
		}
	})
}
