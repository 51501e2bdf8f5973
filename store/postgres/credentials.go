package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/skydesk/skydeskd/store"
)

var _ store.Credentials = (*Store)(nil)

// Credentials implements store.Credentials (address already normalised).
func (s *Store) Credentials(ctx context.Context, address string) (store.CredentialRecord, error) {
	var v struct {
		r            store.CredentialRecord
		kind         string
		created      int64
		hash, secret *string
		last         *int64
	}
	a := &v.r.Account
	err := s.pool.QueryRow(ctx, `SELECT id, address, kind, password_hash, two_step, federated, credential_gen, created,
		totp_secret, totp_last_step FROM accounts WHERE address = $1`, address).
		Scan(&a.ID, &a.Address, &v.kind, &v.hash, &a.TwoStep, &a.Federated, &v.r.Generation, &v.created, &v.secret, &v.last)
	if noRows(err) {
		return store.CredentialRecord{}, fmt.Errorf("account %s: %w", address, store.ErrNotFound)
	}
	if err != nil {
		return store.CredentialRecord{}, fmt.Errorf("reading credentials: %w", err)
	}
	a.HasPassword = v.hash != nil
	a.Created = time.Unix(v.created, 0)
	a.Kind = kindFromText(v.kind)
	v.r.TOTPLastStep = -1
	if v.hash != nil {
		v.r.PasswordHash = *v.hash
	}
	if v.secret != nil {
		v.r.TOTPSecret = *v.secret
	}
	if v.last != nil {
		v.r.TOTPLastStep = *v.last
	}
	return v.r, nil
}

// AppPasswordHashes implements store.Credentials.
func (s *Store) AppPasswordHashes(ctx context.Context, accountID int64) ([]store.AppPasswordHash, error) {
	rows, err := s.pool.Query(ctx, `SELECT name, hash FROM app_passwords WHERE account_id = $1`, accountID)
	if err != nil {
		return nil, fmt.Errorf("reading app passwords: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[store.AppPasswordHash])
	if err != nil {
		return nil, fmt.Errorf("reading app passwords: %w", err)
	}
	return out, nil
}

// TouchAppPassword implements store.Credentials.
func (s *Store) TouchAppPassword(ctx context.Context, accountID int64, name string, at time.Time) error {
	if _, err := s.pool.Exec(ctx, `UPDATE app_passwords SET last_used = $1 WHERE account_id = $2 AND name = $3`,
		at.Unix(), accountID, name); err != nil {
		return fmt.Errorf("recording app password use: %w", err)
	}
	return nil
}

// UseTOTPStep implements store.Credentials in one statement: under READ
// COMMITTED a concurrent update of the row makes PostgreSQL re-check the
// WHERE clause on the new version, so one code passes once.
func (s *Store) UseTOTPStep(ctx context.Context, accountID int64, secret string, step int64) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE accounts SET totp_last_step = $1
		WHERE id = $2 AND totp_secret = $3 AND (totp_last_step IS NULL OR totp_last_step < $1)`,
		step, accountID, secret)
	if err != nil {
		return false, fmt.Errorf("recording the TOTP step: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}
