package store_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/skydesk/skydeskd/store"
	"github.com/skydesk/skydeskd/store/storetest"
)

var ctx = context.Background()

func TestMigrationsFromEmptyFileAndReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := store.Open(ctx, dir, store.Options{PersonalDomain: "skydesk.jp", HashParams: store.TestHashParams})
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.SchemaVersion(ctx)
	if err != nil || v < 1 {
		t.Fatalf("schema version %d, %v", v, err)
	}
	if _, err := s.AddDomain(ctx, "example.co.jp"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// Reopening applies nothing twice and keeps the data.
	s2, err := store.Open(ctx, dir, store.Options{PersonalDomain: "skydesk.jp"})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if v2, _ := s2.SchemaVersion(ctx); v2 != v {
		t.Errorf("version changed on reopen: %d -> %d", v, v2)
	}
	if !s2.Domains().Has("example.co.jp") {
		t.Error("domain lost across reopen")
	}
	// WAL mode and one file named skydeskd.db.
	db, err := sql.Open("sqlite", filepath.Join(dir, store.FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var mode string
	if err := db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v", mode, err)
	}
}

func TestDomainChangeSeenByAnotherProcess(t *testing.T) {
	dir := t.TempDir()
	a := storetest.NewIn(t, dir)
	b := storetest.NewIn(t, dir) // a second process on the same file
	if _, err := b.AddDomain(ctx, "new.example.jp"); err != nil {
		t.Fatal(err)
	}
	if a.Domains().Has("new.example.jp") {
		t.Fatal("seen before refresh: test cannot tell anything")
	}
	changed, err := a.RefreshDomains(ctx)
	if err != nil || !changed || !a.Domains().Has("new.example.jp") {
		t.Fatalf("refresh: changed=%v err=%v", changed, err)
	}
}

func TestPasswordsStoredOnlyAsSaltedHashes(t *testing.T) {
	dir := t.TempDir()
	s := storetest.NewIn(t, dir)
	const pw = "plain-text-must-not-appear"
	storetest.AddUser(t, s, "a@skydesk.jp", pw)
	storetest.AddUser(t, s, "b@skydesk.jp", pw)
	app, err := s.CreateAppPassword(ctx, "a@skydesk.jp", "phone")
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	var all []byte
	for _, f := range []string{store.FileName, store.FileName + "-wal"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	for _, secret := range []string{pw, app, string(bytes.ReplaceAll([]byte(app), []byte(" "), nil))} {
		if bytes.Contains(all, []byte(secret)) {
			t.Errorf("secret %q found in the database file", secret)
		}
	}
	db, _ := sql.Open("sqlite", filepath.Join(dir, store.FileName))
	defer db.Close()
	var h1, h2 string
	if err := db.QueryRow(`SELECT password_hash FROM accounts WHERE address='a@skydesk.jp'`).Scan(&h1); err != nil {
		t.Fatal(err)
	}
	db.QueryRow(`SELECT password_hash FROM accounts WHERE address='b@skydesk.jp'`).Scan(&h2)
	if len(h1) < 20 || h1[:10] != "$argon2id$" {
		t.Errorf("hash %q is not argon2id", h1)
	}
	if h1 == h2 {
		t.Error("same password gave the same hash: no salt")
	}
}

// NormalizeCRLF and ReadMessage: what Deliver stores and SMTP reads.
func TestNormalizeCRLFAndReadMessage(t *testing.T) {
	if got := string(store.NormalizeCRLF([]byte("a\nb\rc\r\nd"))); got != "a\r\nb\r\nc\r\nd" {
		t.Errorf("NormalizeCRLF = %q", got)
	}
	if _, err := store.ReadMessage(bytes.NewReader(make([]byte, 2000)), 1000); !errors.Is(err, store.ErrTooBig) {
		t.Errorf("oversized: %v", err)
	}
}

func BenchmarkDeliver20KB(b *testing.B) {
	s := storetest.New(b)
	storetest.AddUser(b, s, "a@skydesk.jp", "password-1")
	body := bytes.Repeat([]byte("0123456789012345678901234567890123456789012345678901234567890123456789\r\n"), 280)
	for b.Loop() {
		if _, err := s.Deliver(ctx, store.Delivery{Recipients: []string{"a@skydesk.jp"}, Body: body}); err != nil {
			b.Fatal(err)
		}
	}
}
