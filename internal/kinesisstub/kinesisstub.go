// Package kinesisstub is an Amazon Kinesis Data Streams and Amazon DynamoDB
// Streams endpoint in process, for protocol tests of code that uses the
// real AWS SDK for Go v2 kinesis and dynamodbstreams clients. AWS cannot be
// reached from the machines that run cutover's tests, so the stream event
// sources of `cutover lambda serve` are tested against this stub; tests that
// use it are protocol tests, never end-to-end tests.
//
// One server answers both services at one URL, as the SDKs speak them: AWS
// JSON 1.1 with X-Amz-Target Kinesis_20131202.<Operation> for Kinesis, AWS
// JSON 1.0 with DynamoDBStreams_20120810.<Operation> for DynamoDB Streams.
// It keeps real stream state with the semantics a consumer depends on:
//
//   - shards hold records in sequence-number order; sequence numbers are
//     decimal strings that grow with time across a stream, as AWS's do;
//   - shard iterators (TRIM_HORIZON, LATEST, AT_SEQUENCE_NUMBER,
//     AFTER_SEQUENCE_NUMBER, and AT_TIMESTAMP for Kinesis) expire after five
//     minutes (Kinesis) or fifteen (DynamoDB Streams): ExpiredIteratorException;
//   - a closed shard, once read to its end, returns no NextShardIterator
//     (and, for Kinesis, its ChildShards); splits and merges (Kinesis) and
//     shard rotation (DynamoDB) make children that name their parents;
//   - records older than the retention period (24 hours) are trimmed and
//     closed shards past it disappear; DynamoDB Streams refuses an iterator
//     into trimmed data (TrimmedDataAccessException), Kinesis reads on from
//     the trim horizon;
//   - Kinesis GetRecords is limited to five calls per second per shard
//     (ProvisionedThroughputExceededException), as AWS limits it.
//
// Kinesis operations: ListShards, GetShardIterator, GetRecords, PutRecord,
// PutRecords, SplitShard, MergeShards. DynamoDB Streams operations:
// DescribeStream, GetShardIterator, GetRecords; table changes are written
// with WriteItem, as DynamoDB itself would record them. Not implemented:
// enhanced fan-out (SubscribeToShard), ListShards' ShardFilter, stream
// creation and encryption through the API (EncryptStream marks a stream's
// later records as KMS-encrypted), tags, resharding limits. Requests must
// carry a SigV4 Authorization header; the signature is not checked.
package kinesisstub

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/cutoverhq/cutover/internal/awsstub"
)

// Limits and periods of the two services.
const (
	// Retention is how long records stay readable (both services' default).
	Retention = 24 * time.Hour
	// KinesisIteratorTTL is how long a Kinesis shard iterator is valid.
	KinesisIteratorTTL = 5 * time.Minute
	// DynamoDBIteratorTTL is how long a DynamoDB Streams iterator is valid.
	DynamoDBIteratorTTL = 15 * time.Minute
	// KinesisMaxGetRecords is the most records one Kinesis GetRecords returns.
	KinesisMaxGetRecords = 10000
	// DynamoDBMaxGetRecords is the most records one DynamoDB Streams
	// GetRecords returns.
	DynamoDBMaxGetRecords = 1000
)

// Server is a running stub endpoint. Its zero value is not usable: call New.
type Server struct {
	// URL is the endpoint to give both SDK clients as BaseEndpoint.
	URL string
	// Region and Account name the streams' ARNs.
	Region, Account string
	// GetRecordsPerSecond is the most Kinesis GetRecords calls one shard
	// answers in a second (AWS: 5). Zero: no limit. New sets 5.
	GetRecordsPerSecond int

	srv *httptest.Server

	mu        sync.Mutex
	kinesis   map[string]*kStream // by name
	ddb       map[string]*dStream // by stream ARN
	iterators map[string]*iterator
	// offset is added to the wall clock: Advance moves the stub's time
	// without sleeping.
	offset time.Duration
	calls  map[string]int
	faults map[string][]string // op → error types to answer with, in order
	clock  int64               // feeds sequence numbers
}

// shard is one shard of either service.
type shard struct {
	id               string
	parent, adjacent string
	startSeq, endSeq string // endSeq is empty while the shard is open
	closedAt         time.Time
	hashStart        string // Kinesis: decimal hash key range
	hashEnd          string
	records          []*record
	// trimmed counts records removed from the front by retention; a
	// record's position is trimmed plus its index in records.
	trimmed int
	// trimmedSeq is the sequence number of the last record trimmed.
	trimmedSeq string
	// reads are the times of recent GetRecords calls, for Kinesis's
	// per-shard limit.
	reads []time.Time
}

func (sh *shard) closed() bool { return sh.endSeq != "" }

// end is the position after the last record.
func (sh *shard) end() int { return sh.trimmed + len(sh.records) }

type record struct {
	seq     string
	arrival time.Time
	size    int
	// Kinesis
	partitionKey string
	data         []byte
	// DynamoDB
	eventID, eventName       string
	keys, oldImage, newImage map[string]json.RawMessage
	ttl                      bool
}

// iterator is a shard iterator the stub issued.
type iterator struct {
	service string // "kinesis" or "dynamodb"
	stream  string // Kinesis name or DynamoDB stream ARN
	shard   string
	pos     int
	issued  time.Time
}

// New starts a stub on a loopback port. Close it when done.
func New() *Server {
	s := &Server{
		Region:              "us-east-1",
		Account:             "123456789012",
		GetRecordsPerSecond: 5,
		kinesis:             map[string]*kStream{},
		ddb:                 map[string]*dStream{},
		iterators:           map[string]*iterator{},
		calls:               map[string]int{},
		faults:              map[string][]string{},
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	s.URL = s.srv.URL
	return s
}

// Close stops the server.
func (s *Server) Close() {
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// Advance moves the stub's clock forward: iterators expire and retention
// trims as if d had passed.
func (s *Server) Advance(d time.Duration) {
	s.mu.Lock()
	s.offset += d
	s.mu.Unlock()
}

// Now is the stub's clock.
func (s *Server) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now()
}

// Calls says how many requests an operation got, as
// "Kinesis.GetRecords" or "DynamoDBStreams.GetRecords".
func (s *Server) Calls(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

// Fail makes the next n calls of op ("Kinesis.GetRecords",
// "DynamoDBStreams.GetShardIterator"…) fail with the error type errType
// ("ProvisionedThroughputExceededException", "InternalFailure"…): a 500
// for InternalFailure and InternalServerError, a 400 otherwise.
func (s *Server) Fail(op string, n int, errType string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults[op] = append(s.faults[op], errType)
	}
}

func (s *Server) now() time.Time { return time.Now().Add(s.offset) }

// nextSeq returns a sequence number, growing across the whole server, as
// a decimal string of digits digits (AWS's are 56 for Kinesis, 21 to 40
// for DynamoDB Streams) that starts with prefix.
func (s *Server) nextSeq(prefix string, digits int) string {
	s.clock++
	return prefix + fmt.Sprintf("%0*d", digits-len(prefix), s.clock)
}

// seqLess compares two decimal sequence numbers.
func seqLess(a, b string) bool {
	a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

func validSeq(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func (s *Server) newToken(it *iterator) string {
	var b [24]byte
	rand.Read(b[:])
	tok := it.service + "/" + hex.EncodeToString(b[:])
	s.iterators[tok] = it
	return tok
}

// pruneIterators forgets iterators long expired, so a long test does not
// keep them all.
func (s *Server) pruneIterators(now time.Time) {
	if len(s.iterators) < 10000 {
		return
	}
	for k, it := range s.iterators {
		if now.Sub(it.issued) > DynamoDBIteratorTTL+time.Minute {
			delete(s.iterators, k)
		}
	}
}

// trim applies retention to a shard list and returns the shards still
// there.
func trim(shards []*shard, now time.Time) []*shard {
	horizon := now.Add(-Retention)
	out := shards[:0]
	for _, sh := range shards {
		n := 0
		for n < len(sh.records) && sh.records[n].arrival.Before(horizon) {
			n++
		}
		if n > 0 {
			sh.trimmedSeq = sh.records[n-1].seq
			sh.records = append([]*record(nil), sh.records[n:]...)
			sh.trimmed += n
		}
		if sh.closed() && sh.closedAt.Before(horizon) && len(sh.records) == 0 {
			continue
		}
		out = append(out, sh)
	}
	return out
}

// position finds where an iterator of the given type starts in a shard:
// for AT/AFTER_SEQUENCE_NUMBER, before is true when the sequence number
// is in the shard's range but its record was trimmed.
func position(sh *shard, typ, seq string, at time.Time) (pos int, trimmed bool, err string) {
	switch typ {
	case "TRIM_HORIZON":
		return sh.trimmed, false, ""
	case "LATEST":
		return sh.end(), false, ""
	case "AT_TIMESTAMP":
		for i, r := range sh.records {
			if !r.arrival.Before(at) {
				return sh.trimmed + i, false, ""
			}
		}
		return sh.end(), false, ""
	case "AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER":
		if !validSeq(seq) {
			return 0, false, fmt.Sprintf("StartingSequenceNumber %q is not a sequence number", seq)
		}
		if seqLess(seq, sh.startSeq) || (sh.closed() && seqLess(sh.endSeq, seq)) {
			return 0, false, fmt.Sprintf("StartingSequenceNumber %s used in GetShardIterator on shard %s is not in the shard's range", seq, sh.id)
		}
		// A position before the last trimmed record would skip records
		// retention removed.
		if sh.trimmed > 0 && (seqLess(seq, sh.trimmedSeq) || seq == sh.trimmedSeq && typ == "AT_SEQUENCE_NUMBER") {
			return sh.trimmed, true, ""
		}
		for i, r := range sh.records {
			if (r.seq == seq && typ == "AT_SEQUENCE_NUMBER") || seqLess(seq, r.seq) {
				return sh.trimmed + i, false, ""
			}
		}
		return sh.end(), false, ""
	}
	return 0, false, fmt.Sprintf("ShardIteratorType %q is not one of TRIM_HORIZON, LATEST, AT_SEQUENCE_NUMBER, AFTER_SEQUENCE_NUMBER, AT_TIMESTAMP", typ)
}

// apiError is an error answer.
type apiError struct {
	status  int
	typ     string
	message string
}

func (e *apiError) Error() string { return e.typ + ": " + e.message }

func errorOf(typ, format string, args ...any) *apiError {
	status := 400
	if typ == "InternalFailure" || typ == "InternalServerError" {
		status = 500
	}
	return &apiError{status: status, typ: typ, message: fmt.Sprintf(format, args...)}
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	target := r.Header.Get("X-Amz-Target")
	service, op, _ := strings.Cut(target, ".")
	var version, namespace, name string
	switch service {
	case "Kinesis_20131202":
		version, namespace, name = "1.1", "", "Kinesis"
	case "DynamoDBStreams_20120810":
		version, namespace, name = "1.0", "com.amazonaws.dynamodb.v20120810#", "DynamoDBStreams"
	default:
		writeError(w, "1.1", "", errorOf("UnknownOperationException", "unknown target %q", target))
		return
	}
	if r.Method != http.MethodPost {
		writeError(w, version, namespace, errorOf("UnknownOperationException", "%s is not POST", r.Method))
		return
	}
	signing := "kinesis"
	if name == "DynamoDBStreams" {
		signing = "dynamodb"
	}
	if err := awsstub.SignedFor(r, signing); err != nil {
		writeError(w, version, namespace, errorOf("MissingAuthenticationTokenException", "Request is missing Authentication Token: %v", err))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	if err != nil {
		return
	}
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	key := name + "." + op
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[key]++
	if f := s.faults[key]; len(f) > 0 {
		s.faults[key] = f[1:]
		writeError(w, version, namespace, errorOf(f[0], "injected failure"))
		return
	}
	var out any
	var aerr *apiError
	if name == "Kinesis" {
		out, aerr = s.kinesisOp(op, body)
	} else {
		out, aerr = s.dynamodbOp(op, body)
	}
	if aerr != nil {
		writeError(w, version, namespace, aerr)
		return
	}
	b, err := json.Marshal(out)
	if err != nil {
		writeError(w, version, namespace, errorOf("InternalFailure", "%v", err))
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-"+version)
	w.Header().Set("x-amzn-RequestId", requestID())
	w.Write(b)
}

func writeError(w http.ResponseWriter, version, namespace string, e *apiError) {
	w.Header().Set("Content-Type", "application/x-amz-json-"+version)
	w.Header().Set("x-amzn-RequestId", requestID())
	w.WriteHeader(e.status)
	b, _ := json.Marshal(map[string]string{"__type": namespace + e.typ, "message": e.message})
	w.Write(b)
}

func requestID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// decode reads a request body strictly enough to catch a client that
// sends the wrong shape.
func decode(body []byte, v any) *apiError {
	if err := json.Unmarshal(body, v); err != nil {
		return errorOf("SerializationException", "%v", err)
	}
	return nil
}

// epoch is a time as AWS JSON protocols carry it: seconds since the epoch,
// with milliseconds.
type epoch time.Time

func (e epoch) MarshalJSON() ([]byte, error) {
	ms := time.Time(e).UnixMilli()
	return []byte(fmt.Sprintf("%d.%03d", ms/1000, ms%1000)), nil
}

func (e *epoch) UnmarshalJSON(b []byte) error {
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	*e = epoch(time.UnixMilli(int64(f * 1000)))
	return nil
}
