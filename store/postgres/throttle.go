package postgres

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/skydesk/skydeskd/store"
)

// The failed-login throttle's counts (store.ThrottleCounters), shared by
// every node so failures spread over nodes add up to one count. Keys are
// stored as HMACs under the database's key; the leaky-bucket arithmetic
// is store's (the update callback), run between a SELECT … FOR UPDATE of
// the keys' rows and their write, in one short transaction.

// throttleCleanup is how many expired rows each write deletes at most:
// more than the three it may add, so the table shrinks back to the
// buckets still counting.
const throttleCleanup = 64

// throttleHashes returns keys' hashes, in the order of keys.
func (s *Store) throttleHashes(ctx context.Context, keys []string) ([][]byte, error) {
	read := func(ctx context.Context) (v string, err error) {
		err = s.pool.QueryRow(ctx, `SELECT value FROM meta WHERE key = 'onboarding_key'`).Scan(&v)
		return v, err
	}
	hs := make([][]byte, len(keys))
	for i, k := range keys {
		h, err := s.obKey.ThrottleKeyHash(ctx, k, read)
		if err != nil {
			return nil, err
		}
		hs[i] = h
	}
	return hs, nil
}

// nanos and fromNanos store a time as unix nanoseconds, the zero time as 0.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// readBuckets scans (key_hash, level, updated_at, locked_until, expires)
// rows into the buckets of hs, in their order (zero where none).
func readBuckets(rows pgx.Rows, hs [][]byte) ([]store.ThrottleBucket, error) {
	out := make([]store.ThrottleBucket, len(hs))
	var h []byte
	var level float64
	var at, until, expires int64
	_, err := pgx.ForEachRow(rows, []any{&h, &level, &at, &until, &expires}, func() error {
		for i := range hs {
			if bytes.Equal(hs[i], h) {
				out[i] = store.ThrottleBucket{Level: level, At: fromNanos(at), Until: fromNanos(until), Expires: fromNanos(expires)}
			}
		}
		return nil
	})
	return out, err
}

// ThrottleState implements store.ThrottleCounters.
func (s *Store) ThrottleState(ctx context.Context, keys []string) ([]store.ThrottleBucket, error) {
	hs, err := s.throttleHashes(ctx, keys)
	if err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT key_hash, level, updated_at, locked_until, expires
		FROM throttle WHERE key_hash = ANY($1)`, hs)
	if err != nil {
		return nil, fmt.Errorf("reading throttle: %w", err)
	}
	out, err := readBuckets(rows, hs)
	if err != nil {
		return nil, fmt.Errorf("reading throttle: %w", err)
	}
	return out, nil
}

// UpdateThrottle implements store.ThrottleCounters: the keys' rows are
// made to exist, then locked in the order of their hashes (two nodes
// updating overlapping keys wait for each other, never deadlock), read,
// rewritten with update's buckets, and a few expired rows of other keys
// deleted (SKIP LOCKED: never waiting for a row another node holds).
func (s *Store) UpdateThrottle(ctx context.Context, now time.Time, keys []string, update func([]store.ThrottleBucket) []store.ThrottleBucket) error {
	hs, err := s.throttleHashes(ctx, keys)
	if err != nil {
		return err
	}
	sorted := slices.Clone(hs)
	slices.SortFunc(sorted, bytes.Compare)
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO throttle (key_hash, level, updated_at, locked_until, expires)
			SELECT k, 0, 0, 0, 0 FROM unnest($1::bytea[]) WITH ORDINALITY AS u(k, n) ORDER BY n
			ON CONFLICT (key_hash) DO NOTHING`, sorted); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT key_hash, level, updated_at, locked_until, expires
			FROM throttle WHERE key_hash = ANY($1) ORDER BY key_hash FOR UPDATE`, sorted)
		if err != nil {
			return err
		}
		bs, err := readBuckets(rows, hs)
		if err != nil {
			return err
		}
		bs = update(bs)
		if len(bs) != len(hs) {
			return fmt.Errorf("throttle update returned %d buckets for %d keys", len(bs), len(hs))
		}
		levels := make([]float64, len(bs))
		ats, untils, expires := make([]int64, len(bs)), make([]int64, len(bs)), make([]int64, len(bs))
		for i, b := range bs {
			levels[i], ats[i], untils[i], expires[i] = b.Level, nanos(b.At), nanos(b.Until), nanos(b.Expires)
		}
		// An upsert, not an UPDATE: a row another node's cleanup deleted
		// between the two statements (it had expired) is written again.
		if _, err := tx.Exec(ctx, `INSERT INTO throttle (key_hash, level, updated_at, locked_until, expires)
			SELECT * FROM unnest($1::bytea[], $2::float8[], $3::int8[], $4::int8[], $5::int8[])
			ON CONFLICT (key_hash) DO UPDATE SET level = excluded.level, updated_at = excluded.updated_at,
				locked_until = excluded.locked_until, expires = excluded.expires`,
			hs, levels, ats, untils, expires); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM throttle WHERE key_hash IN (SELECT key_hash FROM throttle
			WHERE expires < $1 ORDER BY expires LIMIT $2 FOR UPDATE SKIP LOCKED)`, now.UnixNano(), throttleCleanup)
		return err
	})
	if err != nil {
		return fmt.Errorf("updating throttle: %w", err)
	}
	return nil
}

// ClearThrottle implements store.ThrottleCounters.
func (s *Store) ClearThrottle(ctx context.Context, keys []string) error {
	hs, err := s.throttleHashes(ctx, keys)
	if err != nil {
		return err
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM throttle WHERE key_hash = ANY($1)`, hs); err != nil {
		return fmt.Errorf("clearing throttle: %w", err)
	}
	return nil
}
