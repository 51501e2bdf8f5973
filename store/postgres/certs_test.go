package postgres_test

import (
	"errors"
	"io/fs"
	"slices"
	"testing"
	"time"

	"github.com/skydesk/skydeskd/certs"
	"github.com/skydesk/skydeskd/store"
	"github.com/skydesk/skydeskd/store/postgres"
	"github.com/skydesk/skydeskd/store/postgres/pgtest"
)

var _ certs.Backend = (*postgres.CertStore)(nil)

// Keys and prefixes behave as in the SQLite CertStore (byte order, "a/b"
// is under "a", "a0" is not), whatever the database's collation.
func TestCertStore_keys(t *testing.T) {
	ctx := t.Context()
	c := open(t, pgtest.URL(t)).Certs()
	for _, k := range []string{"certificates/ca/a.test/a.test.crt", "certificates/ca/a.test/a.test.key",
		"certificates/ca/ab.test/ab.test.crt", "certificates0", "acme/x", "Acme/Y"} {
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
	if _, _, err := c.Stat(ctx, "nope"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Stat(missing) = %v, want fs.ErrNotExist", err)
	}
	if size, mod, err := c.Stat(ctx, "acme/x"); err != nil || size != 2 || time.Since(mod) > time.Minute {
		t.Fatalf("Stat = %d %v %v", size, mod, err)
	}
	for _, tc := range []struct {
		prefix string
		want   []string
	}{
		{"certificates/ca/a.test", []string{"certificates/ca/a.test/a.test.crt", "certificates/ca/a.test/a.test.key"}},
		{"certificates", []string{"certificates/ca/a.test/a.test.crt", "certificates/ca/a.test/a.test.key", "certificates/ca/ab.test/ab.test.crt"}},
		{"", []string{"Acme/Y", "acme/x", "certificates/ca/a.test/a.test.crt", "certificates/ca/a.test/a.test.key",
			"certificates/ca/ab.test/ab.test.crt", "certificates0"}},
	} {
		if got, err := c.Keys(ctx, tc.prefix); err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("Keys(%q) = %q, %v; want %q", tc.prefix, got, err, tc.want)
		}
	}
	if err := c.Delete(ctx, "certificates/ca"); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.Keys(ctx, ""); !slices.Equal(got, []string{"Acme/Y", "acme/x", "certificates0"}) {
		t.Errorf("after Delete(certificates/ca): %q", got)
	}
}

// Two nodes (two pools on one database) share the order locks.
func TestCertStore_locks(t *testing.T) {
	ctx := t.Context()
	url := pgtest.URL(t)
	a, b := open(t, url).Certs(), open(t, url).Certs()
	const name = "issue_cert_a.test"
	try := func(c *postgres.CertStore, owner string, ttl time.Duration) bool {
		t.Helper()
		ok, err := c.TryLock(ctx, name, owner, ttl)
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
	if err := b.Unlock(ctx, name, "B"); err != nil {
		t.Fatal(err)
	}
	if try(b, "B", time.Minute) {
		t.Fatal("B's Unlock released A's lock")
	}
	if err := a.Unlock(ctx, name, "A"); err != nil {
		t.Fatal(err)
	}
	if !try(b, "B", -time.Second) { // taken already expired: stale at once
		t.Fatal("B could not take a released lock")
	}
	if !try(a, "A", time.Minute) {
		t.Fatal("A could not take over a stale lock")
	}
	if err := b.ExtendLock(ctx, name, "B", time.Minute); !errors.Is(err, store.ErrLockLost) {
		t.Fatalf("B extended a lock it lost: %v", err)
	}
	if err := a.ExtendLock(ctx, name, "A", time.Minute); err != nil {
		t.Fatal(err)
	}
}
