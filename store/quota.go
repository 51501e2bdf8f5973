package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/skydesk/skydeskd/profiles"
)

// ErrOverQuota: storing the message would take a mailbox over its quota.
// Nothing of the message is kept.
var ErrOverQuota = errors.New("mailbox over quota")

// QuotaDefault passed to SetQuota makes the account follow
// Options.DefaultQuota again.
const QuotaDefault int64 = -1

// Usage is a mailbox's stored octets against its quota.
type Usage struct {
	Used int64
	// Quota is the effective limit in octets (the account's own or the
	// default), 0 for unlimited.
	Quota int64
	// Default: the account has no quota of its own.
	Default bool
}

// Full reports whether no further message fits.
func (u Usage) Full() bool { return u.Quota > 0 && u.Used >= u.Quota }

// Fits reports whether a message of size octets fits.
func (u Usage) Fits(size int64) bool { return u.Quota == 0 || u.Used+size <= u.Quota }

type querier interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}

// usageOf reads the account id and usage of address.
func (s *Store) usageOf(ctx context.Context, q querier, address string) (int64, Usage, error) {
	a, err := profiles.NormalizeAddress(address)
	if err != nil {
		return 0, Usage{}, err
	}
	var id int64
	var own sql.NullInt64
	var u Usage
	err = q.QueryRowContext(ctx, `SELECT id, quota, usage FROM accounts WHERE address = ?`, a.String()).Scan(&id, &own, &u.Used)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, Usage{}, fmt.Errorf("account %s: %w", a, ErrNotFound)
	}
	if err != nil {
		return 0, Usage{}, fmt.Errorf("reading quota: %w", err)
	}
	u.Quota, u.Default = own.Int64, !own.Valid
	if u.Default {
		u.Quota = max(s.opts.DefaultQuota, 0)
	}
	return id, u, nil
}

// MailboxUsage returns the usage and quota of address's mailbox.
func (s *Store) MailboxUsage(ctx context.Context, address string) (Usage, error) {
	_, u, err := s.usageOf(ctx, s.r, address)
	return u, err
}

// SetQuota sets the account's quota in octets: 0 for unlimited,
// QuotaDefault to follow the configured default.
func (s *Store) SetQuota(ctx context.Context, address string, quota int64) error {
	if quota < QuotaDefault {
		return fmt.Errorf("quota %d: must be 0 or more", quota)
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		id, _, err := accountID(ctx, tx, address)
		if err != nil {
			return err
		}
		var v any = quota
		if quota == QuotaDefault {
			v = nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE accounts SET quota = ? WHERE id = ?`, v, id); err != nil {
			return fmt.Errorf("setting quota: %w", err)
		}
		return nil
	})
}

// insertMessage adds body to rcpt's mailbox inside tx and counts it in the
// account's usage; with enforce, a message that would take the mailbox
// over its quota is ErrOverQuota. New mail enters the POP queue (access
// and spam filtering apply at listing time).
func (s *Store) insertMessage(ctx context.Context, tx *sql.Tx, rcpt string, body Body, spam, enforce bool, now int64) (int64, error) {
	id, u, err := s.usageOf(ctx, tx, rcpt)
	if err != nil {
		return 0, err
	}
	size := body.Size()
	if enforce && !u.Fits(size) {
		return 0, fmt.Errorf("%w: %s holds %d of %d octets, message is %d", ErrOverQuota, rcpt, u.Used, u.Quota, size)
	}
	uid, err := insertBody(ctx, tx, id, body, spam, now)
	if err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE accounts SET usage = usage + ? WHERE id = ?`, size, id); err != nil {
		return 0, fmt.Errorf("counting usage: %w", err)
	}
	return uid, nil
}
