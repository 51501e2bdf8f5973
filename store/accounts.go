package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/skydesk/skydeskd/profiles"
)

// Account is a mailbox owner. Secrets never leave the package.
type Account struct {
	ID          int64
	Address     string
	Kind        profiles.Kind
	HasPassword bool
	TwoStep     bool
	Federated   bool
	Created     time.Time
}

// ErrBadPassword is returned for a password that breaks the policy.
var ErrBadPassword = errors.New("password refused")

// MinPasswordLength is the shortest account password accepted.
const MinPasswordLength = 8

// kindOf returns the kind of an address's domain (profiles.KindOf over the
// domain snapshot) or ErrUnknownDomain.
func (s *Store) kindOf(ctx context.Context, a profiles.Address) (profiles.Kind, error) {
	k, err := profiles.KindOf(ctx, a.Domain, s.opts.PersonalDomain, s)
	if err == nil && k == profiles.Unknown {
		err = fmt.Errorf("%s: %w", a.Domain, ErrUnknownDomain)
	}
	return k, err
}

func checkPassword(pw string) error {
	switch {
	case utf8.RuneCountInString(pw) < MinPasswordLength:
		return fmt.Errorf("%w: shorter than %d characters", ErrBadPassword, MinPasswordLength)
	case len(pw) > 1024:
		return fmt.Errorf("%w: longer than 1024 octets", ErrBadPassword)
	case !utf8.ValidString(pw):
		return fmt.Errorf("%w: not valid UTF-8", ErrBadPassword)
	case strings.ContainsAny(pw, "\x00\r\n"):
		return fmt.Errorf("%w: contains NUL, CR or LF", ErrBadPassword)
	}
	return nil
}

// NewAccount describes an account to create.
type NewAccount struct {
	Address string
	// Password is the mail password; empty means none (a federated user
	// until they set one).
	Password  string
	Federated bool
}

// AddAccount creates an account with POP access disabled (the default of
// DESIGN.md §2). The domain must be personal or hosted.
func (s *Store) AddAccount(ctx context.Context, n NewAccount) (Account, error) {
	a, err := profiles.NormalizeAddress(n.Address)
	if err != nil {
		return Account{}, err
	}
	if _, err := s.RefreshDomains(ctx); err != nil {
		return Account{}, err
	}
	kind, err := s.kindOf(ctx, a)
	if err != nil {
		return Account{}, err
	}
	var hash sql.NullString
	if n.Password != "" {
		h, err := HashPassword(ctx, s.opts.HashParams, n.Password)
		if err != nil {
			return Account{}, err
		}
		hash = sql.NullString{String: h, Valid: true}
	} else if !n.Federated {
		return Account{}, fmt.Errorf("%w: a password is required unless the account is federated", ErrBadPassword)
	}
	now := s.now()
	acc := Account{Address: a.String(), Kind: kind, HasPassword: hash.Valid, Federated: n.Federated, Created: time.Unix(now.Unix(), 0)}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO accounts (address, domain, kind, password_hash, federated, created)
			VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (address) DO NOTHING`,
			acc.Address, a.Domain, kind.String(), hash, boolInt(n.Federated), now.Unix())
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("account %s: %w", acc.Address, ErrExists)
		}
		acc.ID, err = res.LastInsertId()
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO pop_settings (account_id) VALUES (?)`, acc.ID)
		return err
	})
	if err != nil {
		return Account{}, err
	}
	return acc, nil
}

// accountID resolves an address to an account id inside tx.
func accountID(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, address string) (int64, string, error) {
	a, err := profiles.NormalizeAddress(address)
	if err != nil {
		return 0, "", err
	}
	var id int64
	err = q.QueryRowContext(ctx, `SELECT id FROM accounts WHERE address = ?`, a.String()).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", fmt.Errorf("account %s: %w", a, ErrNotFound)
	}
	return id, a.String(), err
}

// SetPassword sets or replaces the mail password. Cached logins are
// dropped.
func (s *Store) SetPassword(ctx context.Context, address, password string) error {
	_, err := s.ChangePassword(ctx, address, password, false)
	return err
}

// SetTwoStep turns two-step verification on or off. With it on, only
// app-specific passwords work for POP and SMTP, and the settings page also
// needs a code from the authenticator app registered with EnrolTOTP (none
// registered: sign-in is refused with AuthNoAuthenticator). Turning it off
// clears the authenticator secret. Cached logins are dropped.
func (s *Store) SetTwoStep(ctx context.Context, address string, on bool) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		id, _, err := accountID(ctx, tx, address)
		if err != nil {
			return err
		}
		q := `UPDATE accounts SET two_step = 1, credential_gen = credential_gen + 1 WHERE id = ?`
		if !on {
			q = `UPDATE accounts SET two_step = 0, totp_secret = NULL, totp_last_step = NULL,
				credential_gen = credential_gen + 1 WHERE id = ?`
		}
		_, err = tx.ExecContext(ctx, q, id)
		return err
	})
}

const accountCols = `id, address, kind, password_hash IS NOT NULL, two_step, federated, created`

func scanAccount(sc interface{ Scan(...any) error }) (Account, error) {
	var a Account
	var kind string
	var created int64
	if err := sc.Scan(&a.ID, &a.Address, &kind, &a.HasPassword, &a.TwoStep, &a.Federated, &created); err != nil {
		return Account{}, err
	}
	a.Kind = kindFromText(kind)
	a.Created = time.Unix(created, 0)
	return a, nil
}

// GetAccount returns the account of an address.
func (s *Store) GetAccount(ctx context.Context, address string) (Account, error) {
	a, err := profiles.NormalizeAddress(address)
	if err != nil {
		return Account{}, err
	}
	acc, err := scanAccount(s.r.QueryRowContext(ctx, `SELECT `+accountCols+` FROM accounts WHERE address = ?`, a.String()))
	if errors.Is(err, sql.ErrNoRows) {
		return Account{}, fmt.Errorf("account %s: %w", a, ErrNotFound)
	}
	return acc, err
}

// ListAccounts returns every account, ordered by address.
func (s *Store) ListAccounts(ctx context.Context) ([]Account, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+accountCols+` FROM accounts ORDER BY address`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Account
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

func kindFromText(kind string) profiles.Kind {
	if kind == "personal" {
		return profiles.Personal
	}
	return profiles.Organization
}
