package migrate

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skydesk/skydeskd/store"
	"github.com/skydesk/skydeskd/store/storetest"
)

// fixture is a SQLite store filled through the store API with a row in
// every table a node writes, and what the test needs to check the copy.
type fixture struct {
	path     string // the database file
	appPass  string // hanako's app password (two-step is on)
	totp     string // hanako's authenticator secret
	deleted  int64  // the highest message id, deleted before the move
	bigSize  int64  // octets of the chunked message
	certKey  string
	certData []byte
}

const (
	taro    = "taro@skydesk.jp"      // personal, password, quota, forwarding, session
	hanako  = "hanako@example.co.jp" // organization, two-step, app password
	fed     = "fed@example.co.jp"    // federated: no mail password
	taroPW  = "taro-password-1"
	hanakPW = "hanako-password-1"
)

// newFixture builds the source store in a temporary directory and closes
// it, as an operator stops the node before migrating.
func newFixture(t *testing.T) fixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	s := storetest.NewIn(t, dir)
	f := fixture{path: filepath.Join(dir, store.FileName)}
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	_, err := s.AddDomain(ctx, "second.example")
	must("domain", err)
	ta := storetest.AddUser(t, s, taro, taroPW)
	ha := storetest.AddUser(t, s, hanako, hanakPW)
	_, err = s.AddAccount(ctx, store.NewAccount{Address: fed, Federated: true})
	must("federated account", err)
	f.appPass, err = s.CreateAppPassword(ctx, hanako, "phone")
	must("app password", err)
	must("app password use", s.TouchAppPassword(ctx, ha.ID, "phone", time.Unix(1_700_000_000, 0)))
	key, err := s.EnrolTOTP(ctx, hanako)
	must("two-step", err)
	f.totp = key.Secret
	must("quota", s.SetQuota(ctx, taro, 50<<20))
	day, err := store.ParsePOPDay("2026-01-15", time.UTC, time.Now())
	must("day", err)
	since, spam, del := store.POPSince, true, store.DeleteOnServer
	_, err = s.SetPOP(ctx, hanako, store.POPUpdate{Access: &since, Day: &day, IncludeSpam: &spam, OnDelete: &del})
	must("pop settings", err)

	// Mail: small ones, a spam one, one of several chunks (a partial last
	// chunk), and a last one deleted so that SQLite's sequence is ahead
	// of every id present.
	recv := time.Date(2026, 2, 1, 9, 0, 0, 0, time.UTC)
	for i := range 4 {
		_, err := s.Deliver(ctx, store.Delivery{Recipients: []string{taro, hanako}, Spam: i == 2, Received: recv.Add(time.Duration(i) * time.Hour),
			Body: fmt.Appendf(nil, "Subject: message %d\n\nbody %d\n", i, i)})
		must("deliver", err)
	}
	big := bytes.Repeat([]byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd\r\n"), 3*store.ChunkSize/64+5)
	f.bigSize = int64(len(big))
	_, err = s.Deliver(ctx, store.Delivery{Recipients: []string{taro}, Stream: bytes.NewReader(big), Received: recv.Add(5 * time.Hour)})
	must("deliver big", err)
	ids, err := s.Deliver(ctx, store.Delivery{Recipients: []string{hanako}, Body: []byte("Subject: gone\n\nx\n"), Received: recv.Add(6 * time.Hour)})
	must("deliver last", err)
	f.deleted = ids[0]
	must("expunge", s.Expunge(ctx, ha.ID, ids))

	// The relay queue, a settings session, a forwarding, the last POP
	// access, onboarding, certificates and a lease and lock (not copied).
	_, _, err = s.Accept(ctx, store.Accepted{Body: []byte("Subject: out\n\nrelay me\n"), From: taro, Remote: []string{"someone@elsewhere.example"}})
	must("accept", err)
	now := time.Now().Truncate(time.Second)
	must("session", s.CreateSession(ctx, store.WebSession{Key: store.SessionKey{1, 2, 3}, AccountID: ta.ID, Generation: 1,
		Created: now, Seen: now, AuthAt: now}, store.SessionLimits{PerAccount: 5, Total: 100}))
	_, h := store.NewForwardToken()
	_, err = s.SetForward(ctx, taro, store.ForwardUpdate{Target: "taro@elsewhere.example", Keep: true, TokenHash: h, Expires: now.Add(time.Hour)})
	must("forward", err)
	must("pop session", s.RecordPOPSession(ctx, ta.ID, store.POPSession{At: now, Remote: "192.0.2.7", Downloaded: 3}))
	_, err = s.RecordDiscovery(ctx, taro, "thunderbird", now.Add(-time.Minute))
	must("discovery", err)
	_, err = s.RecordLogin(ctx, taro, now)
	must("login record", err)
	f.certKey, f.certData = "certificates/acme/autoconfig.example.co.jp/autoconfig.example.co.jp.crt", []byte("-----BEGIN CERTIFICATE-----\nMIIB\n")
	must("cert", s.Certs().Put(ctx, f.certKey, f.certData))
	_, err = s.Certs().TryLock(ctx, "issue_cert_autoconfig.example.co.jp", "node-1", time.Minute)
	must("cert lock", err)
	_, err = s.AcquireLease(ctx, ta.ID, "old-node", time.Minute)
	must("lease", err)
	must("close", s.Close())
	return f
}

// view reads everything a node shows of a store through the API, as text
// both drivers must render alike.
func view(t *testing.T, d store.Driver, certs interface {
	Get(ctx context.Context, key string) ([]byte, error)
}, certKey string) string {
	t.Helper()
	ctx := context.Background()
	var b strings.Builder
	p := func(what string, v any, err error) {
		t.Helper()
		switch {
		case errors.Is(err, store.ErrNotFound):
			v = "not found"
		case err != nil:
			t.Fatalf("%s: %v", what, err)
		}
		fmt.Fprintf(&b, "%s: %+v\n", what, v)
	}
	doms, err := d.ListDomains(ctx)
	p("domains", doms, err)
	fmt.Fprintf(&b, "domains serial: %d\n", d.Domains().Serial)
	accts, err := d.ListAccounts(ctx)
	p("accounts", accts, err)
	for _, a := range accts {
		addr := a.Address
		cr, err := d.Credentials(ctx, addr)
		p(addr+" credentials", cr, err)
		apps, err := d.ListAppPasswords(ctx, addr)
		p(addr+" app passwords", apps, err)
		pop, err := d.GetPOP(ctx, addr)
		p(addr+" pop", pop, err)
		last, ok, err := d.LastPOPSession(ctx, addr)
		p(addr+" last pop", fmt.Sprint(last, ok), err)
		fw, err := d.GetForward(ctx, addr)
		p(addr+" forward", fw, err)
		u, err := d.MailboxUsage(ctx, addr)
		p(addr+" usage", u, err)
		all := pop
		all.Access, all.IncludeSpam = store.POPAll, true
		md, err := d.ListMaildrop(ctx, a.ID, all)
		p(addr+" maildrop", md, err)
		for _, m := range md {
			body, err := d.AppendBody(ctx, a.ID, m.ID, 0, m.Size, nil)
			p(fmt.Sprintf("%s body %d", addr, m.ID), fmt.Sprintf("%d octets %x", len(body), hashOf(body)), err)
		}
	}
	q, err := d.DueQueue(ctx, time.Now().Add(24*time.Hour), 10)
	p("queue", q, err)
	ws, err := d.GetSession(ctx, store.SessionKey{1, 2, 3})
	p("session", ws, err)
	now := time.Now()
	ob, err := d.OnboardingStats(ctx, now.Add(-time.Hour), now)
	p("onboarding", ob, err)
	cert, err := certs.Get(ctx, certKey)
	p("cert", string(cert), err)
	return b.String()
}

// login signs in through the credential rules over d.
func login(t *testing.T, d store.Driver, svc store.Service, user, pass, otp string) error {
	t.Helper()
	a, err := store.NewAuthenticator(d, store.AuthOptions{HashParams: store.TestHashParams})
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.Login(context.Background(), store.LoginRequest{Username: user, Password: pass, OTP: otp,
		Remote: netip.MustParseAddr("192.0.2.1"), Service: svc})
	return err
}

func hashOf(b []byte) []byte { h := sha256.Sum256(b); return h[:8] }
