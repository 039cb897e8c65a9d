package sqsstub

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"github.com/cutoverhq/cutover/internal/awsstub"
)

// These are protocol tests: the real AWS SDK for Go v2 against the stub.
// AWS itself cannot be reached from here.

func newClient(s *Server) *sqs.Client {
	return sqs.New(sqs.Options{
		Region:       s.Region,
		BaseEndpoint: aws.String(s.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDSTUB", "stub-secret", ""),
	})
}

func setup(t *testing.T, attrs map[string]string) (*Server, *sqs.Client, string) {
	t.Helper()
	s := New()
	t.Cleanup(s.Close)
	url, err := s.CreateQueue("orders", attrs)
	if err != nil {
		t.Fatal(err)
	}
	return s, newClient(s), url
}

func send(t *testing.T, c *sqs.Client, url, body string) string {
	t.Helper()
	out, err := c.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: &url, MessageBody: &body})
	if err != nil {
		t.Fatal(err)
	}
	return *out.MessageId
}

func receive(t *testing.T, c *sqs.Client, url string, max, wait int32) []types.Message {
	t.Helper()
	out, err := c.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
		QueueUrl: &url, MaxNumberOfMessages: max, WaitTimeSeconds: wait,
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
		MessageAttributeNames:       []string{"All"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.Messages
}

func code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func TestProtocolSendReceiveAttributes(t *testing.T) {
	_, c, url := setup(t, nil)
	ctx := context.Background()
	out, err := c.SendMessage(ctx, &sqs.SendMessageInput{
		QueueUrl: &url, MessageBody: aws.String(`{"order":42}`),
		MessageAttributes: map[string]types.MessageAttributeValue{
			"tenant": {DataType: aws.String("String"), StringValue: aws.String("acme")},
			"amount": {DataType: aws.String("Number"), StringValue: aws.String("12.5")},
			"sig":    {DataType: aws.String("Binary"), BinaryValue: []byte{0, 1, 0xff}},
		},
		MessageSystemAttributes: map[string]types.MessageSystemAttributeValue{
			"AWSTraceHeader": {DataType: aws.String("String"), StringValue: aws.String("Root=1-5759e988-bd862e3fe1be46a994272793")},
		},
	})
	if err != nil {
		t.Fatal(err) // the SDK checks MD5OfMessageBody itself
	}
	// MD5 of the attributes as SQS computes it, for these three.
	if got := aws.ToString(out.MD5OfMessageAttributes); len(got) != 32 {
		t.Errorf("MD5OfMessageAttributes = %q", got)
	}
	msgs := receive(t, c, url, 10, 0)
	if len(msgs) != 1 {
		t.Fatalf("got %d messages", len(msgs))
	}
	m := msgs[0]
	if *m.Body != `{"order":42}` || *m.MessageId != *out.MessageId {
		t.Errorf("message = %+v", m)
	}
	if aws.ToString(m.MD5OfMessageAttributes) != aws.ToString(out.MD5OfMessageAttributes) {
		t.Errorf("receive MD5OfMessageAttributes %q != send's %q", aws.ToString(m.MD5OfMessageAttributes), aws.ToString(out.MD5OfMessageAttributes))
	}
	for _, k := range []string{"ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp", "AWSTraceHeader"} {
		if m.Attributes[k] == "" {
			t.Errorf("attribute %s missing: %v", k, m.Attributes)
		}
	}
	if m.Attributes["ApproximateReceiveCount"] != "1" {
		t.Errorf("ApproximateReceiveCount = %s", m.Attributes["ApproximateReceiveCount"])
	}
	if got := m.MessageAttributes["sig"].BinaryValue; string(got) != "\x00\x01\xff" {
		t.Errorf("binary attribute = %v", got)
	}
	if got := aws.ToString(m.MessageAttributes["amount"].DataType); got != "Number" {
		t.Errorf("amount type = %s", got)
	}
}

// The MD5 of message attributes follows SQS's documented algorithm: these
// digests are the ones SQS returns for the same attributes (the first is
// the example of SQS's developer guide).
func TestAttributesMD5(t *testing.T) {
	str := func(s string) *string { return &s }
	for _, c := range []struct {
		attrs map[string]Attribute
		want  string
	}{
		{map[string]Attribute{"SellerName": {DataType: "String", StringValue: str("Example Store")}}, "cd28f3b68aeee4b2eac9c66f2f694b58"},
		{map[string]Attribute{
			"ordinal":  {DataType: "Number", StringValue: str("1")},
			"category": {DataType: "String", StringValue: str("test")},
		}, "d21ae90c49061e927f57df5f5d72be1f"},
	} {
		if got := attributesMD5(c.attrs); got != c.want {
			t.Errorf("attributesMD5(%v) = %s, want %s", c.attrs, got, c.want)
		}
	}
}

func TestProtocolVisibility(t *testing.T) {
	s, c, url := setup(t, map[string]string{"VisibilityTimeout": "30"})
	ctx := context.Background()
	id := send(t, c, url, "hello")

	first := receive(t, c, url, 10, 0)
	if len(first) != 1 {
		t.Fatalf("first receive got %d", len(first))
	}
	if again := receive(t, c, url, 10, 0); len(again) != 0 {
		t.Fatalf("an in-flight message was received again")
	}
	s.Advance(31 * time.Second)
	second := receive(t, c, url, 10, 0)
	if len(second) != 1 || *second[0].MessageId != id {
		t.Fatalf("message did not come back after its visibility timeout: %v", second)
	}
	if got := second[0].Attributes["ApproximateReceiveCount"]; got != "2" {
		t.Errorf("ApproximateReceiveCount = %s, want 2", got)
	}
	if *second[0].ReceiptHandle == *first[0].ReceiptHandle {
		t.Errorf("a new receive kept the receipt handle")
	}
	if first[0].Attributes["ApproximateFirstReceiveTimestamp"] != second[0].Attributes["ApproximateFirstReceiveTimestamp"] {
		t.Errorf("ApproximateFirstReceiveTimestamp changed")
	}

	// The superseded handle is refused for a delete and a visibility change.
	_, err := c.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: &url, ReceiptHandle: first[0].ReceiptHandle})
	if code(err) != "InvalidParameterValue" || !strings.Contains(err.Error(), "expired") {
		t.Errorf("delete with superseded handle: %v", err)
	}
	_, err = c.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: &url, ReceiptHandle: first[0].ReceiptHandle, VisibilityTimeout: 60})
	if code(err) != "InvalidParameterValue" {
		t.Errorf("visibility change with superseded handle: %v", err)
	}
	// A handle SQS never issued.
	_, err = c.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: &url, ReceiptHandle: aws.String("garbage")})
	var invalid *types.ReceiptHandleIsInvalid
	if !errors.As(err, &invalid) {
		t.Errorf("delete with unknown handle: %v", err)
	}

	// Extending keeps it invisible past the original timeout.
	if _, err := c.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: &url, ReceiptHandle: second[0].ReceiptHandle, VisibilityTimeout: 120}); err != nil {
		t.Fatal(err)
	}
	s.Advance(60 * time.Second)
	if got := receive(t, c, url, 10, 0); len(got) != 0 {
		t.Fatalf("extended message was received again")
	}
	// Beyond 12 hours after the receive is refused.
	_, err = c.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: &url, ReceiptHandle: second[0].ReceiptHandle, VisibilityTimeout: MaxVisibilityTimeout})
	if code(err) != "InvalidParameterValue" || !strings.Contains(err.Error(), "43200") {
		t.Errorf("visibility past 12 h: %v", err)
	}
	if _, err := c.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: &url, ReceiptHandle: second[0].ReceiptHandle}); err != nil {
		t.Fatal(err)
	}
	// Deleting again with the same handle succeeds, as in SQS.
	if _, err := c.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: &url, ReceiptHandle: second[0].ReceiptHandle}); err != nil {
		t.Errorf("second delete: %v", err)
	}
	s.Advance(time.Hour)
	if got := receive(t, c, url, 10, 0); len(got) != 0 {
		t.Fatalf("deleted message came back")
	}
	st := s.Messages("orders")
	if len(st) != 1 || !st[0].Deleted || st[0].ReceiveCount != 2 {
		t.Errorf("state = %+v", st)
	}
}

// An expired handle is refused even when nobody received the message
// since: the stub is as strict as FIFO queues.
func TestProtocolExpiredHandleRefused(t *testing.T) {
	s, c, url := setup(t, map[string]string{"VisibilityTimeout": "5"})
	send(t, c, url, "late")
	m := receive(t, c, url, 1, 0)[0]
	s.Advance(6 * time.Second)
	_, err := c.DeleteMessageBatch(context.Background(), &sqs.DeleteMessageBatchInput{QueueUrl: &url, Entries: []types.DeleteMessageBatchRequestEntry{{Id: aws.String("a"), ReceiptHandle: m.ReceiptHandle}}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ChangeMessageVisibilityBatch(context.Background(), &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: &url, Entries: []types.ChangeMessageVisibilityBatchRequestEntry{{Id: aws.String("a"), ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 30}}})
	if err != nil {
		t.Fatal(err)
	}
	if st := s.Messages("orders"); st[0].Deleted || st[0].InFlight {
		t.Errorf("late delete or visibility change took effect: %+v", st[0])
	}
}

func TestProtocolLongPollReturnsEarly(t *testing.T) {
	_, c, url := setup(t, nil)
	go func() {
		time.Sleep(300 * time.Millisecond)
		send(t, c, url, "wake")
	}()
	start := time.Now()
	msgs := receive(t, c, url, 10, 20)
	if len(msgs) != 1 || time.Since(start) > 5*time.Second {
		t.Fatalf("got %d messages after %v", len(msgs), time.Since(start))
	}
}

func TestProtocolLongPollWaits(t *testing.T) {
	_, c, url := setup(t, nil)
	start := time.Now()
	msgs := receive(t, c, url, 10, 1)
	if len(msgs) != 0 || time.Since(start) < 900*time.Millisecond {
		t.Fatalf("empty long poll returned %d after %v", len(msgs), time.Since(start))
	}
}

// A long poll wakes when an in-flight message's visibility ends, not only
// when something is sent.
func TestProtocolLongPollWakesOnVisibilityEnd(t *testing.T) {
	_, c, url := setup(t, map[string]string{"VisibilityTimeout": "1"})
	send(t, c, url, "again")
	receive(t, c, url, 1, 0)
	start := time.Now()
	msgs := receive(t, c, url, 1, 10)
	if len(msgs) != 1 || time.Since(start) > 3*time.Second {
		t.Fatalf("got %d after %v", len(msgs), time.Since(start))
	}
	if msgs[0].Attributes["ApproximateReceiveCount"] != "2" {
		t.Errorf("receive count %s", msgs[0].Attributes["ApproximateReceiveCount"])
	}
}

func TestProtocolVisibilityZeroReleases(t *testing.T) {
	_, c, url := setup(t, nil)
	send(t, c, url, "release")
	m := receive(t, c, url, 1, 0)[0]
	if _, err := c.ChangeMessageVisibility(context.Background(), &sqs.ChangeMessageVisibilityInput{QueueUrl: &url, ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0}); err != nil {
		t.Fatal(err)
	}
	if got := receive(t, c, url, 1, 0); len(got) != 1 {
		t.Fatalf("released message not visible")
	}
}

func TestProtocolBatches(t *testing.T) {
	s, c, url := setup(t, nil)
	ctx := context.Background()
	var entries []types.SendMessageBatchRequestEntry
	for i := range 10 {
		entries = append(entries, types.SendMessageBatchRequestEntry{Id: aws.String(string(rune('a' + i))), MessageBody: aws.String("m" + string(rune('0'+i)))})
	}
	out, err := c.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: &url, Entries: entries})
	if err != nil || len(out.Successful) != 10 {
		t.Fatalf("send batch: %v %+v", err, out)
	}
	msgs := receive(t, c, url, 10, 0)
	if len(msgs) != 10 {
		t.Fatalf("got %d", len(msgs))
	}
	for i, m := range msgs {
		if *m.Body != "m"+string(rune('0'+i)) {
			t.Errorf("message %d body %q: not in send order", i, *m.Body)
		}
	}
	del := []types.DeleteMessageBatchRequestEntry{
		{Id: aws.String("ok"), ReceiptHandle: msgs[0].ReceiptHandle},
		{Id: aws.String("bad"), ReceiptHandle: aws.String("nope")},
	}
	dout, err := c.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: &url, Entries: del})
	if err != nil {
		t.Fatal(err)
	}
	if len(dout.Successful) != 1 || len(dout.Failed) != 1 || aws.ToString(dout.Failed[0].Code) != "ReceiptHandleIsInvalid" || !dout.Failed[0].SenderFault {
		t.Errorf("delete batch = %+v", dout)
	}
	attrs, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: &url, AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameAll}})
	if err != nil {
		t.Fatal(err)
	}
	if attrs.Attributes["ApproximateNumberOfMessagesNotVisible"] != "9" || attrs.Attributes["ApproximateNumberOfMessages"] != "0" {
		t.Errorf("counts = %v", attrs.Attributes)
	}
	if attrs.Attributes["QueueArn"] != s.QueueARN("orders") || attrs.Attributes["VisibilityTimeout"] != "30" {
		t.Errorf("attributes = %v", attrs.Attributes)
	}

	// Batch rules.
	_, err = c.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: &url, Entries: []types.DeleteMessageBatchRequestEntry{
		{Id: aws.String("x"), ReceiptHandle: msgs[1].ReceiptHandle}, {Id: aws.String("x"), ReceiptHandle: msgs[2].ReceiptHandle}}})
	var dup *types.BatchEntryIdsNotDistinct
	if !errors.As(err, &dup) {
		t.Errorf("duplicate ids: %v", err)
	}
	_, err = c.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: &url, Entries: append(entries, types.SendMessageBatchRequestEntry{Id: aws.String("k"), MessageBody: aws.String("x")})})
	var many *types.TooManyEntriesInBatchRequest
	if !errors.As(err, &many) {
		t.Errorf("11 entries: %v", err)
	}
}

func TestProtocolErrors(t *testing.T) {
	_, c, url := setup(t, nil)
	ctx := context.Background()
	_, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(strings.Replace(url, "orders", "missing", 1))})
	var nq *types.QueueDoesNotExist
	if !errors.As(err, &nq) {
		t.Errorf("missing queue: %v", err)
	}
	_, err = c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &url, MaxNumberOfMessages: 11})
	if code(err) != "InvalidParameterValue" {
		t.Errorf("11 messages: %v", err)
	}
	_, err = c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: &url, MessageBody: aws.String("bad \x01 char")})
	var inv *types.InvalidMessageContents
	if !errors.As(err, &inv) {
		t.Errorf("invalid body: %v", err)
	}
	_, err = c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: &url, MessageBody: aws.String("x"),
		MessageAttributes: map[string]types.MessageAttributeValue{"n": {DataType: aws.String("Number")}}})
	if code(err) != "InvalidParameterValue" {
		t.Errorf("attribute without value: %v", err)
	}
}

// An AWS queue URL works against the stub's endpoint, as a converted
// workload's --queue-url does with --endpoint-url.
func TestProtocolAWSQueueURL(t *testing.T) {
	s, c, _ := setup(t, nil)
	aws := "https://sqs.eu-west-1.amazonaws.com/" + s.Account + "/orders"
	send(t, c, aws, "via aws url")
	if got := receive(t, c, aws, 1, 0); len(got) != 1 {
		t.Fatalf("got %d", len(got))
	}
}

func TestProtocolRedrive(t *testing.T) {
	s := New()
	defer s.Close()
	c := newClient(s)
	if _, err := s.CreateQueue("orders-dlq", nil); err != nil {
		t.Fatal(err)
	}
	url, err := s.CreateQueue("orders", map[string]string{
		"VisibilityTimeout": "10",
		"RedrivePolicy":     `{"deadLetterTargetArn":"` + s.QueueARN("orders-dlq") + `","maxReceiveCount":"2"}`,
	})
	if err != nil {
		t.Fatal(err)
	}
	id := send(t, c, url, "poison")
	for range 2 {
		if got := receive(t, c, url, 1, 0); len(got) != 1 {
			t.Fatal("not received")
		}
		s.Advance(11 * time.Second)
	}
	if got := receive(t, c, url, 1, 0); len(got) != 0 {
		t.Fatalf("received a third time despite maxReceiveCount 2")
	}
	dlq := receive(t, c, s.QueueURL("orders-dlq"), 1, 0)
	if len(dlq) != 1 || *dlq[0].MessageId != id {
		t.Fatalf("dead-letter queue has %v", dlq)
	}
}

// Injected 500s are retried by the SDK, as real InternalErrors are.
func TestProtocolFaultInjection(t *testing.T) {
	s, c, url := setup(t, nil)
	s.FailNext("SendMessage", 1)
	send(t, c, url, "retried")
	if s.Calls("SendMessage") != 2 {
		t.Errorf("SendMessage calls = %d, want 2 (one failure, one retry)", s.Calls("SendMessage"))
	}
}

func TestProtocolFIFO(t *testing.T) {
	s := New()
	defer s.Close()
	c := newClient(s)
	ctx := context.Background()
	if _, err := s.CreateQueue("payments.fifo", nil); err == nil {
		t.Errorf("a .fifo queue without FifoQueue=true was created")
	}
	url, err := s.CreateQueue("payments.fifo", map[string]string{"FifoQueue": "true", "VisibilityTimeout": "30"})
	if err != nil {
		t.Fatal(err)
	}
	sendIn := func(group, body, dedup string) *sqs.SendMessageOutput {
		out, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: &url, MessageBody: &body, MessageGroupId: &group, MessageDeduplicationId: &dedup})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	a1 := sendIn("acct-a", "a1", "a1")
	sendIn("acct-a", "a2", "a2")
	sendIn("acct-b", "b1", "b1")
	if dup := sendIn("acct-a", "a1 again", "a1"); *dup.MessageId != *a1.MessageId {
		t.Errorf("duplicate within five minutes got a new id")
	}
	if a1.SequenceNumber == nil {
		t.Errorf("no SequenceNumber")
	}
	_, err = c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: &url, MessageBody: aws.String("x")})
	if code(err) != "MissingParameter" {
		t.Errorf("send without a group: %v", err)
	}

	// One receive may take several of a group, in order.
	first := receive(t, c, url, 1, 0)
	if len(first) != 1 || *first[0].Body != "a1" || first[0].Attributes["MessageGroupId"] != "acct-a" || first[0].Attributes["SequenceNumber"] == "" {
		t.Fatalf("first receive = %v", first)
	}
	// a1 in flight blocks a2; b1 is free.
	next := receive(t, c, url, 10, 0)
	if len(next) != 1 || *next[0].Body != "b1" {
		t.Fatalf("with a1 in flight got %v, want only b1", next)
	}
	if _, err := c.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: &url, ReceiptHandle: first[0].ReceiptHandle}); err != nil {
		t.Fatal(err)
	}
	if got := receive(t, c, url, 10, 0); len(got) != 1 || *got[0].Body != "a2" {
		t.Fatalf("after a1 deleted got %v, want a2", got)
	}
	if st := s.Messages("payments.fifo"); len(st) != 3 {
		t.Errorf("%d messages stored, want 3 (the duplicate is not)", len(st))
	}
}

// TestProtocolRefusesAnotherServicesSignature: a request signed for
// another service fails as it would against AWS; the real SDK's requests
// (every other test) pass.
func TestProtocolRefusesAnotherServicesSignature(t *testing.T) {
	s, _, url := setup(t, nil)
	for _, auth := range []string{
		"",
		"AWS4-HMAC-SHA256 Credential=AKIDSTUB/20261122/" + s.Region + "/kinesis/aws4_request, SignedHeaders=host, Signature=00",
	} {
		status, b := awsstub.Post(t, s.URL, "AmazonSQS.GetQueueAttributes", "application/x-amz-json-1.0", `{"QueueUrl":"`+url+`"}`, auth)
		if status != 400 || !strings.Contains(b, "MissingAuthenticationToken") {
			t.Errorf("Authorization %q: %d %s", auth, status, b)
		}
	}
}

// TestProtocolEmptyBatchNamesItsEntryType: each batch action's empty
// request is refused naming that action's entry type, as SQS does.
func TestProtocolEmptyBatchNamesItsEntryType(t *testing.T) {
	_, c, url := setup(t, nil)
	ctx := context.Background()
	_, e1 := c.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: &url, Entries: []types.SendMessageBatchRequestEntry{}})
	_, e2 := c.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: &url, Entries: []types.DeleteMessageBatchRequestEntry{}})
	_, e3 := c.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: &url, Entries: []types.ChangeMessageVisibilityBatchRequestEntry{}})
	for i, c := range []struct {
		err   error
		entry string
	}{{e1, "SendMessageBatchRequestEntry"}, {e2, "DeleteMessageBatchRequestEntry"}, {e3, "ChangeMessageVisibilityBatchRequestEntry"}} {
		if code(c.err) != "AWS.SimpleQueueService.EmptyBatchRequest" && code(c.err) != "EmptyBatchRequest" || !strings.Contains(c.err.Error(), "at least one "+c.entry+" ") {
			t.Errorf("action %d: %v", i, c.err)
		}
	}
}
