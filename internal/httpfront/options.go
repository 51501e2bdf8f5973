package httpfront

import (
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/skydesk/skydeskd/internal/connlimit"
)

// Options are a Front's settings beyond those of its http.Server.
type Options struct {
	// Logger gets connection-level problems; default discards.
	Logger *slog.Logger
	// HandshakeTimeout bounds a TLS handshake; default the head timeout
	// (ReadHeaderTimeout, else ReadTimeout), as net/http does.
	HandshakeTimeout time.Duration
	// Limits cap the connections of each Serve or ServeTLS call, in total
	// and per client network (zero fields: no limit). A connection over
	// them is closed before the front reads from it: after "503 Service
	// Unavailable" on plain HTTP, without a word on TLS (ServeTLS counts
	// it before the handshake costs anything). Connections handed to the
	// http.Server keep their slot until it closes them.
	Limits connlimit.Limits
}

// New returns a Front with the default Options but for the logger. srv's
// Handler serves everything the Responder declines (New wraps it and
// srv.ConnContext to set Request.TLS on connections handed over after
// TLS), and its timeouts apply to the front's own reads and writes too:
// ReadHeaderTimeout (else ReadTimeout) to read a request head, counted
// from the wait for its first byte when it is a connection's first
// request (as net/http), WriteTimeout to send an answer, IdleTimeout
// (else ReadTimeout) between requests. Zero means no limit, as in
// net/http; the service sets all of them.
func New(resp Responder, srv *http.Server, log *slog.Logger) *Front {
	return NewWithOptions(resp, srv, Options{Logger: log})
}

// NewWithOptions is New with Options.
func NewWithOptions(resp Responder, srv *http.Server, o Options) *Front {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	restoreTLS(srv)
	return &Front{
		resp:      resp,
		srv:       srv,
		log:       o.Logger,
		opts:      o,
		handoff:   newHandoffListener(),
		listeners: map[net.Listener]struct{}{},
		conns:     map[*conn]struct{}{},
	}
}

// ServeTLS accepts TLS connections on l, a plain TCP listener, with the
// http.Server's TLSConfig (with NextProtos "h2" and "http/1.1" as for
// http.Server.ServeTLS), under Options.Limits. The front completes each
// handshake on the connection's own goroutine under
// Options.HandshakeTimeout and hands HTTP/2 connections straight to the
// http.Server.
func (f *Front) ServeTLS(l net.Listener) error {
	if f.srv.TLSConfig == nil {
		_ = l.Close()
		return errors.New("httpfront: ServeTLS without http.Server.TLSConfig")
	}
	return f.serve(tls.NewListener(f.limit(l, false), f.srv.TLSConfig))
}

// tooBusy is the answer on plain HTTP to a connection over the limits
// (RFC 9110 §15.6.4), sent before any request is read.
const tooBusy = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n" +
	"Content-Length: 22\r\nRetry-After: 10\r\nConnection: close\r\n\r\ntoo many connections\r\n"

// limit applies Options.Limits to l.
func (f *Front) limit(l net.Listener, plaintext bool) net.Listener {
	if f.opts.Limits == (connlimit.Limits{}) {
		return l
	}
	return connlimit.Wrap(l, f.opts.Limits, func(c net.Conn, _ connlimit.Reason) {
		if plaintext {
			_, _ = io.WriteString(c, tooBusy)
		}
	})
}
