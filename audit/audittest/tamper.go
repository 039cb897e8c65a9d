package audittest

import (
	"context"
	"strings"
	"testing"

	"github.com/cutoverhq/cutover/audit"
)

// tamperLog writes the log every tamper case starts from: records 1-5,
// checkpoint 6, records 7-10, checkpoint 11, records 12-14, and the close
// checkpoint 15.
func tamperLog(t *testing.T, h Harness) (string, []audit.Record) {
	t.Helper()
	loc := h.New(t)
	Fill(t, loc, 12, audit.Options{Key: TestKey(), CheckpointEvery: 5, Now: newClock().now})
	var recs []audit.Record
	for _, e := range Entries(t, loc) {
		if e.Err != nil {
			t.Fatalf("%s: %v", e.Where, e.Err)
		}
		recs = append(recs, e.Record)
	}
	if len(recs) != 15 || recs[5].Kind != audit.KindCheckpoint || recs[10].Kind != audit.KindCheckpoint || recs[14].Kind != audit.KindCheckpoint {
		t.Fatalf("tamper log has an unexpected layout: %d records", len(recs))
	}
	wantWhole(t, MustVerify(t, loc))
	return loc, recs
}

// rehash returns r with its hash recomputed, as a forger would.
func rehash(r audit.Record) audit.Record {
	r.Hash = audit.ComputeHash(&r)
	return r
}

func enc(r audit.Record) []byte { return audit.Encode(&r) }

type tamperCase struct {
	name string
	do   func(t *testing.T, tp Tamperer, loc string, recs []audit.Record) []audit.Head
	// want is the first problem's kind and seq; a zero kind means no
	// problem, and warn a text one of the warnings must hold.
	kind  audit.ProblemKind
	seq   uint64
	warn  string
	where string // text the first problem's message must hold, if any
}

var tamperCases = []tamperCase{
	{
		name: "EditField",
		do: func(t *testing.T, tp Tamperer, loc string, recs []audit.Record) []audit.Head {
			r := recs[7]
			r.Actor = "mallory"
			tp.Replace(t, loc, 8, enc(r))
			return nil
		},
		kind: audit.ProblemEdited, seq: 8,
	},
	{
		name: "EditData",
		do: func(t *testing.T, tp Tamperer, loc string, recs []audit.Record) []audit.Head {
			r := recs[7]
			r.Data = []byte(strings.Replace(string(r.Data), `"verdict":"pass"`, `"verdict":"fail"`, 1))
			tp.Replace(t, loc, 8, enc(r))
			return nil
		},
		kind: audit.ProblemEdited, seq: 8,
	},
	{
		name: "EditNotCanonical",
		do: func(t *testing.T, tp Tamperer, loc string, recs []audit.Record) []audit.Head {
			raw := strings.Replace(string(enc(recs[7])), `"actor":"alice",`, `"actor": "alice",`, 1)
			tp.Replace(t, loc, 8, []byte(raw))
			return nil
		},
		kind: audit.ProblemUnreadable, seq: 8,
	},
	{
		name: "EditAndRehash",
		do: func(t *testing.T, tp Tamperer, loc string, recs []audit.Record) []audit.Head {
			r := recs[7]
			r.Actor = "mallory"
			tp.Replace(t, loc, 8, enc(rehash(r)))
			return nil
		},
		kind: audit.ProblemLink, seq: 9, where: "record 8",
	},
	{
		name: "RewriteChainFromRecord8",
		do: func(t *testing.T, tp Tamperer, loc string, recs []audit.Record) []audit.Head {
			prev := recs[6].Hash
			for i := 7; i < len(recs); i++ {
				r := recs[i]
				if i == 7 {
					r.Actor = "mallory"
				}
				r.Prev = prev
				r = rehash(r)
				prev = r.Hash
				tp.Replace(t, loc, uint64(i+1), enc(r))
			}
			return nil
		},
		kind: audit.ProblemSignature, seq: 11, where: "7-11",
	},
	{
		name: "DeleteRecord",
		do: func(t *testing.T, tp Tamperer, loc string, recs []audit.Record) []audit.Head {
			tp.Delete(t, loc, 8)
			return nil
		},
		kind: audit.ProblemMissing, seq: 8,
	},
	{
		name: "DeleteFirstRecord",
		do: func(t *testing.T, tp Tamperer, loc string, recs []audit.Record) []audit.Head {
			tp.Delete(t, loc, 1)
			return nil
		},
		kind: audit.ProblemMissing, seq: 1,
	},
	{
		name: "InsertCrude",
		do: func(t *testing.T, tp Tamperer, loc string, recs []audit.Record) []audit.Head {
			r := recs[7]
			r.Seq, r.Prev, r.Kind = 9, recs[7].Hash, audit.KindApproval
			tp.Insert(t, loc, 8, enc(r)) // hash left stale
			return nil
		},
		kind: audit.ProblemEdited, seq: 9,
	},
	{
		name: "InsertForged",
		do: func(t *testing.T, tp Tamperer, loc string, recs []audit.Record) []audit.Head {
			r := recs[7]
			r.Seq, r.Prev, r.Kind, r.Actor = 9, recs[7].Hash, audit.KindApproval, "mallory"
			tp.Insert(t, loc, 8, enc(rehash(r)))
			return nil
		},
		// A forgery that hashes and links right is found where the
		// record it displaced still claims its place.
		kind: audit.ProblemOrder, seq: 9, where: "twice",
	},
	{
		name: "SwapRecords",
		do: func(t *testing.T, tp Tamperer, loc string, recs []audit.Record) []audit.Head {
			tp.Swap(t, loc, 8, 9)
			return nil
		},
		seq: 8,
	},
	{
		name: "TruncateTail",
		do: func(t *testing.T, tp Tamperer, loc string, recs []audit.Record) []audit.Head {
			tp.Truncate(t, loc, 13)
			return nil
		},
		warn: "unproven tail after checkpoint 11: records 12-13",
	},
	{
		name: "TruncateAtCheckpointWithKnownHead",
		do: func(t *testing.T, tp Tamperer, loc string, recs []audit.Record) []audit.Head {
			tp.Truncate(t, loc, 11)
			return []audit.Head{audit.HeadOf(&recs[14])}
		},
		kind: audit.ProblemTruncated, seq: 15, where: "ends at record 11",
	},
	{
		name: "KnownHeadRewritten",
		do: func(t *testing.T, tp Tamperer, loc string, recs []audit.Record) []audit.Head {
			return []audit.Head{{Seq: 14, Hash: recs[13].Prev}}
		},
		kind: audit.ProblemTruncated, seq: 14,
	},
	{
		name: "EditCheckpointSignature",
		do: func(t *testing.T, tp Tamperer, loc string, recs []audit.Record) []audit.Head {
			r := recs[10]
			r.Sig = recs[5].Sig
			tp.Replace(t, loc, 11, enc(r))
			return nil
		},
		kind: audit.ProblemSignature, seq: 11,
	},
	{
		name: "ForgeCheckpointCount",
		do: func(t *testing.T, tp Tamperer, loc string, recs []audit.Record) []audit.Head {
			r := recs[10]
			r.Data = []byte(`{"reason":"every 5 records","records":9}`)
			tp.Replace(t, loc, 11, enc(rehash(r)))
			return nil
		},
		kind: audit.ProblemCheckpoint, seq: 11, where: "claims to cover 9 records",
	},
}

func testTamper(t *testing.T, h Harness) {
	for _, tc := range tamperCases {
		t.Run(tc.name, func(t *testing.T) {
			loc, recs := tamperLog(t, h)
			expect := tc.do(t, h.Tamper, loc, recs)
			rep, err := audit.Verify(context.Background(), loc, audit.VerifyOptions{Key: TestPublicKey(), Expect: expect})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s", describe(rep))
			if tc.seq == 0 {
				wantWhole(t, rep)
				if w := strings.Join(rep.Warnings(), "\n"); !strings.Contains(w, tc.warn) {
					t.Fatalf("warnings do not hold %q:\n%s", tc.warn, describe(rep))
				}
				return
			}
			if rep.OK() {
				t.Fatalf("tampering not caught: %s", describe(rep))
			}
			p := rep.Problems[0]
			if p.Seq != tc.seq || (tc.kind != "" && p.Kind != tc.kind) || !strings.Contains(p.String(), tc.where) {
				t.Fatalf("first problem %q; want %s at record %d mentioning %q\n%s", p, tc.kind, tc.seq, tc.where, describe(rep))
			}
			if p.Where == "" {
				t.Fatal("the problem names no position")
			}
			if rep.Proven >= tc.seq {
				t.Fatalf("records through %d reported proven, but record %d is bad", rep.Proven, tc.seq)
			}
		})
	}
}
