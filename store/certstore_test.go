package store_test

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/skydesk/skydeskd/store"
)

func TestCertStore_keys(t *testing.T) {
	ctx := context.Background()
	s, err := store.Open(ctx, t.TempDir(), store.Options{PersonalDomain: "example.jp"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := s.Certs()
	for _, k := range []string{"certificates/ca/a.test/a.test.crt", "certificates/ca/a.test/a.test.key", "certificates/ca/ab.test/ab.test.crt", "certificates0", "acme/x"} {
		if err := c.Put(ctx, k, []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Put(ctx, "acme/x", []byte("v2")); err != nil {
		t.Fatal(err)
	}
	if v, err := c.Get(ctx, "acme/x"); err != nil || string(v) != "v2" {
		t.Fatalf("Get = %q, %v; want the replaced value", v, err)
	}
	if _, err := c.Get(ctx, "nope"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Get(missing) = %v, want fs.ErrNotExist", err)
	}
	if size, mod, err := c.Stat(ctx, "acme/x"); err != nil || size != 2 || time.Since(mod) > time.Minute {
		t.Fatalf("Stat = %d %v %v", size, mod, err)
	}
	keys, err := c.Keys(ctx, "certificates/ca/a.test")
	if want := []string{"certificates/ca/a.test/a.test.crt", "certificates/ca/a.test/a.test.key"}; err != nil || !slices.Equal(keys, want) {
		t.Fatalf("Keys = %v, %v; want %v (not ab.test, not certificates0)", keys, err, want)
	}
	if err := c.Delete(ctx, "certificates/ca/a.test"); err != nil {
		t.Fatal(err)
	}
	keys, _ = c.Keys(ctx, "")
	if want := []string{"acme/x", "certificates/ca/ab.test/ab.test.crt", "certificates0"}; !slices.Equal(keys, want) {
		t.Fatalf("after Delete: %v, want %v", keys, want)
	}
	if err := c.Delete(ctx, "missing"); err != nil {
		t.Fatalf("Delete(missing) = %v", err)
	}
}

// TestCertStore_locks opens one file twice, as two processes would: a lock
// held by one is refused to the other until released or expired.
func TestCertStore_locks(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "x.db")
	open := func() *store.CertStore {
		s, err := store.OpenFile(ctx, path, store.Options{PersonalDomain: "example.jp"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s.Certs()
	}
	a, b := open(), open()
	try := func(c *store.CertStore, owner string, ttl time.Duration) bool {
		t.Helper()
		ok, err := c.TryLock(ctx, "issue_cert_a.test", owner, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !try(a, "A", time.Minute) {
		t.Fatal("A could not take a free lock")
	}
	if try(b, "B", time.Minute) {
		t.Fatal("B took A's lock")
	}
	if !try(a, "A", time.Minute) {
		t.Fatal("A could not re-take its own lock")
	}
	if err := b.Unlock(ctx, "issue_cert_a.test", "B"); err != nil {
		t.Fatal(err)
	}
	if try(b, "B", time.Minute) {
		t.Fatal("B's Unlock released A's lock")
	}
	if err := a.Unlock(ctx, "issue_cert_a.test", "A"); err != nil {
		t.Fatal(err)
	}
	if !try(b, "B", -time.Second) { // taken already expired: stale at once
		t.Fatal("B could not take a released lock")
	}
	if !try(a, "A", time.Minute) {
		t.Fatal("A could not take over a stale lock")
	}
	if err := b.ExtendLock(ctx, "issue_cert_a.test", "B", time.Minute); !errors.Is(err, store.ErrLockLost) {
		t.Fatalf("B extended a lock it lost: %v", err)
	}
	if err := a.ExtendLock(ctx, "issue_cert_a.test", "A", time.Minute); err != nil {
		t.Fatal(err)
	}
}
