// Package acceptretry paces an accept loop through temporary errors, as
// net/http's Server.Serve does: a process out of file descriptors, or a
// connection reset before accept(2) took it, must not end a listener, nor
// make its loop spin. The HTTP front, the POP3 server and the DNS TCP
// listener share it.
package acceptretry

import (
	"errors"
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
