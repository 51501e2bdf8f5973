package smtpd

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// tooBusy is RFC 5321 §3.8's reply for a server that cannot take the
// connection now.
const tooBusy = "421 4.7.0 Too many connections, try again later\r\n"

// tooBusyNetwork is the reply when the client's own network holds its
// share of the connections (Options.MaxConnectionsPerNetwork).
const tooBusyNetwork = "421 4.7.0 Too many connections from your network, try again later\r\n"

// capListener refuses connections beyond max and remembers the ones it
// accepted, so that shutdown can close them under any TLS layer.
type capListener struct {
	net.Listener
	max       int
	plaintext bool // the 421 can be written (not before a TLS handshake)
	// firstCommand bounds the wait for a plaintext client's first bytes
	// (its EHLO), whatever longer read deadline go-smtp sets.
	firstCommand time.Duration
	accepted     func() // told of each connection accepted

	mu     sync.Mutex
	conns  map[*capConn]struct{}
	closed bool
}

func newCapListener(l net.Listener, max int, plaintext bool, accepted func()) *capListener {
	return &capListener{Listener: l, max: max, plaintext: plaintext, accepted: accepted, conns: map[*capConn]struct{}{}}
}

// Accept returns the next connection under the cap. One over it is told
// tooBusy (plaintext only, with a one-second write deadline so a client
// that reads nothing cannot stall Accept) and closed.
func (l *capListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			c.Close()
			return nil, net.ErrClosed
		}
		if len(l.conns) >= l.max {
			l.mu.Unlock()
			if l.plaintext {
				_ = c.SetWriteDeadline(time.Now().Add(time.Second))
				_, _ = c.Write([]byte(tooBusy))
			}
			c.Close()
			continue
		}
		tc := &capConn{Conn: c, l: l}
		if l.plaintext && l.firstCommand > 0 {
			tc.first = time.Now().Add(l.firstCommand)
		}
		l.conns[tc] = struct{}{}
		l.mu.Unlock()
		l.accepted()
		return tc, nil
	}
}

// Close stops accepting; a second Close returns nil.
func (l *capListener) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	if err := l.Listener.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}

// closeAll closes every connection still open (the raw TCP connection,
// so no TLS close_notify waits on a stalled client).
func (l *capListener) closeAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	for c := range l.conns {
		c.Conn.Close()
	}
}

// capConn frees its slot when closed. Until its client has sent
// anything, no read deadline goes past first: go-smtp gives every command
// five minutes (RFC 5321 §4.5.3.2), which would let a silent client hold
// a connection slot that long.
type capConn struct {
	net.Conn
	l      *capListener
	once   sync.Once
	first  time.Time // zero: no first-command bound
	talked atomic.Bool
}

func (c *capConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && !c.talked.Load() {
		c.talked.Store(true)
	}
	return n, err
}

func (c *capConn) SetReadDeadline(t time.Time) error {
	if !c.first.IsZero() && !c.talked.Load() && (t.IsZero() || t.After(c.first)) {
		t = c.first
	}
	return c.Conn.SetReadDeadline(t)
}

func (c *capConn) SetDeadline(t time.Time) error {
	if err := c.Conn.SetWriteDeadline(t); err != nil {
		return err
	}
	return c.SetReadDeadline(t)
}

func (c *capConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}
