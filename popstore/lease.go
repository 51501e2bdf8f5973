package popstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skydesk/skydeskd/popd"
	"github.com/skydesk/skydeskd/store"
)

// DefaultLeaseTTL is Options.LeaseTTL unless set: a node that dies keeps
// its sessions' accounts locked for at most this long.
const DefaultLeaseTTL = 60 * time.Second

// releaseTimeout bounds the release at logout (Logout has no context).
const releaseTimeout = 5 * time.Second

// errLeaseLost answers a QUIT whose session lost its lease: the marks are
// not applied.
var errLeaseLost = &popd.Error{Code: "IN-USE", Text: "maildrop lock lost to another session: no message deleted"}

// randomHolder names this process in lease holders: 8 random octets, so
// two processes (nodes) never share a holder id.
func randomHolder() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("popstore: holder id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// renewer keeps one session's lease alive: it renews every TTL/3 until
// stopped, and records a renewal that found the lease gone.
type renewer struct {
	lost   atomic.Bool
	cancel context.CancelFunc
	done   sync.WaitGroup
}

// acquire takes the account's lease for holder and starts renewing it;
// popd.ErrInUse if another session, on any node, holds it.
func (b *Backend) acquire(ctx context.Context, accountID int64, holder string) (*renewer, error) {
	ttl := b.opts.LeaseTTL
	ok, err := b.opts.Leases.AcquireLease(ctx, accountID, holder, ttl)
	if err != nil {
		return nil, fmt.Errorf("POP3 login: %w", err)
	}
	if !ok {
		return nil, popd.ErrInUse
	}
	b.mu.Lock()
	b.held[accountID]++
	b.mu.Unlock()
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r := &renewer{cancel: cancel}
	r.done.Go(func() { b.renew(rctx, r, accountID, holder, ttl) })
	return r, nil
}

// renew runs until ctx ends or the lease is lost. A failed renewal (the
// database briefly away) is retried at the next tick: the lease survives
// two missed renewals.
func (b *Backend) renew(ctx context.Context, r *renewer, accountID int64, holder string, ttl time.Duration) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(ttl / 3): // a renewal is due a third of the TTL after the last one
		}
		cctx, cancel := context.WithTimeout(ctx, ttl/3)
		ok, err := b.opts.Leases.RenewLease(cctx, accountID, holder, ttl)
		cancel()
		switch {
		case store.IsUnavailable(err) && ctx.Err() == nil:
			b.outage.Warn(b.opts.Logger, "renewing maildrop leases", err)
		case err != nil && ctx.Err() == nil:
			b.opts.Logger.Warn("renewing maildrop lease", "account", accountID, "err", err)
		case err == nil && !ok:
			r.lost.Store(true)
			b.opts.Logger.Warn("maildrop lease lost: another session took it after it expired", "account", accountID)
			return
		}
	}
}

// release stops the renewal and gives the lease up at once.
func (b *Backend) release(accountID int64, holder string, r *renewer) error {
	r.cancel()
	r.done.Wait()
	b.mu.Lock()
	if b.held[accountID]--; b.held[accountID] <= 0 {
		delete(b.held, accountID)
	}
	b.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
	defer cancel()
	err := b.opts.Leases.ReleaseLease(ctx, accountID, holder)
	if store.IsUnavailable(err) {
		b.outage.Warn(b.opts.Logger, "releasing the maildrop lease", err)
		go b.releaseLater(accountID, holder)
		return nil
	}
	return err
}

// Retries of a lease release the database refused.
const (
	releaseRetryMin = 100 * time.Millisecond
	releaseRetryMax = 2 * time.Second
)

// releaseLater gives up a lease once the database is back, so the
// account's first login after an outage is not answered IN-USE until the
// lease runs out. It stops when the release is done or refused for
// another reason, or after LeaseTTL, when the lease has expired anyway
// (the last renewal was no later than the release).
func (b *Backend) releaseLater(accountID int64, holder string) {
	end := time.Now().Add(b.opts.LeaseTTL)
	wait := releaseRetryMin
	for {
		if time.Now().Add(wait).After(end) {
			return
		}
		time.Sleep(wait) // the backoff between retries, not synchronisation
		ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
		err := b.opts.Leases.ReleaseLease(ctx, accountID, holder)
		cancel()
		if !store.IsUnavailable(err) {
			if err != nil {
				b.opts.Logger.Warn("releasing the maildrop lease after an outage", "account", accountID, "err", err)
			}
			return
		}
		wait = min(2*wait, releaseRetryMax)
	}
}
