package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"
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

// EnrolTOTP turns two-step verification on for an account and registers a
// new authenticator secret, replacing any earlier one (a rotation: codes
// of the old secret stop working at once). Cached logins are dropped.
func (s *Store) EnrolTOTP(ctx context.Context, address string) (TOTPKey, error) {
	a, err := NormalizeAddress(address)
	if err != nil {
		return TOTPKey{}, err
	}
	issuer := s.opts.TOTPIssuer
	if issuer == "" {
		issuer = DefaultTOTPIssuer
	}
	key, err := totp.Generate(totp.GenerateOpts{Issuer: issuer, AccountName: a.String(),
		Period: totpPeriod, Digits: totpOpts.Digits, Algorithm: totpOpts.Algorithm})
	if err != nil {
		return TOTPKey{}, fmt.Errorf("generating a TOTP secret: %w", err)
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		id, _, err := accountID(ctx, tx, a.String())
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE accounts SET two_step = 1, totp_secret = ?, totp_last_step = NULL,
			credential_gen = credential_gen + 1 WHERE id = ?`, key.Secret(), id)
		return err
	})
	if err != nil {
		return TOTPKey{}, err
	}
	return TOTPKey{URL: key.URL(), Secret: key.Secret()}, nil
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

// useTOTPStep records step as the last accepted one. It fails (false) when
// another sign-in used this or a later step first, or the secret changed
// meanwhile: the check and the write are one statement, so two concurrent
// sign-ins with one code cannot both pass.
func (a *Authenticator) useTOTPStep(ctx context.Context, accountID int64, secret string, step int64) (bool, error) {
	res, err := a.s.w.ExecContext(ctx, `UPDATE accounts SET totp_last_step = ?
		WHERE id = ? AND totp_secret = ? AND (totp_last_step IS NULL OR totp_last_step < ?)`,
		step, accountID, secret, step)
	if err != nil {
		return false, fmt.Errorf("recording the TOTP step: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}
