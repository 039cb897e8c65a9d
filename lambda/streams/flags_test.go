package streams

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/lambda"
)

func noEnv(string) string { return "" }

// The flags the Lambda importer writes for a Kinesis trigger (its golden
// get-function-configuration-kinesis case) build a source.
func TestImporterFlags(t *testing.T) {
	args := []string{"--stream-arn", "arn:aws:kinesis:us-east-1:210987654321:stream/card-authorisations", "--region", "us-east-1",
		"--starting-position", "TRIM_HORIZON", "--batch-size", "500", "--batch-window", "1s", "--report-batch-item-failures",
		"--max-retries", "2", "--max-record-age", "3600s", "--bisect-on-error"}
	cfg, err := ParseFlags(Kinesis, args, func(k string) string {
		if k == "AWS_ROLE_ARN" {
			return "arn:aws:iam::210987654321:role/fraud-score"
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.BatchSize != 500 || cfg.BatchWindow != time.Second || !cfg.ReportBatchItemFailures || *cfg.MaxRetries != 2 ||
		cfg.MaxRecordAge != time.Hour || !cfg.BisectOnError || cfg.StartingPosition != "TRIM_HORIZON" || cfg.InvokeIdentityARN != "arn:aws:iam::210987654321:role/fraud-score" {
		t.Errorf("config %+v", cfg)
	}
	src, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(DefaultCheckpointDir, "kinesis-us-east-1-210987654321-stream_card-authorisations.json"); src.cfg.CheckpointFile != want {
		t.Errorf("checkpoint file %s, want %s", src.cfg.CheckpointFile, want)
	}

	// The DynamoDB one (serverless-yml case), through serve's registry.
	s, err := lambda.NewSource(DynamoDB, []string{"--stream-arn", "arn:aws:dynamodb:eu-west-2:123456789012:table/wallet-transfers-dev/stream/2024-05-01T00:00:00.000",
		"--region", "eu-west-2", "--starting-position", "TRIM_HORIZON", "--batch-size", "100", "--max-retries", "3", "--bisect-on-error"}, lambda.SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d := s.(*Source)
	if d.name != "wallet-transfers-dev" || d.cfg.PollInterval != 250*time.Millisecond ||
		!strings.HasSuffix(d.cfg.CheckpointFile, "dynamodb-eu-west-2-123456789012-table_wallet-transfers-dev_stream_2024-05-01T00_00_00.000.json") {
		t.Errorf("dynamodb source %+v", d.cfg)
	}
}

// noNamespaceFile plays a process outside a pod: no service account
// namespace is mounted.
func noNamespaceFile(t *testing.T) {
	old := readNamespaceFile
	readNamespaceFile = func() ([]byte, error) { return nil, os.ErrNotExist }
	t.Cleanup(func() { readNamespaceFile = old })
}

func TestFlagErrors(t *testing.T) {
	noNamespaceFile(t)
	t.Setenv("POD_NAMESPACE", "")
	const k = "arn:aws:kinesis:us-east-1:123456789012:stream/s"
	const d = "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2024-01-01T00:00:00.000"
	for _, c := range []struct {
		kind string
		args []string
		want string
	}{
		{Kinesis, []string{}, "stream ARN is required"},
		{Kinesis, []string{"--stream-arn", "card-authorisations"}, "is not an ARN"},
		{Kinesis, []string{"--stream-arn", d}, "not a Kinesis stream ARN"},
		{DynamoDB, []string{"--stream-arn", k}, "not a DynamoDB stream ARN"},
		{DynamoDB, []string{"--stream-arn", "arn:aws:dynamodb:us-east-1:123456789012:table/t"}, "not a DynamoDB stream ARN"},
		{Kinesis, []string{"--stream-arn", k, "--region", "eu-west-1"}, "not the stream's region"},
		{Kinesis, []string{"--stream-arn", k, "--batch-size", "10001"}, "outside 1–10000"},
		{Kinesis, []string{"--stream-arn", k, "--batch-window", "301"}, "outside 0–5m0s"},
		{Kinesis, []string{"--stream-arn", k, "--max-record-age", "30s"}, "outside 60s–604800s"},
		{Kinesis, []string{"--stream-arn", k, "--max-record-age", "-5"}, "negative"},
		{Kinesis, []string{"--stream-arn", k, "--max-retries", "-2"}, "below -1"},
		{Kinesis, []string{"--stream-arn", k, "--max-retries", "10001"}, "above 10000"},
		{Kinesis, []string{"--stream-arn", k, "--starting-position", "AT_TIMESTAMP"}, "needs --starting-timestamp"},
		{Kinesis, []string{"--stream-arn", k, "--starting-position", "EARLIEST"}, "is not TRIM_HORIZON"},
		{Kinesis, []string{"--stream-arn", k, "--starting-timestamp", "yesterday"}, "not an RFC 3339 time"},
		{Kinesis, []string{"--stream-arn", k, "--queue-url", "x"}, "takes --stream-arn"},
		{DynamoDB, []string{"--stream-arn", d, "--invoke-identity-arn", "x"}, "flag provided but not defined"},
		{Kinesis, []string{"--stream-arn", k, "extra"}, "unexpected argument"},
		{Kinesis, []string{"--stream-arn", k, "--checkpoint-file", "/data/cp.json", "--checkpoint-configmap", "cp", "--checkpoint-namespace", "ns"},
			"--checkpoint-file and --checkpoint-configmap exclude each other"},
		{DynamoDB, []string{"--stream-arn", d, "--checkpoint-configmap", "cp", "--checkpoint-file", "/data/cp.json"},
			"--checkpoint-file and --checkpoint-configmap exclude each other"},
		{Kinesis, []string{"--stream-arn", k, "--checkpoint-namespace", "payments"}, "--checkpoint-namespace needs --checkpoint-configmap"},
		{DynamoDB, []string{"--stream-arn", d, "--lease-duration", "30s"}, "--lease-duration needs --checkpoint-configmap"},
		{Kinesis, []string{"--stream-arn", k, "--checkpoint-configmap", "Fraud_Score", "--checkpoint-namespace", "ns"}, "is not a ConfigMap name"},
		{Kinesis, []string{"--stream-arn", k, "--checkpoint-configmap", "cp", "--checkpoint-namespace", "ns", "--lease-duration", "10s"},
			"--lease-duration 10s must be longer than --lease-renew-deadline 10s"},
		{Kinesis, []string{"--stream-arn", k, "--checkpoint-configmap", "cp", "--checkpoint-namespace", "ns", "--lease-renew-deadline", "2s"},
			"must be longer than 1.2 × --lease-retry-period 2s"},
		{Kinesis, []string{"--stream-arn", k, "--checkpoint-configmap", "cp", "--checkpoint-namespace", "ns", "--lease-retry-period", "-1"},
			"lease timings must be positive"},
		{Kinesis, []string{"--stream-arn", k, "--checkpoint-configmap", "cp", "--checkpoint-namespace", "ns", "--lease-duration", "soon"},
			"not a duration"},
	} {
		_, err := lambda.NewSource(c.kind, c.args, lambda.SourceOptions{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %q: %v, want %q", c.kind, c.args, err, c.want)
		}
	}
}

func TestFlagForms(t *testing.T) {
	const k = "arn:aws:kinesis:us-east-1:123456789012:stream/s"
	cfg, err := ParseFlags(Kinesis, []string{"--stream-arn", k + "/consumer/fraud:1700000000", "--starting-position", "at_timestamp",
		"--starting-timestamp", "1700000000.5", "--max-record-age", "-1", "--max-retries", "-1", "--batch-window", "2.5"}, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	src, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// A consumer ARN is read through its stream.
	if src.StreamARN() != k || src.cfg.MaxRetries != nil || src.cfg.MaxRecordAge != 0 || src.cfg.BatchWindow != 2500*time.Millisecond ||
		!src.cfg.StartingTimestamp.Equal(time.Unix(1700000000, 5e8)) || src.cfg.StartingPosition != StartAtTimestamp {
		t.Errorf("source %s %+v", src.StreamARN(), src.cfg)
	}
	cfg, _ = ParseFlags(Kinesis, []string{"--stream-arn", k, "--starting-timestamp", "2024-05-01T10:00:00Z"}, noEnv)
	if !cfg.StartingTimestamp.Equal(time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("timestamp %v", cfg.StartingTimestamp)
	}
	// No --starting-position: TRIM_HORIZON, so nothing is skipped.
	src, _ = New(Config{Kind: Kinesis, StreamARN: k})
	if src.cfg.StartingPosition != StartTrimHorizon || src.cfg.BatchSize != 100 || src.cfg.PollInterval != time.Second {
		t.Errorf("defaults %+v", src.cfg)
	}
	for _, name := range []string{Kinesis, DynamoDB} {
		found := false
		for _, n := range lambda.SourceNames() {
			found = found || n == name
		}
		if !found {
			t.Errorf("%s is not registered", name)
		}
	}
}

// --checkpoint-configmap (what the converted chart passes) on both
// sources: the checkpoint goes to Kubernetes, no file, the Lease's
// timings default to client-go's, the namespace to the pod's.
func TestCheckpointConfigMapFlags(t *testing.T) {
	const k = "arn:aws:kinesis:us-east-1:123456789012:stream/card-authorisations"
	const d = "arn:aws:dynamodb:eu-west-2:123456789012:table/wallet-transfers/stream/2024-05-01T00:00:00.000"
	noNamespaceFile(t)
	env := map[string]string{"POD_NAMESPACE": "payments", "HOSTNAME": "fraud-score-7d9c6b5f4-x2x8q"}
	getenv := func(k string) string { return env[k] }
	for _, c := range []struct{ kind, arn string }{{Kinesis, k}, {DynamoDB, d}} {
		cfg, err := ParseFlags(c.kind, []string{"--stream-arn", c.arn, "--checkpoint-configmap", "fraud-score-cards"}, getenv)
		if err != nil {
			t.Fatalf("%s: %v", c.kind, err)
		}
		if cfg.CheckpointConfigMap != "fraud-score-cards" || cfg.CheckpointNamespace != "payments" {
			t.Errorf("%s: configmap %q namespace %q", c.kind, cfg.CheckpointConfigMap, cfg.CheckpointNamespace)
		}
		t.Setenv("HOSTNAME", "fraud-score-7d9c6b5f4-x2x8q")
		src, err := New(cfg)
		if err != nil {
			t.Fatalf("%s: %v", c.kind, err)
		}
		if src.cfg.CheckpointFile != "" || src.cfg.LeaseDuration != 15*time.Second || src.cfg.RenewDeadline != 10*time.Second ||
			src.cfg.RetryPeriod != 2*time.Second || !strings.HasPrefix(src.cfg.Identity, "fraud-score-7d9c6b5f4-x2x8q-") {
			t.Errorf("%s: %+v", c.kind, src.cfg)
		}
	}

	// The flags win over the environment; timings as seconds or
	// durations.
	cfg, err := ParseFlags(Kinesis, []string{"--stream-arn", k, "--checkpoint-configmap", "cp", "--checkpoint-namespace", "wallets",
		"--lease-duration", "30", "--lease-renew-deadline", "20s", "--lease-retry-period", "4"}, getenv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.CheckpointNamespace != "wallets" || cfg.LeaseDuration != 30*time.Second || cfg.RenewDeadline != 20*time.Second || cfg.RetryPeriod != 4*time.Second {
		t.Errorf("%+v", cfg)
	}

	// In a pod without POD_NAMESPACE: the service account's namespace.
	readNamespaceFile = func() ([]byte, error) { return []byte("ledger\n"), nil }
	cfg, err = ParseFlags(DynamoDB, []string{"--stream-arn", d, "--checkpoint-configmap", "cp"}, noEnv)
	if err != nil || cfg.CheckpointNamespace != "ledger" {
		t.Errorf("namespace from the service account: %q, %v", cfg.CheckpointNamespace, err)
	}

	// Nowhere to find a namespace (not in a pod): the command line
	// parses, so it can be checked anywhere, and Run refuses to start.
	noNamespaceFile(t)
	cfg, err = ParseFlags(Kinesis, []string{"--stream-arn", k, "--checkpoint-configmap", "cp"}, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	src, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = src.Run(context.Background(), nil)
	if err == nil || !strings.Contains(err.Error(), "--checkpoint-configmap cp needs a namespace: give --checkpoint-namespace, set POD_NAMESPACE") {
		t.Errorf("Run without a namespace: %v", err)
	}

	// Neither flag: a file, as before.
	cfg, _ = ParseFlags(Kinesis, []string{"--stream-arn", k}, getenv)
	if src, err := New(cfg); err != nil || src.cfg.CheckpointFile == "" || src.cfg.CheckpointConfigMap != "" {
		t.Errorf("default store: %v %+v", err, src.cfg)
	}
}

// The help lists every flag ParseFlags takes.
func TestUsageListsEveryFlag(t *testing.T) {
	for _, u := range []string{KinesisUsage, DynamoDBUsage} {
		for _, f := range []string{"--checkpoint-file", "--checkpoint-configmap", "--checkpoint-namespace", "--lease-duration", "--lease-renew-deadline", "--lease-retry-period"} {
			if !strings.Contains(u, f+" ") {
				t.Errorf("usage lacks %s:\n%s", f, u)
			}
		}
	}
}

// FuzzParseFlags: any words are parsed or refused, never a panic.
func FuzzParseFlags(f *testing.F) {
	f.Add("--stream-arn\x00arn:aws:kinesis:us-east-1:123456789012:stream/s\x00--batch-size\x00500\x00--max-record-age\x003600s", true)
	f.Add("--stream-arn\x00arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/x\x00--starting-position\x00AT_TIMESTAMP\x00--starting-timestamp\x001e300", false)
	f.Fuzz(func(t *testing.T, joined string, kinesis bool) {
		kind := DynamoDB
		if kinesis {
			kind = Kinesis
		}
		cfg, err := ParseFlags(kind, strings.Split(joined, "\x00"), noEnv)
		if err != nil {
			return
		}
		src, err := New(cfg)
		if err != nil {
			return
		}
		if src.cfg.BatchSize < 1 || src.cfg.BatchSize > MaxBatchSize || (src.cfg.CheckpointFile == "") == (src.cfg.CheckpointConfigMap == "") || src.name == "" {
			t.Errorf("accepted %+v", src.cfg)
		}
	})
}
