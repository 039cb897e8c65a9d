// Package postgres is the audit log's store for teams: a PostgreSQL table
// (pgx v5) that several cutover processes append to at once. Each batch is
// one transaction that takes an advisory lock, reads the head, links the
// batch onto it and inserts it, so writers serialize on the chain without
// locking readers out; a commit is durable when PostgreSQL says so
// (synchronous_commit, the default). A trigger refuses UPDATE, DELETE and
// TRUNCATE, so changing the log takes the table owner disabling it, which
// verify then catches.
//
// Each row keeps the record's columns, for queries, and its full
// canonical encoding (column record), which is what verify checks; a
// column that disagrees with the encoding is reported as tampering.
//
// Locations: "postgres://USER@HOST:PORT/DB?sslmode=…" or "postgresql://…",
// anything pgx accepts. The table is cutover_audit in the first schema of
// the search_path: add search_path=SCHEMA to the URL to keep teams' logs
// apart in one database.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cutoverhq/cutover/audit"
)

func init() {
	audit.Register("postgres", Open)
}

// Table is the log's table.
const Table = "cutover_audit"

// lockKey is the advisory lock writers hold while they link a batch:
// "cutv" as an integer, so it does not collide with an application's own
// small numbers.
const lockKey = 0x63757476

// Schema creates the table and the trigger that keeps it append-only. It
// runs at every writer's open; each statement is idempotent.
const Schema = `
CREATE TABLE IF NOT EXISTS cutover_audit (
	seq         bigint PRIMARY KEY CHECK (seq > 0),
	time        timestamptz NOT NULL,
	kind        text NOT NULL,
	actor       text NOT NULL DEFAULT '',
	service     text NOT NULL DEFAULT '',
	plan        text NOT NULL DEFAULT '',
	plan_digest text NOT NULL DEFAULT '',
	plan_commit text NOT NULL DEFAULT '',
	data        json,
	prev        text NOT NULL DEFAULT '',
	hash        text NOT NULL,
	sig         text NOT NULL DEFAULT '',
	key_id      text NOT NULL DEFAULT '',
	record      text NOT NULL
);
COMMENT ON TABLE cutover_audit IS 'cutover audit log: append-only; verify with cutover audit verify';
CREATE INDEX IF NOT EXISTS cutover_audit_service_time ON cutover_audit (service, time);
CREATE INDEX IF NOT EXISTS cutover_audit_kind ON cutover_audit (kind, seq);
CREATE OR REPLACE FUNCTION cutover_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'cutover_audit is append-only: % refused', TG_OP
		USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE OR REPLACE TRIGGER cutover_audit_no_change
	BEFORE UPDATE OR DELETE ON cutover_audit
	FOR EACH ROW EXECUTE FUNCTION cutover_audit_append_only();
CREATE OR REPLACE TRIGGER cutover_audit_no_truncate
	BEFORE TRUNCATE ON cutover_audit
	FOR EACH STATEMENT EXECUTE FUNCTION cutover_audit_append_only();
`

// Store is an audit log in a PostgreSQL table.
type Store struct {
	mu   sync.Mutex // a pgx.Conn serves one caller at a time
	conn *pgx.Conn
	mode audit.Mode
}

var _ audit.Store = (*Store)(nil)

// Open connects to the database at location. ReadWrite creates the table
// and its trigger when missing; ReadOnly needs them to exist.
func Open(ctx context.Context, location string, mode audit.Mode) (audit.Store, error) {
	cfg, err := pgx.ParseConfig(location)
	if err != nil {
		return nil, fmt.Errorf("audit location: %w", err)
	}
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = "cutover-audit"
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	s := &Store{conn: conn, mode: mode}
	if mode == audit.ReadWrite {
		err = s.createSchema(ctx)
	} else {
		var exists bool
		err = conn.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, Table).Scan(&exists)
		if err == nil && !exists {
			err = fmt.Errorf("no table %s in database %s (search_path %q): nothing was logged there", Table, cfg.Database, cfg.RuntimeParams["search_path"])
		}
	}
	if err != nil {
		conn.Close(ctx)
		return nil, fmt.Errorf("audit log: %w", err)
	}
	return s, nil
}

func (s *Store) createSchema(ctx context.Context) error {
	// A writer role granted only INSERT and SELECT (as docs/audit.md
	// recommends) may not run DDL, not even CREATE … IF NOT EXISTS: leave
	// a complete schema alone.
	var ready bool
	err := s.conn.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL AND
		(SELECT count(*) FROM pg_trigger WHERE tgrelid = to_regclass($1) AND tgname IN ('cutover_audit_no_change', 'cutover_audit_no_truncate')) = 2`, Table).Scan(&ready)
	if err != nil || ready {
		return err
	}
	// Two writers starting at once would race on CREATE OR REPLACE.
	return pgx.BeginFunc(ctx, s.conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(lockKey)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, Schema)
		return err
	})
}

// Append implements audit.Store: one transaction per batch.
func (s *Store) Append(ctx context.Context, b *audit.Batch) error {
	if s.mode != audit.ReadWrite {
		return errors.New("audit log opened read-only")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return pgx.BeginFunc(ctx, s.conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(lockKey)); err != nil {
			return err
		}
		// The head's own encoding, not its columns: the time column holds
		// microseconds, and the next record's time must not be before the
		// head's nanoseconds.
		var head audit.Head
		var raw string
		err := tx.QueryRow(ctx, `SELECT record FROM cutover_audit ORDER BY seq DESC LIMIT 1`).Scan(&raw)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			return err
		default:
			r, err := audit.Decode([]byte(raw))
			if err == nil && audit.ComputeHash(&r) != r.Hash {
				err = errors.New("its content does not match its hash")
			}
			if err != nil {
				return fmt.Errorf("the last record in %s is not sound (%v): run `cutover audit verify`; refusing to append after damage", Table, err)
			}
			head = audit.HeadOf(&r)
		}
		recs, err := b.Link(head)
		if err != nil {
			return err
		}
		rows := make([][]any, len(recs))
		for i := range recs {
			r := &recs[i]
			var data any
			if len(r.Data) > 0 {
				data = string(r.Data)
			}
			rows[i] = []any{int64(r.Seq), r.Time, r.Kind, r.Actor, r.Service, r.Plan, r.PlanDigest, r.PlanCommit, data, r.Prev, r.Hash, r.Sig, r.KeyID, string(audit.Encode(r))}
		}
		_, err = tx.CopyFrom(ctx, pgx.Identifier{Table}, columns, pgx.CopyFromRows(rows))
		return err
	})
}

var columns = []string{"seq", "time", "kind", "actor", "service", "plan", "plan_digest", "plan_commit", "data", "prev", "hash", "sig", "key_id", "record"}

// Scan implements audit.Store: rows in seq order, streamed.
func (s *Store) Scan(ctx context.Context, fn func(audit.Entry) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	// One snapshot for the whole read, so appends during it do not show
	// as a half-read batch.
	tx, err := s.conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	defer tx.Rollback(ctx)
	rows, err := tx.Query(ctx, `SELECT seq, time, kind, actor, service, plan, plan_digest, plan_commit, data::text, prev, hash, sig, key_id, record FROM cutover_audit ORDER BY seq`)
	if err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	defer rows.Close()
	var (
		c   row
		raw string
	)
	for rows.Next() {
		if err := rows.Scan(&c.seq, &c.time, &c.kind, &c.actor, &c.service, &c.plan, &c.planDigest, &c.planCommit, &c.data, &c.prev, &c.hash, &c.sig, &c.keyID, &raw); err != nil {
			return fmt.Errorf("audit log: %w", err)
		}
		e := audit.Entry{Where: "row " + strconv.FormatInt(c.seq, 10)}
		r, err := audit.Decode([]byte(raw))
		if err != nil {
			e.Err = err
		} else {
			e.Record = r
			if msg := c.disagrees(&r); msg != "" {
				e.Err = errors.New("the row's columns disagree with its record: " + msg)
			}
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	return nil
}

// row holds the columns of one row.
type row struct {
	seq                                    int64
	time                                   time.Time
	kind, actor, service, plan, planDigest string
	planCommit, prev, hash, sig, keyID     string
	data                                   *string
}

// disagrees names the first column that is not what the record says, so
// an edit of a column that queries read, behind a disabled trigger, does
// not go unseen because the record column was left alone.
func (c *row) disagrees(r *audit.Record) string {
	if c.seq != int64(r.Seq) {
		return fmt.Sprintf("seq column %d, record %d", c.seq, r.Seq)
	}
	// timestamptz keeps microseconds.
	if !c.time.Equal(r.Time.Truncate(time.Microsecond)) {
		return fmt.Sprintf("time column %s, record %s", c.time.UTC().Format(time.RFC3339Nano), r.Time.Format(time.RFC3339Nano))
	}
	for _, f := range []struct{ name, col, rec string }{
		{"kind", c.kind, r.Kind}, {"actor", c.actor, r.Actor}, {"service", c.service, r.Service},
		{"plan", c.plan, r.Plan}, {"plan_digest", c.planDigest, r.PlanDigest}, {"plan_commit", c.planCommit, r.PlanCommit},
		{"prev", c.prev, r.Prev}, {"hash", c.hash, r.Hash}, {"sig", c.sig, r.Sig}, {"key_id", c.keyID, r.KeyID},
	} {
		if f.col != f.rec {
			return fmt.Sprintf("%s column %q, record %q", f.name, f.col, f.rec)
		}
	}
	data := ""
	if c.data != nil {
		data = *c.data
	}
	if data != string(r.Data) {
		return fmt.Sprintf("data column %s, record %s", data, r.Data)
	}
	return ""
}

// Close implements audit.Store.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.conn.Close(ctx)
	s.conn = nil
	return err
}

// IsAppendOnlyRefusal reports whether err is the trigger refusing a change.
func IsAppendOnlyRefusal(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "42501"
}
