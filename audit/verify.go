package audit

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// VerifyOptions say what Verify checks beyond the chain itself.
type VerifyOptions struct {
	// Key is the public key checkpoints must be signed with. Nil:
	// signatures are not checked, and the report says so.
	Key ed25519.PublicKey
	// Expect are heads known from before (an earlier verify, an evidence
	// report: "SEQ:HASH"). A log that no longer holds one of them was cut
	// short or rewritten, which the log alone cannot show when the cut
	// falls on a checkpoint.
	Expect []Head
	// Visit, when set, sees every entry as it is read, sound or not, so
	// a caller (export, show) reads the log once.
	Visit func(Entry)
	// MaxProblems bounds Report.Problems; the first is what matters, the
	// rest help. Zero: 100.
	MaxProblems int
}

// ProblemKind classifies a Problem.
type ProblemKind string

const (
	// ProblemUnreadable: the stored bytes are not a record in canonical
	// form, or a store's columns disagree with the record.
	ProblemUnreadable ProblemKind = "unreadable"
	// ProblemEdited: the record's content does not match its hash.
	ProblemEdited ProblemKind = "edited"
	// ProblemMissing: Seq jumps forward: records were deleted.
	ProblemMissing ProblemKind = "missing"
	// ProblemOrder: Seq repeats or goes back: a record was inserted or
	// moved.
	ProblemOrder ProblemKind = "out-of-order"
	// ProblemLink: the record's Prev is not the previous record's hash:
	// the previous record was replaced, or this one was.
	ProblemLink ProblemKind = "broken-link"
	// ProblemSignature: a checkpoint's signature does not verify: records
	// it covers were rewritten, or the checkpoint was.
	ProblemSignature ProblemKind = "bad-signature"
	// ProblemKey: a checkpoint was signed by another key than the one
	// given.
	ProblemKey ProblemKind = "unknown-key"
	// ProblemCheckpoint: a checkpoint's data contradicts its place.
	ProblemCheckpoint ProblemKind = "bad-checkpoint"
	// ProblemTime: a record is older than the one before it.
	ProblemTime ProblemKind = "time"
	// ProblemTruncated: an expected head is missing or differs.
	ProblemTruncated ProblemKind = "truncated"
)

// Problem is one thing wrong with the log.
type Problem struct {
	Kind ProblemKind `json:"kind"`
	// Seq is the sequence number at fault: the record's, or the one that
	// should be there; zero when unknown (an unreadable entry).
	Seq uint64 `json:"seq,omitempty"`
	// Where is the store's position ("line 12", "row 12").
	Where string `json:"where"`
	// Line is the file line; zero for other stores.
	Line int64 `json:"line,omitempty"`
	// Message explains it.
	Message string `json:"message"`
}

func (p Problem) String() string {
	if p.Seq != 0 {
		return fmt.Sprintf("record %d (%s): %s: %s", p.Seq, p.Where, p.Kind, p.Message)
	}
	return fmt.Sprintf("%s: %s: %s", p.Where, p.Kind, p.Message)
}

// Report is what Verify found.
type Report struct {
	// Location is the log verified.
	Location string `json:"location"`
	// Records is how many entries were read, sound or not.
	Records uint64 `json:"records"`
	// Head is the last sound record's head; zero for an empty log.
	Head Head `json:"head"`
	// Checkpoints is how many checkpoint records were read.
	Checkpoints int `json:"checkpoints"`
	// Verified is how many checkpoint signatures verified with the key.
	Verified int `json:"verified"`
	// KeyIDs are the keys that signed checkpoints, in order of first use.
	KeyIDs []string `json:"keyIds,omitempty"`
	// KeyChecked says a key was given, so signatures were checked.
	KeyChecked bool `json:"keyChecked"`
	// Proven is the Seq of the last checkpoint whose signature verified
	// with an unbroken chain before it: every record up to it is proven
	// whole and complete. Zero when none is.
	Proven uint64 `json:"proven"`
	// Problems are what is wrong, in log order; Problems[0] names the
	// first bad record. Empty when the log is whole.
	Problems []Problem `json:"problems,omitempty"`
	// Truncated counts problems left out beyond MaxProblems.
	Truncated int `json:"problemsLeftOut,omitempty"`
	// Torn is the torn last line a crash left; nil when there is none.
	// It is not a Problem: it held no acknowledged record, and the writer
	// cuts it off when it next opens the log.
	Torn *Problem `json:"torn,omitempty"`
}

// OK reports whether the log is whole: no problems (a torn last line, an
// unsigned log or an unproven tail are warnings).
func (r *Report) OK() bool { return len(r.Problems) == 0 }

// Signed reports whether any checkpoint carries a signature.
func (r *Report) Signed() bool { return len(r.KeyIDs) > 0 }

// Warnings are what keeps the report short of full proof although the
// chain is whole: no signatures, no key to check them, records after the
// last proven checkpoint, a torn last line.
func (r *Report) Warnings() []string {
	var w []string
	if r.Records == 0 && r.Torn == nil {
		return []string{"the log is empty"}
	}
	switch {
	case !r.Signed():
		w = append(w, "the log is unsigned: its chain shows accidental damage, but anyone who can write the log could rewrite it whole (create a key with `cutover audit keygen`)")
	case !r.KeyChecked:
		w = append(w, fmt.Sprintf("checkpoints are signed (key %s) but no key was given, so the signatures were not checked (--key)", strings.Join(r.KeyIDs, ", ")))
	}
	if r.Head.Seq > r.Proven && r.OK() {
		if r.Proven == 0 {
			w = append(w, fmt.Sprintf("no record is covered by a verified checkpoint: records 1-%d are chained, but a cut at their end cannot be detected", r.Head.Seq))
		} else {
			w = append(w, fmt.Sprintf("unproven tail after checkpoint %d: records %d-%d are chained but no signed checkpoint covers them, so a cut among them cannot be detected", r.Proven, r.Proven+1, r.Head.Seq))
		}
	}
	if r.Torn != nil {
		w = append(w, fmt.Sprintf("torn last line at %s: %s", r.Torn.Where, r.Torn.Message))
	}
	return w
}

// Verify reads the whole log at location and checks it: each record's
// form and hash, the chain of Prev hashes, consecutive Seqs, time order,
// and the signature of every checkpoint. It names the first bad record.
// The error is for failing to read the log at all; what is wrong with the
// log is in the Report.
func Verify(ctx context.Context, location string, opts VerifyOptions) (*Report, error) {
	st, err := OpenStore(ctx, location, ReadOnly)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	rep, err := VerifyStore(ctx, st, opts)
	if rep != nil {
		rep.Location = RedactLocation(location)
	}
	return rep, err
}

// VerifyStore is Verify on an open store.
func VerifyStore(ctx context.Context, st Store, opts VerifyOptions) (*Report, error) {
	v := newVerifier(opts)
	err := st.Scan(ctx, func(e Entry) error {
		if opts.Visit != nil {
			opts.Visit(e)
		}
		v.add(e)
		return ctx.Err()
	})
	if err != nil {
		return nil, err
	}
	return v.finish(), nil
}

type verifier struct {
	opts VerifyOptions
	rep  Report

	// The previous entry, sound or not: each entry is checked against its
	// neighbour, so one edit shows as one problem rather than a cascade.
	prev      Record
	prevWhere string
	have      bool
	// Since the last verified checkpoint, is the chain unbroken?
	clean    bool
	lastGood uint64 // last checkpoint that verified, or 0
	seenSeq  map[uint64]string
	expect   map[uint64]string
}

func newVerifier(opts VerifyOptions) *verifier {
	if opts.MaxProblems <= 0 {
		opts.MaxProblems = 100
	}
	v := &verifier{opts: opts, clean: true}
	v.rep.KeyChecked = opts.Key != nil
	if len(opts.Expect) > 0 {
		v.expect = map[uint64]string{}
		for _, h := range opts.Expect {
			v.expect[h.Seq] = h.Hash
		}
	}
	return v
}

func (v *verifier) problem(e *Entry, seq uint64, kind ProblemKind, format string, args ...any) {
	v.clean = false
	if len(v.rep.Problems) >= v.opts.MaxProblems {
		v.rep.Truncated++
		return
	}
	v.rep.Problems = append(v.rep.Problems, Problem{Kind: kind, Seq: seq, Where: e.Where, Line: e.Line, Message: fmt.Sprintf(format, args...)})
}

func (v *verifier) add(e Entry) {
	v.rep.Records++
	if e.Err != nil {
		if e.Torn {
			v.rep.Torn = &Problem{Kind: ProblemUnreadable, Where: e.Where, Line: e.Line, Message: e.Err.Error()}
			return
		}
		expected := uint64(1)
		if v.have {
			expected = v.prev.Seq + 1
		}
		got := e.Record.Seq // nonzero when the entry decoded but is not sound
		if w, dup := v.seenSeq[got]; got != 0 && dup {
			v.problem(&e, got, ProblemOrder, "record %d appears twice (%s and %s): one was inserted; %v", got, w, e.Where, e.Err)
		} else {
			v.problem(&e, expected, ProblemUnreadable, "%v", e.Err)
		}
		if got == expected {
			v.prev, v.prevWhere = e.Record, e.Where
		} else {
			// What belongs here is unknown: check the next entry's seq
			// against this place, and skip its link check.
			v.prev = Record{Seq: expected, Time: v.prev.Time}
			v.prevWhere = e.Where
		}
		v.have = true
		return
	}
	before := len(v.rep.Problems)
	r := &e.Record
	c := Canonical(r)
	want := hashOf(c)
	if r.Hash != want {
		v.problem(&e, r.Seq, ProblemEdited, "its content does not match its hash (stored %s, content hashes to %s): the record was changed after it was written", short(r.Hash), short(want))
	}
	switch {
	case !v.have:
		if r.Seq != 1 {
			v.problem(&e, 1, ProblemMissing, "the log starts at record %d: %s missing", r.Seq, seqRange(1, r.Seq-1))
		} else if r.Prev != "" {
			v.problem(&e, 1, ProblemLink, "the first record names a predecessor (%s): records before it were removed", short(r.Prev))
		}
	case r.Seq == v.prev.Seq+1:
		if r.Prev != v.prev.Hash && v.prev.Hash != "" {
			v.problem(&e, r.Seq, ProblemLink, "it does not link to record %d (%s): its prev is %s, record %d's hash is %s; one of the two was replaced", v.prev.Seq, v.prevWhere, short(r.Prev), v.prev.Seq, short(v.prev.Hash))
		}
	case r.Seq > v.prev.Seq+1:
		if v.allSeen(v.prev.Seq+1, r.Seq-1) {
			break // a reordering, reported where it began
		}
		v.problem(&e, v.prev.Seq+1, ProblemMissing, "%s missing: %s holds record %d after record %d (%s)", seqRange(v.prev.Seq+1, r.Seq-1), e.Where, r.Seq, v.prev.Seq, v.prevWhere)
	default: // r.Seq <= v.prev.Seq
		if w, dup := v.seenSeq[r.Seq]; dup {
			v.problem(&e, r.Seq, ProblemOrder, "record %d appears twice (%s and %s): one was inserted", r.Seq, w, e.Where)
		} else {
			v.problem(&e, r.Seq, ProblemOrder, "record %d comes after record %d (%s): records were inserted or moved", r.Seq, v.prev.Seq, v.prevWhere)
		}
	}
	if v.have && r.Time.Before(v.prev.Time) && len(v.rep.Problems) == before {
		v.problem(&e, r.Seq, ProblemTime, "its time %s is before record %d's %s", r.Time.Format(timeLayout), v.prev.Seq, v.prev.Time.Format(timeLayout))
	}
	if r.Kind == KindCheckpoint {
		v.checkpoint(&e, c)
	} else if r.Sig != "" {
		v.problem(&e, r.Seq, ProblemSignature, "only checkpoints carry signatures")
	}
	if h, ok := v.expect[r.Seq]; ok {
		if h != r.Hash {
			v.problem(&e, r.Seq, ProblemTruncated, "expected record %d with hash %s, found hash %s: the log was rewritten since that head was recorded", r.Seq, short(h), short(r.Hash))
		}
		delete(v.expect, r.Seq)
	}
	if v.seenSeq == nil {
		v.seenSeq = map[uint64]string{}
	}
	// Only a short window of positions is kept: duplicates come from
	// insertions next to the original.
	if len(v.seenSeq) > 4096 {
		clear(v.seenSeq)
	}
	v.seenSeq[r.Seq] = e.Where
	v.prev, v.prevWhere, v.have = *r, e.Where, true
	v.rep.Head = HeadOf(r)
}

// allSeen reports whether records from..to were all read already.
func (v *verifier) allSeen(from, to uint64) bool {
	if to-from > 64 {
		return false
	}
	for s := from; s <= to; s++ {
		if _, ok := v.seenSeq[s]; !ok {
			return false
		}
	}
	return true
}

func (v *verifier) checkpoint(e *Entry, canonical []byte) {
	r := &e.Record
	v.rep.Checkpoints++
	var cd CheckpointData
	dec := json.NewDecoder(strings.NewReader(string(r.Data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cd); err != nil {
		v.problem(e, r.Seq, ProblemCheckpoint, "its data does not read: %v", err)
		return
	}
	if cd.Records != r.Seq-1 {
		v.problem(e, r.Seq, ProblemCheckpoint, "it claims to cover %d records but is record %d", cd.Records, r.Seq)
	}
	if r.Sig == "" {
		return
	}
	if !slices.Contains(v.rep.KeyIDs, r.KeyID) {
		v.rep.KeyIDs = append(v.rep.KeyIDs, r.KeyID)
	}
	if v.opts.Key == nil {
		return
	}
	if id := KeyIDOf(v.opts.Key); r.KeyID != id {
		v.problem(e, r.Seq, ProblemKey, "signed by key %s, not by the key given (%s)", r.KeyID, id)
		return
	}
	sig, err := base64.StdEncoding.DecodeString(r.Sig)
	if err != nil || !ed25519.Verify(v.opts.Key, canonical, sig) {
		from := v.lastGood + 1
		v.problem(e, r.Seq, ProblemSignature, "the signature does not verify: the checkpoint or the records it covers since the last good checkpoint (%d-%d) were rewritten", from, r.Seq)
		return
	}
	v.rep.Verified++
	if v.clean && len(v.rep.Problems) == 0 {
		v.rep.Proven = r.Seq
	}
	v.lastGood = r.Seq
}

func (v *verifier) finish() *Report {
	seqs := make([]uint64, 0, len(v.expect))
	for seq := range v.expect {
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	for _, seq := range seqs {
		h := v.expect[seq]
		e := Entry{Where: "end of log"}
		v.problem(&e, seq, ProblemTruncated, "expected record %d (hash %s), but the log ends at record %d: it was cut short", seq, short(h), v.rep.Head.Seq)
	}
	return &v.rep
}

// seqRange says "record 5 is" or "records 5-9 are".
func seqRange(from, to uint64) string {
	if from == to {
		return fmt.Sprintf("record %d is", from)
	}
	return fmt.Sprintf("records %d-%d are", from, to)
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	if h == "" {
		return `""`
	}
	return h
}

// ParseHead reads a head as reports print it: SEQ:HASH.
func ParseHead(s string) (Head, error) {
	i := strings.IndexByte(s, ':')
	if i < 0 {
		return Head{}, fmt.Errorf("head %q: want SEQ:HASH", s)
	}
	seq, err := strconv.ParseUint(s[:i], 10, 64)
	if err != nil || seq == 0 {
		return Head{}, fmt.Errorf("head %q: SEQ is not a positive integer", s)
	}
	h := strings.ToLower(s[i+1:])
	if err := checkHex(h); err != nil {
		return Head{}, fmt.Errorf("head %q: %v", s, err)
	}
	return Head{Seq: seq, Hash: h}, nil
}

// ErrNotWhole is what commands return when verification found problems.
var ErrNotWhole = errors.New("audit log is not whole")
