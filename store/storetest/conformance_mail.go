package storetest

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/skydesk/skydeskd/store"
)

// testLogins: the credential rules (store.Authenticator) over the driver.
func testLogins(t *testing.T, d store.Driver) {
	ctx := t.Context()
	withHosted(t, d)
	user(t, d, "taro@skydesk.jp")
	user(t, d, "jiro@"+HostedDomain)
	if err := d.SetTwoStep(ctx, "jiro@"+HostedDomain, true); err != nil {
		t.Fatal(err)
	}
	app, err := d.CreateAppPassword(ctx, "jiro@"+HostedDomain, "mpop")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.AddAccount(ctx, store.NewAccount{Address: "sso@" + HostedDomain, Federated: true}); err != nil {
		t.Fatal(err)
	}
	lenient := store.ThrottlePolicy{FreeFailures: 100, LockAfter: 200, LockFor: time.Minute, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond, Window: time.Hour}
	a, err := store.NewAuthenticator(d, store.AuthOptions{Policy: lenient, HashParams: store.TestHashParams})
	if err != nil {
		t.Fatal(err)
	}
	ip := netip.MustParseAddr("192.0.2.1")
	login := func(u, pw, otp string, svc store.Service) (store.Login, store.AuthReason, error) {
		l, err := a.Login(ctx, store.LoginRequest{Username: u, Password: pw, OTP: otp, Remote: ip, Service: svc})
		var ae *store.AuthError
		if errors.As(err, &ae) {
			return l, ae.Reason, nil
		}
		return l, 0, err
	}
	for _, tc := range []struct {
		user, pw string
		want     store.AuthReason
		app      string
	}{
		{"Taro@SkyDesk.JP", "password-taro@skydesk.jp", 0, ""},
		{"taro@skydesk.jp", "password-taro@skydesk.jp", 0, ""}, // from the cache
		{"taro@skydesk.jp", "wrong-password", store.AuthBadCredentials, ""},
		{"nobody@skydesk.jp", "wrong-password", store.AuthBadCredentials, ""},
		{"taro", "password-taro@skydesk.jp", store.AuthNotFullAddress, ""},
		{"jiro@" + HostedDomain, "password-jiro@" + HostedDomain, store.AuthNeedAppPassword, ""},
		{"jiro@" + HostedDomain, app, 0, "mpop"},
		{"jiro@" + HostedDomain, strings.ReplaceAll(app, " ", ""), 0, "mpop"},
		{"sso@" + HostedDomain, "anything-at-all", store.AuthNoPassword, ""},
	} {
		l, r, err := login(tc.user, tc.pw, "", store.ServicePOP3)
		if err != nil || r != tc.want || (r == 0 && (l.Account.Address != strings.ToLower(tc.user) || l.AppPassword != tc.app)) {
			t.Errorf("Login(%s, %s) = %+v, reason %d, %v; want reason %d, app %q", tc.user, tc.pw, l, r, err, tc.want, tc.app)
		}
	}
	if err := d.SetPassword(ctx, "taro@skydesk.jp", "changed-password"); err != nil {
		t.Fatal(err)
	}
	if _, r, _ := login("taro@skydesk.jp", "password-taro@skydesk.jp", "", store.ServiceSMTP); r != store.AuthBadCredentials {
		t.Errorf("the old password still works after SetPassword (reason %d)", r)
	}
	if err := d.RevokeAppPassword(ctx, "jiro@"+HostedDomain, "mpop"); err != nil {
		t.Fatal(err)
	}
	if _, r, _ := login("jiro@"+HostedDomain, app, "", store.ServicePOP3); r != store.AuthBadCredentials {
		t.Errorf("a revoked app password still works (reason %d)", r)
	}
	// The settings page: account password and a current code, once.
	key, err := d.EnrolTOTP(ctx, "jiro@"+HostedDomain)
	if err != nil {
		t.Fatal(err)
	}
	code, err := totp.GenerateCode(key.Secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pw := "password-jiro@" + HostedDomain
	if _, r, err := login("jiro@"+HostedDomain, pw, code, store.ServiceWeb); r != 0 || err != nil {
		t.Errorf("web sign-in with a current code: reason %d, %v", r, err)
	}
	if _, r, _ := login("jiro@"+HostedDomain, pw, code, store.ServiceWeb); r != store.AuthBadCredentials {
		t.Errorf("a code replayed: reason %d, want bad credentials", r)
	}
}

func testPOPSettings(t *testing.T, d store.Driver) {
	ctx := t.Context()
	if _, err := d.AddAccount(ctx, store.NewAccount{Address: "taro@skydesk.jp", Password: "password-1"}); err != nil {
		t.Fatal(err)
	}
	p, err := d.GetPOP(ctx, "taro@skydesk.jp")
	if err != nil || p.Access != store.POPDisabled || p.IncludeSpam || p.OnDelete != store.KeepOnServer {
		t.Errorf("default POP settings = %+v, %v (want disabled, exclude spam, keep)", p, err)
	}
	since := store.POPSince
	before := time.Now()
	p, err = d.SetPOP(ctx, "taro@skydesk.jp", store.POPUpdate{Access: &since})
	if err != nil || p.Access != store.POPSince || p.Since.Before(before.Add(-time.Second)) || time.Since(p.Since) > time.Minute {
		t.Fatalf("since-now: %+v %v", p, err)
	}
	inc, del := true, store.DeleteOnServer
	p, err = d.SetPOP(ctx, "taro@skydesk.jp", store.POPUpdate{IncludeSpam: &inc, OnDelete: &del})
	if err != nil || p.Access != store.POPSince || !p.IncludeSpam || p.OnDelete != store.DeleteOnServer {
		t.Fatalf("partial update changed access or failed: %+v %v", p, err)
	}
	if got, err := d.GetPOP(ctx, "TARO@skydesk.jp"); err != nil || got != p {
		t.Errorf("GetPOP = %+v, %v; want %+v", got, err, p)
	}
	bad := store.POPAccess("sometimes")
	if _, err := d.SetPOP(ctx, "taro@skydesk.jp", store.POPUpdate{Access: &bad}); !errors.Is(err, store.ErrBadSetting) {
		t.Errorf("bad access: %v", err)
	}
	if _, err := d.SetPOP(ctx, "nobody@skydesk.jp", store.POPUpdate{IncludeSpam: &inc}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown account: %v", err)
	}
}

// deliver stores body for rcpt and returns its UID.
func deliver(t *testing.T, d store.Driver, rcpt string, spam bool, body string) int64 {
	t.Helper()
	uids, err := d.Deliver(t.Context(), store.Delivery{Recipients: []string{rcpt}, Body: []byte(body), Spam: spam})
	if err != nil || len(uids) != 1 {
		t.Fatalf("Deliver = %v, %v", uids, err)
	}
	return uids[0]
}

// listing is the account's POP queue under its current settings.
func listing(t *testing.T, d store.Driver, acc store.Account) []int64 {
	t.Helper()
	st, err := d.MaildropSettings(t.Context(), acc.ID)
	if err != nil {
		t.Fatal(err)
	}
	l, err := d.ListMaildrop(t.Context(), acc.ID, st)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]int64, len(l))
	for i, e := range l {
		ids[i] = e.ID
	}
	return ids
}

func setPOP(t *testing.T, d store.Driver, addr string, u store.POPUpdate) {
	t.Helper()
	if _, err := d.SetPOP(t.Context(), addr, u); err != nil {
		t.Fatal(err)
	}
}

func testMaildropListing(t *testing.T, d store.Driver) {
	acc := user(t, d, "taro@skydesk.jp")
	other := user(t, d, "hanako@skydesk.jp")
	ham := deliver(t, d, "taro@skydesk.jp", false, "Subject: ham\r\n\r\nx\r\n")
	spam := deliver(t, d, "taro@skydesk.jp", true, "Subject: spam\r\n\r\nx\r\n")
	deliver(t, d, "hanako@skydesk.jp", false, "Subject: not taro's\r\n\r\nx\r\n")
	if got := listing(t, d, acc); !slices.Equal(got, []int64{ham}) {
		t.Errorf("all mail, no spam: %v, want [%d]", got, ham)
	}
	yes := true
	setPOP(t, d, "taro@skydesk.jp", store.POPUpdate{IncludeSpam: &yes})
	if got := listing(t, d, acc); !slices.Equal(got, []int64{ham, spam}) {
		t.Errorf("all mail with spam: %v, want [%d %d]", got, ham, spam)
	}
	since := store.POPSince
	setPOP(t, d, "taro@skydesk.jp", store.POPUpdate{Access: &since})
	if got := listing(t, d, acc); len(got) != 0 {
		t.Errorf("since now, before new mail: %v", got)
	}
	later := deliver(t, d, "taro@skydesk.jp", false, "Subject: later\r\n\r\nx\r\n")
	if got := listing(t, d, acc); !slices.Equal(got, []int64{later}) {
		t.Errorf("since now: %v, want [%d]", got, later)
	}
	all := store.POPAll
	setPOP(t, d, "taro@skydesk.jp", store.POPUpdate{Access: &all})
	if got := listing(t, d, acc); !slices.Equal(got, []int64{ham, spam, later}) {
		t.Errorf("all mail chosen again: %v, want every message", got)
	}
	if got := listing(t, d, other); len(got) != 1 {
		t.Errorf("hanako's listing %v", got)
	}
}

func testMaildropBodies(t *testing.T, d store.Driver) {
	ctx := t.Context()
	acc := user(t, d, "taro@skydesk.jp")
	other := user(t, d, "hanako@skydesk.jp")
	id := deliver(t, d, "taro@skydesk.jp", false, "Subject: one\n\nbare LF\rbare CR\n")
	const want = "Subject: one\r\n\r\nbare LF\r\nbare CR\r\n"
	l, err := d.ListMaildrop(ctx, acc.ID, store.POPSettings{Access: store.POPAll})
	if err != nil || len(l) != 1 || l[0].ID != id || l[0].Size != int64(len(want)) {
		t.Fatalf("ListMaildrop = %+v, %v; want size %d (CRLF octets)", l, err, len(want))
	}
	b, err := d.AppendBody(ctx, acc.ID, id, 0, l[0].Size, []byte("prefix:"))
	if err != nil || string(b) != "prefix:"+want {
		t.Errorf("AppendBody(whole) = %q, %v", b, err)
	}
	if b, err := d.AppendBody(ctx, acc.ID, id, 9, 5, nil); err != nil || string(b) != want[9:14] {
		t.Errorf("AppendBody(9, 5) = %q, %v; want %q", b, err, want[9:14])
	}
	if b, err := d.AppendBody(ctx, acc.ID, id, int64(len(want)), 10, nil); err != nil || len(b) != 0 {
		t.Errorf("AppendBody past the end = %q, %v", b, err)
	}
	if _, err := d.AppendBody(ctx, other.ID, id, 0, 10, nil); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("another account's message: %v, want ErrNotFound", err)
	}
	if _, err := d.AppendBody(ctx, acc.ID, id+1000, 0, 10, nil); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown message: %v, want ErrNotFound", err)
	}
}

func testExpunge(t *testing.T, d store.Driver) {
	ctx := t.Context()
	acc := user(t, d, "taro@skydesk.jp")
	other := user(t, d, "hanako@skydesk.jp")
	a := deliver(t, d, "taro@skydesk.jp", false, "Subject: a\r\n\r\nx\r\n")
	b := deliver(t, d, "taro@skydesk.jp", false, "Subject: b\r\n\r\nx\r\n")
	h := deliver(t, d, "hanako@skydesk.jp", false, "Subject: h\r\n\r\nx\r\n")
	// keep: out of the POP queue, still in the mailbox ("all mail" again
	// brings it back); another account's id is never touched.
	if err := d.Expunge(ctx, acc.ID, []int64{a, h}); err != nil {
		t.Fatal(err)
	}
	if got := listing(t, d, acc); !slices.Equal(got, []int64{b}) {
		t.Errorf("after keep-expunge: %v, want [%d]", got, b)
	}
	if got := listing(t, d, other); !slices.Equal(got, []int64{h}) {
		t.Errorf("hanako's message expunged by taro's session: %v", got)
	}
	all := store.POPAll
	setPOP(t, d, "taro@skydesk.jp", store.POPUpdate{Access: &all})
	if got := listing(t, d, acc); !slices.Equal(got, []int64{a, b}) {
		t.Errorf("kept message not re-queued: %v", got)
	}
	// delete: gone for good.
	del := store.DeleteOnServer
	setPOP(t, d, "taro@skydesk.jp", store.POPUpdate{OnDelete: &del})
	if err := d.Expunge(ctx, acc.ID, []int64{a}); err != nil {
		t.Fatal(err)
	}
	setPOP(t, d, "taro@skydesk.jp", store.POPUpdate{Access: &all})
	if got := listing(t, d, acc); !slices.Equal(got, []int64{b}) {
		t.Errorf("after delete-expunge: %v, want [%d]", got, b)
	}
	if _, err := d.AppendBody(ctx, acc.ID, a, 0, 1, nil); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleted body still readable: %v", err)
	}
	// Expunging what is already gone is harmless (two sessions, one QUIT each).
	if err := d.Expunge(ctx, acc.ID, []int64{a}); err != nil {
		t.Errorf("expunging a deleted message: %v", err)
	}
}

// testUIDsNeverReused: UIDs increase and a deleted one is never given out
// again, even when it was the highest (RFC 1939 §7 UIDL).
func testUIDsNeverReused(t *testing.T, d store.Driver) {
	ctx := t.Context()
	acc := user(t, d, "taro@skydesk.jp")
	del := store.DeleteOnServer
	setPOP(t, d, "taro@skydesk.jp", store.POPUpdate{OnDelete: &del})
	seen := map[int64]bool{}
	var last int64
	for i := range 3 {
		id := deliver(t, d, "taro@skydesk.jp", false, "Subject: n\r\n\r\nx\r\n")
		if seen[id] || id <= last {
			t.Fatalf("message %d got UID %d after %d (seen: %v)", i, id, last, seen[id])
		}
		seen[id], last = true, id
		if err := d.Expunge(ctx, acc.ID, []int64{id}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.Deliver(ctx, store.Delivery{Recipients: []string{"taro@skydesk.jp", "ghost@skydesk.jp"}, Body: []byte("x")}); err == nil {
		t.Fatal("delivery to a missing mailbox succeeded")
	}
	if id := deliver(t, d, "taro@skydesk.jp", false, "x"); seen[id] || id <= last {
		t.Errorf("UID %d after %d", id, last)
	}
}
