package postgres_test

import (
	"bytes"
	"errors"
	"sync"
	"testing"

	"github.com/skydesk/skydeskd/store"
	"github.com/skydesk/skydeskd/store/postgres/pgtest"
)

// Two nodes delivering to the same two full-to-be mailboxes at once, to
// one of them or to both in either order: the account row locks let
// exactly as many messages in as fit, usage matches what was stored, and
// no delivery fails on a deadlock (the accounts are locked in id order).
func TestQuota_concurrentNodes(t *testing.T) {
	url := pgtest.URL(t)
	a, b := open(t, url), open(t, url)
	ctx := t.Context()
	rcpts := []string{"taro@skydesk.jp", "hanako@skydesk.jp"}
	for _, r := range rcpts {
		if _, err := a.AddAccount(ctx, store.NewAccount{Address: r, Password: "password-" + r}); err != nil {
			t.Fatal(err)
		}
		if err := a.SetQuota(ctx, r, 1000); err != nil {
			t.Fatal(err)
		}
	}
	const tries, fit = 32, 10
	body := bytes.Repeat([]byte("x"), 1000/fit)
	errs := make([]error, tries)
	var wg sync.WaitGroup
	for i := range tries {
		wg.Go(func() {
			node, local := a, rcpts
			switch i % 4 {
			case 1:
				node, local = b, []string{rcpts[1], rcpts[0]}
			case 2:
				local = rcpts[:1]
			case 3:
				node, local = b, rcpts[1:]
			}
			if i%3 == 0 {
				res, err := node.AcceptBatch(ctx, []store.Accepted{{Body: body, Local: local}})
				if err == nil {
					err = res[0].Err
				}
				errs[i] = err
				return
			}
			_, _, errs[i] = node.Accept(ctx, store.Accepted{Body: body, Local: local})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil && !errors.Is(err, store.ErrOverQuota) {
			t.Errorf("delivery %d: %v, want nil or ErrOverQuota", i, err)
		}
	}
	for _, r := range rcpts {
		u, err := b.MailboxUsage(ctx, r)
		if err != nil || u != (store.Usage{Used: 1000, Quota: 1000}) {
			t.Errorf("MailboxUsage(%s) = %+v, %v; want 1000 of 1000", r, u, err)
		}
		acc, err := b.GetAccount(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		l, err := b.ListMaildrop(ctx, acc.ID, store.POPSettings{Access: store.POPAll})
		if err != nil || len(l) != fit {
			t.Errorf("%s holds %d messages (%v), want %d", r, len(l), err, fit)
		}
	}
}

// Batches to one mailbox, its address spelled two ways: one that fits
// (stored in one pipeline), then one a message more than the quota holds
// (tried so, then under savepoints). The usage remembered within the
// transaction is the account's, whatever the spelling, so exactly the
// last message is refused and the others are stored.
func TestQuota_batchToOneMailbox(t *testing.T) {
	s := open(t, pgtest.URL(t))
	ctx := t.Context()
	if _, err := s.AddAccount(ctx, store.NewAccount{Address: "taro@skydesk.jp", Password: "password-taro"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetQuota(ctx, "taro@skydesk.jp", 1000); err != nil {
		t.Fatal(err)
	}
	const fit = 10
	batch := func(n int) []store.Accepted {
		b := make([]store.Accepted, n)
		for i := range b {
			rcpt := "taro@skydesk.jp"
			if i%2 == 1 {
				rcpt = "Taro@SKYDESK.jp"
			}
			b[i] = store.Accepted{Body: bytes.Repeat([]byte("x"), 1000/fit), Local: []string{rcpt}}
		}
		return b
	}
	for _, n := range []int{fit / 2, fit/2 + 1} {
		res, err := s.AcceptBatch(ctx, batch(n))
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range res {
			if want := i == fit/2; errors.Is(r.Err, store.ErrOverQuota) != want || (!want && (r.Err != nil || len(r.UIDs) != 1 || r.UIDs[0] == 0)) {
				t.Errorf("batch of %d, message %d: %+v, want over quota: %v", n, i, r, want)
			}
		}
	}
	if u, err := s.MailboxUsage(ctx, "taro@skydesk.jp"); err != nil || u != (store.Usage{Used: 1000, Quota: 1000}) {
		t.Errorf("MailboxUsage = %+v, %v; want 1000 of 1000", u, err)
	}
	acc, err := s.GetAccount(ctx, "taro@skydesk.jp")
	if err != nil {
		t.Fatal(err)
	}
	if l, err := s.ListMaildrop(ctx, acc.ID, store.POPSettings{Access: store.POPAll}); err != nil || len(l) != fit {
		t.Errorf("%d messages stored (%v), want %d", len(l), err, fit)
	}
}
