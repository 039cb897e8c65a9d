// Package export turns an audit log into the evidence report a regulated
// team hands its auditor: one section per need that DORA (Regulation (EU)
// 2022/2554) and its ICT risk management RTS (Delegated Regulation (EU)
// 2024/1774) place on production changes — change audit trail, change
// approval, rollback capability, environment segregation, resilience
// testing. Each row points at the records that prove it (seq and hash), so
// the auditor can check any claim against the verified log, and a section
// the log holds no evidence for says so instead of staying silent.
//
// The report is built from one verified read of the log: if verification
// finds the log is not whole, the report says so first, and names the
// first bad record.
package export

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cutoverhq/cutover/audit"
)

// Options tune Build.
type Options struct {
	// Key is the public key checkpoints must be signed with. Nil: the
	// report says signatures were not checked.
	Key ed25519.PublicKey
	// Expect are heads known from an earlier report (see
	// audit.VerifyOptions.Expect).
	Expect []audit.Head
	// Now stamps the report. Nil: time.Now.
	Now func() time.Time
}

// Status is how well a section is evidenced.
type Status string

const (
	// Evidenced: the log holds records that meet the need.
	Evidenced Status = "evidenced"
	// Exceptions: the log holds evidence, and also records that break
	// the need (an approval by the shift's own starter, a failed drill,
	// environments sharing a namespace). Rows marked "exception" say
	// which.
	Exceptions Status = "exceptions"
	// NoEvidence: the log holds nothing for this need.
	NoEvidence Status = "no evidence"
)

// Report is the evidence report.
type Report struct {
	// Generated is when the report was built, UTC.
	Generated time.Time `json:"generated"`
	// Location is the log, as given, a password in it redacted.
	Location  string    `json:"location"`
	Integrity Integrity `json:"integrity"`
	Sections  []Section `json:"sections"`
}

// Integrity is what verification proved about the log.
type Integrity struct {
	// Whole says verification found no problem.
	Whole bool `json:"whole"`
	// Records is how many records the log holds.
	Records uint64 `json:"records"`
	// Head is the last record (SEQ:HASH): keep it, and a later verify
	// with --expect proves the log still holds it.
	Head string `json:"head"`
	// From and To are the times of the first and last record.
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Signed says checkpoints carry signatures; KeyIDs name the keys.
	Signed bool     `json:"signed"`
	KeyIDs []string `json:"keyIds,omitempty"`
	// KeyChecked says signatures were checked against a given key.
	KeyChecked bool `json:"keyChecked"`
	// Proven is the last record covered by a verified checkpoint.
	Proven uint64 `json:"proven"`
	// Problems are what verification found, first bad record first.
	Problems []string `json:"problems,omitempty"`
	// Warnings are what keeps full proof short though the chain is whole.
	Warnings []string `json:"warnings,omitempty"`
}

// Section is the evidence for one need.
type Section struct {
	// ID is stable, for links and machines: "change-audit-trail", …
	ID    string `json:"id"`
	Title string `json:"title"`
	// Requirement is what the regulation asks, in brief, with its
	// reference.
	Requirement string `json:"requirement"`
	Status      Status `json:"status"`
	// Summary says in a sentence what the log shows.
	Summary string `json:"summary"`
	// Columns head the rows' cells.
	Columns []string `json:"columns"`
	Rows    []Row    `json:"rows"`
	// Notes explain exceptions and limits.
	Notes []string `json:"notes,omitempty"`
}

// Row is one line of evidence.
type Row struct {
	Cells []string `json:"cells"`
	// Records are the records that prove the row.
	Records []Ref `json:"records"`
	// Exception says the row breaks the need, and why; empty otherwise.
	Exception string `json:"exception,omitempty"`
}

// Ref points at one record.
type Ref struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
}

func (r Ref) String() string {
	return "#" + strconv.FormatUint(r.Seq, 10) + " " + r.Hash[:min(12, len(r.Hash))]
}

func ref(r *audit.Record) Ref { return Ref{Seq: r.Seq, Hash: r.Hash} }

// Build reads and verifies the log at location and builds the report.
func Build(ctx context.Context, location string, opts Options) (*Report, error) {
	var recs []audit.Record
	vr, err := audit.Verify(ctx, location, audit.VerifyOptions{
		Key:    opts.Key,
		Expect: opts.Expect,
		Visit: func(e audit.Entry) {
			if e.Err == nil {
				recs = append(recs, e.Record)
			}
		},
	})
	if err != nil {
		return nil, err
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	return FromRecords(vr.Location, vr, recs, now().UTC()), nil
}

// FromRecords builds the report from a verification report and the sound
// records it read, in log order.
func FromRecords(location string, vr *audit.Report, recs []audit.Record, generated time.Time) *Report {
	rep := &Report{Generated: generated, Location: location}
	in := Integrity{
		Whole:      vr.OK(),
		Records:    vr.Records,
		Signed:     vr.Signed(),
		KeyIDs:     vr.KeyIDs,
		KeyChecked: vr.KeyChecked,
		Proven:     vr.Proven,
		Warnings:   vr.Warnings(),
	}
	if vr.Head.Seq > 0 {
		in.Head = vr.Head.String()
	}
	if len(recs) > 0 {
		in.From, in.To = recs[0].Time, recs[len(recs)-1].Time
	}
	for _, p := range vr.Problems {
		in.Problems = append(in.Problems, p.String())
	}
	if vr.Truncated > 0 {
		in.Problems = append(in.Problems, fmt.Sprintf("… and %d more", vr.Truncated))
	}
	rep.Integrity = in
	rep.Sections = []Section{
		auditTrail(recs, in),
		approvals(recs),
		rollbacks(recs),
		segregation(recs),
		resilience(recs),
	}
	return rep
}

// run is one shift of one service: from plan-loaded to its outcome.
type run struct {
	service  string
	start    *audit.Record
	plan     audit.PlanData
	steps    int // step-started records
	lastStep int
	outcome  *audit.Record
	refs     []Ref
	// drifts are the run's router-drift records: weights moved outside
	// the shift.
	drifts []*audit.Record
}

func auditTrail(recs []audit.Record, in Integrity) Section {
	s := Section{
		ID:          "change-audit-trail",
		Title:       "Change audit trail",
		Requirement: "Every change to production is recorded, with who made it, when, what was planned and what happened, in a record that cannot be altered unnoticed. DORA Art. 9(4)(e); RTS (EU) 2024/1774 Art. 17(1)(d).",
		Columns:     []string{"Service", "Change", "Started", "By", "Plan", "Steps", "Outcome"},
	}
	open := map[string]*run{}
	var runs []*run
	converts := 0
	for i := range recs {
		r := &recs[i]
		switch r.Kind {
		case audit.KindConvert:
			converts++
			var d audit.ConvertData
			r.DecodeData(&d)
			s.Rows = append(s.Rows, Row{
				Cells:   []string{strings.Join(d.Services, ", "), "convert", stamp(r.Time), r.Actor, fmt.Sprintf("%d inputs → %s", len(d.Inputs), orDash(d.OutputDir)), "—", fmt.Sprintf("%d outputs written", len(d.Outputs))},
				Records: []Ref{ref(r)},
			})
		case audit.KindPlanLoaded:
			if prev := open[r.Service]; prev != nil && prev.outcome == nil {
				runs = append(runs, prev) // superseded: listed as in progress
			}
			u := &run{service: r.Service, start: r, refs: []Ref{ref(r)}}
			r.DecodeData(&u.plan)
			open[r.Service] = u
		case audit.KindStepStarted:
			if u := open[r.Service]; u != nil {
				var d audit.StepData
				r.DecodeData(&d)
				u.steps++
				u.lastStep = d.Step
			}
		case audit.KindRouterDrift:
			if u := open[r.Service]; u != nil {
				u.drifts = append(u.drifts, r)
				u.refs = append(u.refs, ref(r))
			}
		case audit.KindCompleted, audit.KindRolledBack, audit.KindAbort:
			if u := open[r.Service]; u != nil && u.outcome == nil {
				u.outcome = r
				u.refs = append(u.refs, ref(r))
				runs = append(runs, u)
				delete(open, r.Service)
			}
		}
	}
	for _, u := range open {
		runs = append(runs, u)
	}
	sort.SliceStable(runs, func(i, j int) bool { return runs[i].start.Seq < runs[j].start.Seq })
	drifts := 0
	for _, u := range runs {
		outcome := "in progress (no outcome recorded)"
		if u.outcome != nil {
			switch u.outcome.Kind {
			case audit.KindCompleted:
				outcome = "completed"
			case audit.KindRolledBack:
				outcome = "rolled back"
			case audit.KindAbort:
				outcome = "aborted"
			}
			outcome += " " + stamp(u.outcome.Time)
		}
		plan := orDash(u.start.Plan)
		if u.start.PlanCommit != "" {
			plan += " @" + u.start.PlanCommit[:min(12, len(u.start.PlanCommit))]
		} else if u.start.PlanDigest != "" {
			plan += " (" + shortDigest(u.start.PlanDigest) + ")"
		}
		steps := fmt.Sprintf("%d of %d", u.steps, len(u.plan.Steps))
		if len(u.plan.Steps) == 0 {
			steps = strconv.Itoa(u.steps)
		}
		if u.plan.Resumed {
			steps += " (resumed)"
		}
		if len(u.drifts) > 0 {
			drifts += len(u.drifts)
			outcome += fmt.Sprintf("; %s outside the shift, each paused it", plural(len(u.drifts), "weight change"))
			for _, d := range u.drifts {
				var w audit.WeightData
				d.DecodeData(&w)
				got := "?"
				if w.Got != nil {
					got = pct(*w.Got)
				}
				s.Notes = append(s.Notes, fmt.Sprintf("%s: at %s the router read back new %s while the shift had set %s: the traffic was moved outside the controlled change (record %s).", u.service, stamp(d.Time), got, pct(w.Want), ref(d)))
			}
		}
		s.Rows = append(s.Rows, Row{
			Cells:   []string{u.service, "shift", stamp(u.start.Time), u.start.Actor, plan, steps, outcome},
			Records: u.refs,
		})
	}
	switch {
	case len(s.Rows) == 0:
		s.Status = NoEvidence
		s.Summary = "The log records no convert run and no shift."
	case !in.Whole:
		s.Status = Exceptions
		s.Summary = fmt.Sprintf("%s recorded, but the log is not whole: see Integrity.", plural(len(s.Rows), "change"))
	case drifts > 0:
		s.Status = Exceptions
		s.Summary = fmt.Sprintf("%s and %s recorded in a hash-chained log of %s; detected: %s made outside a shift (each paused its shift until someone resumed or aborted it).", plural(converts, "convert run"), plural(len(runs), "shift"), plural(int(in.Records), "record"), plural(drifts, "weight change"))
	default:
		s.Status = Evidenced
		s.Summary = fmt.Sprintf("%s and %s recorded in a hash-chained log of %s.", plural(converts, "convert run"), plural(len(runs), "shift"), plural(int(in.Records), "record"))
	}
	if in.Whole && !in.KeyChecked {
		s.Notes = append(s.Notes, "Checkpoint signatures were not checked against a key: the chain shows the records are intact, not who wrote them.")
	}
	return s
}

func approvals(recs []audit.Record) Section {
	s := Section{
		ID:          "change-approval",
		Title:       "Change approval",
		Requirement: "Changes are approved before they take effect, by people independent of those who request and implement them. RTS (EU) 2024/1774 Art. 17(1)(b).",
		Columns:     []string{"Time", "Service", "Step", "Decision", "By", "Group", "Shift started by", "Reason"},
	}
	bad := 0
	for i := range recs {
		r := &recs[i]
		if r.Kind != audit.KindApproval && r.Kind != audit.KindRefusal {
			continue
		}
		var d audit.ApprovalData
		r.DecodeData(&d)
		decision := "approved"
		if r.Kind == audit.KindRefusal {
			decision = "refused"
		} else if d.Required > 1 {
			decision = fmt.Sprintf("approved (%d required)", d.Required)
		}
		row := Row{
			Cells:   []string{stamp(r.Time), r.Service, strconv.Itoa(d.Step), decision, r.Actor, orDash(d.Group), orDash(d.StartedBy), orDash(d.Reason)},
			Records: []Ref{ref(r)},
		}
		if d.StartedBy != "" && d.StartedBy == r.Actor && r.Kind == audit.KindApproval {
			row.Exception = "approved by the person who started the shift"
			bad++
		}
		s.Rows = append(s.Rows, row)
	}
	switch {
	case len(s.Rows) == 0:
		s.Status = NoEvidence
		s.Summary = "The log records no approval or refusal: no plan step required approval, or approvals were not recorded."
	case bad > 0:
		s.Status = Exceptions
		s.Summary = fmt.Sprintf("%s recorded; %s from the shift's own starter.", plural(len(s.Rows), "decision"), plural(bad, "approval"))
	default:
		s.Status = Evidenced
		s.Summary = fmt.Sprintf("%s recorded, none by the person who started the shift.", plural(len(s.Rows), "decision"))
	}
	return s
}

func rollbacks(recs []audit.Record) Section {
	s := Section{
		ID:          "rollback-capability",
		Title:       "Rollback capability",
		Requirement: "Fall-back procedures exist and work: a change that fails is aborted or reversed. RTS (EU) 2024/1774 Art. 17(1)(e).",
		Columns:     []string{"Time", "Service", "Step", "Reason", "From weight", "Detection", "Rollback", "Confirmed"},
	}
	pending := map[string]int{}
	confirmed := 0
	drilled := 0
	for i := range recs {
		r := &recs[i]
		switch r.Kind {
		case audit.KindRollback, audit.KindAbort:
			var d audit.RollbackData
			r.DecodeData(&d)
			if k, ok := pending[r.Service]; ok && r.Kind == audit.KindRollback && strings.HasPrefix(s.Rows[k].Cells[3], "abort") {
				// The rollback an abort set off: one fall-back, one row.
				row := &s.Rows[k]
				row.Cells[4] = pct(d.FromWeight)
				if d.DetectionSeconds != nil {
					row.Cells[5] = secs(d.DetectionSeconds)
				}
				row.Records = append(row.Records, ref(r))
				continue
			}
			reason := d.Reason
			if r.Kind == audit.KindAbort {
				var sd audit.StepData
				r.DecodeData(&sd)
				reason = "abort: " + orDash(sd.Reason)
				if d.FromWeight == 0 {
					d.FromWeight = sd.Weight
				}
			}
			row := Row{
				Cells:   []string{stamp(r.Time), r.Service, strconv.Itoa(d.Step), orDash(reason), pct(d.FromWeight), secs(d.DetectionSeconds), secs(d.RollbackSeconds), "no"},
				Records: []Ref{ref(r)},
			}
			if d.Trigger != 0 {
				for j := range recs {
					if recs[j].Seq == d.Trigger {
						row.Records = append([]Ref{ref(&recs[j])}, row.Records...)
						break
					}
				}
			}
			s.Rows = append(s.Rows, row)
			pending[r.Service] = len(s.Rows) - 1
		case audit.KindRolledBack:
			var d audit.RollbackData
			r.DecodeData(&d)
			k, ok := pending[r.Service]
			if !ok {
				s.Rows = append(s.Rows, Row{Cells: []string{stamp(r.Time), r.Service, strconv.Itoa(d.Step), orDash(d.Reason), pct(d.FromWeight), secs(d.DetectionSeconds), "", ""}})
				k = len(s.Rows) - 1
			}
			row := &s.Rows[k]
			if d.RollbackSeconds != nil {
				row.Cells[6] = secs(d.RollbackSeconds)
			}
			if d.DetectionSeconds != nil {
				row.Cells[5] = secs(d.DetectionSeconds)
			}
			row.Cells[7] = "yes " + stamp(r.Time)
			row.Records = append(row.Records, ref(r))
			delete(pending, r.Service)
			confirmed++
		case audit.KindDrill:
			var d audit.DrillData
			r.DecodeData(&d)
			if d.Passed && d.Measured.RollbackSeconds != nil {
				drilled++
			}
		}
	}
	for _, k := range pending {
		s.Rows[k].Exception = "no read-back confirmed the rollback"
	}
	switch {
	case len(s.Rows) == 0 && drilled == 0:
		s.Status = NoEvidence
		s.Summary = "No rollback or abort is recorded, and no drill measured one: the fall-back has not been shown to work."
	case len(pending) > 0:
		s.Status = Exceptions
		s.Summary = fmt.Sprintf("%s; %d not confirmed by reading the weights back.", plural(len(s.Rows), "rollback or abort|rollbacks or aborts"), len(pending))
	default:
		s.Status = Evidenced
		s.Summary = fmt.Sprintf("%s, %d confirmed by read-back; %s measured a rollback (see Resilience testing).", plural(len(s.Rows), "rollback or abort|rollbacks or aborts"), confirmed, plural(drilled, "passing drill"))
	}
	return s
}

// isProd says whether an environment name denotes production.
func isProd(env string) bool {
	e := strings.ToLower(env)
	return e == "prod" || e == "production" || e == "prd" || e == "live" || strings.HasPrefix(e, "prod-") || strings.HasSuffix(e, "-prod")
}

func segregation(recs []audit.Record) Section {
	s := Section{
		ID:          "environment-segregation",
		Title:       "Environment segregation",
		Requirement: "Production is kept apart from development and test environments, so changes and tests elsewhere cannot touch it. RTS (EU) 2024/1774, recital 10 and its ICT operations security requirements.",
		Columns:     []string{"Service", "Environment", "Cluster", "Namespace", "Identity"},
	}
	// The latest convert run that placed a service is what stands.
	latest := map[string]*audit.Record{}
	placements := map[string][]audit.Placement{}
	var order []string
	for i := range recs {
		r := &recs[i]
		if r.Kind != audit.KindConvert {
			continue
		}
		var d audit.ConvertData
		r.DecodeData(&d)
		seen := map[string]bool{}
		for _, p := range d.Placements {
			if !seen[p.Service] {
				seen[p.Service] = true
				if _, ok := latest[p.Service]; !ok {
					order = append(order, p.Service)
				}
				latest[p.Service] = r
				placements[p.Service] = nil
			}
			placements[p.Service] = append(placements[p.Service], p)
		}
	}
	bad := 0
	for _, svc := range order {
		ps := placements[svc]
		r := latest[svc]
		for _, p := range ps {
			row := Row{
				Cells:   []string{svc, p.Environment, orDash(p.Cluster), orDash(p.Namespace), identity(p)},
				Records: []Ref{ref(r)},
			}
			for _, q := range ps {
				if q.Environment == p.Environment || isProd(q.Environment) == isProd(p.Environment) {
					continue
				}
				if q.Namespace == p.Namespace && q.Cluster == p.Cluster {
					row.Exception = fmt.Sprintf("shares namespace %q with %s", p.Namespace, q.Environment)
					break
				}
				if q.Role != "" && q.Role == p.Role {
					row.Exception = fmt.Sprintf("shares IAM role %s with %s", p.Role, q.Environment)
					break
				}
			}
			if row.Exception != "" {
				bad++
			}
			s.Rows = append(s.Rows, row)
		}
	}
	switch {
	case len(s.Rows) == 0:
		s.Status = NoEvidence
		s.Summary = "No convert run recorded where services run: convert writes that into the log."
	case bad > 0:
		s.Status = Exceptions
		s.Summary = fmt.Sprintf("%s of %s; %d share a namespace or IAM role between production and another environment.", plural(len(s.Rows), "placement"), plural(len(order), "service"), bad)
	default:
		s.Status = Evidenced
		s.Summary = fmt.Sprintf("%s of %s; production shares no namespace and no IAM role with another environment.", plural(len(s.Rows), "placement"), plural(len(order), "service"))
	}
	s.Notes = append(s.Notes, "Placements come from the latest convert run that covered each service; whether clusters are themselves separate is outside what cutover sees when the cluster is left to Argo CD.")
	return s
}

func identity(p audit.Placement) string {
	switch {
	case p.ServiceAccount != "" && p.Role != "":
		return p.ServiceAccount + " → " + p.Role
	case p.ServiceAccount != "":
		return p.ServiceAccount
	case p.Role != "":
		return p.Role
	}
	return "—"
}

func resilience(recs []audit.Record) Section {
	s := Section{
		ID:          "resilience-testing",
		Title:       "Resilience testing",
		Requirement: "Resilience is tested: failures are injected and the response is measured against set limits. DORA Art. 24 and 25.",
		Columns:     []string{"Time", "Service", "Drill", "Experiment", "Detection", "Rollback", "Client errors", "Result"},
	}
	failed := 0
	for i := range recs {
		r := &recs[i]
		if r.Kind != audit.KindDrill {
			continue
		}
		var d audit.DrillData
		r.DecodeData(&d)
		result := "pass"
		row := Row{
			Cells: []string{stamp(r.Time), r.Service, orDash(d.Name), orDash(d.Experiment),
				limited(secs(d.Measured.DetectionSeconds), secs(d.Limits.DetectionSeconds)),
				limited(secs(d.Measured.RollbackSeconds), secs(d.Limits.RollbackSeconds)),
				limited(count(d.Measured.ClientErrors), count(d.Limits.ClientErrors)), result},
			Records: []Ref{ref(r)},
		}
		if !d.Passed {
			failed++
			row.Cells[7] = "fail"
			row.Exception = orDash(d.Message)
		}
		s.Rows = append(s.Rows, row)
	}
	switch {
	case len(s.Rows) == 0:
		s.Status = NoEvidence
		s.Summary = "No drill is recorded: run `cutover drill` against a shift."
	case failed > 0:
		s.Status = Exceptions
		s.Summary = fmt.Sprintf("%s, %d failed their limits.", plural(len(s.Rows), "drill"), failed)
	default:
		s.Status = Evidenced
		s.Summary = fmt.Sprintf("%s, all within their limits.", plural(len(s.Rows), "drill"))
	}
	return s
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") }

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func shortDigest(d string) string {
	if i := strings.IndexByte(d, ':'); i >= 0 && len(d) > i+13 {
		return d[:i+13]
	}
	return d
}

func pct(w float64) string { return strconv.FormatFloat(w, 'f', -1, 64) + "%" }

func secs(v *float64) string {
	if v == nil {
		return "—"
	}
	return strconv.FormatFloat(*v, 'f', 2, 64) + " s"
}

func count(v *int64) string {
	if v == nil {
		return "—"
	}
	return strconv.FormatInt(*v, 10)
}

// limited shows a measure beside its limit: "0.42 s (≤ 1.00 s)".
func limited(measured, limit string) string {
	if limit == "—" {
		return measured
	}
	return measured + " (≤ " + limit + ")"
}

// plural says "1 drill" or "2 drills"; irregular nouns give both forms
// ("rollback or abort|rollbacks or aborts").
func plural(n int, noun string) string {
	one, many := noun, noun+"s"
	if i := strings.IndexByte(noun, '|'); i >= 0 {
		one, many = noun[:i], noun[i+1:]
	}
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}
