package smtpd_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/skydesk/skydeskd/smtpd"
	"github.com/skydesk/skydeskd/store"
	"github.com/skydesk/skydeskd/store/storetest"
)

// countingStore counts transactions.
type countingStore struct {
	store.Driver
	txs, batched atomic.Int64
}

func (c *countingStore) Accept(ctx context.Context, a store.Accepted) ([]int64, int64, error) {
	c.txs.Add(1)
	return c.Driver.Accept(ctx, a)
}

func (c *countingStore) AcceptBatch(ctx context.Context, b []store.Accepted) ([]store.AcceptResult, error) {
	c.txs.Add(1)
	c.batched.Add(int64(len(b)))
	return c.Driver.AcceptBatch(ctx, b)
}

// Concurrent messages share commits; each caller gets its own result, and
// a failing message does not fail its batch neighbours.
func TestBatcher_groupCommit(t *testing.T) {
	s := storetest.NewDriver(t)
	storetest.AddUser(t, s, taro, taroPW)
	cs := &countingStore{Driver: s}
	b := smtpd.NewBatcher(cs)
	const n = 64
	var wg sync.WaitGroup
	errs := make([]error, n)
	uids := make([][]int64, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rcpt := taro
			if i%8 == 7 {
				rcpt = "gone@skydesk.jp"
			}
			uids[i], _, errs[i] = b.Accept(t.Context(), store.Accepted{Body: []byte(fmt.Sprintf("Subject: %d\r\n\r\nx\r\n", i)), Local: []string{rcpt}})
		}()
	}
	wg.Wait()
	seen := map[int64]bool{}
	for i := range n {
		if i%8 == 7 {
			if !errors.Is(errs[i], store.ErrNotFound) {
				t.Errorf("message %d: err %v, want ErrNotFound", i, errs[i])
			}
			continue
		}
		if errs[i] != nil || len(uids[i]) != 1 || seen[uids[i][0]] {
			t.Fatalf("message %d: %v %v", i, uids[i], errs[i])
		}
		seen[uids[i][0]] = true
	}
	t.Logf("%d messages in %d transactions (%d batched)", n, cs.txs.Load(), cs.batched.Load())
	// 64 sessions finishing at once: the first commits alone, the rest
	// queue behind its fsync and share the next commits.
	if cs.txs.Load() > n/2 {
		t.Fatalf("%d transactions for %d concurrent messages: no group commit", cs.txs.Load(), n)
	}
}

// With batches of one, every message is its own commit and the committer
// role is handed from waiter to waiter until the queue is empty.
func TestBatcher_handOff(t *testing.T) {
	s := storetest.NewDriver(t)
	storetest.AddUser(t, s, taro, taroPW)
	cs := &countingStore{Driver: s}
	b := smtpd.NewBatcher(cs)
	b.MaxBatch = 1
	const n = 16
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := b.Accept(t.Context(), store.Accepted{Body: []byte("x"), Local: []string{taro}}); err != nil {
				failed.Add(1)
			}
		}()
	}
	wg.Wait()
	if failed.Load() != 0 || cs.txs.Load() != n || cs.batched.Load() != 0 {
		t.Fatalf("failed %d, transactions %d, batched %d; want 0, %d, 0", failed.Load(), cs.txs.Load(), cs.batched.Load(), n)
	}
}
