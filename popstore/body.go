package popstore

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"

	"github.com/skydesk/skydeskd/popd"
	"github.com/skydesk/skydeskd/store"
)

// errGone: another process or an admin removed the message meanwhile.
var errGone = &popd.Error{Text: "message is no longer on the server"}

// bodyChunk: bodies up to this size are read in one call; larger ones in
// chunks of this size, so memory per RETR stays bounded.
const bodyChunk = 1 << 20

var bodyPool = sync.Pool{New: func() any { return new([]byte) }}

// readAhead bounds the bodies a session reads ahead (octets) and
// readAheadMax their number: a session holds at most readAhead octets
// more than without (each body is let go once sent), and a download of
// ~20 KB messages costs one query per dozen.
const (
	readAhead    = 256 << 10
	readAheadMax = 32
)

// bodiesReader is a Maildrop that reads several bodies in one call (the
// PostgreSQL driver, where each read is a round trip to the database).
// The found messages not held in chunks, by id.
type bodiesReader interface {
	ReadBodies(ctx context.Context, accountID int64, ids []int64) (map[int64][]byte, error)
}

// Open implements popd.Session.
func (p *session) Open(ctx context.Context, n int) (io.ReadCloser, error) {
	id, size := p.ids[n-1], p.sizes[n-1]
	sequential := n == p.opened+1
	p.opened = n
	if _, ok := p.ahead[n]; !ok && sequential && n > 1 {
		if err := p.readAhead(ctx, n); err != nil {
			return nil, p.b.temp("reading messages", err)
		}
	}
	if b, ok := p.ahead[n]; ok {
		delete(p.ahead, n)
		return &pooledBody{Reader: bytes.NewReader(b)}, nil
	}
	if size > bodyChunk {
		return &chunkReader{ctx: ctx, st: p.st, account: p.account, id: id, size: size}, nil
	}
	buf := bodyPool.Get().(*[]byte)
	b, err := readBody(ctx, p.st, p.account, id, 0, size, (*buf)[:0])
	if err != nil {
		bodyPool.Put(buf)
		return nil, p.b.temp("reading a message", err)
	}
	*buf = b
	return &pooledBody{Reader: bytes.NewReader(b), buf: buf}, nil
}

// readAhead reads, when the store can read several bodies in one call,
// message n and those after it, up to readAhead octets, into p.ahead (a
// client retrieving messages one after another, as most do, then costs
// the database one round trip for several). The bodies of a session are
// immutable, and its maildrop is locked, so a body read ahead is the one
// a later RETR would read.
func (p *session) readAhead(ctx context.Context, n int) error {
	br, ok := p.st.(bodiesReader)
	if !ok {
		return nil
	}
	clear(p.ahead)
	var ids []int64
	var total int64
	for i := n - 1; i < len(p.ids) && len(ids) < readAheadMax && total+p.sizes[i] <= readAhead; i++ {
		ids = append(ids, p.ids[i])
		total += p.sizes[i]
	}
	if len(ids) < 2 {
		return nil
	}
	bodies, err := br.ReadBodies(ctx, p.account, ids)
	if err != nil {
		return err
	}
	if p.ahead == nil {
		p.ahead = make(map[int][]byte, len(ids))
	}
	for i, id := range ids {
		if b, ok := bodies[id]; ok && int64(len(b)) == p.sizes[n-1+i] {
			p.ahead[n+i] = b
		}
	}
	return nil
}

// readBody appends octets [off, off+n) of a body to dst; a message removed
// meanwhile is errGone.
func readBody(ctx context.Context, st store.Maildrop, account, id, off, n int64, dst []byte) ([]byte, error) {
	b, err := st.AppendBody(ctx, account, id, off, n, dst)
	if errors.Is(err, store.ErrNotFound) {
		return b, errGone
	}
	return b, err
}

type pooledBody struct {
	*bytes.Reader
	buf *[]byte
}

func (b *pooledBody) Close() error {
	if b.buf != nil && cap(*b.buf) <= 4*bodyChunk {
		bodyPool.Put(b.buf)
	}
	b.buf = nil
	return nil
}

// chunkReader streams a large body in bodyChunk pieces.
type chunkReader struct {
	ctx     context.Context
	st      store.Maildrop
	account int64
	id      int64
	size    int64
	off     int64
	buf     []byte
	r       int // read position in buf
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if r.r == len(r.buf) {
		if r.off >= r.size {
			return 0, io.EOF
		}
		n := min(bodyChunk, r.size-r.off)
		b, err := readBody(r.ctx, r.st, r.account, r.id, r.off, n, r.buf[:0])
		if err != nil {
			return 0, err
		}
		if len(b) == 0 {
			return 0, io.ErrUnexpectedEOF
		}
		r.buf, r.r = b, 0
		r.off += int64(len(b))
	}
	n := copy(p, r.buf[r.r:])
	r.r += n
	return n, nil
}

func (r *chunkReader) Close() error { return nil }
