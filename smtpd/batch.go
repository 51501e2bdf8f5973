package smtpd

import (
	"context"
	"sync"
	"time"

	"github.com/skydesk/skydeskd/store"
)

// BatchStore is a Store that can commit several messages at once.
type BatchStore interface {
	Store
	AcceptBatch(ctx context.Context, batch []store.Accepted) ([]store.AcceptResult, error)
}

var _ BatchStore = (*store.Store)(nil)

// Batcher is a Store whose Accept group-commits: messages whose DATA ends
// while a commit is in progress are stored together in the next
// transaction, so concurrent sessions share one fsync instead of queueing
// for one each. Every caller still returns only after the commit holding
// its message (the 250 stays durable). No goroutine of its own: the caller
// that finds no commit running commits the queue's head batch, then hands
// the committer role to the first session still waiting, so no session
// commits more than one batch (none is starved under sustained load).
// Share one Batcher between all listeners of a store.
type Batcher struct {
	BatchStore
	// MaxBatch bounds one transaction (default 64).
	MaxBatch int

	mu       sync.Mutex
	queue    []*pendingAccept // invariant: empty whenever !flushing
	flushing bool
}

type pendingAccept struct {
	a    store.Accepted
	res  store.AcceptResult
	done chan struct{} // closed when res is set
	lead chan struct{} // closed when this caller becomes the committer
}

// batchTimeout bounds one group commit (it is not tied to one caller's
// context, since it carries other sessions' messages too).
const batchTimeout = 60 * time.Second

// NewBatcher wraps st.
func NewBatcher(st BatchStore) *Batcher { return &Batcher{BatchStore: st, MaxBatch: 64} }

// Accept implements Store.
func (b *Batcher) Accept(_ context.Context, a store.Accepted) ([]int64, int64, error) {
	p := &pendingAccept{a: a, done: make(chan struct{}), lead: make(chan struct{})}
	b.mu.Lock()
	b.queue = append(b.queue, p)
	if !b.flushing {
		b.flushing = true // the queue was empty: p is its head
		b.mu.Unlock()
		b.flush()
	} else {
		b.mu.Unlock()
		select {
		case <-p.done:
		case <-p.lead:
			b.flush() // p is the queue's head
		}
	}
	<-p.done
	return p.res.UIDs, p.res.QueueID, p.res.Err
}

// flush commits the head batch (which holds the caller's message), then
// promotes the next waiter or ends the flushing.
func (b *Batcher) flush() {
	b.mu.Lock()
	n := min(len(b.queue), max(b.MaxBatch, 1))
	batch := b.queue[:n:n]
	b.queue = b.queue[n:]
	b.mu.Unlock()
	b.commit(batch)
	b.mu.Lock()
	if len(b.queue) > 0 {
		close(b.queue[0].lead)
	} else {
		b.flushing = false
	}
	b.mu.Unlock()
}

func (b *Batcher) commit(batch []*pendingAccept) {
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
	if len(batch) == 1 {
		p := batch[0]
		p.res.UIDs, p.res.QueueID, p.res.Err = b.BatchStore.Accept(ctx, p.a)
		close(p.done)
		return
	}
	msgs := make([]store.Accepted, len(batch))
	for i, p := range batch {
		msgs[i] = p.a
	}
	res, err := b.AcceptBatch(ctx, msgs)
	for i, p := range batch {
		if err != nil {
			p.res.Err = err
		} else {
			p.res = res[i]
		}
		close(p.done)
	}
}
