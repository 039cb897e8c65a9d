package audit

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"runtime"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Log is what cutover's commands write to.
type Log interface {
	// Append adds r to the log and returns it as stored, with Seq, Time,
	// Prev and Hash set. When it returns nil the record is durable. When
	// ctx ends first Append returns ctx's error, and the record may or may
	// not be stored: it is not acknowledged.
	Append(ctx context.Context, r Record) (Record, error)
	// Checkpoint writes a signed checkpoint over the chain's head now. A
	// no-op for an unsigned log, or when the last record is a checkpoint.
	Checkpoint(ctx context.Context) error
	// Close writes a final checkpoint ("close"), waits for every pending
	// append and releases the store. Appends after Close fail with
	// ErrClosed.
	Close(ctx context.Context) error
}

// Options configure a Log.
type Options struct {
	// Key signs checkpoints. Nil: the log is unsigned; it still chains,
	// and verify says it is unsigned.
	Key ed25519.PrivateKey
	// CheckpointEvery is the interval, in records, of periodic
	// checkpoints: one follows each record whose Seq is a multiple of it.
	// Zero: 1000. Negative: only at Close and on Checkpoint.
	CheckpointEvery int
	// Actor is recorded on records that name none. Empty: DefaultActor().
	Actor string
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
	// Logger receives what the log does on its own (repairs). Nil: none.
	Logger *slog.Logger
	// MaxBatch bounds how many records share one write and fsync. Zero:
	// 4096.
	MaxBatch int
}

// ErrClosed: the log was closed.
var ErrClosed = errors.New("audit log closed")

// DefaultActor is the OS user and host: "alice@build-7".
func DefaultActor() string {
	name := "unknown"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	} else if v := os.Getenv("USER"); v != "" {
		name = v
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		name += "@" + h
	}
	return name
}

// Open opens the log at location for appending: "file:PATH" (or a plain
// path) or "postgres://…". The store's package must be imported (cmd
// imports all). A file store whose last line a crash left torn is
// repaired, and a repair record says what was cut.
func Open(ctx context.Context, location string, opts Options) (Log, error) {
	st, err := OpenStore(ctx, location, ReadWrite)
	if err != nil {
		return nil, err
	}
	return NewLog(ctx, st, opts)
}

// NewLog returns a Log that writes to st, which must be open ReadWrite.
// The Log owns st and closes it.
func NewLog(ctx context.Context, st Store, opts Options) (Log, error) {
	s := &signer{now: opts.Now}
	if s.now == nil {
		s.now = time.Now
	}
	if opts.Key != nil {
		if len(opts.Key) != ed25519.PrivateKeySize {
			st.Close()
			return nil, errors.New("audit: the signing key is not an ed25519 private key")
		}
		s.key = opts.Key
		s.keyID = KeyIDOf(opts.Key.Public().(ed25519.PublicKey))
	}
	switch {
	case opts.CheckpointEvery == 0:
		s.every = 1000
	case opts.CheckpointEvery > 0:
		s.every = uint64(opts.CheckpointEvery)
	}
	if opts.Actor == "" {
		opts.Actor = DefaultActor()
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 4096
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	l := &log{
		st:     st,
		signer: s,
		opts:   opts,
		wake:   make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
	// The writer outlives the caller's ctx (a signal must not stop the
	// final checkpoint); Close stops it.
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	l.cancel = cancel
	go l.run(wctx)
	if rc, ok := st.(Recoverer); ok {
		for _, rep := range rc.Recovered() {
			data, err := json.Marshal(rep)
			if err == nil {
				data, err = Canonicalize(data)
			}
			if err == nil {
				_, err = l.append(ctx, Record{Kind: KindRepair, Actor: opts.Actor, Data: data})
			}
			if err != nil {
				l.Close(ctx)
				return nil, fmt.Errorf("recording the repair of the audit log: %w", err)
			}
			opts.Logger.Warn("audit log repaired", "what", rep.What, "where", rep.Where, "bytes", rep.Bytes)
		}
	}
	return l, nil
}

type log struct {
	st     Store
	signer *signer
	opts   Options
	cancel context.CancelFunc

	mu      sync.Mutex
	queue   []*pending
	closing bool
	wake    chan struct{}
	done    chan struct{} // closed when run returns
}

type pending struct {
	rec  Record
	out  Record // zero for a checkpoint request that made no record
	err  error
	done chan struct{}
}

var _ Log = (*log)(nil)

func (l *log) Append(ctx context.Context, r Record) (Record, error) {
	if err := checkKind(r.Kind); err != nil {
		return Record{}, err
	}
	if r.Kind == KindCheckpoint || r.Kind == KindRepair {
		return Record{}, fmt.Errorf("kind %q is written by the log itself", r.Kind)
	}
	for _, f := range []struct{ name, v string }{{"actor", r.Actor}, {"service", r.Service}, {"plan", r.Plan}, {"planDigest", r.PlanDigest}, {"planCommit", r.PlanCommit}} {
		// Stores keep these in text columns too, which hold neither
		// invalid UTF-8 nor NUL.
		if !utf8.ValidString(f.v) || strings.IndexByte(f.v, 0) >= 0 {
			return Record{}, fmt.Errorf("record %s %q: invalid UTF-8 or a NUL byte", f.name, f.v)
		}
	}
	if len(r.Data) > 0 {
		d, err := Canonicalize(r.Data)
		if err != nil {
			return Record{}, fmt.Errorf("record data: %w", err)
		}
		switch {
		case string(d) == "null" || string(d) == "{}":
			d = nil
		case d[0] != '{':
			return Record{}, errors.New("record data: not a JSON object")
		}
		r.Data = d
	}
	if r.Actor == "" {
		r.Actor = l.opts.Actor
	}
	r.Seq, r.Time, r.Prev, r.Hash, r.Sig, r.KeyID = 0, time.Time{}, "", "", "", ""
	// The stored form adds at most seq, time, prev, hash and punctuation
	// (about 250 bytes) to the canonical form measured here.
	if n := len(Canonical(&r)) + 300; n > MaxRecordBytes {
		return Record{}, fmt.Errorf("record of about %d bytes exceeds %d", n, MaxRecordBytes)
	}
	return l.append(ctx, r)
}

func (l *log) Checkpoint(ctx context.Context) error {
	if l.signer.key == nil {
		return nil
	}
	_, err := l.append(ctx, checkpointRequest("requested"))
	return err
}

func checkpointRequest(reason string) Record {
	d, _ := json.Marshal(CheckpointData{Reason: reason})
	return Record{Kind: KindCheckpoint, Data: d}
}

func (l *log) Close(ctx context.Context) error {
	var first error
	if l.signer.key != nil {
		if _, err := l.append(ctx, checkpointRequest("close")); err != nil && !errors.Is(err, ErrClosed) {
			first = fmt.Errorf("final checkpoint: %w", err)
		}
	}
	l.mu.Lock()
	already := l.closing
	l.closing = true
	l.mu.Unlock()
	if already {
		<-l.done
		return first
	}
	l.kick()
	select {
	case <-l.done:
	case <-ctx.Done():
		l.cancel()
		<-l.done
		if first == nil {
			first = ctx.Err()
		}
	}
	l.cancel()
	if err := l.st.Close(); err != nil && first == nil {
		first = err
	}
	return first
}

func (l *log) append(ctx context.Context, r Record) (Record, error) {
	p := &pending{rec: r, done: make(chan struct{})}
	l.mu.Lock()
	if l.closing {
		l.mu.Unlock()
		return Record{}, ErrClosed
	}
	l.queue = append(l.queue, p)
	l.mu.Unlock()
	l.kick()
	select {
	case <-p.done:
		return p.out, p.err
	case <-ctx.Done():
		return Record{}, ctx.Err()
	}
}

func (l *log) kick() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// run is the one writer: it takes whatever queued while the previous
// write and fsync ran, and makes it durable in one more. Appenders thus
// share fsyncs (group commit), and none returns before the fsync that
// covers its record.
func (l *log) run(ctx context.Context) {
	defer close(l.done)
	b := &Batch{signer: l.signer}
	for {
		l.mu.Lock()
		for len(l.queue) == 0 {
			if l.closing {
				l.mu.Unlock()
				return
			}
			l.mu.Unlock()
			select {
			case <-l.wake:
			case <-ctx.Done():
				l.failQueue(ctx.Err())
				return
			}
			l.mu.Lock()
		}
		// Appenders just acknowledged are about to queue their next
		// records: let them run before taking the batch, or the writer
		// takes the first alone and the rest wait a whole fsync more.
		l.mu.Unlock()
		runtime.Gosched()
		l.mu.Lock()
		n := min(len(l.queue), l.opts.MaxBatch)
		batch := make([]*pending, n)
		copy(batch, l.queue)
		l.queue = append(l.queue[:0], l.queue[n:]...)
		l.mu.Unlock()

		b.In = b.In[:0]
		for _, p := range batch {
			b.In = append(b.In, p.rec)
		}
		err := l.st.Append(ctx, b)
		for i, p := range batch {
			switch {
			case err != nil:
				p.err = err
			case b.index[i] >= 0:
				p.out = b.out[b.index[i]]
			}
			close(p.done)
		}
	}
}

func (l *log) failQueue(err error) {
	l.mu.Lock()
	q := l.queue
	l.queue = nil
	l.closing = true
	l.mu.Unlock()
	for _, p := range q {
		p.err = err
		close(p.done)
	}
}
