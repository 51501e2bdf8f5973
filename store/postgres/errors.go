package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/skydesk/skydeskd/store"
)

// QueryTimeout bounds each statement run outside a transaction and each
// transaction as a whole, unless the caller's context ends sooner: a
// database that stops answering (a network partition, a stalled server)
// fails the call with store.ErrUnavailable instead of holding a POP3 or
// SMTP session until TCP gives up. A dead server is found at once (the
// connection is refused or closed); this is for the silent one.
const QueryTimeout = 30 * time.Second

// connectTimeout bounds one connection attempt unless the URL sets
// connect_timeout.
const connectTimeout = 5 * time.Second

// classify marks err with store.ErrUnavailable when it is the database's
// trouble rather than the statement's (unavailable), keeping err in the
// chain; any other error is returned as it is.
func classify(err error) error {
	if err == nil || errors.Is(err, store.ErrUnavailable) || !unavailable(err) {
		return err
	}
	return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
}

// unavailable reports whether err says the database cannot be used now:
// no connection could be made (*pgconn.ConnectError: refused, timed out,
// "the database system is starting up"), the connection broke (a network
// error, an unexpected EOF, pgconn.ErrConnClosed), the server ended the
// session (SQLSTATE class 08, 57P01-57P03 admin or crash shutdown,
// 53300 too many connections), or it did not answer in time (a deadline,
// pgconn.Timeout). A canceled context is the caller's doing, not the
// database's.
func unavailable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "57P01", "57P02", "57P03", "53300":
			return true
		}
		return len(pe.Code) == 5 && pe.Code[:2] == "08"
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) || pgconn.Timeout(err) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, pgconn.ErrConnClosed) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// boundedPool is the pool as the driver's statements see it: each call
// bounded by QueryTimeout and its failure classified. Transactions go
// through Store.inTx, which does the same for the transaction as a whole.
type boundedPool struct {
	*pgxpool.Pool
	timeout time.Duration // QueryTimeout but in tests
}

// bound returns ctx limited to the timeout (ctx itself when it ends
// sooner).
func (p boundedPool) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if d, ok := ctx.Deadline(); ok && time.Until(d) <= p.timeout {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, p.timeout)
}

// Exec runs a statement.
func (p boundedPool) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	ctx, cancel := p.bound(ctx)
	defer cancel()
	tag, err := p.Pool.Exec(ctx, sql, args...)
	return tag, classify(err)
}

// Query runs a query; the bound lasts until the rows are closed or read
// to the end.
func (p boundedPool) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	ctx, cancel := p.bound(ctx)
	rows, err := p.Pool.Query(ctx, sql, args...)
	if err != nil {
		cancel()
		return nil, classify(err)
	}
	return &boundedRows{Rows: rows, cancel: cancel}, nil
}

// QueryRow runs a query of one row; the bound lasts until Scan.
func (p boundedPool) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	ctx, cancel := p.bound(ctx)
	return boundedRow{row: p.Pool.QueryRow(ctx, sql, args...), cancel: cancel}
}

// Ping checks that the database answers.
func (p boundedPool) Ping(ctx context.Context) error {
	ctx, cancel := p.bound(ctx)
	defer cancel()
	return classify(p.Pool.Ping(ctx))
}

type boundedRows struct {
	pgx.Rows
	cancel context.CancelFunc
}

func (r *boundedRows) Next() bool {
	if r.Rows.Next() {
		return true
	}
	r.cancel() // pgx has closed the rows
	return false
}

func (r *boundedRows) Close() {
	r.Rows.Close()
	r.cancel()
}

func (r *boundedRows) Err() error { return classify(r.Rows.Err()) }

type boundedRow struct {
	row    pgx.Row
	cancel context.CancelFunc
}

func (r boundedRow) Scan(dest ...any) error {
	defer r.cancel()
	return classify(r.row.Scan(dest...))
}

// boundedTx is a transaction whose statements end by its deadline too
// (the callers pass their own context to each).
type boundedTx struct {
	pgx.Tx
	deadline time.Time
}

func (t boundedTx) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithDeadline(ctx, t.deadline)
}

func (t boundedTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	ctx, cancel := t.bound(ctx)
	defer cancel()
	return t.Tx.Exec(ctx, sql, args...)
}

func (t boundedTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	ctx, cancel := t.bound(ctx)
	rows, err := t.Tx.Query(ctx, sql, args...)
	if err != nil {
		cancel()
		return nil, err
	}
	return &boundedRows{Rows: rows, cancel: cancel}, nil
}

func (t boundedTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	ctx, cancel := t.bound(ctx)
	return boundedRow{row: t.Tx.QueryRow(ctx, sql, args...), cancel: cancel}
}
