package popd

import (
	"bufio"
	"crypto/tls"
)

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
