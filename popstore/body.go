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

// Open implements popd.Session.
func (p *session) Open(ctx context.Context, n int) (io.ReadCloser, error) {
	id, size := p.ids[n-1], p.sizes[n-1]
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
