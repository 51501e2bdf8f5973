package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/skydesk/skydeskd/store"
	"github.com/skydesk/skydeskd/store/postgres"
	"github.com/skydesk/skydeskd/store/postgres/pgtest"
)

// Two nodes on one database: a domain added or removed through one is in
// the other's snapshot within a second, by LISTEN/NOTIFY (the safety-net
// poll is an hour here), also after the listening connection is killed.
func TestWatchDomains_notify(t *testing.T) {
	url := pgtest.URL(t)
	a, b := open(t, url), open(t, url)
	changed := make(chan struct{}, 1)
	b.OnDomainsChanged(func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	})
	errs := make(chan error, 16)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.WatchDomains(ctx, time.Hour, func(err error) {
			select {
			case errs <- err:
			default:
			}
		})
	}()
	t.Cleanup(func() { cancel(); <-done })

	// waitFor waits on b's snapshot changes until has(name) == want,
	// measuring from start, before the change was made through a.
	waitFor := func(what, name string, want bool, start time.Time, bound time.Duration) {
		t.Helper()
		timeout := time.After(bound - time.Since(start))
		for b.Domains().Has(name) != want {
			select {
			case <-changed:
			case <-timeout:
				t.Fatalf("%s: node B's snapshot unchanged after %v", what, bound)
			}
		}
		t.Logf("%s: in node B's snapshot %v after the change began", what, time.Since(start))
	}

	add := func(name string) time.Time {
		t.Helper()
		start := time.Now()
		if _, err := a.AddDomain(t.Context(), name); err != nil {
			t.Fatal(err)
		}
		return start
	}
	waitFor("add", "example.co.jp", true, add("example.co.jp"), time.Second)
	start := time.Now()
	if err := a.RemoveDomain(t.Context(), "example.co.jp"); err != nil {
		t.Fatal(err)
	}
	waitFor("remove", "example.co.jp", false, start, time.Second)
	waitFor("second add", "example.com", true, add("example.com"), time.Second)

	// The listening connection dies: B reports it, reconnects and
	// catches up, with no poll to help.
	var killed int
	if err := a.QueryRowForTest(t.Context(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = $1`, postgres.ListenerName).Scan(&killed); err != nil || killed != 1 {
		t.Fatalf("terminating the listener: %d backends, %v; want 1", killed, err)
	}
	waitFor("add after the listener was killed", "example.net", true, add("example.net"), 5*time.Second)
	select {
	case err := <-errs:
		t.Logf("reported: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("the lost listening connection was not reported")
	}
	// Heard by the new connection.
	waitFor("add on the new connection", "example.org", true, add("example.org"), time.Second)
}

// Mail queued through one node wakes the other's OnQueueChanged hooks by
// NOTIFY on the same listening connection as the domain changes, within a
// second (the relay's Wake in serve).
func TestWatchDomains_queueNotify(t *testing.T) {
	url := pgtest.URL(t)
	a, b := open(t, url), open(t, url)
	woke := make(chan struct{}, 16)
	b.OnQueueChanged(func() { woke <- struct{}{} })
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); b.WatchDomains(ctx, time.Hour, nil) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-woke: // the catch-up run after LISTEN
	case <-time.After(10 * time.Second):
		t.Fatal("the queue hooks did not run after LISTEN")
	}
	start := time.Now()
	if _, _, err := a.Accept(t.Context(), store.Accepted{Body: []byte("x"), From: "taro@skydesk.jp", Remote: []string{"far@example.org"}}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-woke:
		t.Logf("node B woken %v after node A began queueing", time.Since(start))
	case <-time.After(time.Second):
		t.Fatal("node B's queue hook did not run within 1 s of mail queued on node A")
	}
}
