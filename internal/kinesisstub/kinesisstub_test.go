package kinesisstub

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	dtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"

	"github.com/cutoverhq/cutover/internal/awsstub"
)

// These are protocol tests: the real AWS SDK for Go v2 against the stub.
// AWS itself cannot be reached from here.

func clients(s *Server) (*kinesis.Client, *dynamodbstreams.Client) {
	creds := credentials.NewStaticCredentialsProvider("AKIDSTUB", "stub-secret", "")
	k := kinesis.New(kinesis.Options{Region: s.Region, BaseEndpoint: aws.String(s.URL), Credentials: creds,
		// The stub's throttling is what a test looks at, not the SDK's
		// retries of it.
		RetryMaxAttempts: 1})
	d := dynamodbstreams.New(dynamodbstreams.Options{Region: s.Region, BaseEndpoint: aws.String(s.URL), Credentials: creds, RetryMaxAttempts: 1})
	return k, d
}

func code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func iter(t *testing.T, k *kinesis.Client, arn, shard string, typ ktypes.ShardIteratorType, seq string) string {
	t.Helper()
	in := &kinesis.GetShardIteratorInput{StreamARN: &arn, ShardId: &shard, ShardIteratorType: typ}
	if seq != "" {
		in.StartingSequenceNumber = &seq
	}
	out, err := k.GetShardIterator(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	return *out.ShardIterator
}

func TestProtocolKinesisPutAndRead(t *testing.T) {
	s := New()
	defer s.Close()
	s.GetRecordsPerSecond = 0
	k, _ := clients(s)
	ctx := context.Background()
	arn := s.CreateStream("payments", 2)

	var seqs = map[string][]string{}
	for i := range 20 {
		out, err := k.PutRecord(ctx, &kinesis.PutRecordInput{StreamARN: &arn, PartitionKey: aws.String(fmt.Sprintf("card-%d", i%5)), Data: []byte(fmt.Sprintf("auth-%d", i))})
		if err != nil {
			t.Fatal(err)
		}
		seqs[*out.ShardId] = append(seqs[*out.ShardId], *out.SequenceNumber)
		if len(*out.SequenceNumber) != 56 {
			t.Errorf("sequence number %q is not 56 digits", *out.SequenceNumber)
		}
	}
	ls, err := k.ListShards(ctx, &kinesis.ListShardsInput{StreamARN: &arn})
	if err != nil || len(ls.Shards) != 2 {
		t.Fatalf("ListShards = %+v, %v", ls, err)
	}
	total := 0
	for _, sh := range ls.Shards {
		it := iter(t, k, arn, *sh.ShardId, ktypes.ShardIteratorTypeTrimHorizon, "")
		out, err := k.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: &it, StreamARN: &arn})
		if err != nil {
			t.Fatal(err)
		}
		if out.NextShardIterator == nil || *out.MillisBehindLatest != 0 {
			t.Errorf("open shard: next %v, behind %v", out.NextShardIterator, out.MillisBehindLatest)
		}
		for i, r := range out.Records {
			if *r.SequenceNumber != seqs[*sh.ShardId][i] {
				t.Errorf("%s record %d = %s, want %s", *sh.ShardId, i, *r.SequenceNumber, seqs[*sh.ShardId][i])
			}
			if r.ApproximateArrivalTimestamp == nil || time.Since(*r.ApproximateArrivalTimestamp) > time.Minute {
				t.Errorf("arrival %v", r.ApproximateArrivalTimestamp)
			}
		}
		total += len(out.Records)

		// AFTER_SEQUENCE_NUMBER of the first resumes at the second.
		it = iter(t, k, arn, *sh.ShardId, ktypes.ShardIteratorTypeAfterSequenceNumber, seqs[*sh.ShardId][0])
		out, err = k.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: &it, Limit: aws.Int32(1)})
		if err != nil || len(out.Records) != 1 || *out.Records[0].SequenceNumber != seqs[*sh.ShardId][1] {
			t.Errorf("after the first: %+v %v", out, err)
		}
		if len(seqs[*sh.ShardId]) > 2 && (out.MillisBehindLatest == nil || *out.MillisBehindLatest < 0) {
			t.Errorf("behind latest %v", out.MillisBehindLatest)
		}
	}
	if total != 20 {
		t.Errorf("read %d records, want 20", total)
	}

	// PutRecords lands in order.
	pr, err := k.PutRecords(ctx, &kinesis.PutRecordsInput{StreamARN: &arn, Records: []ktypes.PutRecordsRequestEntry{
		{PartitionKey: aws.String("x"), Data: []byte("1")}, {PartitionKey: aws.String(""), Data: []byte("bad")}}})
	if err != nil || *pr.FailedRecordCount != 1 || pr.Records[0].SequenceNumber == nil || pr.Records[1].ErrorCode == nil {
		t.Errorf("PutRecords = %+v, %v", pr, err)
	}
}

func TestProtocolKinesisIteratorExpiresAndThrottles(t *testing.T) {
	s := New()
	defer s.Close()
	k, _ := clients(s)
	ctx := context.Background()
	arn := s.CreateStream("payments", 1)
	s.Put("payments", "a", []byte("x"))
	it := iter(t, k, arn, "shardId-000000000000", ktypes.ShardIteratorTypeTrimHorizon, "")
	for i := range 6 {
		_, err := k.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: &it})
		if i < 5 && err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if i == 5 && code(err) != "ProvisionedThroughputExceededException" {
			t.Fatalf("sixth call in a second: %v", err)
		}
	}
	s.GetRecordsPerSecond = 0
	s.Advance(KinesisIteratorTTL + time.Second)
	if _, err := k.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: &it}); code(err) != "ExpiredIteratorException" {
		t.Fatalf("expired iterator: %v", err)
	}
	if _, err := k.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: aws.String("nonsense")}); code(err) != "InvalidArgumentException" {
		t.Fatalf("unknown iterator: %v", err)
	}
	s.Fail("Kinesis.ListShards", 1, "InternalFailure")
	if _, err := k.ListShards(ctx, &kinesis.ListShardsInput{StreamARN: &arn}); code(err) != "InternalFailure" {
		t.Fatalf("injected failure: %v", err)
	}
	if _, err := k.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("nope")}); code(err) != "ResourceNotFoundException" {
		t.Fatalf("unknown stream: %v", err)
	}
}

func TestProtocolKinesisSplitMergeAndPagination(t *testing.T) {
	s := New()
	defer s.Close()
	s.GetRecordsPerSecond = 0
	k, _ := clients(s)
	ctx := context.Background()
	arn := s.CreateStream("payments", 2)
	s.Put("payments", "a", []byte("before"))
	a, b, err := s.SplitShard("payments", "shardId-000000000000")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.MergeShards(ctx, &kinesis.MergeShardsInput{StreamARN: &arn, ShardToMerge: &b, AdjacentShardToMerge: aws.String("shardId-000000000001")}); err != nil {
		t.Fatal(err)
	}
	// Paginate one shard at a time.
	var shards []ktypes.Shard
	out, err := k.ListShards(ctx, &kinesis.ListShardsInput{StreamARN: &arn, MaxResults: aws.Int32(1)})
	for err == nil {
		shards = append(shards, out.Shards...)
		if out.NextToken == nil {
			break
		}
		out, err = k.ListShards(ctx, &kinesis.ListShardsInput{NextToken: out.NextToken, MaxResults: aws.Int32(1)})
	}
	if err != nil || len(shards) != 5 {
		t.Fatalf("%d shards, %v", len(shards), err)
	}
	merged := shards[4]
	if *merged.ParentShardId != b || *merged.AdjacentParentShardId != "shardId-000000000001" || shards[2].ParentShardId == nil || *shards[2].ParentShardId != "shardId-000000000000" {
		t.Errorf("lineage: %+v", shards)
	}
	if shards[0].SequenceNumberRange.EndingSequenceNumber == nil || shards[3].SequenceNumberRange.EndingSequenceNumber == nil {
		t.Errorf("parents not closed")
	}
	// Reading the closed parent to its end gives no next iterator and
	// names its children.
	it := iter(t, k, arn, "shardId-000000000000", ktypes.ShardIteratorTypeTrimHorizon, "")
	gr, err := k.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: &it})
	if err != nil {
		t.Fatal(err)
	}
	if gr.NextShardIterator != nil || len(gr.ChildShards) != 2 || *gr.ChildShards[0].ShardId != a {
		t.Errorf("end of a closed shard: next %v children %+v", gr.NextShardIterator, gr.ChildShards)
	}
	if _, err := k.PutRecord(ctx, &kinesis.PutRecordInput{StreamARN: &arn, PartitionKey: aws.String("a"), Data: []byte("after")}); err != nil {
		t.Fatal(err)
	}
}

func TestProtocolKinesisRetention(t *testing.T) {
	s := New()
	defer s.Close()
	k, _ := clients(s)
	ctx := context.Background()
	arn := s.CreateStream("payments", 1)
	_, old, _ := s.Put("payments", "a", []byte("old"))
	s.Advance(Retention + time.Minute)
	_, fresh, _ := s.Put("payments", "a", []byte("fresh"))
	// AT a trimmed sequence number reads on from the trim horizon.
	it := iter(t, k, arn, "shardId-000000000000", ktypes.ShardIteratorTypeAtSequenceNumber, old)
	out, err := k.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: &it})
	if err != nil || len(out.Records) != 1 || *out.Records[0].SequenceNumber != fresh {
		t.Fatalf("after retention: %+v %v", out, err)
	}
}

func TestProtocolDynamoDBStreams(t *testing.T) {
	s := New()
	defer s.Close()
	_, d := clients(s)
	ctx := context.Background()
	arn := s.CreateTableStream("wallets", "NEW_AND_OLD_IMAGES", "walletId")
	id := map[string]any{"walletId": map[string]any{"S": "w-1"}}
	if _, err := s.WriteItem(arn, Change{EventName: "INSERT", Keys: id, NewImage: map[string]any{"walletId": map[string]any{"S": "w-1"}, "balance": map[string]any{"N": "10"}}}); err != nil {
		t.Fatal(err)
	}
	seq2, _ := s.WriteItem(arn, Change{EventName: "MODIFY", Keys: id, OldImage: map[string]any{"balance": map[string]any{"N": "10"}}, NewImage: map[string]any{"balance": map[string]any{"N": "20"}, "tags": map[string]any{"SS": []string{"a", "b"}}, "blob": map[string]any{"B": []byte{0, 1}}}})
	child, err := s.RotateShard(arn)
	if err != nil {
		t.Fatal(err)
	}
	s.WriteItem(arn, Change{EventName: "REMOVE", Keys: id, OldImage: map[string]any{"balance": map[string]any{"N": "20"}}, TTL: true})

	ds, err := d.DescribeStream(ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: &arn, Limit: aws.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	desc := ds.StreamDescription
	if len(desc.Shards) != 1 || desc.LastEvaluatedShardId == nil || desc.StreamViewType != dtypes.StreamViewTypeNewAndOldImages || *desc.TableName != "wallets" {
		t.Fatalf("first page: %+v", desc)
	}
	parent := *desc.Shards[0].ShardId
	ds, err = d.DescribeStream(ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: &arn, ExclusiveStartShardId: desc.LastEvaluatedShardId})
	if err != nil || len(ds.StreamDescription.Shards) != 1 || *ds.StreamDescription.Shards[0].ShardId != child || *ds.StreamDescription.Shards[0].ParentShardId != parent {
		t.Fatalf("second page: %+v %v", ds, err)
	}

	it, err := d.GetShardIterator(ctx, &dynamodbstreams.GetShardIteratorInput{StreamArn: &arn, ShardId: &parent, ShardIteratorType: dtypes.ShardIteratorTypeTrimHorizon})
	if err != nil {
		t.Fatal(err)
	}
	gr, err := d.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: it.ShardIterator})
	if err != nil {
		t.Fatal(err)
	}
	if len(gr.Records) != 2 || gr.NextShardIterator != nil {
		t.Fatalf("closed parent: %d records, next %v", len(gr.Records), gr.NextShardIterator)
	}
	m := gr.Records[1]
	if m.EventName != dtypes.OperationTypeModify || *m.Dynamodb.SequenceNumber != seq2 || *m.EventSource != "aws:dynamodb" || *m.EventVersion != "1.1" {
		t.Errorf("record %+v", m)
	}
	if n, ok := m.Dynamodb.NewImage["balance"].(*dtypes.AttributeValueMemberN); !ok || n.Value != "20" {
		t.Errorf("new image balance %#v", m.Dynamodb.NewImage["balance"])
	}
	if ss, ok := m.Dynamodb.NewImage["tags"].(*dtypes.AttributeValueMemberSS); !ok || len(ss.Value) != 2 {
		t.Errorf("tags %#v", m.Dynamodb.NewImage["tags"])
	}
	if b, ok := m.Dynamodb.NewImage["blob"].(*dtypes.AttributeValueMemberB); !ok || len(b.Value) != 2 || b.Value[1] != 1 {
		t.Errorf("blob %#v", m.Dynamodb.NewImage["blob"])
	}
	if m.Dynamodb.ApproximateCreationDateTime == nil || time.Since(*m.Dynamodb.ApproximateCreationDateTime) > time.Minute {
		t.Errorf("creation time %v", m.Dynamodb.ApproximateCreationDateTime)
	}

	it, _ = d.GetShardIterator(ctx, &dynamodbstreams.GetShardIteratorInput{StreamArn: &arn, ShardId: &child, ShardIteratorType: dtypes.ShardIteratorTypeTrimHorizon})
	gr, err = d.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: it.ShardIterator})
	if err != nil || len(gr.Records) != 1 || gr.NextShardIterator == nil || gr.Records[0].UserIdentity == nil || *gr.Records[0].UserIdentity.PrincipalId != "dynamodb.amazonaws.com" {
		t.Fatalf("open child: %+v %v", gr, err)
	}

	// AT_TIMESTAMP is Kinesis's only.
	if _, err := d.GetShardIterator(ctx, &dynamodbstreams.GetShardIteratorInput{StreamArn: &arn, ShardId: &child, ShardIteratorType: "AT_TIMESTAMP"}); code(err) != "ValidationException" {
		t.Errorf("AT_TIMESTAMP: %v", err)
	}
	// Iterators expire after 15 minutes.
	s.Advance(DynamoDBIteratorTTL + time.Second)
	if _, err := d.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: gr.NextShardIterator}); code(err) != "ExpiredIteratorException" {
		t.Errorf("expired: %v", err)
	}
	// Past retention, a trimmed sequence number is refused and the
	// closed parent is gone.
	s.Advance(Retention)
	s.WriteItem(arn, Change{EventName: "INSERT", Keys: id})
	if _, err := d.GetShardIterator(ctx, &dynamodbstreams.GetShardIteratorInput{StreamArn: &arn, ShardId: &child, ShardIteratorType: dtypes.ShardIteratorTypeAfterSequenceNumber, SequenceNumber: aws.String(seq2)}); code(err) != "ValidationException" {
		t.Errorf("a parent's sequence number on the child: %v", err)
	}
	last := s.Shards(arn)
	if len(last) != 1 || last[0].ID != child {
		t.Fatalf("after retention: %+v", last)
	}
	if _, err := d.GetShardIterator(ctx, &dynamodbstreams.GetShardIteratorInput{StreamArn: &arn, ShardId: &parent, ShardIteratorType: dtypes.ShardIteratorTypeTrimHorizon}); code(err) != "ResourceNotFoundException" {
		t.Errorf("expired parent: %v", err)
	}
	firstChildSeq := gr.Records[0].Dynamodb.SequenceNumber
	if _, err := d.GetShardIterator(ctx, &dynamodbstreams.GetShardIteratorInput{StreamArn: &arn, ShardId: &child, ShardIteratorType: dtypes.ShardIteratorTypeAtSequenceNumber, SequenceNumber: firstChildSeq}); code(err) != "TrimmedDataAccessException" {
		t.Errorf("trimmed: %v", err)
	}
	if _, err := d.GetShardIterator(ctx, &dynamodbstreams.GetShardIteratorInput{StreamArn: &arn, ShardId: &child, ShardIteratorType: dtypes.ShardIteratorTypeAfterSequenceNumber, SequenceNumber: firstChildSeq}); err != nil {
		t.Errorf("after the last trimmed record nothing is lost: %v", err)
	}
}

// TestProtocolRefusesAnotherServicesSignature: Kinesis wants requests
// signed for kinesis, DynamoDB Streams for dynamodb, as AWS does.
func TestProtocolRefusesAnotherServicesSignature(t *testing.T) {
	s := New()
	t.Cleanup(s.Close)
	for _, c := range []struct{ target, scope string }{
		{"Kinesis_20131202.ListStreams", "dynamodb"},
		{"DynamoDBStreams_20120810.ListStreams", "kinesis"},
		{"Kinesis_20131202.ListStreams", ""},
	} {
		auth := ""
		if c.scope != "" {
			auth = "AWS4-HMAC-SHA256 Credential=AKIDSTUB/20261122/" + s.Region + "/" + c.scope + "/aws4_request, SignedHeaders=host, Signature=00"
		}
		status, b := awsstub.Post(t, s.URL, c.target, "application/x-amz-json-1.1", `{}`, auth)
		if status != 400 || !strings.Contains(b, "MissingAuthenticationToken") {
			t.Errorf("%s signed for %q: %d %s", c.target, c.scope, status, b)
		}
	}
}
