package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/skydesk/skydeskd/store"
)

// testLeases: the POP3 maildrop lease is exclusive, renewable only by its
// holder, released at once, and taken over by another holder only after
// it expires.
func testLeases(t *testing.T, d store.Driver) {
	ctx := t.Context()
	a := user(t, d, "taro@"+PersonalDomain)
	b := user(t, d, "hanako@"+PersonalDomain)
	const long = time.Minute
	must := func(what string, ok bool, err error, want bool) {
		t.Helper()
		if err != nil || ok != want {
			t.Fatalf("%s = %v, %v; want %v", what, ok, err, want)
		}
	}
	ok, err := d.AcquireLease(ctx, a.ID, "node1/1", long)
	must("Acquire(a, node1/1)", ok, err, true)
	ok, err = d.AcquireLease(ctx, a.ID, "node2/1", long)
	must("Acquire(a, node2/1) while held", ok, err, false)
	ok, err = d.AcquireLease(ctx, b.ID, "node2/1", long)
	must("Acquire(b, node2/1): another account", ok, err, true)
	ok, err = d.AcquireLease(ctx, a.ID, "node1/1", long)
	must("Acquire(a, node1/1) again by its holder", ok, err, true)
	ok, err = d.RenewLease(ctx, a.ID, "node1/1", long)
	must("Renew(a, node1/1)", ok, err, true)
	ok, err = d.RenewLease(ctx, a.ID, "node2/1", long)
	must("Renew(a, node2/1) by a stranger", ok, err, false)

	// Releasing someone else's lease changes nothing; the holder's own
	// release frees it at once.
	if err := d.ReleaseLease(ctx, a.ID, "node2/1"); err != nil {
		t.Fatal(err)
	}
	ok, err = d.AcquireLease(ctx, a.ID, "node2/2", long)
	must("Acquire(a, node2/2) after a stranger's release", ok, err, false)
	if err := d.ReleaseLease(ctx, a.ID, "node1/1"); err != nil {
		t.Fatal(err)
	}
	ok, err = d.AcquireLease(ctx, a.ID, "node2/2", long)
	must("Acquire(a, node2/2) after release", ok, err, true)
	ok, err = d.RenewLease(ctx, a.ID, "node1/1", long)
	must("Renew(a, node1/1) after losing it", ok, err, false)

	// An expired lease: taken over by the next holder, not before.
	const short = 200 * time.Millisecond
	start := time.Now()
	ok, err = d.AcquireLease(ctx, b.ID, "node2/1", short) // renews b's lease as a short one
	must("Acquire(b, node2/1, short)", ok, err, true)
	deadline := start.Add(10 * time.Second)
	for {
		ok, err = d.AcquireLease(ctx, b.ID, "node1/2", long)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("an expired lease was not taken over within 10 s")
		}
		time.Sleep(10 * time.Millisecond) // polling a condition with a deadline
	}
	if el := time.Since(start); el < short {
		t.Fatalf("lease taken over after %v, before its TTL %v", el, short)
	}
	ok, err = d.RenewLease(ctx, b.ID, "node2/1", long)
	must("Renew(b, node2/1) after the takeover", ok, err, false)

	if _, err := d.AcquireLease(ctx, a.ID, "", long); !errors.Is(err, store.ErrBadLease) {
		t.Fatalf("Acquire with an empty holder: %v; want ErrBadLease", err)
	}
	if _, err := d.AcquireLease(ctx, a.ID, "x", 0); !errors.Is(err, store.ErrBadLease) {
		t.Fatalf("Acquire with TTL 0: %v; want ErrBadLease", err)
	}
}
