package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/skydesk/skydeskd/profiles"
)

// Forward is an account's forwarding: every message it receives is also
// sent to Target once Confirmed (the owner of Target opened the one-time
// link). Keep false leaves no copy in the mailbox.
type Forward struct {
	Address   string // the forwarding account, normalised
	Target    string // normalised
	Keep      bool
	Confirmed bool
	// Expires is when the pending link stops working; zero once confirmed.
	Expires time.Time
}

// Active reports whether mail is forwarded now.
func (f Forward) Active() bool { return f.Confirmed }

// ForwardTokenHash is SHA-256 of a confirmation link's token: only the
// hash is stored.
type ForwardTokenHash [32]byte

// ForwardUpdate sets an account's forwarding. A target other than the
// confirmed one starts pending under TokenHash until Expires; the
// confirmed target given again only changes Keep.
type ForwardUpdate struct {
	Target    string
	Keep      bool
	TokenHash ForwardTokenHash
	Expires   time.Time
}

// NewForwardToken returns a one-time link token (256 random bits,
// URL-safe) and the hash to store.
func NewForwardToken() (string, ForwardTokenHash) {
	var b [32]byte
	_, _ = rand.Read(b[:])
	tok := base64.RawURLEncoding.EncodeToString(b[:])
	return tok, HashForwardToken(tok)
}

// HashForwardToken is the stored form of a link's token.
func HashForwardToken(token string) ForwardTokenHash { return sha256.Sum256([]byte(token)) }

// CheckForwardTarget normalises a forwarding target; forwarding to the
// account itself is ErrBadSetting.
func CheckForwardTarget(address, target string) (string, error) {
	t, err := profiles.NormalizeAddress(target)
	if err != nil {
		return "", fmt.Errorf("%w: target %q: %w", ErrBadSetting, target, err)
	}
	if a, err := profiles.NormalizeAddress(address); err == nil && a.String() == t.String() {
		return "", fmt.Errorf("%w: an account cannot forward to itself", ErrBadSetting)
	}
	return t.String(), nil
}

// GetForward returns the account's forwarding; ErrNotFound when off.
func (s *Store) GetForward(ctx context.Context, address string) (Forward, error) {
	id, addr, err := accountID(ctx, s.r, address)
	if err != nil {
		return Forward{}, err
	}
	return scanForward(addr, s.r.QueryRowContext(ctx, `SELECT target, keep, confirmed, token_expires FROM forwards WHERE account_id = ?`, id))
}

func scanForward(addr string, row *sql.Row) (Forward, error) {
	f := Forward{Address: addr}
	var keep int
	var confirmed, expires int64
	err := row.Scan(&f.Target, &keep, &confirmed, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return Forward{}, fmt.Errorf("forwarding of %s: %w", addr, ErrNotFound)
	}
	if err != nil {
		return Forward{}, fmt.Errorf("reading forwarding: %w", err)
	}
	f.Keep, f.Confirmed = keep != 0, confirmed != 0
	if !f.Confirmed {
		f.Expires = time.Unix(expires, 0)
	}
	return f, nil
}

// SetForward applies u and returns the forwarding; Confirmed false means
// a confirmation link with u's token must be sent to the target.
func (s *Store) SetForward(ctx context.Context, address string, u ForwardUpdate) (Forward, error) {
	target, err := CheckForwardTarget(address, u.Target)
	if err != nil {
		return Forward{}, err
	}
	var f Forward
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		id, addr, err := accountID(ctx, tx, address)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE forwards SET keep = ? WHERE account_id = ? AND target = ? AND confirmed != 0`,
			boolInt(u.Keep), id, target); err != nil {
			return fmt.Errorf("setting forwarding: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO forwards (account_id, target, keep, token_hash, token_expires, created)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (account_id) DO UPDATE SET target = excluded.target, keep = excluded.keep, confirmed = 0,
				token_hash = excluded.token_hash, token_expires = excluded.token_expires, created = excluded.created
			WHERE forwards.target != excluded.target OR forwards.confirmed = 0`,
			id, target, boolInt(u.Keep), u.TokenHash[:], u.Expires.Unix(), s.now().Unix()); err != nil {
			return fmt.Errorf("setting forwarding: %w", err)
		}
		f, err = scanForward(addr, tx.QueryRowContext(ctx, `SELECT target, keep, confirmed, token_expires FROM forwards WHERE account_id = ?`, id))
		return err
	})
	return f, err
}

// ForwardByToken returns the pending forwarding a link's token belongs
// to; ErrNotFound when unknown, used or expired.
func (s *Store) ForwardByToken(ctx context.Context, h ForwardTokenHash) (Forward, error) {
	return s.forwardByToken(ctx, s.r, h)
}

func (s *Store) forwardByToken(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, h ForwardTokenHash) (Forward, error) {
	var addr string
	err := q.QueryRowContext(ctx, `SELECT a.address FROM forwards f JOIN accounts a ON a.id = f.account_id
		WHERE f.token_hash = ? AND f.confirmed = 0 AND f.token_expires > ?`, h[:], s.now().Unix()).Scan(&addr)
	if errors.Is(err, sql.ErrNoRows) {
		return Forward{}, fmt.Errorf("forwarding link: %w", ErrNotFound)
	}
	if err != nil {
		return Forward{}, fmt.Errorf("reading forwarding link: %w", err)
	}
	return scanForward(addr, q.QueryRowContext(ctx, `SELECT target, keep, confirmed, token_expires FROM forwards WHERE token_hash = ?`, h[:]))
}

// ConfirmForward starts the forwarding a link's token belongs to and
// spends the token; ErrNotFound when unknown, used or expired.
func (s *Store) ConfirmForward(ctx context.Context, h ForwardTokenHash) (Forward, error) {
	var f Forward
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		if f, err = s.forwardByToken(ctx, tx, h); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE forwards SET confirmed = ?, token_hash = NULL, token_expires = 0 WHERE token_hash = ?`,
			max(s.now().Unix(), 1), h[:]); err != nil {
			return fmt.Errorf("confirming forwarding: %w", err)
		}
		f.Confirmed, f.Expires = true, time.Time{}
		return nil
	})
	return f, err
}

// DisableForward turns forwarding off (a pending link stops working);
// ErrNotFound when it was off.
func (s *Store) DisableForward(ctx context.Context, address string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		id, addr, err := accountID(ctx, tx, address)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM forwards WHERE account_id = ?`, id)
		if err != nil {
			return fmt.Errorf("turning forwarding off: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("forwarding of %s: %w", addr, ErrNotFound)
		}
		return nil
	})
}
