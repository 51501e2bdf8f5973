package popstore_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skydesk/skydeskd/popd"
	"github.com/skydesk/skydeskd/popstore"
	"github.com/skydesk/skydeskd/store"
	"github.com/skydesk/skydeskd/store/storetest"
)

var ctx = context.Background()

const settingsURL = "https://autoconfig.skydesk.jp/settings"

// popFixture is the POP3 backend over a store (SQLite, or PostgreSQL under storetest.DatabaseEnv) behind a real
// popd.Server on 127.0.0.1:0 with implicit TLS.
type popFixture struct {
	s      store.Driver
	md     *popstore.Backend
	addr   string
	client *tls.Config
}

var fastThrottle = store.ThrottlePolicy{FreeFailures: 2, LockAfter: 4, LockFor: time.Hour,
	BaseDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond, Window: time.Hour}

// lenient lets the refusal tests fail many logins from 127.0.0.1 without
// being locked out.
var lenient = store.ThrottlePolicy{FreeFailures: 1000, LockAfter: 2000, LockFor: time.Hour,
	BaseDelay: time.Millisecond, MaxDelay: time.Millisecond, Window: time.Hour}

func newPOPFixture(t testing.TB) *popFixture {
	t.Helper()
	return newPOPFixtureOn(t, storetest.NewDriver(t), store.AuthOptions{Policy: lenient})
}

// newPOPFixtureOn starts another server on s: a second skydeskd process
// sharing the database has its own Backend.
func newPOPFixtureOn(t testing.TB, s store.Driver, o store.AuthOptions) *popFixture {
	t.Helper()
	f := newPOPNode(t, s, o, popstore.Options{})
	f.s = s
	return f
}

// newPOPNode starts a POP3 server over any driver d, with po's Leases and
// LeaseTTL (zero: d and the default).
func newPOPNode(t testing.TB, d store.Driver, o store.AuthOptions, po popstore.Options) *popFixture {
	t.Helper()
	o.SettingsURL, o.HashParams = settingsURL, store.TestHashParams
	auth, err := store.NewAuthenticator(d, o)
	if err != nil {
		t.Fatal(err)
	}
	po.Auth, po.Store, po.SettingsURL = auth, d, settingsURL
	md, err := popstore.New(po)
	if err != nil {
		t.Fatal(err)
	}
	cert := storetest.Certificate(t)
	srv := popd.NewServer(md, popd.Options{Hostname: "pop.skydesk.jp", TLSConfig: cert.ServerTLS()})
	l, err := tls.Listen("tcp", "127.0.0.1:0", cert.ServerTLS())
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close() })
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	return &popFixture{md: md, addr: l.Addr().String(), client: &tls.Config{RootCAs: pool, ServerName: "pop.skydesk.jp"}}
}

type popClient struct {
	t    testing.TB
	nc   net.Conn
	conn *textproto.Conn
}

func (f *popFixture) dial(t testing.TB) *popClient {
	t.Helper()
	nc, err := tls.Dial("tcp", f.addr, f.client)
	if err != nil {
		t.Fatal(err)
	}
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
	c := &popClient{t: t, nc: nc, conn: textproto.NewConn(nc)}
	t.Cleanup(func() { c.conn.Close() })
	c.expect("+OK")
	return c
}

func (c *popClient) expect(prefix string) string {
	c.t.Helper()
	l, err := c.conn.ReadLine()
	if err != nil {
		c.t.Fatalf("reading: %v", err)
	}
	if !strings.HasPrefix(l, prefix) {
		c.t.Fatalf("got %q, want prefix %q", l, prefix)
	}
	return l
}

func (c *popClient) cmd(line, prefix string) string {
	c.t.Helper()
	if err := c.conn.PrintfLine("%s", line); err != nil {
		c.t.Fatal(err)
	}
	return c.expect(prefix)
}

// dot reads a multi-line body (dot-unstuffed, LF line endings).
func (c *popClient) dot() string {
	c.t.Helper()
	b, err := c.conn.ReadDotBytes()
	if err != nil {
		c.t.Fatal(err)
	}
	return string(b)
}

func (c *popClient) login(user, pass string) string {
	c.t.Helper()
	c.cmd("USER "+user, "+OK")
	return c.cmd("PASS "+pass, "+OK logged in")
}

// uidl returns the UIDL listing.
func (c *popClient) uidl() []string {
	c.t.Helper()
	c.cmd("UIDL", "+OK")
	var uids []string
	for _, l := range strings.Split(strings.TrimSpace(c.dot()), "\n") {
		if l == "" {
			continue
		}
		_, uid, _ := strings.Cut(l, " ")
		uids = append(uids, uid)
	}
	return uids
}

func (c *popClient) quit(prefix string) {
	c.t.Helper()
	c.cmd("QUIT", prefix)
}

// listing logs in, returns the UIDs and quits without deleting.
func (f *popFixture) listing(t *testing.T, user, pass string) []string {
	t.Helper()
	c := f.dial(t)
	c.login(user, pass)
	uids := c.uidl()
	c.quit("+OK bye")
	return uids
}

func deliver(t testing.TB, s store.Driver, rcpt string, spam bool, body string) string {
	t.Helper()
	uids, err := s.Deliver(ctx, store.Delivery{Recipients: []string{rcpt}, Body: []byte(body), Spam: spam})
	if err != nil {
		t.Fatal(err)
	}
	return strconv.FormatInt(uids[0], 10)
}

func setPOP(t testing.TB, s store.Driver, addr string, access store.POPAccess, spam bool, onDelete store.OnDelete) {
	t.Helper()
	u := store.POPUpdate{IncludeSpam: &spam, OnDelete: &onDelete}
	if access != "" {
		u.Access = &access
	}
	if _, err := s.SetPOP(ctx, addr, u); err != nil {
		t.Fatal(err)
	}
}

func sorted(s ...[]string) []string {
	var out []string
	for _, x := range s {
		out = append(out, x...)
	}
	slices.SortFunc(out, func(a, b string) int {
		x, _ := strconv.Atoi(a)
		y, _ := strconv.Atoi(b)
		return x - y
	})
	return out
}

// Every combination of the three POP settings (DESIGN.md §2): which
// messages are listed, what DELE+QUIT does, and what "all mail" chosen
// again brings back.
func TestMaildrop_settingsCombinations(t *testing.T) {
	f := newPOPFixture(t)
	i := 0
	for _, access := range []store.POPAccess{store.POPAll, store.POPSince} {
		for _, spam := range []bool{false, true} {
			for _, onDelete := range []store.OnDelete{store.KeepOnServer, store.DeleteOnServer} {
				name := fmt.Sprintf("%s/spam=%v/%s", access, spam, onDelete)
				t.Run(name, func(t *testing.T) {
					i++
					user := fmt.Sprintf("user%d@skydesk.jp", i)
					storetest.AddUser(t, f.s, user, "password-"+user)
					pw := "password-" + user
					before := []string{deliver(t, f.s, user, false, "Subject: ham before\r\n\r\nx\r\n")}
					spamBefore := []string{deliver(t, f.s, user, true, "Subject: spam before\r\n\r\nx\r\n")}
					setPOP(t, f.s, user, access, spam, onDelete)
					after := []string{deliver(t, f.s, user, false, "Subject: ham after\n\n.dot\n")}
					spamAfter := []string{deliver(t, f.s, user, true, "Subject: spam after\r\n\r\nx\r\n")}

					var want []string
					switch {
					case access == store.POPAll && spam:
						want = sorted(before, spamBefore, after, spamAfter)
					case access == store.POPAll:
						want = sorted(before, after)
					case spam:
						want = sorted(after, spamAfter)
					default:
						want = sorted(after)
					}
					// Listed twice: QUIT without DELE changes nothing.
					for range 2 {
						if got := f.listing(t, user, pw); !slices.Equal(got, want) {
							t.Fatalf("listed %v, want %v", got, want)
						}
					}
					// DELE everything listed, QUIT.
					c := f.dial(t)
					c.login(user, pw)
					for n := range want {
						c.cmd(fmt.Sprintf("DELE %d", n+1), "+OK")
					}
					c.quit(fmt.Sprintf("+OK bye, %d messages deleted", len(want)))
					if got := f.listing(t, user, pw); len(got) != 0 {
						t.Fatalf("after DELE+QUIT the queue still has %v", got)
					}
					// "All mail" chosen again re-queues what is still in the
					// mailbox: with keep, the deleted messages; with delete,
					// only what was never listed.
					setPOP(t, f.s, user, store.POPAll, true, onDelete)
					everything := sorted(before, spamBefore, after, spamAfter)
					var back []string
					for _, u := range everything {
						if onDelete == store.KeepOnServer || !slices.Contains(want, u) {
							back = append(back, u)
						}
					}
					if got := f.listing(t, user, pw); !slices.Equal(got, back) {
						t.Fatalf("after re-choosing all mail: %v, want %v", got, back)
					}
				})
			}
		}
	}
}

func TestMaildrop_retrSizesAndUIDsAreStable(t *testing.T) {
	f := newPOPFixture(t)
	storetest.AddUser(t, f.s, "taro@skydesk.jp", "right-password")
	u1 := deliver(t, f.s, "taro@skydesk.jp", false, "Subject: one\n\n.starts with a dot\nbare LF\n")
	big := "Subject: big\r\n\r\n" + strings.Repeat(strings.Repeat("z", 998)+"\r\n", 2600) // > 2 chunks of 1 MiB
	u2 := deliver(t, f.s, "taro@skydesk.jp", false, big)

	c := f.dial(t)
	c.login("taro@skydesk.jp", "right-password")
	// Sizes are the CRLF octets sent (RFC 1939 §11), whatever was delivered.
	c.cmd("LIST", "+OK 2 messages")
	want := fmt.Sprintf("1 %d\n2 %d\n", len("Subject: one\r\n\r\n.starts with a dot\r\nbare LF\r\n"), len(big))
	if got := c.dot(); got != want {
		t.Errorf("LIST = %q, want %q", got, want)
	}
	c.cmd("RETR 1", "+OK 45 octets")
	if got := c.dot(); got != "Subject: one\n\n.starts with a dot\nbare LF\n" {
		t.Errorf("RETR 1 = %q", got)
	}
	c.cmd("RETR 2", fmt.Sprintf("+OK %d octets", len(big)))
	if got := c.dot(); got != strings.ReplaceAll(big, "\r\n", "\n") {
		t.Errorf("RETR 2: %d octets, want %d", len(got), len(big))
	}
	c.cmd("TOP 2 1", "+OK")
	if got := c.dot(); got != "Subject: big\n\n"+strings.Repeat("z", 998)+"\n" {
		t.Errorf("TOP 2 1 = %.60q…", got)
	}
	if got := c.uidl(); !slices.Equal(got, []string{u1, u2}) {
		t.Errorf("UIDL %v, want %v", got, []string{u1, u2})
	}
	c.cmd("DELE 1", "+OK")
	c.quit("+OK")

	// The same UID in the next session; a new message never reuses one.
	if _, err := f.s.SetPOP(ctx, "taro@skydesk.jp", store.POPUpdate{OnDelete: ptr(store.DeleteOnServer)}); err != nil {
		t.Fatal(err)
	}
	c = f.dial(t)
	c.login("taro@skydesk.jp", "right-password")
	c.cmd("DELE 1", "+OK")
	c.quit("+OK")
	u3 := deliver(t, f.s, "taro@skydesk.jp", false, "Subject: three\r\n\r\nx\r\n")
	if u3 == u1 || u3 == u2 {
		t.Fatalf("UID %s reused", u3)
	}
	if got := f.listing(t, "taro@skydesk.jp", "right-password"); !slices.Equal(got, []string{u3}) {
		t.Errorf("listing %v, want [%s]", got, u3)
	}
}

func ptr[T any](v T) *T { return &v }

// The credential rules and the hints' wording come from the store's
// Authenticator and AuthError; the codes are POP3's (RFC 2449/3206). A
// bare local part, a wrong password, an unknown address and a federated
// account without a mail password get the one answer (issue 13 §5).
func TestMaildrop_loginRefusals(t *testing.T) {
	const invalid = "-ERR [AUTH] invalid user name or password (use your full email address; federated accounts set a mail password first at https://autoconfig.skydesk.jp/settings; with two-step verification, use an app-specific password)"
	f := newPOPFixture(t)
	storetest.AddUser(t, f.s, "taro@skydesk.jp", "right-password")
	storetest.AddUser(t, f.s, "jiro@example.co.jp", "jiro-password")
	if err := f.s.SetTwoStep(ctx, "jiro@example.co.jp", true); err != nil {
		t.Fatal(err)
	}
	app, err := f.s.CreateAppPassword(ctx, "jiro@example.co.jp", "mpop")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.AddAccount(ctx, store.NewAccount{Address: "sso@example.co.jp", Federated: true}); err != nil {
		t.Fatal(err)
	}
	setPOP(t, f.s, "sso@example.co.jp", store.POPAll, false, store.KeepOnServer)
	if _, err := f.s.AddAccount(ctx, store.NewAccount{Address: "off@skydesk.jp", Password: "off-password"}); err != nil {
		t.Fatal(err) // POP access stays "disabled", the default
	}
	for _, tc := range []struct{ name, user, pass, want string }{
		{"bare-user-name", "taro", "right-password", invalid},
		{"wrong-password", "taro@skydesk.jp", "wrong-password", invalid},
		{"no-such-user", "nobody@skydesk.jp", "right-password", invalid},
		{"two-step-account-password", "jiro@example.co.jp", "jiro-password",
			"-ERR [AUTH] two-step verification is on: sign in with an app-specific password; create one in the settings at https://autoconfig.skydesk.jp/settings"},
		{"federated-no-password", "sso@example.co.jp", "anything-at-all", invalid},
		{"pop-disabled", "off@skydesk.jp", "off-password",
			`-ERR [SYS/PERM] POP access is disabled for this account: enable it in the settings "Mail forwarding and POP/IMAP" > "POP download" at https://autoconfig.skydesk.jp/settings`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := f.dial(t)
			c.cmd("USER "+tc.user, "+OK")
			if got := c.cmd("PASS "+tc.pass, "-ERR"); got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
	// Disabled access is only revealed to someone with the password.
	c := f.dial(t)
	c.cmd("USER off@skydesk.jp", "+OK")
	c.cmd("PASS wrong-password", "-ERR [AUTH] invalid user name or password")

	// The app password works, over USER/PASS and SASL PLAIN, with or
	// without the spaces it is displayed with.
	c = f.dial(t)
	c.login("jiro@example.co.jp", app)
	c.quit("+OK")
	c = f.dial(t)
	c.cmd("AUTH PLAIN "+b64("\x00jiro@example.co.jp\x00"+strings.ReplaceAll(app, " ", "")), "+OK logged in")
	c.quit("+OK")
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// Failures slow down and then lock ([LOGIN-DELAY]: a correct password
// must not look wrong), per address and per account.
func TestMaildrop_throttling(t *testing.T) {
	var mu sync.Mutex
	outcomes := map[string]int{}
	f := newPOPFixtureOn(t, storetest.NewDriver(t), store.AuthOptions{Policy: fastThrottle, Observe: func(svc store.Service, o string) {
		mu.Lock()
		outcomes[string(svc)+"/"+o]++
		mu.Unlock()
	}})
	storetest.AddUser(t, f.s, "taro@skydesk.jp", "right-password")
	for i := 0; i < fastThrottle.LockAfter; i++ {
		c := f.dial(t)
		c.cmd("USER taro@skydesk.jp", "+OK")
		c.cmd("PASS wrong-password", "-ERR [AUTH]")
	}
	c := f.dial(t)
	c.cmd("USER taro@skydesk.jp", "+OK")
	c.cmd("PASS right-password", "-ERR [LOGIN-DELAY] too many failed logins: try again in 60 minutes")
	// What skydeskd_logins_total{service="pop3"} counts.
	mu.Lock()
	defer mu.Unlock()
	if outcomes["pop3/delayed"] < 1 || outcomes["pop3/lock_engaged"] != 1 || outcomes["pop3/locked"] != 1 {
		t.Errorf("observed %v: want delays, one lock engaged, one locked refusal", outcomes)
	}
}

// RFC 1939 §4: one session per maildrop; a second gets [IN-USE] until the
// first ends, however it ends.
func TestMaildrop_inUse(t *testing.T) {
	f := newPOPFixture(t)
	acc := storetest.AddUser(t, f.s, "taro@skydesk.jp", "right-password")
	a := f.dial(t)
	a.login("taro@skydesk.jp", "right-password")
	b := f.dial(t)
	b.cmd("USER taro@skydesk.jp", "+OK")
	b.cmd("PASS right-password", "-ERR [IN-USE] maildrop already locked")
	a.nc.Close() // dropped, not QUIT
	waitUnlocked(t, f.md, acc.ID)
	b.login("taro@skydesk.jp", "right-password")
}

// RFC 1939 §6: QUIT releases the maildrop before its +OK, so a client
// that reconnects the moment it reads the answer (as mailload does, and
// clients that poll often) is never refused IN-USE: with marks applied
// and without.
func TestMaildrop_reconnectAfterQuit(t *testing.T) {
	f := newPOPFixture(t)
	storetest.AddUser(t, f.s, "taro@skydesk.jp", "right-password")
	setPOP(t, f.s, "taro@skydesk.jp", "", false, store.DeleteOnServer)
	const rounds = 20
	for range rounds / 2 {
		deliver(t, f.s, "taro@skydesk.jp", false, "Subject: x\r\n\r\nx\r\n")
	}
	c := f.dial(t)
	for i := range rounds {
		c.login("taro@skydesk.jp", "right-password")
		if i%2 == 0 {
			c.cmd("DELE 1", "+OK")
			c.quit("+OK bye, 1 messages deleted")
		} else {
			c.quit("+OK bye")
		}
		c = f.dial(t) // the old connection is not closed by the client
	}
	c.login("taro@skydesk.jp", "right-password")
	c.cmd("STAT", "+OK 0 0")
}

func waitUnlocked(t *testing.T, md *popstore.Backend, id int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for md.Locked(id) {
		if time.Now().After(deadline) {
			t.Fatal("maildrop still locked 10 s after the session ended")
		}
		time.Sleep(5 * time.Millisecond) // polling a condition with a deadline
	}
}

// RFC 1939 §6: a dropped connection applies no DELE mark, even with
// "delete from server".
func TestMaildrop_Dele_dropDeletesNothing(t *testing.T) {
	f := newPOPFixture(t)
	acc := storetest.AddUser(t, f.s, "taro@skydesk.jp", "right-password")
	setPOP(t, f.s, "taro@skydesk.jp", "", false, store.DeleteOnServer)
	want := []string{deliver(t, f.s, "taro@skydesk.jp", false, "Subject: 1\r\n\r\nx\r\n"),
		deliver(t, f.s, "taro@skydesk.jp", false, "Subject: 2\r\n\r\nx\r\n")}
	c := f.dial(t)
	c.login("taro@skydesk.jp", "right-password")
	c.cmd("DELE 1", "+OK")
	c.cmd("DELE 2", "+OK")
	c.nc.Close()
	waitUnlocked(t, f.md, acc.ID)
	if got := f.listing(t, "taro@skydesk.jp", "right-password"); !slices.Equal(got, want) {
		t.Fatalf("after a dropped session: %v, want %v", got, want)
	}
}

func BenchmarkMaildrop_Retr20KB(b *testing.B) {
	f := newPOPFixture(b)
	storetest.AddUser(b, f.s, "taro@skydesk.jp", "right-password")
	deliver(b, f.s, "taro@skydesk.jp", false, "Subject: x\r\n\r\n"+strings.Repeat(strings.Repeat("y", 78)+"\r\n", 250))
	c := f.dial(b)
	c.login("taro@skydesk.jp", "right-password")
	b.ReportAllocs()
	for b.Loop() {
		_ = c.nc.SetDeadline(time.Now().Add(30 * time.Second))
		c.cmd("RETR 1", "+OK")
		c.dot()
	}
}
