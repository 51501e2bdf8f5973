package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/skydesk/skydeskd/store"
	"github.com/skydesk/skydeskd/store/postgres"
	"github.com/skydesk/skydeskd/store/postgres/pgtest"
)

// Issue 14, "how cost grows": one node on PostgreSQL with 10,000 hosted
// domains and 1,000,000 accounts. Measured: `skydeskd domain add` (the
// admin command, a process of its own) to the node's DNS answer; the
// snapshot reload itself; a cold POP3S login (argon2id verify + lookup of
// a random account) and a cached one, p50/p99; the node's resident memory
// idle and after the logins; and the query plan of every hot lookup at
// that size (an index, never a sequential scan). Minutes of work, so it
// runs only with SKYDESK_SCALE=1 (make bench-scale); SCALE_DOMAINS,
// SCALE_ACCOUNTS and SCALE_LOGINS shrink or grow it.
func TestScale(t *testing.T) {
	if os.Getenv("SKYDESK_SCALE") != "1" {
		t.Skip("set SKYDESK_SCALE=1 (make bench-scale): loads a million accounts")
	}
	domains, accounts, logins := envInt("SCALE_DOMAINS", 10_000), envInt("SCALE_ACCOUNTS", 1_000_000), envInt("SCALE_LOGINS", 200)
	ctx := t.Context()
	url := pgtest.URL(t)
	const password = "scale-password-1"
	var rows [][2]string
	row := func(k, v string) { rows = append(rows, [2]string{k, v}); t.Logf("%s: %s", k, v) }

	// Migrate through the store (as a node would), then load.
	s, err := postgres.Open(ctx, url, store.Options{PersonalDomain: "skydesk.jp"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	hash, err := store.HashPassword(ctx, store.DefaultHashParams, password)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := bulkLoad(ctx, url, domains, accounts, hash, min(accounts, 20_000), 5); err != nil {
		t.Fatal(err)
	}
	row("load", fmt.Sprintf("%d domains, %d accounts (COPY, one precomputed hash) in %v", domains, accounts, time.Since(start).Round(time.Millisecond)))
	checkPlans(t, url, scaleAddress(accounts/2, domains), row)

	bin := buildBinary(t)
	file := scaleConfig(t, t.TempDir(), url)
	start = time.Now()
	node := startNode(t, bin, file, "dns-udp", "pop3s")
	row(fmt.Sprintf("node start (%d-domain snapshot, zones)", domains), time.Since(start).Round(time.Millisecond).String())
	row("node RSS idle", rss(t, node.cmd.Process.Pid))

	// domain add → the node's DNS answer, and the reload alone.
	var adds, lags, reloads []time.Duration
	for i := range 10 {
		name := fmt.Sprintf("new%02d.scale.example", i)
		start := time.Now()
		if out, err := exec.Command(bin, "domain", "add", name, "--config", file).CombinedOutput(); err != nil {
			t.Fatalf("domain add %s: %v\n%s", name, err, out)
		}
		exited := time.Now()
		for !srvAnswered(node.addrs["dns-udp"], name) {
			if time.Since(start) > 10*time.Second {
				t.Fatalf("%s not answered by the node's DNS within 10 s", name)
			}
			time.Sleep(2 * time.Millisecond) // polling another process's answer, bounded above
		}
		adds = append(adds, time.Since(start))
		lags = append(lags, time.Since(exited))
		start = time.Now()
		if changed, err := s.RefreshDomains(ctx); err != nil || !changed {
			t.Fatalf("RefreshDomains: changed %v, %v", changed, err)
		}
		reloads = append(reloads, time.Since(start))
	}
	row("domain add → DNS answer (admin process start included)", pcts(adds))
	row("  of which after the command exited (NOTIFY, reload, zones)", pcts(lags))
	row("domain snapshot reload alone (query + snapshot)", pcts(reloads))

	// Cold logins: distinct random accounts; then the same again, cached.
	ids := rand.Perm(accounts)[:logins]
	tc := &tls.Config{InsecureSkipVerify: true} // the node's own self-signed certificate, on loopback
	var cold, warm []time.Duration
	for _, id := range ids {
		cold = append(cold, timedLogin(t, node.addrs["pop3s"], tc, scaleAddress(id, domains), password))
	}
	for _, id := range ids {
		warm = append(warm, timedLogin(t, node.addrs["pop3s"], tc, scaleAddress(id, domains), password))
	}
	row(fmt.Sprintf("cold POP3S login, %d random accounts (PASS → +OK)", logins), pcts(cold))
	row("cached login, same accounts again", pcts(warm))
	row("node RSS after the logins", rss(t, node.cmd.Process.Pid))

	var b strings.Builder
	fmt.Fprintf(&b, "\nScale on PostgreSQL: %d domains, %d accounts, one node, %d CPUs\n", domains, accounts, runtime.NumCPU())
	for _, r := range rows {
		fmt.Fprintf(&b, "  %-58s %s\n", r[0], r[1])
	}
	fmt.Print(b.String())
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// pcts formats p50, p99 and the maximum of ds.
func pcts(ds []time.Duration) string {
	s := slices.Clone(ds)
	slices.Sort(s)
	at := func(p float64) time.Duration {
		return s[min(len(s)-1, int(p*float64(len(s))))].Round(10 * time.Microsecond)
	}
	return fmt.Sprintf("p50 %v  p99 %v  max %v  (n=%d)", at(0.50), at(0.99), s[len(s)-1].Round(10*time.Microsecond), len(s))
}

// rss reads the resident set (and its peak) of a process from /proc.
func rss(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	var cur, peak string
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			cur = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			peak = strings.TrimSpace(v)
		}
	}
	return fmt.Sprintf("%s (peak %s)", cur, peak)
}

// scaleConfig: DNS and POP3S on loopback, RRL off (the test polls from
// one address), the database at url.
func scaleConfig(t *testing.T, dir, url string) string {
	t.Helper()
	cfg := fmt.Sprintf(`data_dir: %s
log: {format: json, level: info}
listen: {http: "", https: "", dns: "127.0.0.1:0", pop3s: "127.0.0.1:0", pop3: "", smtps: "", submission: "", mx: ""}
dns:
  rrl: {responses_per_second: 0}
  addresses: {poppro.skydesk.jp: [127.0.0.1], smtp.skydesk.jp: [127.0.0.1]}
database: {driver: postgres, url: %q}
`, dir, url)
	file := filepath.Join(dir, "skydeskd.yaml")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// startNode runs `skydeskd serve` with the shipped password-hash
// parameters (startProc selects the test suite's cheap ones) until the
// test ends, and waits for the listeners in want.
func startNode(t *testing.T, bin, file string, want ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--config", file)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, done: make(chan error, 1)}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
	})
	found := make(chan string, 1) // the log so far once every listener is up
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		var tail strings.Builder
		seen := map[string]string{}
		for sc.Scan() {
			if tail.Len() < 64<<10 {
				tail.WriteString(sc.Text() + "\n")
			}
			var line struct{ Msg, Service, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" && slices.Contains(want, line.Service) {
				seen[line.Service] = line.Addr
				if len(seen) == len(want) && p.addrs == nil {
					p.addrs = seen
					found <- ""
				}
			}
		}
		if len(seen) < len(want) {
			found <- tail.String()
		}
		p.done <- cmd.Wait()
	}()
	select {
	case log := <-found:
		if log != "" {
			t.Fatalf("node exited before listening on %v:\n%s", want, log)
		}
	case <-time.After(5 * time.Minute):
		t.Fatalf("node not listening on %v within 5 minutes", want)
	}
	return p
}

// srvAnswered asks addr for _pop3s._tcp.name SRV over UDP.
func srvAnswered(addr, name string) bool {
	m := new(dns.Msg)
	m.SetQuestion("_pop3s._tcp."+name+".", dns.TypeSRV)
	c := &dns.Client{Net: "udp", Timeout: time.Second}
	r, _, err := c.Exchange(m, addr)
	return err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) > 0
}

// timedLogin opens a POP3S session and returns the time from PASS to its
// +OK (the TLS handshake and greeting excluded), then QUITs.
func timedLogin(t *testing.T, addr string, tc *tls.Config, user, pw string) time.Duration {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, tc)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	tp := textproto.NewConn(c)
	expect := func(cmd string) {
		t.Helper()
		if cmd != "" {
			if err := tp.PrintfLine("%s", cmd); err != nil {
				t.Fatal(err)
			}
		}
		l, err := tp.ReadLine()
		if err != nil || !strings.HasPrefix(l, "+OK") {
			t.Fatalf("%q → %q, %v", strings.Fields(cmd + " greeting")[0], l, err)
		}
	}
	expect("")
	expect("USER " + user)
	start := time.Now()
	expect("PASS " + pw)
	d := time.Since(start)
	expect("QUIT")
	return d
}

// checkPlans EXPLAINs every hot lookup at this size and fails on a
// sequential scan of accounts, messages or pop_settings: each must be an
// index lookup.
func checkPlans(t *testing.T, url, address string, row func(k, v string)) {
	t.Helper()
	ctx := t.Context()
	conn, err := pgxConnect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var id int64
	if err := conn.QueryRow(ctx, `SELECT id FROM accounts ORDER BY id LIMIT 1`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	for _, q := range []struct {
		name, sql string
		args      []any
		indexed   bool // a sequential scan is a failure
	}{
		{"credential lookup", `SELECT id, address, kind, password_hash, two_step, federated, credential_gen, created,
			totp_secret, totp_last_step FROM accounts WHERE address = $1`, []any{address}, true},
		{"app passwords of an account", `SELECT name, hash FROM app_passwords WHERE account_id = $1`, []any{id}, true},
		{"POP settings", `SELECT access, since, include_spam, on_delete, since_day FROM pop_settings WHERE account_id = $1`, []any{id}, true},
		{"maildrop list", `SELECT id, size FROM messages
			WHERE account_id = $1 AND in_pop AND ($2 OR NOT spam) AND received >= $3 ORDER BY id`, []any{id, false, int64(0)}, true},
		{"accounts of a domain (domain remove)", `SELECT count(*) FROM accounts WHERE domain = $1`, []any{scaleDomain(1)}, true},
		{"domain list (snapshot reload, whole table)", `SELECT name FROM domains ORDER BY name`, nil, false},
	} {
		plan, took, err := explain(ctx, conn, q.sql, q.args...)
		if err != nil {
			t.Fatalf("EXPLAIN %s: %v", q.name, err)
		}
		if q.indexed && strings.Contains(plan, "Seq Scan") {
			t.Errorf("%s scans a table sequentially at this size:\n%s", q.name, plan)
		}
		row("plan: "+q.name, fmt.Sprintf("%s, %s", scanNodes(plan), took))
	}
}
