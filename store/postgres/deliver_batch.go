package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/skydesk/skydeskd/profiles"
	"github.com/skydesk/skydeskd/store"
)

// acceptPipelined is AcceptBatch's first try for the usual SMTP batch:
// local recipients only, every body one bytea (up to store.ChunkSize). It
// locks and reads every recipient account in one statement, checks the
// quotas in Go against the usage as the batch adds to it (exact: the row
// locks keep other writers out until the commit), then sends every
// message's insert at once (a pgx pipeline), so a batch costs the same
// few round trips whatever its size while the account rows are locked.
// ok is false, with nothing done, for a batch it does not cover; any
// refusal or failure is errRetrySaved.
func (s *Store) acceptPipelined(ctx context.Context, tx pgx.Tx, batch []store.Accepted, out []store.AcceptResult, now int64) (ok bool, err error) {
	bodies := make([]store.Body, len(batch))
	var addrs []string
	for i, a := range batch {
		bodies[i] = a.Message()
		if len(a.Local) == 0 || len(a.Remote)+len(a.Forwards) > 0 || bodies[i].Size() > store.ChunkSize {
			return false, nil
		}
		for _, r := range a.Local {
			n, err := profiles.NormalizeAddress(r)
			if err != nil {
				return true, errRetrySaved
			}
			addrs = append(addrs, n.String())
		}
	}
	locked, err := s.lockUsage(ctx, tx, addrs)
	if err != nil {
		return true, err
	}
	var b pgx.Batch
	var bufs []*[]byte
	defer func() {
		for _, p := range bufs {
			chunkPool.Put(p)
		}
	}()
	k := 0 // index into addrs
	for i, a := range batch {
		size := bodies[i].Size()
		// One read per message: its recipients' inserts share the octets
		// (the pipeline sends them before the buffers go back).
		p := chunkPool.Get().(*[]byte)
		bufs = append(bufs, p)
		body := (*p)[:size]
		if n, err := bodies[i].ReadAt(body, 0); n < len(body) {
			return true, fmt.Errorf("%w: reading message: %w", errRetrySaved, err)
		}
		out[i].UIDs = make([]int64, len(a.Local))
		for j := range a.Local {
			la := locked[addrs[k]]
			k++
			if la == nil || !la.u.Fits(size) {
				return true, errRetrySaved // unknown or full: the savepoint path says which
			}
			la.u.Used += size
			uid := &out[i].UIDs[j]
			b.Queue(insertSmall, la.id, now, size, a.Spam, body).QueryRow(func(row pgx.Row) error { return row.Scan(uid) })
		}
	}
	if err := tx.SendBatch(ctx, &b).Close(); err != nil {
		return true, fmt.Errorf("%w: storing messages: %w", errRetrySaved, err)
	}
	return true, nil
}

// lockUsage locks the account rows of addrs (normalized) in id order and
// returns them by address, with their usage (lockedUsage).
func (s *Store) lockUsage(ctx context.Context, tx pgx.Tx, addrs []string) (lockedUsage, error) {
	rows, err := tx.Query(ctx, `SELECT address, id, quota, usage FROM accounts WHERE address = ANY($1) ORDER BY id FOR NO KEY UPDATE`, addrs)
	if err != nil {
		return nil, fmt.Errorf("locking accounts: %w", err)
	}
	locked := lockedUsage{}
	var addr string
	var id, used int64
	var own *int64
	_, err = pgx.ForEachRow(rows, []any{&addr, &id, &own, &used}, func() error {
		locked[addr] = &lockedAccount{id: id, u: s.usage(own, used)}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("locking accounts: %w", err)
	}
	return locked, nil
}
