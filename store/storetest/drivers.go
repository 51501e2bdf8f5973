package storetest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/skydesk/skydeskd/store"
	"github.com/skydesk/skydeskd/store/postgres"
	"github.com/skydesk/skydeskd/store/postgres/pgtest"
)

// DatabaseEnv is the switch that runs a package's tests on PostgreSQL:
// with SKYDESK_TEST_DATABASE=postgres, Open (and NewDriver, and
// cmd/skydeskd's configurations with the default driver) use a database in
// one throwaway cluster per test process instead of a SQLite file. Unset,
// or "sqlite", keeps SQLite. It is read by tests only.
const DatabaseEnv = "SKYDESK_TEST_DATABASE"

// Postgres reports whether the tests run on PostgreSQL (DatabaseEnv). An
// unknown value panics rather than quietly testing SQLite.
func Postgres() bool {
	switch v := os.Getenv(DatabaseEnv); v {
	case "", "sqlite":
		return false
	case "postgres":
		return true
	default:
		panic(fmt.Sprintf("%s=%q: want sqlite or postgres", DatabaseEnv, v))
	}
}

// SkipOnPostgres skips a test that checks something only SQLite has (its
// file, its errors) when the tests run on PostgreSQL.
func SkipOnPostgres(t testing.TB, why string) {
	t.Helper()
	if Postgres() {
		t.Skip("SQLite only: " + why)
	}
}

// shared is the process's cluster, started by the first database asked
// for and stopped by Main, and the database of each key.
var shared struct {
	mu      sync.Mutex
	cluster *pgtest.Cluster
	err     error // starting failed; not retried
	byKey   map[string]string
	main    bool // Main runs the tests: a cluster started will be stopped
}

// DatabaseFor returns the URL of the PostgreSQL database of key (a data
// directory or file), created empty on first use: the same key gives the
// same database, so two stores, or a server and an admin command, opened
// on one directory share it as they would share the SQLite file.
func DatabaseFor(key string) (string, error) {
	if abs, err := filepath.Abs(key); err == nil {
		key = abs
	}
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if url, ok := shared.byKey[key]; ok {
		return url, nil
	}
	if !shared.main {
		return "", fmt.Errorf("%s=postgres: the test package's TestMain must be storetest.Main (it stops the cluster)", DatabaseEnv)
	}
	if shared.cluster == nil && shared.err == nil {
		shared.cluster, shared.err = pgtest.StartProcess()
		if shared.err != nil {
			shared.err = fmt.Errorf("%s=postgres: starting PostgreSQL: %w", DatabaseEnv, shared.err)
		}
	}
	if shared.err != nil {
		return "", shared.err
	}
	url, err := shared.cluster.CreateDatabase(context.Background())
	if err != nil {
		return "", err
	}
	if shared.byKey == nil {
		shared.byKey = map[string]string{}
	}
	shared.byKey[key] = url
	return url, nil
}

// Main is the TestMain of a package whose tests use Open: it runs them
// and then stops the cluster, if one was started, so no PostgreSQL
// outlives the test process.
func Main(m *testing.M) {
	shared.mu.Lock()
	shared.main = true
	shared.mu.Unlock()
	code := m.Run()
	shared.mu.Lock()
	c := shared.cluster
	shared.cluster, shared.err = nil, errors.New("tests are over")
	shared.mu.Unlock()
	if c != nil {
		if err := c.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping PostgreSQL:", err)
			code = max(code, 1)
		}
	}
	os.Exit(code)
}

// Open opens the store of dir with opts, closed when the test ends: the
// SQLite file in dir, or, under DatabaseEnv=postgres, dir's PostgreSQL
// database (DatabaseFor). A package calling it has Main as its TestMain.
func Open(t testing.TB, dir string, opts store.Options) store.Driver {
	t.Helper()
	var (
		d   store.Driver
		err error
	)
	if Postgres() {
		var url string
		if url, err = DatabaseFor(dir); err == nil {
			d, err = postgres.Open(context.Background(), url, opts)
		}
	} else {
		d, err = store.Open(context.Background(), dir, opts)
	}
	if err != nil {
		t.Fatalf("opening store: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// NewDriver is New on either driver (Open): the personal domain
// skydesk.jp and the hosted domain example.co.jp.
func NewDriver(t testing.TB) store.Driver {
	t.Helper()
	return NewDriverIn(t, t.TempDir())
}

// NewDriverIn is NewDriver with a chosen data directory; opened again on
// the same directory it is the same store.
func NewDriverIn(t testing.TB, dir string) store.Driver {
	t.Helper()
	d := Open(t, dir, store.Options{PersonalDomain: PersonalDomain, HashParams: store.TestHashParams})
	addHosted(t, d)
	return d
}

func addHosted(t testing.TB, d store.Driver) {
	t.Helper()
	if d.Domains().Has(HostedDomain) {
		return
	}
	if _, err := d.AddDomain(context.Background(), HostedDomain); err != nil {
		t.Fatalf("adding domain: %v", err)
	}
}
