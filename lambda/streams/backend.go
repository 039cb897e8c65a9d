package streams

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	dtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
)

// KinesisAPI is the part of the Kinesis client the source uses;
// *kinesis.Client implements it.
type KinesisAPI interface {
	ListShards(context.Context, *kinesis.ListShardsInput, ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
	GetShardIterator(context.Context, *kinesis.GetShardIteratorInput, ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error)
	GetRecords(context.Context, *kinesis.GetRecordsInput, ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error)
}

// DynamoDBStreamsAPI is the part of the DynamoDB Streams client the source
// uses; *dynamodbstreams.Client implements it.
type DynamoDBStreamsAPI interface {
	DescribeStream(context.Context, *dynamodbstreams.DescribeStreamInput, ...func(*dynamodbstreams.Options)) (*dynamodbstreams.DescribeStreamOutput, error)
	GetShardIterator(context.Context, *dynamodbstreams.GetShardIteratorInput, ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetShardIteratorOutput, error)
	GetRecords(context.Context, *dynamodbstreams.GetRecordsInput, ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetRecordsOutput, error)
}

var (
	_ KinesisAPI         = (*kinesis.Client)(nil)
	_ DynamoDBStreamsAPI = (*dynamodbstreams.Client)(nil)
)

// shardInfo is a shard as the stream lists it.
type shardInfo struct {
	id      string
	parents []string
	closed  bool
}

// position is where a shard iterator starts.
type position struct {
	typ string // TRIM_HORIZON, LATEST, AT_TIMESTAMP, AFTER_SEQUENCE_NUMBER
	seq string
	at  time.Time
}

func (p position) String() string {
	switch p.typ {
	case "AFTER_SEQUENCE_NUMBER":
		return p.typ + " " + p.seq
	case StartAtTimestamp:
		return p.typ + " " + p.at.UTC().Format(time.RFC3339Nano)
	}
	return p.typ
}

// rec is one record read from a shard, encoded as it goes into the event.
type rec struct {
	seq string
	// at is the record's approximate arrival (Kinesis) or creation
	// (DynamoDB) time, for --max-record-age and the iterator age.
	at   time.Time
	json []byte
}

// fetched is what one GetRecords returned.
type fetched struct {
	recs []rec
	// next is the next iterator; empty when the shard is closed and
	// read to its end.
	next string
	// behind is how far the response is from the tip; -1: unknown.
	behind time.Duration
}

// backend is what differs between Kinesis and DynamoDB Streams.
type backend interface {
	shards(ctx context.Context) ([]shardInfo, error)
	iterator(ctx context.Context, shard string, p position) (string, error)
	records(ctx context.Context, shard, iterator string) (fetched, error)
	// limit is the most records one GetRecords returns.
	limit() int
}

// Error codes the source acts on.
const (
	codeExpired   = "ExpiredIteratorException"
	codeTrimmed   = "TrimmedDataAccessException"
	codeNotFound  = "ResourceNotFoundException"
	codeThrottled = "ProvisionedThroughputExceededException"
	codeLimit     = "LimitExceededException"
)

func errCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// fatal says an error at start is the user's to fix: retrying does not
// cure it.
func fatal(err error) bool {
	switch errCode(err) {
	case codeNotFound, "AccessDeniedException", "UnrecognizedClientException", "InvalidSignatureException",
		"ValidationException", "InvalidArgumentException", "KMSAccessDeniedException", "KMSNotFoundException", "KMSDisabledException":
		return true
	}
	return false
}

// loadAWS reads the SDK's default configuration: credentials from the
// environment, a web identity token (IRSA), the pod identity agent or the
// instance.
func loadAWS(ctx context.Context, region string) (aws.Config, error) {
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(region))
	if err != nil {
		return cfg, fmt.Errorf("cannot load AWS configuration: %w", err)
	}
	return cfg, nil
}

type kinesisBackend struct {
	api      KinesisAPI
	arn      string
	region   string
	identity string
}

func (b *kinesisBackend) limit() int { return 10000 }

func (b *kinesisBackend) shards(ctx context.Context) ([]shardInfo, error) {
	var out []shardInfo
	in := &kinesis.ListShardsInput{StreamARN: &b.arn}
	for {
		page, err := b.api.ListShards(ctx, in)
		if err != nil {
			return nil, err
		}
		for _, s := range page.Shards {
			si := shardInfo{id: deref(s.ShardId)}
			for _, p := range []*string{s.ParentShardId, s.AdjacentParentShardId} {
				if p != nil && *p != "" {
					si.parents = append(si.parents, *p)
				}
			}
			si.closed = s.SequenceNumberRange != nil && s.SequenceNumberRange.EndingSequenceNumber != nil
			out = append(out, si)
		}
		if page.NextToken == nil || *page.NextToken == "" {
			return out, nil
		}
		// A NextToken goes alone: the API refuses it with the stream.
		in = &kinesis.ListShardsInput{NextToken: page.NextToken}
	}
}

func (b *kinesisBackend) iterator(ctx context.Context, shard string, p position) (string, error) {
	in := &kinesis.GetShardIteratorInput{StreamARN: &b.arn, ShardId: &shard, ShardIteratorType: ktypes.ShardIteratorType(p.typ)}
	switch p.typ {
	case "AFTER_SEQUENCE_NUMBER":
		in.StartingSequenceNumber = &p.seq
	case StartAtTimestamp:
		in.Timestamp = &p.at
	}
	out, err := b.api.GetShardIterator(ctx, in)
	if err != nil {
		return "", err
	}
	return deref(out.ShardIterator), nil
}

func (b *kinesisBackend) records(ctx context.Context, shard, it string) (fetched, error) {
	out, err := b.api.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: &it, StreamARN: &b.arn})
	if err != nil {
		return fetched{}, err
	}
	f := fetched{next: deref(out.NextShardIterator), behind: -1}
	if out.MillisBehindLatest != nil {
		f.behind = time.Duration(*out.MillisBehindLatest) * time.Millisecond
	}
	for _, r := range out.Records {
		kr := NewKinesisRecord(r, shard, b.arn, b.region, b.identity)
		j, err := marshal(kr)
		if err != nil {
			return fetched{}, err
		}
		f.recs = append(f.recs, rec{seq: kr.Kinesis.SequenceNumber, at: time.Time(kr.Kinesis.ApproximateArrivalTimestamp), json: j})
	}
	return f, nil
}

type dynamodbBackend struct {
	api DynamoDBStreamsAPI
	arn string
}

func (b *dynamodbBackend) limit() int { return 1000 }

func (b *dynamodbBackend) shards(ctx context.Context) ([]shardInfo, error) {
	var out []shardInfo
	in := &dynamodbstreams.DescribeStreamInput{StreamArn: &b.arn}
	for {
		page, err := b.api.DescribeStream(ctx, in)
		if err != nil {
			return nil, err
		}
		if page.StreamDescription == nil {
			return nil, fmt.Errorf("DescribeStream returned no description of %s", b.arn)
		}
		for _, s := range page.StreamDescription.Shards {
			si := shardInfo{id: deref(s.ShardId)}
			if s.ParentShardId != nil && *s.ParentShardId != "" {
				si.parents = []string{*s.ParentShardId}
			}
			si.closed = s.SequenceNumberRange != nil && s.SequenceNumberRange.EndingSequenceNumber != nil
			out = append(out, si)
		}
		last := page.StreamDescription.LastEvaluatedShardId
		if last == nil || *last == "" {
			return out, nil
		}
		in = &dynamodbstreams.DescribeStreamInput{StreamArn: &b.arn, ExclusiveStartShardId: last}
	}
}

func (b *dynamodbBackend) iterator(ctx context.Context, shard string, p position) (string, error) {
	in := &dynamodbstreams.GetShardIteratorInput{StreamArn: &b.arn, ShardId: &shard, ShardIteratorType: dtypes.ShardIteratorType(p.typ)}
	if p.typ == "AFTER_SEQUENCE_NUMBER" {
		in.SequenceNumber = &p.seq
	}
	out, err := b.api.GetShardIterator(ctx, in)
	if err != nil {
		return "", err
	}
	return deref(out.ShardIterator), nil
}

func (b *dynamodbBackend) records(ctx context.Context, _, it string) (fetched, error) {
	out, err := b.api.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: &it})
	if err != nil {
		return fetched{}, err
	}
	f := fetched{next: deref(out.NextShardIterator), behind: -1}
	for _, r := range out.Records {
		dr, err := NewDynamoDBRecord(r, b.arn)
		if err != nil {
			return fetched{}, fmt.Errorf("record %s: %w", dr.DynamoDB.SequenceNumber, err)
		}
		j, err := marshal(dr)
		if err != nil {
			return fetched{}, err
		}
		var at time.Time
		if r.Dynamodb != nil && r.Dynamodb.ApproximateCreationDateTime != nil {
			at = *r.Dynamodb.ApproximateCreationDateTime
		}
		f.recs = append(f.recs, rec{seq: dr.DynamoDB.SequenceNumber, at: at, json: j})
	}
	return f, nil
}
