package streams

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/source"
)

const goodCheckpoint = `{
  "version": 1,
  "streamArn": "arn:aws:kinesis:us-east-1:123456789012:stream/s",
  "shards": {
    "shardId-000000000000": {"sequenceNumber": "49590338271490256608559692538361571095921575989136588898", "updated": "2024-05-01T10:00:00Z"},
    "shardId-000000000001": {"finished": true, "sequenceNumber": "49590338271490256608559692538361571095921575989136588899", "updated": "2024-05-01T10:00:00Z"},
    "shardId-000000000002": {"start": "LATEST", "timestamp": "2024-05-01T10:00:00Z", "updated": "2024-05-01T10:00:00Z"},
    "shardId-000000000003": {"start": "TRIM_HORIZON", "updated": "2024-05-01T10:00:00Z"}
  }
}
`

func TestParseCheckpoint(t *testing.T) {
	c, err := ParseCheckpoint("cp.json", []byte(goodCheckpoint))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Shards) != 4 || !c.Shards["shardId-000000000001"].Finished || c.Shards["shardId-000000000002"].Timestamp == nil {
		t.Errorf("checkpoint %+v", c)
	}
	for _, bad := range []struct{ text, want string }{
		{`{"version": 1, "streamArn": "a", "shards": {}`, "cp.json:1: cannot parse"},
		{"{\n\"version\": 2,\n\"streamArn\": \"a\"}", "cp.json:2: version: checkpoint version 2 is not 1"},
		{"{\"version\": 1}", "cp.json: streamArn: the checkpoint names no stream"},
		{"{\"version\": 1, \"streamArn\": \"a\", \"extra\": 1}", `unknown field "extra"`},
		{"{\"version\": \"1\", \"streamArn\": \"a\"}", "version is string"},
		{"{\"version\": 1, \"streamArn\": \"a\",\n\"shards\": {\n\"s-1\": {\"sequenceNumber\": \"12ab\"}}}", "cp.json:3: shards.s-1.sequenceNumber: \"12ab\" is not a sequence number"},
		{"{\"version\": 1, \"streamArn\": \"a\", \"shards\": {\"s-1\": {\"start\": \"EARLIEST\"}}}", "is not TRIM_HORIZON, LATEST or AT_TIMESTAMP"},
		{"{\"version\": 1, \"streamArn\": \"a\", \"shards\": {\"s-1\": {\"start\": \"AT_TIMESTAMP\"}}}", "needs its timestamp"},
		{"{\"version\": 1, \"streamArn\": \"a\", \"shards\": {\"s-1\": {}}}", "neither a sequence number nor a start"},
		{"{\"version\": 1, \"streamArn\": \"a\", \"shards\": {\"s-1\": null}}", "has no position"},
		{"{\"version\": 1, \"streamArn\": \"a\"} {}", "more than one JSON value"},
	} {
		_, err := ParseCheckpoint("cp.json", []byte(bad.text))
		var ie *source.InputError
		if !errors.As(err, &ie) || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: %v, want an InputError with %q", bad.text, err, bad.want)
		}
	}
}

func TestFileStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "deep", "cp.json")
	fs, err := OpenFileStore(path)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := fs.Load(context.Background()); c != nil || err != nil {
		t.Fatalf("empty store: %v %v", c, err)
	}
	if _, err := OpenFileStore(path); !errors.Is(err, ErrCheckpointLocked) {
		t.Fatalf("second open: %v", err)
	}
	ts := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	want := &Checkpoint{Version: 1, StreamARN: "arn", Shards: map[string]*ShardCheckpoint{"s-1": {SequenceNumber: "42", Updated: ts}, "s-2": {Start: StartLatest, Timestamp: &ts, Updated: ts}}}
	if err := fs.Save(context.Background(), want); err != nil {
		t.Fatal(err)
	}
	got, err := fs.Load(context.Background())
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("loaded %+v, %v", got, err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode())
	}
	fs.Close()
	fs2, err := OpenFileStore(path)
	if err != nil {
		t.Fatalf("open after close: %v", err)
	}
	fs2.Close()
	os.WriteFile(path, []byte("{"), 0o600)
	fs3, _ := OpenFileStore(path)
	defer fs3.Close()
	if _, err := fs3.Load(context.Background()); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("a broken file: %v", err)
	}
}

// FuzzParseCheckpoint: any file is read or refused with an InputError,
// never a panic; what is read saves and reads back the same.
func FuzzParseCheckpoint(f *testing.F) {
	f.Add([]byte(goodCheckpoint))
	f.Add([]byte(`{"version":1,"streamArn":"a","shards":{"x":{"start":"AT_TIMESTAMP","timestamp":"2024-01-01T00:00:00Z"}}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseCheckpoint("cp.json", data)
		if err != nil {
			var ie *source.InputError
			if !errors.As(err, &ie) {
				t.Fatalf("error of another type: %v", err)
			}
			return
		}
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseCheckpoint("cp.json", b)
		if err != nil {
			t.Fatalf("a saved checkpoint does not read back: %v\n%s", err, b)
		}
		b2, _ := json.Marshal(again)
		if string(b) != string(b2) {
			t.Errorf("read back differently:\n%s\n%s", b, b2)
		}
	})
}
