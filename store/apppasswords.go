package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// AppPassword describes an app-specific password; the secret itself is
// shown once at creation and stored only as a hash.
type AppPassword struct {
	Name     string
	Created  time.Time
	LastUsed time.Time // zero until first use
}

// ErrBadName is returned for an unusable app-password name.
var ErrBadName = errors.New("invalid name")

// appPasswordAlphabet: lower-case letters only, 16 of them (~75 bits), in
// four groups like the big providers print them; spaces are ignored at
// login so either form works.
const appPasswordAlphabet = "abcdefghijklmnopqrstuvwxyz"

func newAppSecret() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	var sb strings.Builder
	for i, c := range b {
		if i > 0 && i%4 == 0 {
			sb.WriteByte(' ')
		}
		// 256 % 26 != 0: reject-free mapping would bias; use rand.Text-like
		// rejection via a second draw when needed.
		for c >= 234 { // 234 = 26*9
			var r [1]byte
			if _, err := rand.Read(r[:]); err != nil {
				return "", err
			}
			c = r[0]
		}
		sb.WriteByte(appPasswordAlphabet[int(c)%26])
	}
	return sb.String(), nil
}

// normalizeAppSecret removes the grouping spaces a person may type.
func normalizeAppSecret(s string) string { return strings.ReplaceAll(s, " ", "") }

func checkAppName(name string) error {
	n := strings.TrimSpace(name)
	if n == "" || utf8.RuneCountInString(n) > 64 || !utf8.ValidString(n) {
		return fmt.Errorf("%w: 1 to 64 characters", ErrBadName)
	}
	for _, r := range n {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w: control characters", ErrBadName)
		}
	}
	return nil
}

// CreateAppPassword makes a new app-specific password named name and
// returns its secret, which is not stored and cannot be shown again.
func (s *Store) CreateAppPassword(ctx context.Context, address, name string) (string, error) {
	name, secret, h, err := NewAppPassword(name)
	if err != nil {
		return "", err
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		id, addr, err := accountID(ctx, tx, address)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO app_passwords (account_id, name, hash, created) VALUES (?, ?, ?, ?)
			ON CONFLICT (account_id, name) DO NOTHING`, id, name, h, s.now().Unix())
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("app password %q for %s: %w", name, addr, ErrExists)
		}
		_, err = tx.ExecContext(ctx, `UPDATE accounts SET credential_gen = credential_gen + 1 WHERE id = ?`, id)
		return err
	})
	if err != nil {
		return "", err
	}
	return secret, nil
}

// ListAppPasswords returns an account's app passwords by name.
func (s *Store) ListAppPasswords(ctx context.Context, address string) ([]AppPassword, error) {
	id, _, err := accountID(ctx, s.r, address)
	if err != nil {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT name, created, last_used FROM app_passwords WHERE account_id = ? ORDER BY name`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []AppPassword
	for rows.Next() {
		var p AppPassword
		var created int64
		var last sql.NullInt64
		if err := rows.Scan(&p.Name, &created, &last); err != nil {
			return nil, err
		}
		p.Created = time.Unix(created, 0)
		if last.Valid {
			p.LastUsed = time.Unix(last.Int64, 0)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// RevokeAppPassword deletes an app password; logins with it fail at once
// (the credential generation changes, dropping cached logins).
func (s *Store) RevokeAppPassword(ctx context.Context, address, name string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		id, addr, err := accountID(ctx, tx, address)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM app_passwords WHERE account_id = ? AND name = ?`, id, strings.TrimSpace(name))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("app password %q for %s: %w", name, addr, ErrNotFound)
		}
		_, err = tx.ExecContext(ctx, `UPDATE accounts SET credential_gen = credential_gen + 1 WHERE id = ?`, id)
		return err
	})
}
