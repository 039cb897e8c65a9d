package cli

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cutoverhq/cutover/audit"
	"github.com/cutoverhq/cutover/audit/export"
	"github.com/cutoverhq/cutover/internal/fsutil"

	// Audit stores register their URL schemes.
	_ "github.com/cutoverhq/cutover/audit/file"
	_ "github.com/cutoverhq/cutover/audit/postgres"
)

// defaultAuditLog is where commands that act keep their audit log unless
// --audit says otherwise.
const defaultAuditLog = "file:cutover-audit.log"

func newAuditCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Verify, read and export the tamper-evident audit log",
		Long: `Every command that acts records what it did in an audit log: a hash chain of
records with checkpoints signed by an ed25519 key. The log is a local file
(file:PATH, the default file:` + strings.TrimPrefix(defaultAuditLog, "file:") + `) or a PostgreSQL table
(postgres://…). docs/audit.md describes the format, so an auditor can check a
log without cutover.`,
		Example: `  cutover audit keygen --out keys
  cutover audit verify file:cutover-audit.log --key keys/audit.pub
  cutover audit show --service payments-api --kind approval,refusal
  cutover audit export --format html --out evidence.html --key keys/audit.pub`,
	}
	cmd.AddCommand(newAuditVerifyCmd(e), newAuditShowCmd(e), newAuditExportCmd(e), newAuditKeygenCmd(e))
	return cmd
}

// logArg is the LOG argument, defaulting to the default log.
func logArg(args []string) string {
	if len(args) > 0 {
		return args[0]
	}
	return defaultAuditLog
}

// verifyFlags are the flags verify and export share.
type verifyFlags struct {
	key    string
	expect []string
}

func (f *verifyFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.key, "key", "", "public key checkpoints must be signed with (audit.pub from keygen); without it signatures are not checked")
	cmd.Flags().StringArrayVar(&f.expect, "expect", nil, "a head SEQ:HASH from an earlier verify or report that the log must still hold (repeatable)")
}

func (f *verifyFlags) options() (ed25519.PublicKey, []audit.Head, error) {
	var pub ed25519.PublicKey
	if f.key != "" {
		k, err := audit.LoadPublicKey(f.key)
		if err != nil {
			return nil, nil, usageError(fmt.Errorf("--key: %w", err))
		}
		pub = k
	}
	var heads []audit.Head
	for _, s := range f.expect {
		h, err := audit.ParseHead(s)
		if err != nil {
			return nil, nil, usageError(fmt.Errorf("--expect: %w", err))
		}
		heads = append(heads, h)
	}
	return pub, heads, nil
}

func newAuditVerifyCmd(e *env) *cobra.Command {
	var (
		vf     verifyFlags
		strict bool
		format string
	)
	cmd := &cobra.Command{
		Use:   "verify [LOG]",
		Short: "Prove the audit log whole, or name its first bad record",
		Long: `verify reads the whole log and checks each record's form and hash, the chain of
hashes linking each record to the one before, consecutive sequence numbers,
time order and the signature of every checkpoint. It exits 0 when the log is
whole and 1 naming the first bad record (its sequence number, and its line for
a file) when a record was edited, deleted, inserted or moved.

What the log alone cannot prove is reported as a warning: an unsigned log,
records after the last signed checkpoint (a cut among them is invisible), a
torn last line a crash left (the writer cuts it off when it next opens the
log). --strict makes warnings fail too. A cut that falls on a checkpoint is
caught by --expect with a head recorded earlier.`,
		Example: `  cutover audit verify --key keys/audit.pub
  cutover audit verify postgres://audit@db/cutover --key keys/audit.pub --strict
  cutover audit verify audit.log --expect 1204:9f2c…   # a head from last quarter's report`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "text" && format != "json" {
				return usageError(fmt.Errorf("--format: unknown format %q (text, json)", format))
			}
			pub, heads, err := vf.options()
			if err != nil {
				return err
			}
			loc := logArg(args)
			rep, err := audit.Verify(cmd.Context(), loc, audit.VerifyOptions{Key: pub, Expect: heads})
			if err != nil {
				return auditOpenError(err)
			}
			if format == "json" {
				out := struct {
					*audit.Report
					OK       bool     `json:"ok"`
					Warnings []string `json:"warnings,omitempty"`
				}{rep, rep.OK(), rep.Warnings()}
				b, _ := json.MarshalIndent(out, "", "  ")
				fmt.Fprintln(e.stdout, string(b))
			} else {
				writeVerify(e.stdout, rep)
			}
			if !rep.OK() || strict && len(rep.Warnings()) > 0 {
				return &silentError{code: ExitWarnings}
			}
			return nil
		},
	}
	vf.add(cmd)
	cmd.Flags().BoolVar(&strict, "strict", false, "fail (exit 1) on warnings too: unsigned, unchecked, an unproven tail, a torn last line")
	cmd.Flags().StringVar(&format, "format", "text", "output: text or json")
	return cmd
}

// auditOpenError makes a log that is not there a usage error (exit 2):
// the user named the wrong place, nothing was verified.
func auditOpenError(err error) error {
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, audit.ErrUnknownStore) {
		return usageError(err)
	}
	return err
}

func writeVerify(w io.Writer, rep *audit.Report) {
	if rep.OK() {
		fmt.Fprintf(w, "%s: whole: %d records", rep.Location, rep.Records)
		if rep.Head.Seq > 0 {
			fmt.Fprintf(w, ", head %s", rep.Head)
		}
		switch {
		case rep.KeyChecked && rep.Verified > 0:
			fmt.Fprintf(w, "; %d of %d checkpoints verified (key %s), records 1-%d proven", rep.Verified, rep.Checkpoints, strings.Join(rep.KeyIDs, ", "), rep.Proven)
		case rep.Checkpoints > 0:
			fmt.Fprintf(w, "; %d checkpoints", rep.Checkpoints)
		}
		fmt.Fprintln(w)
	} else {
		fmt.Fprintf(w, "%s: NOT WHOLE: first bad record: %s\n", rep.Location, rep.Problems[0])
		for _, p := range rep.Problems[1:] {
			fmt.Fprintf(w, "  then: %s\n", p)
		}
		if rep.Truncated > 0 {
			fmt.Fprintf(w, "  and %d more problems\n", rep.Truncated)
		}
	}
	for _, wn := range rep.Warnings() {
		fmt.Fprintf(w, "warning: %s\n", wn)
	}
}

func newAuditShowCmd(e *env) *cobra.Command {
	var (
		services     []string
		kinds        []string
		since, until string
		format       string
	)
	cmd := &cobra.Command{
		Use:   "show [LOG]",
		Short: "List audit records as a table, filtered by service, kind and time",
		Long: `show lists the records of an audit log, oldest first: sequence number, time,
kind, service, actor and the gist of the record's data. It does not verify
the log (use verify); an entry it cannot read is reported on stderr.

--since and --until take an RFC 3339 time (2026-03-02T09:30:00Z), a date
(2026-03-02, UTC) or a duration back from now (24h, 90m).`,
		Example: `  cutover audit show
  cutover audit show --service payments-api --since 24h
  cutover audit show postgres://audit@db/cutover --kind rollback,rolled-back --format json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "table" && format != "json" {
				return usageError(fmt.Errorf("--format: unknown format %q (table, json)", format))
			}
			now := time.Now()
			from, err := parseWhen(since, now)
			if err != nil {
				return usageError(fmt.Errorf("--since: %w", err))
			}
			to, err := parseWhen(until, now)
			if err != nil {
				return usageError(fmt.Errorf("--until: %w", err))
			}
			kindSet := map[string]bool{}
			for _, k := range kinds {
				for _, k := range strings.Split(k, ",") {
					if k = strings.TrimSpace(k); k != "" {
						kindSet[k] = true
					}
				}
			}
			svcSet := map[string]bool{}
			for _, s := range services {
				for _, s := range strings.Split(s, ",") {
					if s = strings.TrimSpace(s); s != "" {
						svcSet[s] = true
					}
				}
			}
			keep := func(r *audit.Record) bool {
				return (len(kindSet) == 0 || kindSet[r.Kind]) &&
					(len(svcSet) == 0 || svcSet[r.Service]) &&
					(from.IsZero() || !r.Time.Before(from)) &&
					(to.IsZero() || r.Time.Before(to))
			}
			st, err := audit.OpenStore(cmd.Context(), logArg(args), audit.ReadOnly)
			if err != nil {
				return auditOpenError(err)
			}
			defer st.Close()
			return showRecords(cmd.Context(), e, st, keep, format)
		},
	}
	cmd.Flags().StringArrayVar(&services, "service", nil, "only records of these services (repeatable, or comma-separated)")
	cmd.Flags().StringArrayVar(&kinds, "kind", nil, "only records of these kinds (repeatable, or comma-separated): "+strings.Join(knownKinds, ", "))
	cmd.Flags().StringVar(&since, "since", "", "only records at or after this time")
	cmd.Flags().StringVar(&until, "until", "", "only records before this time")
	cmd.Flags().StringVar(&format, "format", "table", "output: table, or json (one record per line, as stored)")
	return cmd
}

var knownKinds = []string{
	audit.KindConvert, audit.KindPlanLoaded, audit.KindStepStarted, audit.KindWeightSet, audit.KindWeightConfirmed,
	audit.KindAnalysis, audit.KindApproval, audit.KindRefusal, audit.KindPause, audit.KindResume, audit.KindPromote,
	audit.KindAbort, audit.KindRollback, audit.KindRolledBack, audit.KindCompleted, audit.KindDrill,
	audit.KindCheckpoint, audit.KindRepair,
}

func showRecords(ctx context.Context, e *env, st audit.Store, keep func(*audit.Record) bool, format string) error {
	var tw *tabwriter.Writer
	if format == "table" {
		tw = tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "SEQ\tTIME\tKIND\tSERVICE\tACTOR\tDETAIL")
	}
	shown, bad := 0, 0
	err := st.Scan(ctx, func(en audit.Entry) error {
		if en.Err != nil {
			bad++
			fmt.Fprintf(e.stderr, "cutover: %s: %v\n", en.Where, en.Err)
			return nil
		}
		r := &en.Record
		if !keep(r) {
			return nil
		}
		shown++
		if tw == nil {
			_, err := e.stdout.Write(append(audit.Encode(r), '\n'))
			return err
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", r.Seq, r.Time.Format("2006-01-02 15:04:05.000Z"), r.Kind, dash(r.Service), dash(tabSafe(r.Actor)), detail(r))
		return nil
	})
	if tw != nil {
		tw.Flush()
	}
	if err != nil {
		return err
	}
	if bad > 0 {
		fmt.Fprintf(e.stderr, "cutover: %d entries could not be read; run `cutover audit verify`\n", bad)
		return &silentError{code: ExitWarnings}
	}
	if shown == 0 {
		fmt.Fprintln(e.stderr, "cutover: no record matches")
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// tabSafe keeps a value on its line and in its column.
func tabSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
}

// detail is the gist of a record's data, for one table cell.
func detail(r *audit.Record) string {
	var s string
	switch r.Kind {
	case audit.KindPlanLoaded:
		var d audit.PlanData
		r.DecodeData(&d)
		var steps []string
		for _, w := range d.Steps {
			steps = append(steps, num(w)+"%")
		}
		s = "steps " + strings.Join(steps, " → ")
		if d.Router != "" {
			s += " via " + d.Router
		}
		if d.StartedBy != "" {
			s += ", started by " + d.StartedBy
		}
		if d.Resumed {
			s += " (resumed)"
		}
	case audit.KindConvert:
		var d audit.ConvertData
		r.DecodeData(&d)
		s = fmt.Sprintf("%d inputs → %s: %s", len(d.Inputs), dash(d.OutputDir), strings.Join(d.Services, ", "))
	case audit.KindStepStarted, audit.KindPause, audit.KindResume, audit.KindPromote, audit.KindAbort, audit.KindCompleted:
		var d audit.StepData
		r.DecodeData(&d)
		s = fmt.Sprintf("step %d (new %s%%)", d.Step, num(d.Weight))
		if d.Reason != "" {
			s += ": " + d.Reason
		}
	case audit.KindWeightSet, audit.KindWeightConfirmed:
		var d audit.WeightData
		r.DecodeData(&d)
		s = fmt.Sprintf("step %d: new %s%%", d.Step, num(d.Want))
		if d.Got != nil {
			s += fmt.Sprintf(", read back %s%%", num(*d.Got))
		}
	case audit.KindAnalysis:
		var d audit.AnalysisData
		r.DecodeData(&d)
		s = fmt.Sprintf("step %d: %s %s = %s", d.Step, d.Side, d.Metric, num(d.Value))
		if d.Threshold != nil {
			s += fmt.Sprintf(" (%s %s)", d.Op, num(*d.Threshold))
		}
		s += ": " + d.Verdict
	case audit.KindApproval, audit.KindRefusal:
		var d audit.ApprovalData
		r.DecodeData(&d)
		s = fmt.Sprintf("step %d", d.Step)
		if d.Group != "" {
			s += " for " + d.Group
		}
		if d.Reason != "" {
			s += ": " + d.Reason
		}
	case audit.KindRollback, audit.KindRolledBack:
		var d audit.RollbackData
		r.DecodeData(&d)
		s = fmt.Sprintf("step %d from %s%%: %s", d.Step, num(d.FromWeight), d.Reason)
	case audit.KindDrill:
		var d audit.DrillData
		r.DecodeData(&d)
		verdict := "pass"
		if !d.Passed {
			verdict = "FAIL"
		}
		s = fmt.Sprintf("%s (%s): %s", d.Name, d.Experiment, verdict)
		if d.Message != "" {
			s += ": " + d.Message
		}
	case audit.KindCheckpoint:
		var d audit.CheckpointData
		r.DecodeData(&d)
		s = fmt.Sprintf("%d records, %s", d.Records, d.Reason)
		if r.KeyID != "" {
			s += ", key " + r.KeyID
		}
	default:
		s = string(r.Data)
	}
	s = tabSafe(s)
	if r := []rune(s); len(r) > 100 {
		s = string(r[:97]) + "..." // by runes: a cut inside a character would print garbage
	}
	return dash(s)
}

func num(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// parseWhen reads --since/--until: RFC 3339, a date, or a duration back
// from now. Empty is the zero time.
func parseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is not a time (2026-03-02T09:30:00Z), a date (2026-03-02) or a duration (24h)", s)
}

func newAuditExportCmd(e *env) *cobra.Command {
	var (
		vf     verifyFlags
		format string
		out    string
	)
	cmd := &cobra.Command{
		Use:   "export [LOG]",
		Short: "Write the evidence report: one section per DORA need, each citing its records",
		Long: `export verifies the log and writes the evidence report for change management
and resilience (DORA and its ICT risk management RTS): the change audit trail,
change approval (four-eyes), rollback capability, environment segregation (from
convert runs) and resilience testing (drills). Each row cites the records that
prove it by sequence number and hash; a need the log holds no evidence for is
said to have none.

The report is written even when the log is not whole, saying so first; the
exit status is then 1.`,
		Example: `  cutover audit export --format html --out evidence.html --key keys/audit.pub
  cutover audit export postgres://audit@db/cutover --format json | jq '.sections[] | {id, status}'`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !slices.Contains(export.Formats, format) {
				return usageError(fmt.Errorf("--format: unknown format %q (%s)", format, strings.Join(export.Formats, ", ")))
			}
			pub, heads, err := vf.options()
			if err != nil {
				return err
			}
			rep, err := export.Build(cmd.Context(), logArg(args), export.Options{Key: pub, Expect: heads})
			if err != nil {
				return auditOpenError(err)
			}
			var b bytes.Buffer
			if err := export.Write(&b, rep, format); err != nil {
				return err
			}
			if out == "" || out == "-" {
				if _, err := e.stdout.Write(b.Bytes()); err != nil {
					return err
				}
			} else {
				if err := fsutil.WriteFileAtomic(out, b.Bytes(), 0o644); err != nil {
					return err
				}
				fmt.Fprintf(e.stderr, "wrote %s: %s\n", out, rep.Verdict())
			}
			if !rep.Integrity.Whole {
				fmt.Fprintf(e.stderr, "cutover: the audit log is not whole: %s\n", rep.Integrity.Problems[0])
				return &silentError{code: ExitWarnings}
			}
			return nil
		},
	}
	vf.add(cmd)
	cmd.Flags().StringVar(&format, "format", "md", "report format: "+strings.Join(export.Formats, ", "))
	cmd.Flags().StringVarP(&out, "out", "o", "", "write the report to this file instead of stdout")
	return cmd
}

func newAuditKeygenCmd(e *env) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "keygen --out DIR",
		Short: "Create the ed25519 key pair that signs audit checkpoints",
		Long: `keygen writes a new key pair into DIR: audit.key, the private key (PEM PKCS #8,
mode 0600), which the commands that write the log sign checkpoints with, and
audit.pub, the public key (PEM PKIX), which verify and export check them with
and which an auditor can hold. It refuses to replace an existing key: every
checkpoint it signed could no longer be checked with the new one.

Keep audit.key where only the writers can read it (a Kubernetes Secret, a
vault); hand audit.pub to whoever verifies.`,
		Example: `  cutover audit keygen --out keys
  openssl pkey -pubin -in keys/audit.pub -noout -text   # inspect it with openssl`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usageError(errors.New("--out: the directory to write the key pair into is required"))
			}
			pub, err := audit.GenerateKey(out)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "wrote %s (private, 0600) and %s (public); key ID %s\n",
				filepath.Join(out, audit.PrivateKeyFile), filepath.Join(out, audit.PublicKeyFile), audit.KeyIDOf(pub))
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "directory to write audit.key and audit.pub into (created if missing)")
	return cmd
}
