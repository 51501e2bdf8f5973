package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/skydesk/skydeskd/profiles"
	"github.com/skydesk/skydeskd/store"
)

// Opener returns an empty store (no hosted domain, no account) whose
// personal domain is PersonalDomain, with cheap password hashing, closed
// when t ends.
type Opener func(t *testing.T) store.Driver

// Run is the conformance suite every store driver passes: SQLite in
// store's own tests, PostgreSQL in its driver's. Each subtest opens its
// own store and checks what the role interfaces of store/driver.go
// promise, through those interfaces only.
func Run(t *testing.T, open Opener) {
	for _, tc := range []struct {
		name string
		f    func(*testing.T, store.Driver)
	}{
		{"Domains", testDomains},
		{"Accounts", testAccounts},
		{"CredentialGeneration", testCredentialGeneration},
		{"AppPasswords", testAppPasswords},
		{"TOTPStep", testTOTPStep},
		{"Logins", testLogins},
		{"POPSettings", testPOPSettings},
		{"MaildropListing", testMaildropListing},
		{"MaildropBodies", testMaildropBodies},
		{"Expunge", testExpunge},
		{"UIDsNeverReused", testUIDsNeverReused},
		{"Deliver", testDeliver},
		{"Accept", testAccept},
		{"AcceptBatch", testAcceptBatch},
		{"Queue", testQueue},
		{"QueueClaims", testQueueClaims},
		{"QueueClaimRace", testQueueClaimRace},
		{"Sessions", testSessions},
		{"ChunkedBodies", testChunkedBodies},
		{"Quota", testQuota},
		{"POPExtras", testPOPExtras},
		{"Forwarding", testForwarding},
		{"Leases", testLeases},
		{"ThrottleCounters", testThrottleCounters},
		{"ThrottleNodes", testThrottleNodes},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := open(t)
			if err := d.Ping(t.Context()); err != nil {
				t.Fatalf("Ping: %v", err)
			}
			tc.f(t, d)
		})
	}
}

// withHosted adds HostedDomain to an empty store.
func withHosted(t *testing.T, d store.Driver) {
	t.Helper()
	if _, err := d.AddDomain(t.Context(), HostedDomain); err != nil {
		t.Fatalf("adding %s: %v", HostedDomain, err)
	}
}

// user adds an account with a password and POP access "all mail".
func user(t *testing.T, d store.Driver, address string) store.Account {
	t.Helper()
	ctx := t.Context()
	a, err := d.AddAccount(ctx, store.NewAccount{Address: address, Password: "password-" + address})
	if err != nil {
		t.Fatalf("adding %s: %v", address, err)
	}
	all := store.POPAll
	if _, err := d.SetPOP(ctx, address, store.POPUpdate{Access: &all}); err != nil {
		t.Fatalf("POP settings of %s: %v", address, err)
	}
	return a
}

func testDomains(t *testing.T, d store.Driver) {
	ctx := t.Context()
	changed := 0
	d.OnDomainsChanged(func() { changed++ })
	before := d.Domains().Serial
	name, err := d.AddDomain(ctx, "例え.JP")
	if err != nil || name != "xn--r8jz45g.jp" {
		t.Fatalf("AddDomain = %q, %v; want the A-label form", name, err)
	}
	if d.Domains().Serial == before || !d.Domains().Has(name) || changed == 0 {
		t.Errorf("snapshot after AddDomain: serial %d (was %d), has=%v, hooks run %d", d.Domains().Serial, before, d.Domains().Has(name), changed)
	}
	if _, err := d.AddDomain(ctx, "xn--r8jz45g.jp"); !errors.Is(err, store.ErrExists) {
		t.Errorf("duplicate AddDomain: %v, want ErrExists", err)
	}
	if _, err := d.AddDomain(ctx, PersonalDomain); !errors.Is(err, store.ErrExists) {
		t.Errorf("personal domain as hosted: %v, want ErrExists", err)
	}
	if _, err := d.AddDomain(ctx, "not a domain"); !errors.Is(err, profiles.ErrInvalidAddress) {
		t.Errorf("malformed domain: %v", err)
	}
	withHosted(t, d)
	user(t, d, "info@例え.jp")
	if err := d.RemoveDomain(ctx, name); !errors.Is(err, store.ErrInUse) {
		t.Errorf("removing a domain with accounts: %v, want ErrInUse", err)
	}
	if err := d.RemoveDomain(ctx, "nothere.jp"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("removing an unknown domain: %v, want ErrNotFound", err)
	}
	if l, err := d.ListDomains(ctx); err != nil || !slices.Equal(l, []string{HostedDomain, name}) {
		t.Errorf("ListDomains = %v, %v", l, err)
	}
	if err := d.RemoveDomain(ctx, HostedDomain); err != nil || d.Domains().Has(HostedDomain) {
		t.Errorf("RemoveDomain = %v; still in snapshot: %v", err, d.Domains().Has(HostedDomain))
	}
	for dom, want := range map[string]bool{PersonalDomain: true, "XN--R8JZ45G.JP": true, HostedDomain: false, "sub." + PersonalDomain: false} {
		if got := d.IsLocalDomain(dom); got != want {
			t.Errorf("IsLocalDomain(%q) = %v, want %v", dom, got, want)
		}
	}
	if ok, err := d.IsHosted(ctx, name); !ok || err != nil {
		t.Errorf("IsHosted(%s) = %v, %v", name, ok, err)
	}
}

func testAccounts(t *testing.T, d store.Driver) {
	ctx := t.Context()
	withHosted(t, d)
	acc, err := d.AddAccount(ctx, store.NewAccount{Address: "Taro@SkyDesk.JP", Password: "s3cret-pass"})
	if err != nil || acc.ID == 0 || acc.Address != "taro@skydesk.jp" || acc.Kind != profiles.Personal || !acc.HasPassword {
		t.Fatalf("AddAccount = %+v, %v", acc, err)
	}
	for _, tc := range []struct {
		n    store.NewAccount
		want error
	}{
		{store.NewAccount{Address: "taro@skydesk.jp", Password: "another-pass"}, store.ErrExists},
		{store.NewAccount{Address: "x@gmail.com", Password: "another-pass"}, store.ErrUnknownDomain},
		{store.NewAccount{Address: "short@skydesk.jp", Password: "short"}, store.ErrBadPassword},
		{store.NewAccount{Address: "nopass@skydesk.jp"}, store.ErrBadPassword},
		{store.NewAccount{Address: "bare", Password: "another-pass"}, profiles.ErrInvalidAddress},
	} {
		if _, err := d.AddAccount(ctx, tc.n); !errors.Is(err, tc.want) {
			t.Errorf("AddAccount(%+v) = %v, want %v", tc.n, err, tc.want)
		}
	}
	fed, err := d.AddAccount(ctx, store.NewAccount{Address: "sso@" + HostedDomain, Federated: true})
	if err != nil || fed.HasPassword || !fed.Federated || fed.Kind != profiles.Organization {
		t.Fatalf("federated = %+v, %v", fed, err)
	}
	if err := d.SetTwoStep(ctx, "taro@skydesk.jp", true); err != nil {
		t.Fatal(err)
	}
	if got, err := d.GetAccount(ctx, "TARO@skydesk.jp"); err != nil || got.ID != acc.ID || !got.TwoStep {
		t.Errorf("GetAccount = %+v, %v", got, err)
	}
	if _, err := d.GetAccount(ctx, "nobody@skydesk.jp"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetAccount(unknown) = %v, want ErrNotFound", err)
	}
	if l, err := d.ListAccounts(ctx); err != nil || len(l) != 2 || l[0].Address != "sso@"+HostedDomain || l[1].Address != "taro@skydesk.jp" {
		t.Errorf("ListAccounts = %+v, %v", l, err)
	}
	if err := d.SetPassword(ctx, "taro@skydesk.jp", "x"); !errors.Is(err, store.ErrBadPassword) {
		t.Errorf("SetPassword(too short) = %v", err)
	}
	if err := d.SetPassword(ctx, "nobody@skydesk.jp", "long-enough-1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SetPassword(unknown) = %v", err)
	}
	if ok, err := d.AccountExists(ctx, "A@SKYDESK.JP"); ok || err != nil {
		t.Errorf("AccountExists(unknown) = %v, %v", ok, err)
	}
	if ok, err := d.AccountExists(ctx, "Taro@skydesk.jp"); !ok || err != nil {
		t.Errorf("AccountExists(taro) = %v, %v", ok, err)
	}
	if ok, err := d.AccountExists(ctx, "<bad>"); ok || err != nil {
		t.Errorf("AccountExists(malformed) = %v, %v", ok, err)
	}
}

// testCredentialGeneration: every credential change voids cached logins.
func testCredentialGeneration(t *testing.T, d store.Driver) {
	ctx := t.Context()
	acc := user(t, d, "taro@skydesk.jp")
	gen := func() int64 {
		t.Helper()
		r, err := d.Credentials(ctx, "taro@skydesk.jp")
		if err != nil {
			t.Fatal(err)
		}
		if r.Account.ID != acc.ID || r.PasswordHash == "" {
			t.Fatalf("Credentials = %+v", r)
		}
		return r.Generation
	}
	last := gen()
	for _, c := range []struct {
		name   string
		change func() error
	}{
		{"SetPassword", func() error { return d.SetPassword(ctx, "taro@skydesk.jp", "new-password-1") }},
		{"CreateAppPassword", func() error { _, err := d.CreateAppPassword(ctx, "taro@skydesk.jp", "phone"); return err }},
		{"RevokeAppPassword", func() error { return d.RevokeAppPassword(ctx, "taro@skydesk.jp", "phone") }},
		{"SetTwoStep", func() error { return d.SetTwoStep(ctx, "taro@skydesk.jp", true) }},
		{"EnrolTOTP", func() error { _, err := d.EnrolTOTP(ctx, "taro@skydesk.jp"); return err }},
		{"SetTwoStep off", func() error { return d.SetTwoStep(ctx, "taro@skydesk.jp", false) }},
	} {
		if err := c.change(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if g := gen(); g == last {
			t.Errorf("%s left the credential generation at %d", c.name, g)
		} else {
			last = g
		}
	}
	if _, err := d.Credentials(ctx, "nobody@skydesk.jp"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Credentials(unknown) = %v, want ErrNotFound", err)
	}
}

func testAppPasswords(t *testing.T, d store.Driver) {
	ctx := t.Context()
	acc := user(t, d, "taro@skydesk.jp")
	secret, err := d.CreateAppPassword(ctx, "taro@skydesk.jp", " phone ")
	if err != nil || len(secret) != 19 {
		t.Fatalf("CreateAppPassword = %q, %v; want 4 groups of 4 letters", secret, err)
	}
	if _, err := d.CreateAppPassword(ctx, "taro@skydesk.jp", "phone"); !errors.Is(err, store.ErrExists) {
		t.Errorf("duplicate name: %v", err)
	}
	if _, err := d.CreateAppPassword(ctx, "taro@skydesk.jp", ""); !errors.Is(err, store.ErrBadName) {
		t.Errorf("empty name: %v", err)
	}
	hashes, err := d.AppPasswordHashes(ctx, acc.ID)
	if err != nil || len(hashes) != 1 || hashes[0].Name != "phone" || hashes[0].Hash == "" || hashes[0].Hash == secret {
		t.Fatalf("AppPasswordHashes = %+v, %v", hashes, err)
	}
	at := time.Unix(1_800_000_000, 0)
	if err := d.TouchAppPassword(ctx, acc.ID, "phone", at); err != nil {
		t.Fatal(err)
	}
	l, err := d.ListAppPasswords(ctx, "taro@skydesk.jp")
	if err != nil || len(l) != 1 || l[0].Name != "phone" || !l[0].LastUsed.Equal(at) || l[0].Created.IsZero() {
		t.Errorf("ListAppPasswords = %+v, %v", l, err)
	}
	if err := d.RevokeAppPassword(ctx, "taro@skydesk.jp", "tablet"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("revoking an unknown name: %v", err)
	}
	if err := d.RevokeAppPassword(ctx, "taro@skydesk.jp", "phone"); err != nil {
		t.Fatal(err)
	}
	if l, _ := d.ListAppPasswords(ctx, "taro@skydesk.jp"); len(l) != 0 {
		t.Errorf("after revoking: %+v", l)
	}
}

// testTOTPStep: a time step is accepted once, only for the current secret.
func testTOTPStep(t *testing.T, d store.Driver) {
	ctx := t.Context()
	acc := user(t, d, "taro@skydesk.jp")
	key, err := d.EnrolTOTP(ctx, "taro@skydesk.jp")
	if err != nil || key.Secret == "" || key.URL == "" {
		t.Fatalf("EnrolTOTP = %+v, %v", key, err)
	}
	r, err := d.Credentials(ctx, "taro@skydesk.jp")
	if err != nil || !r.Account.TwoStep || r.TOTPSecret != key.Secret || r.TOTPLastStep != -1 {
		t.Fatalf("after EnrolTOTP: %+v, %v", r, err)
	}
	for _, tc := range []struct {
		secret string
		step   int64
		want   bool
	}{{key.Secret, 100, true}, {key.Secret, 100, false}, {key.Secret, 99, false}, {"OTHERSECRET", 101, false}, {key.Secret, 101, true}} {
		if ok, err := d.UseTOTPStep(ctx, acc.ID, tc.secret, tc.step); err != nil || ok != tc.want {
			t.Errorf("UseTOTPStep(step %d) = %v, %v; want %v", tc.step, ok, err, tc.want)
		}
	}
	if r, _ := d.Credentials(ctx, "taro@skydesk.jp"); r.TOTPLastStep != 101 {
		t.Errorf("TOTPLastStep = %d, want 101", r.TOTPLastStep)
	}
	if err := d.SetTwoStep(ctx, "taro@skydesk.jp", false); err != nil {
		t.Fatal(err)
	}
	if r, _ := d.Credentials(ctx, "taro@skydesk.jp"); r.Account.TwoStep || r.TOTPSecret != "" || r.TOTPLastStep != -1 {
		t.Errorf("two-step off kept %+v", r)
	}
	if err := d.ConfirmTOTP(ctx, "taro@skydesk.jp", key.Secret, "000000x"); !errors.Is(err, store.ErrBadCode) {
		t.Errorf("ConfirmTOTP with a malformed code = %v, want ErrBadCode", err)
	}
	if k, err := d.NewTOTPKey("taro@skydesk.jp"); err != nil || k.Secret == "" || k.Secret == key.Secret {
		t.Errorf("NewTOTPKey = %+v, %v", k, err)
	}
}
