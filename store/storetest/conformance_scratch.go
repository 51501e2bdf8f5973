package storetest

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skydesk/skydeskd/store"
)

// testSessionScratch checks a session's scratch entries: stored only for
// a session, one per kind, read until they expire, taken once however
// many requests race for them, failures counted on the entry sealed, and
// gone with the session.
func testSessionScratch(t *testing.T, d store.Driver) {
	ctx := t.Context()
	acc := user(t, d, "goro@skydesk.jp")
	ws, other := newSession(d, t, acc, "scratch", sessionT0), newSession(d, t, acc, "scratch-other", sessionT0)
	for _, s := range []store.WebSession{ws, other} {
		if err := d.CreateSession(ctx, s, store.SessionLimits{}); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _, _ = d.DeleteAccountSessions(ctx, acc.Address) })
	k, now, exp := ws.Key, sessionT0, sessionT0.Add(10*time.Minute)
	get := func(kind string, at time.Time) (store.Scratch, bool) {
		t.Helper()
		sc, err := d.GetScratch(ctx, k, kind, at)
		if errors.Is(err, store.ErrNotFound) {
			return store.Scratch{}, false
		}
		if err != nil {
			t.Fatalf("GetScratch(%s): %v", kind, err)
		}
		return sc, true
	}

	if err := d.PutScratch(ctx, newSession(d, t, acc, "none", now).Key, "flash", []byte("x"), exp); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("PutScratch for no session = %v, want ErrNotFound", err)
	}
	for _, bad := range []struct {
		kind   string
		sealed []byte
	}{{"", []byte("x")}, {strings.Repeat("k", 17), []byte("x")}, {"flash", make([]byte, store.MaxScratchSealed+1)}} {
		if err := d.PutScratch(ctx, k, bad.kind, bad.sealed, exp); !errors.Is(err, store.ErrBadScratch) {
			t.Errorf("PutScratch(%q, %d octets) = %v, want ErrBadScratch", bad.kind, len(bad.sealed), err)
		}
	}
	if _, ok := get("flash", now); ok {
		t.Fatal("an entry before any was put")
	}

	// Put, read, expiry to the second, replacement.
	big := bytes.Repeat([]byte{0xa5}, store.MaxScratchSealed)
	if err := d.PutScratch(ctx, k, "enrol", big, exp); err != nil {
		t.Fatal(err)
	}
	if sc, ok := get("enrol", exp.Add(-time.Second)); !ok || !bytes.Equal(sc.Sealed, big) || !sc.Expires.Equal(exp) || sc.Failures != 0 {
		t.Fatalf("GetScratch = %d octets, %v, %d failures, %v", len(sc.Sealed), sc.Expires, sc.Failures, ok)
	}
	if _, ok := get("enrol", exp); ok {
		t.Error("an entry read at its expiry")
	}
	if _, ok := get("flash", now); ok {
		t.Error("an entry of another kind read")
	}
	if _, err := d.GetScratch(ctx, other.Key, "enrol", now); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("another session's entry: %v", err)
	}

	// Failures count on the entry sealed; a replacement starts again.
	for want := 1; want <= 2; want++ {
		if n, err := d.FailScratch(ctx, k, "enrol", big); err != nil || n != want {
			t.Fatalf("FailScratch = %d, %v; want %d", n, err, want)
		}
	}
	if _, err := d.FailScratch(ctx, k, "enrol", []byte("replaced")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("FailScratch of another value = %v, want ErrNotFound", err)
	}
	if sc, _ := get("enrol", now); sc.Failures != 2 {
		t.Errorf("failures read back: %d, want 2", sc.Failures)
	}
	if err := d.PutScratch(ctx, k, "enrol", []byte("second"), exp); err != nil {
		t.Fatal(err)
	}
	if sc, ok := get("enrol", now); !ok || string(sc.Sealed) != "second" || sc.Failures != 0 {
		t.Errorf("after replacing: %q, %d failures, %v", sc.Sealed, sc.Failures, ok)
	}
	if err := d.DeleteScratch(ctx, k, "enrol"); err != nil {
		t.Fatal(err)
	}
	if _, ok := get("enrol", now); ok {
		t.Error("a deleted entry read")
	}
	if err := d.DeleteScratch(ctx, k, "enrol"); err != nil {
		t.Errorf("deleting a deleted entry: %v", err)
	}

	// Taken once, however many race for it; an expired one is deleted
	// unread.
	if err := d.PutScratch(ctx, k, "flash", []byte("once"), exp); err != nil {
		t.Fatal(err)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		got  []string
		errs []error
	)
	for range 8 {
		wg.Go(func() {
			sc, err := d.TakeScratch(ctx, k, "flash", now)
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				got = append(got, string(sc.Sealed))
			} else if !errors.Is(err, store.ErrNotFound) {
				errs = append(errs, err)
			}
		})
	}
	wg.Wait()
	if len(got) != 1 || got[0] != "once" || len(errs) != 0 {
		t.Errorf("8 racing TakeScratch got %q (errors %v); want one \"once\"", got, errs)
	}
	if err := d.PutScratch(ctx, k, "flash", []byte("stale"), exp); err != nil {
		t.Fatal(err)
	}
	if _, err := d.TakeScratch(ctx, k, "flash", exp); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("TakeScratch at expiry = %v, want ErrNotFound", err)
	}
	if _, ok := get("flash", now); ok {
		t.Error("an expired entry outlived TakeScratch")
	}

	// Gone with the session: signed out, or ended by another's rebind.
	for _, kind := range []string{"flash", "enrol"} {
		for _, s := range []store.WebSession{ws, other} {
			if err := d.PutScratch(ctx, s.Key, kind, []byte(kind), exp); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := d.SetPassword(ctx, acc.Address, "changed-password"); err != nil {
		t.Fatal(err)
	}
	if ok, err := d.RebindSession(ctx, ws.Key, ws.Generation); err != nil || !ok {
		t.Fatalf("RebindSession = %v, %v", ok, err)
	}
	if err := d.DeleteSession(ctx, ws.Key); err != nil {
		t.Fatal(err)
	}
	for _, s := range []store.WebSession{ws, other} {
		s.Generation++
		if err := d.CreateSession(ctx, s, store.SessionLimits{}); err != nil {
			t.Fatal(err)
		}
		for _, kind := range []string{"flash", "enrol"} {
			if _, err := d.GetScratch(ctx, s.Key, kind, now); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("an entry outlived its session: %v", err)
			}
		}
	}
}
