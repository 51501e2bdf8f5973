package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"time"
)

// CertStore keeps ACME material (certificates, keys, account data,
// challenge tokens) by slash-separated key, and named locks with an
// expiry, in the store's database: every node sharing the database serves
// the same certificates, and one of them orders each (the certs package
// adapts it to certmagic.Storage). Keys are opaque here; "a/b" is under
// the prefix "a".
type CertStore struct{ s *Store }

// Certs returns the store's certificate storage.
func (s *Store) Certs() *CertStore { return &CertStore{s: s} }

// prefixRange returns the bounds of the keys under prefix: "p/" <= key <
// "p0" ('0' follows '/'), an index range scan without LIKE escaping.
func prefixRange(prefix string) (lo, hi string) { return prefix + "/", prefix + "0" }

// Put stores value at key, replacing any earlier value.
func (c *CertStore) Put(ctx context.Context, key string, value []byte) error {
	if value == nil {
		value = []byte{}
	}
	_, err := c.s.w.ExecContext(ctx, `INSERT INTO cert_blobs (key, value, modified) VALUES (?, ?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value, modified = excluded.modified`,
		key, value, c.s.now().UnixMilli())
	if err != nil {
		return fmt.Errorf("storing %s: %w", key, err)
	}
	return nil
}

// Get returns the value at key, or an error matching fs.ErrNotExist.
func (c *CertStore) Get(ctx context.Context, key string) ([]byte, error) {
	var v []byte
	err := c.s.r.QueryRowContext(ctx, `SELECT value FROM cert_blobs WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%s: %w", key, fs.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", key, err)
	}
	return v, nil
}

// Stat returns the size and modification time of the value at key, or an
// error matching fs.ErrNotExist.
func (c *CertStore) Stat(ctx context.Context, key string) (size int64, modified time.Time, err error) {
	var ms int64
	err = c.s.r.QueryRowContext(ctx, `SELECT length(value), modified FROM cert_blobs WHERE key = ?`, key).Scan(&size, &ms)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, time.Time{}, fmt.Errorf("%s: %w", key, fs.ErrNotExist)
	}
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("stat %s: %w", key, err)
	}
	return size, time.UnixMilli(ms), nil
}

// Delete removes key and every key under it. A missing key is not an error.
func (c *CertStore) Delete(ctx context.Context, key string) error {
	lo, hi := prefixRange(key)
	if _, err := c.s.w.ExecContext(ctx, `DELETE FROM cert_blobs WHERE key = ? OR (key >= ? AND key < ?)`, key, lo, hi); err != nil {
		return fmt.Errorf("deleting %s: %w", key, err)
	}
	return nil
}

// Keys lists every key under prefix (all depths), sorted. An empty prefix
// lists everything.
func (c *CertStore) Keys(ctx context.Context, prefix string) ([]string, error) {
	q, args := `SELECT key FROM cert_blobs ORDER BY key`, []any{}
	if prefix != "" {
		lo, hi := prefixRange(prefix)
		q, args = `SELECT key FROM cert_blobs WHERE key >= ? AND key < ? ORDER BY key`, []any{lo, hi}
	}
	rows, err := c.s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", prefix, err)
	}
	defer rows.Close()
	var keys []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, rows.Err()
}

// TryLock takes the lock name for owner until ttl from now, if it is free,
// stale (expired) or already owner's. It reports whether owner holds it.
// The one statement runs in SQLite's single writer, so two processes on
// one file never both win.
func (c *CertStore) TryLock(ctx context.Context, name, owner string, ttl time.Duration) (bool, error) {
	now := c.s.now()
	res, err := c.s.w.ExecContext(ctx, `INSERT INTO cert_locks (name, owner, expires) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires = excluded.expires
		WHERE cert_locks.expires <= ? OR cert_locks.owner = excluded.owner`,
		name, owner, now.Add(ttl).UnixMilli(), now.UnixMilli())
	if err != nil {
		return false, fmt.Errorf("locking %s: %w", name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("locking %s: %w", name, err)
	}
	return n == 1, nil
}

// ErrLockLost is returned when extending a lock that another owner has
// taken over (it had expired).
var ErrLockLost = errors.New("lock is held by another owner")

// ExtendLock moves the expiry of owner's lock name to ttl from now.
func (c *CertStore) ExtendLock(ctx context.Context, name, owner string, ttl time.Duration) error {
	res, err := c.s.w.ExecContext(ctx, `UPDATE cert_locks SET expires = ? WHERE name = ? AND owner = ?`,
		c.s.now().Add(ttl).UnixMilli(), name, owner)
	if err != nil {
		return fmt.Errorf("extending lock %s: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("extending lock %s: %w", name, ErrLockLost)
	}
	return nil
}

// Unlock releases owner's lock name. Releasing a lock that expired and was
// taken over is not an error: the new owner keeps it.
func (c *CertStore) Unlock(ctx context.Context, name, owner string) error {
	if _, err := c.s.w.ExecContext(ctx, `DELETE FROM cert_locks WHERE name = ? AND owner = ?`, name, owner); err != nil {
		return fmt.Errorf("unlocking %s: %w", name, err)
	}
	return nil
}
