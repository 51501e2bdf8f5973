package postgres

// Quota and usage. accounts.usage changes only in the transaction that
// stores or deletes messages, and every check of it first locks the
// account row (SELECT … FOR NO KEY UPDATE, which, unlike FOR UPDATE, does
// not wait for foreign-key checks of rows that reference the account), so
// two nodes delivering to one mailbox at once cannot both fit a message
// into the same free space: the second reads the usage the first
// committed. A transaction that locks several accounts locks them in id
// order first (lockAccounts), so two of them never wait on each other.

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/skydesk/skydeskd/profiles"
	"github.com/skydesk/skydeskd/store"
)

// usageOf reads the account id and usage of address; with lock, the
// account row stays locked until the transaction q ends.
func (s *Store) usageOf(ctx context.Context, q querier, address string, lock bool) (int64, store.Usage, error) {
	a, err := profiles.NormalizeAddress(address)
	if err != nil {
		return 0, store.Usage{}, err
	}
	query := `SELECT id, quota, usage FROM accounts WHERE address = $1`
	if lock {
		query += ` FOR NO KEY UPDATE`
	}
	var id int64
	var own *int64
	var u store.Usage
	err = q.QueryRow(ctx, query, a.String()).Scan(&id, &own, &u.Used)
	if noRows(err) {
		return 0, store.Usage{}, fmt.Errorf("account %s: %w", a, store.ErrNotFound)
	}
	if err != nil {
		return 0, store.Usage{}, fmt.Errorf("reading quota: %w", err)
	}
	return id, s.usage(own, u.Used), nil
}

// usage is the store.Usage of an account row: its own quota (nil: the
// configured default) and the octets it holds.
func (s *Store) usage(own *int64, used int64) store.Usage {
	u := store.Usage{Used: used, Default: own == nil}
	if u.Default {
		u.Quota = max(s.opts.DefaultQuota, 0)
	} else {
		u.Quota = *own
	}
	return u
}

// lockAccounts locks the account rows of addresses in id order, so that
// the per-recipient locks insertMessage takes afterwards never wait inside
// the transaction. Malformed or unknown addresses are skipped here and
// reported by insertMessage.
func lockAccounts(ctx context.Context, tx pgx.Tx, addresses []string) error {
	norm := make([]string, 0, len(addresses))
	for _, addr := range addresses {
		if a, err := profiles.NormalizeAddress(addr); err == nil {
			norm = append(norm, a.String())
		}
	}
	slices.Sort(norm)
	norm = slices.Compact(norm)
	if len(norm) < 2 {
		return nil // one row: insertMessage's own lock cannot deadlock
	}
	if _, err := tx.Exec(ctx, `SELECT id FROM accounts WHERE address = ANY($1) ORDER BY id FOR NO KEY UPDATE`, norm); err != nil {
		return fmt.Errorf("locking accounts: %w", err)
	}
	return nil
}

// MailboxUsage implements store.Deliverer.
func (s *Store) MailboxUsage(ctx context.Context, address string) (store.Usage, error) {
	_, u, err := s.usageOf(ctx, s.pool, address, false)
	return u, err
}

// SetQuota implements store.Accounts: octets, 0 for unlimited,
// store.QuotaDefault to follow the configured default.
func (s *Store) SetQuota(ctx context.Context, address string, quota int64) error {
	if quota < store.QuotaDefault {
		return fmt.Errorf("quota %d: must be 0 or more", quota)
	}
	a, err := profiles.NormalizeAddress(address)
	if err != nil {
		return err
	}
	var v *int64
	if quota != store.QuotaDefault {
		v = &quota
	}
	tag, err := s.pool.Exec(ctx, `UPDATE accounts SET quota = $1 WHERE address = $2`, v, a.String())
	if err != nil {
		return fmt.Errorf("setting quota: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("account %s: %w", a, store.ErrNotFound)
	}
	return nil
}

// lockedUsage remembers, within one transaction, the accounts whose rows
// it has locked and their usage as the transaction left it: the row lock
// keeps every other writer of usage and quota out until the transaction
// ends, so the figure stays exact and a further message to the same
// mailbox in that transaction needs no read. Only for a transaction that
// is rolled back whole on any error (a savepoint rolled back would leave
// the figure too high); nil remembers nothing.
type lockedUsage map[string]*lockedAccount // by normalized address

type lockedAccount struct {
	id int64
	u  store.Usage
}

// insertMessage adds body to rcpt's mailbox inside tx and counts it in
// the account's usage, holding the account row's lock; with enforce, a
// message that would take the mailbox over its quota is
// store.ErrOverQuota. locked (may be nil) spares the read of an account
// this transaction has already locked.
func (s *Store) insertMessage(ctx context.Context, tx pgx.Tx, locked lockedUsage, rcpt string, body store.Body, spam, enforce bool, now int64) (int64, error) {
	key := rcpt // locked's key: the normalized address, one per account
	if a, err := profiles.NormalizeAddress(rcpt); err == nil {
		key = a.String()
	}
	la := locked[key]
	if la == nil {
		id, u, err := s.usageOf(ctx, tx, rcpt, true)
		if err != nil {
			return 0, err
		}
		la = &lockedAccount{id: id, u: u}
	}
	size := body.Size()
	if enforce && !la.u.Fits(size) {
		return 0, fmt.Errorf("%w: %s holds %d of %d octets, message is %d", store.ErrOverQuota, rcpt, la.u.Used, la.u.Quota, size)
	}
	uid, err := insertBody(ctx, tx, la.id, body, spam, now)
	if err != nil {
		return 0, err
	}
	if locked != nil {
		la.u.Used += size
		locked[key] = la
	}
	return uid, nil
}
