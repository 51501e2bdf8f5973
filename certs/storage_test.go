package certs_test

import (
	"context"
	"errors"
	"io/fs"
	"slices"
	"testing"
	"time"

	"github.com/skydesk/skydeskd/certs"
)

func TestStorage_listAndStat(t *testing.T) {
	ctx := context.Background()
	s := certs.NewStorage(openCerts(t, t.TempDir()))
	for _, k := range []string{"certificates/ca/a.test/a.test.crt", "certificates/ca/a.test/a.test.json", "certificates/ca/b.test/b.test.crt", "acme/users/x"} {
		if err := s.Store(ctx, k, []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		path      string
		recursive bool
		want      []string
	}{
		{"certificates/ca", false, []string{"certificates/ca/a.test", "certificates/ca/b.test"}},
		{"certificates/ca/", false, []string{"certificates/ca/a.test", "certificates/ca/b.test"}},
		{"certificates", true, []string{"certificates/ca", "certificates/ca/a.test", "certificates/ca/a.test/a.test.crt",
			"certificates/ca/a.test/a.test.json", "certificates/ca/b.test", "certificates/ca/b.test/b.test.crt"}},
	} {
		got, err := s.List(ctx, tc.path, tc.recursive)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("List(%q, %v) = %v, %v; want %v", tc.path, tc.recursive, got, err, tc.want)
		}
	}
	if _, err := s.List(ctx, "none", false); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("List(missing) = %v, want fs.ErrNotExist", err)
	}
	if ki, err := s.Stat(ctx, "certificates/ca"); err != nil || ki.IsTerminal {
		t.Errorf("Stat(dir) = %+v, %v", ki, err)
	}
	if ki, err := s.Stat(ctx, "acme/users/x"); err != nil || !ki.IsTerminal || ki.Size != 1 {
		t.Errorf("Stat(file) = %+v, %v", ki, err)
	}
	if _, err := s.Stat(ctx, "acme/users/y"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat(missing) = %v", err)
	}
	if !s.Exists(ctx, "acme") || s.Exists(ctx, "acm") {
		t.Error("Exists is wrong about a directory")
	}
}

// TestStorage_lock: a second Storage (another process) waits for the
// first's lock and gets it once it is released.
func TestStorage_lock(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a := certs.NewStorage(openCerts(t, dir))
	b := certs.NewStorage(openCerts(t, dir))
	if err := a.Lock(ctx, "issue_cert_x"); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if err := b.Lock(short, "issue_cert_x"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("b.Lock while a holds it = %v, want a deadline error", err)
	}
	got := make(chan error, 1)
	go func() { got <- b.Lock(ctx, "issue_cert_x") }()
	if err := a.Unlock(ctx, "issue_cert_x"); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if ok, err := a.TryLock(ctx, "issue_cert_x"); ok || err != nil {
		t.Fatalf("a.TryLock while b holds it = %v, %v", ok, err)
	}
	// Goroutines of one process exclude each other too (certmagic's
	// account registration and orders rely on it).
	if ok, err := b.TryLock(ctx, "issue_cert_x"); ok || err != nil {
		t.Fatalf("b.TryLock again while b holds it = %v, %v", ok, err)
	}
	if err := b.Unlock(ctx, "issue_cert_x"); err != nil {
		t.Fatal(err)
	}
}
