package smtpd

import (
	"context"
	"crypto/tls"
	"net"
	"sync"
	"time"
)

// handshakeListener completes each implicit-TLS handshake (465, RFC 8314
// §3.3) before go-smtp sees the connection, under a deadline of its own.
// With crypto/tls's listener the handshake would run on the first read,
// under go-smtp's five-minute command timeout, so a client that never
// sends a ClientHello would hold its connection slot for five minutes.
// Handshakes run concurrently (one goroutine per connection, bounded by
// the connection caps underneath), so a slow client delays no other.
type handshakeListener struct {
	net.Listener
	cfg     *tls.Config
	timeout time.Duration

	start sync.Once
	ready chan net.Conn
	done  chan struct{}
	mu    sync.Mutex
	err   error // the inner Accept's error, once it failed
}

func newHandshakeListener(l net.Listener, cfg *tls.Config, timeout time.Duration) *handshakeListener {
	return &handshakeListener{Listener: l, cfg: cfg, timeout: timeout, ready: make(chan net.Conn), done: make(chan struct{})}
}

// Accept returns the next connection whose handshake succeeded.
func (l *handshakeListener) Accept() (net.Conn, error) {
	l.start.Do(func() { go l.acceptLoop() })
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.done:
		l.mu.Lock()
		defer l.mu.Unlock()
		return nil, l.err
	}
}

func (l *handshakeListener) acceptLoop() {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			l.mu.Lock()
			l.err = err
			l.mu.Unlock()
			close(l.done)
			return
		}
		go l.handshake(c)
	}
}

func (l *handshakeListener) handshake(c net.Conn) {
	tc := tls.Server(c, l.cfg)
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		c.Close()
		return
	}
	select {
	case l.ready <- tc:
	case <-l.done:
		c.Close()
	}
}
