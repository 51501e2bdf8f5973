package store_test

import (
	"errors"
	"testing"

	"github.com/skydesk/skydeskd/store"
	"github.com/skydesk/skydeskd/store/storetest"
)

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
