package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/skydesk/skydeskd/profiles"
	"github.com/skydesk/skydeskd/store"
)

// EnrolTOTP turns two-step verification on and registers a new
// authenticator secret, replacing any earlier one.
func (s *Store) EnrolTOTP(ctx context.Context, address string) (store.TOTPKey, error) {
	a, err := profiles.NormalizeAddress(address)
	if err != nil {
		return store.TOTPKey{}, err
	}
	key, err := store.GenerateTOTP(s.opts.TOTPIssuer, a.String())
	if err != nil {
		return store.TOTPKey{}, err
	}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		id, _, err := accountID(ctx, tx, a.String())
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE accounts SET two_step = true, totp_secret = $1, totp_last_step = NULL,
			credential_gen = credential_gen + 1 WHERE id = $2`, key.Secret, id)
		return err
	})
	if err != nil {
		return store.TOTPKey{}, err
	}
	return key, nil
}

// NewTOTPKey makes an authenticator secret for address without storing it.
func (s *Store) NewTOTPKey(address string) (store.TOTPKey, error) {
	a, err := profiles.NormalizeAddress(address)
	if err != nil {
		return store.TOTPKey{}, err
	}
	return store.GenerateTOTP(s.opts.TOTPIssuer, a.String())
}

// ConfirmTOTP is the owner's own enrolment (store.Store.ConfirmTOTP):
// store.ErrBadCode if code is not a current code of secret,
// store.ErrTwoStepOn if two-step verification is on already.
func (s *Store) ConfirmTOTP(ctx context.Context, address, secret, code string) error {
	a, err := profiles.NormalizeAddress(address)
	if err != nil {
		return err
	}
	step, ok := store.MatchTOTP(secret, code, s.now(), -1)
	if !ok {
		return store.ErrBadCode
	}
	return s.inTx(ctx, func(tx pgx.Tx) error {
		id, _, err := accountID(ctx, tx, a.String())
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE accounts SET two_step = true, totp_secret = $1, totp_last_step = $2,
			credential_gen = credential_gen + 1 WHERE id = $3 AND NOT two_step`, secret, step, id)
		if err != nil {
			return fmt.Errorf("turning two-step verification on: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return store.ErrTwoStepOn
		}
		return nil
	})
}
