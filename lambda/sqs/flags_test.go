package sqs

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

// importerGroups returns the words of every `--source <kind>` group in
// the serve commands the Lambda importer wrote into its golden outputs,
// with $(VAR) references (which Kubernetes expands) replaced by what the
// user would fill in.
func importerGroups(t *testing.T, kind string, fill map[string]string) [][]string {
	t.Helper()
	files, _ := filepath.Glob("../../source/lambda/testdata/*/service.json")
	if len(files) == 0 {
		t.Fatal("no importer golden files")
	}
	ref := regexp.MustCompile(`\$\([A-Z0-9_]+\)`)
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
				for _, w := range c.Command {
					if w == "--source" || w == "--" {
						if in {
							groups = append(groups, cur)
						}
						cur, in = nil, false
						continue
					}
					if cur == nil && !in && w == kind {
						in, cur = true, []string{}
						continue
					}
					if in {
						// A reference is filled by the flag it follows.
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
	}
	return groups
}

// The flags the Lambda importer writes for SQS triggers are ones this
// source takes, and mean what the importer says.
func TestFlagsFromImporter(t *testing.T) {
	groups := importerGroups(t, "sqs", map[string]string{"--queue-url": "https://sqs.eu-west-1.amazonaws.com/123456789012/refunds"})
	if len(groups) < 3 {
		t.Fatalf("only %d sqs groups in the importer's goldens", len(groups))
	}
	for _, g := range groups {
		cfg, err := ParseFlags(g)
		if err != nil {
			t.Errorf("%q: %v", g, err)
			continue
		}
		if _, err := New(cfg); err != nil {
			t.Errorf("%q: %v", g, err)
		}
	}
}

func TestParseFlags(t *testing.T) {
	cfg, err := ParseFlags([]string{"--queue-url", "https://sqs.eu-west-2.amazonaws.com/123456789012/q", "--region", "eu-west-2",
		"--batch-size", "25", "--batch-window", "10s", "--report-batch-item-failures", "--visibility-timeout", "90", "--endpoint-url=http://localhost:9324"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.BatchSize != 25 || cfg.BatchWindow != 10*time.Second || !cfg.ReportBatchItemFailures || cfg.VisibilityTimeout != 90*time.Second ||
		cfg.EndpointURL != "http://localhost:9324" || cfg.Region != "eu-west-2" {
		t.Errorf("cfg = %+v", cfg)
	}
	for _, bad := range [][]string{
		{"--queue-url", "u", "--brokers", "b"},
		{"--batch-window", "soon"},
		{"--queue-url", "https://sqs.eu-west-1.amazonaws.com/1/q", "stray"},
	} {
		if _, err := ParseFlags(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestNewChecks(t *testing.T) {
	url := "https://sqs.eu-west-1.amazonaws.com/123456789012/q"
	for _, c := range []struct {
		name string
		cfg  Config
	}{
		{"no queue", Config{}},
		{"not a queue URL", Config{QueueURL: "orders"}},
		{"batch too big", Config{QueueURL: url, BatchSize: 10001, BatchWindow: time.Second}},
		{"over 10 without window", Config{QueueURL: url, BatchSize: 11}},
		{"window too long", Config{QueueURL: url, BatchWindow: 301 * time.Second}},
		{"fractional visibility", Config{QueueURL: url, VisibilityTimeout: 1500 * time.Millisecond}},
	} {
		if _, err := New(c.cfg); err == nil {
			t.Errorf("%s: accepted", c.name)
		}
	}
	s, err := New(Config{QueueURL: url})
	if err != nil {
		t.Fatal(err)
	}
	if s.cfg.Region != "eu-west-1" || s.cfg.BatchSize != 10 || s.cfg.Pollers != 1 {
		t.Errorf("defaults = %+v", s.cfg)
	}
	if got := regionOf("eu-west-3.queue.amazonaws.com"); got != "eu-west-3" {
		t.Errorf("legacy host region = %q", got)
	}
}
