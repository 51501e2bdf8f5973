package migrate

import (
	"context"
	"database/sql"
	"path/filepath"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/skydesk/skydeskd/store"
	"github.com/skydesk/skydeskd/store/postgres/pgtest"
	"github.com/skydesk/skydeskd/store/storetest"
)

// Every table of a freshly migrated SQLite store is copied or skipped
// with a reason, and every name listed is a real table: a migration that
// adds a table (0011, 0012, …) fails here until tables.go says what
// becomes of it, rather than being left behind by `skydeskd migrate`.
func TestTables_coverSQLiteSchema(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	storetest.NewIn(t, dir).Close()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, store.FileName)+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	have, err := sourceTables(ctx, tx)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkCoverage(have); err != nil {
		t.Error(err)
	}
	for _, tb := range tables {
		if !slices.Contains(have, tb.name) {
			t.Errorf("tables.go copies %s, which the SQLite schema does not have", tb.name)
		}
	}
	for name, why := range skipped {
		if !slices.Contains(have, name) {
			t.Errorf("tables.go skips %s, which the SQLite schema does not have", name)
		}
		if why == "" {
			t.Errorf("skipped table %s has no reason", name)
		}
	}
}

// Both drivers' migrations end at the same version with the same tables,
// and PostgreSQL's seed no meta key SQLite lacks (the copy replaces meta
// whole with the source's).
func TestTables_driversAgree(t *testing.T) {
	ctx := context.Background()
	s := storetest.Empty(t)
	sv, err := s.SchemaVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	url := pgtest.URL(t)
	pv, err := prepare(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if sv != pv {
		t.Errorf("SQLite schema version %d, PostgreSQL %d: every migration needs its twin", sv, pv)
	}
	conn := pgConn(t, url)
	var pgTables, pgMeta []string
	rows, err := conn.Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n string
		_ = rows.Scan(&n)
		pgTables = append(pgTables, n)
	}
	rows.Close()
	rows, err = conn.Query(ctx, `SELECT key FROM meta ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n string
		_ = rows.Scan(&n)
		pgMeta = append(pgMeta, n)
	}
	rows.Close()
	for _, tb := range tables {
		if !slices.Contains(pgTables, tb.name) {
			t.Errorf("PostgreSQL has no table %s", tb.name)
		}
	}
	for _, k := range pgMeta {
		var v string
		if err := sqliteDB(t, s).QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, k).Scan(&v); err != nil {
			t.Errorf("PostgreSQL seeds meta %q, SQLite has none (%v): the copy would drop it", k, err)
		}
	}
}

func pgConn(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// sqliteDB opens s's file read-only beside it.
func sqliteDB(t *testing.T, s *store.Store) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+s.Path()+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
