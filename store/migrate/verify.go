package migrate

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"hash"
	"iter"

	"github.com/jackc/pgx/v5"
)

// ErrVerify is a copy that did not read back as the source: the target
// transaction is rolled back, so the target stays empty.
var ErrVerify = errors.New("verification failed")

// verifyTable reads t back from the target transaction and compares its
// row count and digest with what the source sent.
func verifyTable(ctx context.Context, dst pgx.Tx, t table, cols []column, want *digest) error {
	rows, err := dst.Query(ctx, `SELECT `+selectList(names(cols))+` FROM `+pgx.Identifier{t.name}.Sanitize())
	if err != nil {
		return fmt.Errorf("reading back %s: %w", t.name, err)
	}
	defer rows.Close()
	got := &digest{}
	skip := skipIndexes(cols, t.bodyCols)
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return fmt.Errorf("reading back %s: %w", t.name, err)
		}
		if err := got.add(vals, skip); err != nil {
			return fmt.Errorf("reading back %s: %w", t.name, err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading back %s: %w", t.name, err)
	}
	if got.rows != want.rows {
		return fmt.Errorf("%w: table %s has %d rows in the source, %d in the target", ErrVerify, t.name, want.rows, got.rows)
	}
	if got.lanes != want.lanes {
		return fmt.Errorf("%w: table %s: rows differ between source and target", ErrVerify, t.name)
	}
	return nil
}

// bodySum is one message's body as POP3 RETR sends it (its single body,
// or its chunks in order) summed with SHA-256.
type bodySum struct {
	id  int64
	sum [32]byte
	n   int64 // octets
}

// bodiesQuery reads every message's octets in id order, a chunked one's
// chunks in seq order after its (empty) body: the same text on both
// drivers.
const bodiesQuery = `SELECT m.id, m.body, c.data FROM messages m
	LEFT JOIN message_chunks c ON c.message_id = m.id ORDER BY m.id, c.seq`

// scanner is what *sql.Rows and pgx.Rows share for bodySums.
type scanner interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// bodySums yields each message's sum, reading one row at a time.
func bodySums(rows scanner) iter.Seq2[bodySum, error] {
	return func(yield func(bodySum, error) bool) {
		var (
			cur  bodySum
			h    hash.Hash
			have bool
		)
		flush := func() bool {
			if !have {
				return true
			}
			h.Sum(cur.sum[:0])
			return yield(cur, nil)
		}
		for rows.Next() {
			var (
				id         int64
				body, data []byte
			)
			if err := rows.Scan(&id, &body, &data); err != nil {
				yield(bodySum{}, err)
				return
			}
			if !have || id != cur.id {
				if !flush() {
					return
				}
				cur, h, have = bodySum{id: id}, sha256.New(), true
				h.Write(body)
				cur.n = int64(len(body))
			}
			h.Write(data)
			cur.n += int64(len(data))
		}
		if err := rows.Err(); err != nil {
			yield(bodySum{}, err)
			return
		}
		flush()
	}
}

// verifyBodies compares every message body of the source snapshot with
// the target's, message by message in id order, both read as streams;
// it returns the number of messages and octets compared.
func verifyBodies(ctx context.Context, src *sql.Tx, dst pgx.Tx) (n, octets int64, err error) {
	srows, err := src.QueryContext(ctx, bodiesQuery)
	if err != nil {
		return 0, 0, fmt.Errorf("reading the source's bodies: %w", err)
	}
	defer srows.Close()
	drows, err := dst.Query(ctx, bodiesQuery)
	if err != nil {
		return 0, 0, fmt.Errorf("reading back the bodies: %w", err)
	}
	defer drows.Close()
	next, stop := iter.Pull2(bodySums(srows))
	defer stop()
	for got, err := range bodySums(drows) {
		if err != nil {
			return n, octets, fmt.Errorf("reading back the bodies: %w", err)
		}
		want, serr, ok := next()
		switch {
		case !ok:
			return n, octets, fmt.Errorf("%w: message %d is in the target only", ErrVerify, got.id)
		case serr != nil:
			return n, octets, fmt.Errorf("reading the source's bodies: %w", serr)
		case want.id < got.id:
			return n, octets, fmt.Errorf("%w: message %d of the source is not in the target", ErrVerify, want.id)
		case want.id > got.id:
			return n, octets, fmt.Errorf("%w: message %d is in the target only", ErrVerify, got.id)
		case want.sum != got.sum || want.n != got.n:
			return n, octets, fmt.Errorf("%w: message %d: body differs (SHA-256 %x, %d octets in the source; %x, %d in the target)",
				ErrVerify, got.id, want.sum[:8], want.n, got.sum[:8], got.n)
		}
		n++
		octets += got.n
	}
	if want, serr, ok := next(); ok {
		if serr != nil {
			return n, octets, fmt.Errorf("reading the source's bodies: %w", serr)
		}
		return n, octets, fmt.Errorf("%w: message %d of the source is not in the target", ErrVerify, want.id)
	}
	return n, octets, nil
}
