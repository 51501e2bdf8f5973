package migrate

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
)

// convert turns a SQLite value into what the PostgreSQL column takes:
// SQLite keeps booleans as 0/1 integers (STRICT tables with CHECK), the
// rest maps one to one. A type this does not know stops the copy rather
// than guessing (a TIMESTAMPTZ column, say, needs its unit known).
func convert(c column, v any) (any, error) {
	if v == nil {
		if c.notNull && c.pgType == "bytea" {
			return []byte{}, nil // an empty BLOB may come back as nil
		}
		return nil, nil
	}
	switch c.pgType {
	case "bigint", "integer", "smallint":
		if n, ok := v.(int64); ok {
			return n, nil
		}
	case "boolean":
		if n, ok := v.(int64); ok && (n == 0 || n == 1) {
			return n == 1, nil
		}
	case "text":
		switch s := v.(type) {
		case string:
			return s, nil
		case []byte:
			return string(s), nil
		}
	case "bytea":
		switch b := v.(type) {
		case []byte:
			if b == nil {
				return []byte{}, nil // an empty BLOB, not NULL (which is v == nil)
			}
			return b, nil
		case string:
			return []byte(b), nil
		}
	default:
		return nil, fmt.Errorf("column %s: no conversion to PostgreSQL %s", c.name, c.pgType)
	}
	return nil, fmt.Errorf("column %s: value of type %T does not fit PostgreSQL %s", c.name, v, c.pgType)
}

// digest is an order-independent checksum of a table's rows: the sum,
// lane by lane, of each row's SHA-256. Primary keys make rows distinct,
// so equal digests and counts mean equal tables, whatever order either
// database returns them in (text collations differ between the two).
type digest struct {
	lanes [4]uint64
	rows  int64
	buf   []byte
}

// add counts one row, its values normalised as the target returns them;
// values at the indexes in skip are left out.
func (d *digest) add(vals []any, skip []int) error {
	d.buf = d.buf[:0]
	for i, v := range vals {
		if slices.Contains(skip, i) {
			continue
		}
		var err error
		if d.buf, err = appendValue(d.buf, v); err != nil {
			return err
		}
	}
	sum := sha256.Sum256(d.buf)
	for i := range d.lanes {
		d.lanes[i] += binary.BigEndian.Uint64(sum[8*i:])
	}
	d.rows++
	return nil
}

// appendValue encodes v unambiguously: a type tag, then the value (with
// its length for variable-sized ones).
func appendValue(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, 'N'), nil
	case int64:
		return binary.BigEndian.AppendUint64(append(b, 'I'), uint64(x)), nil
	case int32:
		return binary.BigEndian.AppendUint64(append(b, 'I'), uint64(int64(x))), nil
	case int16:
		return binary.BigEndian.AppendUint64(append(b, 'I'), uint64(int64(x))), nil
	case bool:
		if x {
			return append(b, 'T'), nil
		}
		return append(b, 'F'), nil
	case string:
		return append(binary.BigEndian.AppendUint64(append(b, 'S'), uint64(len(x))), x...), nil
	case []byte:
		return append(binary.BigEndian.AppendUint64(append(b, 'B'), uint64(len(x))), x...), nil
	}
	return nil, fmt.Errorf("checksum: unexpected value of type %T", v)
}

// rowSource feeds one SQLite table to pgx's COPY, converting each row and
// adding it to the table's digest as it goes.
type rowSource struct {
	rows *sql.Rows
	cols []column
	skip []int
	raw  []any
	ptrs []any
	out  []any
	d    *digest
	err  error
}

func newRowSource(rows *sql.Rows, cols []column, skip []int, d *digest) *rowSource {
	r := &rowSource{rows: rows, cols: cols, skip: skip, d: d,
		raw: make([]any, len(cols)), ptrs: make([]any, len(cols)), out: make([]any, len(cols))}
	for i := range r.raw {
		r.ptrs[i] = &r.raw[i]
	}
	return r
}

func (r *rowSource) Next() bool {
	if r.err != nil || !r.rows.Next() {
		return false
	}
	if r.err = r.rows.Scan(r.ptrs...); r.err != nil {
		return false
	}
	for i, c := range r.cols {
		if r.out[i], r.err = convert(c, r.raw[i]); r.err != nil {
			return false
		}
	}
	r.err = r.d.add(r.out, r.skip)
	return r.err == nil
}

func (r *rowSource) Values() ([]any, error) { return r.out, nil }

func (r *rowSource) Err() error {
	if r.err != nil {
		return r.err
	}
	return r.rows.Err()
}

// copyTable copies t from the source snapshot into the target
// transaction with COPY, returning the source's digest of what it sent.
// COPY writes the given ids into identity columns (it is not an INSERT,
// so GENERATED ALWAYS does not refuse them): message ids, the POP3 UIDs,
// stay what clients have seen.
func copyTable(ctx context.Context, src *sql.Tx, dst pgx.Tx, t table, cols []column) (*digest, error) {
	if t.replace {
		if _, err := dst.Exec(ctx, `DELETE FROM `+pgx.Identifier{t.name}.Sanitize()); err != nil {
			return nil, fmt.Errorf("emptying %s: %w", t.name, err)
		}
	}
	rows, err := src.QueryContext(ctx, `SELECT `+selectList(names(cols))+` FROM "`+t.name+`"`)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", t.name, err)
	}
	defer rows.Close()
	d := &digest{}
	rs := newRowSource(rows, cols, skipIndexes(cols, t.bodyCols), d)
	n, err := dst.CopyFrom(ctx, pgx.Identifier{t.name}, names(cols), rs)
	if err != nil {
		return nil, fmt.Errorf("copying %s: %w", t.name, err)
	}
	if n != d.rows {
		return nil, fmt.Errorf("copying %s: %d rows read, %d written", t.name, d.rows, n)
	}
	return d, nil
}

// skipIndexes returns the positions of the named columns.
func skipIndexes(cols []column, skip []string) []int {
	var out []int
	for i, c := range cols {
		if slices.Contains(skip, c.name) {
			out = append(out, i)
		}
	}
	return out
}

// resetSequences moves every identity column of the copied tables past
// the highest id SQLite ever gave out (sqlite_sequence, which AUTOINCREMENT
// keeps even after the row is deleted) or holds: a message delivered
// after the move never gets the UID of one a client saw before it (RFC
// 1939 §7). It returns how many it set.
func resetSequences(ctx context.Context, src *sql.Tx, dst pgx.Tx, copied []string) (int, error) {
	rows, err := dst.Query(ctx, `SELECT table_name, column_name FROM information_schema.columns
		WHERE table_schema = current_schema() AND is_identity = 'YES' ORDER BY table_name`)
	if err != nil {
		return 0, fmt.Errorf("listing identity columns: %w", err)
	}
	type ident struct{ table, col string }
	var ids []ident
	for rows.Next() {
		var i ident
		if err := rows.Scan(&i.table, &i.col); err != nil {
			rows.Close()
			return 0, err
		}
		if slices.Contains(copied, i.table) {
			ids = append(ids, i)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	for _, i := range ids {
		var used int64
		err := src.QueryRowContext(ctx, `SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = ?), 0)`, i.table).Scan(&used)
		if err != nil {
			return 0, fmt.Errorf("reading the last id of %s: %w", i.table, err)
		}
		q := fmt.Sprintf(`SELECT setval(pg_get_serial_sequence($1, $2), greatest(coalesce(max(%s), 0), $3::bigint, 1), greatest(coalesce(max(%[1]s), 0), $3::bigint) > 0) FROM %s`,
			pgx.Identifier{i.col}.Sanitize(), pgx.Identifier{i.table}.Sanitize())
		if _, err := dst.Exec(ctx, q, i.table, i.col, used); err != nil {
			return 0, fmt.Errorf("resetting the sequence of %s.%s: %w", i.table, i.col, err)
		}
	}
	return len(ids), nil
}
