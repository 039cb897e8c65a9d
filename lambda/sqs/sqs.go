// Package sqs is the SQS event source of `cutover lambda serve`: it feeds
// a Lambda function from an Amazon SQS queue as Lambda's SQS event source
// mapping does, so a function moved to Kubernetes receives the same
// events and its answers have the same effect.
//
// Pollers (serve's --concurrency of them) each long-poll the queue
// (ReceiveMessage with WaitTimeSeconds 20, at most 10 messages a call, all
// system and message attributes), gather a batch of up to --batch-size
// messages within --batch-window and the 6 MB invocation payload, and
// invoke the function with Lambda's SQS event. While a batch is held, its
// messages' visibility timeout is extended before it runs out
// (ChangeMessageVisibilityBatch), so a slow batch is not delivered twice.
// Then:
//
//   - the function succeeded: every message is deleted (DeleteMessageBatch);
//     with --report-batch-item-failures only those it did not list in
//     {"batchItemFailures":[{"itemIdentifier": messageId}]}, by Lambda's
//     rules for that answer (ParseBatchResponse);
//   - the function failed (an error, a crash, a timeout): nothing is
//     deleted; the messages return to the queue when their visibility
//     timeout ends, and the queue's redrive policy moves them to its
//     dead-letter queue after maxReceiveCount receives, as with Lambda;
//   - serve is stopping: a batch not yet handed to the function is
//     released at once (visibility 0); one the function runs finishes and
//     is deleted as usual.
//
// FIFO queues work as with Lambda: at most 10 messages a batch, no window;
// SQS keeps a message group in order by holding back its later messages
// while one is in flight, so pollers never run one group's messages out of
// order. With --report-batch-item-failures the function decides, as Lambda
// documents: it should report the first failed message of a group and all
// after it.
//
// Delivery is at least once, as with Lambda: a message whose delete or
// visibility extension failed can come again.
package sqs

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cutoverhq/cutover/lambda"
)

// Limits of Lambda's SQS event source mapping.
const (
	// MaxBatchSize is the largest batch of a standard queue.
	MaxBatchSize = 10000
	// MaxBatchWindow is the longest batching window.
	MaxBatchWindow = 300 * time.Second
	// MaxPayload is the largest event of a synchronous invocation (6 MB).
	MaxPayload = 6 * 1024 * 1024
	// receiveMax is the most messages one ReceiveMessage returns.
	receiveMax = 10
	// longPoll is the WaitTimeSeconds of a receive with nothing held.
	longPoll = 20
	// maxInFlight is how long SQS lets a message stay in flight after a
	// receive: visibility cannot be extended past it.
	maxInFlight = 12 * time.Hour
)

// API is the part of the SQS client the source uses; *awssqs.Client
// implements it.
type API interface {
	ReceiveMessage(context.Context, *awssqs.ReceiveMessageInput, ...func(*awssqs.Options)) (*awssqs.ReceiveMessageOutput, error)
	DeleteMessageBatch(context.Context, *awssqs.DeleteMessageBatchInput, ...func(*awssqs.Options)) (*awssqs.DeleteMessageBatchOutput, error)
	ChangeMessageVisibilityBatch(context.Context, *awssqs.ChangeMessageVisibilityBatchInput, ...func(*awssqs.Options)) (*awssqs.ChangeMessageVisibilityBatchOutput, error)
	GetQueueAttributes(context.Context, *awssqs.GetQueueAttributesInput, ...func(*awssqs.Options)) (*awssqs.GetQueueAttributesOutput, error)
}

var _ API = (*awssqs.Client)(nil)

// Config configures a Source.
type Config struct {
	// QueueURL is the queue to consume. Required.
	QueueURL string
	// Region is the queue's region, for the event's awsRegion and the
	// client. Empty: taken from the queue URL's host
	// (sqs.<region>.amazonaws.com), else from the SDK's configuration
	// (AWS_REGION).
	Region string
	// EndpointURL is the SQS endpoint. Empty: the SDK's (AWS, or
	// AWS_ENDPOINT_URL_SQS); set it for a local endpoint.
	EndpointURL string
	// BatchSize is the most messages in one invocation, 1 to 10000; more
	// than 10 needs a BatchWindow, as in Lambda. Zero: 10, Lambda's
	// default.
	BatchSize int
	// BatchWindow is how long a batch gathers messages after its first
	// one before it is invoked short of BatchSize, up to 300 s. Zero: a
	// batch is what one receive returns.
	BatchWindow time.Duration
	// VisibilityTimeout is the visibility timeout the source receives
	// with and extends by, in whole seconds. Zero: the queue's own.
	VisibilityTimeout time.Duration
	// ReportBatchItemFailures makes the function's batchItemFailures
	// answer count. False: any successful answer deletes the whole batch.
	ReportBatchItemFailures bool
	// Pollers is how many batches run at once. Zero: 1.
	Pollers int
	// Client is the SQS client. Nil: one from the SDK's default
	// configuration (credentials from the environment, IRSA or the pod
	// identity agent) with Region and EndpointURL.
	Client API
	// Log receives the source's records. Nil: discarded.
	Log *slog.Logger
	// Registerer receives the source's metrics. Nil: none.
	Registerer prometheus.Registerer
}

// Source is the SQS event source.
type Source struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics

	// Known after start.
	client     API
	fifo       bool
	arn        string
	region     string
	visibility int32 // seconds
}

var _ lambda.Source = (*Source)(nil)

// New checks cfg; it does no I/O.
func New(cfg Config) (*Source, error) {
	if cfg.QueueURL == "" {
		return nil, errors.New("a queue URL is required (--queue-url)")
	}
	u, err := url.Parse(cfg.QueueURL)
	if err != nil || u.Host == "" || len(strings.Split(strings.Trim(u.Path, "/"), "/")) != 2 {
		return nil, fmt.Errorf("queue URL %q is not https://<host>/<account>/<queue>", cfg.QueueURL)
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = 10
	}
	if cfg.BatchSize < 1 || cfg.BatchSize > MaxBatchSize {
		return nil, fmt.Errorf("batch size %d is outside 1–%d", cfg.BatchSize, MaxBatchSize)
	}
	if cfg.BatchWindow < 0 || cfg.BatchWindow > MaxBatchWindow {
		return nil, fmt.Errorf("batch window %v is outside 0–%v", cfg.BatchWindow, MaxBatchWindow)
	}
	if cfg.BatchSize > receiveMax && cfg.BatchWindow < time.Second {
		return nil, fmt.Errorf("a batch size over %d needs a batch window of at least 1s, as Lambda requires: one receive returns at most %d messages", receiveMax, receiveMax)
	}
	if strings.HasSuffix(u.Path, ".fifo") && (cfg.BatchSize > receiveMax || cfg.BatchWindow > 0) {
		return nil, fmt.Errorf("a FIFO queue takes a batch size of at most %d and no batch window, as in Lambda", receiveMax)
	}
	if cfg.VisibilityTimeout < 0 || cfg.VisibilityTimeout > 12*time.Hour || cfg.VisibilityTimeout%time.Second != 0 {
		return nil, fmt.Errorf("visibility timeout %v is not whole seconds within 0–12h", cfg.VisibilityTimeout)
	}
	if cfg.Pollers <= 0 {
		cfg.Pollers = 1
	}
	if cfg.Region == "" {
		cfg.Region = regionOf(u.Host)
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	s := &Source{cfg: cfg, log: cfg.Log.With("source", "sqs", "queue", cfg.QueueURL), fifo: strings.HasSuffix(u.Path, ".fifo")}
	s.metrics = newMetrics(cfg.Registerer, queueName(cfg.QueueURL), s.log)
	return s, nil
}

// regionOf reads the region from an SQS host: sqs.<region>.amazonaws.com
// (and .com.cn), or the legacy <region>.queue.amazonaws.com.
func regionOf(host string) string {
	parts := strings.Split(host, ".")
	switch {
	case len(parts) >= 4 && parts[0] == "sqs" && parts[2] == "amazonaws":
		return parts[1]
	case len(parts) >= 4 && parts[1] == "queue" && parts[2] == "amazonaws":
		return parts[0]
	}
	return ""
}

func queueName(queueURL string) string {
	i := strings.LastIndex(queueURL, "/")
	return queueURL[i+1:]
}

// queueARN derives the ARN from the URL, for when GetQueueAttributes did
// not say.
func (s *Source) queueARN() string {
	u, _ := url.Parse(s.cfg.QueueURL)
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	partition := "aws"
	if strings.HasPrefix(s.region, "cn-") {
		partition = "aws-cn"
	} else if strings.HasPrefix(s.region, "us-gov-") {
		partition = "aws-us-gov"
	}
	return fmt.Sprintf("arn:%s:sqs:%s:%s:%s", partition, s.region, parts[0], parts[1])
}

// start builds the client and reads the queue's ARN and visibility
// timeout, which also proves the queue is there and readable.
func (s *Source) start(ctx context.Context) error {
	s.client = s.cfg.Client
	s.region = s.cfg.Region
	if s.client == nil {
		c, region, err := newClient(ctx, s.cfg.Region, s.cfg.EndpointURL)
		if err != nil {
			return err
		}
		s.client, s.region = c, region
	}
	out, err := s.client.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{
		QueueUrl:       &s.cfg.QueueURL,
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn, types.QueueAttributeNameVisibilityTimeout},
	})
	if err != nil {
		return fmt.Errorf("cannot read queue %s: %w", s.cfg.QueueURL, err)
	}
	s.arn = out.Attributes[string(types.QueueAttributeNameQueueArn)]
	if s.arn == "" {
		s.arn = s.queueARN()
	}
	if s.region == "" {
		if p := strings.Split(s.arn, ":"); len(p) == 6 {
			s.region = p[3]
		}
	}
	if s.cfg.VisibilityTimeout > 0 {
		s.visibility = int32(s.cfg.VisibilityTimeout / time.Second)
	} else {
		n, err := strconv.Atoi(out.Attributes[string(types.QueueAttributeNameVisibilityTimeout)])
		if err != nil {
			return fmt.Errorf("queue %s: visibility timeout %q is not a number", s.cfg.QueueURL, out.Attributes["VisibilityTimeout"])
		}
		s.visibility = int32(n)
	}
	if s.visibility == 0 {
		s.log.Warn("the queue's visibility timeout is 0: a received message is visible to other consumers at once, so batches can be delivered twice; set --visibility-timeout")
	}
	return nil
}

// Run polls until ctx ends, then waits for the batches it started. It
// returns an error when the queue cannot be read at start or disappears.
func (s *Source) Run(ctx context.Context, inv lambda.Invoker) error {
	if err := s.start(ctx); err != nil {
		return err
	}
	s.log.Info("polling", "pollers", s.cfg.Pollers, "batchSize", s.cfg.BatchSize, "batchWindow", s.cfg.BatchWindow.String(),
		"visibilityTimeoutSeconds", s.visibility, "reportBatchItemFailures", s.cfg.ReportBatchItemFailures, "queueArn", s.arn)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for i := range s.cfg.Pollers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := &poller{s: s, n: i, inv: inv}
			if err := p.run(ctx); err != nil {
				cancel(err)
			}
		}()
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// poller runs one batch at a time.
type poller struct {
	s   *Source
	n   int
	inv lambda.Invoker
	h   *holder
	// pending are messages received for a batch that had no room for
	// them (payload limit): they open the next batch.
	pending []Record
}

func (p *poller) run(ctx context.Context) error {
	s := p.s
	p.h = newHolder(s, p.n)
	defer p.h.close()
	delay := time.Duration(0)
	for {
		if ctx.Err() != nil {
			p.release(p.pending)
			return nil
		}
		batch, err := p.collect(ctx)
		if len(batch) > 0 {
			p.process(ctx, batch)
		}
		if err != nil {
			if ctx.Err() != nil {
				continue
			}
			if fatal(err) {
				p.release(p.pending)
				return fmt.Errorf("queue %s: %w", s.cfg.QueueURL, err)
			}
			s.metrics.receiveErrors.Inc()
			delay = min(max(2*delay, time.Second), 30*time.Second)
			d := delay/2 + rand.N(delay/2+1)
			s.log.Warn("cannot receive; retrying", "poller", p.n, "error", err.Error(), "retryIn", d.String())
			sleep(ctx, d)
			continue
		}
		delay = 0
	}
}

// fatal says an error will not go away by retrying: the queue is gone.
// Permission and credential errors are retried, since IAM changes take
// effect without a restart; they are logged every time.
func fatal(err error) bool {
	var nq *types.QueueDoesNotExist
	return errors.As(err, &nq)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// collect gathers one batch: messages from long polls until BatchSize,
// the batch window after the first message, or the payload limit. It
// returns what it has with the error of a receive that failed.
func (p *poller) collect(ctx context.Context) ([]Record, error) {
	s := p.s
	batch, size := p.pending, 0
	p.pending = nil
	for _, r := range batch {
		size += recordSize(r)
	}
	var windowEnd time.Time
	if len(batch) > 0 {
		windowEnd = time.Now().Add(s.cfg.BatchWindow)
	}
	for last := false; len(batch) < s.cfg.BatchSize && !last; {
		wait := int32(longPoll)
		if len(batch) > 0 {
			left := time.Until(windowEnd)
			if s.cfg.BatchWindow == 0 || left <= 0 {
				break
			}
			// WaitTimeSeconds is whole seconds: long-poll the whole
			// seconds left, then wait out the rest and take what came
			// with one short poll, so the window is kept, not
			// overshot.
			wait = int32(min(left/time.Second, longPoll))
			if wait == 0 {
				sleep(ctx, left)
				last = true
			}
		}
		in := &awssqs.ReceiveMessageInput{
			QueueUrl:                    &s.cfg.QueueURL,
			MaxNumberOfMessages:         int32(min(receiveMax, s.cfg.BatchSize-len(batch))),
			WaitTimeSeconds:             wait,
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
			// The older name of the same request, for endpoints that
			// predate MessageSystemAttributeNames (local emulators).
			AttributeNames:        []types.QueueAttributeName{types.QueueAttributeNameAll},
			MessageAttributeNames: []string{"All"},
		}
		if s.cfg.VisibilityTimeout > 0 {
			in.VisibilityTimeout = s.visibility
		}
		if s.fifo {
			// The SDK's retries of this receive reuse the id, so a
			// lost answer does not leave its messages (and their
			// groups) invisible for a visibility timeout.
			in.ReceiveRequestAttemptId = aws.String(newAttemptID())
		}
		received := time.Now()
		out, err := s.client.ReceiveMessage(ctx, in)
		if err != nil {
			return batch, err
		}
		for _, m := range out.Messages {
			r := NewRecord(m, s.arn, s.region)
			p.h.add(r.MessageID, r.ReceiptHandle, received)
			n := recordSize(r)
			if len(batch) > 0 && (size+n+len(`{"Records":[]}`) > MaxPayload || len(p.pending) > 0) {
				p.pending = append(p.pending, r)
				continue
			}
			batch = append(batch, r)
			size += n
		}
		s.metrics.received.Add(float64(len(out.Messages)))
		if len(batch) > 0 && windowEnd.IsZero() {
			windowEnd = received.Add(s.cfg.BatchWindow)
		}
		if len(p.pending) > 0 {
			break
		}
	}
	return batch, nil
}

// process invokes the function with one batch and deletes what it
// handled.
func (p *poller) process(ctx context.Context, batch []Record) {
	s := p.s
	payload, err := Event{Records: batch}.Marshal()
	if err != nil {
		// Only invalid UTF-8 could do this, which SQS does not deliver.
		s.log.Error("cannot encode event; releasing batch", "poller", p.n, "error", err.Error())
		p.release(batch)
		return
	}
	if ctx.Err() != nil {
		// Stopping: take no new work; another consumer gets these now.
		p.release(batch)
		return
	}
	s.metrics.batchSize.Observe(float64(len(batch)))
	var resp lambda.Response
	delay := 100 * time.Millisecond
	for {
		resp, err = p.inv.Invoke(ctx, lambda.Invocation{Payload: payload})
		if !errors.Is(err, lambda.ErrThrottled) || ctx.Err() != nil {
			break
		}
		// No free process: keep the batch (its visibility is being
		// extended) and try again, as Lambda's pollers do.
		s.metrics.throttled.Inc()
		sleep(ctx, delay)
		delay = min(2*delay, 5*time.Second)
	}
	if err != nil {
		// Never handed to the function (stopping, or the runtime
		// refused): let another consumer have the messages now.
		s.log.Warn("batch not invoked; released to the queue", "poller", p.n, "messages", len(batch), "error", err.Error())
		p.release(batch)
		return
	}
	if resp.Err != nil {
		// Nothing deleted: the messages come back when their visibility
		// timeout ends, and redrive is the queue's business.
		s.log.Warn("function failed; the batch returns to the queue after its visibility timeout", "poller", p.n,
			"messages", len(batch), "errorType", resp.Err.Type, "errorMessage", resp.Err.Message)
		p.giveUp(batch)
		s.metrics.messages.WithLabelValues("failed").Add(float64(len(batch)))
		return
	}
	done, failed := batch, []Record(nil)
	if s.cfg.ReportBatchItemFailures {
		ids := make(map[string]bool, len(batch))
		for _, r := range batch {
			ids[r.MessageID] = true
		}
		failedIDs, perr := ParseBatchResponse(resp.Payload, ids)
		if perr != nil {
			s.log.Warn("the function's batch response fails the whole batch; it returns to the queue after its visibility timeout",
				"poller", p.n, "messages", len(batch), "reason", perr.Error())
			p.giveUp(batch)
			s.metrics.messages.WithLabelValues("failed").Add(float64(len(batch)))
			return
		}
		if len(failedIDs) > 0 {
			bad := map[string]bool{}
			for _, id := range failedIDs {
				bad[id] = true
			}
			done = nil
			for _, r := range batch {
				if bad[r.MessageID] {
					failed = append(failed, r)
				} else {
					done = append(done, r)
				}
			}
			s.log.Info("partial batch failure; failed messages return to the queue after their visibility timeout",
				"poller", p.n, "failed", len(failed), "succeeded", len(done), "failedIds", failedIDs)
		}
	}
	p.giveUp(failed)
	s.metrics.messages.WithLabelValues("failed").Add(float64(len(failed)))
	p.delete(done)
}

// giveUp stops extending messages, which come back when their current
// visibility timeout ends.
func (p *poller) giveUp(recs []Record) {
	for _, r := range recs {
		p.h.remove(r.MessageID)
	}
}

// delete deletes handled messages, retrying what SQS failed on its side;
// messages are held (and extended) until their delete is final.
func (p *poller) delete(recs []Record) {
	s := p.s
	// The batch ran: its messages are deleted even when serve is
	// stopping, within a bound of its own.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for len(recs) > 0 {
		chunk := recs[:min(receiveMax, len(recs))]
		recs = recs[len(chunk):]
		todo := chunk
		for attempt := 0; len(todo) > 0; attempt++ {
			entries := make([]types.DeleteMessageBatchRequestEntry, len(todo))
			byID := map[string]Record{}
			for i, r := range todo {
				id := strconv.Itoa(i)
				entries[i] = types.DeleteMessageBatchRequestEntry{Id: aws.String(id), ReceiptHandle: aws.String(r.ReceiptHandle)}
				byID[id] = r
			}
			out, err := s.client.DeleteMessageBatch(ctx, &awssqs.DeleteMessageBatchInput{QueueUrl: &s.cfg.QueueURL, Entries: entries})
			var retry []Record
			switch {
			case err != nil:
				retry = todo
				s.log.Warn("cannot delete messages", "poller", p.n, "messages", len(todo), "attempt", attempt+1, "error", err.Error())
			default:
				for _, ok := range out.Successful {
					r := byID[aws.ToString(ok.Id)]
					p.h.remove(r.MessageID)
					s.metrics.messages.WithLabelValues("deleted").Inc()
				}
				for _, f := range out.Failed {
					r := byID[aws.ToString(f.Id)]
					if !f.SenderFault {
						retry = append(retry, r)
						continue
					}
					// The handle is no good any more (it expired):
					// the message will be delivered again.
					p.h.remove(r.MessageID)
					s.metrics.messages.WithLabelValues("undeleted").Inc()
					s.log.Error("message handled but not deleted; it will be delivered again", "poller", p.n,
						"messageId", r.MessageID, "code", aws.ToString(f.Code), "reason", aws.ToString(f.Message))
				}
			}
			todo = retry
			if len(todo) > 0 && (attempt == 4 || ctx.Err() != nil) {
				for _, r := range todo {
					p.h.remove(r.MessageID)
					s.metrics.messages.WithLabelValues("undeleted").Inc()
					s.log.Error("message handled but not deleted; it will be delivered again", "poller", p.n, "messageId", r.MessageID)
				}
				break
			}
			if len(todo) > 0 {
				sleep(ctx, time.Duration(attempt+1)*200*time.Millisecond)
			}
		}
	}
}

func newAttemptID() string {
	var b [16]byte
	crand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// release makes messages visible again at once, for another consumer.
func (p *poller) release(recs []Record) {
	if len(recs) == 0 {
		return
	}
	s := p.s
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for len(recs) > 0 {
		chunk := recs[:min(receiveMax, len(recs))]
		recs = recs[len(chunk):]
		entries := make([]types.ChangeMessageVisibilityBatchRequestEntry, len(chunk))
		for i, r := range chunk {
			p.h.remove(r.MessageID)
			entries[i] = types.ChangeMessageVisibilityBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(r.ReceiptHandle), VisibilityTimeout: 0}
		}
		if _, err := s.client.ChangeMessageVisibilityBatch(ctx, &awssqs.ChangeMessageVisibilityBatchInput{QueueUrl: &s.cfg.QueueURL, Entries: entries}); err != nil {
			s.log.Warn("cannot release messages; they return after their visibility timeout", "poller", p.n, "messages", len(chunk), "error", err.Error())
		}
		s.metrics.messages.WithLabelValues("released").Add(float64(len(chunk)))
	}
}

// holder keeps a poller's held messages invisible: it extends each one's
// visibility timeout when half of it is left.
type holder struct {
	s    *Source
	n    int
	mu   sync.Mutex
	msgs map[string]*held // by message id
	stop chan struct{}
	done chan struct{}
}

type held struct {
	handle   string
	received time.Time
	expires  time.Time // when it turns visible unless extended
}

func newHolder(s *Source, n int) *holder {
	h := &holder{s: s, n: n, msgs: map[string]*held{}, stop: make(chan struct{}), done: make(chan struct{})}
	go h.loop()
	return h
}

func (h *holder) add(id, handle string, received time.Time) {
	h.mu.Lock()
	h.msgs[id] = &held{handle: handle, received: received, expires: received.Add(time.Duration(h.s.visibility) * time.Second)}
	h.mu.Unlock()
}

func (h *holder) remove(id string) {
	h.mu.Lock()
	delete(h.msgs, id)
	h.mu.Unlock()
}

func (h *holder) close() {
	close(h.stop)
	<-h.done
}

func (h *holder) loop() {
	defer close(h.done)
	vis := time.Duration(h.s.visibility) * time.Second
	if vis == 0 {
		return
	}
	tick := min(max(vis/4, 100*time.Millisecond), 5*time.Second)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
			h.extend(vis)
		}
	}
}

// extend extends every held message with half its visibility or less
// left.
func (h *holder) extend(vis time.Duration) {
	now := time.Now()
	type due struct {
		id string
		m  *held
	}
	var list []due
	h.mu.Lock()
	for id, m := range h.msgs {
		if m.expires.Sub(now) > vis/2 {
			continue
		}
		if now.Add(vis).Sub(m.received) > maxInFlight {
			// SQS refuses to keep a message in flight longer.
			continue
		}
		list = append(list, due{id, m})
	}
	h.mu.Unlock()
	s := h.s
	ctx, cancel := context.WithTimeout(context.Background(), max(vis/2, 2*time.Second))
	defer cancel()
	for len(list) > 0 {
		chunk := list[:min(receiveMax, len(list))]
		list = list[len(chunk):]
		entries := make([]types.ChangeMessageVisibilityBatchRequestEntry, len(chunk))
		for i, d := range chunk {
			entries[i] = types.ChangeMessageVisibilityBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(d.m.handle), VisibilityTimeout: s.visibility}
		}
		start := time.Now()
		out, err := s.client.ChangeMessageVisibilityBatch(ctx, &awssqs.ChangeMessageVisibilityBatchInput{QueueUrl: &s.cfg.QueueURL, Entries: entries})
		if err != nil {
			s.log.Warn("cannot extend visibility; will try again", "poller", h.n, "messages", len(chunk), "error", err.Error())
			continue
		}
		h.mu.Lock()
		for _, ok := range out.Successful {
			i, _ := strconv.Atoi(aws.ToString(ok.Id))
			if i >= 0 && i < len(chunk) {
				chunk[i].m.expires = start.Add(vis)
			}
		}
		h.mu.Unlock()
		s.metrics.extensions.Add(float64(len(out.Successful)))
		for _, f := range out.Failed {
			i, _ := strconv.Atoi(aws.ToString(f.Id))
			if i < 0 || i >= len(chunk) {
				continue
			}
			if f.SenderFault {
				s.log.Warn("visibility extension refused; the message may be delivered again", "poller", h.n,
					"messageId", chunk[i].id, "code", aws.ToString(f.Code), "reason", aws.ToString(f.Message))
				h.remove(chunk[i].id)
			}
		}
	}
}
