// Package migrate moves a SQLite store (package store, one node) into a
// PostgreSQL database (store/postgres, any number of nodes): the admin
// command `skydeskd migrate --from sqlite:PATH --to postgres:URL`.
//
// It reads the SQLite file with database/sql and modernc.org/sqlite,
// read-only and in one read transaction (a consistent snapshot: stop the
// node first, or mail arriving meanwhile stays behind), and writes with
// pgx COPY into a database prepared by the PostgreSQL driver's own
// migrations, in one transaction, so either everything arrives verified
// or nothing does:
//
//   - the source's schema version must be the target's after this
//     binary's migrations (both drivers number their migrations alike);
//   - every source table is copied or deliberately skipped (tables.go):
//     a table no one listed, or a column only one driver's schema has,
//     stops the copy before anything is written;
//   - the target must be empty (no row in any copied table but the
//     migration-seeded meta), checked under table locks;
//   - ids are copied as they are, message ids being the POP3 UIDs clients
//     remember (RFC 1939 §7), and every identity sequence is moved past
//     the highest id SQLite ever handed out;
//   - before the commit, each table's row count and row checksum, and
//     every message body's SHA-256, are read back from the target and
//     compared with the source.
package migrate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/skydesk/skydeskd/store"
	"github.com/skydesk/skydeskd/store/postgres"
)

// Errors callers tell apart with errors.Is (besides ErrVerify).
var (
	// ErrNotEmpty: the target already holds data; nothing was written.
	ErrNotEmpty = errors.New("target database is not empty")
	// ErrSchemaVersion: source and target schemas differ; nothing was
	// written.
	ErrSchemaVersion = errors.New("schema versions differ")
)

// TableCount is one copied table and its rows.
type TableCount struct {
	Table string
	Rows  int64
}

// Summary is what a migration copied and verified.
type Summary struct {
	SchemaVersion int
	Tables        []TableCount
	// Skipped are the source's tables not copied, with why.
	Skipped []TableCount
	// Messages and BodyOctets are the message bodies compared by SHA-256.
	Messages, BodyOctets int64
	// Sequences is the number of identity sequences reset.
	Sequences int
	Elapsed   time.Duration
}

// Options tune Run.
type Options struct {
	// beforeVerify, set by tests only, runs in the target transaction
	// after the copy and before the read-back (to damage a row).
	beforeVerify func(ctx context.Context, tx pgx.Tx) error
}

// Run copies the SQLite database file at sqlitePath into the PostgreSQL
// database at pgURL (postgres://…, pgx's syntax).
func Run(ctx context.Context, sqlitePath, pgURL string, opts Options) (Summary, error) {
	start := time.Now()
	var sum Summary
	if _, err := os.Stat(sqlitePath); err != nil {
		return sum, fmt.Errorf("source: %w", err)
	}
	// mode=ro with query_only: nothing is ever written to the source,
	// not even a migration (OpenFile would apply pending ones). Bodies
	// are read twice (copy, then verification) through overflow pages:
	// mapped, they cost no pread each (10,000 messages: 13 s → 5 s).
	db, err := sql.Open("sqlite", "file:"+sqlitePath+"?mode=ro&_pragma=query_only(1)&_pragma=busy_timeout(10000)&_pragma=mmap_size(1073741824)&_pragma=cache_size(-65536)")
	if err != nil {
		return sum, fmt.Errorf("opening the source: %w", err)
	}
	defer db.Close()
	src, err := db.BeginTx(ctx, nil)
	if err != nil {
		return sum, fmt.Errorf("reading the source: %w", err)
	}
	defer src.Rollback()
	var srcVersion int
	if err := src.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&srcVersion); err != nil {
		return sum, fmt.Errorf("source is not a skydeskd database (no schema_migrations): %w", err)
	}
	names, err := sourceTables(ctx, src)
	if err != nil {
		return sum, err
	}
	if err := checkCoverage(names); err != nil {
		return sum, err
	}

	dstVersion, err := prepare(ctx, pgURL)
	if err != nil {
		return sum, err
	}
	if srcVersion != dstVersion {
		return sum, fmt.Errorf("%w: the source is at version %d, this binary's PostgreSQL schema at %d: run the skydeskd that wrote the source, or open the source once with this one (any admin command, e.g. `skydeskd domain list --data DIR`) to bring it to %[3]d",
			ErrSchemaVersion, srcVersion, dstVersion)
	}
	sum.SchemaVersion = srcVersion
	for _, n := range names {
		if _, ok := skipped[n]; ok {
			var rows int64
			if err := src.QueryRowContext(ctx, `SELECT count(*) FROM "`+n+`"`).Scan(&rows); err != nil {
				return sum, fmt.Errorf("counting %s: %w", n, err)
			}
			sum.Skipped = append(sum.Skipped, TableCount{Table: n, Rows: rows})
		}
	}

	cfg, err := pgxpool.ParseConfig(pgURL)
	if err != nil {
		return sum, fmt.Errorf("target url: %w", err)
	}
	cfg.MaxConns = 1
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return sum, fmt.Errorf("connecting to the target: %w", err)
	}
	defer pool.Close()
	err = pgx.BeginFunc(ctx, pool, func(dst pgx.Tx) error {
		return copyAll(ctx, src, dst, &sum, opts)
	})
	if err != nil {
		return sum, err
	}
	sum.Elapsed = time.Since(start)
	return sum, nil
}

// prepare applies the PostgreSQL driver's migrations to the target (as
// any node opening it would) and returns its schema version.
func prepare(ctx context.Context, pgURL string) (int, error) {
	s, err := postgres.Open(ctx, pgURL, store.Options{})
	if err != nil {
		return 0, fmt.Errorf("target: %w", err)
	}
	defer s.Close()
	v, err := s.SchemaVersion(ctx)
	if err != nil {
		return 0, fmt.Errorf("target: reading the schema version: %w", err)
	}
	return v, nil
}

// copyAll is the target transaction: lock, check empty, copy, reset
// sequences, verify.
func copyAll(ctx context.Context, src *sql.Tx, dst pgx.Tx, sum *Summary, opts Options) error {
	ids := make([]string, len(tables))
	for i, t := range tables {
		ids[i] = pgx.Identifier{t.name}.Sanitize()
	}
	// EXCLUSIVE: readers go on, but no other process writes a row (a
	// node started too early) between the emptiness check and the commit.
	if _, err := dst.Exec(ctx, `LOCK TABLE `+strings.Join(ids, ", ")+` IN EXCLUSIVE MODE`); err != nil {
		return fmt.Errorf("locking the target's tables: %w", err)
	}
	var full []string
	for i, t := range tables {
		if t.replace {
			continue
		}
		var has bool
		if err := dst.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+ids[i]+`)`).Scan(&has); err != nil {
			return fmt.Errorf("checking %s is empty: %w", t.name, err)
		}
		if has {
			full = append(full, t.name)
		}
	}
	if len(full) > 0 {
		return fmt.Errorf("%w: rows in %s; migrate only into a new database", ErrNotEmpty, strings.Join(full, ", "))
	}
	type copied struct {
		t    table
		cols []column
		d    *digest
	}
	var done []copied
	var copiedNames []string
	for _, t := range tables {
		cols, err := columns(ctx, src, dst, t.name)
		if err != nil {
			return err
		}
		d, err := copyTable(ctx, src, dst, t, cols)
		if err != nil {
			return err
		}
		done = append(done, copied{t, cols, d})
		copiedNames = append(copiedNames, t.name)
		sum.Tables = append(sum.Tables, TableCount{Table: t.name, Rows: d.rows})
	}
	n, err := resetSequences(ctx, src, dst, copiedNames)
	if err != nil {
		return err
	}
	sum.Sequences = n
	if opts.beforeVerify != nil {
		if err := opts.beforeVerify(ctx, dst); err != nil {
			return err
		}
	}
	for _, c := range done {
		if err := verifyTable(ctx, dst, c.t, c.cols, c.d); err != nil {
			return err
		}
	}
	sum.Messages, sum.BodyOctets, err = verifyBodies(ctx, src, dst)
	return err
}

// SkipReason says why a table is not copied ("" if it is).
func SkipReason(table string) string { return skipped[table] }
