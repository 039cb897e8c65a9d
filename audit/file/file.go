// Package file is the audit log's local store: one append-only file, one
// record per line in its canonical encoding, so `grep`, `jq` and an
// auditor's own script read it directly. Writes are appended (O_APPEND)
// and fsync'd in batches: the Log's writer hands over whatever queued
// while the previous fsync ran, so concurrent appenders share fsyncs and
// none is acknowledged before the fsync that covers it. A lock file beside
// the log keeps a second writer out. A last line that a crash cut short is
// cut off when the log is next opened for writing, and the log records
// that it was.
//
// Locations: "file:PATH", "file:///ABS/PATH" or a plain path.
package file

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/cutoverhq/cutover/audit"
)

func init() { audit.Register("file", Open) }

// Store is an audit log in a local file.
type Store struct {
	path string
	mode audit.Mode

	f       *os.File // ReadWrite: the log, opened O_APPEND
	lock    *os.File
	head    audit.Head
	broken  error // set when a write or fsync failed: the file's tail is unknown
	repairs []audit.Repair
	buf     []byte
}

var (
	_ audit.Store     = (*Store)(nil)
	_ audit.Recoverer = (*Store)(nil)
)

// LockSuffix names the lock file beside the log.
const LockSuffix = ".lock"

// ErrLocked: another process has the log open for writing.
var ErrLocked = errors.New("audit log is in use by another writer")

// PathOf returns the file path a location names.
func PathOf(location string) (string, error) {
	if audit.SchemeOf(location) != "file" {
		return "", fmt.Errorf("%q is not a file location", location)
	}
	p := location
	if strings.HasPrefix(strings.ToLower(p), "file:") {
		p = p[len("file:"):]
		if strings.HasPrefix(p, "//") {
			u, err := url.Parse(location)
			if err != nil {
				return "", fmt.Errorf("audit location %q: %w", location, err)
			}
			if u.Host != "" && u.Host != "localhost" {
				return "", fmt.Errorf("audit location %q: a file URL names no host (file:///abs/path or file:rel/path)", location)
			}
			p = u.Path
		}
	}
	if p == "" {
		return "", fmt.Errorf("audit location %q names no file", location)
	}
	return p, nil
}

// Open opens the file store at location. ReadWrite creates the file if
// missing (not its directory), takes the writer lock, and repairs a torn
// last line. ReadOnly needs the file to exist, and takes no lock.
func Open(ctx context.Context, location string, mode audit.Mode) (audit.Store, error) {
	p, err := PathOf(location)
	if err != nil {
		return nil, err
	}
	s := &Store{path: p, mode: mode}
	if mode == audit.ReadOnly {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("audit log: %w", err)
		}
		if fi.IsDir() {
			return nil, fmt.Errorf("audit log %s is a directory", p)
		}
		return s, nil
	}
	if err := s.openWriter(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) openWriter() error {
	lock, err := os.OpenFile(s.path+LockSuffix, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("audit log lock: %w", err)
	}
	s.lock = lock
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			who, _ := io.ReadAll(io.LimitReader(lock, 64))
			if pid := strings.TrimSpace(string(who)); pid != "" {
				return fmt.Errorf("%w: %s (pid %s holds %s)", ErrLocked, s.path, pid, lock.Name())
			}
			return fmt.Errorf("%w: %s", ErrLocked, s.path)
		}
		return fmt.Errorf("audit log lock: %w", err)
	}
	// The pid is for the message above only; the flock is the lock, and
	// the kernel drops it when the process dies, however it dies.
	if err := lock.Truncate(0); err == nil {
		lock.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}

	_, statErr := os.Stat(s.path)
	created := errors.Is(statErr, os.ErrNotExist)
	f, err := os.OpenFile(s.path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	s.f = f
	if created {
		// The new file's directory entry must be durable too, or a crash
		// could lose the whole log with its first acknowledged records.
		if err := syncDir(filepath.Dir(s.path)); err != nil {
			return fmt.Errorf("audit log: %w", err)
		}
	}
	return s.recoverTail()
}

// recoverTail finds the head from the last line, reading backwards, so
// opening a long log costs no more than a short one. A last line without
// its newline is a write a crash cut short: no record in it was
// acknowledged, so it is cut off (and described in a repair record). A
// last complete line that is not a sound record is damage of another
// kind, which the writer refuses to build on.
func (s *Store) recoverTail() error {
	fi, err := s.f.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	if size == 0 {
		return nil
	}
	end, err := lastNewline(s.f, size)
	if err != nil {
		return err
	}
	if end != size-1 {
		cut := end + 1 // keep through the newline; -1+1 = 0 when there is none
		torn := make([]byte, size-cut)
		if _, err := s.f.ReadAt(torn, cut); err != nil {
			return fmt.Errorf("audit log: reading the torn tail: %w", err)
		}
		line, err := countLines(s.f, cut)
		if err != nil {
			return err
		}
		if err := s.f.Truncate(cut); err != nil {
			return fmt.Errorf("audit log: cutting the torn tail: %w", err)
		}
		if err := s.f.Sync(); err != nil {
			return fmt.Errorf("audit log: %w", err)
		}
		sum := sha256.Sum256(torn)
		rep := audit.Repair{
			What:   "torn last line cut off: a write a crash interrupted, holding no acknowledged record",
			Where:  fmt.Sprintf("line %d", line+1),
			Bytes:  int64(len(torn)),
			SHA256: hex.EncodeToString(sum[:]),
		}
		if len(torn) <= 64<<10 {
			rep.Removed = base64.StdEncoding.EncodeToString(torn)
		}
		s.repairs = append(s.repairs, rep)
		size = cut
		if size == 0 {
			return nil
		}
		end = size - 1
	}
	start, err := lastNewline(s.f, end)
	if err != nil {
		return err
	}
	line := make([]byte, end-(start+1))
	if _, err := s.f.ReadAt(line, start+1); err != nil {
		return fmt.Errorf("audit log: reading the last record: %w", err)
	}
	r, err := audit.Decode(line)
	if err == nil && audit.ComputeHash(&r) != r.Hash {
		err = errors.New("its content does not match its hash")
	}
	if err != nil {
		return fmt.Errorf("audit log %s: the last record (at byte %d) is not sound (%v): run `cutover audit verify %s`; refusing to append after damage", s.path, start+1, err, s.path)
	}
	s.head = audit.HeadOf(&r)
	return nil
}

// lastNewline returns the offset of the last '\n' before offset before,
// or -1 when there is none.
func lastNewline(f *os.File, before int64) (int64, error) {
	const chunk = 64 << 10
	buf := make([]byte, chunk)
	for pos := before; pos > 0; {
		n := int64(chunk)
		if pos < n {
			n = pos
		}
		pos -= n
		if _, err := f.ReadAt(buf[:n], pos); err != nil && err != io.EOF {
			return 0, err
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			return pos + int64(i), nil
		}
	}
	return -1, nil
}

func countLines(f *os.File, upto int64) (int64, error) {
	r := bufio.NewReaderSize(io.NewSectionReader(f, 0, upto), 256<<10)
	var n int64
	buf := make([]byte, 256<<10)
	for {
		k, err := r.Read(buf)
		n += int64(bytes.Count(buf[:k], []byte{'\n'}))
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return 0, err
		}
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Recovered reports the torn tail cut off at open, if any.
func (s *Store) Recovered() []audit.Repair { return s.repairs }

// Append implements audit.Store: one write of all lines, one fsync.
func (s *Store) Append(ctx context.Context, b *audit.Batch) error {
	if s.f == nil {
		return errors.New("audit log opened read-only")
	}
	if s.broken != nil {
		return fmt.Errorf("audit log %s: an earlier write failed (%w); reopen the log to recover", s.path, s.broken)
	}
	recs, err := b.Link(s.head)
	if err != nil {
		return err
	}
	if len(recs) == 0 {
		return nil
	}
	s.buf = s.buf[:0]
	for i := range recs {
		s.buf = append(s.buf, audit.Encode(&recs[i])...)
		s.buf = append(s.buf, '\n')
	}
	if _, err := s.f.Write(s.buf); err != nil {
		// Part of the batch may be in the file: only a reopen, which
		// reads the tail, knows where the chain ends now.
		s.broken = err
		return fmt.Errorf("audit log %s: %w", s.path, err)
	}
	if err := s.f.Sync(); err != nil {
		// After a failed fsync the kernel may have dropped the dirty
		// pages; retrying would report success for data that is gone.
		s.broken = err
		return fmt.Errorf("audit log %s: fsync: %w", s.path, err)
	}
	s.head = audit.HeadOf(&recs[len(recs)-1])
	if cap(s.buf) > 4<<20 {
		s.buf = nil // a huge batch should not pin its buffer forever
	}
	return nil
}

// Scan implements audit.Store. It reads the file as it is now; a writer
// may be appending, so a last line without its newline is reported torn.
func (s *Store) Scan(ctx context.Context, fn func(audit.Entry) error) error {
	f, err := os.Open(s.path)
	if err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	defer f.Close()
	return ScanReader(ctx, f, fn)
}

// ScanReader reads records from r as Scan does; for tests and fuzzing.
func ScanReader(ctx context.Context, r io.Reader, fn func(audit.Entry) error) error {
	br := bufio.NewReaderSize(r, 256<<10)
	var (
		long    []byte // a line longer than the reader's buffer, so far
		tooLong bool   // the line exceeds MaxRecordBytes: skip to its end
		lineNo  int64
	)
	for {
		chunk, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			if !tooLong {
				long = append(long, chunk...)
				if len(long) > audit.MaxRecordBytes+1 {
					tooLong, long = true, long[:0]
				}
			}
			continue
		}
		if err != nil && err != io.EOF {
			return fmt.Errorf("audit log: %w", err)
		}
		line := chunk
		if len(long) > 0 || tooLong {
			long = append(long, chunk...)
			line = long
		}
		if len(line) == 0 && !tooLong && err == io.EOF {
			return nil
		}
		lineNo++
		e := audit.Entry{Where: "line " + strconv.FormatInt(lineNo, 10), Line: lineNo}
		switch {
		case tooLong || len(line) > audit.MaxRecordBytes+1:
			e.Err = fmt.Errorf("line longer than %d bytes: not a record", audit.MaxRecordBytes)
		case line[len(line)-1] != '\n':
			e.Err = fmt.Errorf("%d bytes without a line end: a write cut short by a crash (or still in progress)", len(line))
			e.Torn = true
		default:
			rec, derr := audit.Decode(line[:len(line)-1])
			if derr != nil {
				e.Err = derr
			} else {
				e.Record = rec
			}
		}
		long, tooLong = long[:0], false
		if ferr := fn(e); ferr != nil {
			return ferr
		}
		if err == io.EOF {
			return nil
		}
		if lineNo%1024 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// Close implements audit.Store.
func (s *Store) Close() error {
	var err error
	if s.f != nil {
		err = s.f.Close()
		s.f = nil
	}
	if s.lock != nil {
		s.lock.Close() // releases the flock
		s.lock = nil
	}
	return err
}
