package smtpd

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/skydesk/skydeskd/internal/connlimit"
)

// ErrServerClosed is returned by Serve, ServeTLS and ServeMX after Close
// or Shutdown.
var ErrServerClosed = errors.New("smtpd: server closed")

// Server runs skydeskd's SMTP listeners over one store: submission with
// STARTTLS (Serve, 587), submission over implicit TLS (ServeTLS, 465) and
// the MX (ServeMX, 25). It owns what go-smtp leaves to its caller: the
// connection cap with its 421, a shutdown that closes idle connections
// after a grace period, and the relay worker's start and stop.
type Server struct {
	opts       Options
	submission *backend
	mx         *backend

	mu      sync.Mutex
	closing bool
	eps     []*endpoint
	serving sync.WaitGroup // Serve loops inside go-smtp's Serve

	relayCancel context.CancelFunc
	relayDone   chan struct{} // nil: the relay worker never started

	drainOnce sync.Once
	drained   chan struct{} // closed when every session has ended
	drainErr  error
}

// endpoint is one listener with the go-smtp server behind it.
type endpoint struct {
	srv *smtp.Server
	tl  *capListener
}

// NewServer returns a server delivering through st and checking
// credentials with auth (unused by the MX).
func NewServer(st Store, auth Authenticator, o Options) *Server {
	o.defaults()
	return &Server{
		opts:       o,
		submission: newBackend(Submission, st, auth, o),
		mx:         newBackend(MX, st, auth, o),
		drained:    make(chan struct{}),
	}
}

// Serve accepts submission on l (587): STARTTLS (RFC 3207) before AUTH
// and MAIL. It returns ErrServerClosed after Shutdown or Close.
func (s *Server) Serve(l net.Listener) error { return s.serve(l, s.submission, "submission", false) }

// ServeTLS accepts submission over implicit TLS (465, RFC 8314 §3.3) on l,
// a plain TCP listener: the server wraps it with Options.TLSConfig, under
// its connection cap.
func (s *Server) ServeTLS(l net.Listener) error { return s.serve(l, s.submission, "smtps", true) }

// ServeMX accepts mail from other servers on l (25): STARTTLS offered, no
// AUTH, local recipients only.
func (s *Server) ServeMX(l net.Listener) error { return s.serve(l, s.mx, "mx", false) }

func (s *Server) serve(l net.Listener, b *backend, name string, implicit bool) error {
	if implicit && s.opts.TLSConfig == nil {
		l.Close()
		return errors.New("smtpd: ServeTLS without Options.TLSConfig")
	}
	// Per client network first, so one network's extra connections never
	// take a slot of the listener's total.
	perNet := connlimit.Wrap(l, connlimit.Limits{PerNetwork: s.opts.MaxConnectionsPerNetwork,
		IPv4Prefix: s.opts.IPv4Prefix, IPv6Prefix: s.opts.IPv6Prefix}, func(c net.Conn, _ connlimit.Reason) {
		if !implicit {
			_, _ = c.Write([]byte(tooBusyNetwork))
		}
	})
	ep := &endpoint{srv: newSMTP(b), tl: newCapListener(perNet, s.opts.MaxConnections, !implicit, func() { s.opts.Connected(name) })}
	ep.tl.firstCommand = s.opts.FirstCommandTimeout
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.eps = append(s.eps, ep)
	s.serving.Add(1)
	s.startRelay()
	s.mu.Unlock()
	defer s.serving.Done()
	var served net.Listener = ep.tl
	if implicit {
		served = newHandshakeListener(ep.tl, s.opts.TLSConfig, s.opts.HandshakeTimeout)
	}
	err := ep.srv.Serve(served)
	s.mu.Lock()
	closing := s.closing
	s.mu.Unlock()
	if closing || err == nil {
		return ErrServerClosed
	}
	return err
}

// startRelay runs the relay worker once, on the first listener; s.mu held.
func (s *Server) startRelay() {
	if s.opts.Relay == nil || s.relayDone != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	s.relayCancel, s.relayDone = cancel, done
	go func() {
		defer close(done)
		s.opts.Relay.Run(ctx)
	}()
}

// Shutdown stops accepting and the relay worker, lets transactions in
// progress finish for Options.ShutdownGrace, then closes the connections
// left (go-smtp's own Shutdown would wait for idle clients until their
// read timeout). It returns when every session and the relay worker have
// ended, or with ctx's error when ctx ends first. Calling it again waits
// for the same drain.
func (s *Server) Shutdown(ctx context.Context) error { return s.stop(ctx, s.opts.ShutdownGrace) }

// Close closes the listeners and every connection at once, stops the
// relay worker and waits for the sessions to end. A message whose DATA
// was not yet acknowledged is not stored; its client retries.
func (s *Server) Close() error { return s.stop(context.Background(), 0) }

func (s *Server) stop(ctx context.Context, grace time.Duration) error {
	s.mu.Lock()
	s.closing = true
	eps := s.eps
	if s.relayCancel != nil {
		s.relayCancel()
	}
	relayDone := s.relayDone
	s.mu.Unlock()
	var errs []error
	for _, ep := range eps {
		if err := ep.tl.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	s.drainOnce.Do(func() { go s.drain(eps) })
	if grace > 0 {
		t := time.NewTimer(grace)
		select {
		case <-s.drained:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
	for _, ep := range eps {
		ep.tl.closeAll()
	}
	for _, done := range []chan struct{}{s.drained, relayDone} {
		if done == nil {
			continue
		}
		select {
		case <-done:
		case <-ctx.Done():
			return errors.Join(append(errs, ctx.Err())...)
		}
	}
	return errors.Join(append(errs, s.drainErr)...)
}

// drain waits for every session through go-smtp's Shutdown, once the
// Serve loops have returned (so go-smtp adds no connection to the group
// it waits for), then closes s.drained.
func (s *Server) drain(eps []*endpoint) {
	s.serving.Wait()
	var errs []error
	for _, ep := range eps {
		if err := ep.srv.Shutdown(context.Background()); err != nil &&
			!errors.Is(err, smtp.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	s.drainErr = errors.Join(errs...)
	close(s.drained)
}

// BytesInFlight is the octets of mail received and not yet stored or
// refused, across every listener (bounded by Options.MaxBytesInFlight;
// exported as a gauge).
func (s *Server) BytesInFlight() int64 { return s.opts.guard.budget.inUse() }
