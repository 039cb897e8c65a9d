package kafka

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/cutoverhq/cutover/lambda"
	"github.com/cutoverhq/cutover/lambda/internal/flagval"
)

func init() { lambda.RegisterSource("kafka", fromArgs) }

// Usage lists the source's flags, for serve's help.
const Usage = `--source kafka flags:
  --brokers HOST:PORT[,…]          bootstrap servers (required; repeatable)
  --topic NAME                     topic to consume (required; repeatable, or comma-separated)
  --consumer-group NAME            consumer group; Lambda's continues from its offsets (required)
  --cluster-arn ARN                MSK cluster: eventSource aws:kafka with this eventSourceArn
  --region REGION                  MSK cluster's region (makes the source MSK; used by IAM auth)
  --starting-position P            LATEST (default), TRIM_HORIZON or AT_TIMESTAMP, for a group with no offsets
  --starting-timestamp T           AT_TIMESTAMP's time: RFC 3339 or seconds since the epoch
  --batch-size N                   records per invocation, 1-10000 (default 100)
  --batch-window D                 gather a batch this long after its first record, 0-300s (default 500ms)
  --max-retries N                  retries of a failed batch before it is skipped (default -1: until it succeeds)
  --max-record-age D               drop records older than this (default -1: no limit)
  --bisect-on-error                split a failed batch in halves
  --report-batch-item-failures     honour {"batchItemFailures":[{"itemIdentifier":{"partition","offset"}}]}
  --auth TYPE                      BASIC_AUTH, SASL_SCRAM_256_AUTH, SASL_SCRAM_512_AUTH,
                                   CLIENT_CERTIFICATE_TLS_AUTH, SERVER_ROOT_CA_CERTIFICATE or AWS_MSK_IAM (repeatable)
  --auth-secret-env NAME           variable holding the preceding --auth's Secrets Manager secret (JSON)
  --tls                            TLS to the brokers (default: on with any --auth or an MSK TLS port)`

// ParseFlags reads the words after `--source kafka` into a Config.
func ParseFlags(args []string) (Config, error) {
	var cfg Config
	fs := flag.NewFlagSet("kafka", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Var((*list)(&cfg.Brokers), "brokers", "")
	fs.Var((*list)(&cfg.Topics), "topic", "")
	fs.Var((*list)(&cfg.Topics), "topics", "")
	fs.StringVar(&cfg.ConsumerGroup, "consumer-group", "", "")
	fs.StringVar(&cfg.ClusterARN, "cluster-arn", "", "")
	fs.StringVar(&cfg.Region, "region", "", "")
	fs.StringVar(&cfg.StartingPosition, "starting-position", "", "")
	fs.Var((*flagval.Timestamp)(&cfg.StartingTimestamp), "starting-timestamp", "")
	fs.IntVar(&cfg.BatchSize, "batch-size", 0, "")
	cfg.BatchWindow = DefaultBatchWindow
	fs.Var((*flagval.Seconds)(&cfg.BatchWindow), "batch-window", "")
	retries := -1
	fs.IntVar(&retries, "max-retries", -1, "")
	age := time.Duration(-1)
	fs.Var((*flagval.Seconds)(&age), "max-record-age", "")
	fs.BoolVar(&cfg.BisectOnError, "bisect-on-error", false, "")
	fs.BoolVar(&cfg.ReportBatchItemFailures, "report-batch-item-failures", false, "")
	fs.Var((*authType)(&cfg.Auth), "auth", "")
	fs.Var((*authSecret)(&cfg.Auth), "auth-secret-env", "")
	var tlsFlag boolFlag
	fs.Var(&tlsFlag, "tls", "")
	if err := fs.Parse(args); err != nil {
		if strings.Contains(err.Error(), "flag provided but not defined") {
			return cfg, fmt.Errorf("%v; the kafka source takes --brokers, --topic, --consumer-group, --cluster-arn, --region, --starting-position, --starting-timestamp, --batch-size, --batch-window, --max-retries, --max-record-age, --bisect-on-error, --report-batch-item-failures, --auth, --auth-secret-env and --tls", err)
		}
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if retries >= 0 {
		cfg.MaxRetries = &retries
	}
	if age > 0 {
		if age < 60*time.Second || age > 604800*time.Second {
			return cfg, fmt.Errorf("--max-record-age %v is outside 60s–604800s (or -1)", age)
		}
		cfg.MaxRecordAge = age
	}
	if tlsFlag.set {
		cfg.TLS = &tlsFlag.v
	}
	return cfg, nil
}

func fromArgs(args []string, opt lambda.SourceOptions) (lambda.Source, error) {
	cfg, err := ParseFlags(args)
	if err != nil {
		return nil, err
	}
	cfg.Log = opt.Log
	cfg.Registerer = opt.Registerer
	cfg.FunctionTimeout = opt.Function.Timeout
	return New(cfg)
}

// list is a repeatable flag whose values may be comma-separated.
type list []string

func (l *list) String() string { return strings.Join(*l, ",") }

func (l *list) Set(v string) error {
	for _, x := range strings.Split(v, ",") {
		if x = strings.TrimSpace(x); x != "" {
			*l = append(*l, x)
		}
	}
	return nil
}

// authType adds an Auth; authSecret names the secret of the last one.
type authType []Auth

func (a *authType) String() string { return "" }

func (a *authType) Set(v string) error {
	*a = append(*a, Auth{Type: strings.ToUpper(v)})
	return nil
}

type authSecret []Auth

func (a *authSecret) String() string { return "" }

func (a *authSecret) Set(v string) error {
	if len(*a) == 0 || (*a)[len(*a)-1].SecretEnv != "" {
		return errors.New("--auth-secret-env must follow the --auth it belongs to")
	}
	(*a)[len(*a)-1].SecretEnv = v
	return nil
}

// boolFlag is a bool flag that knows whether it was given.
type boolFlag struct{ v, set bool }

func (b *boolFlag) String() string   { return strconv.FormatBool(b.v) }
func (b *boolFlag) IsBoolFlag() bool { return true }

func (b *boolFlag) Set(v string) error {
	x, err := strconv.ParseBool(v)
	if err != nil {
		return err
	}
	b.v, b.set = x, true
	return nil
}
