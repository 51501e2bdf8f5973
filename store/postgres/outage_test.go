package postgres_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/skydesk/skydeskd/store"
	"github.com/skydesk/skydeskd/store/postgres/pgtest"
)

// PostgreSQL stopped under a running store: every call fails at once with
// store.ErrUnavailable; started again, the same Store works within
// seconds without being reopened (pgxpool reconnects), and the domain
// listener has reconnected, so a domain added through another node after
// the return reaches this one's snapshot.
func TestOutage_unavailableAndBack(t *testing.T) {
	c := pgtest.Start(t)
	url := c.NewDatabase(t)
	a, b := open(t, url), open(t, url)
	if _, err := a.AddAccount(t.Context(), store.NewAccount{Address: "taro@skydesk.jp", Password: "taro-password-1"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.WatchDomains(ctx, time.Hour, func(err error) { t.Logf("%s listener: %v", time.Now().Format("05.000"), err) })
	}()
	t.Cleanup(func() { cancel(); <-done })

	c.Stop(t)
	unavailable := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s with the database stopped: %v, want ErrUnavailable", what, err)
		}
	}
	start := time.Now()
	unavailable("Ping", a.Ping(t.Context()))
	_, err := a.Credentials(t.Context(), "taro@skydesk.jp")
	unavailable("Credentials", err)
	_, err = a.AddDomain(t.Context(), "during.example")
	unavailable("AddDomain", err)
	_, err = a.AccountExists(t.Context(), "taro@skydesk.jp")
	unavailable("AccountExists", err)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("failing took %v: a dead database must fail calls at once", took)
	}
	if !b.IsLocalDomain("skydesk.jp") {
		t.Error("the personal domain is not local while the database is down")
	}

	c.Start(t)
	back := time.Now()
	for a.Ping(t.Context()) != nil {
		if time.Since(back) > 5*time.Second {
			t.Fatal("the store did not reconnect within 5 s of the database's return")
		}
		time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
	}
	t.Logf("store answering %v after the database's return", time.Since(back))
	if _, err := a.Credentials(t.Context(), "taro@skydesk.jp"); err != nil {
		t.Fatalf("after the return: %v", err)
	}
	if _, err := a.AddDomain(t.Context(), "after.example"); err != nil {
		t.Fatal(err)
	}
	for !b.Domains().Has("after.example") {
		if time.Since(back) > 10*time.Second {
			t.Fatal("the domain listener did not resume: a domain added after the return is not in the other node's snapshot")
		}
		time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
	}
	t.Logf("domain listener caught up %v after the database's return", time.Since(back))
}
