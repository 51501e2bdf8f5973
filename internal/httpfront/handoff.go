package httpfront

import (
	"bufio"
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"time"
)

// handoffListener is the net.Listener the http.Server serves: Accept
// yields the connections the front gives up.
type handoffListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newHandoffListener() *handoffListener {
	return &handoffListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

// give passes c to the http.Server; false if the listener is closed.
func (l *handoffListener) give(c net.Conn) bool {
	select {
	case l.conns <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *handoffListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *handoffListener) Addr() net.Addr { return handoffAddr{} }

type handoffAddr struct{}

func (handoffAddr) Network() string { return "handoff" }
func (handoffAddr) String() string  { return "httpfront" }

// replayConn is a connection handed to net/http after the front has read
// from it: reads return the buffered bytes (the request the front did not
// take, and any after it) before reading the connection again.
type replayConn struct {
	net.Conn
	mu sync.Mutex
	br *bufio.Reader // nil once drained
	// tls is the state of a TLS connection, for Request.TLS (restoreTLS);
	// net/http sets it only for a *tls.Conn.
	tls *tls.ConnectionState
	// headBy is the deadline the front gave the head it hands over; zero
	// once net/http has set its first read deadline.
	headBy time.Time
}

// newReplayConn hands nc over with the bytes buffered in br. headBy is
// the read deadline the request head in hand already has: net/http's own
// header deadline (the first read deadline it sets) is held to it, so a
// head that the front gives up on (one it does not parse, cut at just
// under the timeout) gets no second ReadHeaderTimeout.
func newReplayConn(nc net.Conn, br *bufio.Reader, headBy time.Time) *replayConn {
	rc := &replayConn{Conn: nc, br: br, headBy: headBy}
	if tc, ok := nc.(*tls.Conn); ok {
		cs := tc.ConnectionState()
		rc.tls = &cs
	}
	return rc
}

// tlsStateKey is the context key of a replayed TLS connection's state.
type tlsStateKey struct{}

// restoreTLS makes srv set Request.TLS for requests on a replayed TLS
// connection, as it does for a *tls.Conn: ConnContext records the state
// once per connection, and the handler wrapper copies it into each
// request (a shallow copy, as Request.WithContext makes, so the request
// net/http holds is not modified).
func restoreTLS(srv *http.Server) {
	connContext := srv.ConnContext
	srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if connContext != nil {
			ctx = connContext(ctx, c)
		}
		if rc, ok := c.(*replayConn); ok && rc.tls != nil {
			ctx = context.WithValue(ctx, tlsStateKey{}, rc.tls)
		}
		return ctx
	}
	next := srv.Handler
	if next == nil {
		next = http.DefaultServeMux
	}
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil {
			if cs, ok := r.Context().Value(tlsStateKey{}).(*tls.ConnectionState); ok {
				r = r.WithContext(r.Context())
				r.TLS = cs
			}
		}
		next.ServeHTTP(w, r)
	})
}

func (c *replayConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	br := c.br
	if br != nil && br.Buffered() == 0 {
		c.br, br = nil, nil // drained: read the connection directly from now on
	}
	c.mu.Unlock()
	if br != nil {
		return br.Read(p)
	}
	return c.Conn.Read(p)
}

// SetReadDeadline holds net/http's first read deadline (the header
// deadline of the request in hand) to the one the front had set.
func (c *replayConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	if by := c.headBy; !by.IsZero() {
		c.headBy = time.Time{}
		if t.IsZero() || t.After(by) {
			t = by
		}
	}
	c.mu.Unlock()
	return c.Conn.SetReadDeadline(t)
}

// CloseWrite lets net/http half-close the connection after an error
// response, as it does for a *net.TCPConn or *tls.Conn.
func (c *replayConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
