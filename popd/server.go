package popd

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skydesk/skydeskd/internal/acceptretry"
	"github.com/skydesk/skydeskd/internal/connlimit"
)

// Options configure a Server. The zero value of each field is a safe
// default.
type Options struct {
	// Hostname appears in the greeting.
	Hostname string
	// Implementation is the IMPLEMENTATION capability (RFC 2449 §6.9);
	// default "skydeskd".
	Implementation string
	// TLSConfig enables STLS on plaintext connections (RFC 2595). Pass a
	// tls.Listener to Serve for implicit TLS (RFC 8314).
	TLSConfig *tls.Config
	// InsecureAuth allows USER/PASS and AUTH without TLS. Never in
	// production; tests and local debugging only.
	InsecureAuth bool
	// ReadTimeout is the autologout timer: at least 10 minutes says RFC
	// 1939 §3; default 10 minutes.
	ReadTimeout time.Duration
	// WriteTimeout bounds each write to a stalled client; default 1 minute.
	WriteTimeout time.Duration
	// HandshakeTimeout bounds a TLS handshake; default 10 seconds.
	HandshakeTimeout time.Duration
	// LoginTimeout bounds the whole AUTHORIZATION state, from the greeting
	// to a successful login; default 1 minute. RFC 1939 §3's ten-minute
	// autologout protects an idle user's session; a client that has not
	// logged in is not one, and without this bound it could hold a
	// connection slot for ten minutes per NOOP (Dovecot likewise drops
	// clients that do not authenticate in time).
	LoginTimeout time.Duration
	// MaxConnections bounds the connections open at once on each
	// listener; default 1000. Each holds a goroutine and a read buffer.
	MaxConnections int
	// MaxConnectionsPerNetwork bounds the connections of one client
	// network on each listener; default 50 (5% of the default total): an
	// office behind one NAT address polls with a client per desk, yet one
	// address cannot hold every slot and leave other clients refused. A
	// network is an IPv4 /IPv4Prefix (default 32) or an IPv6 /IPv6Prefix
	// (default 64: one host usually owns a whole /64). Beyond either cap a
	// plaintext client is told "-ERR [SYS/TEMP] too many connections …"
	// (RFC 3206 §4) and closed; an implicit-TLS client is closed before
	// its handshake costs anything.
	MaxConnectionsPerNetwork int
	IPv4Prefix, IPv6Prefix   int
	// MaxLineLength bounds a command or SASL line including CRLF; default
	// 2048 (RFC 2449 §4 allows 255 for commands, but a SASL PLAIN initial
	// response carrying a long UTF-8 password needs more).
	MaxLineLength int
	// MaxAuthFailures failed logins close the connection; default 3.
	MaxAuthFailures int
	// MaxErrors bad commands close the connection; default 10.
	MaxErrors int
	// Logger gets per-connection attributes cid, remote and user; default
	// discards.
	Logger *slog.Logger
	// DebugWriter, if set, receives a protocol trace with PASS and AUTH
	// data redacted and message bodies omitted.
	DebugWriter io.Writer
}

func (o *Options) setDefaults() {
	if o.Implementation == "" {
		o.Implementation = "skydeskd"
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = 10 * time.Minute
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = time.Minute
	}
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = 10 * time.Second
	}
	if o.LoginTimeout <= 0 {
		o.LoginTimeout = time.Minute
	}
	if o.MaxConnections <= 0 {
		o.MaxConnections = 1000
	}
	if o.MaxConnectionsPerNetwork <= 0 {
		o.MaxConnectionsPerNetwork = 50
	}
	if o.MaxLineLength <= 0 {
		o.MaxLineLength = 2048
	}
	if o.MaxLineLength < 512 {
		o.MaxLineLength = 512
	}
	if o.MaxAuthFailures <= 0 {
		o.MaxAuthFailures = 3
	}
	if o.MaxErrors <= 0 {
		o.MaxErrors = 10
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// ErrServerClosed is returned by Serve after Close or Shutdown.
var ErrServerClosed = errors.New("popd: server closed")

// Server accepts POP3 connections and runs each on its own goroutine.
type Server struct {
	be   Backend
	opts Options

	ctx    context.Context // cancelled by Close: aborts backend calls
	cancel context.CancelFunc

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*Conn]struct{}
	closing   atomic.Bool
	wg        sync.WaitGroup
	nextID    atomic.Uint64
}

// NewServer returns a server for be.
func NewServer(be Backend, opts Options) *Server {
	opts.setDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{be: be, opts: opts, ctx: ctx, cancel: cancel,
		listeners: map[net.Listener]struct{}{}, conns: map[*Conn]struct{}{}}
}

// The replies to a client over the connection caps (RFC 3206 §4: SYS/TEMP
// is a transient problem; the client retries later).
const (
	tooBusy        = "-ERR [SYS/TEMP] too many connections, try again later\r\n"
	tooBusyNetwork = "-ERR [SYS/TEMP] too many connections from your network, try again later\r\n"
)

// refuse writes the over-cap reply to a plaintext client. An implicit-TLS
// client (a *tls.Conn not yet shaken hands) gets nothing: writing would
// start the handshake the cap is there to spare.
func refuse(c net.Conn, r connlimit.Reason) {
	if _, ok := c.(*tls.Conn); ok {
		return
	}
	msg := tooBusy
	if r == connlimit.OverNetwork {
		msg = tooBusyNetwork
	}
	_, _ = io.WriteString(c, msg)
}

// Serve accepts connections on l until Close or Shutdown. Connections from
// a tls.Listener are implicit TLS; others are plaintext, offering STLS when
// Options.TLSConfig is set. Each Serve call has its own connection caps
// (Options.MaxConnections and MaxConnectionsPerNetwork). An implicit-TLS
// handshake runs on the connection's own goroutine under
// Options.HandshakeTimeout, never in the accept loop.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
	}()
	caps := connlimit.NewCounter(connlimit.Limits{Total: s.opts.MaxConnections,
		PerNetwork: s.opts.MaxConnectionsPerNetwork, IPv4Prefix: s.opts.IPv4Prefix, IPv6Prefix: s.opts.IPv6Prefix})
	return acceptretry.Loop(l, s.closing.Load, ErrServerClosed, s.opts.Logger, "accept", func(nc net.Conn) error {
		release, reason, ok := caps.Admit(nc)
		if !ok {
			connlimit.Refuse(nc, reason, refuse)
			return nil
		}
		c := s.newConn(nc)
		s.mu.Lock()
		if s.closing.Load() {
			s.mu.Unlock()
			nc.Close()
			release()
			return ErrServerClosed
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			c.serve() // closes nc
			release()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
		return nil
	})
}

// stopAccepting closes the listeners and marks the server closing.
func (s *Server) stopAccepting() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closing.Store(true)
	var errs []error
	for l := range s.listeners {
		if err := l.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Close stops at once: listeners and connections are closed, nothing is
// expunged (RFC 1939 §6: no UPDATE without QUIT).
func (s *Server) Close() error {
	err := s.stopAccepting()
	s.cancel()
	s.mu.Lock()
	for c := range s.conns {
		c.nc.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

// Shutdown stops accepting, tells idle sessions "-ERR [SYS/TEMP] server
// shutting down" (without UPDATE), lets commands in progress (a RETR, a
// QUIT's expunge) finish, and waits for every connection or ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.stopAccepting()
	s.mu.Lock()
	for c := range s.conns {
		// Wakes a connection blocked reading its next command; one busy
		// writing sees closing before its next read.
		_ = c.nc.SetReadDeadline(time.Now())
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		s.cancel()
		return err
	case <-ctx.Done():
		s.cancel()
		s.mu.Lock()
		for c := range s.conns {
			c.nc.Close()
		}
		s.mu.Unlock()
		<-done
		return errors.Join(err, ctx.Err())
	}
}
