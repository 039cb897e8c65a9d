package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/internal/golden"
)

// exampleLog builds the log docs/audit.md walks through: fixed key, fixed
// clock, so its bytes never change unless the encoding does (which must
// never happen within format version 1).
func exampleLog(t testing.TB) ([]Record, ed25519.PrivateKey) {
	t.Helper()
	seed := sha256.Sum256([]byte("cutover audit example key"))
	key := ed25519.NewKeyFromSeed(seed[:])
	at := time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)
	s := &signer{key: key, keyID: KeyIDOf(key.Public().(ed25519.PublicKey)), every: 1000, now: func() time.Time { at = at.Add(1500 * time.Millisecond); return at }}
	var recs []Record
	head := Head{}
	for _, in := range []struct {
		kind, service string
		data          any
	}{
		{KindPlanLoaded, "payments-api", PlanData{Steps: []float64{10, 50, 100}, Router: "proxy", Metrics: "embedded", Environment: "prod", StartedBy: "alice"}},
		{KindWeightSet, "payments-api", WeightData{Step: 0, Want: 10, Router: "proxy"}},
		{KindApproval, "payments-api", ApprovalData{Step: 1, Group: "payments-leads", Required: 1, StartedBy: "alice", Reason: "dashboards green; Ünïcode ok", Satisfied: true}},
		{KindCheckpoint, "", CheckpointData{Reason: "close"}},
	} {
		r := Record{Kind: in.kind, Actor: "alice@build-7", Service: in.service, Plan: "plans/payments.yaml", PlanDigest: "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}
		if in.kind == KindApproval {
			r.Actor = "bob"
		}
		if in.kind == KindCheckpoint {
			r = Record{Kind: KindCheckpoint}
		}
		if err := r.SetData(in.data); err != nil {
			t.Fatal(err)
		}
		d, err := Canonicalize(r.Data)
		if err != nil {
			t.Fatal(err)
		}
		r.Data = d
		b := &Batch{In: []Record{r}, signer: s}
		out, err := b.Link(head)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, out...)
		head = HeadOf(&out[len(out)-1])
	}
	return recs, key
}

// TestExampleLog pins the encoding: testdata/example holds the log, its
// public key and the canonical bytes of record 1 that docs/audit.md shows.
func TestExampleLog(t *testing.T) {
	recs, key := exampleLog(t)
	var log bytes.Buffer
	for i := range recs {
		log.Write(Encode(&recs[i]))
		log.WriteByte('\n')
	}
	golden.Assert(t, "testdata/example/audit.log", log.Bytes())
	der, _ := x509.MarshalPKIXPublicKey(key.Public())
	golden.Assert(t, "testdata/example/audit.pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	golden.Assert(t, "testdata/example/record1.canonical", Canonical(&recs[0]))

	// What docs/audit.md promises an auditor: the hashed bytes are the
	// line without its "hash" and "sig" members.
	for i := range recs {
		line := string(Encode(&recs[i]))
		stripped := strings.Replace(line, `"hash":"`+recs[i].Hash+`",`, "", 1)
		if recs[i].Sig != "" {
			stripped = strings.Replace(stripped, `,"sig":"`+recs[i].Sig+`"`, "", 1)
		}
		if stripped != string(Canonical(&recs[i])) {
			t.Fatalf("record %d: removing hash and sig from the line does not give the canonical bytes:\n%s\n%s", i+1, stripped, Canonical(&recs[i]))
		}
		// and re-canonicalizing the line with any JCS implementation is
		// the identity.
		if c, err := Canonicalize([]byte(line)); err != nil || string(c) != line {
			t.Fatalf("record %d: the stored line is not its own JCS form: %v", i+1, err)
		}
	}
}

func TestDecodeRoundTrip(t *testing.T) {
	recs, _ := exampleLog(t)
	for i := range recs {
		line := Encode(&recs[i])
		got, err := Decode(line)
		if err != nil {
			t.Fatalf("record %d: %v", i+1, err)
		}
		if string(Encode(&got)) != string(line) {
			t.Fatalf("record %d changed in a round trip", i+1)
		}
		if got.Time != recs[i].Time {
			t.Fatalf("time %v != %v", got.Time, recs[i].Time)
		}
	}
}

func TestDecodeRefuses(t *testing.T) {
	recs, _ := exampleLog(t)
	line := string(Encode(&recs[1]))
	for name, bad := range map[string]string{
		"spaces":          strings.Replace(line, `":`, `": `, 1),
		"reordered":       strings.Replace(line, `{"actor":"alice@build-7",`, `{`, 1)[:len(line)-len(`"actor":"alice@build-7",`)-1] + `,"actor":"alice@build-7"}`,
		"unknown member":  strings.Replace(line, `"v":1}`, `"v":1,"x":1}`, 1),
		"upper-case name": strings.Replace(line, `"seq"`, `"Seq"`, 1),
		"duplicate":       strings.Replace(line, `"seq":2,`, `"seq":2,"seq":2,`, 1),
		"version 2":       strings.Replace(line, `"v":1}`, `"v":2}`, 1),
		"seq 0":           strings.Replace(line, `"seq":2`, `"seq":0`, 1),
		"seq leading 0":   strings.Replace(line, `"seq":2`, `"seq":02`, 1),
		"time zone":       strings.Replace(line, `.000000000Z`, `.000000000+00:00`, 1),
		"short time":      strings.Replace(line, `.000000000Z`, `Z`, 1),
		"empty actor":     strings.Replace(line, `"actor":"alice@build-7"`, `"actor":""`, 1),
		"escaped char":    strings.Replace(line, `"actor":"alice`, `"actor":"\u0061lice`, 1),
		"upper-case hash": strings.Replace(line, recs[1].Hash, strings.ToUpper(recs[1].Hash), 1),
		"short hash":      strings.Replace(line, recs[1].Hash, recs[1].Hash[:10], 1),
		"data array":      strings.Replace(line, `"data":{`, `"data":[{`, 1),
		"data unsorted":   strings.Replace(line, `{"router":"proxy","step":0,"want":10}`, `{"step":0,"router":"proxy","want":10}`, 1),
		"missing kind":    strings.Replace(line, `"kind":"weight-set",`, ``, 1),
		"trailing":        line + " ",
		"not object":      `[]`,
		"empty":           ``,
	} {
		if bad == line {
			t.Fatalf("%s: the test's replacement did not apply", name)
		}
		if _, err := Decode([]byte(bad)); err == nil {
			t.Errorf("%s: decoded %s", name, bad)
		} else {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Errorf("%s: %T is not a *DecodeError", name, err)
			}
		}
	}
}

// FuzzDecode: the record decoder never panics, and accepts only bytes
// that are exactly the encoding of what it returns.
func FuzzDecode(f *testing.F) {
	recs, _ := exampleLog(f)
	for i := range recs {
		f.Add(Encode(&recs[i]))
	}
	f.Add([]byte(`{"hash":"` + strings.Repeat("a", 64) + `","kind":"x","seq":1,"time":"2026-01-01T00:00:00.000000000Z","v":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Decode(b)
		if err != nil {
			return
		}
		if got := Encode(&r); string(got) != string(b) {
			t.Fatalf("decoded %q but it encodes as %q", b, got)
		}
		if r.Seq == 0 || r.Kind == "" || r.Hash == "" {
			t.Fatalf("decoded a record without seq, kind or hash: %+v", r)
		}
		if len(r.Data) > 0 && !json.Valid(r.Data) {
			t.Fatalf("data %q is not JSON", r.Data)
		}
	})
}

func TestSchemeOf(t *testing.T) {
	for in, want := range map[string]string{
		"file:a.log":            "file",
		"a.log":                 "file",
		"/var/a.log":            "file",
		"./a:b.log":             "file",
		"c:\\x":                 "file",
		"postgres://h/db":       "postgres",
		"postgresql://h/db":     "postgres",
		"POSTGRES://h/db":       "postgres",
		"s3://bucket/audit.log": "s3",
	} {
		if got := SchemeOf(in); got != want {
			t.Errorf("SchemeOf(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRedactLocation(t *testing.T) {
	for in, want := range map[string]string{
		"file:audit.log":                             "file:audit.log",
		"postgres://cutover@db:5432/audit":           "postgres://cutover@db:5432/audit",
		"postgres://cutover:s3cret@db:5432/audit":    "postgres://cutover:xxxxx@db:5432/audit",
		"postgres://db/audit?user=c&password=s3cret": "postgres://db/audit?password=xxxxx&user=c",
		"postgres://cutover:s3cret@db:port/audit":    "postgres://…",
	} {
		if got := RedactLocation(in); got != want {
			t.Errorf("RedactLocation(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseHead(t *testing.T) {
	h := strings.Repeat("ab", 32)
	got, err := ParseHead("42:" + strings.ToUpper(h))
	if err != nil || got.Seq != 42 || got.Hash != h || got.String() != "42:"+h {
		t.Fatalf("%+v %v", got, err)
	}
	for _, bad := range []string{"", "42", "0:" + h, "x:" + h, "42:abc"} {
		if _, err := ParseHead(bad); err == nil {
			t.Errorf("ParseHead(%q) accepted", bad)
		}
	}
}

// TestLinkClampsTime: a clock that steps back never makes the log go
// back in time (verify reports a record older than its predecessor).
func TestLinkClampsTime(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := &signer{now: func() time.Time { return t0.Add(-time.Hour) }}
	b := &Batch{In: []Record{{Kind: "x"}}, signer: s}
	out, err := b.Link(Head{Seq: 7, Hash: strings.Repeat("0", 64), Time: t0})
	if err != nil {
		t.Fatal(err)
	}
	if !out[0].Time.Equal(t0) || out[0].Seq != 8 {
		t.Fatalf("%+v", out[0])
	}
}

// TestUnsignedCheckpointRequestMakesNothing: without a key, asking for a
// checkpoint writes no record.
func TestUnsignedCheckpointRequestMakesNothing(t *testing.T) {
	s := &signer{now: time.Now, every: 1}
	b := &Batch{In: []Record{{Kind: "x"}, checkpointRequest("close")}, signer: s}
	out, err := b.Link(Head{})
	if err != nil || len(out) != 1 || b.index[1] != -1 {
		t.Fatalf("%d records, %v", len(out), err)
	}
}
