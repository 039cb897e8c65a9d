package postgres_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/cutoverhq/cutover/audit"
	"github.com/cutoverhq/cutover/audit/audittest"
	"github.com/cutoverhq/cutover/audit/postgres"
	"github.com/cutoverhq/cutover/internal/testenv/pgtest"
)

func TestMain(m *testing.M) {
	audittest.CrashChildMain() // the crash test re-executes this binary as its writer
	os.Exit(pgtest.Main(m))
}

func newDB(t *testing.T) string { return pgtest.Shared(t).NewSchema(t) }

func TestConformance(t *testing.T) {
	audittest.Run(t, audittest.Harness{New: newDB, Tamper: rowTamperer{}})
}

func TestCrash(t *testing.T) {
	audittest.RunCrash(t, newDB(t), audittest.CrashOptions{Rounds: 8})
}

// TestTriggerRefusesChanges: UPDATE, DELETE and TRUNCATE fail, even for
// the superuser the tests connect as.
func TestTriggerRefusesChanges(t *testing.T) {
	ctx := context.Background()
	loc := newDB(t)
	audittest.Fill(t, loc, 3, audit.Options{})
	conn := connect(t, loc)
	for _, sql := range []string{
		`UPDATE cutover_audit SET actor = 'mallory' WHERE seq = 2`,
		`DELETE FROM cutover_audit WHERE seq = 3`,
		`TRUNCATE cutover_audit`,
	} {
		_, err := conn.Exec(ctx, sql)
		if !postgres.IsAppendOnlyRefusal(err) || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v", sql, err)
		}
	}
	if rep := audittest.MustVerify(t, loc); !rep.OK() || rep.Records != 3 {
		t.Fatalf("after refused changes: %v", rep.Problems)
	}
}

// TestColumnEditCaught: someone who disables the trigger and edits a
// column that queries read, leaving the record column alone, is caught.
func TestColumnEditCaught(t *testing.T) {
	ctx := context.Background()
	loc := newDB(t)
	audittest.Fill(t, loc, 3, audit.Options{})
	conn := connect(t, loc)
	if _, err := conn.Exec(ctx, `SET session_replication_role = replica; UPDATE cutover_audit SET actor = 'mallory' WHERE seq = 2`); err != nil {
		t.Fatal(err)
	}
	rep := audittest.MustVerify(t, loc)
	if rep.OK() || rep.Problems[0].Seq != 2 || !strings.Contains(rep.Problems[0].Message, `actor column "mallory"`) {
		t.Fatalf("%+v", rep.Problems)
	}
}

// TestLeastPrivilegeWriter: a role granted only INSERT and SELECT, as
// docs/audit.md recommends, appends to a table its owner created, and
// cannot change it even with the trigger out of the way.
func TestLeastPrivilegeWriter(t *testing.T) {
	ctx := context.Background()
	loc := newDB(t)
	audittest.Fill(t, loc, 2, audit.Options{}) // as the owner: creates the table
	schema := loc[strings.Index(loc, "search_path=")+len("search_path="):]
	role := "writer_" + schema
	owner := connect(t, loc)
	if _, err := owner.Exec(ctx, `CREATE ROLE `+role+` LOGIN; GRANT USAGE ON SCHEMA `+schema+` TO `+role+`; GRANT INSERT, SELECT ON cutover_audit TO `+role); err != nil {
		t.Fatal(err)
	}
	writer := strings.Replace(loc, "postgres://postgres@", "postgres://"+role+"@", 1)
	recs := audittest.Fill(t, writer, 3, audit.Options{Key: audittest.TestKey()})
	if recs[0].Seq != 3 {
		t.Fatalf("the writer role continued at %d, want 3", recs[0].Seq)
	}
	conn := connect(t, writer)
	if _, err := conn.Exec(ctx, `UPDATE cutover_audit SET actor = 'mallory'`); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("update as the writer role: %v", err)
	}
	if rep := audittest.MustVerify(t, writer); !rep.OK() || rep.Head.Seq != 6 {
		t.Fatalf("%v head %d", rep.Problems, rep.Head.Seq)
	}
}

func TestReadOnlyNeedsTheTable(t *testing.T) {
	_, err := audit.Verify(context.Background(), newDB(t), audit.VerifyOptions{})
	if err == nil || !strings.Contains(err.Error(), "no table cutover_audit") {
		t.Fatalf("verify of an empty database: %v", err)
	}
}

// TestSearchPathSeparatesLogs: two schemas in one database hold two
// independent chains.
func TestSearchPathSeparatesLogs(t *testing.T) {
	ctx := context.Background()
	loc := newDB(t)
	conn := connect(t, loc)
	if _, err := conn.Exec(ctx, `CREATE SCHEMA team_a; CREATE SCHEMA team_b`); err != nil {
		t.Fatal(err)
	}
	base := loc[:strings.Index(loc, "&search_path=")]
	a, b := base+"&search_path=team_a", base+"&search_path=team_b"
	audittest.Fill(t, a, 3, audit.Options{})
	audittest.Fill(t, b, 5, audit.Options{})
	if ra, rb := audittest.MustVerify(t, a), audittest.MustVerify(t, b); ra.Head.Seq != 3 || rb.Head.Seq != 5 || !ra.OK() || !rb.OK() {
		t.Fatalf("a: %d %v; b: %d %v", ra.Head.Seq, ra.Problems, rb.Head.Seq, rb.Problems)
	}
}

func connect(t *testing.T, loc string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), loc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// rowTamperer edits the table as its owner could: with the trigger
// disabled for the session. Positions are seq column values.
type rowTamperer struct{}

const bypass = `SET session_replication_role = replica`

func tamper(t *testing.T, loc string, fn func(ctx context.Context, tx pgx.Tx) error) {
	t.Helper()
	ctx := context.Background()
	conn := connect(t, loc)
	if _, err := conn.Exec(ctx, bypass); err != nil {
		t.Fatal(err)
	}
	if err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error { return fn(ctx, tx) }); err != nil {
		t.Fatal(err)
	}
}

// values are the columns a consistent forger writes for raw: all of them
// from the record when it decodes, else only the record column.
func values(raw []byte) (audit.Record, bool) {
	r, err := audit.Decode(raw)
	return r, err == nil
}

func data(r *audit.Record) any {
	if len(r.Data) == 0 {
		return nil
	}
	return string(r.Data)
}

func (rowTamperer) Replace(t *testing.T, loc string, pos uint64, raw []byte) {
	tamper(t, loc, func(ctx context.Context, tx pgx.Tx) error {
		r, ok := values(raw)
		if !ok {
			_, err := tx.Exec(ctx, `UPDATE cutover_audit SET record = $2 WHERE seq = $1`, int64(pos), string(raw))
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE cutover_audit SET time=$2, kind=$3, actor=$4, service=$5, plan=$6, plan_digest=$7, plan_commit=$8, data=$9, prev=$10, hash=$11, sig=$12, key_id=$13, record=$14 WHERE seq = $1`,
			int64(pos), r.Time, r.Kind, r.Actor, r.Service, r.Plan, r.PlanDigest, r.PlanCommit, data(&r), r.Prev, r.Hash, r.Sig, r.KeyID, string(raw))
		return err
	})
}

func (rowTamperer) Delete(t *testing.T, loc string, pos uint64) {
	tamper(t, loc, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `DELETE FROM cutover_audit WHERE seq = $1`, int64(pos))
		return err
	})
}

func (rowTamperer) Insert(t *testing.T, loc string, after uint64, raw []byte) {
	tamper(t, loc, func(ctx context.Context, tx pgx.Tx) error {
		// Two steps, since the primary key is checked row by row.
		if _, err := tx.Exec(ctx, `UPDATE cutover_audit SET seq = seq + 1000000 WHERE seq > $1`, int64(after)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE cutover_audit SET seq = seq - 999999 WHERE seq > 1000000`); err != nil {
			return err
		}
		r, _ := values(raw)
		_, err := tx.Exec(ctx, `INSERT INTO cutover_audit (seq, time, kind, actor, service, plan, plan_digest, plan_commit, data, prev, hash, sig, key_id, record) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14)`,
			int64(after+1), r.Time, r.Kind, r.Actor, r.Service, r.Plan, r.PlanDigest, r.PlanCommit, data(&r), r.Prev, r.Hash, r.Sig, r.KeyID, string(raw))
		return err
	})
}

func (rowTamperer) Swap(t *testing.T, loc string, a, b uint64) {
	tamper(t, loc, func(ctx context.Context, tx pgx.Tx) error {
		var ra, rb string
		if err := tx.QueryRow(ctx, `SELECT record FROM cutover_audit WHERE seq = $1`, int64(a)).Scan(&ra); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT record FROM cutover_audit WHERE seq = $1`, int64(b)).Scan(&rb); err != nil {
			return err
		}
		for _, p := range []struct {
			seq uint64
			raw string
		}{{b, ra}, {a, rb}} {
			r, _ := values([]byte(p.raw))
			if _, err := tx.Exec(ctx, `UPDATE cutover_audit SET time=$2, kind=$3, actor=$4, service=$5, plan=$6, plan_digest=$7, plan_commit=$8, data=$9, prev=$10, hash=$11, sig=$12, key_id=$13, record=$14 WHERE seq = $1`,
				int64(p.seq), r.Time, r.Kind, r.Actor, r.Service, r.Plan, r.PlanDigest, r.PlanCommit, data(&r), r.Prev, r.Hash, r.Sig, r.KeyID, p.raw); err != nil {
				return err
			}
		}
		return nil
	})
}

func (rowTamperer) Truncate(t *testing.T, loc string, keep uint64) {
	tamper(t, loc, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `DELETE FROM cutover_audit WHERE seq > $1`, int64(keep))
		return err
	})
}

// BenchmarkAppend: durable appends per second (fsync on, synchronous
// commit) with 1, 8 and 64 concurrent appenders sharing a Log, whose
// batches become one transaction each.
func BenchmarkAppend(b *testing.B) {
	srv := pgtest.Start(b, pgtest.Options{})
	for _, n := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("appenders=%d", n), func(b *testing.B) {
			audittest.BenchmarkAppend(b, srv.NewSchema(b), n)
		})
	}
}

// BenchmarkVerify1M: verify of a table of a million records.
func BenchmarkVerify1M(b *testing.B) {
	srv := pgtest.Start(b, pgtest.Options{})
	audittest.BenchmarkVerify(b, srv.NewSchema(b), 1_000_000)
}
