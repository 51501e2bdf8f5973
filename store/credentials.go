package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Credentials is the storage the credential rules (Authenticator) work
// over: reads of what an account signs in with, and the few writes a login
// makes. Addresses here are already normalised (profiles.NormalizeAddress).
type Credentials interface {
	// Credentials returns an account's credentials; ErrNotFound if none.
	Credentials(ctx context.Context, address string) (CredentialRecord, error)
	// AppPasswordHashes returns the account's app passwords with hashes.
	AppPasswordHashes(ctx context.Context, accountID int64) ([]AppPasswordHash, error)
	// TouchAppPassword records an app password's use (last used).
	TouchAppPassword(ctx context.Context, accountID int64, name string, at time.Time) error
	// UseTOTPStep records step as the last accepted authenticator code,
	// atomically: false when this or a later step was used already or the
	// secret changed meanwhile (RFC 6238 §5.2: a code is accepted once).
	UseTOTPStep(ctx context.Context, accountID int64, secret string, step int64) (bool, error)
	// SetTwoStep turns two-step verification on or off (off clears the
	// authenticator secret); the credential generation changes.
	SetTwoStep(ctx context.Context, address string, on bool) error
}

// CredentialRecord is what an account signs in with.
type CredentialRecord struct {
	Account Account
	// PasswordHash is the PHC-format account password hash; "" for none.
	PasswordHash string
	// Generation changes with every credential change (password, app
	// passwords, two-step): cached logins of an older one are void.
	Generation int64
	// TOTPSecret is the base32 authenticator secret; "" for none.
	TOTPSecret string
	// TOTPLastStep is the last accepted code's time step; -1 for none.
	TOTPLastStep int64
}

// AppPasswordHash is one app password as the credential rules check it.
type AppPasswordHash struct {
	Name string
	Hash string // $sha256$… or, made before, $argon2id$…
}

// Credentials implements Credentials.
func (s *Store) Credentials(ctx context.Context, address string) (CredentialRecord, error) {
	// One scan target, so the hot cached-login path allocates it once.
	var v struct {
		r            CredentialRecord
		kind         string
		created      int64
		hash, secret sql.NullString
		last         sql.NullInt64
	}
	a := &v.r.Account
	err := s.r.QueryRowContext(ctx, `SELECT id, address, kind, password_hash, two_step, federated, credential_gen, created,
		totp_secret, totp_last_step FROM accounts WHERE address = ?`, address).
		Scan(&a.ID, &a.Address, &v.kind, &v.hash, &a.TwoStep, &a.Federated, &v.r.Generation, &v.created, &v.secret, &v.last)
	if errors.Is(err, sql.ErrNoRows) {
		return CredentialRecord{}, fmt.Errorf("account %s: %w", address, ErrNotFound)
	}
	if err != nil {
		return CredentialRecord{}, fmt.Errorf("reading credentials: %w", err)
	}
	a.HasPassword = v.hash.Valid
	a.Created = time.Unix(v.created, 0)
	a.Kind = kindFromText(v.kind)
	v.r.PasswordHash, v.r.TOTPSecret, v.r.TOTPLastStep = v.hash.String, v.secret.String, -1
	if v.last.Valid {
		v.r.TOTPLastStep = v.last.Int64
	}
	return v.r, nil
}

// AppPasswordHashes implements Credentials.
func (s *Store) AppPasswordHashes(ctx context.Context, accountID int64) ([]AppPasswordHash, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT name, hash FROM app_passwords WHERE account_id = ?`, accountID)
	if err != nil {
		return nil, fmt.Errorf("reading app passwords: %w", err)
	}
	defer rows.Close()
	var out []AppPasswordHash
	for rows.Next() {
		var a AppPasswordHash
		if err := rows.Scan(&a.Name, &a.Hash); err != nil {
			return nil, fmt.Errorf("reading app passwords: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// TouchAppPassword implements Credentials.
func (s *Store) TouchAppPassword(ctx context.Context, accountID int64, name string, at time.Time) error {
	_, err := s.w.ExecContext(ctx, `UPDATE app_passwords SET last_used = ? WHERE account_id = ? AND name = ?`,
		at.Unix(), accountID, name)
	if err != nil {
		return fmt.Errorf("recording app password use: %w", err)
	}
	return nil
}

// UseTOTPStep implements Credentials: the check and the write are one
// statement, so two concurrent sign-ins with one code cannot both pass.
func (s *Store) UseTOTPStep(ctx context.Context, accountID int64, secret string, step int64) (bool, error) {
	res, err := s.w.ExecContext(ctx, `UPDATE accounts SET totp_last_step = ?
		WHERE id = ? AND totp_secret = ? AND (totp_last_step IS NULL OR totp_last_step < ?)`,
		step, accountID, secret, step)
	if err != nil {
		return false, fmt.Errorf("recording the TOTP step: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}
