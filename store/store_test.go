package store_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/skydesk/skydeskd/profiles"
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

func TestDomains(t *testing.T) {
	s := storetest.New(t)
	before := s.Domains().Serial
	d, err := s.AddDomain(ctx, "例え.JP")
	if err != nil || d != "xn--r8jz45g.jp" {
		t.Fatalf("AddDomain = %q, %v", d, err)
	}
	if s.Domains().Serial == before {
		t.Error("serial did not change")
	}
	if _, err := s.AddDomain(ctx, "xn--r8jz45g.jp"); !errors.Is(err, store.ErrExists) {
		t.Errorf("duplicate add: %v", err)
	}
	if _, err := s.AddDomain(ctx, "skydesk.jp"); err == nil {
		t.Error("personal domain accepted as hosted")
	}
	if _, err := s.AddDomain(ctx, "not a domain"); !errors.Is(err, profiles.ErrInvalidAddress) {
		t.Errorf("bad domain: %v", err)
	}
	storetest.AddUser(t, s, "info@例え.jp", "correct horse")
	if err := s.RemoveDomain(ctx, "xn--r8jz45g.jp"); !errors.Is(err, store.ErrInUse) {
		t.Errorf("removing a domain with accounts: %v", err)
	}
	if err := s.RemoveDomain(ctx, "nothere.jp"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("removing unknown: %v", err)
	}
	l, _ := s.ListDomains(ctx)
	if len(l) != 2 || l[0] != "example.co.jp" || l[1] != "xn--r8jz45g.jp" {
		t.Errorf("ListDomains = %v", l)
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

func TestAccounts(t *testing.T) {
	s := storetest.New(t)
	acc, err := s.AddAccount(ctx, store.NewAccount{Address: "Taro@SkyDesk.JP", Password: "s3cret-pass"})
	if err != nil {
		t.Fatal(err)
	}
	if acc.Address != "taro@skydesk.jp" || acc.Kind != profiles.Personal || !acc.HasPassword {
		t.Errorf("account = %+v", acc)
	}
	if _, err := s.AddAccount(ctx, store.NewAccount{Address: "taro@skydesk.jp", Password: "another-pass"}); !errors.Is(err, store.ErrExists) {
		t.Errorf("duplicate: %v", err)
	}
	if _, err := s.AddAccount(ctx, store.NewAccount{Address: "x@gmail.com", Password: "another-pass"}); !errors.Is(err, store.ErrUnknownDomain) {
		t.Errorf("unknown domain: %v", err)
	}
	if _, err := s.AddAccount(ctx, store.NewAccount{Address: "short@skydesk.jp", Password: "short"}); !errors.Is(err, store.ErrBadPassword) {
		t.Errorf("short password: %v", err)
	}
	if _, err := s.AddAccount(ctx, store.NewAccount{Address: "nopass@skydesk.jp"}); !errors.Is(err, store.ErrBadPassword) {
		t.Errorf("no password and not federated: %v", err)
	}
	fed, err := s.AddAccount(ctx, store.NewAccount{Address: "sso@example.co.jp", Federated: true})
	if err != nil || fed.HasPassword || !fed.Federated || fed.Kind != profiles.Organization {
		t.Fatalf("federated = %+v, %v", fed, err)
	}
	if err := s.SetTwoStep(ctx, "taro@skydesk.jp", true); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetAccount(ctx, "TARO@skydesk.jp")
	if err != nil || !got.TwoStep {
		t.Errorf("GetAccount = %+v, %v", got, err)
	}
	l, err := s.ListAccounts(ctx)
	if err != nil || len(l) != 2 || l[0].Address != "sso@example.co.jp" {
		t.Errorf("ListAccounts = %+v, %v", l, err)
	}
	p, err := s.GetPOP(ctx, "taro@skydesk.jp")
	if err != nil || p.Access != store.POPDisabled || p.IncludeSpam || p.OnDelete != store.KeepOnServer {
		t.Errorf("default POP settings = %+v, %v (want disabled, exclude spam, keep)", p, err)
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

func TestPOPSettings(t *testing.T) {
	s := storetest.New(t)
	storetest.AddUser(t, s, "taro@skydesk.jp", "password-1")
	uids, err := s.Deliver(ctx, store.Delivery{Recipients: []string{"taro@skydesk.jp"}, Body: []byte("Subject: a\n\nbody\n")})
	if err != nil || len(uids) != 1 {
		t.Fatal(uids, err)
	}
	since := store.POPSince
	before := time.Now()
	p, err := s.SetPOP(ctx, "taro@skydesk.jp", store.POPUpdate{Access: &since})
	if err != nil || p.Access != store.POPSince || p.Since.Before(before) || time.Since(p.Since) > time.Minute {
		t.Fatalf("since-now: %+v %v", p, err)
	}
	inc, del := true, store.DeleteOnServer
	p, err = s.SetPOP(ctx, "taro@skydesk.jp", store.POPUpdate{IncludeSpam: &inc, OnDelete: &del})
	if err != nil || p.Access != store.POPSince || !p.IncludeSpam || p.OnDelete != store.DeleteOnServer {
		t.Fatalf("partial update changed access or failed: %+v %v", p, err)
	}
	bad := store.POPAccess("sometimes")
	if _, err := s.SetPOP(ctx, "taro@skydesk.jp", store.POPUpdate{Access: &bad}); !errors.Is(err, store.ErrBadSetting) {
		t.Errorf("bad access: %v", err)
	}
	if _, err := s.SetPOP(ctx, "nobody@skydesk.jp", store.POPUpdate{IncludeSpam: &inc}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown account: %v", err)
	}
}

func TestDeliverNormalisesAndIsAllOrNothing(t *testing.T) {
	s := storetest.New(t)
	storetest.AddUser(t, s, "a@skydesk.jp", "password-1")
	storetest.AddUser(t, s, "b@example.co.jp", "password-1")
	uids, err := s.Deliver(ctx, store.Delivery{Recipients: []string{"a@skydesk.jp", "B@example.co.jp"}, Body: []byte("Subject: x\n\nline\r\nbare cr\rend")})
	if err != nil || len(uids) != 2 || uids[0] == uids[1] {
		t.Fatalf("uids %v %v", uids, err)
	}
	// One unknown recipient: nothing is stored for anyone.
	_, err = s.Deliver(ctx, store.Delivery{Recipients: []string{"a@skydesk.jp", "ghost@skydesk.jp"}, Body: []byte("x")})
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown recipient: %v", err)
	}
	next, err := s.Deliver(ctx, store.Delivery{Recipients: []string{"a@skydesk.jp"}, Body: []byte("y")})
	if err != nil || next[0] <= uids[1] {
		t.Fatalf("UIDs not increasing: %v after %v", next, uids)
	}
	if got := string(store.NormalizeCRLF([]byte("a\nb\rc\r\nd"))); got != "a\r\nb\r\nc\r\nd" {
		t.Errorf("NormalizeCRLF = %q", got)
	}
	if _, err := store.ReadMessage(bytes.NewReader(make([]byte, 2000)), 1000); !errors.Is(err, store.ErrTooBig) {
		t.Errorf("oversized: %v", err)
	}
	ok, err := s.AccountExists(ctx, "A@SKYDESK.JP")
	if err != nil || !ok {
		t.Errorf("AccountExists = %v %v", ok, err)
	}
	if ok, _ := s.AccountExists(ctx, "<bad>"); ok {
		t.Error("malformed address exists")
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
