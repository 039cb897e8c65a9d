package kinesisstub

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

// dStream is a DynamoDB table's stream.
type dStream struct {
	arn, table, label, viewType string
	keySchema                   []keyElement
	created                     time.Time
	shards                      []*shard
	nextShard                   int
}

type keyElement struct {
	AttributeName string
	KeyType       string
}

// Change is one item change, as DynamoDB records it in the table's stream.
type Change struct {
	// EventName is INSERT, MODIFY or REMOVE.
	EventName string
	// Keys, OldImage and NewImage are attribute maps in DynamoDB JSON
	// ({"id": {"S": "o-1"}}). The stream keeps the images its view type
	// asks for.
	Keys, OldImage, NewImage map[string]any
	// TTL marks a REMOVE made by Time to Live: the record's userIdentity
	// names the DynamoDB service.
	TTL bool
}

// CreateTableStream enables a stream on a table with a view type
// (KEYS_ONLY, NEW_IMAGE, OLD_IMAGE, NEW_AND_OLD_IMAGES) and the key
// attribute names (hash, then range), with one open shard, and returns the
// stream's ARN.
func (s *Server) CreateTableStream(table, viewType string, keys ...string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	label := now.UTC().Format("2006-01-02T15:04:05.000")
	d := &dStream{table: table, label: label, viewType: viewType, created: now,
		arn: fmt.Sprintf("arn:aws:dynamodb:%s:%s:table/%s/stream/%s", s.Region, s.Account, table, label)}
	for i, k := range keys {
		typ := "HASH"
		if i > 0 {
			typ = "RANGE"
		}
		d.keySchema = append(d.keySchema, keyElement{k, typ})
	}
	s.addDDBShard(d, "")
	s.ddb[d.arn] = d
	return d.arn
}

func (s *Server) addDDBShard(d *dStream, parent string) *shard {
	var b [4]byte
	rand.Read(b[:])
	sh := &shard{id: fmt.Sprintf("shardId-%020d-%s", s.now().UnixMilli()*1000+int64(d.nextShard%1000), hex.EncodeToString(b[:])),
		parent: parent, startSeq: s.nextSeq("1", 26)}
	d.nextShard++
	d.shards = append(d.shards, sh)
	return sh
}

// WriteItem records one item change in the stream's open shard and
// returns its sequence number.
func (s *Server) WriteItem(streamARN string, c Change) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.ddb[streamARN]
	if d == nil {
		return "", fmt.Errorf("no stream %q", streamARN)
	}
	switch c.EventName {
	case "INSERT", "MODIFY", "REMOVE":
	default:
		return "", fmt.Errorf("event name %q is not INSERT, MODIFY or REMOVE", c.EventName)
	}
	if len(c.Keys) == 0 {
		return "", fmt.Errorf("a change needs its item's keys")
	}
	conv := func(m map[string]any) (map[string]json.RawMessage, error) {
		if m == nil {
			return nil, nil
		}
		out := map[string]json.RawMessage{}
		for k, v := range m {
			b, err := json.Marshal(v)
			if err != nil {
				return nil, err
			}
			out[k] = b
		}
		return out, nil
	}
	keys, err := conv(c.Keys)
	if err != nil {
		return "", err
	}
	r := &record{eventName: c.EventName, keys: keys, ttl: c.TTL, arrival: s.now().Truncate(time.Second)}
	if d.viewType == "OLD_IMAGE" || d.viewType == "NEW_AND_OLD_IMAGES" {
		if r.oldImage, err = conv(c.OldImage); err != nil {
			return "", err
		}
	}
	if d.viewType == "NEW_IMAGE" || d.viewType == "NEW_AND_OLD_IMAGES" {
		if r.newImage, err = conv(c.NewImage); err != nil {
			return "", err
		}
	}
	for _, m := range []map[string]json.RawMessage{r.keys, r.oldImage, r.newImage} {
		for k, v := range m {
			r.size += len(k) + len(v)
		}
	}
	var b [16]byte
	rand.Read(b[:])
	r.eventID = hex.EncodeToString(b[:])
	for _, sh := range d.shards {
		if !sh.closed() {
			r.seq = s.nextSeq("1", 26)
			sh.records = append(sh.records, r)
			return r.seq, nil
		}
	}
	return "", fmt.Errorf("stream %s has no open shard", streamARN)
}

// RotateShard closes the stream's open shard and opens a child of it, as
// DynamoDB does every few hours; it returns the child's id.
func (s *Server) RotateShard(streamARN string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.ddb[streamARN]
	if d == nil {
		return "", fmt.Errorf("no stream %q", streamARN)
	}
	for _, sh := range d.shards {
		if !sh.closed() {
			sh.endSeq = s.nextSeq("1", 26)
			sh.closedAt = s.now()
			return s.addDDBShard(d, sh.id).id, nil
		}
	}
	return "", fmt.Errorf("stream %s has no open shard", streamARN)
}

func (s *Server) dStream(arn *string) (*dStream, *apiError) {
	if arn == nil || *arn == "" {
		return nil, errorOf("ValidationException", "1 validation error detected: Value null at 'streamArn' failed to satisfy constraint: Member must not be null")
	}
	d := s.ddb[*arn]
	if d == nil {
		if !strings.HasPrefix(*arn, "arn:") || !strings.Contains(*arn, ":table/") || !strings.Contains(*arn, "/stream/") {
			return nil, errorOf("ValidationException", "Invalid StreamArn")
		}
		return nil, errorOf("ResourceNotFoundException", "Requested resource not found: Stream: %s not found", *arn)
	}
	d.shards = trim(d.shards, s.now())
	return d, nil
}

type dShardOut struct {
	ShardId             string
	ParentShardId       string `json:",omitempty"`
	SequenceNumberRange seqRange
}

type dRecordOut struct {
	AwsRegion    string         `json:"awsRegion"`
	Dynamodb     dStreamRecord  `json:"dynamodb"`
	EventID      string         `json:"eventID"`
	EventName    string         `json:"eventName"`
	EventSource  string         `json:"eventSource"`
	EventVersion string         `json:"eventVersion"`
	UserIdentity *identityShape `json:"userIdentity,omitempty"`
}

type dStreamRecord struct {
	ApproximateCreationDateTime epoch
	Keys                        map[string]json.RawMessage
	NewImage                    map[string]json.RawMessage `json:",omitempty"`
	OldImage                    map[string]json.RawMessage `json:",omitempty"`
	SequenceNumber              string
	SizeBytes                   int
	StreamViewType              string
}

type identityShape struct {
	PrincipalId string
	Type        string
}

func (s *Server) dynamodbOp(op string, body []byte) (any, *apiError) {
	now := s.now()
	s.pruneIterators(now)
	switch op {
	case "DescribeStream":
		var in struct {
			StreamArn, ExclusiveStartShardId *string
			Limit                            *int32
			ShardFilter                      *struct {
				Type    string
				ShardId string
			}
		}
		if e := decode(body, &in); e != nil {
			return nil, e
		}
		d, e := s.dStream(in.StreamArn)
		if e != nil {
			return nil, e
		}
		limit := 100
		if in.Limit != nil {
			if *in.Limit < 1 || *in.Limit > 100 {
				return nil, errorOf("ValidationException", "Limit %d is outside 1-100", *in.Limit)
			}
			limit = int(*in.Limit)
		}
		after := deref(in.ExclusiveStartShardId)
		sorted := append([]*shard(nil), d.shards...)
		sort.Slice(sorted, func(i, j int) bool { return sorted[i].id < sorted[j].id })
		desc := struct {
			StreamArn               string
			StreamLabel             string
			StreamStatus            string
			StreamViewType          string
			CreationRequestDateTime epoch
			TableName               string
			KeySchema               []keyElement
			Shards                  []dShardOut
			LastEvaluatedShardId    string `json:",omitempty"`
		}{StreamArn: d.arn, StreamLabel: d.label, StreamStatus: "ENABLED", StreamViewType: d.viewType,
			CreationRequestDateTime: epoch(d.created), TableName: d.table, KeySchema: d.keySchema, Shards: []dShardOut{}}
		for _, sh := range sorted {
			if sh.id <= after {
				continue
			}
			if in.ShardFilter != nil {
				if in.ShardFilter.Type != "CHILD_SHARDS" {
					return nil, errorOf("ValidationException", "ShardFilter type %q is not CHILD_SHARDS", in.ShardFilter.Type)
				}
				if sh.parent != in.ShardFilter.ShardId {
					continue
				}
			}
			if len(desc.Shards) == limit {
				desc.LastEvaluatedShardId = desc.Shards[len(desc.Shards)-1].ShardId
				break
			}
			desc.Shards = append(desc.Shards, dShardOut{ShardId: sh.id, ParentShardId: sh.parent, SequenceNumberRange: seqRange{sh.startSeq, sh.endSeq}})
		}
		return map[string]any{"StreamDescription": desc}, nil

	case "GetShardIterator":
		var in struct {
			StreamArn, ShardId, SequenceNumber *string
			ShardIteratorType                  string
		}
		if e := decode(body, &in); e != nil {
			return nil, e
		}
		d, e := s.dStream(in.StreamArn)
		if e != nil {
			return nil, e
		}
		if in.ShardIteratorType == "AT_TIMESTAMP" {
			return nil, errorOf("ValidationException", "1 validation error detected: Value 'AT_TIMESTAMP' at 'shardIteratorType' failed to satisfy constraint: Member must satisfy enum value set: [AFTER_SEQUENCE_NUMBER, LATEST, AT_SEQUENCE_NUMBER, TRIM_HORIZON]")
		}
		sh := findShard(d.shards, deref(in.ShardId))
		if sh == nil {
			return nil, errorOf("ResourceNotFoundException", "Requested resource not found: Shard does not exist")
		}
		pos, trimmed, msg := position(sh, in.ShardIteratorType, deref(in.SequenceNumber), time.Time{})
		if msg != "" {
			return nil, errorOf("ValidationException", "%s", msg)
		}
		if trimmed {
			return nil, errorOf("TrimmedDataAccessException", "The operation attempted to read past the oldest stream record in a shard.")
		}
		return map[string]string{"ShardIterator": s.newToken(&iterator{service: "dynamodb", stream: d.arn, shard: sh.id, pos: pos, issued: now})}, nil

	case "GetRecords":
		var in struct {
			ShardIterator *string
			Limit         *int32
		}
		if e := decode(body, &in); e != nil {
			return nil, e
		}
		it := s.iterators[deref(in.ShardIterator)]
		if it == nil || it.service != "dynamodb" {
			return nil, errorOf("ValidationException", "Invalid ShardIterator")
		}
		if now.Sub(it.issued) > DynamoDBIteratorTTL {
			return nil, errorOf("ExpiredIteratorException", "Iterator expired")
		}
		d := s.ddb[it.stream]
		d.shards = trim(d.shards, now)
		sh := findShard(d.shards, it.shard)
		if sh == nil {
			return nil, errorOf("ResourceNotFoundException", "Requested resource not found: Shard does not exist")
		}
		if it.pos < sh.trimmed {
			return nil, errorOf("TrimmedDataAccessException", "The operation attempted to read past the oldest stream record in a shard.")
		}
		limit := DynamoDBMaxGetRecords
		if in.Limit != nil {
			if *in.Limit < 1 || *in.Limit > DynamoDBMaxGetRecords {
				return nil, errorOf("ValidationException", "Limit %d is outside 1-1000", *in.Limit)
			}
			limit = int(*in.Limit)
		}
		out := struct {
			Records           []dRecordOut
			NextShardIterator string `json:",omitempty"`
		}{Records: []dRecordOut{}}
		pos, size := it.pos, 0
		for pos < sh.end() && len(out.Records) < limit {
			r := sh.records[pos-sh.trimmed]
			if len(out.Records) > 0 && size+r.size > 1<<20 {
				break
			}
			size += r.size
			dr := dRecordOut{AwsRegion: s.Region, EventID: r.eventID, EventName: r.eventName, EventSource: "aws:dynamodb", EventVersion: "1.1",
				Dynamodb: dStreamRecord{ApproximateCreationDateTime: epoch(r.arrival), Keys: r.keys, NewImage: r.newImage, OldImage: r.oldImage,
					SequenceNumber: r.seq, SizeBytes: r.size, StreamViewType: d.viewType}}
			if r.ttl {
				dr.UserIdentity = &identityShape{PrincipalId: "dynamodb.amazonaws.com", Type: "Service"}
			}
			out.Records = append(out.Records, dr)
			pos++
		}
		if !sh.closed() || pos < sh.end() {
			out.NextShardIterator = s.newToken(&iterator{service: "dynamodb", stream: d.arn, shard: sh.id, pos: pos, issued: now})
		}
		return out, nil
	}
	return nil, errorOf("UnknownOperationException", "the stub does not implement DynamoDB Streams %s", op)
}
