package smtpd

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/emersion/go-smtp"

	"github.com/skydesk/skydeskd/store"
)

func sprintf(format string, v ...any) string { return fmt.Sprintf(format, v...) }
func sprintln(v ...any) string               { return fmt.Sprintln(v...) }

func smtpErr(code int, enh smtp.EnhancedCode, msg string) *smtp.SMTPError {
	return &smtp.SMTPError{Code: code, EnhancedCode: enh, Message: msg}
}

// Replies with fixed text. RFC 3463 enhanced codes throughout.
var (
	// RFC 3207 §4: while TLS is required.
	errNeedTLS = smtpErr(530, smtp.EnhancedCode{5, 7, 0}, "Must issue a STARTTLS command first")
	// RFC 6409 §4.3 / RFC 4954 §6.
	errNeedAuth   = smtpErr(530, smtp.EnhancedCode{5, 7, 0}, "Authentication required: log in with your full email address and password")
	errNoAuthMX   = smtpErr(502, smtp.EnhancedCode{5, 5, 1}, "AUTH is not offered on the MX port: submit mail on port 465 (TLS) or 587 (STARTTLS)")
	errBadSyntax  = smtpErr(501, smtp.EnhancedCode{5, 1, 3}, "Bad recipient address syntax")
	errNoSuchUser = smtpErr(550, smtp.EnhancedCode{5, 1, 1}, "No such user here")
	// Never an open relay: the MX accepts only our own domains.
	errRelayDenied = smtpErr(554, smtp.EnhancedCode{5, 7, 1}, "Relay access denied: this server accepts mail only for its own domains")
	errNoSmarthost = smtpErr(550, smtp.EnhancedCode{5, 7, 1},
		"Sending to other domains is not enabled on this server (no smarthost is configured); only local mailboxes can be reached")
	errTooBig   = smtpErr(552, smtp.EnhancedCode{5, 3, 4}, "Message exceeds the maximum message size")
	errTempFail = smtpErr(451, smtp.EnhancedCode{4, 3, 0}, "Temporary server error, please try again later")
	errAuthTemp = smtpErr(454, smtp.EnhancedCode{4, 7, 0}, "Temporary authentication failure, please try again later")
)

// wrapErr passes protocol errors through and turns anything else into a
// generic temporary failure after logging it (maddy's wrapErr: the text of
// a store error could disclose server internals).
func wrapErr(log *slog.Logger, what string, err error) error {
	if err == nil {
		return nil
	}
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se
	}
	if errors.Is(err, store.ErrTooBig) {
		return errTooBig
	}
	log.Error(what, "err", err)
	return errTempFail
}

// storeErr is wrapErr for the store's errors: an unavailable database
// (store.IsUnavailable) is the same 451 4.3.0 (RFC 3463 §3.5: the sender
// keeps the message and retries), logged at Warn at most once in a while
// per server (store.OutageLog) rather than at Error per command.
func (s *session) storeErr(what string, err error) error {
	if store.IsUnavailable(err) {
		s.b.outage.Warn(s.b.log, what, err)
		return errTempFail
	}
	return wrapErr(s.log, what, err)
}

// authReply renders the store's refusal as an RFC 4954 reply: 535 5.7.8
// with the store's one wording of the hint (store.AuthError.Hint, shared
// with POP3), or a temporary 454 4.7.0 while the lock lasts. None of them
// tells whether a mailbox exists (the store only reveals a reason to
// someone who knew the password).
func authReply(e *store.AuthError) *smtp.SMTPError {
	if e.Reason == store.AuthLocked {
		h := e.Hint()
		return smtpErr(454, smtp.EnhancedCode{4, 7, 0}, strings.ToUpper(h[:1])+h[1:])
	}
	return smtpErr(535, smtp.EnhancedCode{5, 7, 8}, "Authentication failed: "+e.Hint())
}
