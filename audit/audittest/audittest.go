// Package audittest is the conformance suite every audit store passes:
// appends chain and survive reopening, concurrent appenders share the
// chain without a gap, checkpoints are signed where due, readers work
// beside the writer, and every kind of tampering with the stored log is
// caught at the right record. A store's test supplies how to make a fresh
// log and how to tamper with it behind the log's back.
package audittest

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/audit"
)

// Harness is what a store gives the suite.
type Harness struct {
	// New returns the location of a new, empty log. Required.
	New func(t *testing.T) string
	// Tamper changes a stored log as someone with write access to its
	// storage could, bypassing the log. Required.
	Tamper Tamperer
	// SingleWriter says a second writer is refused while one is open
	// (the file store's lock); false: writers serialize and share the
	// chain (PostgreSQL).
	SingleWriter bool
}

// Tamperer edits stored logs. Positions are entries in store order (a
// file's lines, a table's rows by seq), counted from 1; raw is a record in
// its stored encoding (audit.Encode). The log is closed while it runs.
type Tamperer interface {
	// Replace puts raw at position pos instead of what is there.
	Replace(t *testing.T, location string, pos uint64, raw []byte)
	// Delete removes the entry at pos; later ones move up.
	Delete(t *testing.T, location string, pos uint64)
	// Insert puts raw after position pos; later ones move down.
	Insert(t *testing.T, location string, after uint64, raw []byte)
	// Swap exchanges the entries at positions a and b.
	Swap(t *testing.T, location string, a, b uint64)
	// Truncate keeps the first keep entries and removes the rest.
	Truncate(t *testing.T, location string, keep uint64)
}

// TestKey is a fixed key, so logs written in tests sign the same way
// every run.
func TestKey() ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("cutover audittest key"))
	return ed25519.NewKeyFromSeed(seed[:])
}

// TestPublicKey is TestKey's public half.
func TestPublicKey() ed25519.PublicKey { return TestKey().Public().(ed25519.PublicKey) }

// Run runs the conformance suite against the store h describes.
func Run(t *testing.T, h Harness) {
	t.Run("AppendReopenVerify", func(t *testing.T) { testAppendReopen(t, h) })
	t.Run("ConcurrentAppends", func(t *testing.T) { testConcurrent(t, h) })
	t.Run("Checkpoints", func(t *testing.T) { testCheckpoints(t, h) })
	t.Run("Unsigned", func(t *testing.T) { testUnsigned(t, h) })
	t.Run("WrongKey", func(t *testing.T) { testWrongKey(t, h) })
	t.Run("ReaderBesideWriter", func(t *testing.T) { testReaderBesideWriter(t, h) })
	t.Run("SecondWriter", func(t *testing.T) { testSecondWriter(t, h) })
	t.Run("RefusesBadRecords", func(t *testing.T) { testRefuses(t, h) })
	t.Run("Tamper", func(t *testing.T) { testTamper(t, h) })
}

// Fill opens the log at loc, appends n records (service "svc-<i%3>",
// kind analysis, data {"i": i}) and closes it; it returns them as stored.
func Fill(t testing.TB, loc string, n int, opts audit.Options) []audit.Record {
	t.Helper()
	ctx := context.Background()
	l, err := audit.Open(ctx, loc, opts)
	if err != nil {
		t.Fatalf("open %s: %v", loc, err)
	}
	var out []audit.Record
	for i := 0; i < n; i++ {
		r, err := l.Append(ctx, Sample(i))
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		out = append(out, r)
	}
	if err := l.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
	return out
}

// Sample is the i-th test record.
func Sample(i int) audit.Record {
	r := audit.Record{
		Kind:       audit.KindAnalysis,
		Actor:      "alice",
		Service:    fmt.Sprintf("svc-%d", i%3),
		Plan:       "plans/payments.yaml",
		PlanDigest: "sha256:0f3c",
	}
	v := 0.5 + float64(i)
	r.SetData(audit.AnalysisData{Step: i % 4, Metric: "error-rate", Value: v / 1000, Threshold: &v, Op: "<=", Verdict: "pass", Window: "30s", Requests: int64(i * 10)})
	return r
}

// Entries reads every stored entry of the log at loc.
func Entries(t testing.TB, loc string) []audit.Entry {
	t.Helper()
	ctx := context.Background()
	st, err := audit.OpenStore(ctx, loc, audit.ReadOnly)
	if err != nil {
		t.Fatalf("open %s read-only: %v", loc, err)
	}
	defer st.Close()
	var es []audit.Entry
	if err := st.Scan(ctx, func(e audit.Entry) error { es = append(es, e); return nil }); err != nil {
		t.Fatalf("scan: %v", err)
	}
	return es
}

// MustVerify verifies the log at loc with the test key.
func MustVerify(t testing.TB, loc string, expect ...audit.Head) *audit.Report {
	t.Helper()
	rep, err := audit.Verify(context.Background(), loc, audit.VerifyOptions{Key: TestPublicKey(), Expect: expect})
	if err != nil {
		t.Fatalf("verify %s: %v", loc, err)
	}
	return rep
}

func describe(rep *audit.Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "records %d, head %d, checkpoints %d, verified %d, proven %d", rep.Records, rep.Head.Seq, rep.Checkpoints, rep.Verified, rep.Proven)
	for _, p := range rep.Problems {
		fmt.Fprintf(&b, "\n  problem: %s", p)
	}
	for _, w := range rep.Warnings() {
		fmt.Fprintf(&b, "\n  warning: %s", w)
	}
	return b.String()
}

func wantWhole(t testing.TB, rep *audit.Report) {
	t.Helper()
	if !rep.OK() {
		t.Fatalf("log not whole: %s", describe(rep))
	}
}

func testAppendReopen(t *testing.T, h Harness) {
	ctx := context.Background()
	loc := h.New(t)
	clock := newClock()
	opts := audit.Options{Key: TestKey(), CheckpointEvery: -1, Now: clock.now}
	first := Fill(t, loc, 5, opts)
	for i, r := range first {
		if r.Seq != uint64(i+1) {
			t.Fatalf("record %d: seq %d", i, r.Seq)
		}
		if r.Hash != audit.ComputeHash(&r) {
			t.Fatalf("record %d: hash %s, content hashes to %s", i, r.Hash, audit.ComputeHash(&r))
		}
		if i > 0 && r.Prev != first[i-1].Hash {
			t.Fatalf("record %d: prev %s, want %s", i, r.Prev, first[i-1].Hash)
		}
		if !r.Time.After(time.Time{}) || r.Time.Location() != time.UTC {
			t.Fatalf("record %d: time %v not set in UTC", i, r.Time)
		}
		if r.Actor != "alice" {
			t.Fatalf("record %d: actor %q", i, r.Actor)
		}
	}
	// Close wrote a checkpoint as record 6.
	second := Fill(t, loc, 3, opts)
	if second[0].Seq != 7 {
		t.Fatalf("after reopening, the first record is %d, want 7 (5 records and the close checkpoint before it)", second[0].Seq)
	}
	es := Entries(t, loc)
	if len(es) != 10 {
		t.Fatalf("%d entries stored, want 10", len(es))
	}
	for i, e := range es {
		if e.Err != nil {
			t.Fatalf("entry %d (%s): %v", i, e.Where, e.Err)
		}
		if e.Where == "" {
			t.Fatalf("entry %d has no Where", i)
		}
	}
	for i, r := range first {
		if got, want := string(audit.Encode(&es[i].Record)), string(audit.Encode(&r)); got != want {
			t.Fatalf("record %d read back differs:\n got %s\nwant %s", i+1, got, want)
		}
	}
	if es[5].Record.Kind != audit.KindCheckpoint || es[9].Record.Kind != audit.KindCheckpoint {
		t.Fatalf("records 6 and 10 should be the close checkpoints: %s, %s", es[5].Record.Kind, es[9].Record.Kind)
	}
	var cd audit.CheckpointData
	if err := es[9].Record.DecodeData(&cd); err != nil || cd.Records != 9 || cd.Reason != "close" {
		t.Fatalf("close checkpoint data %s (%v)", es[9].Record.Data, err)
	}
	rep := MustVerify(t, loc)
	wantWhole(t, rep)
	if rep.Records != 10 || rep.Head.Seq != 10 || rep.Proven != 10 || rep.Verified != 2 {
		t.Fatalf("report: %s", describe(rep))
	}
	if w := rep.Warnings(); len(w) != 0 {
		t.Fatalf("a closed, signed log verified with its key has warnings: %q", w)
	}
	_ = ctx
}

func testConcurrent(t *testing.T, h Harness) {
	ctx := context.Background()
	loc := h.New(t)
	l, err := audit.Open(ctx, loc, audit.Options{Key: TestKey(), CheckpointEvery: 50})
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 16, 40
	var mu sync.Mutex
	got := map[uint64]audit.Record{}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				r, err := l.Append(ctx, Sample(w*each+i))
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				if _, dup := got[r.Seq]; dup {
					errs <- fmt.Errorf("seq %d returned twice", r.Seq)
				}
				got[r.Seq] = r
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	es := Entries(t, loc)
	checkpoints := 0
	for _, e := range es {
		if e.Err != nil {
			t.Fatalf("%s: %v", e.Where, e.Err)
		}
		if e.Record.Kind == audit.KindCheckpoint {
			checkpoints++
			continue
		}
		want, ok := got[e.Record.Seq]
		if !ok {
			t.Fatalf("stored record %d was never acknowledged", e.Record.Seq)
		}
		if want.Hash != e.Record.Hash {
			t.Fatalf("record %d: acknowledged hash %s, stored %s", want.Seq, want.Hash, e.Record.Hash)
		}
		delete(got, e.Record.Seq)
	}
	if len(got) != 0 {
		t.Fatalf("%d acknowledged records are not stored", len(got))
	}
	// 640 records: a checkpoint after each 50th seq, and the close one.
	if checkpoints < 12 {
		t.Fatalf("%d checkpoints for %d records every 50", checkpoints, workers*each)
	}
	wantWhole(t, MustVerify(t, loc))
}

func testCheckpoints(t *testing.T, h Harness) {
	loc := h.New(t)
	recs := Fill(t, loc, 25, audit.Options{Key: TestKey(), CheckpointEvery: 10})
	es := Entries(t, loc)
	var at []uint64
	for _, e := range es {
		if e.Record.Kind == audit.KindCheckpoint {
			at = append(at, e.Record.Seq)
			if e.Record.Sig == "" || e.Record.KeyID != audit.KeyIDOf(TestPublicKey()) {
				t.Fatalf("checkpoint %d: sig %q key %q", e.Record.Seq, e.Record.Sig, e.Record.KeyID)
			}
		}
	}
	// Samples 1-10 are records 1-10, checkpoint 11; samples 11-19 are
	// 12-20, checkpoint 21; samples 20-25 are 22-27; the close
	// checkpoint is 28.
	want := []uint64{11, 21, 28}
	if fmt.Sprint(at) != fmt.Sprint(want) {
		t.Fatalf("checkpoints at %v, want %v", at, want)
	}
	if recs[len(recs)-1].Seq != 27 {
		t.Fatalf("last record %d", recs[len(recs)-1].Seq)
	}
	rep := MustVerify(t, loc)
	wantWhole(t, rep)
	if rep.Verified != 3 || rep.Proven != 28 {
		t.Fatalf("report: %s", describe(rep))
	}
	// Checkpoint on demand; a second one right after is a no-op.
	ctx := context.Background()
	l, err := audit.Open(ctx, loc, audit.Options{Key: TestKey(), CheckpointEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(ctx, Sample(1)); err != nil {
		t.Fatal(err)
	}
	if err := l.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	es = Entries(t, loc)
	if n := len(es); n != 30 || es[29].Record.Kind != audit.KindCheckpoint || es[28].Record.Kind != audit.KindAnalysis {
		t.Fatalf("after a record, two Checkpoints and Close: %d entries, the last %s", n, es[n-1].Record.Kind)
	}
	var cd audit.CheckpointData
	es[29].Record.DecodeData(&cd)
	if cd.Reason != "requested" {
		t.Fatalf("checkpoint reason %q", cd.Reason)
	}
	wantWhole(t, MustVerify(t, loc))
}

func testUnsigned(t *testing.T, h Harness) {
	loc := h.New(t)
	Fill(t, loc, 3, audit.Options{})
	es := Entries(t, loc)
	if len(es) != 3 {
		t.Fatalf("an unsigned log holds %d entries for 3 records: checkpoints need a key", len(es))
	}
	rep := MustVerify(t, loc)
	wantWhole(t, rep)
	if rep.Signed() || rep.Proven != 0 {
		t.Fatalf("unsigned log reported signed: %s", describe(rep))
	}
	if w := strings.Join(rep.Warnings(), "\n"); !strings.Contains(w, "unsigned") {
		t.Fatalf("warnings do not say the log is unsigned: %q", w)
	}
	if es[0].Record.Actor != "alice" {
		t.Fatal("actor lost")
	}
}

func testWrongKey(t *testing.T, h Harness) {
	loc := h.New(t)
	Fill(t, loc, 3, audit.Options{Key: TestKey()})
	_, other, _ := ed25519.GenerateKey(nil)
	rep, err := audit.Verify(context.Background(), loc, audit.VerifyOptions{Key: other.Public().(ed25519.PublicKey)})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() || rep.Problems[0].Kind != audit.ProblemKey || rep.Problems[0].Seq != 4 {
		t.Fatalf("verify with another key: %s", describe(rep))
	}
	// Without a key the chain verifies, and the report says the
	// signatures went unchecked.
	rep, err = audit.Verify(context.Background(), loc, audit.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wantWhole(t, rep)
	if w := strings.Join(rep.Warnings(), "\n"); !strings.Contains(w, "not checked") {
		t.Fatalf("warnings: %q", w)
	}
}

func testReaderBesideWriter(t *testing.T, h Harness) {
	ctx := context.Background()
	loc := h.New(t)
	l, err := audit.Open(ctx, loc, audit.Options{Key: TestKey()})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(ctx)
	for i := 0; i < 5; i++ {
		if _, err := l.Append(ctx, Sample(i)); err != nil {
			t.Fatal(err)
		}
	}
	rep := MustVerify(t, loc)
	wantWhole(t, rep)
	if rep.Head.Seq != 5 {
		t.Fatalf("reader sees head %d, want 5", rep.Head.Seq)
	}
	if w := strings.Join(rep.Warnings(), "\n"); !strings.Contains(w, "records 1-5") {
		t.Fatalf("an open log's records are not yet covered by a checkpoint; warnings: %q", w)
	}
}

func testSecondWriter(t *testing.T, h Harness) {
	ctx := context.Background()
	loc := h.New(t)
	a, err := audit.Open(ctx, loc, audit.Options{Key: TestKey(), CheckpointEvery: 7})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(ctx)
	b, err := audit.Open(ctx, loc, audit.Options{Key: TestKey(), CheckpointEvery: 7})
	if h.SingleWriter {
		if err == nil {
			b.Close(ctx)
			t.Fatal("a second writer opened the log beside the first")
		}
		return
	}
	if err != nil {
		t.Fatalf("second writer: %v", err)
	}
	defer b.Close(ctx)
	var wg sync.WaitGroup
	for _, l := range []audit.Log{a, b} {
		wg.Add(1)
		go func(l audit.Log) {
			defer wg.Done()
			for i := 0; i < 30; i++ {
				if _, err := l.Append(ctx, Sample(i)); err != nil {
					t.Error(err)
					return
				}
			}
		}(l)
	}
	wg.Wait()
	a.Close(ctx)
	b.Close(ctx)
	rep := MustVerify(t, loc)
	wantWhole(t, rep)
	if rep.Records < 60 {
		t.Fatalf("two writers, 60 records: %s", describe(rep))
	}
}

func testRefuses(t *testing.T, h Harness) {
	ctx := context.Background()
	loc := h.New(t)
	l, err := audit.Open(ctx, loc, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(ctx)
	for name, r := range map[string]audit.Record{
		"no kind":           {},
		"checkpoint kind":   {Kind: audit.KindCheckpoint},
		"repair kind":       {Kind: audit.KindRepair},
		"upper-case kind":   {Kind: "Approval"},
		"data not object":   {Kind: "x", Data: json.RawMessage(`[1]`)},
		"data invalid":      {Kind: "x", Data: json.RawMessage(`{"a":}`)},
		"big integer":       {Kind: "x", Data: json.RawMessage(`{"n":12345678901234567890}`)},
		"duplicate member":  {Kind: "x", Data: json.RawMessage(`{"a":1,"a":2}`)},
		"invalid UTF-8":     {Kind: "x", Service: "pay\xffments"},
		"NUL in actor":      {Kind: "x", Actor: "al\x00ice"},
		"record over limit": {Kind: "x", Data: json.RawMessage(`{"s":"` + strings.Repeat("a", audit.MaxRecordBytes) + `"}`)},
	} {
		if _, err := l.Append(ctx, r); err == nil {
			t.Errorf("%s: appended", name)
		}
	}
	// Data is stored canonical: members sorted, numbers as JCS prints them.
	r, err := l.Append(ctx, audit.Record{Kind: "x", Data: json.RawMessage(`{ "b": 1.50, "a": [1e2, "\u00e9"] }`)})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(r.Data); got != `{"a":[100,"é"],"b":1.5}` {
		t.Fatalf("data stored as %s", got)
	}
	if r.Seq != 1 {
		t.Fatalf("refused records took sequence numbers: the first accepted is %d", r.Seq)
	}
}

// clock is a deterministic clock: each call is a millisecond later.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock {
	return &clock{t: time.Date(2026, 3, 2, 9, 30, 0, 123456789, time.UTC)}
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Millisecond)
	return c.t
}

// BenchmarkAppend measures durable appends per second with appenders
// goroutines sharing one Log on the store at loc.
func BenchmarkAppend(b *testing.B, loc string, appenders int) {
	ctx := context.Background()
	l, err := audit.Open(ctx, loc, audit.Options{Key: TestKey()})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close(ctx)
	recs := make([]audit.Record, 64)
	for i := range recs {
		recs[i] = Sample(i)
	}
	b.ResetTimer()
	var wg sync.WaitGroup
	per := (b.N + appenders - 1) / appenders
	for w := 0; w < appenders; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < per; i++ {
				if _, err := l.Append(ctx, recs[(w+i)%len(recs)]); err != nil {
					b.Error(err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(per*appenders)/b.Elapsed().Seconds(), "appends/s")
}

// Generate appends n records to the log at loc as fast as the store
// takes them (many appenders sharing fsyncs), signed with TestKey and a
// checkpoint every 1000; for benchmarks of verify.
func Generate(t testing.TB, loc string, n int) {
	t.Helper()
	ctx := context.Background()
	l, err := audit.Open(ctx, loc, audit.Options{Key: TestKey(), MaxBatch: 8192})
	if err != nil {
		t.Fatal(err)
	}
	const appenders = 512
	var wg sync.WaitGroup
	for w := 0; w < appenders; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < n; i += appenders {
				if _, err := l.Append(ctx, Sample(i)); err != nil {
					t.Error(err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkVerify measures Verify over a log of n records, written once
// into loc before the timer starts.
func BenchmarkVerify(b *testing.B, loc string, n int) {
	start := time.Now()
	Generate(b, loc, n)
	b.Logf("wrote %d records in %v (%.0f appends/s with 512 appenders)", n, time.Since(start).Round(time.Millisecond), float64(n)/time.Since(start).Seconds())
	b.ResetTimer()
	var rep *audit.Report
	for i := 0; i < b.N; i++ {
		var err error
		rep, err = audit.Verify(context.Background(), loc, audit.VerifyOptions{Key: TestPublicKey()})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if !rep.OK() || rep.Head.Seq < uint64(n) {
		b.Fatalf("verify: %s", describe(rep))
	}
	b.ReportMetric(float64(rep.Records)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/verify")
}
