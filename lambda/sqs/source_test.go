package sqs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/cutoverhq/cutover/internal/awsstub"
	"github.com/cutoverhq/cutover/internal/sqsstub"
	"github.com/cutoverhq/cutover/lambda"
	"github.com/cutoverhq/cutover/lambda/internal/lambdatest"
)

// Protocol tests: the source drives the real AWS SDK against
// internal/sqsstub, an SQS endpoint in process with real visibility
// semantics. AWS itself cannot be reached from here. The function is a
// handler in process (handlerInvoker) with aws-lambda-go's event types;
// runtime_test.go runs a real function process under the real runtime.

// handlerInvoker runs a Go handler in process as an Invoker.
type handlerInvoker struct {
	handler func(context.Context, events.SQSEvent) (events.SQSEventResponse, error)

	mu       sync.Mutex
	batches  [][]events.SQSMessage
	inFlight int
	maxPar   int
}

func (h *handlerInvoker) Invoke(ctx context.Context, inv lambda.Invocation) (lambda.Response, error) {
	var ev events.SQSEvent
	if err := json.Unmarshal(inv.Payload, &ev); err != nil {
		return lambda.Response{}, fmt.Errorf("event is not an SQSEvent: %w", err)
	}
	h.mu.Lock()
	h.batches = append(h.batches, ev.Records)
	h.inFlight++
	h.maxPar = max(h.maxPar, h.inFlight)
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		h.inFlight--
		h.mu.Unlock()
	}()
	resp, err := h.handler(ctx, ev)
	if err != nil {
		return lambda.Response{Err: &lambda.FunctionError{Type: "errorString", Message: err.Error()}}, nil
	}
	b, _ := json.Marshal(resp)
	return lambda.Response{Payload: b}, nil
}

func (h *handlerInvoker) seen() [][]events.SQSMessage {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([][]events.SQSMessage(nil), h.batches...)
}

type fixture struct {
	stub   *sqsstub.Server
	client *awssqs.Client
	url    string
}

func newFixture(t *testing.T, attrs map[string]string) *fixture {
	t.Helper()
	stub := sqsstub.New()
	t.Cleanup(stub.Close)
	url, err := stub.CreateQueue("orders", attrs)
	if err != nil {
		t.Fatal(err)
	}
	c := awssqs.New(awssqs.Options{Region: stub.Region, BaseEndpoint: aws.String(stub.URL),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDSTUB", "stub-secret", "")})
	return &fixture{stub: stub, client: c, url: url}
}

func (f *fixture) send(t *testing.T, bodies ...string) []string {
	t.Helper()
	var ids []string
	for len(bodies) > 0 {
		chunk := bodies[:min(10, len(bodies))]
		bodies = bodies[len(chunk):]
		var entries []types.SendMessageBatchRequestEntry
		for i, b := range chunk {
			entries = append(entries, types.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(b),
				MessageAttributes: map[string]types.MessageAttributeValue{"n": {DataType: aws.String("Number"), StringValue: aws.String(strconv.Itoa(i))}}})
		}
		out, err := f.client.SendMessageBatch(context.Background(), &awssqs.SendMessageBatchInput{QueueUrl: &f.url, Entries: entries})
		if err != nil || len(out.Failed) > 0 {
			t.Fatalf("send: %v %+v", err, out)
		}
		for _, s := range out.Successful {
			ids = append(ids, *s.MessageId)
		}
	}
	return ids
}

// run starts the source; the returned stop cancels it and returns Run's
// error.
func (f *fixture) run(t *testing.T, cfg Config, inv lambda.Invoker) (stop func() error) {
	t.Helper()
	cfg.QueueURL = f.url
	cfg.Client = f.client
	src, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return lambdatest.Run(t, src, inv)
}

func (f *fixture) deleted() int {
	n := 0
	for _, m := range f.stub.Messages("orders") {
		if m.Deleted {
			n++
		}
	}
	return n
}

func ok(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
	return events.SQSEventResponse{}, nil
}

func TestProtocolAllDeletedOnSuccess(t *testing.T) {
	f := newFixture(t, nil)
	var bodies []string
	for i := range 25 {
		bodies = append(bodies, fmt.Sprintf("order-%d", i))
	}
	f.send(t, bodies...)
	h := &handlerInvoker{handler: ok}
	stop := f.run(t, Config{}, h)
	lambdatest.WaitFor(t, "25 deletes", 10*time.Second, func() bool { return f.deleted() == 25 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, b := range h.seen() {
		if len(b) > 10 {
			t.Errorf("batch of %d over the default batch size 10", len(b))
		}
		for _, r := range b {
			seen[r.Body]++
			if r.EventSource != "aws:sqs" || r.EventSourceARN != f.stub.QueueARN("orders") || r.AWSRegion != "us-east-1" {
				t.Errorf("record source fields %q %q %q", r.EventSource, r.EventSourceARN, r.AWSRegion)
			}
			for _, k := range []string{"ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp"} {
				if r.Attributes[k] == "" {
					t.Errorf("attribute %s missing", k)
				}
			}
			if r.MessageAttributes["n"].DataType != "Number" || r.Md5OfMessageAttributes == "" || r.Md5OfBody == "" {
				t.Errorf("message attributes %+v md5 %q", r.MessageAttributes, r.Md5OfMessageAttributes)
			}
		}
	}
	for _, b := range bodies {
		if seen[b] != 1 {
			t.Errorf("%s invoked %d times", b, seen[b])
		}
	}
	if f.stub.Calls("ChangeMessageVisibilityBatch") != 0 {
		t.Errorf("fast batches had their visibility changed")
	}
}

func TestProtocolPartialBatchFailure(t *testing.T) {
	f := newFixture(t, map[string]string{"VisibilityTimeout": "30"})
	f.send(t, "ok-1", "fail-1", "ok-2", "fail-2", "ok-3")
	var mu sync.Mutex
	receives := map[string][]string{} // body → ApproximateReceiveCount of each delivery
	h := &handlerInvoker{handler: func(_ context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		var resp events.SQSEventResponse
		mu.Lock()
		defer mu.Unlock()
		for _, r := range ev.Records {
			receives[r.Body] = append(receives[r.Body], r.Attributes["ApproximateReceiveCount"])
			if strings.HasPrefix(r.Body, "fail") && len(receives[r.Body]) == 1 {
				resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: r.MessageId})
			}
		}
		return resp, nil
	}}
	f.run(t, Config{ReportBatchItemFailures: true}, h)
	lambdatest.WaitFor(t, "the three good messages deleted", 10*time.Second, func() bool { return f.deleted() == 3 })
	for _, m := range f.stub.Messages("orders") {
		if strings.HasPrefix(m.Body, "ok") != m.Deleted {
			t.Errorf("%s deleted=%v after the first batch", m.Body, m.Deleted)
		}
	}
	if n := f.stub.Calls("ChangeMessageVisibilityBatch"); n != 0 {
		t.Errorf("visibility changed %d times: failed messages must wait out their timeout", n)
	}
	// The failed ones come back after their visibility timeout.
	f.stub.Advance(31 * time.Second)
	lambdatest.WaitFor(t, "the failed messages handled on their second delivery", 10*time.Second, func() bool { return f.deleted() == 5 })
	mu.Lock()
	defer mu.Unlock()
	for body, counts := range receives {
		want := []string{"1"}
		if strings.HasPrefix(body, "fail") {
			want = []string{"1", "2"}
		}
		if strings.Join(counts, ",") != strings.Join(want, ",") {
			t.Errorf("%s delivered with ApproximateReceiveCount %v, want %v", body, counts, want)
		}
	}
}

func TestProtocolPartialFailureIgnoredWithoutFlag(t *testing.T) {
	f := newFixture(t, nil)
	f.send(t, "a", "b")
	h := &handlerInvoker{handler: func(_ context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		return events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{{ItemIdentifier: ev.Records[0].MessageId}}}, nil
	}}
	f.run(t, Config{}, h)
	lambdatest.WaitFor(t, "both deleted", 10*time.Second, func() bool { return f.deleted() == 2 })
}

func TestProtocolInvalidBatchResponseFailsWholeBatch(t *testing.T) {
	f := newFixture(t, map[string]string{"VisibilityTimeout": "30"})
	f.send(t, "a", "b", "c")
	h := &handlerInvoker{handler: func(_ context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		return events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{{ItemIdentifier: "not-a-message-id"}}}, nil
	}}
	f.run(t, Config{ReportBatchItemFailures: true}, h)
	lambdatest.WaitFor(t, "one invocation", 10*time.Second, func() bool { return len(h.seen()) >= 1 })
	time.Sleep(300 * time.Millisecond)
	if n := f.deleted(); n != 0 || f.stub.Calls("DeleteMessageBatch") != 0 {
		t.Fatalf("%d deleted after an answer naming no message of the batch", n)
	}
}

func TestProtocolFunctionErrorDeletesNothing(t *testing.T) {
	f := newFixture(t, map[string]string{"VisibilityTimeout": "30"})
	f.send(t, "boom")
	var calls int
	var mu sync.Mutex
	h := &handlerInvoker{handler: func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls == 1 {
			return events.SQSEventResponse{}, errors.New("database unavailable")
		}
		return events.SQSEventResponse{}, nil
	}}
	f.run(t, Config{ReportBatchItemFailures: true}, h)
	lambdatest.WaitFor(t, "the failing invocation", 10*time.Second, func() bool { return len(h.seen()) == 1 })
	time.Sleep(300 * time.Millisecond)
	st := f.stub.Messages("orders")[0]
	if st.Deleted || !st.InFlight || f.stub.Calls("DeleteMessageBatch") != 0 {
		t.Fatalf("after a function error: %+v, %d deletes", st, f.stub.Calls("DeleteMessageBatch"))
	}
	if len(h.seen()) != 1 {
		t.Fatalf("redelivered before the visibility timeout")
	}
	f.stub.Advance(31 * time.Second)
	lambdatest.WaitFor(t, "redelivery and delete", 10*time.Second, func() bool { return f.deleted() == 1 })
	if got := h.seen()[1][0].Attributes["ApproximateReceiveCount"]; got != "2" {
		t.Errorf("second delivery ApproximateReceiveCount = %s", got)
	}
}

// A batch that runs longer than the visibility timeout keeps its messages
// invisible: no second delivery, one receive.
func TestProtocolSlowBatchExtended(t *testing.T) {
	f := newFixture(t, map[string]string{"VisibilityTimeout": "2"})
	f.send(t, "slow-1", "slow-2")
	h := &handlerInvoker{handler: func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		time.Sleep(5 * time.Second)
		return events.SQSEventResponse{}, nil
	}}
	f.run(t, Config{Pollers: 2}, h)
	lambdatest.WaitFor(t, "both deleted", 15*time.Second, func() bool { return f.deleted() == 2 })
	for _, m := range f.stub.Messages("orders") {
		if m.ReceiveCount != 1 {
			t.Errorf("%s received %d times", m.Body, m.ReceiveCount)
		}
	}
	if n := len(h.seen()); n > 2 {
		t.Errorf("%d invocations for 2 messages", n)
	}
	if f.stub.Calls("ChangeMessageVisibilityBatch") == 0 {
		t.Errorf("visibility never extended")
	}
}

func TestProtocolBatchWindowGathers(t *testing.T) {
	f := newFixture(t, nil)
	var bodies []string
	for i := range 25 {
		bodies = append(bodies, strconv.Itoa(i))
	}
	f.send(t, bodies...)
	h := &handlerInvoker{handler: ok}
	f.run(t, Config{BatchSize: 25, BatchWindow: 2 * time.Second}, h)
	lambdatest.WaitFor(t, "all deleted", 10*time.Second, func() bool { return f.deleted() == 25 })
	if b := h.seen(); len(b) != 1 || len(b[0]) != 25 {
		t.Errorf("batches %d, first of %d; want one of 25", len(b), len(b[0]))
	}
}

// With a window, a batch short of its size is invoked when the window
// ends, not held for more.
func TestProtocolBatchWindowEnds(t *testing.T) {
	f := newFixture(t, nil)
	f.send(t, "lonely")
	h := &handlerInvoker{handler: ok}
	start := time.Now()
	f.run(t, Config{BatchSize: 100, BatchWindow: 2 * time.Second}, h)
	lambdatest.WaitFor(t, "deleted", 10*time.Second, func() bool { return f.deleted() == 1 })
	if el := time.Since(start); el < 1500*time.Millisecond || el > 5*time.Second {
		t.Errorf("invoked after %v, want about the 2 s window", el)
	}
}

// Batches stay within Lambda's 6 MB payload: what does not fit opens the
// next batch.
func TestProtocolPayloadLimit(t *testing.T) {
	f := newFixture(t, nil)
	big := strings.Repeat("x", 900*1024)
	var bodies []string
	for i := range 10 {
		bodies = append(bodies, strconv.Itoa(i)+big)
	}
	f.send(t, bodies...)
	h := &handlerInvoker{handler: ok}
	f.run(t, Config{BatchSize: 10}, h)
	lambdatest.WaitFor(t, "all deleted", 10*time.Second, func() bool { return f.deleted() == 10 })
	total := 0
	for _, b := range h.seen() {
		ev, _ := json.Marshal(events.SQSEvent{Records: b})
		if len(ev) > MaxPayload {
			t.Errorf("event of %d bytes over %d", len(ev), MaxPayload)
		}
		total += len(b)
	}
	if total != 10 || len(h.seen()) < 2 {
		t.Errorf("%d messages in %d batches", total, len(h.seen()))
	}
}

func TestProtocolPollersRunInParallel(t *testing.T) {
	f := newFixture(t, nil)
	f.send(t, "1", "2", "3", "4", "5", "6")
	release := make(chan struct{})
	h := &handlerInvoker{handler: func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		<-release
		return events.SQSEventResponse{}, nil
	}}
	f.run(t, Config{BatchSize: 1, Pollers: 3}, h)
	lambdatest.WaitFor(t, "three batches at once", 10*time.Second, func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.inFlight == 3
	})
	close(release)
	lambdatest.WaitFor(t, "all deleted", 10*time.Second, func() bool { return f.deleted() == 6 })
	if h.maxPar != 3 {
		t.Errorf("max parallel batches %d, want 3", h.maxPar)
	}
}

// A delete that fails on SQS's side, beyond the SDK's own retries, is
// retried rather than left to a second delivery.
func TestProtocolDeleteRetried(t *testing.T) {
	f := newFixture(t, nil)
	f.send(t, "once")
	f.stub.FailNext("DeleteMessageBatch", 4)
	h := &handlerInvoker{handler: ok}
	f.run(t, Config{}, h)
	lambdatest.WaitFor(t, "deleted", 15*time.Second, func() bool { return f.deleted() == 1 })
	if n := len(h.seen()); n != 1 {
		t.Errorf("invoked %d times", n)
	}
}

// Stopping while a batch gathers releases its messages at once instead
// of leaving them invisible for a visibility timeout.
func TestProtocolStopReleasesGatheredBatch(t *testing.T) {
	f := newFixture(t, map[string]string{"VisibilityTimeout": "300"})
	f.send(t, "held")
	h := &handlerInvoker{handler: ok}
	stop := f.run(t, Config{BatchSize: 50, BatchWindow: 60 * time.Second}, h)
	lambdatest.WaitFor(t, "the message received", 10*time.Second, func() bool { return f.stub.Messages("orders")[0].ReceiveCount == 1 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	st := f.stub.Messages("orders")[0]
	if st.InFlight || st.Deleted || len(h.seen()) != 0 {
		t.Errorf("after stop: %+v, %d invocations", st, len(h.seen()))
	}
}

// A batch the function is running when serve stops is finished and
// deleted.
func TestProtocolStopFinishesRunningBatch(t *testing.T) {
	f := newFixture(t, nil)
	f.send(t, "running")
	started := make(chan struct{})
	h := &handlerInvoker{handler: func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
		close(started)
		time.Sleep(500 * time.Millisecond)
		return events.SQSEventResponse{}, nil
	}}
	stop := f.run(t, Config{}, h)
	<-started
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if f.deleted() != 1 {
		t.Errorf("the batch running at stop was not deleted")
	}
}

// throttler refuses the first n invocations as a busy runtime does.
type throttler struct {
	lambda.Invoker
	mu sync.Mutex
	n  int
}

func (t *throttler) Invoke(ctx context.Context, inv lambda.Invocation) (lambda.Response, error) {
	t.mu.Lock()
	if t.n > 0 {
		t.n--
		t.mu.Unlock()
		return lambda.Response{}, lambda.ErrThrottled
	}
	t.mu.Unlock()
	return t.Invoker.Invoke(ctx, inv)
}

func TestProtocolThrottledBatchIsKept(t *testing.T) {
	f := newFixture(t, nil)
	f.send(t, "wait for me")
	h := &handlerInvoker{handler: ok}
	f.run(t, Config{}, &throttler{Invoker: h, n: 3})
	lambdatest.WaitFor(t, "deleted", 10*time.Second, func() bool { return f.deleted() == 1 })
	if st := f.stub.Messages("orders")[0]; st.ReceiveCount != 1 {
		t.Errorf("received %d times", st.ReceiveCount)
	}
}

func TestProtocolMissingQueue(t *testing.T) {
	f := newFixture(t, nil)
	src, err := New(Config{QueueURL: f.stub.QueueURL("nope"), Client: f.client})
	if err != nil {
		t.Fatal(err)
	}
	err = src.Run(context.Background(), &handlerInvoker{handler: ok})
	var nq *types.QueueDoesNotExist
	if !errors.As(err, &nq) {
		t.Fatalf("Run = %v, want QueueDoesNotExist", err)
	}
}

// The flags path: region and endpoint from flags, credentials from the
// environment, as in a pod.
func TestProtocolFromFlags(t *testing.T) {
	f := newFixture(t, nil)
	awsstub.FakeEnv(t)
	f.send(t, "via flags")
	awsURL := "https://sqs.eu-west-1.amazonaws.com/" + f.stub.Account + "/orders"
	src, err := lambda.NewSource("sqs", []string{"--queue-url", awsURL, "--endpoint-url", f.stub.URL, "--batch-size", "5", "--visibility-timeout", "60"},
		lambda.SourceOptions{Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	h := &handlerInvoker{handler: ok}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, h) }()
	lambdatest.WaitFor(t, "deleted", 10*time.Second, func() bool { return f.deleted() == 1 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if r := h.seen()[0][0]; r.AWSRegion != "eu-west-1" {
		t.Errorf("awsRegion = %q, want the queue URL's", r.AWSRegion)
	}
}

// A FIFO queue's groups stay in order across parallel pollers, and its
// messages carry their group and sequence number.
func TestProtocolFIFOGroupsInOrder(t *testing.T) {
	stub := sqsstub.New()
	t.Cleanup(stub.Close)
	url, err := stub.CreateQueue("ledger.fifo", map[string]string{"FifoQueue": "true", "ContentBasedDeduplication": "true"})
	if err != nil {
		t.Fatal(err)
	}
	c := awssqs.New(awssqs.Options{Region: stub.Region, BaseEndpoint: aws.String(stub.URL),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDSTUB", "stub-secret", "")})
	for i := range 6 {
		for _, g := range []string{"acct-a", "acct-b"} {
			if _, err := c.SendMessage(context.Background(), &awssqs.SendMessageInput{QueueUrl: &url,
				MessageBody: aws.String(fmt.Sprintf("%s %d", g, i)), MessageGroupId: aws.String(g)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	var mu sync.Mutex
	order := map[string][]string{}
	running := map[string]bool{}
	h := &handlerInvoker{handler: func(_ context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		for _, r := range ev.Records {
			g := r.Attributes["MessageGroupId"]
			if g == "" || r.Attributes["SequenceNumber"] == "" {
				t.Errorf("FIFO attributes missing: %v", r.Attributes)
			}
			mu.Lock()
			if running[g] {
				t.Errorf("two batches of group %s at once", g)
			}
			running[g] = true
			order[g] = append(order[g], r.Body)
			mu.Unlock()
		}
		time.Sleep(20 * time.Millisecond)
		mu.Lock()
		for _, r := range ev.Records {
			running[r.Attributes["MessageGroupId"]] = false
		}
		mu.Unlock()
		return events.SQSEventResponse{}, nil
	}}
	src, err := New(Config{QueueURL: url, Client: c, BatchSize: 1, Pollers: 3})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go src.Run(ctx, h)
	lambdatest.WaitFor(t, "all handled", 15*time.Second, func() bool {
		n := 0
		for _, m := range stub.Messages("ledger.fifo") {
			if m.Deleted {
				n++
			}
		}
		return n == 12
	})
	mu.Lock()
	defer mu.Unlock()
	for _, g := range []string{"acct-a", "acct-b"} {
		var want []string
		for i := range 6 {
			want = append(want, fmt.Sprintf("%s %d", g, i))
		}
		if strings.Join(order[g], ",") != strings.Join(want, ",") {
			t.Errorf("group %s handled %v, want %v", g, order[g], want)
		}
	}
	if _, err := New(Config{QueueURL: url, BatchSize: 20, BatchWindow: time.Second}); err == nil {
		t.Errorf("a FIFO batch of 20 was accepted")
	}
}
