// Package smtpd is skydeskd's SMTP service, a thin emersion/go-smtp
// Backend: message submission on 465 (implicit TLS, RFC 8314 §3.3) and 587
// (STARTTLS, RFC 3207; RFC 6409 submission rules), and the inbound MX
// (RFC 5321) that delivers into the same mailboxes POP reads.
//
// Implemented on top of go-smtp: AUTH PLAIN (RFC 4616) and LOGIN over TLS
// only (RFC 4954), SIZE (RFC 1870), 8BITMIME (RFC 6152), SMTPUTF8
// (RFC 6531), PIPELINING (RFC 2920), ENHANCEDSTATUSCODES (RFC 2034/3463),
// trace fields (RFC 5321 §4.4, RFC 3848), MSA fix-ups (RFC 6409 §8: Date,
// Message-ID), delivery status notifications for relayed mail (RFC 3464).
//
// Only *smtp.SMTPError values reach the wire: every other error is logged
// and answered with a generic temporary failure (maddy's wrapErr), because
// go-smtp writes err.Error() of anything else to the client.
package smtpd

import (
	"crypto/tls"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/skydesk/skydeskd/store"
)

// Mode is what a listener is for.
type Mode int

// Modes.
const (
	// Submission (465, 587): AUTH required before MAIL, sender must be the
	// authenticated address, other domains only through the smarthost.
	Submission Mode = iota + 1
	// MX (25): no AUTH, only existing local recipients, never relays.
	MX
)

func (m Mode) String() string {
	if m == MX {
		return "mx"
	}
	return "submission"
}

// Options configure a server. Zero values get the documented defaults.
type Options struct {
	// Hostname is the greeting name and the "by" of Received headers.
	Hostname string
	// TLSConfig offers STARTTLS on a plain listener (587, MX); on an
	// implicit-TLS listener (465) the caller wraps the listener with it.
	TLSConfig *tls.Config
	// MaxMessageSize is advertised as SIZE and enforced (default 50 MiB).
	MaxMessageSize int64
	// MaxRecipients per message (default 100).
	MaxRecipients int
	// ReadTimeout and WriteTimeout bound every command and reply (default
	// 5 minutes, RFC 5321 §4.5.3.2 asks servers to wait at least that long).
	ReadTimeout, WriteTimeout time.Duration
	// Postmaster is the account that receives mail for postmaster@ of
	// every local domain without an account of its own by that name
	// (RFC 5321 §4.5.1), in any letter case; "" for none. If that account
	// does not exist either, such mail is refused like any unknown
	// recipient and a warning is logged.
	Postmaster string
	// Relay is true when a smarthost is configured: authenticated
	// submission to other domains is then queued instead of refused.
	Relay bool
	// Queued, if set, is called after a message was queued for the
	// smarthost (to wake the relay).
	Queued func()
	// Classifier gives the spam verdict on the MX path (default
	// HeaderClassifier).
	Classifier Classifier
	Logger     *slog.Logger
	// Observe, if set, is told each outcome for metrics: "accepted", "queued", "spam", "unknown_rcpt", "relay_denied",
	// "sender_mismatch", "too_big", "temp_error", "spam_refused", "spam_deferred".
	Observe func(mode Mode, outcome string)
	// Debug receives a protocol trace (AUTH lines included: tests only).
	Debug io.Writer
	// Now is the clock of Date and Received headers (default time.Now).
	Now func() time.Time
	// Scanner, if set, checks every MX message (rspamd) and replaces
	// Classifier; see Scanner.
	Scanner Scanner
}

func (o *Options) defaults() {
	if o.Hostname == "" {
		o.Hostname = "localhost"
	}
	if o.MaxMessageSize <= 0 {
		o.MaxMessageSize = 50 << 20
	}
	if o.MaxRecipients <= 0 {
		o.MaxRecipients = 100
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = 5 * time.Minute
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 5 * time.Minute
	}
	if o.Classifier == nil {
		o.Classifier = HeaderClassifier{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Observe == nil {
		o.Observe = func(Mode, string) {}
	}
}

// NewServer returns a go-smtp server for mode, delivering through st and
// checking credentials with auth (unused for MX). Serve it on a plain
// listener (587, MX) or a tls.NewListener (465).
func NewServer(mode Mode, st Store, auth Authenticator, o Options) *smtp.Server {
	o.defaults()
	b := &backend{mode: mode, store: st, auth: auth, opts: o, log: o.Logger.With("service", "smtp-"+mode.String())}
	if o.Postmaster != "" {
		// The store's form, so the RCPT of the account itself and a
		// redirected postmaster@ land in s.local as one entry.
		if a, err := store.NormalizeAddress(o.Postmaster); err == nil {
			b.postmaster = a.String()
		} else {
			b.log.Warn("postmaster address ignored", "postmaster", printable(o.Postmaster), "err", err)
		}
	}
	s := smtp.NewServer(b)
	s.Domain = o.Hostname
	s.TLSConfig = o.TLSConfig
	s.MaxMessageBytes = o.MaxMessageSize
	s.MaxRecipients = o.MaxRecipients
	s.ReadTimeout = o.ReadTimeout
	s.WriteTimeout = o.WriteTimeout
	s.EnableSMTPUTF8 = true
	// go-smtp answers AUTH before TLS with its own 523; letting the
	// session see it gives the RFC 3207 "530 5.7.0 Must issue a STARTTLS
	// command first" instead. AuthMechanisms is empty before TLS, so AUTH
	// is never advertised there.
	s.AllowInsecureAuth = true
	s.ErrorLog = errorLog{b.log}
	s.Debug = o.Debug
	return s
}

// errorLog adapts go-smtp's Logger to slog. Handshake failures and resets
// from scanners are routine, so they log at debug; panics at error.
type errorLog struct{ log *slog.Logger }

func (l errorLog) Printf(format string, v ...any) {
	l.print(strings.TrimSpace(sprintf(format, v...)))
}

func (l errorLog) Println(v ...any) { l.print(strings.TrimSpace(sprintln(v...))) }

func (l errorLog) print(msg string) {
	if strings.Contains(msg, "panic") {
		l.log.Error("smtp server", "msg", msg)
		return
	}
	l.log.Debug("smtp connection", "msg", msg)
}
