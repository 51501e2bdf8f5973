// Package acceptretry paces an accept loop through temporary errors, as
// net/http's Server.Serve does: a process out of file descriptors, or a
// connection reset before accept(2) took it, must not end a listener, nor
// make its loop spin. The HTTP front, the POP3 server and the DNS TCP
// listener share it.
package acceptretry

import (
	"errors"
	"log/slog"
	"net"
	"syscall"
	"time"
)

// Temporary reports an accept error that passes: a timeout, out of
// descriptors or buffers (EMFILE, ENFILE, ENOBUFS, ENOMEM), or a
// connection aborted or interrupted before it was accepted (accept(2)).
func Temporary(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, e := range temporaryErrnos {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

var temporaryErrnos = []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM,
	syscall.ECONNABORTED, syscall.EAGAIN, syscall.EINTR}

// Backoff is the wait before the next Accept after a temporary error:
// 5 ms, doubling to at most 1 s; Reset after a successful Accept. The
// zero value is ready.
type Backoff struct{ d time.Duration }

// Next returns the next wait.
func (b *Backoff) Next() time.Duration {
	b.d = min(max(2*b.d, 5*time.Millisecond), time.Second)
	return b.d
}

// Reset starts again from 5 ms.
func (b *Backoff) Reset() { b.d = 0 }

// Loop accepts connections from l and hands each to handle, until Accept
// fails for good or handle returns an error (Loop returns it). A
// temporary error waits Backoff's time and is logged with what
// ("http accept", "pop3 accept"). When closing reports true after an
// Accept error, the listener was closed on purpose and Loop returns
// closed (the server's ErrServerClosed, or nil).
func Loop(l net.Listener, closing func() bool, closed error, log *slog.Logger, what string, handle func(net.Conn) error) error {
	var backoff Backoff
	for {
		nc, err := l.Accept()
		if err != nil {
			if closing() {
				return closed
			}
			if Temporary(err) {
				d := backoff.Next()
				log.Warn(what, "err", err, "retry_in", d)
				time.Sleep(d)
				continue
			}
			return err
		}
		backoff.Reset()
		if err := handle(nc); err != nil {
			return err
		}
	}
}
