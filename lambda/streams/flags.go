package streams

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/cutoverhq/cutover/lambda"
	"github.com/cutoverhq/cutover/lambda/internal/flagval"
)

func init() {
	lambda.RegisterSource(Kinesis, func(args []string, opt lambda.SourceOptions) (lambda.Source, error) {
		return fromArgs(Kinesis, args, opt, os.Getenv)
	})
	lambda.RegisterSource(DynamoDB, func(args []string, opt lambda.SourceOptions) (lambda.Source, error) {
		return fromArgs(DynamoDB, args, opt, os.Getenv)
	})
}

const commonUsage = `  --region REGION                  the stream's region (default: the ARN's)
  --endpoint-url URL               a local or VPC endpoint (default: AWS, or AWS_ENDPOINT_URL_*)
  --starting-position P            TRIM_HORIZON (default), LATEST or AT_TIMESTAMP, for a stream with no checkpoint
  --starting-timestamp T           AT_TIMESTAMP's time: RFC 3339 or seconds since the epoch
  --batch-size N                   records per invocation, 1-10000 (default 100)
  --batch-window D                 gather a batch this long after its first record, 0-300s (default 0)
  --max-retries N                  retries of a failed batch before it is skipped (default -1: until it succeeds)
  --max-record-age D               drop records older than this, 60s-604800s (default -1: no limit)
  --bisect-on-error                split a failed batch in halves
  --report-batch-item-failures     honour {"batchItemFailures":[{"itemIdentifier":"<sequenceNumber>"}]}
  --checkpoint-file PATH           where each shard's position is kept (default ` + DefaultCheckpointDir + `/<stream>.json);
                                   one process per stream
  --checkpoint-configmap NAME      keep the checkpoint in this ConfigMap instead, and elect the one replica that
                                   reads the stream with a Lease of the same name; the others stand by
  --checkpoint-namespace NS        their namespace (default $POD_NAMESPACE, else the pod's service account's)
  --lease-duration D               a standby takes over this long after the reader's last renewal (default 15s)
  --lease-renew-deadline D         the reader stops when it cannot renew for this long (default 10s)
  --lease-retry-period D           time between tries to take or renew the Lease (default 2s)`

// KinesisUsage lists the kinesis source's flags, for serve's help.
const KinesisUsage = `--source kinesis flags:
  --stream-arn ARN                 the stream (required)
` + commonUsage + `
  --invoke-identity-arn ARN        the events' invokeIdentityArn (default $AWS_ROLE_ARN)`

// DynamoDBUsage lists the dynamodb source's flags, for serve's help.
const DynamoDBUsage = `--source dynamodb flags:
  --stream-arn ARN                 the table's stream, …:table/<name>/stream/<label> (required)
` + commonUsage

// ParseFlags reads the words after `--source kinesis` or `--source
// dynamodb` into a Config. getenv supplies the default invokeIdentityArn
// (AWS_ROLE_ARN, which IRSA sets).
func ParseFlags(kind string, args []string, getenv func(string) string) (Config, error) {
	cfg := Config{Kind: kind}
	fs := flag.NewFlagSet(kind, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&cfg.StreamARN, "stream-arn", "", "")
	fs.StringVar(&cfg.Region, "region", "", "")
	fs.StringVar(&cfg.EndpointURL, "endpoint-url", "", "")
	fs.StringVar(&cfg.StartingPosition, "starting-position", "", "")
	fs.Var((*flagval.Timestamp)(&cfg.StartingTimestamp), "starting-timestamp", "")
	fs.IntVar(&cfg.BatchSize, "batch-size", 0, "")
	fs.Var((*flagval.Seconds)(&cfg.BatchWindow), "batch-window", "")
	retries := -1
	fs.IntVar(&retries, "max-retries", -1, "")
	age := time.Duration(-1)
	fs.Var((*flagval.Seconds)(&age), "max-record-age", "")
	fs.BoolVar(&cfg.BisectOnError, "bisect-on-error", false, "")
	fs.BoolVar(&cfg.ReportBatchItemFailures, "report-batch-item-failures", false, "")
	fs.StringVar(&cfg.CheckpointFile, "checkpoint-file", "", "")
	fs.StringVar(&cfg.CheckpointConfigMap, "checkpoint-configmap", "", "")
	fs.StringVar(&cfg.CheckpointNamespace, "checkpoint-namespace", "", "")
	fs.Var((*flagval.Seconds)(&cfg.LeaseDuration), "lease-duration", "")
	fs.Var((*flagval.Seconds)(&cfg.RenewDeadline), "lease-renew-deadline", "")
	fs.Var((*flagval.Seconds)(&cfg.RetryPeriod), "lease-retry-period", "")
	identity := ""
	if kind == Kinesis {
		fs.StringVar(&identity, "invoke-identity-arn", "", "")
	}
	if err := fs.Parse(args); err != nil {
		if strings.Contains(err.Error(), "flag provided but not defined") {
			extra := ""
			if kind == Kinesis {
				extra = ", --invoke-identity-arn"
			}
			return cfg, fmt.Errorf("%v; the %s source takes --stream-arn, --region, --endpoint-url, --starting-position, --starting-timestamp, --batch-size, --batch-window, --max-retries, --max-record-age, --bisect-on-error, --report-batch-item-failures, --checkpoint-file, --checkpoint-configmap, --checkpoint-namespace, --lease-duration, --lease-renew-deadline, --lease-retry-period%s", err, kind, extra)
		}
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if retries < -1 {
		return cfg, fmt.Errorf("--max-retries %d is below -1", retries)
	}
	if retries >= 0 {
		cfg.MaxRetries = &retries
	}
	switch {
	case age == -time.Second || age == -1:
	case age < 0:
		return cfg, fmt.Errorf("--max-record-age %v is negative: -1 means no limit", age)
	case age < MinRecordAge || age > MaxRecordAge:
		return cfg, fmt.Errorf("--max-record-age %v is outside 60s–604800s (or -1)", age)
	default:
		cfg.MaxRecordAge = age
	}
	if err := checkpointFlags(&cfg, getenv); err != nil {
		return cfg, err
	}
	if kind == Kinesis {
		if identity == "" {
			identity = getenv("AWS_ROLE_ARN")
		}
		cfg.InvokeIdentityARN = identity
	}
	return cfg, nil
}

// readNamespaceFile reads ServiceAccountNamespaceFile; tests replace it.
var readNamespaceFile = func() ([]byte, error) { return os.ReadFile(ServiceAccountNamespaceFile) }

// checkpointFlags checks the checkpoint flags together and finds the
// ConfigMap's namespace: the flag, else $POD_NAMESPACE, else the one the
// pod's service account token is mounted with, else none (Run refuses
// to start).
func checkpointFlags(cfg *Config, getenv func(string) string) error {
	if cfg.CheckpointConfigMap == "" {
		for _, f := range []struct {
			flag string
			set  bool
		}{{"--checkpoint-namespace", cfg.CheckpointNamespace != ""}, {"--lease-duration", cfg.LeaseDuration != 0},
			{"--lease-renew-deadline", cfg.RenewDeadline != 0}, {"--lease-retry-period", cfg.RetryPeriod != 0}} {
			if f.set {
				return fmt.Errorf("%s needs --checkpoint-configmap", f.flag)
			}
		}
		return nil
	}
	if cfg.CheckpointFile != "" {
		return errors.New("--checkpoint-file and --checkpoint-configmap exclude each other: the checkpoint is a local file (one process) or a ConfigMap (replicas on Kubernetes, one reading)")
	}
	if cfg.CheckpointNamespace == "" {
		cfg.CheckpointNamespace = strings.TrimSpace(getenv("POD_NAMESPACE"))
	}
	if cfg.CheckpointNamespace == "" {
		if b, err := readNamespaceFile(); err == nil {
			cfg.CheckpointNamespace = strings.TrimSpace(string(b))
		}
	}
	// Still none: Run says so. Checking serve's command line (the
	// converter's contract test, a dry run) needs no pod around it.
	return nil
}

func fromArgs(kind string, args []string, opt lambda.SourceOptions, getenv func(string) string) (lambda.Source, error) {
	cfg, err := ParseFlags(kind, args, getenv)
	if err != nil {
		return nil, err
	}
	cfg.Log = opt.Log
	cfg.Registerer = opt.Registerer
	return New(cfg)
}
