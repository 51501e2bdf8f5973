package store

import (
	"context"
	"database/sql"
	"fmt"
)

// ChangePassword sets or replaces the account password and, with
// revokeApps, deletes every app password of the account in the same
// transaction, returning how many it deleted: after a leak the owner or
// an administrator closes every way in at once (`skydeskd user passwd
// --revoke-app-passwords`). The credential generation moves on by one, so
// cached logins and settings sessions of the account end.
func (s *Store) ChangePassword(ctx context.Context, address, password string, revokeApps bool) (int64, error) {
	h, err := HashPassword(ctx, s.opts.HashParams, password)
	if err != nil {
		return 0, err
	}
	var revoked int64
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		id, _, err := accountID(ctx, tx, address)
		if err != nil {
			return err
		}
		if revokeApps {
			res, err := tx.ExecContext(ctx, `DELETE FROM app_passwords WHERE account_id = ?`, id)
			if err != nil {
				return fmt.Errorf("revoking app passwords: %w", err)
			}
			if revoked, err = res.RowsAffected(); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, `UPDATE accounts SET password_hash = ?, credential_gen = credential_gen + 1 WHERE id = ?`, h, id)
		return err
	})
	return revoked, err
}
