package export_test

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
	"github.com/cutoverhq/cutover/audit/audittest"
	"github.com/cutoverhq/cutover/audit/export"
	_ "github.com/cutoverhq/cutover/audit/file"
	"github.com/cutoverhq/cutover/internal/golden"
)

func f(v float64) *float64 { return &v }
func n(v int64) *int64     { return &v }

// entry is one record of a scripted log.
type entry struct {
	kind, service, actor string
	data                 any
}

const plan = "plans/payments.yaml"

// fullLog is a realistic history: a convert run, a shift that rolls back
// on a failed analysis, one that completes with a self-approval, and two
// drills, one failing.
func fullLog() []entry {
	return []entry{
		{audit.KindConvert, "", "alice", audit.ConvertData{
			Inputs:    []audit.FileDigest{{Path: "ecs/payments-api.json", SHA256: "sha256:aa"}, {Path: "ecs/ledger.json", SHA256: "sha256:bb"}},
			Outputs:   []audit.FileDigest{{Path: "migration/values/payments-api/prod.yaml", SHA256: "sha256:cc"}},
			OutputDir: "migration",
			Services:  []string{"payments-api", "ledger"},
			Placements: []audit.Placement{
				{Service: "payments-api", Environment: "staging", Namespace: "payments-staging", Cluster: "eks-nonprod", ServiceAccount: "payments-api", Role: "arn:aws:iam::111:role/payments-api-staging"},
				{Service: "payments-api", Environment: "prod", Namespace: "payments-prod", Cluster: "eks-prod", ServiceAccount: "payments-api", Role: "arn:aws:iam::222:role/payments-api-prod"},
				{Service: "ledger", Environment: "staging", Namespace: "ledger", Cluster: "eks-shared"},
				{Service: "ledger", Environment: "prod", Namespace: "ledger", Cluster: "eks-shared"},
			},
			Findings: map[string]int{"mapped": 41, "warning": 3, "dropped": 1, "fill": 2},
		}},
		{audit.KindPlanLoaded, "payments-api", "alice", audit.PlanData{Steps: []float64{10, 50, 100}, Router: "proxy", Metrics: "embedded", Environment: "prod", StartedBy: "alice"}},
		{audit.KindStepStarted, "payments-api", "alice", audit.StepData{Step: 0, Weight: 10}},
		{audit.KindWeightSet, "payments-api", "alice", audit.WeightData{Step: 0, Want: 10, Router: "proxy"}},
		{audit.KindWeightConfirmed, "payments-api", "alice", audit.WeightData{Step: 0, Want: 10, Got: f(10), Router: "proxy"}},
		{audit.KindAnalysis, "payments-api", "alice", audit.AnalysisData{Step: 0, Metric: "error-rate", Side: "new", Value: 0.001, Threshold: f(0.01), Op: "<=", Verdict: "pass", Window: "30s", Requests: 1200}},
		{audit.KindApproval, "payments-api", "bob", audit.ApprovalData{Step: 1, Group: "payments-leads", Required: 1, StartedBy: "alice", Reason: "error rate flat; p99 within 5 ms", Satisfied: true}},
		{audit.KindStepStarted, "payments-api", "alice", audit.StepData{Step: 1, Weight: 50}},
		{audit.KindAnalysis, "payments-api", "alice", audit.AnalysisData{Step: 1, Metric: "error-rate", Side: "new", Value: 0.08, Threshold: f(0.01), Op: "<=", Verdict: "fail", Window: "10s", Requests: 900}},
		{audit.KindRollback, "payments-api", "cutover", audit.RollbackData{Step: 1, Reason: "error-rate 0.08 > 0.01 on new", FromWeight: 50, Trigger: 9, DetectionSeconds: f(0.41)}},
		{audit.KindRolledBack, "payments-api", "cutover", audit.RollbackData{Step: 1, Reason: "error-rate 0.08 > 0.01 on new", FromWeight: 50, RollbackSeconds: f(0.12)}},
		{audit.KindPlanLoaded, "payments-api", "alice", audit.PlanData{Steps: []float64{10, 100}, Router: "proxy", Environment: "prod", StartedBy: "alice"}},
		{audit.KindStepStarted, "payments-api", "alice", audit.StepData{Step: 0, Weight: 10}},
		{audit.KindApproval, "payments-api", "alice", audit.ApprovalData{Step: 1, Group: "payments-leads", Required: 1, StartedBy: "alice", Reason: "<b>looks fine</b> | ship it"}},
		{audit.KindStepStarted, "payments-api", "alice", audit.StepData{Step: 1, Weight: 100}},
		{audit.KindCompleted, "payments-api", "alice", audit.StepData{Step: 1, Weight: 100}},
		{audit.KindPlanLoaded, "ledger", "dave", audit.PlanData{Steps: []float64{25, 100}, Router: "haproxy", Environment: "prod", StartedBy: "dave"}},
		{audit.KindAbort, "ledger", "erin", audit.StepData{Step: 0, Weight: 25, Reason: "customer complaint"}},
		{audit.KindRollback, "ledger", "cutover", audit.RollbackData{Step: 0, Reason: "abort", FromWeight: 25}},
		{audit.KindRolledBack, "ledger", "cutover", audit.RollbackData{Step: 0, Reason: "abort", FromWeight: 25, RollbackSeconds: f(0.3)}},
		{audit.KindDrill, "payments-api", "carol", audit.DrillData{Name: "kill-new-at-50", Experiment: "kill-new", Target: "new",
			Limits:   audit.DrillMeasures{DetectionSeconds: f(1), RollbackSeconds: f(1), ClientErrors: n(0)},
			Measured: audit.DrillMeasures{DetectionSeconds: f(0.38), RollbackSeconds: f(0.09), ClientErrors: n(0), Requests: n(5000)}, Passed: true}},
		{audit.KindDrill, "payments-api", "carol", audit.DrillData{Name: "latency-300ms", Experiment: "latency", Target: "new",
			Limits:   audit.DrillMeasures{DetectionSeconds: f(5)},
			Measured: audit.DrillMeasures{DetectionSeconds: f(7.5)}, Passed: false, Message: "detection took 7.50 s, limit 5.00 s"}},
	}
}

func write(t *testing.T, entries []entry, key bool) string {
	t.Helper()
	ctx := context.Background()
	loc := "file:" + filepath.Join(t.TempDir(), "audit.log")
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	opts := audit.Options{Now: func() time.Time { at = at.Add(7 * time.Second); return at }}
	if key {
		opts.Key = audittest.TestKey()
	}
	l, err := audit.Open(ctx, loc, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		r := audit.Record{Kind: e.kind, Service: e.service, Actor: e.actor}
		if e.service != "" {
			r.Plan, r.PlanDigest, r.PlanCommit = plan, "sha256:4d7a1e0c9b3f2a6e5d8c7b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f10", "9fceb02d0ae598e95dc970b74767f19372d61af8"
		}
		if err := r.SetData(e.data); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	return loc
}

func build(t *testing.T, loc string, key bool) *export.Report {
	t.Helper()
	opts := export.Options{Now: func() time.Time { return time.Date(2026, 3, 3, 8, 0, 0, 0, time.UTC) }}
	if key {
		opts.Key = audittest.TestPublicKey()
	}
	rep, err := export.Build(context.Background(), loc, opts)
	if err != nil {
		t.Fatal(err)
	}
	rep.Location = "file:cutover-audit.log" // the temp dir's name varies
	return rep
}

func assertFormats(t *testing.T, dir string, rep *export.Report) {
	t.Helper()
	for _, format := range export.Formats {
		var b bytes.Buffer
		if err := export.Write(&b, rep, format); err != nil {
			t.Fatal(err)
		}
		golden.Assert(t, filepath.Join("testdata", dir, "report."+format), b.Bytes())
	}
}

func status(rep *export.Report) map[string]export.Status {
	m := map[string]export.Status{}
	for _, s := range rep.Sections {
		m[s.ID] = s.Status
	}
	return m
}

func TestReports(t *testing.T) {
	t.Run("full", func(t *testing.T) {
		rep := build(t, write(t, fullLog(), true), true)
		assertFormats(t, "full", rep)
		want := map[string]export.Status{
			"change-audit-trail":      export.Evidenced,
			"change-approval":         export.Exceptions, // alice approved her own shift
			"rollback-capability":     export.Evidenced,
			"environment-segregation": export.Exceptions, // ledger shares a namespace
			"resilience-testing":      export.Exceptions, // the latency drill failed
		}
		if got := status(rep); !equal(got, want) {
			t.Fatalf("statuses %v, want %v", got, want)
		}
		if !rep.Integrity.Whole || rep.Integrity.Proven != rep.Integrity.Records {
			t.Fatalf("integrity %+v", rep.Integrity)
		}
	})
	t.Run("tampered", func(t *testing.T) {
		loc := write(t, fullLog(), true)
		p := strings.TrimPrefix(loc, "file:")
		b, _ := os.ReadFile(p)
		os.WriteFile(p, bytes.Replace(b, []byte(`"actor":"bob"`), []byte(`"actor":"eve"`), 1), 0o644)
		rep := build(t, loc, true)
		assertFormats(t, "tampered", rep)
		if rep.Integrity.Whole || !strings.HasPrefix(rep.Verdict(), "NOT WHOLE: record 7 (line 7): edited") {
			t.Fatalf("verdict %q", rep.Verdict())
		}
		if status(rep)["change-audit-trail"] != export.Exceptions {
			t.Fatal("a tampered log evidences its trail")
		}
	})
	t.Run("drift", func(t *testing.T) {
		// A shift whose router was moved by hand mid-hold: the trail
		// shows the run and flags the change made outside it.
		log := fullLog()[1:5]
		log = append(log,
			entry{audit.KindRouterDrift, "payments-api", "alice", audit.WeightData{Step: 0, Want: 10, Got: f(0), Router: "haproxy"}},
			entry{audit.KindPause, "payments-api", "alice", audit.StepData{Step: 0, Weight: 10}},
			entry{audit.KindAbort, "payments-api", "bob", audit.StepData{Step: 0, Weight: 10, Reason: "someone drained the new side by hand"}})
		rep := build(t, write(t, log, false), false)
		var trail export.Section
		for _, s := range rep.Sections {
			if s.ID == "change-audit-trail" {
				trail = s
			}
		}
		if trail.Status != export.Exceptions || !strings.Contains(trail.Summary, "1 weight change made outside a shift") {
			t.Fatalf("trail %s: %s", trail.Status, trail.Summary)
		}
		if len(trail.Rows) != 1 || !strings.Contains(trail.Rows[0].Cells[6], "aborted") || !strings.Contains(trail.Rows[0].Cells[6], "1 weight change outside the shift") {
			t.Fatalf("rows %+v", trail.Rows)
		}
		found := false
		for _, n := range trail.Notes {
			found = found || strings.Contains(n, "read back new 0% while the shift had set 10%")
		}
		if !found {
			t.Fatalf("notes %q", trail.Notes)
		}
	})
	t.Run("unsigned-in-progress", func(t *testing.T) {
		rep := build(t, write(t, fullLog()[1:3], false), false)
		assertFormats(t, "unsigned-in-progress", rep)
		want := map[string]export.Status{
			"change-audit-trail":      export.Evidenced,
			"change-approval":         export.NoEvidence,
			"rollback-capability":     export.NoEvidence,
			"environment-segregation": export.NoEvidence,
			"resilience-testing":      export.NoEvidence,
		}
		if got := status(rep); !equal(got, want) {
			t.Fatalf("statuses %v, want %v", got, want)
		}
	})
}

func equal(a, b map[string]export.Status) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestHTMLEscapes: text from records (a reason typed by a person) never
// becomes markup.
func TestHTMLEscapes(t *testing.T) {
	rep := build(t, write(t, fullLog(), true), true)
	var b bytes.Buffer
	if err := export.WriteHTML(&b, rep); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "<b>looks fine</b>") || !strings.Contains(b.String(), "&lt;b&gt;looks fine&lt;/b&gt;") {
		t.Fatal("a record's text reached the page unescaped")
	}
	var m bytes.Buffer
	export.WriteMarkdown(&m, rep)
	if !strings.Contains(m.String(), `&lt;b&gt;looks fine&lt;/b&gt; \| ship it`) {
		t.Fatal("a record's text breaks the Markdown table")
	}
}

func TestJSONRoundTrips(t *testing.T) {
	rep := build(t, write(t, fullLog(), true), true)
	var b bytes.Buffer
	export.WriteJSON(&b, rep)
	var back export.Report
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Sections) != 5 || back.Sections[2].Rows[0].Records[0].Seq != 9 || len(back.Sections[2].Rows[0].Records[0].Hash) != 64 {
		t.Fatalf("%+v", back.Sections[2].Rows)
	}
}

func TestUnknownFormat(t *testing.T) {
	if err := export.Write(&bytes.Buffer{}, &export.Report{}, "pdf"); err == nil || !strings.Contains(err.Error(), "md, html, json") {
		t.Fatalf("%v", err)
	}
}
