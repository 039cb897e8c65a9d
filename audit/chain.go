package audit

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"
)

// Head is the end of a chain: what the next record links to.
type Head struct {
	// Seq is the last record's Seq; zero for an empty log.
	Seq uint64 `json:"seq"`
	// Hash is the last record's Hash; empty for an empty log.
	Hash string `json:"hash"`
	// Time is the last record's Time; zero for an empty log.
	Time time.Time `json:"-"`
	// Kind is the last record's Kind; empty for an empty log.
	Kind string `json:"-"`
}

// HeadOf returns the head a record makes when it is the last.
func HeadOf(r *Record) Head {
	return Head{Seq: r.Seq, Hash: r.Hash, Time: r.Time, Kind: r.Kind}
}

// String is how reports and `cutover audit verify --expect` spell a head:
// SEQ:HASH.
func (h Head) String() string { return fmt.Sprintf("%d:%s", h.Seq, h.Hash) }

// CheckpointData is the Data of a checkpoint record. The record itself
// holds what the signature vouches for: its Prev is the hash of the last
// record before it, and its Seq minus one is how many records precede it.
type CheckpointData struct {
	// Records is how many records the checkpoint covers: its Seq - 1.
	Records uint64 `json:"records"`
	// Reason is why it was written: "every N records", "close" (a run
	// ended), "requested" (Log.Checkpoint).
	Reason string `json:"reason"`
}

// RepairData is the Data of a repair record.
type RepairData = Repair

// Repair is damage a store found and mended when opened for writing.
type Repair struct {
	// What happened, for people: "torn last line cut off".
	What string `json:"what"`
	// Where is the store's position of the damage ("line 1203").
	Where string `json:"where"`
	// Bytes is how many bytes were removed.
	Bytes int64 `json:"bytes"`
	// SHA256 is the hex SHA-256 of the bytes removed.
	SHA256 string `json:"sha256"`
	// Removed is the removed bytes, base64, when they are at most 64 KiB;
	// empty otherwise. Kept so nothing a crash left is lost unseen.
	Removed string `json:"removed,omitempty"`
}

// signer holds what sealing needs besides the head. It is the only place
// records get their Seq, Time, Prev, Hash and signatures.
type signer struct {
	key   ed25519.PrivateKey // nil: unsigned log, no checkpoints
	keyID string
	every uint64 // 0: no periodic checkpoints
	now   func() time.Time
}

// Batch is records on their way into a store. The store links it onto
// its head with Link, under its own lock so no other writer links at the
// same time, then stores Records() durably.
type Batch struct {
	// In are the records as callers gave them; a record of KindCheckpoint
	// asks for a checkpoint at that place (its Data a CheckpointData whose
	// Reason is used).
	In []Record

	signer *signer
	out    []Record
	index  []int // index[i]: the position in out of In[i]; -1 when it made no record
}

// Link seals the batch after head: each record gets the next Seq, the
// time, the previous record's hash and its own; checkpoints are signed,
// and one is added after every record whose Seq is a multiple of the
// checkpoint interval. Calling Link again (a store retrying after a
// conflict) starts over from the head given.
func (b *Batch) Link(head Head) ([]Record, error) {
	b.out = b.out[:0]
	if cap(b.index) < len(b.In) {
		b.index = make([]int, len(b.In))
	}
	b.index = b.index[:len(b.In)]
	now := b.signer.now().UTC()
	for i := range b.In {
		in := b.In[i]
		if in.Kind == KindCheckpoint {
			// A checkpoint needs a key, and right after another one, or on
			// an empty log, it would vouch for nothing new.
			if b.signer.key == nil || head.Seq == 0 || head.Kind == KindCheckpoint {
				b.index[i] = -1
				continue
			}
			var cd CheckpointData
			_ = json.Unmarshal(in.Data, &cd)
			cp, err := b.signer.checkpoint(head, now, cd.Reason)
			if err != nil {
				return nil, err
			}
			b.out = append(b.out, cp)
			b.index[i] = len(b.out) - 1
			head = HeadOf(&cp)
			continue
		}
		r := b.signer.seal(head, now, in)
		b.out = append(b.out, r)
		b.index[i] = len(b.out) - 1
		head = HeadOf(&r)
		if b.signer.key != nil && b.signer.every > 0 && r.Seq%b.signer.every == 0 {
			cp, err := b.signer.checkpoint(head, now, fmt.Sprintf("every %d records", b.signer.every))
			if err != nil {
				return nil, err
			}
			b.out = append(b.out, cp)
			head = HeadOf(&cp)
		}
	}
	return b.out, nil
}

// Records returns what the last Link produced.
func (b *Batch) Records() []Record { return b.out }

// seal makes r the record after head.
func (s *signer) seal(head Head, now time.Time, r Record) Record {
	r.Seq = head.Seq + 1
	r.Time = now
	if r.Time.Before(head.Time) {
		r.Time = head.Time
	}
	r.Prev = head.Hash
	r.Sig, r.KeyID = "", ""
	r.Hash = hashOf(Canonical(&r))
	return r
}

func (s *signer) checkpoint(head Head, now time.Time, reason string) (Record, error) {
	if reason == "" {
		reason = "requested"
	}
	data, err := json.Marshal(CheckpointData{Records: head.Seq, Reason: reason})
	if err != nil {
		return Record{}, err
	}
	if data, err = Canonicalize(data); err != nil {
		return Record{}, err
	}
	r := Record{Kind: KindCheckpoint, Data: data, KeyID: s.keyID}
	r.Seq = head.Seq + 1
	r.Time = now
	if r.Time.Before(head.Time) {
		r.Time = head.Time
	}
	r.Prev = head.Hash
	c := Canonical(&r)
	r.Hash = hashOf(c)
	r.Sig = base64.StdEncoding.EncodeToString(ed25519.Sign(s.key, c))
	return r, nil
}
