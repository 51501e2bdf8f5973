package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/skydesk/skydeskd/store"
)

// queueOne queues a message for one remote recipient and returns its id.
func queueOne(t *testing.T, d store.Driver, rcpt string) int64 {
	t.Helper()
	_, qid, err := d.Accept(t.Context(), store.Accepted{Body: []byte("Subject: " + rcpt + "\n\nx\n"),
		From: "taro@skydesk.jp", Remote: []string{rcpt}})
	if err != nil || qid == 0 {
		t.Fatalf("queueing for %s: %d, %v", rcpt, qid, err)
	}
	return qid
}

// testQueueClaims: a claimed message is nobody else's until its holder
// settles or releases it or its lease ends; then another holder takes it
// over, and the first holder can neither renew nor settle it any more.
func testQueueClaims(t *testing.T, d store.Driver) {
	ctx := t.Context()
	user(t, d, "taro@skydesk.jp")
	const long = time.Minute
	due := func() time.Time { return time.Now().Add(time.Second) }
	claim := func(holder string, lease time.Duration, limit int) []store.QueuedMessage {
		t.Helper()
		got, err := d.ClaimQueue(ctx, due(), holder, lease, limit)
		if err != nil {
			t.Fatalf("ClaimQueue(%s): %v", holder, err)
		}
		return got
	}
	q1, q2 := queueOne(t, d, "one@example.org"), queueOne(t, d, "two@example.org")
	if got := claim("A", long, 1); len(got) != 1 || got[0].ID != q1 {
		t.Fatalf("A's first claim %+v, want message %d", got, q1)
	}
	if got := claim("B", long, 10); len(got) != 1 || got[0].ID != q2 {
		t.Fatalf("B's claim %+v, want only message %d (A holds %d)", got, q2, q1)
	}
	if got := claim("C", long, 10); len(got) != 0 {
		t.Fatalf("C claimed %+v while A and B hold everything", got)
	}
	// DueQueue only looks: it shows claimed messages too.
	if got, err := d.DueQueue(ctx, due(), 10); err != nil || len(got) != 2 {
		t.Fatalf("DueQueue = %d messages, %v; want both", len(got), err)
	}
	if ok, err := d.RenewQueueClaim(ctx, q1, "A", long); err != nil || !ok {
		t.Fatalf("A renewing its claim: %v, %v", ok, err)
	}
	if ok, err := d.RenewQueueClaim(ctx, q1, "B", long); err != nil || ok {
		t.Fatalf("B renewing A's claim: %v, %v; want false", ok, err)
	}
	// A stranger's result is refused and changes nothing.
	if err := d.QueueSettle(ctx, q1, "B", store.QueueResult{Delivered: []string{"one@example.org"}}); !errors.Is(err, store.ErrClaimLost) {
		t.Fatalf("B settling A's message: %v, want ErrClaimLost", err)
	}
	if n, _ := d.QueueLen(ctx); n != 2 {
		t.Fatalf("queue length %d after a refused result, want 2", n)
	}
	// An empty result releases: the message is claimable at once.
	if err := d.QueueSettle(ctx, q2, "B", store.QueueResult{}); err != nil {
		t.Fatal(err)
	}
	if got := claim("C", long, 10); len(got) != 1 || got[0].ID != q2 {
		t.Fatalf("C's claim after B's release %+v, want %d", got, q2)
	}
	if err := d.QueueSettle(ctx, q2, "C", store.QueueResult{Delivered: []string{"two@example.org"}}); err != nil {
		t.Fatal(err)
	}

	// A's lease runs out (A "died"): D takes the message over, not before.
	const short = 200 * time.Millisecond
	start := time.Now()
	if ok, err := d.RenewQueueClaim(ctx, q1, "A", short); err != nil || !ok {
		t.Fatalf("A shortening its lease: %v, %v", ok, err)
	}
	deadline := start.Add(10 * time.Second)
	for len(claim("D", long, 10)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("an ended claim was not taken over within 10 s")
		}
		time.Sleep(10 * time.Millisecond) // polling a condition with a deadline
	}
	if el := time.Since(start); el < short {
		t.Fatalf("claim taken over after %v, before its lease %v ended", el, short)
	}
	if ok, err := d.RenewQueueClaim(ctx, q1, "A", long); err != nil || ok {
		t.Fatalf("A renewing after the takeover: %v, %v; want false", ok, err)
	}
	if err := d.QueueSettle(ctx, q1, "A", store.QueueResult{Bounced: []string{"one@example.org"}}); !errors.Is(err, store.ErrClaimLost) {
		t.Fatalf("A settling after the takeover: %v, want ErrClaimLost", err)
	}
	later := time.Now().Add(time.Hour)
	if err := d.QueueSettle(ctx, q1, "D", store.QueueResult{Deferred: []string{"one@example.org"}, Next: later, Reason: "451 later"}); err != nil {
		t.Fatalf("D settling: %v", err)
	}
	// A's late result did not overwrite D's: the recipient is deferred,
	// not bounced, and still queued.
	got, err := d.DueQueue(ctx, later.Add(time.Second), 10)
	if err != nil || len(got) != 1 || got[0].Rcpts[0].LastError != "451 later" {
		t.Fatalf("after D's result: %+v, %v", got, err)
	}
	if err := d.QueueSettle(ctx, q1, "D", store.QueueResult{}); !errors.Is(err, store.ErrClaimLost) {
		t.Fatalf("settling twice: %v, want ErrClaimLost", err)
	}
	if _, err := d.ClaimQueue(ctx, due(), "", long, 1); !errors.Is(err, store.ErrBadLease) {
		t.Fatalf("claiming without a holder: %v, want ErrBadLease", err)
	}
}

// testQueueClaimRace: concurrent claimers (PostgreSQL: FOR UPDATE SKIP
// LOCKED) share the due messages out; none is claimed twice, none is left.
func testQueueClaimRace(t *testing.T, d store.Driver) {
	ctx := t.Context()
	user(t, d, "taro@skydesk.jp")
	const messages, workers = 40, 4
	for i := range messages {
		queueOne(t, d, fmt.Sprintf("r%d@example.org", i))
	}
	var mu sync.Mutex
	owner := map[int64]string{}
	var dup []string
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		holder := fmt.Sprintf("worker%d", w)
		wg.Go(func() {
			for {
				got, err := d.ClaimQueue(ctx, time.Now().Add(time.Second), holder, time.Minute, 3)
				if err != nil {
					errs <- err
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, m := range got {
					if prev, ok := owner[m.ID]; ok {
						dup = append(dup, fmt.Sprintf("%d: %s and %s", m.ID, prev, holder))
					}
					owner[m.ID] = holder
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(dup) > 0 {
		t.Fatalf("messages claimed twice: %v", dup)
	}
	if len(owner) != messages {
		t.Fatalf("%d of %d messages claimed", len(owner), messages)
	}
	perHolder := map[string]int{}
	for _, h := range owner {
		perHolder[h]++
	}
	t.Logf("claims per worker: %v", perHolder)
}
