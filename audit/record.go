package audit

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Record is one entry of the log. Callers fill Kind, Actor, Service, the
// plan fields and Data; Append fills the rest.
type Record struct {
	// Seq is the record's 1-based position in the log; consecutive, no
	// gaps. Set by Append; zero on a record not yet appended.
	Seq uint64 `json:"seq"`
	// Time is when the record joined the log, UTC, nanoseconds. Set by
	// Append; never earlier than the previous record's Time (a clock that
	// stepped back is clamped), so the log reads in time order.
	Time time.Time `json:"time"`
	// Kind says what happened: one of the Kind* constants, or another
	// lower-case word with dashes. "checkpoint" and "repair" are written by
	// the log itself; Append refuses them. Required.
	Kind string `json:"kind"`
	// Actor is who acted: the identity of the admin token that asked, or
	// the OS user. Empty: Options.Actor, else the OS user (DefaultActor).
	Actor string `json:"actor,omitempty"`
	// Service is the service acted on; empty when the record concerns no
	// one service (a convert of many, a checkpoint).
	Service string `json:"service,omitempty"`
	// Plan is the plan file as the user named it; empty outside a shift.
	Plan string `json:"plan,omitempty"`
	// PlanDigest is "sha256:<hex>" of the plan's bytes; empty outside a
	// shift.
	PlanDigest string `json:"planDigest,omitempty"`
	// PlanCommit is the git commit holding the plan; empty when the plan
	// does not live in git or its file differs from the commit.
	PlanCommit string `json:"planCommit,omitempty"`
	// Data holds what the kind needs: measured values, thresholds,
	// verdicts, weights read back, digests (see the *Data types). It must
	// be a JSON object or empty; Append stores its canonical form. Never
	// put a secret in it.
	Data json.RawMessage `json:"data,omitempty"`
	// Prev is the Hash of the previous record; empty for Seq 1.
	Prev string `json:"prev,omitempty"`
	// Hash is the hex SHA-256 of the record's canonical encoding (which
	// leaves out Hash and Sig). Set by Append.
	Hash string `json:"hash"`
	// Sig is the base64 ed25519 signature of the canonical encoding, on
	// checkpoint records of a signed log only; empty otherwise.
	Sig string `json:"sig,omitempty"`
	// KeyID names the key that signed Sig (KeyIDOf); empty when Sig is.
	KeyID string `json:"keyId,omitempty"`
}

// Kinds of record cutover writes. Kind is free-form beyond these, so a new
// command can record a new kind without a change here.
const (
	KindConvert         = "convert"          // a convert run: input and output digests, environments
	KindPlanLoaded      = "plan-loaded"      // a shift started or resumed with a plan
	KindStepStarted     = "step-started"     // a plan step began
	KindWeightSet       = "weight-set"       // the router was asked for new weights
	KindWeightConfirmed = "weight-confirmed" // the weights read back from the router
	KindRouterDrift     = "router-drift"     // the router read back weights the shift did not set
	KindAnalysis        = "analysis"         // one measurement against its threshold, with the verdict
	KindApproval        = "approval"         // one person approved a step
	KindRefusal         = "refusal"          // one person refused a step
	KindPause           = "pause"
	KindResume          = "resume"
	KindPromote         = "promote"
	KindAbort           = "abort"
	KindRollback        = "rollback"    // a rollback began, with its reason
	KindRolledBack      = "rolled-back" // the rollback was confirmed by read-back
	KindCompleted       = "completed"   // a shift reached its last step
	KindDrill           = "drill"       // a resilience drill and its result
	// KindCheckpoint is written by the log: a signed statement of the
	// chain's head.
	KindCheckpoint = "checkpoint"
	// KindRepair is written by the log when it reopens a log whose last
	// line a crash left torn, and cut that line off.
	KindRepair = "repair"
)

// formatVersion is the "v" member of every encoded record. A verifier
// that meets another version refuses the record rather than guess.
const formatVersion = 1

// timeLayout is RFC 3339 with exactly nine fraction digits, always UTC, so
// a time has one spelling.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

// MaxRecordBytes bounds one encoded record; Append refuses larger ones and
// readers treat a longer line as damage rather than buffer without limit.
const MaxRecordBytes = 1 << 20

// Canonical returns the bytes the record's Hash and Sig cover: the RFC
// 8785 encoding of the record's members except "hash" and "sig". r.Data
// must already be canonical, as it is on every appended or decoded record.
func Canonical(r *Record) []byte {
	return r.appendJSON(make([]byte, 0, 256+len(r.Data)), false)
}

// Encode returns the stored form of a record: the RFC 8785 encoding of all
// its members, "hash" and "sig" included. The file store writes it as one
// line; the PostgreSQL store keeps it in the record column.
func Encode(r *Record) []byte {
	return r.appendJSON(make([]byte, 0, 320+len(r.Data)), true)
}

// appendJSON writes the members in JCS order: ASCII names sorted by byte.
func (r *Record) appendJSON(b []byte, full bool) []byte {
	b = append(b, '{')
	first := true
	str := func(name, v string) {
		if v == "" {
			return
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, '"', ':')
		b = appendString(b, v)
	}
	str("actor", r.Actor)
	if len(r.Data) > 0 {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, `"data":`...)
		b = append(b, r.Data...)
	}
	if full {
		str("hash", r.Hash)
	}
	str("keyId", r.KeyID)
	str("kind", r.Kind)
	str("plan", r.Plan)
	str("planCommit", r.PlanCommit)
	str("planDigest", r.PlanDigest)
	str("prev", r.Prev)
	if !first {
		b = append(b, ',')
	}
	b = append(b, `"seq":`...)
	b = strconv.AppendUint(b, r.Seq, 10)
	first = false
	str("service", r.Service)
	if full {
		str("sig", r.Sig)
	}
	b = append(b, `,"time":"`...)
	b = r.Time.UTC().AppendFormat(b, timeLayout)
	b = append(b, `","v":`...)
	b = strconv.AppendInt(b, formatVersion, 10)
	return append(b, '}')
}

// hashOf returns the hex SHA-256 of the canonical bytes.
func hashOf(canonical []byte) string {
	sum := sha256.Sum256(canonical)
	return hex.EncodeToString(sum[:])
}

// ComputeHash returns what r.Hash must be.
func ComputeHash(r *Record) string { return hashOf(Canonical(r)) }

// DecodeError says why stored bytes are not a record.
type DecodeError struct {
	// Field is the member at fault; empty when the bytes are not a JSON
	// object at all.
	Field string
	Err   error
}

func (e *DecodeError) Error() string {
	if e.Field == "" {
		return e.Err.Error()
	}
	return fmt.Sprintf("%s: %v", e.Field, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// ErrNotCanonical: the bytes decode to a record, but are not its
// canonical encoding (reordered members, whitespace, another spelling of a
// number or a string). Nothing cutover writes looks so: an edit does.
var ErrNotCanonical = errors.New("not in canonical form")

// Decode parses one stored record (a line of the file store, without its
// newline). It accepts only the exact bytes Encode writes, so any change
// to them, even one that keeps the meaning, is an error. It checks the
// record's form, not its Hash: Verify does that.
func Decode(line []byte) (Record, error) {
	var r Record
	if len(line) > MaxRecordBytes {
		return Record{}, &DecodeError{Err: fmt.Errorf("record of %d bytes exceeds %d", len(line), MaxRecordBytes)}
	}
	p := &jcsParser{in: line}
	if len(line) == 0 || line[0] != '{' {
		return Record{}, &DecodeError{Err: errors.New("not a JSON object")}
	}
	p.pos++
	var seen uint32
	// Whitespace is read past, so a record spaced out by hand decodes and
	// is then refused as not canonical, which says what is wrong with it.
	for {
		p.skipSpace()
		if p.pos >= len(line) || line[p.pos] != '"' {
			return Record{}, &DecodeError{Err: fmt.Errorf("offset %d: expected a member name: %w", p.pos, ErrNotCanonical)}
		}
		name, err := p.string()
		if err != nil {
			return Record{}, &DecodeError{Err: err}
		}
		p.skipSpace()
		if p.pos >= len(line) || line[p.pos] != ':' {
			return Record{}, &DecodeError{Field: name, Err: fmt.Errorf("expected ':': %w", ErrNotCanonical)}
		}
		p.pos++
		p.skipSpace()
		bit, err := r.decodeMember(p, name)
		if err != nil {
			return Record{}, &DecodeError{Field: name, Err: err}
		}
		if seen&bit != 0 {
			return Record{}, &DecodeError{Field: name, Err: errors.New("appears twice")}
		}
		seen |= bit
		p.skipSpace()
		if p.pos >= len(line) {
			return Record{}, &DecodeError{Err: errors.New("unexpected end of record")}
		}
		if line[p.pos] == ',' {
			p.pos++
			continue
		}
		if line[p.pos] == '}' {
			p.pos++
			break
		}
		return Record{}, &DecodeError{Err: fmt.Errorf("offset %d: expected ',' or '}': %w", p.pos, ErrNotCanonical)}
	}
	if p.pos != len(line) {
		return Record{}, &DecodeError{Err: fmt.Errorf("offset %d: data after the record", p.pos)}
	}
	for _, req := range []struct {
		bit  uint32
		name string
	}{{bitSeq, "seq"}, {bitTime, "time"}, {bitKind, "kind"}, {bitHash, "hash"}, {bitV, "v"}} {
		if seen&req.bit == 0 {
			return Record{}, &DecodeError{Field: req.name, Err: errors.New("missing")}
		}
	}
	if (r.Sig == "") != (r.KeyID == "") {
		return Record{}, &DecodeError{Field: "sig", Err: errors.New("sig and keyId go together")}
	}
	if string(Encode(&r)) != string(line) {
		return Record{}, &DecodeError{Err: ErrNotCanonical}
	}
	return r, nil
}

const (
	bitSeq uint32 = 1 << iota
	bitTime
	bitKind
	bitHash
	bitV
	bitActor
	bitData
	bitKeyID
	bitPlan
	bitPlanCommit
	bitPlanDigest
	bitPrev
	bitService
	bitSig
)

func (r *Record) decodeMember(p *jcsParser, name string) (uint32, error) {
	str := func(dst *string, bit uint32) (uint32, error) {
		if p.pos >= len(p.in) || p.in[p.pos] != '"' {
			return 0, errors.New("not a string")
		}
		s, err := p.string()
		if err != nil {
			return 0, err
		}
		if s == "" {
			// Encode leaves empty members out.
			return 0, ErrNotCanonical
		}
		*dst = s
		return bit, nil
	}
	switch name {
	case "actor":
		return str(&r.Actor, bitActor)
	case "service":
		return str(&r.Service, bitService)
	case "plan":
		return str(&r.Plan, bitPlan)
	case "planCommit":
		return str(&r.PlanCommit, bitPlanCommit)
	case "planDigest":
		return str(&r.PlanDigest, bitPlanDigest)
	case "kind":
		if _, err := str(&r.Kind, bitKind); err != nil {
			return 0, err
		}
		if err := checkKind(r.Kind); err != nil {
			return 0, err
		}
		return bitKind, nil
	case "hash":
		if _, err := str(&r.Hash, bitHash); err != nil {
			return 0, err
		}
		return bitHash, checkHex(r.Hash)
	case "prev":
		if _, err := str(&r.Prev, bitPrev); err != nil {
			return 0, err
		}
		return bitPrev, checkHex(r.Prev)
	case "sig":
		if _, err := str(&r.Sig, bitSig); err != nil {
			return 0, err
		}
		if _, err := base64.StdEncoding.DecodeString(r.Sig); err != nil {
			return 0, fmt.Errorf("not base64: %w", err)
		}
		return bitSig, nil
	case "keyId":
		return str(&r.KeyID, bitKeyID)
	case "time":
		var s string
		if _, err := str(&s, bitTime); err != nil {
			return 0, err
		}
		t, err := time.Parse(timeLayout, s)
		if err != nil {
			return 0, fmt.Errorf("not a UTC RFC 3339 time with nine fraction digits: %q", s)
		}
		r.Time = t
		return bitTime, nil
	case "seq", "v":
		start := p.pos
		for p.pos < len(p.in) && p.in[p.pos] >= '0' && p.in[p.pos] <= '9' {
			p.pos++
		}
		n, err := strconv.ParseUint(string(p.in[start:p.pos]), 10, 64)
		if err != nil || n == 0 || n > maxSafeInteger {
			return 0, fmt.Errorf("not a positive integer below 2^53")
		}
		if name == "v" {
			if n != formatVersion {
				return 0, fmt.Errorf("format version %d; this cutover reads version %d", n, formatVersion)
			}
			return bitV, nil
		}
		r.Seq = n
		return bitSeq, nil
	case "data":
		if p.pos >= len(p.in) || p.in[p.pos] != '{' {
			return 0, errors.New("not a JSON object")
		}
		// Stored data is canonical already; checking that is much cheaper
		// than canonicalizing it again, and verify does it for every record.
		c := &jcsChecker{in: p.in, pos: p.pos}
		if err := c.value(1); err != nil {
			if _, cerr := p.value(nil, 1); cerr != nil {
				return 0, cerr // not JSON, or no canonical form: say why
			}
			return 0, err
		}
		r.Data = append(json.RawMessage(nil), p.in[p.pos:c.pos]...) // a copy: the caller may reuse line
		p.pos = c.pos
		return bitData, nil
	}
	return 0, errors.New("unknown member")
}

// checkKind allows what a kind is documented to be: lower-case ASCII
// letters, digits and dashes, starting with a letter.
func checkKind(k string) error {
	if k == "" || len(k) > 64 {
		return fmt.Errorf("kind %q: want 1 to 64 characters", k)
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || i > 0 && (c >= '0' && c <= '9' || c == '-')) {
			return fmt.Errorf("kind %q: want lower-case letters, digits and dashes", k)
		}
	}
	return nil
}

func checkHex(s string) error {
	if len(s) != 64 {
		return errors.New("not a hex SHA-256")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return errors.New("not a lower-case hex SHA-256")
		}
	}
	return nil
}
