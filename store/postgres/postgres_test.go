package postgres_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/skydesk/skydeskd/store"
	"github.com/skydesk/skydeskd/store/postgres"
	"github.com/skydesk/skydeskd/store/postgres/pgtest"
	"github.com/skydesk/skydeskd/store/storetest"
)

func open(t testing.TB, url string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), url, store.Options{PersonalDomain: storetest.PersonalDomain, HashParams: store.TestHashParams})
	if err != nil {
		t.Fatalf("opening %s: %v", url, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// The PostgreSQL driver passes the conformance suite the SQLite driver
// passes, unchanged, each subtest on a new database.
func TestConformance(t *testing.T) {
	c := pgtest.Start(t)
	storetest.Run(t, func(t *testing.T) store.Driver { return open(t, c.NewDatabase(t)) })
}

// Several processes opening a new database at once: the advisory lock
// makes one apply the migrations and the others find them applied, so
// none fails on a table created meanwhile and each version is recorded
// once.
func TestMigrate_concurrentOpen(t *testing.T) {
	url := pgtest.URL(t)
	const n = 6
	var wg sync.WaitGroup
	errs := make([]error, n)
	stores := make([]*postgres.Store, n)
	for i := range n {
		wg.Go(func() {
			stores[i], errs[i] = postgres.Open(t.Context(), url, store.Options{PersonalDomain: storetest.PersonalDomain})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		defer stores[i].Close()
	}
	files, err := os.ReadDir("migrations")
	if err != nil {
		t.Fatal(err)
	}
	var rows int
	if err := stores[0].QueryRowForTest(t.Context(), `SELECT count(*) FROM schema_migrations`).Scan(&rows); err != nil || rows != len(files) {
		t.Fatalf("schema_migrations has %d rows (%v); want one per migration (%d)", rows, err, len(files))
	}
	last, _, _ := strings.Cut(files[len(files)-1].Name(), "_")
	if v, err := stores[0].SchemaVersion(t.Context()); err != nil || fmt.Sprintf("%04d", v) != last {
		t.Fatalf("SchemaVersion = %d, %v; want %s", v, err, last)
	}
	// Reopening applies nothing and keeps the data.
	if _, err := stores[1].AddDomain(t.Context(), "example.co.jp"); err != nil {
		t.Fatal(err)
	}
	again := open(t, url)
	if !again.Domains().Has("example.co.jp") {
		t.Error("reopened store lost the hosted domain")
	}
}
