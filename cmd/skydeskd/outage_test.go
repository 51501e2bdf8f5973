package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/smtp"
	"net/textproto"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/skydesk/skydeskd/store/postgres/pgtest"
)

// outageLength is how long PostgreSQL stays away in TestOutage_serve
// (issue 14: "stop PostgreSQL for 10 s").
const outageLength = 10 * time.Second

// outageTally is what the load clients saw.
type outageTally struct {
	mu       sync.Mutex
	ok, temp map[string]int // by protocol: replies that were a success, a temporary error
	accepted map[string]int // messages answered 250 after DATA, by recipient
	bad      []string       // any other reply or failure
}

func (o *outageTally) add(proto string, temp bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if temp {
		o.temp[proto]++
	} else {
		o.ok[proto]++
	}
}

func (o *outageTally) fail(format string, a ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.bad = append(o.bad, fmt.Sprintf(format, a...))
}

func (o *outageTally) counts(proto string) (ok, temp int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.ok[proto], o.temp[proto]
}

// mxDeliver sends one message to rcpt on the MX and tallies each reply:
// 2xx/3xx a success, 4xx temporary (RFC 5321 §4.2.1), anything else bad.
// It reports whether the message was accepted (250 after DATA).
func (o *outageTally) mxDeliver(addr, rcpt, subject string) bool {
	c, err := smtp.Dial(addr)
	if err != nil {
		o.fail("MX connect: %v", err)
		return false
	}
	defer c.Close()
	err = transact(c, "load@elsewhere.example", []string{rcpt}, "Subject: "+subject+"\r\n\r\nbody\r\n")
	var te *textproto.Error
	switch {
	case err == nil:
		o.add("smtp", false)
		o.mu.Lock()
		o.accepted[rcpt]++
		o.mu.Unlock()
		_ = c.Quit()
		return true
	case errors.As(err, &te) && te.Code >= 400 && te.Code < 500:
		o.add("smtp", true)
	default:
		o.fail("MX delivery to %s: %v", rcpt, err)
	}
	return false
}

// popSession logs in, lists and retrieves the first message, then quits;
// every reply is tallied: +OK a success, -ERR with [SYS/TEMP] (RFC 3206),
// [IN-USE] or [LOGIN-DELAY] (RFC 2449 §8.1) temporary, anything else bad.
// After a temporary error the session is dropped. It reports whether it
// got through.
func (o *outageTally) popSession(addr string, tc *tls.Config, user, pw string) bool {
	nc, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, tc)
	if err != nil {
		o.fail("POP3S connect: %v", err)
		return false
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
	text := textproto.NewConn(nc)
	step := func(cmd string) bool {
		if cmd != "" {
			if err := text.PrintfLine("%s", cmd); err != nil {
				o.fail("POP3 %q: %v", cmd, err)
				return false
			}
		}
		l, err := text.ReadLine()
		switch {
		case err != nil:
			o.fail("POP3 %q: no reply: %v", cmd, err)
			return false
		case strings.HasPrefix(l, "+OK"):
			o.add("pop", false)
			return true
		case strings.HasPrefix(l, "-ERR [SYS/TEMP] "), strings.HasPrefix(l, "-ERR [IN-USE] "), strings.HasPrefix(l, "-ERR [LOGIN-DELAY] "):
			o.add("pop", true)
			return false
		}
		o.fail("POP3 %q: %q", strings.Fields(cmd + " x")[0], l)
		return false
	}
	if !step("") || !step("USER "+user) || !step("PASS "+pw) || !step("LIST") {
		return false
	}
	list, err := text.ReadDotLines()
	if err != nil {
		o.fail("POP3 LIST: %v", err)
		return false
	}
	if len(list) > 0 && step("RETR 1") {
		if _, err := text.ReadDotBytes(); err != nil {
			o.fail("POP3 RETR: %v", err)
			return false
		}
	}
	return step("QUIT")
}

// checkAutoconfig asks every autoconfig format for addr and returns what
// did not answer 200 with a document.
func checkAutoconfig(c *http.Client, httpAddr, httpsAddr, addr string) []string {
	type req struct{ method, url, body, want string }
	adXML := `<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>` +
		addr + `</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>`
	q := url.QueryEscape(addr)
	var bad []string
	for _, r := range []req{
		{"GET", "http://" + httpAddr + "/mail/config-v1.1.xml?emailaddress=" + q, "", "<incomingServer"},
		{"POST", "https://" + httpsAddr + "/Autodiscover/Autodiscover.xml", adXML, "<Protocol>"},
		{"GET", "https://" + httpsAddr + "/autodiscover/autodiscover.json/v1.0/" + q + "?Protocol=AutodiscoverV1", "", "https://"},
		{"GET", "https://" + httpsAddr + "/apple/mobileconfig?email=" + q, "", "PayloadContent"},
	} {
		hr, err := http.NewRequest(r.method, r.url, strings.NewReader(r.body))
		if err != nil {
			bad = append(bad, err.Error())
			continue
		}
		if r.body != "" {
			hr.Header.Set("Content-Type", "text/xml")
		}
		resp, err := c.Do(hr)
		if err != nil {
			bad = append(bad, fmt.Sprintf("%s %s: %v", r.method, r.url, err))
			continue
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), r.want) {
			bad = append(bad, fmt.Sprintf("%s %s: %d %.200q", r.method, r.url, resp.StatusCode, b))
		}
	}
	return bad
}

// A serve node on PostgreSQL under POP3 and MX load, PostgreSQL stopped
// for outageLength and started again: every reply meanwhile is a success
// or a temporary error (no 5xx, no -ERR [AUTH], no dropped connection),
// /readyz is 503 during the outage and 200 after, autoconfig keeps
// answering a hosted and the personal domain in every format, service is
// back (a POP3 login and an MX delivery succeed) within 5 s of the
// database's return, a domain added then reaches it by LISTEN/NOTIFY, and
// every message answered 250 is stored, no more, no fewer.
func TestOutage_serve(t *testing.T) {
	cluster := pgtest.Start(t)
	dbURL := cluster.NewDatabase(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "skydeskd.yaml")
	cfg := fmt.Sprintf(`data_dir: %s
log: {format: json, level: info}
listen: {http: "127.0.0.1:0", https: "127.0.0.1:0", dns: "", pop3s: "127.0.0.1:0", pop3: "", smtps: "", submission: "", mx: "127.0.0.1:0"}
database: {driver: postgres, url: %q}
smtp: {mx_messages_per_minute: 1000000}
`, dir, dbURL)
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	admin := func(stdin string, args ...string) { mustCLI(t, dir, stdin, append(args, "--config", file)...) }
	admin("", "domain", "add", "example.co.jp")
	const pw = "load-password-1"
	users := []string{"load1@skydesk.jp", "load2@skydesk.jp", "load3@skydesk.jp", "probe@skydesk.jp"}
	for _, u := range users {
		admin(pw+"\n", "user", "add", u, "--password-stdin")
		admin("", "pop", "set", u, "--access", "all")
	}
	load, probe := users[:3], users[3]
	addrs, _ := serveInProcess(t, file, []string{"http", "https", "pop3s", "mx"})
	tc := trustDir(t, dir, "pop.skydesk.jp")
	web := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // the test's self-signed cert
	ready := func() int {
		resp, err := web.Get("http://" + addrs["http"] + "/readyz")
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := ready(); code != 200 {
		t.Fatalf("/readyz before the outage = %d", code)
	}

	tally := &outageTally{ok: map[string]int{}, temp: map[string]int{}, accepted: map[string]int{}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, u := range load {
		wg.Go(func() { // a POP3 client of its own account
			tick := time.NewTicker(20 * time.Millisecond) // pacing the load
			defer tick.Stop()
			for {
				tally.popSession(addrs["pop3s"], tc, u, pw)
				select {
				case <-stop:
					return
				case <-tick.C:
				}
			}
		})
		wg.Go(func() { // an MX client delivering to every load account
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for n := 0; ; n++ {
				tally.mxDeliver(addrs["mx"], load[(i+n)%len(load)], fmt.Sprintf("load %d-%d", i, n))
				select {
				case <-stop:
					return
				case <-tick.C:
				}
			}
		})
	}
	stopLoad := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopLoad()
	waitFor := func(what string, bound time.Duration, cond func() bool) time.Duration {
		t.Helper()
		start := time.Now()
		for !cond() {
			if time.Since(start) > bound {
				t.Fatalf("%s: not within %v", what, bound)
			}
			time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
		}
		return time.Since(start)
	}
	waitFor("load running", 30*time.Second, func() bool {
		p, _ := tally.counts("pop")
		s, _ := tally.counts("smtp")
		return p >= 10 && s >= 10
	})

	cluster.Stop(t)
	down := time.Now()
	t.Logf("/readyz unready %v after PostgreSQL stopped", waitFor("/readyz 503", 5*time.Second, func() bool { return ready() == 503 }))
	waitFor("temporary errors under load", outageLength/2, func() bool {
		_, p := tally.counts("pop")
		_, s := tally.counts("smtp")
		return p > 0 && s > 0
	})
	for _, addr := range []string{"someone@example.co.jp", "new-user@skydesk.jp"} {
		for _, b := range checkAutoconfig(web, addrs["http"], addrs["https"], addr) {
			t.Errorf("autoconfig with the database down: %s", b)
		}
	}
	time.Sleep(time.Until(down.Add(outageLength))) // the outage itself, not synchronisation
	popOK, popTemp := tally.counts("pop")
	smtpOK, smtpTemp := tally.counts("smtp")

	cluster.Start(t)
	back := time.Now()
	var popBack, mxBack time.Duration
	waitFor("service back", 30*time.Second, func() bool {
		if popBack == 0 && tally.popSession(addrs["pop3s"], tc, probe, pw) {
			popBack = time.Since(back)
		}
		if mxBack == 0 && tally.mxDeliver(addrs["mx"], probe, "probe") {
			mxBack = time.Since(back)
		}
		return popBack > 0 && mxBack > 0
	})
	recovery := max(popBack, mxBack)
	t.Logf("recovery after PostgreSQL's return: POP3 login %v, MX delivery %v", popBack, mxBack)
	if recovery > 5*time.Second {
		t.Errorf("service back %v after the database's return, want within 5 s", recovery)
	}
	t.Logf("/readyz ready %v after the return", time.Since(back)+waitFor("/readyz 200", 5*time.Second, func() bool { return ready() == 200 }))
	stopLoad()

	// The domain listener is back too: a domain added by an admin
	// command now is answered (LISTEN/NOTIFY; the safety-net poll is 30 s).
	tb := "http://" + addrs["http"] + "/mail/config-v1.1.xml?emailaddress=" + url.QueryEscape("someone@after.example")
	status := func() int {
		resp, err := web.Get(tb)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := status(); code != 404 {
		t.Fatalf("autoconfig of a domain not hosted = %d", code)
	}
	added := time.Now()
	admin("", "domain", "add", "after.example")
	waitFor("a domain added after the return answered", 10*time.Second, func() bool { return status() == 200 })
	t.Logf("a domain added %v after the return answered by autoconfig %v after the command began", added.Sub(back), time.Since(added))

	t.Logf("until the return: POP3 %d replies +OK, %d temporary; SMTP %d transactions accepted, %d temporary replies",
		popOK, popTemp, smtpOK, smtpTemp)
	for _, b := range tally.bad {
		t.Errorf("neither a success nor a temporary error: %s", b)
	}
	stored := storedCounts(t, dbURL)
	total := 0
	for _, u := range users {
		total += tally.accepted[u]
		if stored[u] != tally.accepted[u] {
			t.Errorf("%s: %d messages answered 250, %d stored", u, tally.accepted[u], stored[u])
		}
	}
	t.Logf("%d messages answered 250, all stored", total)
}

// storedCounts returns the number of messages of each account, read from
// the database itself.
func storedCounts(t *testing.T, dbURL string) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT a.address, count(m.id) FROM accounts a LEFT JOIN messages m ON m.account_id = a.id GROUP BY a.address`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	var addr string
	var n int
	if _, err := pgx.ForEachRow(rows, []any{&addr, &n}, func() error { out[addr] = n; return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}
