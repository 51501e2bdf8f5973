package popd

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/emersion/go-sasl"
)

// maxUserLength bounds USER and SASL user names.
const maxUserLength = 320

var errTLSRequired = &Error{Code: "AUTH", Text: "TLS required: send STLS first, or use port 995 (implicit TLS)"}

// authorization runs one command in the AUTHORIZATION state (RFC 1939 §4).
func (c *Conn) authorization(cmd command) bool {
	switch cmd.name {
	case "CAPA":
		c.capa()
	case "STLS":
		return c.stls()
	case "USER":
		return c.cmdUser(cmd.arg)
	case "PASS":
		return c.cmdPass(cmd.arg)
	case "AUTH":
		return c.cmdAuth(cmd.arg)
	case "QUIT":
		// RFC 1939 §6: QUIT from AUTHORIZATION does not enter UPDATE.
		c.ok("bye")
		return false
	case "APOP":
		c.reply(&Error{Text: "APOP is not supported: use USER/PASS or AUTH over TLS"})
		return c.countBad()
	case "STAT", "LIST", "UIDL", "RETR", "TOP", "DELE", "RSET", "NOOP":
		c.reply(&Error{Text: "not logged in"})
		return c.countBad()
	default:
		// As go-imap: an unknown command before login ends the
		// connection (it is not a POP3 client).
		c.reply(&Error{Text: "unknown command"})
		return false
	}
	return true
}

func (c *Conn) cmdUser(arg string) bool {
	if !c.canAuth() {
		c.reply(errTLSRequired)
		return c.countBad()
	}
	name := strings.TrimSpace(arg)
	if name == "" || len(name) > maxUserLength {
		c.reply(&Error{Text: "USER needs a user name (your full email address)"})
		return c.countBad()
	}
	c.user = name
	// The same answer for every name: USER must not reveal whether a
	// mailbox exists.
	c.ok("send PASS")
	return true
}

func (c *Conn) cmdPass(arg string) bool {
	if !c.canAuth() {
		c.reply(errTLSRequired)
		return c.countBad()
	}
	if c.user == "" {
		c.reply(&Error{Text: "send USER first"})
		return c.countBad()
	}
	user := c.user
	c.user = ""
	// RFC 1939 §7: the whole rest of the line is the password (it may
	// contain spaces).
	return c.login(user, arg)
}

// cmdAuth runs AUTH (RFC 5034). "AUTH" alone lists the mechanisms, as
// Thunderbird's legacy probe expects (RFC 1734 style).
func (c *Conn) cmdAuth(arg string) bool {
	if !c.canAuth() {
		c.reply(errTLSRequired)
		return c.countBad()
	}
	args := fields(arg)
	if len(args) == 0 {
		c.multiline("SASL mechanisms follow", mechanisms)
		return true
	}
	if len(args) > 2 {
		c.reply(&Error{Text: "syntax: AUTH mechanism [initial-response]"})
		return c.countBad()
	}
	var ir []byte
	if len(args) == 2 {
		// RFC 5034 §4: "=" is a zero-length initial response.
		if args[1] != "=" {
			var err error
			if ir, err = base64.StdEncoding.DecodeString(args[1]); err != nil {
				c.reply(&Error{Text: "invalid base64 in initial response"})
				return c.countBad()
			}
		} else {
			ir = []byte{}
		}
	}
	var user, pass string
	var err error
	switch strings.ToUpper(args[0]) {
	case sasl.Plain:
		user, pass, err = c.saslPlain(ir)
	case sasl.Login:
		user, pass, err = c.saslLogin(ir)
	default:
		c.reply(&Error{Text: fmt.Sprintf("unsupported mechanism; use one of: %s", strings.Join(mechanisms, " "))})
		return c.countBad()
	}
	if err != nil {
		if errors.Is(err, errConnLost) {
			return false
		}
		c.reply(err)
		return c.failed()
	}
	return c.login(user, pass)
}

var (
	errCancelled = &Error{Text: "authentication cancelled"}
	errConnLost  = errors.New("connection lost during SASL exchange")
	errBadAuthz  = &Error{Code: "AUTH", Text: "authorization identity must be empty or equal to the user name"}
	errBadSASL   = &Error{Code: "AUTH", Text: "malformed SASL response"}
)

// challenge sends "+ base64" and reads the client's answer. "*" cancels
// (RFC 5034 §4).
func (c *Conn) challenge(ch []byte) ([]byte, error) {
	line := "+ " + base64.StdEncoding.EncodeToString(ch)
	c.trace("S", line)
	c.writeLine(line)
	resp, err := c.readLine()
	if errors.Is(err, errLineTooLong) {
		return nil, &Error{Text: fmt.Sprintf("SASL response too long (limit %d octets)", c.srv.opts.MaxLineLength)}
	}
	if err != nil {
		return nil, errConnLost
	}
	c.trace("C", "<redacted>")
	if resp == "*" {
		return nil, errCancelled
	}
	b, err := base64.StdEncoding.DecodeString(resp)
	if err != nil {
		return nil, &Error{Text: "invalid base64 in SASL response"}
	}
	return b, nil
}

// saslPlain runs PLAIN (RFC 4616) with go-sasl's parser.
func (c *Conn) saslPlain(ir []byte) (user, pass string, err error) {
	srv := sasl.NewPlainServer(func(identity, username, password string) error {
		if identity != "" && identity != username {
			return errBadAuthz
		}
		user, pass = username, password
		return nil
	})
	resp := ir
	for {
		ch, done, err := srv.Next(resp)
		if err != nil {
			if errors.Is(err, errBadAuthz) {
				return "", "", errBadAuthz
			}
			return "", "", errBadSASL
		}
		if done {
			return user, pass, nil
		}
		if resp, err = c.challenge(ch); err != nil {
			return "", "", err
		}
	}
}

// saslLogin runs the non-standard LOGIN mechanism (draft-murchison-sasl-
// login): "Username:" and "Password:" challenges; an initial response is
// the user name. go-sasl no longer ships a LOGIN server.
func (c *Conn) saslLogin(ir []byte) (user, pass string, err error) {
	u := ir
	if u == nil {
		if u, err = c.challenge([]byte("Username:")); err != nil {
			return "", "", err
		}
	}
	p, err := c.challenge([]byte("Password:"))
	if err != nil {
		return "", "", err
	}
	return string(u), string(p), nil
}

// login checks credentials and, on success, takes the maildrop snapshot
// and enters TRANSACTION.
func (c *Conn) login(user, pass string) bool {
	if len(user) > maxUserLength {
		c.reply(ErrAuthFailed)
		return c.failed()
	}
	if err := c.sess.Login(c.ctx, user, pass); err != nil {
		pe, ok := wireError(err)
		if ok && pe.Code != "SYS/TEMP" {
			// One line per refusal for operators (fail2ban and the like);
			// never the password.
			c.log.Info("login refused", "user", user, "code", pe.Code, "tls", c.tls)
		}
		c.reply(err)
		if errors.Is(err, ErrInUse) || pe.Code == "SYS/TEMP" {
			// Not a credential failure (the maildrop is locked, or the
			// server is in trouble, RFC 3206 §4): the client may retry.
			return true
		}
		return c.failed()
	}
	msgs, err := c.sess.Messages(c.ctx)
	if err != nil {
		c.reply(err)
		return false
	}
	var total int64
	for _, m := range msgs {
		total += m.Size
	}
	c.msgs, c.deleted, c.state = msgs, make([]bool, len(msgs)), stateTransaction
	c.log = c.log.With("user", user)
	c.log.Info("logged in", "messages", len(msgs), "octets", total, "tls", c.tls)
	c.ok(fmt.Sprintf("logged in, %d messages (%d octets)", len(msgs), total))
	return true
}

// failed counts a failed login; too many close the connection.
func (c *Conn) failed() bool {
	c.authFails++
	return c.authFails < c.srv.opts.MaxAuthFailures
}
