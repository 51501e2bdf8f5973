package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/skydesk/skydeskd/store"
	"github.com/skydesk/skydeskd/store/storetest"
)

// Accept is all or nothing: a failing local recipient leaves neither a
// local copy nor a queue entry.
func TestAccept_allOrNothing(t *testing.T) {
	s := storetest.New(t)
	storetest.AddUser(t, s, "taro@skydesk.jp", "taro-password-1")
	ctx := t.Context()
	_, _, err := s.Accept(ctx, store.Accepted{Body: []byte("Subject: x\n\nbody\n"),
		Local: []string{"taro@skydesk.jp", "gone@skydesk.jp"}, From: "taro@skydesk.jp", Remote: []string{"a@example.org"}})
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
	if n, _ := s.QueueLen(ctx); n != 0 {
		t.Fatalf("queue has %d entries after a failed Accept", n)
	}
	uids, qid, err := s.Accept(ctx, store.Accepted{Body: []byte("Subject: x\n\nbody\n"),
		Local: []string{"taro@skydesk.jp"}, From: "taro@skydesk.jp", Remote: []string{"a@example.org", "b@example.org", "a@example.org"}})
	if err != nil || len(uids) != 1 || qid == 0 {
		t.Fatalf("Accept = %v, %d, %v", uids, qid, err)
	}
	due, err := s.DueQueue(ctx, time.Now().Add(time.Second), 10)
	if err != nil || len(due) != 1 || len(due[0].Rcpts) != 2 || string(due[0].Body) != "Subject: x\r\n\r\nbody\r\n" {
		t.Fatalf("DueQueue = %+v, %v", due, err)
	}
	if err := s.QueueDeferred(ctx, qid, []string{"a@example.org"}, time.Now().Add(time.Hour), "451 busy"); err != nil {
		t.Fatal(err)
	}
	due, _ = s.DueQueue(ctx, time.Now().Add(time.Second), 10)
	if len(due) != 1 || len(due[0].Rcpts) != 1 || due[0].Rcpts[0].Address != "b@example.org" {
		t.Fatalf("after deferring a@: %+v", due)
	}
	if err := s.QueueDelivered(ctx, qid, []string{"b@example.org"}); err != nil {
		t.Fatal(err)
	}
	if err := s.QueueBounced(ctx, qid, []string{"a@example.org"}, "taro@skydesk.jp", []byte("Subject: bounce\r\n\r\nx\r\n")); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.QueueLen(ctx); n != 0 {
		t.Fatalf("queue has %d entries at the end", n)
	}
	// A bounce to a sender whose account is gone is dropped, not an error.
	_, qid, _ = s.Accept(ctx, store.Accepted{Body: []byte("x"), From: "taro@skydesk.jp", Remote: []string{"c@example.org"}})
	if err := s.QueueBounced(ctx, qid, []string{"c@example.org"}, "gone@skydesk.jp", []byte("x")); err != nil {
		t.Fatal(err)
	}
}

func TestIsLocalDomain(t *testing.T) {
	s := storetest.New(t)
	for d, want := range map[string]bool{"skydesk.jp": true, "Example.CO.JP": true, "example.org": false, "sub.skydesk.jp": false} {
		if got := s.IsLocalDomain(d); got != want {
			t.Errorf("IsLocalDomain(%q) = %v", d, got)
		}
	}
}

// AcceptBatch: one commit for all, a failing message leaves the others in.
func TestAcceptBatch_savepoints(t *testing.T) {
	s := storetest.New(t)
	storetest.AddUser(t, s, "taro@skydesk.jp", "taro-password-1")
	ctx := t.Context()
	res, err := s.AcceptBatch(ctx, []store.Accepted{
		{Body: []byte("a"), Local: []string{"taro@skydesk.jp"}},
		{Body: []byte("b"), Local: []string{"taro@skydesk.jp", "gone@skydesk.jp"}, From: "taro@skydesk.jp", Remote: []string{"x@example.org"}},
		{Body: []byte("c"), From: "taro@skydesk.jp", Remote: []string{"y@example.org"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Err != nil || len(res[0].UIDs) != 1 || !errors.Is(res[1].Err, store.ErrNotFound) || res[2].Err != nil || res[2].QueueID == 0 {
		t.Fatalf("results %+v", res)
	}
	// The failed message left no queue entry and no copy for taro.
	if n, _ := s.QueueLen(ctx); n != 1 {
		t.Fatalf("queue length %d, want 1 (y@ only)", n)
	}
	// b's copy for taro was rolled back with its savepoint (sqlite_sequence
	// included): the next message gets the id right after a's, so no
	// committed message ever had it.
	uids, _, err := s.Accept(ctx, store.Accepted{Body: []byte("d"), Local: []string{"taro@skydesk.jp"}})
	if err != nil || uids[0] != res[0].UIDs[0]+1 {
		t.Fatalf("next uid %v after %v: b's insert was not rolled back", uids, res[0].UIDs)
	}
}
