package sqs

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/cutoverhq/cutover/lambda"
	"github.com/cutoverhq/cutover/lambda/internal/flagval"
)

func init() { lambda.RegisterSource("sqs", fromArgs) }

// Usage lists the source's flags, for serve's help.
const Usage = `--source sqs flags:
  --queue-url URL                  the queue (required)
  --region REGION                  the queue's region (default: from the URL, else AWS_REGION)
  --endpoint-url URL               SQS endpoint (default: AWS, or AWS_ENDPOINT_URL_SQS)
  --batch-size N                   messages per invocation, 1-10000 (default 10; over 10 needs --batch-window)
  --batch-window D                 gather a batch this long after its first message, 0-300s (default 0)
  --visibility-timeout D           receive with and extend by this, whole seconds (default: the queue's)
  --report-batch-item-failures     honour {"batchItemFailures": [...]} answers`

// ParseFlags reads the words after `--source sqs` into a Config.
func ParseFlags(args []string) (Config, error) {
	var cfg Config
	fs := flag.NewFlagSet("sqs", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&cfg.QueueURL, "queue-url", "", "")
	fs.StringVar(&cfg.Region, "region", "", "")
	fs.StringVar(&cfg.EndpointURL, "endpoint-url", "", "")
	fs.IntVar(&cfg.BatchSize, "batch-size", 0, "")
	fs.Var((*flagval.Seconds)(&cfg.BatchWindow), "batch-window", "")
	fs.Var((*flagval.Seconds)(&cfg.VisibilityTimeout), "visibility-timeout", "")
	fs.BoolVar(&cfg.ReportBatchItemFailures, "report-batch-item-failures", false, "")
	if err := fs.Parse(args); err != nil {
		if strings.Contains(err.Error(), "flag provided but not defined") {
			return cfg, fmt.Errorf("%v; the sqs source takes --queue-url, --region, --endpoint-url, --batch-size, --batch-window, --visibility-timeout and --report-batch-item-failures", err)
		}
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return cfg, nil
}

func fromArgs(args []string, opt lambda.SourceOptions) (lambda.Source, error) {
	cfg, err := ParseFlags(args)
	if err != nil {
		return nil, err
	}
	cfg.Pollers = opt.Concurrency
	cfg.Log = opt.Log
	cfg.Registerer = opt.Registerer
	s, err := New(cfg)
	if err != nil {
		return nil, err
	}
	if s.cfg.Region == "" {
		// A queue URL of a local endpoint names no region: the
		// function's is the next best.
		s.cfg.Region = opt.Function.Region
	}
	return s, nil
}
