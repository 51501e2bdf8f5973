package smtpd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/skydesk/skydeskd/store"
)

// DefaultClaimLease is RelayOptions.ClaimLease unless set: longer than a
// renewal round trip under load by far, short enough that mail a dead
// node had claimed goes out within minutes.
const DefaultClaimLease = 5 * time.Minute

// settleTimeout bounds recording an attempt's outcome.
const settleTimeout = 30 * time.Second

// defaultWorker names a relay uniquely: host, process and a random part
// (two relays in one process, a restarted process with the same id).
func defaultWorker() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// holdClaim renews the claim on message id every third of the lease until
// release is called. The returned context is not ended by ctx (a send in
// progress at shutdown finishes, bounded by Server.Shutdown's context),
// only when the claim is lost, with cause store.ErrClaimLost. A renewal
// that fails (the database unreachable) is logged and tried again at the
// next tick: the claim may still hold, and QueueSettle decides.
func (r *Relay) holdClaim(ctx context.Context, id int64, log *slog.Logger) (context.Context, func()) {
	cctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	rctx, stop := context.WithCancel(cctx) // ends a renewal in flight at release
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(max(r.o.ClaimLease/3, time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-rctx.Done():
				return
			case <-t.C:
			}
			ok, err := r.q.RenewQueueClaim(rctx, id, r.o.Worker, r.o.ClaimLease)
			switch {
			case err != nil && rctx.Err() == nil:
				log.Warn("renewing the relay claim", "err", err)
			case !ok:
				cancel(store.ErrClaimLost)
				return
			}
		}
	})
	return cctx, func() {
		stop()
		wg.Wait()
		cancel(nil)
	}
}
