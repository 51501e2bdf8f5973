package popd

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"
)

type state int

const (
	stateAuthorization state = iota // RFC 1939 §4
	stateTransaction                // RFC 1939 §5
)

// Conn is one client connection. Backends may read its address and TLS
// state; everything else is popd's.
type Conn struct {
	srv  *Server
	nc   net.Conn // the current transport (a *tls.Conn after STLS)
	id   uint64
	ctx  context.Context
	br   *bufio.Reader
	bw   *bufio.Writer // nil while idle: borrowed from writerPool per burst
	tls  bool
	log  *slog.Logger
	sess Session

	state      state
	user       string // from USER, waiting for PASS
	msgs       []Message
	deleted    []bool
	nDeleted   int
	authFails  int
	badCommand int

	// For the end-of-session log line (as Dovecot's "Logged out retr=…").
	start     time.Time
	retrieved int
	sent      int64
	expunged  int
}

// ID is the connection's number, as logged under "cid".
func (c *Conn) ID() uint64 { return c.id }

// RemoteAddr is the client's address.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// TLS reports whether the connection is encrypted (implicit TLS or after
// STLS) and its state.
func (c *Conn) TLS() (tls.ConnectionState, bool) {
	if tc, ok := c.nc.(*tls.Conn); ok {
		return tc.ConnectionState(), true
	}
	return tls.ConnectionState{}, false
}

// writeBufSize matches the largest TLS record, so a RETR fills whole records.
const writeBufSize = 16 << 10

// writerPool keeps write buffers out of idle sessions: an idle session
// holds only its read buffer (DESIGN.md §7, memory per idle session).
var writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, writeBufSize) }}

// deadlineWriter refreshes the write deadline before every write, so a
// client that stops reading cannot pin a session forever.
type deadlineWriter struct{ c *Conn }

func (w deadlineWriter) Write(p []byte) (int, error) {
	if err := w.c.nc.SetWriteDeadline(time.Now().Add(w.c.srv.opts.WriteTimeout)); err != nil {
		return 0, err
	}
	return w.c.nc.Write(p)
}

func (s *Server) newConn(nc net.Conn) *Conn {
	c := &Conn{srv: s, nc: nc, id: s.nextID.Add(1), ctx: s.ctx, start: time.Now()}
	c.log = s.opts.Logger.With("cid", c.id, "remote", nc.RemoteAddr().String())
	return c
}

// writer returns the connection's write buffer, borrowing one if idle.
func (c *Conn) writer() *bufio.Writer {
	if c.bw == nil {
		c.bw = writerPool.Get().(*bufio.Writer)
		c.bw.Reset(deadlineWriter{c})
	}
	return c.bw
}

// flush sends buffered output and returns the buffer to the pool.
func (c *Conn) flush() error {
	if c.bw == nil {
		return nil
	}
	err := c.bw.Flush()
	c.bw.Reset(nil)
	writerPool.Put(c.bw)
	c.bw = nil
	return err
}

func (c *Conn) serve() {
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("panic in POP3 session", "panic", r, "stack", string(debug.Stack()))
			c.reply(ErrInternal)
			_ = c.flush()
		}
		c.logout()
		if c.state == stateTransaction {
			c.log.Info("logged out", "retrieved", c.retrieved, "octets_sent", c.sent,
				"marked", c.nDeleted, "expunged", c.expunged, "duration", time.Since(c.start).Round(time.Millisecond))
		}
		_ = c.flush()
		c.nc.Close()
	}()
	if tc, ok := c.nc.(*tls.Conn); ok {
		if err := c.handshake(tc); err != nil {
			c.log.Debug("TLS handshake", "err", err)
			return
		}
		c.tls = true
	}
	c.br = bufio.NewReaderSize(c.nc, c.srv.opts.MaxLineLength)
	sess, err := c.srv.be.NewSession(c)
	if err != nil {
		c.log.Error("new session", "err", err)
		c.reply(ErrInternal)
		return
	}
	c.sess = sess
	host := c.srv.opts.Hostname
	if host != "" {
		host += " "
	}
	c.ok(host + "POP3 server ready")
	for c.step() {
	}
}

// logout ends the backend session once (Session.Logout is called exactly
// once): at QUIT before the answer, otherwise as the connection closes.
func (c *Conn) logout() {
	if c.sess == nil {
		return
	}
	if err := c.sess.Logout(); err != nil {
		c.log.Warn("logout", "err", err)
	}
	c.sess = nil
}

func (c *Conn) handshake(tc *tls.Conn) error {
	ctx, cancel := context.WithTimeout(c.ctx, c.srv.opts.HandshakeTimeout)
	defer cancel()
	return tc.HandshakeContext(ctx)
}

var errLineTooLong = errors.New("line too long")

// readLine returns the next line without its line ending, flushing pending
// output first unless more pipelined input is already buffered (RFC 2449
// §6.6 PIPELINING: answers to a batch go out together).
func (c *Conn) readLine() (string, error) {
	if c.br.Buffered() == 0 {
		if err := c.flush(); err != nil {
			return "", err
		}
	}
	deadline := time.Now().Add(c.srv.opts.ReadTimeout)
	if c.state == stateAuthorization {
		if d := c.start.Add(c.srv.opts.LoginTimeout); d.Before(deadline) {
			deadline = d
		}
	}
	if err := c.nc.SetReadDeadline(deadline); err != nil {
		return "", err
	}
	if c.srv.closing.Load() {
		// Shutdown marks closing before it expires read deadlines: this
		// check after our own SetReadDeadline closes the race in which
		// the deadline set here would overwrite Shutdown's.
		return "", os.ErrDeadlineExceeded
	}
	line, err := c.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = c.br.ReadSlice('\n')
		}
		if err == nil {
			return "", errLineTooLong
		}
	}
	if err != nil {
		return "", err
	}
	s := strings.TrimSuffix(string(line), "\n")
	return strings.TrimSuffix(s, "\r"), nil
}

// step reads and runs one command; false ends the connection.
func (c *Conn) step() bool {
	if c.srv.closing.Load() {
		c.reply(&Error{Code: "SYS/TEMP", Text: "server shutting down, try again shortly"})
		return false
	}
	line, err := c.readLine()
	switch {
	case err == nil:
	case errors.Is(err, errLineTooLong):
		c.reply(&Error{Text: fmt.Sprintf("line too long (limit %d octets)", c.srv.opts.MaxLineLength)})
		return c.countBad()
	case errors.Is(err, os.ErrDeadlineExceeded):
		if c.srv.closing.Load() {
			c.reply(&Error{Code: "SYS/TEMP", Text: "server shutting down, try again shortly"})
		} else if c.state == stateAuthorization && time.Since(c.start) >= c.srv.opts.LoginTimeout {
			c.reply(&Error{Text: "login timeout: log in within " + c.srv.opts.LoginTimeout.String() + " of connecting"})
		} else {
			// RFC 1939 §3: the autologout timer ends the session without
			// entering UPDATE.
			c.reply(&Error{Text: "autologout: idle for too long"})
		}
		return false
	default:
		if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
			c.log.Debug("read", "err", err)
		}
		return false
	}
	cmd, err := parseCommand([]byte(line))
	c.trace("C", redact(cmd, line))
	if err != nil {
		c.reply(&Error{Text: "invalid command line"})
		if c.state == stateAuthorization && !errors.Is(err, errEmptyLine) {
			// Not POP3 at all (a TLS hello on 110, an HTTP request):
			// close, as for an unknown command.
			return false
		}
		return c.countBad()
	}
	if c.state == stateAuthorization {
		return c.authorization(cmd)
	}
	return c.transaction(cmd)
}

// countBad counts a bad command; too many close the connection.
func (c *Conn) countBad() bool {
	c.badCommand++
	if c.badCommand >= c.srv.opts.MaxErrors {
		c.reply(&Error{Text: "too many bad commands, closing connection"})
		return false
	}
	return true
}

// writeLine writes one response line with CRLF.
func (c *Conn) writeLine(s string) {
	w := c.writer()
	_, _ = w.WriteString(s)
	_, _ = w.WriteString("\r\n")
}

func (c *Conn) ok(text string) {
	line := "+OK"
	if text != "" {
		line += " " + text
	}
	c.trace("S", line)
	c.writeLine(line)
}

// reply sends err as "-ERR [Code] Text"; only *Error text reaches the
// wire, anything else is logged and answered generically (STYLE.md).
func (c *Conn) reply(err error) {
	pe, ok := wireError(err)
	if !ok {
		c.log.Error("POP3 command failed", "err", err)
	}
	line := "-ERR " + pe.Error()
	c.trace("S", line)
	c.writeLine(line)
}

// multiline writes +OK text, the lines and the terminating ".".
func (c *Conn) multiline(text string, lines []string) {
	c.ok(text)
	w := c.writer()
	for _, l := range lines {
		if strings.HasPrefix(l, ".") {
			_ = w.WriteByte('.')
		}
		_, _ = w.WriteString(l)
		_, _ = w.WriteString("\r\n")
	}
	_, _ = w.WriteString(".\r\n")
}

func (c *Conn) trace(dir, line string) {
	if w := c.srv.opts.DebugWriter; w != nil {
		fmt.Fprintf(w, "%d %s: %s\n", c.id, dir, line)
	}
}

// redact hides secrets in the debug trace.
func redact(cmd command, line string) string {
	switch cmd.name {
	case "PASS":
		return "PASS <redacted>"
	case "AUTH":
		if f := fields(cmd.arg); len(f) > 1 {
			return "AUTH " + f[0] + " <redacted>"
		}
	}
	return line
}
