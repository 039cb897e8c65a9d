package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/audit"
)

// auditFixture makes a key pair with keygen and a log of five records
// signed with it: plan-loaded, two analyses, an approval, a rollback.
func auditFixture(t *testing.T) (dir, log string) {
	t.Helper()
	dir = t.TempDir()
	stdout, stderr, code := run(t, "audit", "keygen", "--out", filepath.Join(dir, "keys"))
	if code != 0 || !strings.Contains(stdout, "key ID") {
		t.Fatalf("keygen: exit %d: %s%s", code, stdout, stderr)
	}
	key, err := audit.LoadPrivateKey(filepath.Join(dir, "keys", "audit.key"))
	if err != nil {
		t.Fatal(err)
	}
	log = filepath.Join(dir, "audit.log")
	ctx := context.Background()
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	l, err := audit.Open(ctx, "file:"+log, audit.Options{Key: key, Now: func() time.Time { at = at.Add(time.Minute); return at }})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct {
		kind, service, actor string
		data                 any
	}{
		{audit.KindPlanLoaded, "payments-api", "alice", audit.PlanData{Steps: []float64{10, 100}, StartedBy: "alice"}},
		{audit.KindAnalysis, "payments-api", "alice", audit.AnalysisData{Step: 0, Metric: "error-rate", Side: "new", Value: 0.001, Verdict: "pass"}},
		{audit.KindApproval, "payments-api", "bob", audit.ApprovalData{Step: 1, Group: "leads", Reason: "ok\tgo"}},
		{audit.KindAnalysis, "ledger", "carol", audit.AnalysisData{Step: 0, Metric: "p99", Side: "new", Value: 250, Verdict: "fail"}},
		{audit.KindRollback, "ledger", "cutover", audit.RollbackData{Step: 0, Reason: "p99 250 > 200", FromWeight: 10}},
	} {
		rec := audit.Record{Kind: r.kind, Service: r.service, Actor: r.actor}
		rec.SetData(r.data)
		if _, err := l.Append(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	return dir, log
}

func TestAuditKeygen(t *testing.T) {
	dir, _ := auditFixture(t)
	fi, err := os.Stat(filepath.Join(dir, "keys", "audit.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("audit.key: %v %v", fi.Mode(), err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "keys", "audit.pub")); err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("audit.pub: %v", err)
	}
	// A second keygen would orphan every checkpoint the first key signed.
	before, _ := os.ReadFile(filepath.Join(dir, "keys", "audit.key"))
	_, stderr, code := run(t, "audit", "keygen", "--out", filepath.Join(dir, "keys"))
	after, _ := os.ReadFile(filepath.Join(dir, "keys", "audit.key"))
	if code == 0 || !strings.Contains(stderr, "exists") || !bytes.Equal(before, after) {
		t.Fatalf("second keygen: exit %d: %s", code, stderr)
	}
	if _, stderr, code := run(t, "audit", "keygen"); code != ExitUsage {
		t.Fatalf("keygen without --out: exit %d: %s", code, stderr)
	}
}

func TestAuditVerify(t *testing.T) {
	dir, log := auditFixture(t)
	pub := filepath.Join(dir, "keys", "audit.pub")

	stdout, stderr, code := run(t, "audit", "verify", log, "--key", pub)
	if code != 0 || !strings.Contains(stdout, "whole: 6 records") || !strings.Contains(stdout, "records 1-6 proven") {
		t.Fatalf("exit %d: %s%s", code, stdout, stderr)
	}
	// Without the key the chain verifies, with a warning; --strict fails.
	stdout, _, code = run(t, "audit", "verify", "file:"+log)
	if code != 0 || !strings.Contains(stdout, "warning: checkpoints are signed") {
		t.Fatalf("no key: exit %d: %s", code, stdout)
	}
	if _, _, code = run(t, "audit", "verify", log, "--strict"); code != ExitWarnings {
		t.Fatalf("--strict without a key: exit %d", code)
	}
	// The private key is refused as --key.
	if _, stderr, code = run(t, "audit", "verify", log, "--key", filepath.Join(dir, "keys", "audit.key")); code != ExitUsage || !strings.Contains(stderr, "private key") {
		t.Fatalf("private key as --key: exit %d: %s", code, stderr)
	}

	var rep struct {
		OK   bool `json:"ok"`
		Head struct {
			Seq  uint64 `json:"seq"`
			Hash string `json:"hash"`
		} `json:"head"`
	}
	stdout, _, code = run(t, "audit", "verify", log, "--key", pub, "--format", "json")
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || code != 0 || !rep.OK || rep.Head.Seq != 6 {
		t.Fatalf("json: exit %d %v: %s", code, err, stdout)
	}
	head := "6:" + rep.Head.Hash

	// Tampering: exit 1, naming the record and its line.
	b, _ := os.ReadFile(log)
	os.WriteFile(log, bytes.Replace(b, []byte(`"actor":"bob"`), []byte(`"actor":"eve"`), 1), 0o644)
	stdout, _, code = run(t, "audit", "verify", log, "--key", pub)
	if code != ExitWarnings || !strings.Contains(stdout, "NOT WHOLE: first bad record: record 3 (line 3): edited") {
		t.Fatalf("tampered: exit %d: %s", code, stdout)
	}
	// A cut at a checkpoint is invisible to the log alone, not to a
	// head kept from before.
	os.WriteFile(log, b, 0o644)
	lines := bytes.SplitAfter(b, []byte("\n"))
	os.WriteFile(log, bytes.Join(lines[:4], nil), 0o644)
	if _, _, code = run(t, "audit", "verify", log, "--key", pub); code != 0 {
		t.Fatalf("cut log without --expect: exit %d", code)
	}
	stdout, _, code = run(t, "audit", "verify", log, "--key", pub, "--expect", head)
	if code != ExitWarnings || !strings.Contains(stdout, "cut short") {
		t.Fatalf("cut log with --expect: exit %d: %s", code, stdout)
	}

	for _, args := range [][]string{
		{"audit", "verify", filepath.Join(dir, "missing.log")},
		{"audit", "verify", "s3://bucket/audit.log"},
		{"audit", "verify", log, "--expect", "6"},
		{"audit", "verify", log, "--format", "xml"},
	} {
		if _, stderr, code := run(t, args...); code != ExitUsage {
			t.Errorf("%v: exit %d: %s", args, code, stderr)
		}
	}
}

func TestAuditShow(t *testing.T) {
	_, log := auditFixture(t)
	stdout, stderr, code := run(t, "audit", "show", log)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 7 || !strings.HasPrefix(lines[0], "SEQ") || !strings.Contains(lines[6], "checkpoint") {
		t.Fatalf("show:\n%s", stdout)
	}
	if !strings.Contains(stdout, "step 1 for leads: ok go") {
		t.Fatalf("a tab in the data must not break the table:\n%s", stdout)
	}
	stdout, _, _ = run(t, "audit", "show", log, "--service", "ledger", "--kind", "rollback,analysis")
	if n := strings.Count(stdout, "\n"); n != 3 || !strings.Contains(stdout, "from 10%: p99 250 > 200") {
		t.Fatalf("filtered:\n%s", stdout)
	}
	stdout, _, _ = run(t, "audit", "show", log, "--since", "2026-03-02T09:03:00Z", "--until", "2026-03-02T09:05:00Z")
	if n := strings.Count(stdout, "\n"); n != 3 {
		t.Fatalf("time window:\n%s", stdout)
	}
	stdout, _, _ = run(t, "audit", "show", log, "--kind", "approval", "--format", "json")
	r, err := audit.Decode([]byte(strings.TrimSpace(stdout)))
	if err != nil || r.Actor != "bob" {
		t.Fatalf("json: %v: %s", err, stdout)
	}
	if _, _, code := run(t, "audit", "show", log, "--since", "yesterday"); code != ExitUsage {
		t.Fatalf("bad --since: exit %d", code)
	}
}

func TestAuditExport(t *testing.T) {
	dir, log := auditFixture(t)
	pub := filepath.Join(dir, "keys", "audit.pub")
	out := filepath.Join(dir, "evidence.html")
	_, stderr, code := run(t, "audit", "export", log, "--key", pub, "--format", "html", "--out", out)
	if code != 0 || !strings.Contains(stderr, "whole and signed") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	html, _ := os.ReadFile(out)
	for _, want := range []string{"Change approval", "Rollback capability", "#3 "} {
		if !strings.Contains(string(html), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	stdout, _, code := run(t, "audit", "export", log, "--format", "json")
	var rep struct {
		Sections []struct{ ID, Status string }
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || code != 0 || len(rep.Sections) != 5 {
		t.Fatalf("json: %v: %s", err, stdout)
	}
	// A log that is not whole still gets its report, saying so; exit 1.
	b, _ := os.ReadFile(log)
	os.WriteFile(log, bytes.Replace(b, []byte(`"actor":"bob"`), []byte(`"actor":"eve"`), 1), 0o644)
	stdout, stderr, code = run(t, "audit", "export", log, "--key", pub)
	if code != ExitWarnings || !strings.Contains(stdout, "**NOT WHOLE: record 3 (line 3): edited") || !strings.Contains(stderr, "not whole") {
		t.Fatalf("tampered: exit %d: %s\n%s", code, stderr, stdout)
	}
	if _, _, code := run(t, "audit", "export", log, "--format", "pdf"); code != ExitUsage {
		t.Fatalf("--format pdf: exit %d", code)
	}
}
