// Package httpfront is a lean HTTP/1.1 connection loop in front of a
// net/http server. It answers the requests a Responder can answer from
// memory (the cached Thunderbird documents and signed Apple profiles) and
// hands the connection, with every byte it has read, to the http.Server
// for anything else: the first request it does not recognise, any error,
// HTTP/2 (negotiated by ALPN), HTTP/1.0, bodies, upgrades.
//
// Why: with a cached answer costing a few hundred nanoseconds, net/http's
// per-request work (a Request, a Header map, a context, a response
// writer, its goroutine hand-offs) is most of the cost. On the 2-core
// bench box a net/http server sending a fixed slice reached 0.6-0.8× the
// rate of nginx serving the same bytes as a static file; this loop, which
// parses the head in place and writes one prepared buffer, is what lets
// the autoconfig endpoints match nginx (issue 3).
//
// A connection handed on after the front has read from it reaches
// net/http wrapped (its first bytes replayed), which net/http does not
// recognise as TLS; the front puts its tls.ConnectionState back
// (http.Server.ConnContext, then Request.TLS before the handler runs), so
// a handler tells HTTPS from plain HTTP by Request.TLS on every request,
// as on a plain net/http server. HTTP/2 connections are handed on unread,
// as the *tls.Conn they are. A Responder sees the same in Request.TLS.
//
// The front never answers with an error itself: a request it does not
// take is answered by net/http, so status codes, limits and logging stay
// net/http's. Its own duties are RFC 9112's for what it does answer:
// exactly one valid Host, no body, Connection: close honoured, pipelined
// requests answered in order, a Date header (RFC 9110 §6.6.1).
package httpfront

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skydesk/skydeskd/internal/acceptretry"
)

// Answer is a complete response a Responder has ready.
type Answer struct {
	// Status is the status code (200, 404, ...).
	Status int
	// Header holds the header lines, each "Name: value\r\n", without Date,
	// Content-Length and Connection, which the front adds.
	Header []byte
	// Body is sent as is (not for HEAD); the front never modifies it.
	Body []byte
}

// A Responder answers a request from memory, or declines (ok false) and
// the request goes to the http.Server. Respond is called from many
// goroutines at once and must not block.
type Responder interface {
	Respond(r *Request) (a Answer, ok bool)
}

// Front serves connections from listeners, answering what its Responder
// can and handing everything else to an http.Server.
type Front struct {
	resp Responder
	srv  *http.Server
	log  *slog.Logger
	opts Options

	handoff *handoffListener
	serving sync.Once

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	closing   atomic.Bool
	active    sync.WaitGroup

	nConns, nAnswers, nHandoffs atomic.Uint64
}

// Stats are a Front's counters since New.
type Stats struct {
	// Connections accepted (TLS ones counted before the handshake).
	Connections uint64
	// Answers the front sent itself, from the Responder.
	Answers uint64
	// HandedOff counts connections given to the http.Server, HTTP/2 ones
	// included.
	HandedOff uint64
}

// Stats returns the counters (for metrics).
func (f *Front) Stats() Stats {
	return Stats{Connections: f.nConns.Load(), Answers: f.nAnswers.Load(), HandedOff: f.nHandoffs.Load()}
}

// ErrClosed is returned by Serve after Shutdown or Close.
var ErrClosed = http.ErrServerClosed

// Serve accepts plain HTTP connections on l until Shutdown or Close,
// under Options.Limits. It always returns a non-nil error: ErrClosed
// after Shutdown or Close. Without Limits, l may also be a listener made
// by tls.NewListener (yielding *tls.Conn); with them, use ServeTLS, which
// counts connections before TLS.
func (f *Front) Serve(l net.Listener) error { return f.serve(f.limit(l, true)) }

func (f *Front) serve(l net.Listener) error {
	f.serving.Do(func() {
		go func() {
			if err := f.srv.Serve(f.handoff); !errors.Is(err, http.ErrServerClosed) && !f.closing.Load() {
				f.log.Error("http server", "err", err)
			}
		}()
	})
	f.mu.Lock()
	if f.closing.Load() {
		f.mu.Unlock()
		_ = l.Close()
		return ErrClosed
	}
	f.listeners[l] = struct{}{}
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.listeners, l)
		f.mu.Unlock()
	}()

	return acceptretry.Loop(l, f.closing.Load, ErrClosed, f.log, "http accept", func(nc net.Conn) error {
		c := &conn{f: f, nc: nc}
		if !f.track(c) {
			_ = nc.Close()
			return ErrClosed
		}
		go c.serve()
		return nil
	})
}

func (f *Front) track(c *conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closing.Load() {
		return false
	}
	f.conns[c] = struct{}{}
	f.active.Add(1)
	f.nConns.Add(1)
	return true
}

func (f *Front) untrack(c *conn) {
	f.mu.Lock()
	delete(f.conns, c)
	f.mu.Unlock()
	f.active.Done()
}

// Shutdown stops accepting, closes connections that wait for a request,
// lets those answering finish, and shuts the http.Server down at the same
// time (it does the same for the connections it holds). A connection
// whose next request would go to the http.Server after that is closed,
// as net/http closes an idle one. It returns ctx's error if ctx ends
// first, after closing everything.
func (f *Front) Shutdown(ctx context.Context) error {
	f.stop()
	srvDone := make(chan error, 1)
	go func() { srvDone <- f.srv.Shutdown(ctx) }()
	done := make(chan struct{})
	go func() { f.active.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		f.closeConns(true)
	}
	err := <-srvDone
	_ = f.handoff.Close()
	if ctx.Err() != nil {
		_ = f.srv.Close()
		return ctx.Err()
	}
	return err
}

// Close closes every listener and connection at once.
func (f *Front) Close() error {
	f.stop()
	f.closeConns(true)
	_ = f.handoff.Close()
	return f.srv.Close()
}

// stop closes the listeners and the idle connections; connections that
// are answering see closing and end after their answer.
func (f *Front) stop() {
	f.mu.Lock()
	f.closing.Store(true)
	for l := range f.listeners {
		_ = l.Close()
	}
	f.mu.Unlock()
	f.closeConns(false)
}

// closeConns closes idle connections, or all of them.
func (f *Front) closeConns(all bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for c := range f.conns {
		if all || c.idle.Load() {
			_ = c.nc.Close()
		}
	}
}

// conn is one client connection while the front owns it.
type conn struct {
	f    *Front
	nc   net.Conn
	br   *bufio.Reader
	out  *[]byte // answers not yet written (pipelining), from writerPool
	idle atomic.Bool
	// first is true until the first request: a new connection gets the
	// head timeout to start one, not the idle timeout.
	first bool
	// tls is set for a *tls.Conn (Request.TLS).
	tls bool
	// readBy and writeBy are the deadlines last set, to skip resetting
	// them while they are close enough (an update takes the poller's lock).
	readBy, writeBy time.Time
}

func (c *conn) serve() {
	handedOff := false
	defer func() {
		if err := recover(); err != nil {
			c.f.log.Error("http front panic", "err", err)
		}
		if !handedOff {
			_ = c.nc.Close()
		}
		if c.br != nil && !handedOff {
			c.br.Reset(nil)
			readerPool.Put(c.br)
		}
		if c.out != nil {
			*c.out = (*c.out)[:0]
			writerPool.Put(c.out)
		}
		c.f.untrack(c)
	}()
	if tc, ok := c.nc.(*tls.Conn); ok {
		c.tls = true
		if !c.handshake(tc) {
			return
		}
		if tc.ConnectionState().NegotiatedProtocol == "h2" {
			handedOff = c.handOff(tc)
			return
		}
	}
	c.br = readerPool.Get().(*bufio.Reader)
	c.br.Reset(c.nc)
	c.first = true
	var req Request
	for {
		n, ok := c.readHead()
		if n < 0 {
			return // closed, timed out, shutting down, or a write failed
		}
		c.first = false
		if ok {
			ok = parseHead(mustPeek(c.br, n), &req)
		}
		var a Answer
		if ok {
			req.TLS = c.tls
			a, ok = c.f.resp.Respond(&req)
		}
		if !ok {
			// net/http answers this request and the rest of the
			// connection; it reads the buffered bytes first.
			if c.flush() != nil {
				return
			}
			handedOff = c.handOff(newReplayConn(c.nc, c.br, c.readBy))
			return
		}
		c.f.nAnswers.Add(1)
		closeAfter := req.close || c.f.closing.Load()
		c.appendAnswer(&req, &a, closeAfter)
		_, _ = c.br.Discard(n)
		if closeAfter {
			_ = c.flush()
			return
		}
		if len(*c.out) >= flushAt && c.flush() != nil {
			return
		}
	}
}

func mustPeek(br *bufio.Reader, n int) []byte {
	b, _ := br.Peek(n) // n bytes are buffered: no read, no error
	return b
}

// handshake completes the TLS handshake within Options.HandshakeTimeout
// (default the head timeout, as net/http), and answers a plain HTTP request on the TLS port with
// net/http's 400.
func (c *conn) handshake(tc *tls.Conn) bool {
	d := c.f.opts.HandshakeTimeout
	if d <= 0 {
		d = c.f.headTimeout()
	}
	ctx := context.Background()
	if d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	err := tc.HandshakeContext(ctx)
	if err == nil {
		return true
	}
	var re tls.RecordHeaderError
	if errors.As(err, &re) && re.Conn != nil && looksLikeHTTP(re.RecordHeader) {
		_ = re.Conn.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = io.WriteString(re.Conn, "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
		_ = re.Conn.Close()
	}
	if !errors.Is(err, io.EOF) {
		c.f.log.Debug("tls handshake", "remote", c.nc.RemoteAddr().String(), "err", err)
	}
	return false
}

func looksLikeHTTP(h [5]byte) bool {
	switch string(h[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO":
		return true
	}
	return false
}

// readHead waits for a complete request head in the buffer. n is its
// length; ok false means the bytes are not one this front parses (too
// long, irregular line endings) and n is what is buffered. n < 0: the
// connection is done (EOF, error, timeout, shutdown).
//
// Answers still buffered are written before any wait for more bytes, so a
// pipelining client gets the answers to the requests it sent together in
// one write, and no client waits on an answer we hold.
func (c *conn) readHead() (n int, ok bool) {
	if c.br.Buffered() == 0 {
		if c.flush() != nil {
			return -1, false
		}
		// Between requests: idle. Shutdown closes idle connections, so
		// check closing after publishing the state.
		c.idle.Store(true)
		if c.f.closing.Load() {
			return -1, false
		}
		if c.first {
			c.setReadDeadline(c.f.headTimeout())
		} else {
			c.setReadDeadline(c.f.idleTimeout())
		}
		_, err := c.br.Peek(1)
		c.idle.Store(false)
		if err != nil {
			return -1, false
		}
	}
	// A connection's first request has had its head deadline since the
	// wait for its first byte began (set above), as net/http counts
	// ReadHeaderTimeout: setting it again once bytes arrive would let a
	// client that sends its first byte just in time double it. A later
	// request, after the idle wait, gets it from its first byte.
	headSet := c.first
	for {
		buf, _ := c.br.Peek(c.br.Buffered())
		n, bad := headEnd(buf)
		switch {
		case n > 0:
			return n, true
		case bad || len(buf) >= maxHead:
			return len(buf), false
		}
		if c.flush() != nil {
			return -1, false
		}
		if !headSet {
			// A head has begun: it has ReadHeaderTimeout to arrive.
			headSet = true
			c.setReadDeadline(c.f.headTimeout())
		}
		if _, err := c.br.Peek(len(buf) + 1); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, net.ErrClosed) {
				return -1, false // as net/http: a head timeout closes silently
			}
			// Too long for us, or cut short (EOF): net/http answers
			// (431, 400) from the bytes we have.
			return len(buf), false
		}
	}
}

// handOff gives the connection to the http.Server. It reports false when
// the server no longer takes connections (shutting down).
func (c *conn) handOff(nc net.Conn) bool {
	// The http.Server sets its own deadlines; clear ours.
	_ = c.nc.SetDeadline(time.Time{})
	c.f.nHandoffs.Add(1) // before: the http.Server's answer implies the count
	if !c.f.handoff.give(nc) {
		c.f.nHandoffs.Add(^uint64(0))
		return false
	}
	c.br = nil // the replayConn owns it now
	return true
}

func (f *Front) headTimeout() time.Duration {
	if f.srv.ReadHeaderTimeout > 0 {
		return f.srv.ReadHeaderTimeout
	}
	return f.srv.ReadTimeout
}

func (f *Front) idleTimeout() time.Duration {
	if f.srv.IdleTimeout > 0 {
		return f.srv.IdleTimeout
	}
	return f.srv.ReadTimeout
}
