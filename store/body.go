package store

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"sync"
)

// ChunkSize is the largest piece of a message body the store writes or
// reads at once: bodies up to it are one blob, longer ones are rows of
// message_chunks (migration 0007), so memory per delivery or RETR stays
// bounded whatever the message size.
const ChunkSize = 256 << 10

// Body is a message the store copies in pieces of at most ChunkSize: Size
// octets with CRLF line endings, read with ReadAt. A spool file
// (io.SectionReader) or a *bytes.Reader is one.
type Body interface {
	io.ReaderAt
	Size() int64
}

// BytesBody is b, any line endings, as a Body with CRLF line endings.
func BytesBody(b []byte) Body { return bytes.NewReader(NormalizeCRLF(b)) }

var chunkPool = sync.Pool{New: func() any { b := make([]byte, ChunkSize); return &b }}

// insertBody adds one message row for account id with the octets of body,
// chunked when longer than ChunkSize; a read error aborts the caller's
// transaction, so nothing partial is kept.
func insertBody(ctx context.Context, tx *sql.Tx, id int64, body Body, spam bool, now int64) (int64, error) {
	size := body.Size()
	bufp := chunkPool.Get().(*[]byte)
	defer chunkPool.Put(bufp)
	buf := *bufp
	if size <= ChunkSize {
		b := buf[:size]
		if n, err := body.ReadAt(b, 0); n < len(b) {
			return 0, fmt.Errorf("reading message: %w", err)
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO messages (account_id, received, size, spam, in_pop, body) VALUES (?, ?, ?, ?, 1, ?)`,
			id, now, size, boolInt(spam), b)
		if err != nil {
			return 0, fmt.Errorf("storing message: %w", err)
		}
		return res.LastInsertId()
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO messages (account_id, received, size, spam, in_pop, body, chunked) VALUES (?, ?, ?, ?, 1, X'', 1)`,
		id, now, size, boolInt(spam))
	if err != nil {
		return 0, fmt.Errorf("storing message: %w", err)
	}
	uid, err := res.LastInsertId()
	if err != nil {
		return 0, err
	}
	for seq, off := int64(0), int64(0); off < size; seq, off = seq+1, off+ChunkSize {
		b := buf[:min(ChunkSize, size-off)]
		if n, err := body.ReadAt(b, off); n < len(b) {
			return 0, fmt.Errorf("reading message at %d: %w", off, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO message_chunks (message_id, seq, data) VALUES (?, ?, ?)`, uid, seq, b); err != nil {
			return 0, fmt.Errorf("storing message chunk: %w", err)
		}
	}
	return uid, nil
}

// appendChunks appends octets [off, off+n) of chunked message id to dst.
func (s *Store) appendChunks(ctx context.Context, id, off, n int64, dst []byte) ([]byte, error) {
	if n <= 0 {
		return dst, nil
	}
	rows, err := s.md.chunks.QueryContext(ctx, id, off/ChunkSize, (off+n-1)/ChunkSize)
	if err != nil {
		return dst, fmt.Errorf("reading message: %w", err)
	}
	defer rows.Close()
	end := off + n
	for rows.Next() {
		var seq int64
		var data sql.RawBytes
		if err := rows.Scan(&seq, &data); err != nil {
			return dst, fmt.Errorf("reading message: %w", err)
		}
		start := seq * ChunkSize
		lo, hi := max(off-start, 0), min(end-start, int64(len(data)))
		if lo < hi {
			dst = append(dst, data[lo:hi]...)
		}
	}
	if err := rows.Err(); err != nil {
		return dst, fmt.Errorf("reading message: %w", err)
	}
	return dst, rows.Close()
}

// CRLFReader returns r with every line ending made CRLF (a bare LF or a
// bare CR becomes CRLF), as NormalizeCRLF does for a whole body, reading r
// in pieces: a CR at the end of one piece is settled by the next.
func CRLFReader(r io.Reader) io.Reader { return &crlfReader{r: r} }

type crlfReader struct {
	r       io.Reader
	in      [32 << 10]byte
	buf     []byte // normalized octets
	out     []byte // the part of buf not yet returned
	pending bool   // the last input octet was a CR not yet written
	err     error
}

func (c *crlfReader) Read(p []byte) (int, error) {
	for len(c.out) == 0 {
		if c.err != nil {
			if c.pending {
				c.pending = false
				c.buf = append(c.buf[:0], '\r', '\n')
				c.out = c.buf
				break
			}
			return 0, c.err
		}
		n, err := c.r.Read(c.in[:])
		c.err = err
		c.buf = c.normalize(c.buf[:0], c.in[:n])
		c.out = c.buf
	}
	n := copy(p, c.out)
	c.out = c.out[n:]
	return n, nil
}

func (c *crlfReader) normalize(out, in []byte) []byte {
	for _, b := range in {
		switch {
		case c.pending:
			c.pending = false
			out = append(out, '\r', '\n')
			if b == '\n' {
				continue
			}
			if b == '\r' {
				c.pending = true
				continue
			}
			out = append(out, b)
		case b == '\r':
			c.pending = true
		case b == '\n':
			out = append(out, '\r', '\n')
		default:
			out = append(out, b)
		}
	}
	return out
}
