package kafka

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

// importerGroups returns the words of every `--source kafka` group of the
// serve commands in the Lambda importer's golden outputs, with $(VAR)
// references (which Kubernetes expands) filled in.
func importerGroups(t *testing.T) [][]string {
	t.Helper()
	files, _ := filepath.Glob("../../source/lambda/testdata/*/service.json")
	ref := regexp.MustCompile(`\$\([A-Z0-9_]+\)`)
	fill := map[string]string{"--brokers": "b-1.example.kafka.eu-central-1.amazonaws.com:9098", "--consumer-group": "filled-group"}
	var groups [][]string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var svcs []struct{ Containers []struct{ Command []string } }
		if err := json.Unmarshal(b, &svcs); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, s := range svcs {
			for _, c := range s.Containers {
				var cur []string
				in := false
				for i, w := range c.Command {
					if w == "--source" || w == "--" {
						if in {
							groups = append(groups, cur)
						}
						in = w == "--source" && i+1 < len(c.Command) && c.Command[i+1] == "kafka"
						cur = nil
						continue
					}
					if !in {
						continue
					}
					if cur == nil && w == "kafka" {
						cur = []string{}
						continue
					}
					if ref.MatchString(w) && len(cur) > 0 {
						v, ok := fill[cur[len(cur)-1]]
						if !ok {
							v = "filled"
						}
						w = ref.ReplaceAllString(w, v)
					}
					cur = append(cur, w)
				}
			}
		}
	}
	return groups
}

// The flags the Lambda importer writes for Kafka triggers are ones this
// source takes.
func TestFlagsFromImporter(t *testing.T) {
	groups := importerGroups(t)
	if len(groups) < 4 {
		t.Fatalf("only %d kafka groups in the importer's goldens", len(groups))
	}
	msk, self := 0, 0
	for _, g := range groups {
		cfg, err := ParseFlags(g)
		if err != nil {
			t.Errorf("%q: %v", g, err)
			continue
		}
		s, err := New(cfg)
		if err != nil {
			t.Errorf("%q: %v", g, err)
			continue
		}
		if s.eventSource == SourceMSK {
			msk++
		} else {
			self++
		}
		for _, a := range cfg.Auth {
			if a.SecretEnv == "" {
				t.Errorf("%q: --auth %s without its secret", g, a.Type)
			}
		}
	}
	if msk == 0 || self == 0 {
		t.Errorf("%d MSK and %d self-managed groups; the goldens have both", msk, self)
	}
}

func TestParseFlags(t *testing.T) {
	cfg, err := ParseFlags([]string{
		"--brokers", "a:9096,b:9096", "--topic", "t1", "--topic", "t2,t3", "--consumer-group", "g",
		"--cluster-arn", "arn:aws:kafka:eu-west-1:123456789012:cluster/c/uuid", "--starting-position", "at_timestamp",
		"--starting-timestamp", "1700000000.5", "--batch-size", "200", "--batch-window", "2", "--max-retries", "0",
		"--max-record-age", "3600s", "--bisect-on-error", "--report-batch-item-failures",
		"--auth", "SASL_SCRAM_512_AUTH", "--auth-secret-env", "S1", "--auth", "SERVER_ROOT_CA_CERTIFICATE", "--auth-secret-env", "S2", "--tls=false",
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Brokers) != 2 || len(cfg.Topics) != 3 || cfg.BatchSize != 200 || cfg.BatchWindow != 2*time.Second ||
		cfg.MaxRetries == nil || *cfg.MaxRetries != 0 || cfg.MaxRecordAge != time.Hour || !cfg.BisectOnError || !cfg.ReportBatchItemFailures ||
		cfg.TLS == nil || *cfg.TLS || cfg.StartingTimestamp.UnixMilli() != 1700000000500 {
		t.Errorf("cfg = %+v", cfg)
	}
	if len(cfg.Auth) != 2 || cfg.Auth[0] != (Auth{AuthSCRAM512, "S1"}) || cfg.Auth[1] != (Auth{AuthServerRootCA, "S2"}) {
		t.Errorf("auth = %+v", cfg.Auth)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if s.eventSource != SourceMSK || s.cfg.StartingPosition != StartAtTimestamp {
		t.Errorf("source = %s %s", s.eventSource, s.cfg.StartingPosition)
	}

	def, err := ParseFlags([]string{"--brokers", "k:9092", "--topic", "t", "--consumer-group", "g"})
	if err != nil {
		t.Fatal(err)
	}
	if def.BatchWindow != DefaultBatchWindow || def.MaxRetries != nil || def.MaxRecordAge != 0 || def.TLS != nil {
		t.Errorf("defaults = %+v", def)
	}
	for _, bad := range [][]string{
		{"--auth-secret-env", "X"},
		{"--queue-url", "u"},
		{"--starting-timestamp", "yesterday"},
		{"--max-record-age", "10"},
		{"--brokers", "k:9092", "stray"},
	} {
		if _, err := ParseFlags(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	for _, c := range []Config{
		{Topics: []string{"t"}, ConsumerGroup: "g"},
		{Brokers: []string{"k:9092"}, ConsumerGroup: "g"},
		{Brokers: []string{"k:9092"}, Topics: []string{"t"}},
		{Brokers: []string{"k:9092"}, Topics: []string{"t"}, ConsumerGroup: "g", StartingPosition: "AT_TIMESTAMP"},
		{Brokers: []string{"k:9092"}, Topics: []string{"t"}, ConsumerGroup: "g", StartingPosition: "EARLIEST"},
		{Brokers: []string{"k:9092"}, Topics: []string{"t"}, ConsumerGroup: "g", BatchSize: 10001},
		{Brokers: []string{"k:9092"}, Topics: []string{"t"}, ConsumerGroup: "g", Auth: []Auth{{Type: AuthBasic}}},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("New(%+v) accepted", c)
		}
	}
}

func TestMSKPort(t *testing.T) {
	for brokers, want := range map[string]string{
		"b-1.x.kafka.eu-west-1.amazonaws.com:9098,b-2.x.kafka.eu-west-1.amazonaws.com:9098": "iam",
		"b-1:9096": "scram", "b-1:9094": "tls", "b-1:9092": "plaintext", "b-1:9094,b-2:9098": "", "b-1": "",
	} {
		if got := mskPort(splitComma(brokers)); got != want {
			t.Errorf("mskPort(%s) = %q, want %q", brokers, got, want)
		}
	}
}

func splitComma(s string) []string {
	var l list
	l.Set(s)
	return l
}
