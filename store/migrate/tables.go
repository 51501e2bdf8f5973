package migrate

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
)

// table is one table the migration copies. Its columns are not listed
// here: they are read from both databases at run time and must be the
// same set (a column one driver's migration added and the other's forgot
// stops the copy), so a new column is copied without a change here.
type table struct {
	name string
	// bodyCols are left out of the table's row checksum because the
	// message checksum (verify.go) covers them, naming the message that
	// differs rather than the table.
	bodyCols []string
	// replace: the target's own rows (seeded by its migrations) are
	// deleted first, and the table does not count towards "not empty".
	replace bool
}

// tables are copied in this order, which follows the foreign keys
// (accounts before what references them, messages before their chunks).
// A table a future migration adds goes here or into skipped; until then
// Run refuses every source that has it, and TestTables fails.
var tables = []table{
	{name: "meta", replace: true}, // domains_serial, onboarding_key (the onboarding hashes' key)
	{name: "domains"},
	{name: "accounts"},
	{name: "app_passwords"},
	{name: "pop_settings"},
	{name: "pop_last_access"},
	{name: "forwards"},
	{name: "web_sessions"},
	{name: "messages", bodyCols: []string{"body"}},
	{name: "message_chunks", bodyCols: []string{"data"}},
	{name: "queue_messages"},
	{name: "queue_rcpts"},
	{name: "cert_blobs"},
	{name: "onboarding"},
}

// skipped are the source's tables deliberately not copied, with why.
var skipped = map[string]string{
	"schema_migrations": "the target records its own migrations, checked to be the same version",
	"pop_leases":        "POP3 in-use leases of the stopped node; sessions on the new database take their own",
	"cert_locks":        "ACME order locks of the stopped node; the next order takes its own",
	"web_scratch":       "one-time notices and pending two-step set-ups, minutes old, sealed to their sessions",
}

// sourceTables lists the SQLite database's own tables (not SQLite's
// internal sqlite_* ones), sorted.
func sourceTables(ctx context.Context, q *sql.Tx) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\' ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("listing the source's tables: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// checkCoverage refuses a source with a table that is neither copied nor
// skipped, so no migration's table is ever left behind silently.
func checkCoverage(names []string) error {
	var unknown []string
	for _, n := range names {
		if _, skip := skipped[n]; !skip && !slices.ContainsFunc(tables, func(t table) bool { return t.name == n }) {
			unknown = append(unknown, n)
		}
	}
	if len(unknown) > 0 {
		return fmt.Errorf("source table(s) %s: neither copied nor skipped by this binary (store/migrate/tables.go)", strings.Join(unknown, ", "))
	}
	return nil
}

// column is one column as both databases declare it.
type column struct {
	name    string
	notNull bool   // in SQLite
	pgType  string // information_schema data_type in PostgreSQL
}

// columns returns t's columns, in SQLite's order, after checking that
// PostgreSQL has exactly the same names.
func columns(ctx context.Context, src *sql.Tx, dst pgx.Tx, t string) ([]column, error) {
	rows, err := src.QueryContext(ctx, `SELECT name, "notnull" FROM pragma_table_info(?) ORDER BY cid`, t)
	if err != nil {
		return nil, fmt.Errorf("reading the source's columns of %s: %w", t, err)
	}
	var cols []column
	for rows.Next() {
		var c column
		if err := rows.Scan(&c.name, &c.notNull); err != nil {
			rows.Close()
			return nil, err
		}
		cols = append(cols, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	types := map[string]string{}
	prows, err := dst.Query(ctx, `SELECT column_name, data_type FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = $1`, t)
	if err != nil {
		return nil, fmt.Errorf("reading the target's columns of %s: %w", t, err)
	}
	for prows.Next() {
		var n, ty string
		if err := prows.Scan(&n, &ty); err != nil {
			prows.Close()
			return nil, err
		}
		types[n] = ty
	}
	prows.Close()
	if err := prows.Err(); err != nil {
		return nil, err
	}
	var onlySrc []string
	for i, c := range cols {
		ty, ok := types[c.name]
		if !ok {
			onlySrc = append(onlySrc, c.name)
			continue
		}
		cols[i].pgType = ty
		delete(types, c.name)
	}
	onlyDst := make([]string, 0, len(types))
	for n := range types {
		onlyDst = append(onlyDst, n)
	}
	sort.Strings(onlyDst)
	if len(cols) == 0 {
		return nil, fmt.Errorf("table %s: not in the source", t)
	}
	if len(onlySrc) > 0 || len(onlyDst) > 0 {
		return nil, fmt.Errorf("table %s: columns differ between the drivers' schemas: only in SQLite [%s], only in PostgreSQL [%s]",
			t, strings.Join(onlySrc, " "), strings.Join(onlyDst, " "))
	}
	return cols, nil
}

// names returns the columns' names.
func names(cols []column) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = c.name
	}
	return out
}

// selectList quotes names for a SELECT list (both dialects quote with ").
func selectList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = `"` + n + `"`
	}
	return strings.Join(q, ", ")
}
