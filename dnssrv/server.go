package dnssrv

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skydesk/skydeskd/internal/acceptretry"
	"github.com/skydesk/skydeskd/internal/connlimit"
)

// Server serves a Handler on UDP sockets and a TCP listener. It reads
// packets itself rather than through miekg/dns's server so that the wire
// fast path (AnswerWire) answers without unpacking or allocating, and so
// that pipelined TCP answers are written in batches.
type Server struct {
	h   *Handler
	pcs []net.PacketConn
	l   net.Listener

	tcp  TCPLimits
	caps *connlimit.Counter

	closed atomic.Bool
	mu     sync.Mutex // guards conns
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup // TCP connections
}

// tcpWriteTimeout bounds each write of answers to a TCP client.
const tcpWriteTimeout = 5 * time.Second

// TCPLimits bound the TCP side of a Server. A zero field is its default.
type TCPLimits struct {
	// MaxConnections open at once; default 1024.
	MaxConnections int
	// MaxConnectionsPerNetwork from one client network; default 16 (under
	// 2% of the default total). A resolver opens TCP for a truncated
	// answer or a large one and closes it soon after, so even a farm of
	// resolvers behind one address needs few at once; without the cap
	// one address holding 1024 idle connections refused everyone. A
	// network is an IPv4 /IPv4Prefix (default 32) or an IPv6 /IPv6Prefix
	// (default 64). A connection over a cap is closed unanswered: DNS over
	// TCP has no greeting to refuse with, and a resolver retries.
	MaxConnectionsPerNetwork int
	IPv4Prefix, IPv6Prefix   int
	// FirstQueryTimeout is how long a new connection may wait before its
	// first query is complete; default 5 seconds. IdleTimeout is the same
	// between queries; default 10 seconds. RFC 7766 §6.2.3 lets servers
	// close idle connections; a few seconds is what BIND and NSD use.
	FirstQueryTimeout, IdleTimeout time.Duration
}

func (l *TCPLimits) setDefaults() {
	if l.MaxConnections <= 0 {
		l.MaxConnections = 1024
	}
	if l.MaxConnectionsPerNetwork <= 0 {
		l.MaxConnectionsPerNetwork = 16
	}
	if l.FirstQueryTimeout <= 0 {
		l.FirstQueryTimeout = 5 * time.Second
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = 10 * time.Second
	}
}

// NewServer returns a server for h on the UDP sockets pcs (several bound
// to one port with SO_REUSEPORT spread the load, see ListenUDP) and the
// TCP listener l; either may be empty. TCP has the default TCPLimits
// until SetTCPLimits.
func NewServer(h *Handler, pcs []net.PacketConn, l net.Listener) *Server {
	s := &Server{h: h, pcs: pcs, l: l, conns: map[net.Conn]struct{}{}}
	s.SetTCPLimits(TCPLimits{})
	return s
}

// SetTCPLimits replaces the TCP limits; call it before ServeTCP.
func (s *Server) SetTCPLimits(lim TCPLimits) {
	lim.setDefaults()
	s.tcp = lim
	s.caps = connlimit.NewCounter(connlimit.Limits{Total: lim.MaxConnections,
		PerNetwork: lim.MaxConnectionsPerNetwork, IPv4Prefix: lim.IPv4Prefix, IPv6Prefix: lim.IPv6Prefix})
}

// ServeUDP blocks serving every UDP socket until Shutdown.
func (s *Server) ServeUDP() error {
	var wg sync.WaitGroup
	errs := make([]error, len(s.pcs))
	for i, pc := range s.pcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.serveUDP(pc)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (s *Server) serveUDP(pc net.PacketConn) error {
	in := make([]byte, 4096) // queries are small; a longer one is cut and answered FORMERR
	out := make([]byte, 0, 4096)
	uc, _ := pc.(*net.UDPConn)
	var pi *pktinfo
	if uc != nil {
		pi = newPktinfo(uc)
	}
	for {
		var (
			n    int
			from net.Addr
			ap   netip.AddrPort
			dst  net.IP
			err  error
		)
		switch {
		case pi != nil:
			n, ap, dst, err = pi.read(uc, in)
		case uc != nil:
			n, ap, err = uc.ReadFromUDPAddrPort(in)
		default:
			n, from, err = pc.ReadFrom(in)
		}
		if err != nil {
			if s.isClosed() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		client := ap.Addr()
		if ua, ok := from.(*net.UDPAddr); ok {
			client = ua.AddrPort().Addr()
		}
		resp := s.safeAnswer(in[:n], true, client, out[:0])
		if resp == nil {
			continue
		}
		switch {
		case pi != nil:
			err = pi.write(uc, resp, ap, dst)
		case uc != nil:
			_, err = uc.WriteToUDPAddrPort(resp, ap)
		default:
			_, err = pc.WriteTo(resp, from)
		}
		if err != nil {
			s.h.opts.Logger.Debug("dns: writing answer", "err", err)
		}
	}
}

// safeAnswer answers one packet, over UDP from client with response rate
// limiting; a panic is logged and the packet dropped, as CoreDNS recovers
// in ServeDNS, so one packet cannot stop the server.
func (s *Server) safeAnswer(pkt []byte, udp bool, client netip.Addr, out []byte) (resp []byte) {
	defer func() {
		if v := recover(); v != nil {
			s.h.opts.Logger.Error("dns: panic answering query", "panic", v)
			resp = nil
		}
	}()
	if udp {
		return s.h.AnswerUDP(pkt, client, out)
	}
	return s.h.AnswerWire(pkt, false, out)
}

// ServeTCP blocks accepting TCP connections until Shutdown (RFC 7766).
func (s *Server) ServeTCP() error {
	if s.l == nil {
		return nil
	}
	closing := func() bool { return s.isClosed() }
	return acceptretry.Loop(s.l, closing, nil, s.h.opts.Logger, "dns: accept", func(c net.Conn) error {
		release, _, ok := s.caps.Admit(c)
		if !ok {
			c.Close()
			return nil
		}
		if !s.track(c) {
			c.Close()
			release()
			return nil
		}
		go s.serveConn(c, release)
		return nil
	})
}

func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

// serveConn answers length-prefixed queries in order (RFC 1035 §4.2.2).
// Answers are flushed when no further query is already buffered, so a
// pipelining client gets them in few segments.
func (s *Server) serveConn(c net.Conn, release func()) {
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
		release()
		s.wg.Done()
	}()
	br := bufio.NewReaderSize(c, 4096)
	bw := bufio.NewWriterSize(c, 16<<10)
	msg := make([]byte, 0, 512)
	out := make([]byte, 0, 4096)
	timeout := s.tcp.FirstQueryTimeout
	for {
		if br.Buffered() == 0 && bw.Buffered() > 0 {
			_ = c.SetWriteDeadline(time.Now().Add(tcpWriteTimeout))
			if bw.Flush() != nil {
				return
			}
		}
		_ = c.SetReadDeadline(time.Now().Add(timeout))
		timeout = s.tcp.IdleTimeout
		// After the deadline is set: Shutdown sets closed before it resets
		// every deadline to now, so either we see closed here or the read
		// below is unblocked.
		if s.isClosed() {
			return
		}
		var lb [2]byte
		if _, err := io.ReadFull(br, lb[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(lb[:]))
		if n < 12 {
			return // not even a header: a broken or hostile client
		}
		msg = msg[:n]
		if _, err := io.ReadFull(br, msg); err != nil {
			return
		}
		resp := s.safeAnswer(msg, false, netip.Addr{}, out[:0])
		if resp == nil {
			continue
		}
		_ = c.SetWriteDeadline(time.Now().Add(tcpWriteTimeout))
		if _, err := bw.Write(binary.BigEndian.AppendUint16(lb[:0], uint16(len(resp)))); err != nil {
			return
		}
		if _, err := bw.Write(resp); err != nil {
			return
		}
	}
}

func (s *Server) isClosed() bool { return s.closed.Load() }

// Shutdown closes the sockets, lets TCP connections finish the query in
// hand and waits for them until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.closed.Swap(true) {
		s.mu.Unlock()
		return nil
	}
	var errs []error
	for _, pc := range s.pcs {
		if err := pc.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	if s.l != nil {
		if err := s.l.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	for c := range s.conns {
		_ = c.SetReadDeadline(time.Now()) // unblock the read; the answer in hand is still written
	}
	s.mu.Unlock()
	waited := make(chan struct{})
	go func() { s.wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		errs = append(errs, ctx.Err())
	}
	return errors.Join(errs...)
}
