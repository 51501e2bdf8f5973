package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"

	"github.com/skydesk/skydeskd/profiles"
)

// TOTP (RFC 6238) is the second factor of two-step verification on the
// settings page: 30-second steps, 6 digits, HMAC-SHA-1 — what every
// authenticator app (Google Authenticator, Microsoft Authenticator, 1Password
// …) assumes when an otpauth:// URI leaves the parameters out.
const (
	totpPeriod = 30
	// totpSkew is how many steps before and after the current one are
	// accepted (RFC 6238 §5.2 recommends at most one step of clock drift).
	totpSkew = 1
)

var totpOpts = hotp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// DefaultTOTPIssuer names the service in authenticator apps when
// Options.TOTPIssuer is empty.
const DefaultTOTPIssuer = "SkyDesk Mail"

// TOTPKey is a newly registered authenticator secret. It is shown once, to
// be handed to the account's owner; the store keeps it only to check codes.
type TOTPKey struct {
	// URL is the otpauth://totp/ key URI authenticator apps import (usually
	// as a QR code).
	URL string
	// Secret is the same secret in base32, for typing in by hand.
	Secret string
}

// ErrBadCode is a verification code that does not match: wrong, not six
// digits, outside the accepted steps, or already used.
var ErrBadCode = errors.New("verification code not accepted")

// ErrTwoStepOn and ErrTwoStepOff refuse a change that assumes the other
// state: the account changed meanwhile (another session, the admin
// command).
var (
	ErrTwoStepOn  = errors.New("two-step verification is already on")
	ErrTwoStepOff = errors.New("two-step verification is off")
)

// generateTOTP makes a new authenticator secret for a normalized address
// (the key URI's account name).
func generateTOTP(issuer, account string) (TOTPKey, error) {
	if issuer == "" {
		issuer = DefaultTOTPIssuer
	}
	key, err := totp.Generate(totp.GenerateOpts{Issuer: issuer, AccountName: account,
		Period: totpPeriod, Digits: totpOpts.Digits, Algorithm: totpOpts.Algorithm})
	if err != nil {
		return TOTPKey{}, fmt.Errorf("generating a TOTP secret: %w", err)
	}
	return TOTPKey{URL: key.URL(), Secret: key.Secret()}, nil
}

// EnrolTOTP turns two-step verification on for an account and registers a
// new authenticator secret, replacing any earlier one (a rotation: codes
// of the old secret stop working at once). Cached logins are dropped.
func (s *Store) EnrolTOTP(ctx context.Context, address string) (TOTPKey, error) {
	a, err := profiles.NormalizeAddress(address)
	if err != nil {
		return TOTPKey{}, err
	}
	key, err := generateTOTP(s.opts.TOTPIssuer, a.String())
	if err != nil {
		return TOTPKey{}, err
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		id, _, err := accountID(ctx, tx, a.String())
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE accounts SET two_step = 1, totp_secret = ?, totp_last_step = NULL,
			credential_gen = credential_gen + 1 WHERE id = ?`, key.Secret, id)
		return err
	})
	if err != nil {
		return TOTPKey{}, err
	}
	return key, nil
}

// NewTOTPKey makes an authenticator secret for address (same parameters
// as EnrolTOTP) without storing anything: the settings page keeps it in
// the owner's session until ConfirmTOTP proves that the authenticator app
// has it. Turning two-step on with a secret the app never saved would
// lock the owner out of the settings page.
func (s *Store) NewTOTPKey(address string) (TOTPKey, error) {
	a, err := profiles.NormalizeAddress(address)
	if err != nil {
		return TOTPKey{}, err
	}
	return generateTOTP(s.opts.TOTPIssuer, a.String())
}

// ConfirmTOTP is the owner's own enrolment: code must be a current code of
// secret (a NewTOTPKey secret; step ±1, as at sign-in) and two-step
// verification must still be off. In one transaction it turns two-step on,
// stores the secret, records the code's step as the last one used (RFC
// 6238 §5.2: the confirming code cannot be replayed at the next sign-in)
// and bumps credential_gen, so cached mail logins with the account
// password end at once. ErrBadCode: the code does not match; ErrTwoStepOn:
// two-step verification was turned on meanwhile, and a pending secret must
// not silently replace the registered one.
func (s *Store) ConfirmTOTP(ctx context.Context, address, secret, code string) error {
	a, err := profiles.NormalizeAddress(address)
	if err != nil {
		return err
	}
	step, ok := matchTOTP(secret, code, s.now(), -1)
	if !ok {
		return ErrBadCode
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		id, _, err := accountID(ctx, tx, a.String())
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE accounts SET two_step = 1, totp_secret = ?, totp_last_step = ?,
			credential_gen = credential_gen + 1 WHERE id = ? AND two_step = 0`, secret, step, id)
		if err != nil {
			return fmt.Errorf("turning two-step verification on: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return ErrTwoStepOn
		}
		return nil
	})
}

// DisableTwoStep is the owner turning two-step verification off on the
// settings page. It needs a current authenticator code (req.OTP; the
// password is not read, the session already proved it) under the sign-in's
// rules: one use per step (the same atomic use-step as verifyTOTP), and a
// wrong or missing code is AuthBadCredentials counted on the failed-login
// throttle (Authenticator.failed), so a hijacked session
// cannot try out the 10⁶ codes. A locked network or (network, account) gets
// AuthLocked; ErrTwoStepOff if it is already off. Then SetTwoStep(false)
// clears the secret and drops cached logins.
func (a *Authenticator) DisableTwoStep(ctx context.Context, req LoginRequest) error {
	addr, err := profiles.NormalizeAddress(req.Username)
	if err != nil {
		return err
	}
	netw, userKey := a.network(req.Remote), addr.String()
	if e := a.lockedOut(ctx, req.Service, netw, userKey); e != nil {
		return e
	}
	row, err := a.c.Credentials(ctx, userKey)
	if err != nil {
		return err
	}
	if !row.Account.TwoStep {
		return ErrTwoStepOff
	}
	_, err = a.verifyTOTP(ctx, req, row)
	var aerr *AuthError
	if errors.As(err, &aerr) {
		return a.failed(ctx, req, netw, userKey, aerr)
	}
	if err != nil {
		return err
	}
	a.th.succeed(ctx, pairKey{netw, userKey})
	a.note(req.Service, "ok")
	return a.c.SetTwoStep(ctx, userKey, false)
}

// normalizeCode drops the spaces and hyphens some apps show inside a code
// ("123 456").
func normalizeCode(code string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' || r == '\t' {
			return -1
		}
		return r
	}, code)
}

// matchTOTP returns the time step within ±totpSkew of now whose code is
// code, skipping steps at or before last (-1: none accepted yet).
func matchTOTP(secret, code string, now time.Time, last int64) (int64, bool) {
	code = normalizeCode(code)
	if len(code) != totpOpts.Digits.Length() || strings.Trim(code, "0123456789") != "" {
		return 0, false
	}
	cur := now.Unix() / totpPeriod // RFC 6238 §4.2: T = floor((now - T0) / X)
	for step := cur - totpSkew; step <= cur+totpSkew; step++ {
		if step <= last || step < 0 {
			continue
		}
		if ok, err := hotp.ValidateCustom(code, uint64(step), secret, totpOpts); err == nil && ok {
			return step, true
		}
	}
	return 0, false
}
