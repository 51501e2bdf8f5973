package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/skydesk/skydeskd/profiles"
	"github.com/skydesk/skydeskd/store"
)

// AddAccount creates an account with POP access disabled. The domain must
// be personal or hosted; for a hosted one the domain row stays share-locked
// until the commit, so a concurrent RemoveDomain sees the new account.
func (s *Store) AddAccount(ctx context.Context, n store.NewAccount) (store.Account, error) {
	a, err := profiles.NormalizeAddress(n.Address)
	if err != nil {
		return store.Account{}, err
	}
	if _, err := s.RefreshDomains(ctx); err != nil {
		return store.Account{}, err
	}
	kind, err := profiles.KindOf(ctx, a.Domain, s.opts.PersonalDomain, s)
	if err == nil && kind == profiles.Unknown {
		err = fmt.Errorf("%s: %w", a.Domain, store.ErrUnknownDomain)
	}
	if err != nil {
		return store.Account{}, err
	}
	var hash *string
	if n.Password != "" {
		h, err := store.HashPassword(ctx, s.opts.HashParams, n.Password)
		if err != nil {
			return store.Account{}, err
		}
		hash = &h
	} else if !n.Federated {
		return store.Account{}, fmt.Errorf("%w: a password is required unless the account is federated", store.ErrBadPassword)
	}
	now := s.now()
	acc := store.Account{Address: a.String(), Kind: kind, HasPassword: hash != nil, Federated: n.Federated, Created: time.Unix(now.Unix(), 0)}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		if kind == profiles.Organization {
			var one int
			err := tx.QueryRow(ctx, `SELECT 1 FROM domains WHERE name = $1 FOR SHARE`, a.Domain).Scan(&one)
			if noRows(err) {
				return fmt.Errorf("%s: %w", a.Domain, store.ErrUnknownDomain)
			}
			if err != nil {
				return err
			}
		}
		err := tx.QueryRow(ctx, `INSERT INTO accounts (address, domain, kind, password_hash, federated, created)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (address) DO NOTHING RETURNING id`,
			acc.Address, a.Domain, kind.String(), hash, n.Federated, now.Unix()).Scan(&acc.ID)
		if noRows(err) {
			return fmt.Errorf("account %s: %w", acc.Address, store.ErrExists)
		}
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO pop_settings (account_id) VALUES ($1)`, acc.ID)
		return err
	})
	if err != nil {
		return store.Account{}, err
	}
	return acc, nil
}

// accountID resolves an address (any case) to an account id and its
// normalised form.
func accountID(ctx context.Context, q querier, address string) (int64, string, error) {
	a, err := profiles.NormalizeAddress(address)
	if err != nil {
		return 0, "", err
	}
	var id int64
	err = q.QueryRow(ctx, `SELECT id FROM accounts WHERE address = $1`, a.String()).Scan(&id)
	if noRows(err) {
		return 0, "", fmt.Errorf("account %s: %w", a, store.ErrNotFound)
	}
	return id, a.String(), err
}

// SetPassword sets or replaces the mail password.
func (s *Store) SetPassword(ctx context.Context, address, password string) error {
	_, err := s.ChangePassword(ctx, address, password, false)
	return err
}

// ChangePassword sets the account password and, with revokeApps, deletes
// every app password in the same transaction, returning how many.
func (s *Store) ChangePassword(ctx context.Context, address, password string, revokeApps bool) (int64, error) {
	h, err := store.HashPassword(ctx, s.opts.HashParams, password)
	if err != nil {
		return 0, err
	}
	var revoked int64
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		id, _, err := accountID(ctx, tx, address)
		if err != nil {
			return err
		}
		if revokeApps {
			tag, err := tx.Exec(ctx, `DELETE FROM app_passwords WHERE account_id = $1`, id)
			if err != nil {
				return fmt.Errorf("revoking app passwords: %w", err)
			}
			revoked = tag.RowsAffected()
		}
		_, err = tx.Exec(ctx, `UPDATE accounts SET password_hash = $1, credential_gen = credential_gen + 1 WHERE id = $2`, h, id)
		return err
	})
	return revoked, err
}

// SetTwoStep turns two-step verification on or off (off clears the
// authenticator secret); the credential generation changes.
func (s *Store) SetTwoStep(ctx context.Context, address string, on bool) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		id, _, err := accountID(ctx, tx, address)
		if err != nil {
			return err
		}
		q := `UPDATE accounts SET two_step = true, credential_gen = credential_gen + 1 WHERE id = $1`
		if !on {
			q = `UPDATE accounts SET two_step = false, totp_secret = NULL, totp_last_step = NULL,
				credential_gen = credential_gen + 1 WHERE id = $1`
		}
		_, err = tx.Exec(ctx, q, id)
		return err
	})
}

const accountCols = `id, address, kind, password_hash IS NOT NULL, two_step, federated, created`

func scanAccount(row pgx.Row) (store.Account, error) {
	var a store.Account
	var kind string
	var created int64
	if err := row.Scan(&a.ID, &a.Address, &kind, &a.HasPassword, &a.TwoStep, &a.Federated, &created); err != nil {
		return store.Account{}, err
	}
	a.Kind = kindFromText(kind)
	a.Created = time.Unix(created, 0)
	return a, nil
}

func kindFromText(kind string) profiles.Kind {
	if kind == "personal" {
		return profiles.Personal
	}
	return profiles.Organization
}

// GetAccount returns the account of an address.
func (s *Store) GetAccount(ctx context.Context, address string) (store.Account, error) {
	a, err := profiles.NormalizeAddress(address)
	if err != nil {
		return store.Account{}, err
	}
	acc, err := scanAccount(s.pool.QueryRow(ctx, `SELECT `+accountCols+` FROM accounts WHERE address = $1`, a.String()))
	if noRows(err) {
		return store.Account{}, fmt.Errorf("account %s: %w", a, store.ErrNotFound)
	}
	return acc, err
}

// ListAccounts returns every account, ordered by address.
func (s *Store) ListAccounts(ctx context.Context) ([]store.Account, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+accountCols+` FROM accounts ORDER BY address`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Account, error) { return scanAccount(r) })
}

// CreateAppPassword makes a new app-specific password and returns its
// secret, which is stored only as a hash.
func (s *Store) CreateAppPassword(ctx context.Context, address, name string) (string, error) {
	name, secret, h, err := store.NewAppPassword(name)
	if err != nil {
		return "", err
	}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		id, addr, err := accountID(ctx, tx, address)
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO app_passwords (account_id, name, hash, created) VALUES ($1, $2, $3, $4)
			ON CONFLICT (account_id, name) DO NOTHING`, id, name, h, s.now().Unix())
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("app password %q for %s: %w", name, addr, store.ErrExists)
		}
		return bumpGeneration(ctx, tx, id)
	})
	if err != nil {
		return "", err
	}
	return secret, nil
}

func bumpGeneration(ctx context.Context, tx pgx.Tx, id int64) error {
	_, err := tx.Exec(ctx, `UPDATE accounts SET credential_gen = credential_gen + 1 WHERE id = $1`, id)
	return err
}

// ListAppPasswords returns an account's app passwords by name.
func (s *Store) ListAppPasswords(ctx context.Context, address string) ([]store.AppPassword, error) {
	id, _, err := accountID(ctx, s.pool, address)
	if err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT name, created, last_used FROM app_passwords WHERE account_id = $1 ORDER BY name`, id)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.AppPassword, error) {
		var p store.AppPassword
		var created int64
		var last *int64
		if err := r.Scan(&p.Name, &created, &last); err != nil {
			return p, err
		}
		p.Created = time.Unix(created, 0)
		if last != nil {
			p.LastUsed = time.Unix(*last, 0)
		}
		return p, nil
	})
}

// RevokeAppPassword deletes an app password; the credential generation
// changes, dropping cached logins.
func (s *Store) RevokeAppPassword(ctx context.Context, address, name string) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		id, addr, err := accountID(ctx, tx, address)
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM app_passwords WHERE account_id = $1 AND name = $2`, id, strings.TrimSpace(name))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("app password %q for %s: %w", name, addr, store.ErrNotFound)
		}
		return bumpGeneration(ctx, tx, id)
	})
}
