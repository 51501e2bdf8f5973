package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/skydesk/skydeskd/store"
	"github.com/skydesk/skydeskd/store/postgres/pgtest"
)

// The database's trouble is store.ErrUnavailable, with the cause kept in
// the chain; the statement's own failures and the caller's cancel are not.
func TestClassify(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	for _, c := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{pgx.ErrNoRows, false},
		{&pgconn.PgError{Code: "23505"}, false}, // unique_violation
		{&pgconn.PgError{Code: "42P01"}, false}, // undefined_table
		{context.Canceled, false},
		{fmt.Errorf("reading: %w", refused), true},
		{&pgconn.PgError{Code: "57P01"}, true}, // admin_shutdown: pg_ctl stop -m fast
		{&pgconn.PgError{Code: "57P03"}, true}, // cannot_connect_now: starting up
		{&pgconn.PgError{Code: "08006"}, true}, // connection_failure
		{&pgconn.PgError{Code: "53300"}, true}, // too_many_connections
		{fmt.Errorf("x: %w", context.DeadlineExceeded), true},
		{io.ErrUnexpectedEOF, true},
		{fmt.Errorf("x: %w", pgconn.ErrConnClosed), true},
	} {
		got := classify(c.err)
		if is := errors.Is(got, store.ErrUnavailable); is != c.want {
			t.Errorf("classify(%v): unavailable %v, want %v", c.err, is, c.want)
		}
		if c.err != nil && !errors.Is(got, c.err) {
			t.Errorf("classify(%v) = %v lost the cause", c.err, got)
		}
	}
}

// A database that stops answering fails a statement, and a transaction,
// by the query timeout with store.ErrUnavailable, instead of holding the
// caller until TCP gives up.
func TestQueryTimeout(t *testing.T) {
	s, err := Open(t.Context(), pgtest.URL(t), store.Options{HashParams: store.TestHashParams})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.pool.timeout = 300 * time.Millisecond
	check := func(what string, f func() error) {
		t.Helper()
		start := time.Now()
		err := f()
		took := time.Since(start)
		if !errors.Is(err, store.ErrUnavailable) || took > 5*time.Second {
			t.Errorf("%s: %v after %v; want ErrUnavailable after about 300ms", what, err, took)
		}
	}
	check("statement", func() error {
		_, err := s.pool.Exec(t.Context(), `SELECT pg_sleep(30)`)
		return err
	})
	check("row", func() error {
		var v string
		return s.pool.QueryRow(t.Context(), `SELECT pg_sleep(30)::text`).Scan(&v)
	})
	check("transaction", func() error {
		return s.inTx(t.Context(), func(tx pgx.Tx) error {
			_, err := tx.Exec(t.Context(), `SELECT pg_sleep(30)`)
			return err
		})
	})
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("the pool after timeouts: %v", err)
	}
}
