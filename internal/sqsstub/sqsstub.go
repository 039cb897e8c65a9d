// Package sqsstub is an Amazon SQS endpoint in process, for protocol tests
// of code that uses the real AWS SDK for Go v2 SQS client. AWS cannot be
// reached from the machines that run cutover's tests, so the SQS event
// source is tested against this stub instead; tests that use it are
// protocol tests, never end-to-end tests.
//
// The stub speaks what the SDK speaks: AWS JSON 1.0 (POST /, X-Amz-Target
// AmazonSQS.<Operation>) with SQS's query-compatible error codes. It keeps
// real queue state with real visibility semantics:
//
//   - a received message is invisible until its visibility timeout ends,
//     then visible again; each receive increments ApproximateReceiveCount
//     and issues a new receipt handle;
//   - ReceiveMessage long-polls: it waits up to WaitTimeSeconds and returns
//     as soon as a message becomes available (sent, delayed message due,
//     visibility expired or reset to 0);
//   - a receipt handle is good only while it is the message's latest one
//     and the message is still in flight: DeleteMessage and
//     ChangeMessageVisibility with an expired or superseded handle are
//     refused (InvalidParameterValue), an unknown handle is
//     ReceiptHandleIsInvalid. Standard queues sometimes accept a stale
//     handle for a delete; the stub always refuses, as FIFO queues do, so
//     a consumer that deletes too late is caught here rather than in
//     production;
//   - a visibility timeout can be changed to at most 12 hours after the
//     receive, as in SQS;
//   - a RedrivePolicy moves a message to its dead-letter queue when it
//     would be received more than maxReceiveCount times.
//
// Operations: CreateQueue, GetQueueUrl, GetQueueAttributes, SendMessage,
// SendMessageBatch, ReceiveMessage, DeleteMessage, DeleteMessageBatch,
// ChangeMessageVisibility, ChangeMessageVisibilityBatch, PurgeQueue. FIFO
// queues (name ending .fifo) keep each message group in order: while a
// message of a group is in flight, no later message of that group is
// received; sends need a MessageGroupId and are deduplicated for five
// minutes by MessageDeduplicationId or, with ContentBasedDeduplication,
// the body's SHA-256; messages carry SequenceNumber, MessageGroupId and
// MessageDeduplicationId attributes. Tags, permissions, high-throughput
// FIFO, ReceiveRequestAttemptId deduplication and retention are not
// implemented. Requests must carry a SigV4
// Authorization header; the signature is not checked.
package sqsstub

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/cutoverhq/cutover/internal/awsstub"
)

// Limits SQS enforces and the stub enforces with it.
const (
	// MaxVisibilityTimeout is the longest visibility timeout, in seconds,
	// and the longest total time a message may stay in flight after one
	// receive.
	MaxVisibilityTimeout = 43200
	// MaxWaitTimeSeconds is the longest long poll.
	MaxWaitTimeSeconds = 20
	// MaxBatchEntries is the most entries in one batch request and the most
	// messages one ReceiveMessage returns.
	MaxBatchEntries = 10
	// DefaultMaximumMessageSize is the default MaximumMessageSize (1 MiB).
	DefaultMaximumMessageSize = 1 << 20
	// DefaultVisibilityTimeout is a queue's visibility timeout unless
	// created with another.
	DefaultVisibilityTimeout = 30
	// maxMessageAttributes is the most message attributes one message has.
	maxMessageAttributes = 10
)

// Server is a running stub endpoint. Its zero value is not usable: call New.
type Server struct {
	// URL is the endpoint to give the SDK as BaseEndpoint.
	URL string
	// Region and Account name the queues' ARNs and URLs.
	Region, Account string

	srv *httptest.Server

	mu     sync.Mutex
	queues map[string]*queue // by account/name
	// handles maps every receipt handle ever issued to its receipt.
	handles map[string]*receipt
	// changed is closed and replaced whenever a message may have become
	// available, waking long polls.
	changed chan struct{}
	// offset is added to the wall clock: Advance moves the stub's time
	// without sleeping.
	offset time.Duration
	calls  map[string]int
	faults map[string]int
	seq    int64
}

type queue struct {
	name, account string
	created       time.Time
	attrs         map[string]string
	messages      []*message // in send order, deleted ones included
	fifo          bool
	// dedup maps a FIFO deduplication id to the message it admitted,
	// for five minutes.
	dedup map[string]*message
	seq   int64
}

type message struct {
	id         string
	body       string
	md5Body    string
	attrs      map[string]Attribute
	md5Attrs   string
	senderID   string
	traceHdr   string
	group      string // FIFO message group
	dedupID    string
	seqNum     string
	sent       time.Time
	visibleAt  time.Time // zero: visible now (after delay)
	receivedAt time.Time // when the latest receive happened
	firstRecv  time.Time
	receives   int
	handle     string // latest receipt handle
	deleted    bool
}

type receipt struct {
	q   *queue
	msg *message
}

// Attribute is a message attribute as the SQS API carries it.
type Attribute struct {
	DataType         string   `json:"DataType"`
	StringValue      *string  `json:"StringValue,omitempty"`
	BinaryValue      []byte   `json:"BinaryValue,omitempty"`
	StringListValues []string `json:"StringListValues,omitempty"`
	BinaryListValues [][]byte `json:"BinaryListValues,omitempty"`
}

// New starts a stub on a loopback port. Close it when done.
func New() *Server {
	s := &Server{
		Region:  "us-east-1",
		Account: "123456789012",
		queues:  map[string]*queue{},
		handles: map[string]*receipt{},
		changed: make(chan struct{}),
		calls:   map[string]int{},
		faults:  map[string]int{},
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	s.URL = s.srv.URL
	return s
}

// Close stops the server; pending long polls return.
func (s *Server) Close() {
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// CreateQueue creates a queue (or returns the existing one's URL) with the
// given attributes, as the CreateQueue operation does.
func (s *Server) CreateQueue(name string, attrs map[string]string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.createQueue(name, attrs); err != nil {
		return "", err
	}
	return s.queueURL(s.Account, name), nil
}

// QueueURL returns the URL of a queue of the stub's account.
func (s *Server) QueueURL(name string) string { return s.queueURL(s.Account, name) }

// QueueARN returns the ARN of a queue of the stub's account.
func (s *Server) QueueARN(name string) string {
	return fmt.Sprintf("arn:aws:sqs:%s:%s:%s", s.Region, s.Account, name)
}

// Advance moves the stub's clock forward: visibility timeouts and delays
// end as if d had passed.
func (s *Server) Advance(d time.Duration) {
	s.mu.Lock()
	s.offset += d
	s.wake()
	s.mu.Unlock()
}

// Calls returns how many requests of an operation (e.g. "ReceiveMessage")
// the stub has answered, failed ones included.
func (s *Server) Calls(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

// FailNext makes the next n requests of an operation fail with a 500
// InternalError, which the SDK retries; n large enough outlasts its
// retries.
func (s *Server) FailNext(op string, n int) {
	s.mu.Lock()
	s.faults[op] += n
	s.mu.Unlock()
}

// MessageState is what the stub knows about one message, for assertions.
type MessageState struct {
	ID           string
	Body         string
	ReceiveCount int
	// InFlight is true while the message is received and invisible.
	InFlight bool
	// Deleted is true once a delete succeeded. Deleted messages stay in
	// Messages' answer so tests can see them.
	Deleted bool
}

// Messages returns the state of every message sent to a queue, deleted
// ones included, in send order.
func (s *Server) Messages(queueName string) []MessageState {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queues[s.Account+"/"+queueName]
	if q == nil {
		return nil
	}
	now := s.now()
	var out []MessageState
	for _, m := range q.messages {
		out = append(out, MessageState{
			ID: m.id, Body: m.body, ReceiveCount: m.receives, Deleted: m.deleted,
			InFlight: !m.deleted && m.receives > 0 && now.Before(m.visibleAt),
		})
	}
	return out
}

func (s *Server) now() time.Time { return time.Now().Add(s.offset) }

// wake wakes long polls; the caller holds mu.
func (s *Server) wake() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Server) queueURL(account, name string) string {
	return s.URL + "/" + account + "/" + name
}

func (s *Server) createQueue(name string, attrs map[string]string) *apiError {
	base, fifo := strings.CutSuffix(name, ".fifo")
	if base == "" || len(name) > 80 {
		return invalidParameter("QueueName", "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length")
	}
	if fifo != (attrs["FifoQueue"] == "true") {
		return &apiError{status: 400, typ: "InvalidAttributeValue", query: "InvalidAttributeValue", msg: "The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must end with .fifo suffix; FifoQueue must be true for it and only for it."}
	}
	for _, r := range base {
		if !isIDRune(r) {
			return invalidParameter("QueueName", "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length")
		}
	}
	key := s.Account + "/" + name
	if q := s.queues[key]; q != nil {
		return nil
	}
	now := s.now()
	q := &queue{name: name, account: s.Account, created: now, fifo: fifo, dedup: map[string]*message{}, attrs: map[string]string{
		"VisibilityTimeout":             strconv.Itoa(DefaultVisibilityTimeout),
		"DelaySeconds":                  "0",
		"MaximumMessageSize":            strconv.Itoa(DefaultMaximumMessageSize),
		"MessageRetentionPeriod":        "345600",
		"ReceiveMessageWaitTimeSeconds": "0",
	}}
	for k, v := range attrs {
		switch k {
		case "VisibilityTimeout", "DelaySeconds", "MaximumMessageSize", "MessageRetentionPeriod", "ReceiveMessageWaitTimeSeconds":
			if _, err := strconv.Atoi(v); err != nil {
				return &apiError{status: 400, typ: "InvalidAttributeValue", query: "InvalidAttributeValue", msg: fmt.Sprintf("Invalid value for the parameter %s.", k)}
			}
		case "RedrivePolicy":
			var rp redrivePolicy
			if err := json.Unmarshal([]byte(v), &rp); err != nil || rp.DeadLetterTargetARN == "" || rp.maxReceives() < 1 {
				return &apiError{status: 400, typ: "InvalidAttributeValue", query: "InvalidAttributeValue", msg: "Invalid value for the parameter RedrivePolicy."}
			}
		case "FifoQueue", "ContentBasedDeduplication":
			if v != "true" && v != "false" {
				return &apiError{status: 400, typ: "InvalidAttributeValue", query: "InvalidAttributeValue", msg: fmt.Sprintf("Invalid value for the parameter %s.", k)}
			}
		case "Policy", "KmsMasterKeyId", "KmsDataKeyReusePeriodSeconds", "SqsManagedSseEnabled", "RedriveAllowPolicy":
		default:
			return &apiError{status: 400, typ: "InvalidAttributeName", query: "InvalidAttributeName", msg: "Unknown Attribute " + k + "."}
		}
		q.attrs[k] = v
	}
	s.queues[key] = q
	return nil
}

type redrivePolicy struct {
	DeadLetterTargetARN string `json:"deadLetterTargetArn"`
	// MaxReceiveCount is a number or a string holding one: SQS accepts
	// both.
	MaxReceiveCount json.RawMessage `json:"maxReceiveCount"`
}

func (r redrivePolicy) maxReceives() int {
	s := strings.Trim(string(r.MaxReceiveCount), `"`)
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0
	}
	return n
}

func (q *queue) intAttr(name string) int {
	n, _ := strconv.Atoi(q.attrs[name])
	return n
}

// apiError is an SQS error answer.
type apiError struct {
	status int
	// typ is the shape name in __type; query is the code of the
	// x-amzn-query-error header, which the SDK reports as ErrorCode.
	typ, query, msg string
}

func (e *apiError) Error() string { return e.query + ": " + e.msg }

func invalidParameter(param, reason string) *apiError {
	return &apiError{status: 400, typ: "InvalidParameterValue", query: "InvalidParameterValue",
		msg: fmt.Sprintf("Value for parameter %s is invalid. Reason: %s", param, reason)}
}

func nonExistentQueue() *apiError {
	return &apiError{status: 400, typ: "QueueDoesNotExist", query: "AWS.SimpleQueueService.NonExistentQueue", msg: "The specified queue does not exist."}
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	target := r.Header.Get("X-Amz-Target")
	op, ok := strings.CutPrefix(target, "AmazonSQS.")
	if r.Method != http.MethodPost || !ok {
		writeError(w, &apiError{status: 400, typ: "com.amazon.coral.service#UnknownOperationException", query: "UnknownOperation", msg: "unknown operation " + target})
		return
	}
	if err := awsstub.SignedFor(r, "sqs"); err != nil {
		writeError(w, &apiError{status: 400, typ: "com.amazon.coral.service#MissingAuthenticationTokenException", query: "MissingAuthenticationToken", msg: "Request is missing Authentication Token: " + err.Error()})
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	if err != nil {
		return
	}
	s.mu.Lock()
	s.calls[op]++
	if s.faults[op] > 0 {
		s.faults[op]--
		s.mu.Unlock()
		writeError(w, &apiError{status: 500, typ: "InternalError", query: "InternalError", msg: "injected failure"})
		return
	}
	s.mu.Unlock()

	var out any
	var aerr *apiError
	switch op {
	case "ReceiveMessage":
		out, aerr = s.receiveMessage(r.Context(), body)
	case "SendMessage":
		out, aerr = s.sendMessage(body)
	case "SendMessageBatch":
		out, aerr = s.sendMessageBatch(body)
	case "DeleteMessage":
		out, aerr = s.deleteMessage(body)
	case "DeleteMessageBatch":
		out, aerr = s.deleteMessageBatch(body)
	case "ChangeMessageVisibility":
		out, aerr = s.changeVisibility(body)
	case "ChangeMessageVisibilityBatch":
		out, aerr = s.changeVisibilityBatch(body)
	case "GetQueueAttributes":
		out, aerr = s.getQueueAttributes(body)
	case "GetQueueUrl":
		out, aerr = s.getQueueURL(body)
	case "CreateQueue":
		out, aerr = s.createQueueOp(body)
	case "PurgeQueue":
		out, aerr = s.purgeQueue(body)
	default:
		aerr = &apiError{status: 400, typ: "com.amazon.coral.service#UnknownOperationException", query: "UnsupportedOperation", msg: "the stub does not implement " + op}
	}
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.Header().Set("x-amzn-RequestId", s.newID())
	b, _ := json.Marshal(out)
	w.Write(b)
}

func writeError(w http.ResponseWriter, e *apiError) {
	typ := e.typ
	if !strings.Contains(typ, "#") {
		typ = "com.amazonaws.sqs#" + typ
	}
	fault := "Sender"
	if e.status >= 500 {
		fault = "Receiver"
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.Header().Set("x-amzn-query-error", e.query+";"+fault)
	w.WriteHeader(e.status)
	b, _ := json.Marshal(map[string]string{"__type": typ, "message": e.msg})
	w.Write(b)
}

func decode(body []byte, v any) *apiError {
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return &apiError{status: 400, typ: "com.amazon.coral.service#SerializationException", query: "MalformedInput", msg: err.Error()}
	}
	return nil
}

// lookup finds a queue by URL; the caller holds mu. Only the path counts
// (…/account/name), so an AWS queue URL works against the stub's endpoint.
func (s *Server) lookup(queueURL string) (*queue, *apiError) {
	if queueURL == "" {
		return nil, &apiError{status: 400, typ: "MissingParameter", query: "MissingParameter", msg: "The request must contain the parameter QueueUrl."}
	}
	u, err := url.Parse(queueURL)
	if err != nil {
		return nil, nonExistentQueue()
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(parts) != 2 {
		return nil, nonExistentQueue()
	}
	q := s.queues[parts[0]+"/"+parts[1]]
	if q == nil {
		return nil, nonExistentQueue()
	}
	return q, nil
}

func (s *Server) newID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func (s *Server) newHandle(m *message) string {
	var b [48]byte
	rand.Read(b[:])
	s.seq++
	return "AQEB" + base64.StdEncoding.EncodeToString(b[:]) + strconv.FormatInt(s.seq, 36)
}

// ---- ReceiveMessage ----

type receiveInput struct {
	QueueURL                    string   `json:"QueueUrl"`
	AttributeNames              []string `json:"AttributeNames"`
	MessageSystemAttributeNames []string `json:"MessageSystemAttributeNames"`
	MessageAttributeNames       []string `json:"MessageAttributeNames"`
	MaxNumberOfMessages         *int     `json:"MaxNumberOfMessages"`
	VisibilityTimeout           *int     `json:"VisibilityTimeout"`
	WaitTimeSeconds             *int     `json:"WaitTimeSeconds"`
	ReceiveRequestAttemptID     string   `json:"ReceiveRequestAttemptId"`
}

type messageOut struct {
	MessageID              string               `json:"MessageId"`
	ReceiptHandle          string               `json:"ReceiptHandle"`
	MD5OfBody              string               `json:"MD5OfBody"`
	Body                   string               `json:"Body"`
	Attributes             map[string]string    `json:"Attributes,omitempty"`
	MD5OfMessageAttributes string               `json:"MD5OfMessageAttributes,omitempty"`
	MessageAttributes      map[string]Attribute `json:"MessageAttributes,omitempty"`
}

var systemAttributes = []string{"ApproximateReceiveCount", "ApproximateFirstReceiveTimestamp", "SentTimestamp", "SenderId", "AWSTraceHeader",
	"MessageGroupId", "MessageDeduplicationId", "SequenceNumber"}

func (s *Server) receiveMessage(ctx context.Context, body []byte) (any, *apiError) {
	var in receiveInput
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	max := 1
	if in.MaxNumberOfMessages != nil {
		max = *in.MaxNumberOfMessages
		if max < 1 || max > MaxBatchEntries {
			return nil, invalidParameter("MaxNumberOfMessages", "Must be between 1 and 10, if provided.")
		}
	}
	if in.VisibilityTimeout != nil && (*in.VisibilityTimeout < 0 || *in.VisibilityTimeout > MaxVisibilityTimeout) {
		return nil, invalidParameter("VisibilityTimeout", "Must be between 0 and 43200, if provided.")
	}
	s.mu.Lock()
	q, e := s.lookup(in.QueueURL)
	if e != nil {
		s.mu.Unlock()
		return nil, e
	}
	wait := q.intAttr("ReceiveMessageWaitTimeSeconds")
	if in.WaitTimeSeconds != nil {
		wait = *in.WaitTimeSeconds
		if wait < 0 || wait > MaxWaitTimeSeconds {
			s.mu.Unlock()
			return nil, invalidParameter("WaitTimeSeconds", "Must be >= 0 and <= 20, if provided.")
		}
	}
	vis := q.intAttr("VisibilityTimeout")
	if in.VisibilityTimeout != nil {
		vis = *in.VisibilityTimeout
	}
	sysNames := append(append([]string(nil), in.AttributeNames...), in.MessageSystemAttributeNames...)
	deadline := time.Now().Add(time.Duration(wait) * time.Second)
	for {
		if ctx.Err() != nil {
			s.mu.Unlock()
			return nil, &apiError{status: 400, typ: "RequestCanceled", query: "RequestCanceled", msg: "client went away"}
		}
		now := s.now()
		got := s.take(q, now, max, vis)
		if len(got) > 0 {
			out := make([]messageOut, 0, len(got))
			for _, m := range got {
				out = append(out, m.out(sysNames, in.MessageAttributeNames))
			}
			s.mu.Unlock()
			return map[string]any{"Messages": out}, nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			s.mu.Unlock()
			return map[string]any{}, nil
		}
		// Sleep until something changes, the poll ends, or the first
		// in-flight or delayed message becomes visible.
		if next, ok := q.nextVisible(now); ok && next.Sub(now) < left {
			left = next.Sub(now)
		}
		ch := s.changed
		s.mu.Unlock()
		t := time.NewTimer(left)
		select {
		case <-ch:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
		s.mu.Lock()
	}
}

// take receives up to max visible messages; the caller holds mu.
func (s *Server) take(q *queue, now time.Time, max, vis int) []*message {
	var got []*message
	var rp redrivePolicy
	if v := q.attrs["RedrivePolicy"]; v != "" {
		json.Unmarshal([]byte(v), &rp)
	}
	// blocked are FIFO groups with a message in flight (or delayed):
	// nothing later in the group may be received before it is done.
	blocked := map[string]bool{}
	for _, m := range q.messages {
		if len(got) == max {
			break
		}
		if m.deleted {
			continue
		}
		if q.fifo && blocked[m.group] {
			continue
		}
		if now.Before(m.visibleAt) {
			if q.fifo {
				blocked[m.group] = true
			}
			continue
		}
		if n := rp.maxReceives(); n > 0 && m.receives >= n {
			if dlq := s.queueByARN(rp.DeadLetterTargetARN); dlq != nil && dlq != q {
				s.moveToDLQ(q, m, dlq)
				continue
			}
		}
		m.receives++
		if m.receives == 1 {
			m.firstRecv = now
		}
		m.receivedAt = now
		m.visibleAt = now.Add(time.Duration(vis) * time.Second)
		m.handle = s.newHandle(m)
		s.handles[m.handle] = &receipt{q: q, msg: m}
		got = append(got, m)
	}
	return got
}

func (s *Server) queueByARN(arn string) *queue {
	parts := strings.Split(arn, ":")
	if len(parts) != 6 {
		return nil
	}
	return s.queues[parts[4]+"/"+parts[5]]
}

// moveToDLQ moves a message past its maxReceiveCount to the dead-letter
// queue, keeping its id, body and attributes as SQS does.
func (s *Server) moveToDLQ(from *queue, m *message, dlq *queue) {
	cp := *m
	cp.receives, cp.handle, cp.visibleAt, cp.receivedAt, cp.firstRecv = 0, "", time.Time{}, time.Time{}, time.Time{}
	m.deleted = true // in the source queue's Messages as deleted
	dlq.messages = append(dlq.messages, &cp)
	s.wake()
}

func (q *queue) nextVisible(now time.Time) (time.Time, bool) {
	var next time.Time
	for _, m := range q.messages {
		if m.deleted || !now.Before(m.visibleAt) {
			continue
		}
		if next.IsZero() || m.visibleAt.Before(next) {
			next = m.visibleAt
		}
	}
	return next, !next.IsZero()
}

func (m *message) out(sysNames, attrNames []string) messageOut {
	o := messageOut{MessageID: m.id, ReceiptHandle: m.handle, MD5OfBody: m.md5Body, Body: m.body}
	want := func(name string) bool {
		for _, n := range sysNames {
			if n == "All" || n == name {
				return true
			}
		}
		return false
	}
	for _, name := range systemAttributes {
		if !want(name) {
			continue
		}
		var v string
		switch name {
		case "ApproximateReceiveCount":
			v = strconv.Itoa(m.receives)
		case "ApproximateFirstReceiveTimestamp":
			v = strconv.FormatInt(m.firstRecv.UnixMilli(), 10)
		case "SentTimestamp":
			v = strconv.FormatInt(m.sent.UnixMilli(), 10)
		case "SenderId":
			v = m.senderID
		case "AWSTraceHeader":
			v = m.traceHdr
		case "MessageGroupId":
			v = m.group
		case "MessageDeduplicationId":
			v = m.dedupID
		case "SequenceNumber":
			v = m.seqNum
		}
		if v == "" {
			continue
		}
		if o.Attributes == nil {
			o.Attributes = map[string]string{}
		}
		o.Attributes[name] = v
	}
	for name, a := range m.attrs {
		if !attrWanted(name, attrNames) {
			continue
		}
		if o.MessageAttributes == nil {
			o.MessageAttributes = map[string]Attribute{}
		}
		o.MessageAttributes[name] = a
	}
	if o.MessageAttributes != nil {
		o.MD5OfMessageAttributes = attributesMD5(o.MessageAttributes)
	}
	return o
}

// attrWanted applies MessageAttributeNames: "All", ".*", a name, or a
// prefix followed by ".*".
func attrWanted(name string, names []string) bool {
	for _, n := range names {
		switch {
		case n == "All" || n == ".*" || n == name:
			return true
		case strings.HasSuffix(n, ".*") && strings.HasPrefix(name, strings.TrimSuffix(n, "*")):
			return true
		}
	}
	return false
}

// ---- SendMessage ----

type sendEntry struct {
	ID                      string               `json:"Id"`
	MessageBody             *string              `json:"MessageBody"`
	DelaySeconds            *int                 `json:"DelaySeconds"`
	MessageAttributes       map[string]Attribute `json:"MessageAttributes"`
	MessageSystemAttributes map[string]Attribute `json:"MessageSystemAttributes"`
	MessageGroupID          string               `json:"MessageGroupId"`
	MessageDeduplicationID  string               `json:"MessageDeduplicationId"`
}

type sendInput struct {
	QueueURL string `json:"QueueUrl"`
	sendEntry
}

func (s *Server) sendMessage(body []byte) (any, *apiError) {
	var in sendInput
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q, e := s.lookup(in.QueueURL)
	if e != nil {
		return nil, e
	}
	m, e := s.send(q, in.sendEntry)
	if e != nil {
		return nil, e
	}
	out := map[string]string{"MessageId": m.id, "MD5OfMessageBody": m.md5Body}
	if m.md5Attrs != "" {
		out["MD5OfMessageAttributes"] = m.md5Attrs
	}
	if m.seqNum != "" {
		out["SequenceNumber"] = m.seqNum
	}
	return out, nil
}

type batchError struct {
	ID          string `json:"Id"`
	SenderFault bool   `json:"SenderFault"`
	Code        string `json:"Code"`
	Message     string `json:"Message,omitempty"`
}

func (s *Server) sendMessageBatch(body []byte) (any, *apiError) {
	type ok struct {
		ID                     string `json:"Id"`
		MessageID              string `json:"MessageId"`
		MD5OfMessageBody       string `json:"MD5OfMessageBody"`
		MD5OfMessageAttributes string `json:"MD5OfMessageAttributes,omitempty"`
		SequenceNumber         string `json:"SequenceNumber,omitempty"`
	}
	return runBatch(s, body, "SendMessageBatchRequestEntry", func(en sendEntry) string { return en.ID }, func(q *queue, en sendEntry) (ok, *apiError) {
		m, e := s.send(q, en)
		if e != nil {
			return ok{}, e
		}
		return ok{ID: en.ID, MessageID: m.id, MD5OfMessageBody: m.md5Body, MD5OfMessageAttributes: m.md5Attrs, SequenceNumber: m.seqNum}, nil
	})
}

// batchOK is a Successful entry of the batches that answer only its id.
type batchOK struct {
	ID string `json:"Id"`
}

// runBatch is what every batch action shares: it decodes the request,
// checks the entries' ids, looks the queue up and applies each entry under
// mu; an entry whose apply fails becomes a Failed item, the others
// Successful ones.
func runBatch[E, R any](s *Server, body []byte, entry string, id func(E) string, apply func(*queue, E) (R, *apiError)) (any, *apiError) {
	var in struct {
		QueueURL string `json:"QueueUrl"`
		Entries  []E    `json:"Entries"`
	}
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	ids := make([]string, len(in.Entries))
	for i, en := range in.Entries {
		ids[i] = id(en)
	}
	if e := checkBatch(entry, ids); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q, e := s.lookup(in.QueueURL)
	if e != nil {
		return nil, e
	}
	succeeded, failed := []R{}, []batchError{}
	for i, en := range in.Entries {
		r, e := apply(q, en)
		if e != nil {
			failed = append(failed, batchError{ID: ids[i], SenderFault: true, Code: e.query, Message: e.msg})
			continue
		}
		succeeded = append(succeeded, r)
	}
	return map[string]any{"Successful": succeeded, "Failed": failed}, nil
}

// send validates and enqueues one message; the caller holds mu.
func (s *Server) send(q *queue, in sendEntry) (*message, *apiError) {
	if in.MessageBody == nil || *in.MessageBody == "" {
		return nil, &apiError{status: 400, typ: "MissingParameter", query: "MissingParameter", msg: "The request must contain the parameter MessageBody."}
	}
	body := *in.MessageBody
	if !validBody(body) {
		return nil, &apiError{status: 400, typ: "InvalidMessageContents", query: "InvalidMessageContents", msg: "Invalid characters found. Valid unicode characters are #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF"}
	}
	if !q.fifo && (in.MessageGroupID != "" || in.MessageDeduplicationID != "") {
		return nil, invalidParameter("MessageGroupId", "The request include parameter that is not valid for this queue type")
	}
	if q.fifo && in.MessageGroupID == "" {
		return nil, &apiError{status: 400, typ: "MissingParameter", query: "MissingParameter", msg: "The request must contain the parameter MessageGroupId."}
	}
	if q.fifo && in.DelaySeconds != nil && *in.DelaySeconds != 0 {
		return nil, invalidParameter("DelaySeconds", "The request include parameter that is not valid for this queue type")
	}
	dedup := in.MessageDeduplicationID
	if q.fifo && dedup == "" {
		if q.attrs["ContentBasedDeduplication"] != "true" {
			return nil, invalidParameter("MessageDeduplicationId", "The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly")
		}
		sum := sha256.Sum256([]byte(body))
		dedup = hex.EncodeToString(sum[:])
	}
	if q.fifo {
		if prev := q.dedup[dedup]; prev != nil && s.now().Sub(prev.sent) < 5*time.Minute {
			// A duplicate within the window: accepted, not enqueued;
			// the answer has the first message's id and this body's
			// digest.
			dup := *prev
			sum := md5.Sum([]byte(body))
			dup.md5Body = hex.EncodeToString(sum[:])
			dup.md5Attrs = ""
			if len(in.MessageAttributes) > 0 {
				dup.md5Attrs = attributesMD5(in.MessageAttributes)
			}
			return &dup, nil
		}
	}
	size := len(body)
	for name, a := range in.MessageAttributes {
		size += len(name) + len(a.DataType) + len(a.BinaryValue)
		if a.StringValue != nil {
			size += len(*a.StringValue)
		}
	}
	if max := q.intAttr("MaximumMessageSize"); size > max {
		return nil, invalidParameter("MessageBody", fmt.Sprintf("Message must be shorter than %d bytes.", max))
	}
	if e := checkAttributes(in.MessageAttributes); e != nil {
		return nil, e
	}
	delay := q.intAttr("DelaySeconds")
	if in.DelaySeconds != nil {
		delay = *in.DelaySeconds
		if delay < 0 || delay > 900 {
			return nil, invalidParameter("DelaySeconds", "Must be >= 0 and <= 900.")
		}
	}
	now := s.now()
	sum := md5.Sum([]byte(body))
	m := &message{
		id: s.newID(), body: body, md5Body: hex.EncodeToString(sum[:]),
		attrs: in.MessageAttributes, senderID: "AIDASTUBSENDER" + s.Account, sent: now,
	}
	if len(m.attrs) > 0 {
		m.md5Attrs = attributesMD5(m.attrs)
	}
	if t, ok := in.MessageSystemAttributes["AWSTraceHeader"]; ok && t.StringValue != nil {
		m.traceHdr = *t.StringValue
	}
	if delay > 0 {
		m.visibleAt = now.Add(time.Duration(delay) * time.Second)
	}
	if q.fifo {
		q.seq++
		m.group, m.dedupID, m.seqNum = in.MessageGroupID, dedup, strconv.FormatUint(18000000000000000000+uint64(q.seq), 10)
		q.dedup[dedup] = m
	}
	q.messages = append(q.messages, m)
	s.wake()
	return m, nil
}

// validBody applies SQS's allowed character ranges.
func validBody(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		switch {
		case r == 0x9 || r == 0xA || r == 0xD:
		case r >= 0x20 && r <= 0xD7FF:
		case r >= 0xE000 && r <= 0xFFFD:
		case r >= 0x10000 && r <= 0x10FFFF:
		default:
			return false
		}
	}
	return true
}

func checkAttributes(attrs map[string]Attribute) *apiError {
	if len(attrs) > maxMessageAttributes {
		return invalidParameter("MessageAttributes", fmt.Sprintf("Number of message attributes [%d] exceeds the allowed maximum [10].", len(attrs)))
	}
	for name, a := range attrs {
		if name == "" || len(name) > 256 || strings.HasPrefix(strings.ToLower(name), "aws.") || strings.HasPrefix(strings.ToLower(name), "amazon.") ||
			strings.Contains(name, "..") || strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".") {
			return invalidParameter("MessageAttributes", "Message (user) attribute name '"+name+"' is invalid.")
		}
		for _, r := range name {
			if !isIDRune(r) && r != '.' {
				return invalidParameter("MessageAttributes", "Message (user) attribute name '"+name+"' is invalid.")
			}
		}
		base, _, _ := strings.Cut(a.DataType, ".")
		switch base {
		case "String", "Number":
			if a.StringValue == nil || *a.StringValue == "" {
				return invalidParameter("MessageAttributes", "Message (user) attribute '"+name+"' must contain a non-empty value of type '"+base+"'.")
			}
		case "Binary":
			if len(a.BinaryValue) == 0 {
				return invalidParameter("MessageAttributes", "Message (user) attribute '"+name+"' must contain a non-empty value of type 'Binary'.")
			}
		default:
			return invalidParameter("MessageAttributes", "The type of message (user) attribute '"+name+"' is invalid. You must use only the following supported type prefixes: Binary, Number, String.")
		}
	}
	return nil
}

// attributesMD5 is SQS's MD5OfMessageAttributes: over the attributes in
// name order, each as length-prefixed name and data type, a transport
// type byte (1 string, 2 binary) and the length-prefixed value.
func attributesMD5(attrs map[string]Attribute) string {
	names := make([]string, 0, len(attrs))
	for n := range attrs {
		names = append(names, n)
	}
	sort.Strings(names)
	h := md5.New()
	put := func(b []byte) {
		var l [4]byte
		binary.BigEndian.PutUint32(l[:], uint32(len(b)))
		h.Write(l[:])
		h.Write(b)
	}
	for _, n := range names {
		a := attrs[n]
		put([]byte(n))
		put([]byte(a.DataType))
		if a.StringValue != nil {
			h.Write([]byte{1})
			put([]byte(*a.StringValue))
		} else {
			h.Write([]byte{2})
			put(a.BinaryValue)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

func isIDRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_'
}

// checkBatch applies the rules every batch request shares; entry is the
// action's entry type, which AWS names in its empty-batch error.
func checkBatch(entry string, ids []string) *apiError {
	if len(ids) == 0 {
		return &apiError{status: 400, typ: "EmptyBatchRequest", query: "AWS.SimpleQueueService.EmptyBatchRequest", msg: "There should be at least one " + entry + " in the request."}
	}
	if len(ids) > MaxBatchEntries {
		return &apiError{status: 400, typ: "TooManyEntriesInBatchRequest", query: "AWS.SimpleQueueService.TooManyEntriesInBatchRequest", msg: fmt.Sprintf("Maximum number of entries per request are 10. You have sent %d.", len(ids))}
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if id == "" || len(id) > 80 {
			return &apiError{status: 400, typ: "InvalidBatchEntryId", query: "AWS.SimpleQueueService.InvalidBatchEntryId", msg: "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long."}
		}
		for _, r := range id {
			if !isIDRune(r) {
				return &apiError{status: 400, typ: "InvalidBatchEntryId", query: "AWS.SimpleQueueService.InvalidBatchEntryId", msg: "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long."}
			}
		}
		if seen[id] {
			return &apiError{status: 400, typ: "BatchEntryIdsNotDistinct", query: "AWS.SimpleQueueService.BatchEntryIdsNotDistinct", msg: "Id " + id + " repeated."}
		}
		seen[id] = true
	}
	return nil
}

// ---- DeleteMessage / ChangeMessageVisibility ----

// resolve checks a receipt handle against a queue; the caller holds mu.
// It returns the message, or nil and no error for a message already
// deleted (deleting twice succeeds in SQS).
func (s *Server) resolve(q *queue, handle string, forVisibility bool) (*message, *apiError) {
	rc := s.handles[handle]
	if handle == "" || rc == nil || rc.q != q {
		return nil, &apiError{status: 400, typ: "ReceiptHandleIsInvalid", query: "ReceiptHandleIsInvalid",
			msg: fmt.Sprintf("The input receipt handle %q is not a valid receipt handle.", handle)}
	}
	m := rc.msg
	if m.deleted && m.handle == handle && !forVisibility {
		return nil, nil
	}
	if m.deleted || m.handle != handle || !s.now().Before(m.visibleAt) {
		reason := "The receipt handle has expired."
		if forVisibility {
			reason = "Message does not exist or is not available for visibility timeout change."
		}
		return nil, &apiError{status: 400, typ: "InvalidParameterValue", query: "InvalidParameterValue",
			msg: fmt.Sprintf("Value %s for parameter ReceiptHandle is invalid. Reason: %s", handle, reason)}
	}
	return m, nil
}

func (s *Server) deleteMessage(body []byte) (any, *apiError) {
	var in struct {
		QueueURL      string `json:"QueueUrl"`
		ReceiptHandle string `json:"ReceiptHandle"`
	}
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q, e := s.lookup(in.QueueURL)
	if e != nil {
		return nil, e
	}
	m, e := s.resolve(q, in.ReceiptHandle, false)
	if e != nil {
		return nil, e
	}
	if m != nil {
		m.deleted = true
	}
	return map[string]any{}, nil
}

type handleEntry struct {
	ID                string `json:"Id"`
	ReceiptHandle     string `json:"ReceiptHandle"`
	VisibilityTimeout *int   `json:"VisibilityTimeout"`
}

func (en handleEntry) id() string { return en.ID }

func (s *Server) deleteMessageBatch(body []byte) (any, *apiError) {
	return runBatch(s, body, "DeleteMessageBatchRequestEntry", handleEntry.id, func(q *queue, en handleEntry) (batchOK, *apiError) {
		m, e := s.resolve(q, en.ReceiptHandle, false)
		if e != nil {
			return batchOK{}, e
		}
		if m != nil {
			m.deleted = true
		}
		return batchOK{ID: en.ID}, nil
	})
}

// setVisibility changes one in-flight message's visibility; the caller
// holds mu.
func (s *Server) setVisibility(q *queue, handle string, timeout *int) *apiError {
	if timeout == nil {
		return &apiError{status: 400, typ: "MissingParameter", query: "MissingParameter", msg: "The request must contain the parameter VisibilityTimeout."}
	}
	if *timeout < 0 || *timeout > MaxVisibilityTimeout {
		return invalidParameter("VisibilityTimeout", "Must be between 0 and 43200.")
	}
	m, e := s.resolve(q, handle, true)
	if e != nil {
		return e
	}
	now := s.now()
	until := now.Add(time.Duration(*timeout) * time.Second)
	if until.Sub(m.receivedAt) > MaxVisibilityTimeout*time.Second {
		return invalidParameter("VisibilityTimeout", "Total VisibilityTimeout for the message is beyond the limit [43200 seconds]")
	}
	m.visibleAt = until
	if *timeout == 0 {
		s.wake()
	}
	return nil
}

func (s *Server) changeVisibility(body []byte) (any, *apiError) {
	var in struct {
		QueueURL string `json:"QueueUrl"`
		handleEntry
	}
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q, e := s.lookup(in.QueueURL)
	if e != nil {
		return nil, e
	}
	if e := s.setVisibility(q, in.ReceiptHandle, in.VisibilityTimeout); e != nil {
		return nil, e
	}
	return map[string]any{}, nil
}

func (s *Server) changeVisibilityBatch(body []byte) (any, *apiError) {
	return runBatch(s, body, "ChangeMessageVisibilityBatchRequestEntry", handleEntry.id, func(q *queue, en handleEntry) (batchOK, *apiError) {
		if e := s.setVisibility(q, en.ReceiptHandle, en.VisibilityTimeout); e != nil {
			return batchOK{}, e
		}
		return batchOK{ID: en.ID}, nil
	})
}

// ---- queues ----

var queueAttributeNames = []string{
	"ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed",
	"CreatedTimestamp", "DelaySeconds", "LastModifiedTimestamp", "MaximumMessageSize", "MessageRetentionPeriod",
	"QueueArn", "ReceiveMessageWaitTimeSeconds", "VisibilityTimeout", "RedrivePolicy", "SqsManagedSseEnabled",
	"FifoQueue", "ContentBasedDeduplication",
}

func (s *Server) getQueueAttributes(body []byte) (any, *apiError) {
	var in struct {
		QueueURL       string   `json:"QueueUrl"`
		AttributeNames []string `json:"AttributeNames"`
	}
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q, e := s.lookup(in.QueueURL)
	if e != nil {
		return nil, e
	}
	now := s.now()
	var visible, inFlight, delayed int
	for _, m := range q.messages {
		switch {
		case m.deleted:
		case !now.Before(m.visibleAt):
			visible++
		case m.receives > 0:
			inFlight++
		default:
			delayed++
		}
	}
	all := map[string]string{}
	for k, v := range q.attrs {
		all[k] = v
	}
	all["ApproximateNumberOfMessages"] = strconv.Itoa(visible)
	all["ApproximateNumberOfMessagesNotVisible"] = strconv.Itoa(inFlight)
	all["ApproximateNumberOfMessagesDelayed"] = strconv.Itoa(delayed)
	all["CreatedTimestamp"] = strconv.FormatInt(q.created.Unix(), 10)
	all["LastModifiedTimestamp"] = strconv.FormatInt(q.created.Unix(), 10)
	all["QueueArn"] = fmt.Sprintf("arn:aws:sqs:%s:%s:%s", s.Region, q.account, q.name)
	all["SqsManagedSseEnabled"] = "true"
	out := map[string]string{}
	for _, n := range in.AttributeNames {
		if n == "All" {
			out = all
			break
		}
		known := false
		for _, k := range queueAttributeNames {
			known = known || k == n
		}
		if !known {
			return nil, &apiError{status: 400, typ: "InvalidAttributeName", query: "InvalidAttributeName", msg: "Unknown Attribute " + n + "."}
		}
		if v, ok := all[n]; ok {
			out[n] = v
		}
	}
	return map[string]any{"Attributes": out}, nil
}

func (s *Server) getQueueURL(body []byte) (any, *apiError) {
	var in struct {
		QueueName string `json:"QueueName"`
		Owner     string `json:"QueueOwnerAWSAccountId"`
	}
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	account := in.Owner
	if account == "" {
		account = s.Account
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.queues[account+"/"+in.QueueName] == nil {
		return nil, nonExistentQueue()
	}
	return map[string]string{"QueueUrl": s.queueURL(account, in.QueueName)}, nil
}

func (s *Server) createQueueOp(body []byte) (any, *apiError) {
	var in struct {
		QueueName  string            `json:"QueueName"`
		Attributes map[string]string `json:"Attributes"`
	}
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.createQueue(in.QueueName, in.Attributes); e != nil {
		return nil, e
	}
	return map[string]string{"QueueUrl": s.queueURL(s.Account, in.QueueName)}, nil
}

func (s *Server) purgeQueue(body []byte) (any, *apiError) {
	var in struct {
		QueueURL string `json:"QueueUrl"`
	}
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q, e := s.lookup(in.QueueURL)
	if e != nil {
		return nil, e
	}
	for _, m := range q.messages {
		m.deleted = true
	}
	return map[string]any{}, nil
}
