package popstore_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skydesk/skydeskd/popstore"
	"github.com/skydesk/skydeskd/store"
	"github.com/skydesk/skydeskd/store/postgres"
	"github.com/skydesk/skydeskd/store/postgres/pgtest"
	"github.com/skydesk/skydeskd/store/storetest"
)

// testTTL is the lease TTL of these tests: short, yet three renewal
// periods long enough for a loaded machine.
const testTTL = 1500 * time.Millisecond

// dyingLeases are a node's leases that can "die" as a killed process
// does: from then on nothing is renewed or released in the database,
// while the node's sessions believe all is well.
type dyingLeases struct {
	store.Leases
	dead atomic.Bool
}

func (d *dyingLeases) RenewLease(ctx context.Context, id int64, holder string, ttl time.Duration) (bool, error) {
	if d.dead.Load() {
		return true, nil
	}
	return d.Leases.RenewLease(ctx, id, holder, ttl)
}

func (d *dyingLeases) ReleaseLease(ctx context.Context, id int64, holder string) error {
	if d.dead.Load() {
		return nil
	}
	return d.Leases.ReleaseLease(ctx, id, holder)
}

// Two SQLite store handles on one file, one POP3 node on each.
func TestLease_twoNodesSQLite(t *testing.T) {
	dir := t.TempDir()
	testTwoNodes(t, storetest.NewIn(t, dir), storetest.NewIn(t, dir))
}

// Two PostgreSQL store handles (two nodes) on one database.
func TestLease_twoNodesPostgres(t *testing.T) {
	url := pgtest.URL(t)
	open := func() store.Driver {
		s, err := postgres.Open(t.Context(), url, store.Options{PersonalDomain: storetest.PersonalDomain, HashParams: store.TestHashParams})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	testTwoNodes(t, open(), open())
}

// testTwoNodes: a session on node A makes node B answer IN-USE for as
// long as it lives (renewed past several TTLs), a QUIT on A frees the
// maildrop for B at once, and when A "dies" (stops renewing without
// releasing) B gets the maildrop once the lease expires, not before.
func testTwoNodes(t *testing.T, da, db store.Driver) {
	leasesA := &dyingLeases{Leases: da}
	a := newPOPNode(t, da, store.AuthOptions{Policy: lenient}, popstore.Options{Leases: leasesA, LeaseTTL: testTTL})
	b := newPOPNode(t, db, store.AuthOptions{Policy: lenient}, popstore.Options{LeaseTTL: testTTL})
	const user, pass = "taro@skydesk.jp", "right-password"
	storetest.AddUser(t, da, user, pass)
	inUse := func(c *popClient) {
		t.Helper()
		c.cmd("USER "+user, "+OK")
		c.cmd("PASS "+pass, "-ERR [IN-USE]")
	}

	ca := a.dial(t)
	ca.login(user, pass)
	start := time.Now()
	cb := b.dial(t)
	for time.Since(start) < 2*testTTL { // outlives the TTL: A renews
		inUse(cb)
	}
	ca.quit("+OK")
	cb.login(user, pass) // released at once: the first try succeeds
	cb.quit("+OK")

	ca = a.dial(t)
	loggingIn := time.Now() // the lease is taken after this: it ends at loggingIn+TTL at the earliest
	ca.login(user, pass)
	leasesA.dead.Store(true) // A's process dies: no renewal, no release
	killed := time.Now()
	ca.nc.Close()
	cb = b.dial(t)
	inUse(cb)
	deadline := killed.Add(testTTL + 10*time.Second)
	for {
		cb.cmd("USER "+user, "+OK")
		if err := cb.conn.PrintfLine("PASS %s", pass); err != nil {
			t.Fatal(err)
		}
		l, err := cb.conn.ReadLine()
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(l, "+OK") {
			break
		}
		if !strings.HasPrefix(l, "-ERR [IN-USE]") || time.Now().After(deadline) {
			t.Fatalf("node B after node A died: %q (%v after)", l, time.Since(killed))
		}
		time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
	}
	if el := time.Since(loggingIn); el < testTTL {
		t.Fatalf("node B got the maildrop %v after node A's login; its lease (TTL %v) cannot have expired", el, testTTL)
	}
	t.Logf("node B got the maildrop %v after node A died (TTL %v)", time.Since(killed), testTTL)
	cb.quit("+OK")
}
