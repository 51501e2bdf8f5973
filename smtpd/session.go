package smtpd

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/skydesk/skydeskd/profiles"
	"github.com/skydesk/skydeskd/store"
)

// Store is what the SMTP service needs from persistence.
type Store interface {
	// AccountExists reports whether a local address has a mailbox.
	AccountExists(ctx context.Context, address string) (bool, error)
	// IsLocalDomain reports whether mail for domain is delivered here.
	IsLocalDomain(domain string) bool
	// Accept stores the message for its local recipients and queues it for
	// the remote ones, durably, in one transaction.
	Accept(ctx context.Context, a store.Accepted) (uids []int64, queueID int64, err error)
	// MailboxUsage is a mailbox's usage and quota (RCPT refuses a full one).
	MailboxUsage(ctx context.Context, address string) (store.Usage, error)
}

// Authenticator checks credentials (store.Authenticator: the single place
// for the credential rules).
type Authenticator interface {
	Login(ctx context.Context, req store.LoginRequest) (store.Login, error)
}

var (
	_ Store         = (*store.Store)(nil)
	_ Authenticator = (*store.Authenticator)(nil)
)

// opTimeout bounds each store call made for one command.
const opTimeout = 30 * time.Second

type backend struct {
	mode  Mode
	store Store
	auth  Authenticator
	opts  Options
	log   *slog.Logger
	// postmaster is Options.Postmaster normalized, "" for none.
	postmaster string
	// rcpt limits the MX's refused recipients; nil on submission.
	rcpt *rcptLimiter
	// outage logs the store's unavailability once in a while.
	outage store.OutageLog
}

func (b *backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	// go-smtp sets the EHLO name before NewSession.
	s := &session{b: b, c: c, id: newID(), helo: c.Hostname()}
	if ap, err := netip.ParseAddrPort(c.Conn().RemoteAddr().String()); err == nil {
		s.remote = ap.Addr().Unmap()
	}
	_, s.tls = c.TLSConnectionState()
	s.log = b.log.With("cid", s.id, "remote", s.remote.String())
	return s, nil
}

// session is one SMTP connection (go-smtp makes a new one after STARTTLS,
// so nothing said in plaintext survives the upgrade, RFC 3207 §4.2).
type session struct {
	b      *backend
	c      *smtp.Conn
	id     string
	remote netip.Addr
	tls    bool
	helo   string
	log    *slog.Logger

	user string // authenticated address, "" before AUTH

	refused int // recipients refused on the MX (rcptlimit.go)

	from    string
	utf8    bool
	rcpts   []string // accepted forward-paths, normalized (Received's for-clause)
	local   []string // mailboxes here that get a copy (postmaster@ may be redirected)
	rcptOut []string // recipients elsewhere (smarthost)
	// srsBoxes are mailboxes reached through an SRS address (bounces of
	// forwarded copies, forward.go): never forwarded again.
	srsBoxes []string
}

var (
	_ smtp.Session     = (*session)(nil)
	_ smtp.AuthSession = (*session)(nil)
)

func newID() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

func (s *session) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), opTimeout)
}

// AuthMechanisms lists PLAIN and LOGIN, only on submission and only over
// TLS: before STARTTLS on 587 AUTH is not advertised (RFC 3207 §4).
func (s *session) AuthMechanisms() []string {
	if s.b.mode != Submission || !s.tls {
		return nil
	}
	return []string{sasl.Plain, sasl.Login}
}

// Auth starts a SASL exchange.
func (s *session) Auth(mech string) (sasl.Server, error) {
	if s.b.mode != Submission {
		return nil, errNoAuthMX
	}
	if !s.tls {
		return nil, errNeedTLS
	}
	switch strings.ToUpper(mech) {
	case sasl.Plain:
		return saslErrors{sasl.NewPlainServer(func(identity, username, password string) error {
			// RFC 4616 §2: an authorization identity other than the user
			// would mean acting as someone else; we have no such rights.
			if identity != "" && !strings.EqualFold(identity, username) {
				return smtpErr(535, smtp.EnhancedCode{5, 7, 8}, "Authentication failed: authorization identity must be empty or your own address")
			}
			return s.login(username, password)
		})}, nil
	case sasl.Login:
		return saslErrors{&loginServer{check: s.login}}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

func (s *session) login(username, password string) error {
	ctx, cancel := s.ctx()
	defer cancel()
	l, err := s.b.auth.Login(ctx, store.LoginRequest{Username: username, Password: password, Remote: s.remote, Service: store.ServiceSMTP})
	if ae, ok := asAuthError(err); ok {
		s.log.Info("login refused", "user", username, "reason", ae.Error())
		return authReply(ae)
	}
	if err != nil {
		if store.IsUnavailable(err) {
			s.b.outage.Warn(s.b.log, "login", err)
		} else {
			s.log.Error("login", "err", err)
		}
		return errAuthTemp // RFC 4954 §6: 454 4.7.0, try again later
	}
	s.user = l.Account.Address
	s.log = s.log.With("user", s.user)
	s.log.Debug("logged in", "app_password", l.AppPassword)
	return nil
}

// Mail starts a transaction. On submission the envelope sender must be the
// authenticated address (RFC 6409 §6.1 lets the MSA enforce this).
func (s *session) Mail(from string, opts *smtp.MailOptions) error {
	s.Reset()
	if s.b.mode == Submission {
		if !s.tls {
			return errNeedTLS
		}
		if s.user == "" {
			return errNeedAuth
		}
		if !s.owns(from) {
			s.note("sender_mismatch")
			return smtpErr(553, smtp.EnhancedCode{5, 7, 1},
				"Sender address <"+printable(from)+"> is not yours: send as <"+s.user+">")
		}
	} else if err := s.b.opts.guard.rates.mail(s.remote); err != nil {
		s.note("rate_limited")
		return err
	}
	s.from = from
	s.utf8 = opts != nil && opts.UTF8
	return nil
}

// owns reports whether addr is the authenticated address (the only one an
// account owns: there are no aliases).
func (s *session) owns(addr string) bool {
	a, err := profiles.NormalizeAddress(addr)
	return err == nil && a.String() == s.user
}

// Rcpt accepts local mailboxes that exist, postmaster of every local
// domain and, on authenticated submission with a smarthost, other domains;
// everything else is refused here, never accepted and lost. On the MX the
// refusals are rate limited (rcptlimit.go): beyond the limits, 421 and
// close.
func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if err := s.rcptLimit(); err != nil {
		return err
	}
	err := s.rcpt(to)
	if se := (*smtp.SMTPError)(nil); errors.As(err, &se) && se.Code >= 500 {
		return s.rcptRefused(err)
	}
	return err
}

func (s *session) rcpt(to string) error {
	a, err := profiles.NormalizeAddress(to)
	if err != nil {
		return errBadSyntax
	}
	addr := a.String()
	if s.b.store.IsLocalDomain(a.Domain) {
		ctx, cancel := s.ctx()
		defer cancel()
		box, err := s.srsMailbox(ctx, a.Local, a.Domain)
		if err == nil && box == "" {
			box, err = s.mailbox(ctx, addr, a.Local)
		}
		if err != nil {
			return err
		}
		if err := s.rcptQuota(ctx, box); err != nil {
			return err
		}
		if !slices.Contains(s.local, box) {
			s.local = append(s.local, box)
		}
		s.addRcpt(addr)
		return nil
	}
	// Relay rules: postmaster of another domain is nobody special here.
	switch {
	case s.b.mode != Submission || s.user == "":
		s.log.Warn("relay attempt refused", "rcpt", addr, "from", printable(s.from))
		s.note("relay_denied")
		return errRelayDenied
	case s.b.opts.Relay == nil:
		return errNoSmarthost
	}
	if !slices.Contains(s.rcptOut, addr) {
		s.rcptOut = append(s.rcptOut, addr)
	}
	s.addRcpt(addr)
	return nil
}

// mailbox returns the account that receives mail for addr, an address in
// a local domain with the (lower-cased) local part local: the account of
// that address, or for postmaster without one the configured postmaster
// account. RFC 5321 §4.5.1: a server that delivers mail for a domain MUST
// accept postmaster there, its local part matched case-insensitively
// (NormalizeAddress has lower-cased it, so "Postmaster" matches too).
func (s *session) mailbox(ctx context.Context, addr, local string) (string, error) {
	ok, err := s.b.store.AccountExists(ctx, addr)
	if err != nil {
		return "", s.storeErr("checking recipient", err)
	}
	if ok {
		return addr, nil
	}
	pm := s.b.postmaster
	if local != "postmaster" || pm == "" {
		s.log.Info("unknown recipient", "rcpt", addr)
		s.note("unknown_rcpt")
		return "", errNoSuchUser
	}
	ok, err = s.b.store.AccountExists(ctx, pm)
	if err != nil {
		return "", s.storeErr("checking postmaster account", err)
	}
	if !ok {
		// The client gets the plain 550 of any unknown recipient: how
		// postmaster mail is routed here is none of its business.
		s.log.Warn("postmaster account missing: refused mail for postmaster, which RFC 5321 §4.5.1 requires to be accepted",
			"rcpt", addr, "postmaster", pm)
		s.note("unknown_rcpt")
		return "", errNoSuchUser
	}
	s.log.Debug("postmaster recipient", "rcpt", addr, "mailbox", pm)
	return pm, nil
}

// addRcpt remembers an accepted forward-path once.
func (s *session) addRcpt(addr string) {
	if !slices.Contains(s.rcpts, addr) {
		s.rcpts = append(s.rcpts, addr)
	}
}

// Data streams the message in (spool: the header section in memory, the
// rest in a spool file once over 256 KiB, octets taken from the in-flight
// budget), checks and fixes up the header section and stores the message
// in one transaction, written in chunks. It returns only after the commit:
// 250 means the message is on disk; any failure stores nothing.
func (s *session) Data(r io.Reader) error {
	g := s.b.opts.guard
	sp, err := spool(r, s.b.opts.MaxMessageSize, s.b.opts.SpoolDir, g.budget)
	defer sp.Close(g.budget)
	if err != nil {
		if err == errBusy {
			s.log.Warn("mail in flight over budget", "in_use", g.budget.inUse())
			s.note("busy")
			return err
		}
		return s.fail(wrapErr(s.log, "reading message", err))
	}
	m := sp.m
	if s.b.mode == MX {
		if err := g.rates.data(s.remote, int64(len(m.raw))+sp.size); err != nil {
			s.note("rate_limited")
			return err
		}
	}
	spam := false
	if s.b.mode == Submission {
		if err := s.checkFrom(m); err != nil {
			s.note("sender_mismatch")
			return err
		}
	} else if s.b.opts.Scanner != nil {
		if m, spam, err = s.scan(m, joined{m.raw, sp.rest()}); err != nil {
			return s.fail(err)
		}
	} else {
		ctx, cancel := s.ctx()
		spam, err = s.b.opts.Classifier.Classify(ctx, m.header)
		cancel()
		if err != nil {
			return s.fail(wrapErr(s.log, "classifying message", err))
		}
	}
	body, stream := sp.message(s.fixUp(m))
	ctx, cancel := s.ctx()
	defer cancel()
	local, fwd, kept := s.forwarding(ctx, m, spam)
	_, qid, err := s.b.store.Accept(ctx, store.Accepted{Body: body, Stream: stream, Spam: spam, Local: local, From: s.user, Remote: s.rcptOut, Forwards: fwd})
	if err != nil {
		return s.acceptErr(err)
	}
	s.note("accepted")
	if spam {
		s.note("spam")
	}
	if qid != 0 {
		s.note("queued")
	}
	size := int64(len(body))
	if stream != nil {
		size = stream.Size()
	}
	s.forwarded(fwd, kept)
	s.log.Info("message accepted", "from", printable(s.from), "local", len(local), "remote", len(s.rcptOut), "forwarded", len(fwd),
		"size", size, "spam", spam, "queue_id", qid)
	if qid != 0 && s.b.opts.Relay != nil {
		s.b.opts.Relay.Wake()
	}
	return nil
}

func (s *session) note(outcome string) { s.b.opts.Observe(s.b.mode, outcome) }

// fail counts a refused DATA by kind and returns err.
func (s *session) fail(err error) error {
	switch err {
	case errTooBig:
		s.note("too_big")
	case errTempFail:
		s.note("temp_error")
	default:
		var se *smtp.SMTPError
		if errors.As(err, &se) && se.Code == 552 {
			s.note("too_big")
		}
	}
	return err
}

// Reset drops the transaction, keeping the login.
func (s *session) Reset() {
	s.from, s.utf8, s.rcpts, s.local, s.rcptOut, s.srsBoxes = "", false, nil, nil, nil, nil
}

// Logout ends the session.
func (s *session) Logout() error { return nil }

// remoteIP formats the client address for trace headers.
func remoteIP(a netip.Addr) string {
	if !a.IsValid() {
		return "unknown"
	}
	if a.Is6() {
		return "IPv6:" + a.String()
	}
	return a.String()
}
