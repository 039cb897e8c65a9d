package kinesisstub

import (
	"crypto/md5"
	"fmt"
	"math/big"
	"sort"
	"strings"
	"time"
)

// kStream is a Kinesis data stream.
type kStream struct {
	name, arn string
	shards    []*shard
	nextShard int
	kms       bool // records are written with EncryptionType KMS
}

var maxHashKey = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(1))

// CreateStream creates a Kinesis stream with n open shards that split the
// hash key space evenly, and returns its ARN.
func (s *Server) CreateStream(name string, n int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.kinesis[name]; st != nil {
		return st.arn
	}
	st := &kStream{name: name, arn: fmt.Sprintf("arn:aws:kinesis:%s:%s:stream/%s", s.Region, s.Account, name)}
	size := new(big.Int).Div(new(big.Int).Add(maxHashKey, big.NewInt(1)), big.NewInt(int64(max(n, 1))))
	for i := range max(n, 1) {
		start := new(big.Int).Mul(size, big.NewInt(int64(i)))
		end := new(big.Int).Sub(new(big.Int).Add(start, size), big.NewInt(1))
		if i == max(n, 1)-1 {
			end = maxHashKey
		}
		s.addKinesisShard(st, "", "", start, end)
	}
	s.kinesis[name] = st
	return st.arn
}

// EncryptStream makes later records of a stream carry EncryptionType KMS,
// as server-side encryption does.
func (s *Server) EncryptStream(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.kinesis[name]; st != nil {
		st.kms = true
	}
}

func (s *Server) addKinesisShard(st *kStream, parent, adjacent string, start, end *big.Int) *shard {
	sh := &shard{id: fmt.Sprintf("shardId-%012d", st.nextShard), parent: parent, adjacent: adjacent,
		startSeq: s.nextSeq("49", 56), hashStart: start.String(), hashEnd: end.String()}
	st.nextShard++
	st.shards = append(st.shards, sh)
	return sh
}

// Put writes one record as PutRecord does and returns its shard and
// sequence number.
func (s *Server) Put(stream, partitionKey string, data []byte) (shardID, seq string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.kinesis[stream]
	if st == nil {
		return "", "", fmt.Errorf("no stream %q", stream)
	}
	sh, r, aerr := s.put(st, partitionKey, "", data)
	if aerr != nil {
		return "", "", aerr
	}
	return sh.id, r.seq, nil
}

// SplitShard splits an open shard at the middle of its hash key range and
// returns the two children's ids.
func (s *Server) SplitShard(stream, shardID string) (string, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.kinesis[stream]
	if st == nil {
		return "", "", fmt.Errorf("no stream %q", stream)
	}
	sh := findShard(st.shards, shardID)
	if sh == nil {
		return "", "", fmt.Errorf("no shard %s", shardID)
	}
	lo, _ := new(big.Int).SetString(sh.hashStart, 10)
	hi, _ := new(big.Int).SetString(sh.hashEnd, 10)
	mid := new(big.Int).Rsh(new(big.Int).Add(lo, hi), 1)
	a, b, aerr := s.split(st, shardID, new(big.Int).Add(mid, big.NewInt(1)).String())
	if aerr != nil {
		return "", "", aerr
	}
	return a.id, b.id, nil
}

// MergeShards merges two adjacent open shards and returns the child's id.
func (s *Server) MergeShards(stream, shardID, adjacentID string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.kinesis[stream]
	if st == nil {
		return "", fmt.Errorf("no stream %q", stream)
	}
	c, aerr := s.merge(st, shardID, adjacentID)
	if aerr != nil {
		return "", aerr
	}
	return c.id, nil
}

// ShardState is a shard as a test sees it.
type ShardState struct {
	ID, Parent, AdjacentParent string
	Closed                     bool
	// Records are the sequence numbers still held, in order.
	Records []string
}

// Shards lists a Kinesis stream's shards (by name) or a DynamoDB stream's
// (by ARN), retention applied.
func (s *Server) Shards(stream string) []ShardState {
	s.mu.Lock()
	defer s.mu.Unlock()
	var shards []*shard
	if st := s.kinesis[stream]; st != nil {
		st.shards = trim(st.shards, s.now())
		shards = st.shards
	} else if d := s.ddb[stream]; d != nil {
		d.shards = trim(d.shards, s.now())
		shards = d.shards
	}
	var out []ShardState
	for _, sh := range shards {
		ss := ShardState{ID: sh.id, Parent: sh.parent, AdjacentParent: sh.adjacent, Closed: sh.closed()}
		for _, r := range sh.records {
			ss.Records = append(ss.Records, r.seq)
		}
		out = append(out, ss)
	}
	return out
}

func findShard(shards []*shard, id string) *shard {
	for _, sh := range shards {
		if sh.id == id {
			return sh
		}
	}
	return nil
}

func (s *Server) closeShard(sh *shard) {
	sh.endSeq = s.nextSeq("49", 56)
	sh.closedAt = s.now()
}

func (s *Server) split(st *kStream, shardID, newStart string) (*shard, *shard, *apiError) {
	sh := findShard(st.shards, shardID)
	if sh == nil {
		return nil, nil, errorOf("ResourceNotFoundException", "Could not find shard %s in stream %s under account %s.", shardID, st.name, s.Account)
	}
	if sh.closed() {
		return nil, nil, errorOf("InvalidArgumentException", "Shard %s in stream %s under account %s has already been merged or split, and thus is not eligible for merging or splitting.", shardID, st.name, s.Account)
	}
	k, ok := new(big.Int).SetString(newStart, 10)
	lo, _ := new(big.Int).SetString(sh.hashStart, 10)
	hi, _ := new(big.Int).SetString(sh.hashEnd, 10)
	if !ok || k.Cmp(lo) <= 0 || k.Cmp(hi) > 0 {
		return nil, nil, errorOf("InvalidArgumentException", "NewStartingHashKey %s used in SplitShard() on shard %s in stream %s under account %s is not both greater than one plus the shard's StartingHashKey %s and less than the shard's EndingHashKey %s.", newStart, shardID, st.name, s.Account, sh.hashStart, sh.hashEnd)
	}
	s.closeShard(sh)
	a := s.addKinesisShard(st, sh.id, "", lo, new(big.Int).Sub(k, big.NewInt(1)))
	b := s.addKinesisShard(st, sh.id, "", k, hi)
	return a, b, nil
}

func (s *Server) merge(st *kStream, shardID, adjacentID string) (*shard, *apiError) {
	a, b := findShard(st.shards, shardID), findShard(st.shards, adjacentID)
	if a == nil || b == nil {
		return nil, errorOf("ResourceNotFoundException", "Could not find shard %s or %s in stream %s under account %s.", shardID, adjacentID, st.name, s.Account)
	}
	if a.closed() || b.closed() {
		return nil, errorOf("InvalidArgumentException", "Shards %s and %s in stream %s under account %s are not both open.", shardID, adjacentID, st.name, s.Account)
	}
	aLo, _ := new(big.Int).SetString(a.hashStart, 10)
	aHi, _ := new(big.Int).SetString(a.hashEnd, 10)
	bLo, _ := new(big.Int).SetString(b.hashStart, 10)
	bHi, _ := new(big.Int).SetString(b.hashEnd, 10)
	one := big.NewInt(1)
	lo, hi := aLo, bHi
	switch {
	case new(big.Int).Add(aHi, one).Cmp(bLo) == 0:
	case new(big.Int).Add(bHi, one).Cmp(aLo) == 0:
		lo, hi = bLo, aHi
	default:
		return nil, errorOf("InvalidArgumentException", "Shards %s and %s in stream %s under account %s are not an adjacent pair of shards eligible for merging", shardID, adjacentID, st.name, s.Account)
	}
	s.closeShard(a)
	s.closeShard(b)
	return s.addKinesisShard(st, a.id, b.id, lo, hi), nil
}

// hashKey is the partition key's MD5 as a 128-bit number, or the
// explicit hash key.
func hashKey(partitionKey, explicit string) (*big.Int, *apiError) {
	if explicit != "" {
		k, ok := new(big.Int).SetString(explicit, 10)
		if !ok || k.Sign() < 0 || k.Cmp(maxHashKey) > 0 {
			return nil, errorOf("InvalidArgumentException", "ExplicitHashKey %q is not a number within 0 and 2^128-1", explicit)
		}
		return k, nil
	}
	sum := md5.Sum([]byte(partitionKey))
	return new(big.Int).SetBytes(sum[:]), nil
}

func (s *Server) put(st *kStream, partitionKey, explicit string, data []byte) (*shard, *record, *apiError) {
	if n := len([]rune(partitionKey)); n < 1 || n > 256 {
		return nil, nil, errorOf("ValidationException", "1 validation error detected: Value at 'partitionKey' failed to satisfy constraint: Member must have length between 1 and 256")
	}
	if len(data)+len(partitionKey) > 1<<20 {
		return nil, nil, errorOf("ValidationException", "1 validation error detected: Value at 'data' failed to satisfy constraint: Member must have length less than or equal to 1048576")
	}
	k, aerr := hashKey(partitionKey, explicit)
	if aerr != nil {
		return nil, nil, aerr
	}
	for _, sh := range st.shards {
		if sh.closed() {
			continue
		}
		lo, _ := new(big.Int).SetString(sh.hashStart, 10)
		hi, _ := new(big.Int).SetString(sh.hashEnd, 10)
		if k.Cmp(lo) >= 0 && k.Cmp(hi) <= 0 {
			r := &record{seq: s.nextSeq("49", 56), arrival: s.now().Truncate(time.Millisecond), partitionKey: partitionKey,
				data: append([]byte(nil), data...), size: len(data) + len(partitionKey)}
			sh.records = append(sh.records, r)
			return sh, r, nil
		}
	}
	return nil, nil, errorOf("InternalFailure", "no open shard holds hash key %s", k)
}

func (s *Server) kStream(name, arn *string) (*kStream, *apiError) {
	var n string
	switch {
	case arn != nil && *arn != "":
		i := strings.Index(*arn, ":stream/")
		if !strings.HasPrefix(*arn, "arn:") || i < 0 {
			return nil, errorOf("InvalidArgumentException", "StreamARN %q is not a Kinesis stream ARN", *arn)
		}
		n = (*arn)[i+len(":stream/"):]
		if name != nil && *name != "" && *name != n {
			return nil, errorOf("InvalidArgumentException", "StreamName %q and StreamARN %q name different streams", *name, *arn)
		}
	case name != nil && *name != "":
		n = *name
	default:
		return nil, errorOf("InvalidArgumentException", "Either StreamName or StreamARN should be provided.")
	}
	st := s.kinesis[n]
	if st == nil {
		return nil, errorOf("ResourceNotFoundException", "Stream %s under account %s not found.", n, s.Account)
	}
	st.shards = trim(st.shards, s.now())
	return st, nil
}

type hashKeyRange struct {
	StartingHashKey string
	EndingHashKey   string
}

type seqRange struct {
	StartingSequenceNumber string
	EndingSequenceNumber   string `json:",omitempty"`
}

type kShardOut struct {
	ShardId               string
	ParentShardId         string `json:",omitempty"`
	AdjacentParentShardId string `json:",omitempty"`
	HashKeyRange          hashKeyRange
	SequenceNumberRange   seqRange
}

type kRecordOut struct {
	SequenceNumber              string
	ApproximateArrivalTimestamp epoch
	Data                        []byte
	PartitionKey                string
	EncryptionType              string `json:",omitempty"`
}

type childShardOut struct {
	ShardId      string
	ParentShards []string
	HashKeyRange hashKeyRange
}

func (s *Server) kinesisOp(op string, body []byte) (any, *apiError) {
	now := s.now()
	s.pruneIterators(now)
	switch op {
	case "ListShards":
		var in struct {
			StreamName, StreamARN, NextToken, ExclusiveStartShardId *string
			MaxResults                                              *int32
			ShardFilter                                             any
		}
		if e := decode(body, &in); e != nil {
			return nil, e
		}
		if in.ShardFilter != nil {
			return nil, errorOf("InvalidArgumentException", "the stub does not implement ShardFilter")
		}
		after := ""
		if in.ExclusiveStartShardId != nil {
			after = *in.ExclusiveStartShardId
		}
		var st *kStream
		if in.NextToken != nil {
			if in.StreamName != nil || in.StreamARN != nil {
				return nil, errorOf("InvalidArgumentException", "NextToken and StreamName or StreamARN cannot be provided together.")
			}
			name, last, ok := strings.Cut(*in.NextToken, "|")
			if !ok || s.kinesis[name] == nil {
				return nil, errorOf("InvalidArgumentException", "NextToken %q is not valid", *in.NextToken)
			}
			st = s.kinesis[name]
			st.shards = trim(st.shards, now)
			after = last
		} else {
			var e *apiError
			if st, e = s.kStream(in.StreamName, in.StreamARN); e != nil {
				return nil, e
			}
		}
		limit := 1000
		if in.MaxResults != nil {
			if *in.MaxResults < 1 || *in.MaxResults > 10000 {
				return nil, errorOf("InvalidArgumentException", "MaxResults %d is outside 1-10000", *in.MaxResults)
			}
			limit = min(int(*in.MaxResults), 1000)
		}
		sorted := append([]*shard(nil), st.shards...)
		sort.Slice(sorted, func(i, j int) bool { return sorted[i].id < sorted[j].id })
		out := struct {
			Shards    []kShardOut
			NextToken string `json:",omitempty"`
		}{Shards: []kShardOut{}}
		for _, sh := range sorted {
			if sh.id <= after {
				continue
			}
			if len(out.Shards) == limit {
				out.NextToken = st.name + "|" + out.Shards[len(out.Shards)-1].ShardId
				break
			}
			out.Shards = append(out.Shards, kShardOut{ShardId: sh.id, ParentShardId: sh.parent, AdjacentParentShardId: sh.adjacent,
				HashKeyRange:        hashKeyRange{sh.hashStart, sh.hashEnd},
				SequenceNumberRange: seqRange{sh.startSeq, sh.endSeq}})
		}
		return out, nil

	case "GetShardIterator":
		var in struct {
			StreamName, StreamARN, ShardId, StartingSequenceNumber *string
			ShardIteratorType                                      string
			Timestamp                                              *epoch
		}
		if e := decode(body, &in); e != nil {
			return nil, e
		}
		st, e := s.kStream(in.StreamName, in.StreamARN)
		if e != nil {
			return nil, e
		}
		if in.ShardId == nil {
			return nil, errorOf("InvalidArgumentException", "ShardId is required")
		}
		sh := findShard(st.shards, *in.ShardId)
		if sh == nil {
			return nil, errorOf("ResourceNotFoundException", "Shard %s in stream %s under account %s does not exist", *in.ShardId, st.name, s.Account)
		}
		seq := ""
		if in.StartingSequenceNumber != nil {
			seq = *in.StartingSequenceNumber
		}
		var at time.Time
		if in.ShardIteratorType == "AT_TIMESTAMP" {
			if in.Timestamp == nil {
				return nil, errorOf("InvalidArgumentException", "Timestamp is required for AT_TIMESTAMP")
			}
			at = time.Time(*in.Timestamp)
		}
		pos, _, msg := position(sh, in.ShardIteratorType, seq, at)
		if msg != "" {
			return nil, errorOf("InvalidArgumentException", "%s", msg)
		}
		// Kinesis reads on from the trim horizon: a position in trimmed
		// data is not an error.
		return map[string]string{"ShardIterator": s.newToken(&iterator{service: "kinesis", stream: st.name, shard: sh.id, pos: pos, issued: now})}, nil

	case "GetRecords":
		var in struct {
			ShardIterator *string
			Limit         *int32
			StreamARN     *string
		}
		if e := decode(body, &in); e != nil {
			return nil, e
		}
		if in.ShardIterator == nil {
			return nil, errorOf("InvalidArgumentException", "ShardIterator is required")
		}
		it := s.iterators[*in.ShardIterator]
		if it == nil || it.service != "kinesis" {
			return nil, errorOf("InvalidArgumentException", "Invalid ShardIterator.")
		}
		if now.Sub(it.issued) > KinesisIteratorTTL {
			return nil, errorOf("ExpiredIteratorException", "Iterator expired. The iterator was created at time %s while right now it is %s which is further in the future than the tolerated delay of 300000 milliseconds.",
				it.issued.UTC().Format(time.RFC1123), now.UTC().Format(time.RFC1123))
		}
		st := s.kinesis[it.stream]
		st.shards = trim(st.shards, now)
		sh := findShard(st.shards, it.shard)
		if sh == nil {
			return nil, errorOf("ResourceNotFoundException", "Shard %s in stream %s under account %s does not exist", it.shard, st.name, s.Account)
		}
		if s.GetRecordsPerSecond > 0 {
			real := time.Now()
			recent := sh.reads[:0]
			for _, t := range sh.reads {
				if real.Sub(t) < time.Second {
					recent = append(recent, t)
				}
			}
			sh.reads = recent
			if len(sh.reads) >= s.GetRecordsPerSecond {
				return nil, errorOf("ProvisionedThroughputExceededException", "Rate exceeded for shard %s in stream %s under account %s.", sh.id, st.name, s.Account)
			}
			sh.reads = append(sh.reads, real)
		}
		limit := KinesisMaxGetRecords
		if in.Limit != nil {
			if *in.Limit < 1 || *in.Limit > KinesisMaxGetRecords {
				return nil, errorOf("InvalidArgumentException", "Limit %d is outside 1-10000", *in.Limit)
			}
			limit = int(*in.Limit)
		}
		pos := max(it.pos, sh.trimmed)
		out := struct {
			Records            []kRecordOut
			NextShardIterator  string `json:",omitempty"`
			MillisBehindLatest int64
			ChildShards        []childShardOut `json:",omitempty"`
		}{Records: []kRecordOut{}}
		size := 0
		for pos < sh.end() && len(out.Records) < limit {
			r := sh.records[pos-sh.trimmed]
			if len(out.Records) > 0 && size+r.size > 10<<20 {
				break
			}
			size += r.size
			kr := kRecordOut{SequenceNumber: r.seq, ApproximateArrivalTimestamp: epoch(r.arrival), Data: r.data, PartitionKey: r.partitionKey}
			if st.kms {
				kr.EncryptionType = "KMS"
			}
			out.Records = append(out.Records, kr)
			pos++
		}
		if pos < sh.end() {
			out.MillisBehindLatest = now.Sub(sh.records[pos-sh.trimmed].arrival).Milliseconds()
		}
		if sh.closed() && pos == sh.end() {
			for _, c := range st.shards {
				if c.parent == sh.id || c.adjacent == sh.id {
					parents := []string{c.parent}
					if c.adjacent != "" {
						parents = append(parents, c.adjacent)
					}
					out.ChildShards = append(out.ChildShards, childShardOut{ShardId: c.id, ParentShards: parents, HashKeyRange: hashKeyRange{c.hashStart, c.hashEnd}})
				}
			}
		} else {
			out.NextShardIterator = s.newToken(&iterator{service: "kinesis", stream: st.name, shard: sh.id, pos: pos, issued: now})
		}
		return out, nil

	case "PutRecord":
		var in struct {
			StreamName, StreamARN, PartitionKey, ExplicitHashKey *string
			Data                                                 []byte
		}
		if e := decode(body, &in); e != nil {
			return nil, e
		}
		st, e := s.kStream(in.StreamName, in.StreamARN)
		if e != nil {
			return nil, e
		}
		sh, r, e := s.put(st, deref(in.PartitionKey), deref(in.ExplicitHashKey), in.Data)
		if e != nil {
			return nil, e
		}
		return map[string]string{"ShardId": sh.id, "SequenceNumber": r.seq, "EncryptionType": encryption(st)}, nil

	case "PutRecords":
		var in struct {
			StreamName, StreamARN *string
			Records               []struct {
				PartitionKey, ExplicitHashKey *string
				Data                          []byte
			}
		}
		if e := decode(body, &in); e != nil {
			return nil, e
		}
		st, e := s.kStream(in.StreamName, in.StreamARN)
		if e != nil {
			return nil, e
		}
		if len(in.Records) < 1 || len(in.Records) > 500 {
			return nil, errorOf("InvalidArgumentException", "Records must hold 1 to 500 entries")
		}
		type result struct {
			ShardId, SequenceNumber string `json:",omitempty"`
			ErrorCode, ErrorMessage string `json:",omitempty"`
		}
		out := struct {
			FailedRecordCount int
			Records           []result
			EncryptionType    string
		}{EncryptionType: encryption(st)}
		for _, r := range in.Records {
			sh, rec, e := s.put(st, deref(r.PartitionKey), deref(r.ExplicitHashKey), r.Data)
			if e != nil {
				out.FailedRecordCount++
				out.Records = append(out.Records, result{ErrorCode: e.typ, ErrorMessage: e.message})
				continue
			}
			out.Records = append(out.Records, result{ShardId: sh.id, SequenceNumber: rec.seq})
		}
		return out, nil

	case "SplitShard":
		var in struct {
			StreamName, StreamARN, ShardToSplit, NewStartingHashKey *string
		}
		if e := decode(body, &in); e != nil {
			return nil, e
		}
		st, e := s.kStream(in.StreamName, in.StreamARN)
		if e != nil {
			return nil, e
		}
		if _, _, e := s.split(st, deref(in.ShardToSplit), deref(in.NewStartingHashKey)); e != nil {
			return nil, e
		}
		return struct{}{}, nil

	case "MergeShards":
		var in struct {
			StreamName, StreamARN, ShardToMerge, AdjacentShardToMerge *string
		}
		if e := decode(body, &in); e != nil {
			return nil, e
		}
		st, e := s.kStream(in.StreamName, in.StreamARN)
		if e != nil {
			return nil, e
		}
		if _, e := s.merge(st, deref(in.ShardToMerge), deref(in.AdjacentShardToMerge)); e != nil {
			return nil, e
		}
		return struct{}{}, nil
	}
	return nil, errorOf("UnknownOperationException", "the stub does not implement Kinesis %s", op)
}

func encryption(st *kStream) string {
	if st.kms {
		return "KMS"
	}
	return "NONE"
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
