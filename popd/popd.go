// Package popd is a POP3 server: the wire protocol, the state machine and the
// DELE/RSET bookkeeping. Storage lives behind the small Backend/Session
// interface, so the protocol knows nothing of SQL (DESIGN.md §4).
//
// Implemented:
//   - RFC 1939 POP3: USER, PASS, STAT, LIST, UIDL, RETR, TOP, DELE, RSET,
//     NOOP, QUIT; the AUTHORIZATION, TRANSACTION and UPDATE states; dot
//     stuffing; CRLF on the wire; a 10-minute autologout timer (§3).
//   - RFC 2449 CAPA and extended response codes (RESP-CODES, PIPELINING,
//     TOP, UIDL, USER, SASL, EXPIRE, IMPLEMENTATION), and its line limits.
//   - RFC 3206 response codes [SYS/TEMP], [SYS/PERM], [AUTH] and the
//     AUTH-RESP-CODE capability.
//   - RFC 2595 §4 STLS (plaintext input buffered before the handshake is
//     discarded), RFC 8314 implicit TLS (pass a tls.Listener to Serve).
//   - RFC 5034 AUTH with SASL PLAIN (RFC 4616, parsed by go-sasl) and the
//     widely used non-standard LOGIN mechanism.
//
// APOP is not offered: it needs the clear-text password on the server.
package popd

import (
	"context"
	"errors"
	"io"
)

// Backend makes one Session per connection.
type Backend interface {
	NewSession(c *Conn) (Session, error)
}

// BackendFunc adapts a function to Backend.
type BackendFunc func(c *Conn) (Session, error)

// NewSession calls f(c).
func (f BackendFunc) NewSession(c *Conn) (Session, error) { return f(c) }

// Session is one POP3 connection. Methods are called in protocol order, from
// the connection's goroutine only.
type Session interface {
	// Login checks a user name and password (from USER/PASS or SASL). Return
	// ErrAuthFailed, ErrInUse or another *Error; on success the session holds
	// the maildrop lock until Logout (RFC 1939 §4). Login may be called again
	// after a failure.
	Login(ctx context.Context, username, password string) error
	// Messages is the maildrop snapshot taken at Login; message n is [n-1].
	// It is called once, right after a successful Login.
	Messages(ctx context.Context) ([]Message, error)
	// Open streams message n (1-based) with CRLF line endings; popd does the
	// dot-stuffing and TOP.
	Open(ctx context.Context, n int) (io.ReadCloser, error)
	// Expunge removes the DELE-marked messages (1-based, ascending). It is
	// called only on QUIT from the TRANSACTION state (UPDATE, RFC 1939 §6)
	// and never when the connection drops; it must apply all or nothing.
	Expunge(ctx context.Context, nums []int) error
	// Logout releases the session. It is always called exactly once.
	Logout() error
}

// RetrievedSession is an optional Session add-on (STYLE: add-on
// interfaces by type assertion): Retrieved(n) is called after message n
// was sent whole by RETR (not TOP), so a backend can tell how many
// messages a client downloaded.
type RetrievedSession interface {
	Session
	Retrieved(n int)
}

// Message is one entry of the maildrop listing.
type Message struct {
	// Size in octets as sent: CRLF line endings, before dot-stuffing
	// (RFC 1939 §5 LIST).
	Size int64
	// UID is the UIDL unique-id: 1-70 characters in 0x21-0x7E, stable across
	// sessions and never reused in the maildrop (RFC 1939 §7).
	UID string
}

// Error is the only error whose text reaches the wire: "-ERR [Code] Text".
// Code is an RFC 2449/3206 response code (AUTH, IN-USE, LOGIN-DELAY,
// SYS/TEMP, SYS/PERM) or empty. Any other error a Session returns is logged
// and answered with ErrInternal.
type Error struct {
	Code string
	Text string
}

func (e *Error) Error() string {
	if e.Code == "" {
		return e.Text
	}
	return "[" + e.Code + "] " + e.Text
}

// Errors with fixed wire text.
var (
	ErrAuthFailed = &Error{Code: "AUTH", Text: "authentication failed"}
	ErrInUse      = &Error{Code: "IN-USE", Text: "maildrop already locked: another POP3 session is open for this account"}
	ErrInternal   = &Error{Code: "SYS/TEMP", Text: "internal error, try again later"}
)

// wireError returns the *Error to send for err and whether err was one.
func wireError(err error) (*Error, bool) {
	var pe *Error
	if errors.As(err, &pe) {
		return pe, true
	}
	return ErrInternal, false
}
