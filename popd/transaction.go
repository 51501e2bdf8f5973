package popd

import (
	"fmt"
	"io"
	"strconv"
)

// transaction runs one command in the TRANSACTION state (RFC 1939 §5).
func (c *Conn) transaction(cmd command) bool {
	args := fields(cmd.arg)
	switch cmd.name {
	case "CAPA":
		c.capa()
	case "NOOP":
		c.ok("")
	case "STAT":
		n, size := c.stat()
		c.ok(fmt.Sprintf("%d %d", n, size))
	case "LIST":
		c.list(args, func(i int) string { return strconv.FormatInt(c.msgs[i].Size, 10) })
	case "UIDL":
		c.list(args, func(i int) string { return c.msgs[i].UID })
	case "RETR":
		if len(args) != 1 {
			c.reply(&Error{Text: "syntax: RETR msg"})
			return c.countBad()
		}
		return c.retr(args[0], -1)
	case "TOP":
		if len(args) != 2 {
			c.reply(&Error{Text: "syntax: TOP msg lines"})
			return c.countBad()
		}
		lines, ok := parseNumber(args[1])
		if !ok {
			c.reply(&Error{Text: "invalid line count"})
			return c.countBad()
		}
		return c.retr(args[0], lines)
	case "DELE":
		if len(args) != 1 {
			c.reply(&Error{Text: "syntax: DELE msg"})
			return c.countBad()
		}
		i, perr := c.message(args[0])
		if perr != nil {
			c.reply(perr)
			return true
		}
		c.deleted[i] = true
		c.nDeleted++
		c.ok(fmt.Sprintf("message %d deleted", i+1))
	case "RSET":
		clear(c.deleted)
		c.nDeleted = 0
		n, size := c.stat()
		c.ok(fmt.Sprintf("maildrop has %d messages (%d octets)", n, size))
	case "QUIT":
		c.quit()
		return false
	case "USER", "PASS", "AUTH", "APOP", "STLS":
		c.reply(&Error{Text: "already logged in"})
		return c.countBad()
	default:
		c.reply(&Error{Text: "unknown command"})
		return c.countBad()
	}
	return true
}

// stat counts the messages not marked deleted (RFC 1939 §5 STAT).
func (c *Conn) stat() (n int, size int64) {
	for i, m := range c.msgs {
		if !c.deleted[i] {
			n++
			size += m.Size
		}
	}
	return n, size
}

// message resolves a message-number argument to an index.
func (c *Conn) message(arg string) (int, *Error) {
	n, ok := parseNumber(arg)
	if !ok {
		return 0, &Error{Text: "invalid message number"}
	}
	if n < 1 || n > len(c.msgs) {
		return 0, &Error{Text: fmt.Sprintf("no such message, only %d messages in maildrop", len(c.msgs))}
	}
	if c.deleted[n-1] {
		return 0, &Error{Text: fmt.Sprintf("message %d already deleted", n)}
	}
	return n - 1, nil
}

// list answers LIST and UIDL: one message, or every message not deleted.
func (c *Conn) list(args []string, value func(i int) string) {
	switch len(args) {
	case 0:
		n, size := c.stat()
		c.ok(fmt.Sprintf("%d messages (%d octets)", n, size))
		w := c.writer()
		var buf []byte
		for i := range c.msgs {
			if c.deleted[i] {
				continue
			}
			buf = strconv.AppendInt(buf[:0], int64(i+1), 10)
			buf = append(buf, ' ')
			buf = append(buf, value(i)...)
			buf = append(buf, '\r', '\n')
			_, _ = w.Write(buf)
		}
		_, _ = w.WriteString(".\r\n")
	case 1:
		i, perr := c.message(args[0])
		if perr != nil {
			c.reply(perr)
			return
		}
		c.ok(fmt.Sprintf("%d %s", i+1, value(i)))
	default:
		c.reply(&Error{Text: "too many arguments"})
	}
}

// retr answers RETR (lines < 0) or TOP (RFC 1939 §7), streaming the body
// from the Session.
func (c *Conn) retr(arg string, lines int) bool {
	i, perr := c.message(arg)
	if perr != nil {
		c.reply(perr)
		return true
	}
	rc, err := c.sess.Open(c.ctx, i+1)
	if err != nil {
		c.reply(err)
		return true
	}
	defer rc.Close()
	if lines < 0 {
		c.ok(fmt.Sprintf("%d octets", c.msgs[i].Size))
	} else {
		c.ok("top of message follows")
	}
	d := newDotWriter(c.writer())
	if lines < 0 {
		_, err = io.Copy(d, rc)
	} else {
		err = copyTop(d, rc, lines)
	}
	if err == nil {
		err = d.close()
	}
	if err != nil {
		// The multi-line answer is cut: the session cannot continue.
		c.log.Warn("sending message", "msg", i+1, "err", err)
		return false
	}
	c.retrieved++
	c.sent += d.written
	if rs, ok := c.sess.(RetrievedSession); ok && lines < 0 {
		rs.Retrieved(i + 1)
	}
	return true
}

// quit enters UPDATE (RFC 1939 §6): the marks are applied in one call,
// all or nothing; then the session's resources are released (the
// backend's Logout: the maildrop lock) before the answer goes out, so a
// client that reconnects the moment it reads +OK finds the maildrop free.
func (c *Conn) quit() {
	var answer error
	if c.nDeleted > 0 {
		answer = c.expunge()
	}
	c.logout()
	if answer != nil {
		c.reply(answer)
		return
	}
	if c.nDeleted == 0 {
		c.ok("bye")
		return
	}
	c.ok(fmt.Sprintf("bye, %d messages deleted", c.expunged))
}

// expunge applies the DELE marks; the error is the answer to QUIT.
func (c *Conn) expunge() error {
	nums := make([]int, 0, c.nDeleted)
	for i, d := range c.deleted {
		if d {
			nums = append(nums, i+1)
		}
	}
	if err := c.sess.Expunge(c.ctx, nums); err != nil {
		if _, ok := wireError(err); !ok {
			c.log.Error("expunge", "err", err)
			err = &Error{Code: "SYS/TEMP", Text: "deleted messages could not be removed; none were, try again"}
		}
		return err
	}
	c.expunged = len(nums)
	return nil
}
