package streams

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	dtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/cutoverhq/cutover/internal/golden"
)

// eventCase is a testdata/<case>/case.json: a GetRecords response as the
// service sends it, and what the event is built with.
type eventCase struct {
	Kind              string          `json:"kind"`
	StreamARN         string          `json:"streamArn"`
	Region            string          `json:"region"`
	ShardID           string          `json:"shardId"`
	InvokeIdentityARN string          `json:"invokeIdentityArn"`
	Response          json.RawMessage `json:"response"`
}

func readEventCase(t testing.TB, path string) eventCase {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var c eventCase
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return c
}

// fetchCase serves the case's response to the real SDK client and builds
// the event the source would send from what the SDK decoded.
func fetchCase(t testing.TB, c eventCase) []byte {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := "1.1"
		if c.Kind == DynamoDB {
			v = "1.0"
		}
		w.Header().Set("Content-Type", "application/x-amz-json-"+v)
		w.Write(c.Response)
	}))
	defer srv.Close()
	creds := credentials.NewStaticCredentialsProvider("AKIDSTUB", "stub-secret", "")
	var b backend
	if c.Kind == Kinesis {
		b = &kinesisBackend{api: kinesis.New(kinesis.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), Credentials: creds}),
			arn: c.StreamARN, region: c.Region, identity: c.InvokeIdentityARN}
	} else {
		b = &dynamodbBackend{api: dynamodbstreams.New(dynamodbstreams.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), Credentials: creds}), arn: c.StreamARN}
	}
	f, err := b.records(context.Background(), c.ShardID, "it")
	if err != nil {
		t.Fatal(err)
	}
	var recs [][]byte
	for _, r := range f.recs {
		recs = append(recs, r.json)
	}
	return eventOf(recs)
}

// TestEvent builds the event of each testdata/<case> from the service's
// response through the real SDK client, compares it with event.json, and
// checks that aws-lambda-go reads back what the service sent.
func TestEvent(t *testing.T) {
	cases, _ := filepath.Glob("testdata/*/case.json")
	if len(cases) == 0 {
		t.Fatal("no cases")
	}
	for _, path := range cases {
		dir := filepath.Dir(path)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			c := readEventCase(t, path)
			ev := fetchCase(t, c)
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, ev, "", "  "); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, ev)
			}
			pretty.WriteByte('\n')
			golden.Assert(t, filepath.Join(dir, "event.json"), pretty.Bytes())
			if c.Kind == Kinesis {
				checkKinesis(t, c, ev)
			} else {
				checkDynamoDB(t, c, ev)
			}
		})
	}
}

func checkKinesis(t *testing.T, c eventCase, ev []byte) {
	var sent struct {
		Records []struct {
			SequenceNumber              string
			ApproximateArrivalTimestamp float64
			Data                        []byte
			PartitionKey                string
			EncryptionType              string
		}
	}
	json.Unmarshal(c.Response, &sent)
	var got events.KinesisEvent
	if err := json.Unmarshal(ev, &got); err != nil {
		t.Fatalf("aws-lambda-go cannot read the event: %v", err)
	}
	if len(got.Records) != len(sent.Records) {
		t.Fatalf("%d records, want %d", len(got.Records), len(sent.Records))
	}
	for i, s := range sent.Records {
		g := got.Records[i]
		if g.EventSource != "aws:kinesis" || g.EventName != "aws:kinesis:record" || g.EventVersion != "1.0" || g.Kinesis.KinesisSchemaVersion != "1.0" {
			t.Errorf("record %d constants: %+v", i, g)
		}
		if g.EventID != c.ShardID+":"+s.SequenceNumber || g.Kinesis.SequenceNumber != s.SequenceNumber || g.Kinesis.PartitionKey != s.PartitionKey {
			t.Errorf("record %d ids: %q %q %q", i, g.EventID, g.Kinesis.SequenceNumber, g.Kinesis.PartitionKey)
		}
		if !bytes.Equal(g.Kinesis.Data, s.Data) {
			t.Errorf("record %d data %v, want %v", i, g.Kinesis.Data, s.Data)
		}
		// aws-lambda-go truncates the float's nanoseconds: a
		// millisecond off is its rounding, not the event's.
		if d := g.Kinesis.ApproximateArrivalTimestamp.UnixMilli() - int64(s.ApproximateArrivalTimestamp*1000+0.5); d < -1 || d > 0 {
			t.Errorf("record %d arrival %v, want %v", i, g.Kinesis.ApproximateArrivalTimestamp.UnixMilli(), s.ApproximateArrivalTimestamp)
		}
		if g.EventSourceArn != c.StreamARN || g.AwsRegion != c.Region || g.InvokeIdentityArn != c.InvokeIdentityARN || g.Kinesis.EncryptionType != s.EncryptionType {
			t.Errorf("record %d source fields: %q %q %q %q", i, g.EventSourceArn, g.AwsRegion, g.InvokeIdentityArn, g.Kinesis.EncryptionType)
		}
	}
}

func checkDynamoDB(t *testing.T, c eventCase, ev []byte) {
	var sent struct {
		Records []struct {
			EventID, EventName, EventVersion, AwsRegion string
			Dynamodb                                    struct {
				Keys, NewImage, OldImage map[string]any
				SequenceNumber           string
				SizeBytes                int64
				StreamViewType           string
			}
			UserIdentity *struct{ PrincipalId, Type string }
		}
	}
	json.Unmarshal(c.Response, &sent)
	var got events.DynamoDBEvent
	if err := json.Unmarshal(ev, &got); err != nil {
		t.Fatalf("aws-lambda-go cannot read the event: %v", err)
	}
	if len(got.Records) != len(sent.Records) {
		t.Fatalf("%d records, want %d", len(got.Records), len(sent.Records))
	}
	for i, s := range sent.Records {
		g := got.Records[i]
		if g.EventID != s.EventID || g.EventName != s.EventName || g.EventVersion != s.EventVersion || g.EventSource != "aws:dynamodb" ||
			g.AWSRegion != s.AwsRegion || g.EventSourceArn != c.StreamARN {
			t.Errorf("record %d fields: %+v", i, g)
		}
		d := g.Change
		if d.SequenceNumber != s.Dynamodb.SequenceNumber || d.SizeBytes != s.Dynamodb.SizeBytes || d.StreamViewType != s.Dynamodb.StreamViewType {
			t.Errorf("record %d dynamodb fields: %+v", i, d)
		}
		if d.ApproximateCreationDateTime.IsZero() {
			t.Errorf("record %d has no creation time", i)
		}
		for name, pair := range map[string][2]any{"Keys": {s.Dynamodb.Keys, d.Keys}, "NewImage": {s.Dynamodb.NewImage, d.NewImage}, "OldImage": {s.Dynamodb.OldImage, d.OldImage}} {
			// aws-lambda-go writes the image back in DynamoDB JSON:
			// the same document the service sent.
			back, _ := json.Marshal(pair[1])
			var again any
			json.Unmarshal(back, &again)
			want := any(pair[0])
			if pair[0] == nil || reflect.ValueOf(pair[0]).IsNil() {
				want = nil
				if string(back) != "null" && string(back) != "{}" {
					t.Errorf("record %d %s = %s, want none", i, name, back)
				}
				continue
			}
			var w any
			wb, _ := json.Marshal(want)
			json.Unmarshal(wb, &w)
			if !reflect.DeepEqual(again, w) {
				t.Errorf("record %d %s = %s, want %s", i, name, back, wb)
			}
		}
		if (s.UserIdentity == nil) != (g.UserIdentity == nil) || s.UserIdentity != nil && (g.UserIdentity.PrincipalID != s.UserIdentity.PrincipalId || g.UserIdentity.Type != s.UserIdentity.Type) {
			t.Errorf("record %d userIdentity %+v, want %+v", i, g.UserIdentity, s.UserIdentity)
		}
	}
}

func TestEpochSeconds(t *testing.T) {
	for _, c := range []struct {
		ms   int64
		want string
	}{{1545084650987, "1545084650.987"}, {1545084651000, "1545084651"}, {1545084651500, "1545084651.5"}, {1545084651010, "1545084651.01"}, {-1500, "-1.5"}} {
		b, _ := EpochSeconds(time.UnixMilli(c.ms)).MarshalJSON()
		if string(b) != c.want {
			t.Errorf("%d ms = %s, want %s", c.ms, b, c.want)
		}
		var back EpochSeconds
		if err := back.UnmarshalJSON(b); err != nil || time.Time(back).UnixMilli() != c.ms {
			t.Errorf("%s read back as %v (%v)", b, time.Time(back).UnixMilli(), err)
		}
	}
}

func TestAttributeRefusesUnknownTypes(t *testing.T) {
	_, err := NewDynamoDBRecord(dtypes.Record{Dynamodb: &dtypes.StreamRecord{NewImage: map[string]dtypes.AttributeValue{
		"x": &dtypes.AttributeValueMemberL{Value: []dtypes.AttributeValue{&dtypes.UnknownUnionMember{Tag: "VECTOR"}}}}}}, "arn")
	if err == nil || !strings.Contains(err.Error(), "NewImage: x: [0]") || !strings.Contains(err.Error(), "VECTOR") {
		t.Errorf("error = %v", err)
	}
}

func TestParseBatchResponse(t *testing.T) {
	seqs := []string{"100", "200", "300"}
	for _, c := range []struct {
		name, payload string
		want          int
		whole         bool
	}{
		{name: "empty", payload: ``, want: -1},
		{name: "null", payload: `null`, want: -1},
		{name: "empty object", payload: `{}`, want: -1},
		{name: "empty list", payload: `{"batchItemFailures":[]}`, want: -1},
		{name: "null list", payload: `{"batchItemFailures":null}`, want: -1},
		{name: "one", payload: `{"batchItemFailures":[{"itemIdentifier":"200"}]}`, want: 1},
		{name: "lowest wins", payload: `{"batchItemFailures":[{"itemIdentifier":"300"},{"itemIdentifier":"100"}]}`, want: 0},
		{name: "other fields kept", payload: `{"batchItemFailures":[{"itemIdentifier":"300","reason":"x"}],"state":{}}`, want: 2},
		{name: "empty identifier", payload: `{"batchItemFailures":[{"itemIdentifier":""}]}`, whole: true},
		{name: "null identifier", payload: `{"batchItemFailures":[{"itemIdentifier":null}]}`, whole: true},
		{name: "bad key name", payload: `{"batchItemFailures":[{"itemIdentifer":"200"}]}`, whole: true},
		{name: "number identifier", payload: `{"batchItemFailures":[{"itemIdentifier":200}]}`, whole: true},
		{name: "not in the batch", payload: `{"batchItemFailures":[{"itemIdentifier":"250"}]}`, whole: true},
		{name: "item not an object", payload: `{"batchItemFailures":["200"]}`, whole: true},
		{name: "list not a list", payload: `{"batchItemFailures":{"itemIdentifier":"200"}}`, whole: true},
		{name: "not an object", payload: `"done"`, whole: true},
		{name: "invalid", payload: `{"batchItemFailures":`, whole: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseBatchResponse([]byte(c.payload), seqs)
			var bf *BatchFailureError
			if c.whole != errors.As(err, &bf) {
				t.Fatalf("error = %v, want whole-batch failure %v", err, c.whole)
			}
			if !c.whole && got != c.want {
				t.Errorf("first failed = %d, want %d", got, c.want)
			}
		})
	}
}

// FuzzKinesisEvent: any record becomes an event aws-lambda-go reads back
// with the same data, partition key, sequence number and arrival.
func FuzzKinesisEvent(f *testing.F) {
	cases, _ := filepath.Glob("testdata/kinesis-*/case.json")
	for _, path := range cases {
		c := readEventCase(f, path)
		var resp struct {
			Records []struct {
				SequenceNumber string
				Data           []byte
				PartitionKey   string
				EncryptionType string
			}
		}
		json.Unmarshal(c.Response, &resp)
		for _, r := range resp.Records {
			f.Add(r.PartitionKey, r.Data, r.SequenceNumber, int64(1545084650987), r.EncryptionType == "KMS")
		}
	}
	f.Fuzz(func(t *testing.T, key string, data []byte, seq string, ms int64, kms bool) {
		ms %= 1 << 45 // within a few thousand years
		r := ktypes.Record{PartitionKey: &key, Data: data, SequenceNumber: &seq, ApproximateArrivalTimestamp: aws.Time(time.UnixMilli(ms))}
		if kms {
			r.EncryptionType = ktypes.EncryptionTypeKms
		}
		b, err := marshal(NewKinesisRecord(r, "shardId-000000000001", "arn:aws:kinesis:us-east-1:123456789012:stream/s", "us-east-1", "arn:aws:iam::123456789012:role/r"))
		if err != nil {
			t.Fatal(err)
		}
		var got events.KinesisEvent
		if err := json.Unmarshal(eventOf([][]byte{b}), &got); err != nil {
			t.Fatalf("aws-lambda-go cannot read %s: %v", b, err)
		}
		g := got.Records[0]
		if d := g.Kinesis.ApproximateArrivalTimestamp.UnixMilli() - ms; !bytes.Equal(g.Kinesis.Data, data) || d < -1 || d > 0 {
			t.Errorf("data or arrival changed: %v %d, want %v %d", g.Kinesis.Data, g.Kinesis.ApproximateArrivalTimestamp.UnixMilli(), data, ms)
		}
		if utf8.ValidString(key) && g.Kinesis.PartitionKey != key || utf8.ValidString(seq) && (g.Kinesis.SequenceNumber != seq || g.EventID != "shardId-000000000001:"+seq) {
			t.Errorf("ids changed: %q %q %q", g.Kinesis.PartitionKey, g.Kinesis.SequenceNumber, g.EventID)
		}
		if (g.Kinesis.EncryptionType == "KMS") != kms {
			t.Errorf("encryptionType %q", g.Kinesis.EncryptionType)
		}
	})
}

// attrFrom builds an attribute value from fuzz bytes: each byte picks a
// type, the next bytes its content, lists and maps nest.
func attrFrom(b []byte, depth int) (dtypes.AttributeValue, []byte) {
	if len(b) == 0 {
		return &dtypes.AttributeValueMemberNULL{Value: true}, nil
	}
	typ, b := b[0], b[1:]
	take := func() string {
		n := 0
		if len(b) > 0 {
			n, b = int(b[0])%8, b[1:]
		}
		n = min(n, len(b))
		s := string(b[:n])
		b = b[n:]
		return s
	}
	switch typ % 10 {
	case 0:
		return &dtypes.AttributeValueMemberS{Value: take()}, b
	case 1:
		return &dtypes.AttributeValueMemberN{Value: take()}, b
	case 2:
		return &dtypes.AttributeValueMemberB{Value: []byte(take())}, b
	case 3:
		return &dtypes.AttributeValueMemberBOOL{Value: typ&0x80 != 0}, b
	case 4:
		return &dtypes.AttributeValueMemberSS{Value: []string{take(), take()}}, b
	case 5:
		return &dtypes.AttributeValueMemberNS{Value: []string{take()}}, b
	case 6:
		return &dtypes.AttributeValueMemberBS{Value: [][]byte{[]byte(take()), []byte(take())}}, b
	case 7:
		if depth > 5 {
			return &dtypes.AttributeValueMemberNULL{Value: true}, b
		}
		var l []dtypes.AttributeValue
		for range int(typ>>4) % 3 {
			var v dtypes.AttributeValue
			v, b = attrFrom(b, depth+1)
			l = append(l, v)
		}
		return &dtypes.AttributeValueMemberL{Value: l}, b
	case 8:
		if depth > 5 {
			return &dtypes.AttributeValueMemberNULL{Value: true}, b
		}
		m := map[string]dtypes.AttributeValue{}
		for range int(typ>>4) % 3 {
			k := take()
			var v dtypes.AttributeValue
			v, b = attrFrom(b, depth+1)
			m[k] = v
		}
		return &dtypes.AttributeValueMemberM{Value: m}, b
	}
	return &dtypes.AttributeValueMemberNULL{Value: true}, b
}

// FuzzDynamoDBEvent: any item image becomes an event aws-lambda-go reads
// and writes back as the same DynamoDB JSON.
func FuzzDynamoDBEvent(f *testing.F) {
	f.Add([]byte{0, 3, 'a', 'b', 'c'}, "id")
	f.Add([]byte{0x17, 0, 1, 'x', 2, 2, 0, 1, 8, 0x18, 1, 'k', 3}, "pk")
	f.Add([]byte{4, 2, 'p', '2', 1, 'g', 6, 1, 0xff, 0, 0x88, 1, 'a', 5, 1, '7'}, "")
	f.Fuzz(func(t *testing.T, raw []byte, key string) {
		if !utf8.ValidString(key) {
			return
		}
		v, _ := attrFrom(raw, 0)
		r := dtypes.Record{EventID: aws.String("e"), EventName: dtypes.OperationTypeModify, Dynamodb: &dtypes.StreamRecord{
			Keys: map[string]dtypes.AttributeValue{key: v}, NewImage: map[string]dtypes.AttributeValue{key: v, "n": &dtypes.AttributeValueMemberN{Value: "1"}},
			SequenceNumber: aws.String("1234"), SizeBytes: aws.Int64(1), StreamViewType: dtypes.StreamViewTypeNewAndOldImages}}
		dr, err := NewDynamoDBRecord(r, "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/l")
		if err != nil {
			t.Fatal(err)
		}
		b, err := marshal(dr)
		if err != nil {
			t.Fatal(err)
		}
		var got events.DynamoDBEvent
		if err := json.Unmarshal(eventOf([][]byte{b}), &got); err != nil {
			t.Fatalf("aws-lambda-go cannot read %s: %v", b, err)
		}
		// What aws-lambda-go writes back is what the event said.
		back, err := json.Marshal(got.Records[0].Change.Keys)
		if err != nil {
			t.Fatal(err)
		}
		var sent struct {
			Dynamodb struct{ Keys any } `json:"dynamodb"`
		}
		json.Unmarshal(b, &sent)
		var again any
		json.Unmarshal(back, &again)
		if !reflect.DeepEqual(again, sent.Dynamodb.Keys) {
			t.Errorf("keys came back as %s from %s", back, b)
		}
	})
}

// FuzzParseBatchResponse never panics and names a record of the batch.
func FuzzParseBatchResponse(f *testing.F) {
	for _, s := range []string{``, `{}`, `{"batchItemFailures":[{"itemIdentifier":"200"}]}`, `{"batchItemFailures":[{"itemIdentifier":7}]}`, `[]`} {
		f.Add([]byte(s))
	}
	seqs := []string{"100", "200"}
	f.Fuzz(func(t *testing.T, payload []byte) {
		i, err := ParseBatchResponse(payload, seqs)
		if err != nil {
			var bf *BatchFailureError
			if !errors.As(err, &bf) {
				t.Fatalf("error of another type: %v", err)
			}
			return
		}
		if i < -1 || i >= len(seqs) {
			t.Fatalf("first failed %d is not in the batch", i)
		}
	})
}
