package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// SQLite's busy database (the write lock still held by another process
// after busy_timeout) is unavailable as PostgreSQL's absence is: the
// protocols answer it as temporary. Other errors are not.
func TestIsUnavailable_sqliteBusy(t *testing.T) {
	dsn := "file:" + filepath.Join(t.TempDir(), "busy.db") + "?_pragma=busy_timeout(0)&_pragma=journal_mode(WAL)"
	open := func() *sql.DB {
		db, err := sql.Open("sqlite", dsn)
		if err != nil {
			t.Fatal(err)
		}
		db.SetMaxOpenConns(1)
		t.Cleanup(func() { db.Close() })
		return db
	}
	a, b := open(), open()
	if _, err := a.Exec(`CREATE TABLE t (x INTEGER)`); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tx, err := a.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`INSERT INTO t VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	_, err = b.Exec(`INSERT INTO t VALUES (2)`)
	if err == nil || !IsUnavailable(fmt.Errorf("storing: %w", err)) {
		t.Errorf("a write while another holds the lock: %v; want an unavailable error", err)
	}
	_, err = b.Exec(`INSERT INTO nosuchtable VALUES (2)`)
	if err == nil || IsUnavailable(err) {
		t.Errorf("a bad statement: %v; want an error that is not unavailable", err)
	}
	for _, err := range []error{nil, ErrNotFound, errors.New("x")} {
		if IsUnavailable(err) {
			t.Errorf("IsUnavailable(%v) = true", err)
		}
	}
	if !IsUnavailable(fmt.Errorf("a: %w", ErrUnavailable)) {
		t.Error("a wrapped ErrUnavailable is not unavailable")
	}
}

// An outage is logged once, then not again within OutageLogInterval
// however many sessions meet it; the next line counts those left out.
func TestOutageLog(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	clock := time.Unix(1_800_000_000, 0)
	o := OutageLog{now: func() time.Time { return clock }}
	for range 100 {
		o.Warn(log, "login", ErrUnavailable)
	}
	if n := strings.Count(buf.String(), "level=WARN"); n != 1 {
		t.Errorf("%d lines for 100 errors within the interval, want 1:\n%s", n, buf.String())
	}
	clock = clock.Add(OutageLogInterval)
	o.Warn(log, "login", ErrUnavailable)
	if n := strings.Count(buf.String(), "level=WARN"); n != 2 || !strings.Contains(buf.String(), "suppressed=99") {
		t.Errorf("after the interval: %d lines, want 2, the second with suppressed=99:\n%s", n, buf.String())
	}
}
