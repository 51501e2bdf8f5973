package postgres

import (
	"context"
	"fmt"
	"io/fs"
	"time"

	"github.com/skydesk/skydeskd/store"
)

// CertStore keeps ACME material by slash-separated key and the named
// locks of certificate orders in PostgreSQL, with the methods of
// store.CertStore (the certs package's Backend): every node serves the
// same certificates and one of them orders each.
type CertStore struct{ s *Store }

// Certs returns the store's certificate storage.
func (s *Store) Certs() *CertStore { return &CertStore{s: s} }

// prefixRange: "p/" <= key < "p0" ('0' follows '/'; keys are COLLATE "C").
func prefixRange(prefix string) (lo, hi string) { return prefix + "/", prefix + "0" }

// Put stores value at key, replacing any earlier value.
func (c *CertStore) Put(ctx context.Context, key string, value []byte) error {
	if value == nil {
		value = []byte{}
	}
	if _, err := c.s.pool.Exec(ctx, `INSERT INTO cert_blobs (key, value, modified) VALUES ($1, $2, $3)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value, modified = excluded.modified`,
		key, value, c.s.now().UnixMilli()); err != nil {
		return fmt.Errorf("storing %s: %w", key, err)
	}
	return nil
}

// Get returns the value at key, or an error matching fs.ErrNotExist.
func (c *CertStore) Get(ctx context.Context, key string) ([]byte, error) {
	var v []byte
	err := c.s.pool.QueryRow(ctx, `SELECT value FROM cert_blobs WHERE key = $1`, key).Scan(&v)
	if noRows(err) {
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
	err = c.s.pool.QueryRow(ctx, `SELECT length(value), modified FROM cert_blobs WHERE key = $1`, key).Scan(&size, &ms)
	if noRows(err) {
		return 0, time.Time{}, fmt.Errorf("%s: %w", key, fs.ErrNotExist)
	}
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("stat %s: %w", key, err)
	}
	return size, time.UnixMilli(ms), nil
}

// Delete removes key and every key under it; a missing key is no error.
func (c *CertStore) Delete(ctx context.Context, key string) error {
	lo, hi := prefixRange(key)
	if _, err := c.s.pool.Exec(ctx, `DELETE FROM cert_blobs WHERE key = $1 OR (key >= $2 AND key < $3)`, key, lo, hi); err != nil {
		return fmt.Errorf("deleting %s: %w", key, err)
	}
	return nil
}

// Keys lists every key under prefix (all depths), sorted; "" lists all.
func (c *CertStore) Keys(ctx context.Context, prefix string) ([]string, error) {
	lo, hi := prefixRange(prefix)
	if prefix == "" {
		lo, hi = "", "\U0010FFFF"
	}
	rows, err := c.s.pool.Query(ctx, `SELECT key FROM cert_blobs WHERE key >= $1 AND key < $2 ORDER BY key`, lo, hi)
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", prefix, err)
	}
	var keys []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			rows.Close()
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, rows.Err()
}

// TryLock takes the lock name for owner until ttl from now if it is free,
// expired or owner's already, and reports whether owner holds it. The
// upsert is one statement: of two nodes racing, one inserts and the
// other's conflict update sees the row and its unexpired lock.
func (c *CertStore) TryLock(ctx context.Context, name, owner string, ttl time.Duration) (bool, error) {
	now := c.s.now()
	tag, err := c.s.pool.Exec(ctx, `INSERT INTO cert_locks (name, owner, expires) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires = excluded.expires
		WHERE cert_locks.expires <= $4 OR cert_locks.owner = excluded.owner`,
		name, owner, now.Add(ttl).UnixMilli(), now.UnixMilli())
	if err != nil {
		return false, fmt.Errorf("locking %s: %w", name, err)
	}
	return tag.RowsAffected() == 1, nil
}

// ExtendLock moves the expiry of owner's lock name to ttl from now;
// store.ErrLockLost if another owner holds it.
func (c *CertStore) ExtendLock(ctx context.Context, name, owner string, ttl time.Duration) error {
	tag, err := c.s.pool.Exec(ctx, `UPDATE cert_locks SET expires = $1 WHERE name = $2 AND owner = $3`,
		c.s.now().Add(ttl).UnixMilli(), name, owner)
	if err != nil {
		return fmt.Errorf("extending lock %s: %w", name, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("extending lock %s: %w", name, store.ErrLockLost)
	}
	return nil
}

// Unlock releases owner's lock name; one taken over meanwhile stays with
// its new owner.
func (c *CertStore) Unlock(ctx context.Context, name, owner string) error {
	if _, err := c.s.pool.Exec(ctx, `DELETE FROM cert_locks WHERE name = $1 AND owner = $2`, name, owner); err != nil {
		return fmt.Errorf("unlocking %s: %w", name, err)
	}
	return nil
}
