package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/skydesk/skydeskd/store"
)

func testDeliver(t *testing.T, d store.Driver) {
	ctx := t.Context()
	withHosted(t, d)
	a := user(t, d, "a@skydesk.jp")
	user(t, d, "b@"+HostedDomain)
	uids, err := d.Deliver(ctx, store.Delivery{Recipients: []string{"a@skydesk.jp", "B@" + HostedDomain}, Body: []byte("Subject: x\n\nline\r\n")})
	if err != nil || len(uids) != 2 || uids[0] == uids[1] {
		t.Fatalf("Deliver = %v, %v", uids, err)
	}
	// One unknown recipient: nothing is stored for anyone.
	if _, err := d.Deliver(ctx, store.Delivery{Recipients: []string{"a@skydesk.jp", "ghost@skydesk.jp"}, Body: []byte("x")}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown recipient: %v, want ErrNotFound", err)
	}
	if got := listing(t, d, a); len(got) != 1 || got[0] != uids[0] {
		t.Errorf("a's queue %v after a failed delivery, want [%d]", got, uids[0])
	}
	if _, err := d.Deliver(ctx, store.Delivery{Body: []byte("x")}); err == nil {
		t.Error("a delivery without recipients succeeded")
	}
}

func testAccept(t *testing.T, d store.Driver) {
	ctx := t.Context()
	acc := user(t, d, "taro@skydesk.jp")
	_, _, err := d.Accept(ctx, store.Accepted{Body: []byte("Subject: x\n\nbody\n"),
		Local: []string{"taro@skydesk.jp", "gone@skydesk.jp"}, From: "taro@skydesk.jp", Remote: []string{"a@example.org"}})
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Accept with a missing mailbox = %v, want ErrNotFound", err)
	}
	if n, _ := d.QueueLen(ctx); n != 0 {
		t.Fatalf("queue has %d entries after a failed Accept", n)
	}
	if got := listing(t, d, acc); len(got) != 0 {
		t.Fatalf("taro has %v after a failed Accept", got)
	}
	uids, qid, err := d.Accept(ctx, store.Accepted{Body: []byte("Subject: x\n\nbody\n"),
		Local: []string{"taro@skydesk.jp"}, From: "taro@skydesk.jp", Remote: []string{"a@example.org", "b@example.org", "a@example.org"}})
	if err != nil || len(uids) != 1 || qid == 0 {
		t.Fatalf("Accept = %v, %d, %v", uids, qid, err)
	}
	if n, _ := d.QueueLen(ctx); n != 2 {
		t.Errorf("QueueLen = %d, want 2 (a recipient listed twice is queued once)", n)
	}
	if _, qid, err := d.Accept(ctx, store.Accepted{Body: []byte("x"), Local: []string{"taro@skydesk.jp"}}); err != nil || qid != 0 {
		t.Errorf("local-only Accept: queue id %d, %v; want 0", qid, err)
	}
}

func testAcceptBatch(t *testing.T, d store.Driver) {
	ctx := t.Context()
	user(t, d, "taro@skydesk.jp")
	res, err := d.AcceptBatch(ctx, []store.Accepted{
		{Body: []byte("a"), Local: []string{"taro@skydesk.jp"}},
		{Body: []byte("b"), Local: []string{"taro@skydesk.jp", "gone@skydesk.jp"}, From: "taro@skydesk.jp", Remote: []string{"x@example.org"}},
		{Body: []byte("c"), From: "taro@skydesk.jp", Remote: []string{"y@example.org"}},
	})
	if err != nil || len(res) != 3 {
		t.Fatalf("AcceptBatch = %+v, %v", res, err)
	}
	if res[0].Err != nil || len(res[0].UIDs) != 1 || !errors.Is(res[1].Err, store.ErrNotFound) || res[2].Err != nil || res[2].QueueID == 0 {
		t.Fatalf("results %+v", res)
	}
	if n, _ := d.QueueLen(ctx); n != 1 {
		t.Errorf("queue length %d, want 1 (the failed message left no entry)", n)
	}
	uids, _, err := d.Accept(ctx, store.Accepted{Body: []byte("d"), Local: []string{"taro@skydesk.jp"}})
	if err != nil || uids[0] <= res[0].UIDs[0] {
		t.Errorf("next UID %v after %v", uids, res[0].UIDs)
	}
}

func testQueue(t *testing.T, d store.Driver) {
	ctx := t.Context()
	acc := user(t, d, "taro@skydesk.jp")
	if _, ok, err := d.NextQueueAttempt(ctx); ok || err != nil {
		t.Errorf("NextQueueAttempt on an empty queue: ok=%v, %v", ok, err)
	}
	_, qid, err := d.Accept(ctx, store.Accepted{Body: []byte("Subject: x\n\nbody\n"), From: "taro@skydesk.jp",
		Remote: []string{"a@example.org", "b@example.org"}})
	if err != nil {
		t.Fatal(err)
	}
	if next, ok, err := d.NextQueueAttempt(ctx); !ok || err != nil || time.Until(next) > time.Second {
		t.Errorf("NextQueueAttempt = %v, %v, %v; want due now", next, ok, err)
	}
	due, err := d.DueQueue(ctx, time.Now().Add(time.Second), 10)
	if err != nil || len(due) != 1 || due[0].ID != qid || due[0].From != "taro@skydesk.jp" || len(due[0].Rcpts) != 2 ||
		string(due[0].Body) != "Subject: x\r\n\r\nbody\r\n" || due[0].Created.IsZero() {
		t.Fatalf("DueQueue = %+v, %v", due, err)
	}
	// DueQueue only looks; the relay claims, settles, and claims again.
	const holder, lease = "node1/relay", time.Minute
	claim := func(at time.Time) []store.QueuedMessage {
		t.Helper()
		got, err := d.ClaimQueue(ctx, at, holder, lease, 10)
		if err != nil {
			t.Fatalf("ClaimQueue: %v", err)
		}
		return got
	}
	if due := claim(time.Now().Add(time.Second)); len(due) != 1 || due[0].ID != qid || len(due[0].Rcpts) != 2 || string(due[0].Body) != "Subject: x\r\n\r\nbody\r\n" {
		t.Fatalf("ClaimQueue = %+v", due)
	}
	later := time.Now().Add(time.Hour)
	if err := d.QueueSettle(ctx, qid, holder, store.QueueResult{Deferred: []string{"a@example.org"}, Next: later, Reason: "451 busy"}); err != nil {
		t.Fatal(err)
	}
	if next, ok, err := d.NextQueueAttempt(ctx); !ok || err != nil || time.Until(next) > time.Second {
		t.Errorf("NextQueueAttempt = %v, %v, %v; want b@ due now", next, ok, err)
	}
	due = claim(time.Now().Add(time.Second))
	if len(due) != 1 || len(due[0].Rcpts) != 1 || due[0].Rcpts[0].Address != "b@example.org" {
		t.Fatalf("after deferring a@: %+v", due)
	}
	if err := d.QueueSettle(ctx, qid, holder, store.QueueResult{Delivered: []string{"b@example.org"}}); err != nil {
		t.Fatal(err)
	}
	if next, ok, err := d.NextQueueAttempt(ctx); !ok || err != nil || next.Sub(later).Abs() > time.Millisecond {
		t.Errorf("NextQueueAttempt = %v, %v, %v; want a@'s retry time %v", next, ok, err, later)
	}
	if due := claim(time.Now().Add(time.Second)); len(due) != 0 {
		t.Fatalf("claimed %+v before the retry time", due)
	}
	due = claim(later.Add(time.Second))
	if len(due) != 1 || len(due[0].Rcpts) != 1 {
		t.Fatalf("ClaimQueue after the retry time: %+v", due)
	}
	if r := due[0].Rcpts[0]; r.Address != "a@example.org" || r.Attempts != 1 || r.LastError != "451 busy" {
		t.Errorf("deferred recipient %+v: want 1 attempt, the last error", r)
	}
	if err := d.QueueSettle(ctx, qid, holder, store.QueueResult{Bounced: []string{"a@example.org"},
		BounceTo: "taro@skydesk.jp", DSN: []byte("Subject: bounce\n\nx\n")}); err != nil {
		t.Fatal(err)
	}
	if n, _ := d.QueueLen(ctx); n != 0 {
		t.Fatalf("queue has %d entries at the end", n)
	}
	// The bounce landed in the sender's POP queue, with CRLF.
	l := listing(t, d, acc)
	if len(l) != 1 {
		t.Fatalf("sender's queue %v, want the bounce", l)
	}
	if b, err := d.AppendBody(ctx, acc.ID, l[0], 0, 100, nil); err != nil || string(b) != "Subject: bounce\r\n\r\nx\r\n" {
		t.Errorf("bounce body %q, %v", b, err)
	}
	// A bounce to a sender whose account is gone is dropped, not an error.
	_, qid, _ = d.Accept(ctx, store.Accepted{Body: []byte("x"), From: "taro@skydesk.jp", Remote: []string{"c@example.org"}})
	claim(time.Now().Add(time.Second))
	if err := d.QueueSettle(ctx, qid, holder, store.QueueResult{Bounced: []string{"c@example.org"}, BounceTo: "gone@skydesk.jp", DSN: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if n, _ := d.QueueLen(ctx); n != 0 {
		t.Fatalf("queue has %d entries after the dropped bounce", n)
	}
}
