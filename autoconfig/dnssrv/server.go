package dnssrv

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/miekg/dns"
)

// Server serves a Handler on one UDP socket and one TCP listener.
type Server struct {
	udp, tcp *dns.Server
}

// Timeouts and limits of the TCP side (RFC 7766 §6.2.3: servers may close
// idle connections; a few seconds is what BIND and NSD use).
const (
	tcpReadTimeout  = 5 * time.Second
	tcpWriteTimeout = 5 * time.Second
	tcpIdleTimeout  = 10 * time.Second
	maxTCPQueries   = 1000
)

// NewServer returns a server for h on pc (UDP) and l (TCP); either may be
// nil.
func NewServer(h *Handler, pc net.PacketConn, l net.Listener) *Server {
	s := &Server{}
	// Malformed packets: miekg/dns drops those whose header does not parse
	// and answers FORMERR to the rest; the handler never sees them.
	invalid := func(m []byte, err error) {
		h.opts.Logger.Debug("dns: malformed query", "err", err, "len", len(m))
		h.observe(0, dns.RcodeFormatError)
	}
	// Packets refused before parsing (wrong opcode, several questions) are
	// answered FORMERR/NOTIMP by miekg/dns; count them too.
	accept := func(dh dns.Header) dns.MsgAcceptAction {
		a := dns.DefaultMsgAcceptFunc(dh)
		switch a {
		case dns.MsgReject:
			h.observe(0, dns.RcodeFormatError)
		case dns.MsgRejectNotImplemented:
			h.observe(0, dns.RcodeNotImplemented)
		}
		return a
	}
	if pc != nil {
		s.udp = &dns.Server{PacketConn: pc, Handler: h, UDPSize: dns.DefaultMsgSize,
			MsgAcceptFunc: accept, MsgInvalidFunc: invalid}
	}
	if l != nil {
		idle := func() time.Duration { return tcpIdleTimeout }
		s.tcp = &dns.Server{Listener: l, Handler: h, ReadTimeout: tcpReadTimeout, WriteTimeout: tcpWriteTimeout,
			IdleTimeout: idle, MaxTCPQueries: maxTCPQueries, MsgAcceptFunc: accept, MsgInvalidFunc: invalid}
	}
	return s
}

// ServeUDP blocks serving UDP until Shutdown.
func (s *Server) ServeUDP() error { return serve(s.udp) }

// ServeTCP blocks serving TCP until Shutdown.
func (s *Server) ServeTCP() error { return serve(s.tcp) }

func serve(d *dns.Server) error {
	if d == nil {
		return nil
	}
	err := d.ActivateAndServe()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// Shutdown stops both listeners and waits for queries in flight.
func (s *Server) Shutdown(ctx context.Context) error {
	var errs []error
	for _, d := range []*dns.Server{s.udp, s.tcp} {
		if d == nil {
			continue
		}
		err := d.ShutdownContext(ctx)
		if err != nil && err.Error() == "dns: server not started" {
			// Shut down before its goroutine got to serve: closing the
			// socket makes a late ActivateAndServe return at once.
			err = nil
			if d.PacketConn != nil {
				err = d.PacketConn.Close()
			}
			if d.Listener != nil {
				err = d.Listener.Close()
			}
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
