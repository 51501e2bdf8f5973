package popd

import (
	"bufio"
	"crypto/tls"
	"strings"
)

// mechanisms are the SASL mechanisms offered (RFC 5034), only over TLS.
var mechanisms = []string{"PLAIN", "LOGIN"}

// canAuth reports whether credentials may be sent on this connection: only
// over TLS (RFC 8314 §3, RFC 2595 §2), unless Options.InsecureAuth.
func (c *Conn) canAuth() bool { return c.tls || c.srv.opts.InsecureAuth }

// capa answers CAPA (RFC 2449 §5). USER and SASL appear only where they
// would be accepted, so on port 110 a client sees them only after STLS
// (RFC 2595 §4). What is announced in AUTHORIZATION is announced in
// TRANSACTION too (RFC 2449 §5).
func (c *Conn) capa() {
	caps := []string{"TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING",
		// Messages are never expired by the server: retention is the user's
		// "when a client deletes" setting (RFC 2449 §6.7).
		"EXPIRE NEVER"}
	if c.canAuth() {
		caps = append(caps, "USER", "SASL "+strings.Join(mechanisms, " "))
	}
	if c.state == stateAuthorization && !c.tls && c.srv.opts.TLSConfig != nil {
		caps = append(caps, "STLS")
	}
	caps = append(caps, "IMPLEMENTATION "+c.srv.opts.Implementation)
	c.multiline("Capability list follows", caps)
}

// stls upgrades a plaintext connection (RFC 2595 §4). It returns false if
// the connection must close.
func (c *Conn) stls() bool {
	switch {
	case c.tls:
		c.reply(&Error{Text: "TLS is already active"})
		return true
	case c.srv.opts.TLSConfig == nil:
		c.reply(&Error{Text: "STLS is not available on this port"})
		return true
	}
	c.ok("Begin TLS negotiation")
	if err := c.flush(); err != nil {
		return false
	}
	if n := c.br.Buffered(); n > 0 {
		// RFC 2595 §4 / CVE-2011-0411: input sent before the handshake
		// must not be executed as if it came over TLS.
		c.log.Info("discarding plaintext sent after STLS", "octets", n)
	}
	tc := tls.Server(c.nc, c.srv.opts.TLSConfig)
	if err := c.handshake(tc); err != nil {
		c.log.Debug("STLS handshake", "err", err)
		return false
	}
	c.nc = tc
	c.br = bufio.NewReaderSize(tc, c.srv.opts.MaxLineLength)
	c.tls = true
	c.user = ""
	return true
}
