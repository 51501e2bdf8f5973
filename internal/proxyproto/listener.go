package proxyproto

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skydesk/skydeskd/internal/acceptretry"
	"github.com/skydesk/skydeskd/internal/connlimit"
)

// Options configure a Listener.
type Options struct {
	// Trusted are the networks of the load balancers. A connection from
	// one of them MUST start with a PROXY header (version 1 or 2) or it
	// is closed; a connection from anywhere else is served as a direct
	// client and nothing it sends is read as a header, so no client can
	// claim another's address.
	Trusted []netip.Prefix
	// HeaderTimeout bounds the wait for a trusted connection's header
	// (default 5 s). Headers are read off the accept path, so a slow
	// balancer connection never holds up the others.
	HeaderTimeout time.Duration
	// MaxPending bounds the trusted connections whose header is being
	// read at once (default 1024); beyond it Accept waits.
	MaxPending int
	// Logger gets one line per refused connection (default: discard).
	Logger *slog.Logger
}

// Listener wraps a TCP listener: Accept returns connections whose
// RemoteAddr is the client named by the PROXY header (for trusted
// sources), so connection caps, login throttles and logs downstream see
// the client, not the balancer. Wrap it before tls.NewListener: the TLS
// handshake runs after the header.
type Listener struct {
	net.Listener
	opts Options

	start   sync.Once
	conns   chan net.Conn
	errs    chan error
	done    chan struct{}
	closing sync.Once
	pending chan struct{}

	refused atomic.Uint64
}

// Wrap returns l reading PROXY headers from the trusted networks of o.
func Wrap(l net.Listener, o Options) *Listener {
	if o.HeaderTimeout <= 0 {
		o.HeaderTimeout = 5 * time.Second
	}
	if o.MaxPending <= 0 {
		o.MaxPending = 1024
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Listener{Listener: l, opts: o,
		conns: make(chan net.Conn), errs: make(chan error), done: make(chan struct{}),
		pending: make(chan struct{}, o.MaxPending)}
}

// Accept returns the next connection: a trusted source's after its
// header was read, anyone else's as accepted.
func (l *Listener) Accept() (net.Conn, error) {
	l.start.Do(func() { go l.acceptLoop() })
	select {
	case c := <-l.conns:
		return c, nil
	case err := <-l.errs:
		return nil, err
	case <-l.done:
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: net.ErrClosed}
	}
}

// Close stops accepting and closes the underlying listener. Connections
// still waiting for their header are closed by their timeout.
func (l *Listener) Close() error {
	l.closing.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// Refused counts trusted connections closed for a missing, malformed or
// late header.
func (l *Listener) Refused() uint64 { return l.refused.Load() }

// acceptLoop accepts raw connections and hands them to Accept, reading
// headers on goroutines of their own. An accept error is handed over
// too; after a permanent one (the listener closed) the loop ends.
func (l *Listener) acceptLoop() {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			select {
			case l.errs <- err:
			case <-l.done:
				return
			}
			if acceptretry.Temporary(err) {
				continue
			}
			return
		}
		if !l.trusted(c) {
			l.deliver(c)
			continue
		}
		select {
		case l.pending <- struct{}{}:
		case <-l.done:
			_ = c.Close()
			return
		}
		go func() {
			defer func() { <-l.pending }()
			pc, err := l.readHeader(c)
			if err != nil {
				l.refused.Add(1)
				l.opts.Logger.Warn("proxy protocol: closing a trusted connection", "remote", c.RemoteAddr().String(), "err", err)
				_ = c.Close()
				return
			}
			l.deliver(pc)
		}()
	}
}

// deliver hands c to Accept, or closes it when the listener closed.
func (l *Listener) deliver(c net.Conn) {
	select {
	case l.conns <- c:
	case <-l.done:
		_ = c.Close()
	}
}

func (l *Listener) trusted(c net.Conn) bool {
	a := connlimit.RemoteAddr(c)
	for _, p := range l.opts.Trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// readHeader reads c's header under the timeout and returns the
// connection as the client's.
func (l *Listener) readHeader(c net.Conn) (net.Conn, error) {
	if err := c.SetReadDeadline(time.Now().Add(l.opts.HeaderTimeout)); err != nil {
		return nil, err
	}
	// The buffer holds a v1 line or a v2 preamble; a v2 payload is read
	// through it. Bytes after the header stay in it for the protocol.
	br := bufio.NewReaderSize(c, 256)
	h, err := ReadHeader(br)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil, fmt.Errorf("no header within %v: %w", l.opts.HeaderTimeout, err)
		}
		return nil, err
	}
	if err := c.SetReadDeadline(time.Time{}); err != nil {
		return nil, err
	}
	pc := &Conn{Conn: c, Header: h, remote: c.RemoteAddr()}
	if !h.Local {
		pc.remote = tcpAddr(h.Source)
	}
	if n := br.Buffered(); n > 0 {
		pc.rest, _ = br.Peek(n)
	}
	return pc, nil
}

// Conn is a connection that came with a PROXY header.
type Conn struct {
	net.Conn
	// Header is what the balancer said.
	Header Header
	remote net.Addr
	rest   []byte // read past the header, returned first
}

// RemoteAddr is the client's address from the header (a *net.TCPAddr),
// or the balancer's own for a LOCAL header. LocalAddr stays this
// server's socket address.
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

// Read returns the octets read along with the header first.
func (c *Conn) Read(b []byte) (int, error) {
	if len(c.rest) > 0 {
		n := copy(b, c.rest)
		c.rest = c.rest[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}

// CloseWrite half-closes the connection when the underlying one can
// (net/http does after an error response, as on a *net.TCPConn).
func (c *Conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// Unwrap returns the underlying connection.
func (c *Conn) Unwrap() net.Conn { return c.Conn }
