// Package storetest is the conformance suite every store driver passes
// (Run), and gives tests a real store (a SQLite file in a temporary
// directory, cheap password hashes), a self-signed service certificate, and
// a rule for tests that drive real third-party clients.
package storetest

import (
	"context"
	"os"
	"os/exec"
	"testing"

	"github.com/skydesk/skydeskd/config"
	"github.com/skydesk/skydeskd/store"
)

// PersonalDomain and HostedDomain are the domains New sets up.
const (
	PersonalDomain = "skydesk.jp"
	HostedDomain   = "example.co.jp"
)

// New opens a SQLite store (NewDriver: either driver) in t.TempDir() with the personal domain skydesk.jp and
// the hosted domain example.co.jp, closed when the test ends.
func New(t testing.TB) *store.Store {
	t.Helper()
	return NewIn(t, t.TempDir())
}

// Empty opens a SQLite store in t.TempDir() with the personal domain
// skydesk.jp and nothing else, closed when the test ends: the Opener of the
// SQLite driver's Run.
func Empty(t testing.TB) *store.Store {
	t.Helper()
	return openIn(t, t.TempDir())
}

func openIn(t testing.TB, dir string) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), dir, store.Options{PersonalDomain: PersonalDomain, HashParams: store.TestHashParams})
	if err != nil {
		t.Fatalf("opening store: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// NewIn is New with a chosen data directory.
func NewIn(t testing.TB, dir string) *store.Store {
	t.Helper()
	s := openIn(t, dir)
	addHosted(t, s)
	return s
}

// AddUser creates an account with a password and POP access "all mail"
// in any driver.
func AddUser(t testing.TB, s store.Driver, address, password string) store.Account {
	t.Helper()
	ctx := context.Background()
	a, err := s.AddAccount(ctx, store.NewAccount{Address: address, Password: password})
	if err != nil {
		t.Fatalf("adding %s: %v", address, err)
	}
	all := store.POPAll
	if _, err := s.SetPOP(ctx, address, store.POPUpdate{Access: &all}); err != nil {
		t.Fatalf("POP settings of %s: %v", address, err)
	}
	return a
}

// Certificate returns a self-signed service certificate made in a
// temporary directory (the same code path as `serve` without cert files).
func Certificate(t testing.TB) *config.Certificate {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	c, err := cfg.LoadCertificate()
	if err != nil {
		t.Fatalf("certificate: %v", err)
	}
	return c
}

// RequireTool returns the path of a third-party program. Locally a
// missing program skips the test; in CI (CI=true) it fails it, so a real
// client test never skips silently there.
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is required in CI (install it in .ci/run): %v", name, err)
	}
	t.Skipf("%s not installed", name)
	return ""
}
