package store

import (
	"fmt"
	"time"
)

// AuthReason says why a login was refused: the hint kind every protocol
// renders (POP3 -ERR [AUTH]/[LOGIN-DELAY], SMTP 535/454, the settings
// page's own translated texts).
type AuthReason int

// Reasons. They stay distinct for logs and metrics (Error, the outcome
// labels), but AuthBadCredentials, AuthNotFullAddress and AuthNoPassword
// are one refusal to the client: the same text (Hint), the same time (one
// password hash, a dummy one when there is none to check) and the same
// count on the throttle, so no answer tells whether a mailbox exists or
// is federated. The others are revealed only to someone who gave the
// account password (AuthNeedAppPassword, AuthNoAuthenticator) or say
// nothing about the account (AuthLocked).
const (
	// AuthBadCredentials: wrong user name or password.
	AuthBadCredentials AuthReason = iota + 1
	// AuthNotFullAddress: the user name is a bare local part; mail
	// clients must use the full address (mpop/msmtp --configure write the
	// local part, REFERENCE/bench notes).
	AuthNotFullAddress
	// AuthNeedAppPassword: two-step verification is on and the account
	// password was given: only app-specific passwords work for mail.
	AuthNeedAppPassword
	// AuthNoPassword: a federated (SSO) account without a mail password.
	AuthNoPassword
	// AuthLocked: too many failures from this client network, or from it
	// for this account (ThrottlePolicy).
	AuthLocked
	// AuthNoAuthenticator: the settings page, two-step verification on, the
	// account password right, but no authenticator app registered, so no
	// code can ever be right. Only an administrator can register one.
	AuthNoAuthenticator
)

// AuthError is a refused login: the one credential error every protocol
// renders. Its Hint is the one English wording of each reason; protocols
// add only their codes (RFC 2449 [AUTH]/[LOGIN-DELAY], RFC 4954 535/454).
type AuthError struct {
	Reason AuthReason
	// RetryAfter is how long the lock lasts, for AuthLocked.
	RetryAfter time.Duration
	// SettingsURL is the settings page the hints name (AuthOptions.
	// SettingsURL); empty leaves the place out.
	SettingsURL string
}

// Error is the reason for logs.
func (e *AuthError) Error() string {
	switch e.Reason {
	case AuthNotFullAddress:
		return "user name is not a full email address"
	case AuthNeedAppPassword:
		return "two-step verification is on: use an app-specific password"
	case AuthNoPassword:
		return "account has no mail password"
	case AuthLocked:
		return fmt.Sprintf("too many failed logins, locked for %s", e.RetryAfter.Round(time.Second))
	case AuthNoAuthenticator:
		return "two-step verification is on but no authenticator app is registered; ask the administrator"
	}
	return "authentication failed"
}

// RetryMinutes is the lock's remaining time as every message says it:
// whole minutes, rounded up, at least 1.
func (e *AuthError) RetryMinutes() int {
	return max(1, int((e.RetryAfter+time.Minute-1)/time.Minute))
}

// Hint is the refusal in words a user can act on, in lower case so a
// protocol can prefix it, shared by POP3 and SMTP (the settings page shows
// its own translations). Every credential failure has the one text of
// Invalid, whose hints cover every cause; only AuthNeedAppPassword,
// AuthLocked and AuthNoAuthenticator have their own.
func (e *AuthError) Hint() string {
	switch e.Reason {
	case AuthNeedAppPassword:
		return "two-step verification is on: sign in with an app-specific password; create one in the settings" + e.at()
	case AuthLocked:
		n := e.RetryMinutes()
		unit := "minutes"
		if n == 1 {
			unit = "minute"
		}
		return fmt.Sprintf("too many failed logins: try again in %d %s", n, unit)
	case AuthNoAuthenticator:
		return "two-step verification is on but no authenticator app is registered: ask the administrator"
	}
	return e.invalid()
}

// invalid is the one answer to every credential failure.
func (e *AuthError) invalid() string {
	where := " in the settings"
	if e.SettingsURL != "" {
		where = " at " + e.SettingsURL
	}
	return "invalid user name or password (use your full email address; federated accounts set a mail password first" +
		where + "; with two-step verification, use an app-specific password)"
}

func (e *AuthError) at() string {
	if e.SettingsURL == "" {
		return ""
	}
	return " at " + e.SettingsURL
}

// reasonLabel is the metrics outcome of a refusal.
func reasonLabel(r AuthReason) string {
	switch r {
	case AuthNotFullAddress:
		return "not_full_address"
	case AuthNeedAppPassword:
		return "need_app_password"
	case AuthNoPassword:
		return "no_password"
	case AuthLocked:
		return "locked"
	case AuthNoAuthenticator:
		return "no_authenticator"
	}
	return "bad_credentials"
}
