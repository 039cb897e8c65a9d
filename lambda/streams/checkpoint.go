package streams

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"github.com/cutoverhq/cutover/internal/fsutil"
	"github.com/cutoverhq/cutover/source"
)

// Checkpoint is where the source stands in a stream: what Lambda keeps in
// its event source mapping, kept here in a Store.
type Checkpoint struct {
	// Version is the file format's version, 1.
	Version int `json:"version"`
	// StreamARN is the stream the checkpoint belongs to; a store holding
	// another stream's checkpoint is refused.
	StreamARN string `json:"streamArn"`
	// Shards are keyed by shard id. Never nil after Load.
	Shards map[string]*ShardCheckpoint `json:"shards"`
}

// ShardCheckpoint is one shard's position.
type ShardCheckpoint struct {
	// SequenceNumber is the last record the function is done with
	// (succeeded, skipped after its retries, or too old); reading resumes
	// after it (AFTER_SEQUENCE_NUMBER). Empty: no record yet, so reading
	// starts at Start.
	SequenceNumber string `json:"sequenceNumber,omitempty"`
	// Finished says the shard is closed and read to its end, so its
	// children may start.
	Finished bool `json:"finished,omitempty"`
	// Start is where reading begins while there is no SequenceNumber:
	// TRIM_HORIZON, AT_TIMESTAMP or LATEST. Empty only with a
	// SequenceNumber or Finished.
	Start string `json:"start,omitempty"`
	// Timestamp is AT_TIMESTAMP's time, or for LATEST when the shard was
	// first read: a restart before any record reads from there, so what
	// arrived while serve was down is not skipped. Nil otherwise.
	Timestamp *time.Time `json:"timestamp,omitempty"`
	// Updated is when the entry last changed.
	Updated time.Time `json:"updated"`
}

// Store keeps a source's Checkpoint. The file store is the one
// implementation; a store shared by replicas (a Kubernetes Lease, a
// DynamoDB table) would let several replicas split a stream's shards.
type Store interface {
	// Load returns the saved checkpoint, or nil when there is none yet.
	Load(ctx context.Context) (*Checkpoint, error)
	// Save replaces the saved checkpoint; it returns once it is durable.
	Save(ctx context.Context, c *Checkpoint) error
	// Close releases the store.
	Close() error
}

// ErrCheckpointLocked is returned when another process holds the
// checkpoint file: two readers of one stream would each invoke every
// record.
var ErrCheckpointLocked = errors.New("checkpoint file is in use by another process: run one serve per stream and checkpoint file")

// FileStore keeps the checkpoint in a local file, written whole through a
// temporary file and a rename, and fsynced, after every batch. It holds an
// exclusive lock on <path>.lock while open.
type FileStore struct {
	path string
	lock *os.File
}

var _ Store = (*FileStore)(nil)

// OpenFileStore creates the file's directory if needed and takes the
// lock; ErrCheckpointLocked when another process has it.
func OpenFileStore(path string) (*FileStore, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("checkpoint directory: %w", err)
	}
	lock, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("checkpoint lock: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s: %w", path, ErrCheckpointLocked)
		}
		return nil, fmt.Errorf("checkpoint lock %s: %w", path+".lock", err)
	}
	return &FileStore{path: path, lock: lock}, nil
}

// Path is the checkpoint file.
func (f *FileStore) Path() string { return f.path }

// Load reads the file; nil, nil when it does not exist yet.
func (f *FileStore) Load(context.Context) (*Checkpoint, error) {
	data, err := os.ReadFile(f.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return ParseCheckpoint(f.path, data)
}

// Save writes the file atomically.
func (f *FileStore) Save(_ context.Context, c *Checkpoint) error {
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(f.path, append(data, '\n'), 0o600)
}

// Close releases the lock.
func (f *FileStore) Close() error {
	if f.lock == nil {
		return nil
	}
	_ = syscall.Flock(int(f.lock.Fd()), syscall.LOCK_UN)
	err := f.lock.Close()
	f.lock = nil
	return err
}

// ParseCheckpoint reads a checkpoint file. A file that is not one, or
// names positions that cannot be, is an *source.InputError naming the
// file, line and field: serve refuses to guess where to resume, since
// guessing wrong loses or repeats records.
func ParseCheckpoint(file string, data []byte) (*Checkpoint, error) {
	pos, err := source.ParsePositions(file, data)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var c Checkpoint
	if err := dec.Decode(&c); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return nil, &source.InputError{File: file, Line: source.LineOfOffset(data, se.Offset), Err: fmt.Errorf("not a checkpoint file: %v", err)}
		case errors.As(err, &te):
			return nil, source.Errorf(file, pos, te.Field, "not a checkpoint file: %s is %s, want %s", te.Field, te.Value, te.Type)
		}
		return nil, &source.InputError{File: file, Err: fmt.Errorf("not a checkpoint file: %v", err)}
	}
	if dec.More() {
		return nil, &source.InputError{File: file, Err: errors.New("not a checkpoint file: more than one JSON value")}
	}
	if c.Version != 1 {
		return nil, source.Errorf(file, pos, "version", "checkpoint version %d is not 1", c.Version)
	}
	if c.StreamARN == "" {
		return nil, source.Errorf(file, pos, "streamArn", "the checkpoint names no stream")
	}
	if c.Shards == nil {
		c.Shards = map[string]*ShardCheckpoint{}
	}
	ids := make([]string, 0, len(c.Shards))
	for id := range c.Shards {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		sc := c.Shards[id]
		field := "shards." + id
		if id == "" {
			return nil, source.Errorf(file, pos, "shards", "a shard with an empty id")
		}
		if sc == nil {
			return nil, source.Errorf(file, pos, field, "shard %s has no position", id)
		}
		if sc.SequenceNumber != "" && !isSequence(sc.SequenceNumber) {
			return nil, source.Errorf(file, pos, field+".sequenceNumber", "%q is not a sequence number", excerpt([]byte(sc.SequenceNumber)))
		}
		switch sc.Start {
		case "":
			if sc.SequenceNumber == "" && !sc.Finished {
				return nil, source.Errorf(file, pos, field, "shard %s has neither a sequence number nor a start", id)
			}
		case StartTrimHorizon:
		case StartLatest, StartAtTimestamp:
			if sc.Timestamp == nil && sc.SequenceNumber == "" && !sc.Finished {
				return nil, source.Errorf(file, pos, field+".timestamp", "a %s start needs its timestamp", sc.Start)
			}
		default:
			return nil, source.Errorf(file, pos, field+".start", "start %q is not TRIM_HORIZON, LATEST or AT_TIMESTAMP", excerpt([]byte(sc.Start)))
		}
	}
	return &c, nil
}

// isSequence says s looks like a Kinesis or DynamoDB Streams sequence
// number: up to 128 decimal digits.
func isSequence(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// clone copies a checkpoint, so a save encodes a snapshot while workers
// go on.
func (c *Checkpoint) clone() *Checkpoint {
	out := &Checkpoint{Version: c.Version, StreamARN: c.StreamARN, Shards: make(map[string]*ShardCheckpoint, len(c.Shards))}
	for id, sc := range c.Shards {
		x := *sc
		out.Shards[id] = &x
	}
	return out
}
