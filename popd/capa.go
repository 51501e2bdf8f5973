package popd

import "strings"

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
