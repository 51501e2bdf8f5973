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
// Server (lifecycle.go) runs the listeners the way popd.Server does:
// Serve, ServeTLS and ServeMX, then Shutdown or Close; it caps
// connections, closes idle ones after a shutdown grace period, and starts
// and stops the relay worker.
//
// Only *smtp.SMTPError values reach the wire: every other error is logged
// and answered with a generic temporary failure (maddy's wrapErr), because
// go-smtp writes err.Error() of anything else to the client.
package smtpd

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/skydesk/skydeskd/profiles"
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

// Options configure a Server. Zero values get the documented defaults.
type Options struct {
	// Hostname is the greeting name and the "by" of Received headers.
	Hostname string
	// TLSConfig offers STARTTLS on the plain listeners (Serve, ServeMX,
	// RFC 3207) and is the certificate of ServeTLS's implicit TLS.
	TLSConfig *tls.Config
	// MaxMessageSize is advertised as SIZE and enforced (default 50 MiB).
	MaxMessageSize int64
	// MaxRecipients per message (default 100).
	MaxRecipients int
	// ReadTimeout and WriteTimeout bound every command and reply (default
	// 5 minutes, RFC 5321 §4.5.3.2 asks servers to wait at least that long).
	ReadTimeout, WriteTimeout time.Duration
	// MaxConnections bounds the connections open at once on each listener
	// (default 1000): go-smtp has no limit of its own, and each connection
	// holds a goroutine and buffers. Beyond it a plaintext client is told
	// "421 4.7.0 Too many connections" (RFC 5321 §3.8) and closed; an
	// implicit-TLS one is closed before the handshake.
	MaxConnections int
	// MaxConnectionsPerNetwork bounds the connections of one client
	// network on each listener (default 20, 2% of the default total), so
	// one address cannot hold every slot and leave other clients refused.
	// Beyond it a plaintext client is told "421 4.7.0 Too many connections
	// from your network". A network is an IPv4 /IPv4Prefix (default 32) or
	// an IPv6 /IPv6Prefix (default 64: one host usually owns a whole /64).
	MaxConnectionsPerNetwork int
	IPv4Prefix, IPv6Prefix   int
	// MaxRefusedRecipients is how many recipients one MX session may be
	// refused (unknown, relay, bad syntax) before every further RCPT gets
	// "421 4.7.0" and the connection is closed (default 20, Postfix's
	// smtpd_hard_error_limit): the answers must not list the mailboxes.
	MaxRefusedRecipients int
	// RefusedRecipientsPerNetwork is the same limit per client network
	// across connections: a leaky bucket of this many refusals that
	// drains as many per hour (default 100).
	RefusedRecipientsPerNetwork int
	// HandshakeTimeout bounds the TLS handshake on the implicit-TLS
	// listener (default 10 seconds).
	HandshakeTimeout time.Duration
	// FirstCommandTimeout bounds the wait for a plaintext client's first
	// command (25, 587; default 1 minute): a sending MTA speaks at once
	// after the greeting, a client that stays silent only holds a slot.
	// Later commands get ReadTimeout.
	FirstCommandTimeout time.Duration
	// ShutdownGrace is how long Shutdown lets transactions in progress
	// finish before it closes every connection left (default 3 seconds).
	// An unfinished DATA was never acknowledged, so its client retries:
	// nothing is lost.
	ShutdownGrace time.Duration
	// Postmaster is the account that receives mail for postmaster@ of
	// every local domain without an account of its own by that name
	// (RFC 5321 §4.5.1), in any letter case; "" for none. If that account
	// does not exist either, such mail is refused like any unknown
	// recipient and a warning is logged.
	Postmaster string
	// Relay, if set, takes mail for other domains: authenticated
	// submission to them is queued and Relay woken; the Server runs its
	// worker from the first Serve until Shutdown or Close. Without it such
	// recipients are refused at RCPT.
	Relay Relayer
	// SRS, with Relay, turns on mail forwarding on the MX (forward.go):
	// it rewrites the envelope sender of forwarded copies and takes their
	// bounces back. Without it or Relay, nothing is forwarded (mail is
	// kept) and SRS addresses are unknown recipients.
	SRS *SRS
	// Classifier gives the spam verdict on the MX path (default
	// HeaderClassifier).
	Classifier Classifier
	Logger     *slog.Logger
	// Observe, if set, is told each outcome for metrics: "accepted", "queued", "spam", "unknown_rcpt", "relay_denied", "rcpt_limited",
	// "sender_mismatch", "too_big", "temp_error", "spam_refused", "spam_deferred", "mailbox_full", "over_quota",
	// "rate_limited", "busy", "forwarded".
	Observe func(mode Mode, outcome string)
	// ObserveForward, if set, is told what became of each forwarding
	// mailbox's copy of a message (forward.go): ForwardQueued,
	// ForwardSpam, ForwardLoop, ForwardHopLimit, ForwardUnconfirmed or
	// ForwardNoRelay.
	ObserveForward func(outcome string)
	// Connected, if set, is told of each connection accepted under the cap,
	// by listener: "smtps" (ServeTLS), "submission" (Serve) or "mx"
	// (ServeMX).
	Connected func(listener string)
	// Debug receives a protocol trace (AUTH lines included: tests only).
	Debug io.Writer
	// Now is the clock of Date and Received headers (default time.Now).
	Now func() time.Time
	// Scanner, if set, checks every MX message (rspamd) and replaces
	// Classifier; see Scanner.
	Scanner Scanner
	// SpoolDir holds the unlinked spool files of messages being received
	// whose body is over 256 KiB (default os.TempDir()).
	SpoolDir string
	// MaxBytesInFlight bounds the octets of mail received and not yet
	// stored, over every listener (default 512 MiB). DATA takes octets
	// as they arrive; with none left it waits up to InFlightWait (default
	// 5 seconds), then answers "452 4.3.1".
	MaxBytesInFlight int64
	InFlightWait     time.Duration
	// MXMessagesPerMinute and MXBytesPerMinute bound what one client
	// network (IPv4Prefix / IPv6Prefix) sends the MX (defaults 60 and
	// 200 MiB; negative means no limit): beyond them "451 4.7.0" at MAIL,
	// or at the end of the DATA that overdraws the octets.
	MXMessagesPerMinute int
	MXBytesPerMinute    int64

	guard *guard // shared by the listeners; made by defaults
}

// Relayer sends queued mail on; *Relay is the smarthost one.
type Relayer interface {
	// Wake tells the worker a message was just queued.
	Wake()
	// Run works the queue until ctx ends.
	Run(ctx context.Context)
}

var _ Relayer = (*Relay)(nil)

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
	if o.MaxConnections <= 0 {
		o.MaxConnections = 1000
	}
	if o.MaxConnectionsPerNetwork <= 0 {
		o.MaxConnectionsPerNetwork = 20
	}
	if o.MaxRefusedRecipients <= 0 {
		o.MaxRefusedRecipients = 20
	}
	if o.RefusedRecipientsPerNetwork <= 0 {
		o.RefusedRecipientsPerNetwork = 100
	}
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = 10 * time.Second
	}
	if o.FirstCommandTimeout <= 0 {
		o.FirstCommandTimeout = time.Minute
	}
	if o.ShutdownGrace <= 0 {
		o.ShutdownGrace = 3 * time.Second
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
	if o.Connected == nil {
		o.Connected = func(string) {}
	}
	if o.SpoolDir == "" {
		o.SpoolDir = os.TempDir()
	}
	if o.MaxBytesInFlight <= 0 {
		o.MaxBytesInFlight = 512 << 20
	}
	if o.InFlightWait <= 0 {
		o.InFlightWait = 5 * time.Second
	}
	if o.MXMessagesPerMinute == 0 {
		o.MXMessagesPerMinute = 60
	}
	if o.MXBytesPerMinute == 0 {
		o.MXBytesPerMinute = 200 << 20
	}
	if o.guard == nil {
		o.guard = newGuard(o)
	}
}

// newBackend returns the go-smtp backend of mode.
func newBackend(mode Mode, st Store, auth Authenticator, o Options) *backend {
	b := &backend{mode: mode, store: st, auth: auth, opts: o, log: o.Logger.With("service", "smtp-"+mode.String())}
	if mode == MX {
		b.rcpt = newRcptLimiter(o)
	}
	if o.Postmaster != "" {
		// The store's form, so the RCPT of the account itself and a
		// redirected postmaster@ land in s.local as one entry.
		if a, err := profiles.NormalizeAddress(o.Postmaster); err == nil {
			b.postmaster = a.String()
		} else {
			b.log.Warn("postmaster address ignored", "postmaster", printable(o.Postmaster), "err", err)
		}
	}
	return b
}

// newSMTP returns a go-smtp server for b: one per listener, so that each
// listener's shutdown and connections are its own.
func newSMTP(b *backend) *smtp.Server {
	o := b.opts
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
