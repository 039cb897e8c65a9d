package file_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cutoverhq/cutover/audit"
	"github.com/cutoverhq/cutover/audit/audittest"
	"github.com/cutoverhq/cutover/audit/file"
)

func TestMain(m *testing.M) {
	audittest.CrashChildMain() // the crash test re-executes this binary as its writer
	os.Exit(m.Run())
}

func newLoc(t *testing.T) string {
	return "file:" + filepath.Join(t.TempDir(), "audit.log")
}

func TestConformance(t *testing.T) {
	audittest.Run(t, audittest.Harness{New: newLoc, Tamper: lineTamperer{}, SingleWriter: true})
}

func TestCrash(t *testing.T) {
	audittest.RunCrash(t, newLoc(t), audittest.CrashOptions{})
}

// lineTamperer edits the log file's lines, as anyone who can write the
// file could.
type lineTamperer struct{}

func lines(t *testing.T, loc string) (string, [][]byte) {
	t.Helper()
	p, err := file.PathOf(loc)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	ls := bytes.SplitAfter(b, []byte("\n"))
	if len(ls[len(ls)-1]) == 0 {
		ls = ls[:len(ls)-1]
	}
	return p, ls
}

func write(t *testing.T, p string, ls [][]byte) {
	t.Helper()
	if err := os.WriteFile(p, bytes.Join(ls, nil), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (lineTamperer) Replace(t *testing.T, loc string, pos uint64, raw []byte) {
	p, ls := lines(t, loc)
	ls[pos-1] = append(raw, '\n')
	write(t, p, ls)
}

func (lineTamperer) Delete(t *testing.T, loc string, pos uint64) {
	p, ls := lines(t, loc)
	write(t, p, append(ls[:pos-1], ls[pos:]...))
}

func (lineTamperer) Insert(t *testing.T, loc string, after uint64, raw []byte) {
	p, ls := lines(t, loc)
	out := append([][]byte{}, ls[:after]...)
	out = append(out, append(raw, '\n'))
	write(t, p, append(out, ls[after:]...))
}

func (lineTamperer) Swap(t *testing.T, loc string, a, b uint64) {
	p, ls := lines(t, loc)
	ls[a-1], ls[b-1] = ls[b-1], ls[a-1]
	write(t, p, ls)
}

func (lineTamperer) Truncate(t *testing.T, loc string, keep uint64) {
	p, ls := lines(t, loc)
	write(t, p, ls[:keep])
}

func TestLocations(t *testing.T) {
	for in, want := range map[string]string{
		"file:audit.log":         "audit.log",
		"file:/var/log/a.log":    "/var/log/a.log",
		"file:///var/log/a.log":  "/var/log/a.log",
		"file://localhost/a.log": "/a.log",
		"audit.log":              "audit.log",
		"./dir/audit.log":        "./dir/audit.log",
		"/abs/audit.log":         "/abs/audit.log",
	} {
		got, err := file.PathOf(in)
		if err != nil || got != want {
			t.Errorf("PathOf(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"file:", "file://host/a.log", "postgres://x/y"} {
		if _, err := file.PathOf(bad); err == nil {
			t.Errorf("PathOf(%q) accepted", bad)
		}
	}
}

// TestTornTailRepaired: a crash in the middle of a write leaves a last
// line without its newline. verify reports it without failing, the
// writer cuts it off on reopen and records that it did, and nothing
// before it is lost.
func TestTornTailRepaired(t *testing.T) {
	ctx := context.Background()
	loc := newLoc(t)
	recs := audittest.Fill(t, loc, 20, audit.Options{Key: audittest.TestKey()})
	p, _ := file.PathOf(loc)
	torn := []byte(`{"actor":"alice","data":{"i":`)
	f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(torn)
	f.Close()

	rep := audittest.MustVerify(t, loc)
	if !rep.OK() || rep.Torn == nil || rep.Torn.Line != 22 {
		t.Fatalf("torn tail: ok %v, torn %+v, problems %v", rep.OK(), rep.Torn, rep.Problems)
	}
	if w := strings.Join(rep.Warnings(), "\n"); !strings.Contains(w, "torn last line at line 22") {
		t.Fatalf("warnings: %s", w)
	}

	l, err := audit.Open(ctx, loc, audit.Options{Key: audittest.TestKey()})
	if err != nil {
		t.Fatal(err)
	}
	next, err := l.Append(ctx, audittest.Sample(99))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	es := audittest.Entries(t, loc)
	// 20 records, their close checkpoint (every 1000 adds none), the
	// repair, the new record, its close checkpoint.
	if len(es) != 24 {
		t.Fatalf("%d entries", len(es))
	}
	for i, r := range recs {
		if string(audit.Encode(&es[i].Record)) != string(audit.Encode(&r)) {
			t.Fatalf("record %d changed by the repair", r.Seq)
		}
	}
	rr := es[21].Record
	var data audit.Repair
	if err := rr.DecodeData(&data); err != nil || rr.Kind != audit.KindRepair || data.Where != "line 22" || data.Bytes != int64(len(torn)) {
		t.Fatalf("repair record %s %s (%v)", rr.Kind, rr.Data, err)
	}
	if got, _ := base64.StdEncoding.DecodeString(data.Removed); string(got) != string(torn) {
		t.Fatalf("repair record keeps %q, want %q", got, torn)
	}
	if next.Seq != 23 {
		t.Fatalf("first record after the repair is %d, want 23", next.Seq)
	}
	rep = audittest.MustVerify(t, loc)
	if !rep.OK() || rep.Torn != nil || rep.Proven != 24 {
		t.Fatalf("after repair: ok %v torn %v proven %d problems %v", rep.OK(), rep.Torn, rep.Proven, rep.Problems)
	}
}

// TestTornOnlyLine: a crash during the very first write leaves a file
// holding nothing but a torn line.
func TestTornOnlyLine(t *testing.T) {
	ctx := context.Background()
	loc := newLoc(t)
	p, _ := file.PathOf(loc)
	os.WriteFile(p, []byte(`{"actor":"al`), 0o644)
	l, err := audit.Open(ctx, loc, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := l.Append(ctx, audittest.Sample(1))
	if err != nil {
		t.Fatal(err)
	}
	l.Close(ctx)
	if r.Seq != 2 {
		t.Fatalf("seq %d after the repair record", r.Seq)
	}
	if rep := audittest.MustVerify(t, loc); !rep.OK() || rep.Torn != nil {
		t.Fatalf("%v %v", rep.Problems, rep.Torn)
	}
}

// TestRefusesToAppendAfterDamage: a last complete line that is not a
// sound record is not a crash's doing; the writer must not build on it
// (nor cut it, which would destroy the evidence).
func TestRefusesToAppendAfterDamage(t *testing.T) {
	ctx := context.Background()
	loc := newLoc(t)
	audittest.Fill(t, loc, 3, audit.Options{})
	p, _ := file.PathOf(loc)
	b, _ := os.ReadFile(p)
	os.WriteFile(p, bytes.Replace(b, []byte(`"alice"`), []byte(`"eve00"`), 1), 0o644) // first line: not the last
	l, err := audit.Open(ctx, loc, audit.Options{})
	if err != nil {
		t.Fatalf("damage before the last line does not stop appends (verify reports it): %v", err)
	}
	l.Close(ctx)
	b, _ = os.ReadFile(p)
	i := bytes.LastIndex(b[:len(b)-1], []byte("\n"))
	os.WriteFile(p, append(b[:i+1], []byte("{\"not\":\"a record\"}\n")...), 0o644)
	if _, err := audit.Open(ctx, loc, audit.Options{}); err == nil || !strings.Contains(err.Error(), "refusing to append") {
		t.Fatalf("open after a damaged last line: %v", err)
	}
}

func TestSecondWriterNamesTheFirst(t *testing.T) {
	ctx := context.Background()
	loc := newLoc(t)
	l, err := audit.Open(ctx, loc, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = audit.Open(ctx, loc, audit.Options{})
	if !errors.Is(err, file.ErrLocked) || !strings.Contains(err.Error(), "pid") {
		t.Fatalf("second writer: %v", err)
	}
	l.Close(ctx)
	l, err = audit.Open(ctx, loc, audit.Options{})
	if err != nil {
		t.Fatalf("after the first writer closed: %v", err)
	}
	l.Close(ctx)
}

func TestReadOnlyNeedsTheFile(t *testing.T) {
	_, err := audit.Verify(context.Background(), newLoc(t), audit.VerifyOptions{})
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("verify of a missing log: %v", err)
	}
}

func TestLongAndGarbledLines(t *testing.T) {
	var in bytes.Buffer
	recs := audittest.Fill(t, newLoc(t), 2, audit.Options{})
	in.Write(audit.Encode(&recs[0]))
	in.WriteString("\n")
	in.WriteString(strings.Repeat("x", audit.MaxRecordBytes+10) + "\n")
	in.WriteString("\n")
	in.Write(audit.Encode(&recs[1]))
	in.WriteString("\n")
	var es []audit.Entry
	if err := file.ScanReader(context.Background(), &in, func(e audit.Entry) error { es = append(es, e); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(es) != 4 || es[0].Err != nil || es[1].Err == nil || es[2].Err == nil || es[3].Err != nil || es[3].Line != 4 {
		t.Fatalf("entries: %+v", es)
	}
	if es[3].Record.Seq != 2 {
		t.Fatalf("line after the long one: %+v", es[3].Record)
	}
}

// FuzzScan: the reader never panics, numbers lines from 1, and marks as
// torn only a last line without its newline.
func FuzzScan(f *testing.F) {
	loc := "file:" + filepath.Join(f.TempDir(), "seed.log")
	audittest.Fill(f, loc, 4, audit.Options{Key: audittest.TestKey(), CheckpointEvery: 2})
	p, _ := file.PathOf(loc)
	seed, _ := os.ReadFile(p)
	f.Add(seed)
	f.Add(seed[:len(seed)-7])
	f.Add([]byte("\n\n{}\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var n int64
		err := file.ScanReader(context.Background(), bytes.NewReader(b), func(e audit.Entry) error {
			n++
			if e.Line != n || e.Where == "" {
				t.Fatalf("entry %d: line %d where %q", n, e.Line, e.Where)
			}
			if e.Torn && (e.Err == nil || int64(bytes.Count(b, []byte("\n"))) != n-1 || b[len(b)-1] == '\n') {
				t.Fatalf("entry %d marked torn wrongly", n)
			}
			if e.Err == nil && e.Record.Seq == 0 {
				t.Fatal("a sound entry without a seq")
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		// Verify takes whatever the reader gives.
		_, _ = audit.VerifyStore(context.Background(), readerStore(b), audit.VerifyOptions{Key: audittest.TestPublicKey()})
	})
}

type readerStore []byte

func (r readerStore) Append(context.Context, *audit.Batch) error { return errors.New("read-only") }
func (r readerStore) Close() error                               { return nil }
func (r readerStore) Scan(ctx context.Context, fn func(audit.Entry) error) error {
	return file.ScanReader(ctx, bytes.NewReader(r), fn)
}

// BenchmarkAppend: durable appends per second, group commit shared by 1,
// 8 and 64 concurrent appenders.
func BenchmarkAppend(b *testing.B) {
	for _, n := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("appenders=%d", n), func(b *testing.B) {
			audittest.BenchmarkAppend(b, "file:"+filepath.Join(b.TempDir(), "audit.log"), n)
		})
	}
}

// BenchmarkVerify1M: verify of a log of a million records.
func BenchmarkVerify1M(b *testing.B) {
	audittest.BenchmarkVerify(b, "file:"+filepath.Join(b.TempDir(), "audit.log"), 1_000_000)
}
