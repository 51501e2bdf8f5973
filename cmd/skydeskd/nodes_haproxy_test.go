package main

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/skydesk/skydeskd/config"
	"github.com/skydesk/skydeskd/store/postgres/pgtest"
)

// node is one skydeskd process of a two-node test: its configuration
// file (for admin commands "via" it) and the running serve.
type node struct {
	dir, file string
	*proc
}

// nodeListeners are the services a node of the two-node test runs.
var nodeListeners = []string{"pop3s", "mx", "http", "https"}

// writeNodeConfig writes a node's configuration: every node on the one
// PostgreSQL database url, its own data directory, POP3S, MX, HTTP
// (/readyz) and HTTPS (the settings pages) on loopback, a 1 s maildrop
// lease, and PROXY headers expected from HAProxy's address.
func writeNodeConfig(t *testing.T, url string) (dir, file string) {
	t.Helper()
	dir = t.TempDir()
	cfg := fmt.Sprintf(`data_dir: %s
log: {format: json, level: info}
listen: {http: "127.0.0.1:0", https: "127.0.0.1:0", dns: "", pop3s: "127.0.0.1:0", pop3: "", smtps: "", submission: "", mx: "127.0.0.1:0"}
database: {driver: postgres, url: %q}
pop: {lease_ttl: 1s}
proxy_protocol: {listeners: [pop3s, mx, http], trusted: [%s/32]}
`, dir, url, haproxySource)
	file = filepath.Join(dir, "skydeskd.yaml")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, file
}

// nodeCLI runs an admin command of the real binary with a node's
// configuration and returns its output.
func nodeCLI(t *testing.T, bin string, n node, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, append(args, "--config", n.file)...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Env = append(os.Environ(), "SKYDESKD_TEST_FAST_HASH=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("skydeskd %v via %s: %v: %s", args, n.file, err, out)
	}
	return string(out)
}

// trustNodes trusts the self-signed certificates of every node.
func trustNodes(t *testing.T, nodes ...node) *tls.Config {
	t.Helper()
	tc := trustDir(t, nodes[0].dir, "localhost")
	for _, n := range nodes[1:] {
		pem, err := os.ReadFile(filepath.Join(n.dir, config.SelfSignedCert))
		if err != nil || !tc.RootCAs.AppendCertsFromPEM(pem) {
			t.Fatalf("certificate of %s: %v", n.dir, err)
		}
	}
	return tc
}

// pagesOf is node n's settings pages for webBrowserless.
func pagesOf(n node, tc *tls.Config) *webApp {
	return &webApp{webURL: "https://" + n.addrs["https"], client: &http.Client{Timeout: 20 * time.Second,
		Transport:     &http.Transport{TLSClientConfig: tc},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// popRefused logs in directly and returns the refusal PASS got.
func popRefused(t *testing.T, addr string, tc *tls.Config, user, pw string) string {
	t.Helper()
	p := popDial(t, addr, tc)
	p.cmd("USER "+user, "+OK")
	l := p.cmd("PASS "+pw, "-ERR")
	p.cmd("QUIT", "+OK")
	return l
}

// haproxyServer returns server s's status column ("UP", "DOWN", …) in
// backend's row of HAProxy's CSV statistics, "" if not there.
func haproxyServer(stats, backend, s string) string {
	resp, err := http.Get("http://" + stats + "/stats;csv")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Split(line, ","); len(f) > 17 && f[0] == backend && f[1] == s {
			return f[17] // the "status" column of HAProxy's CSV format
		}
	}
	return ""
}

// Issue 14, two nodes behind HAProxy: two real skydeskd processes on one
// PostgreSQL database, HAProxy balancing POP3S round-robin over both and
// sending the MX to node B, PROXY headers to every backend. Mail taken by
// B's MX is fetched through A with the client's address in Received; a
// password change via A ends B's settings session and B's cached POP
// login at once; a settings form one node served is accepted by the
// other (no sticky routing); POP logins through the one frontend succeed
// on either node, each logging the client's own address; a POP session
// on A makes B answer IN-USE, and after kill -9 of A (a DELE sent, no
// QUIT), B serves the maildrop once the lease ends, nothing deleted,
// while HAProxy's /readyz check marks A down and sends every POP client
// to B.
func TestNodes_haproxy(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	dbURL := pgtest.URL(t)
	var a, b node
	a.dir, a.file = writeNodeConfig(t, dbURL)
	b.dir, b.file = writeNodeConfig(t, dbURL)
	for _, u := range []string{"taro", "hanako", "jiro"} {
		nodeCLI(t, bin, a, u+"-password-1\n", "user", "add", u+"@skydesk.jp", "--password-stdin")
		nodeCLI(t, bin, b, "", "pop", "set", u+"@skydesk.jp", "--access", "all", "--on-delete", "delete")
	}
	a.proc = startProc(t, bin, nodeListeners, "serve", "--config", a.file)
	b.proc = startProc(t, bin, nodeListeners, "serve", "--config", b.file)
	tc := trustNodes(t, a, b)

	front := map[string]string{"pop3s": freePort(t), "mx": freePort(t), "http": freePort(t), "stats": freePort(t)}
	onlyPOP := map[string]string{"pop3s": a.addrs["pop3s"], "http": a.addrs["http"]} // A gets no MX traffic
	startHAProxy(t, t.TempDir(), haproxyConfig(front, onlyPOP, b.addrs))
	waitFor(t, "haproxy's /readyz checks of both nodes to pass", func() bool {
		return haproxyServer(front["stats"], "http", "s1") == "UP" && haproxyServer(front["stats"], "http", "s2") == "UP"
	})

	t.Run("mail taken by B's MX is fetched through A", func(t *testing.T) {
		if err := mxVia(t, clientB, front["mx"], "taro@skydesk.jp", "Subject: via B\r\n\r\nhello\r\n"); err != nil {
			t.Fatalf("delivery through HAProxy to B's MX: %v", err)
		}
		p := dialPOP3S(t, a.addrs["pop3s"], tc, "taro@skydesk.jp", "taro-password-1")
		msgs := p.messages()
		p.quit()
		if len(msgs) != 1 || !strings.Contains(msgs[0], "hello") || !strings.Contains(msgs[0], "["+clientB+"]") {
			t.Fatalf("node A's POP3S: want the message B took from [%s]:\n%q", clientB, msgs)
		}
	})

	t.Run("password change via A ends B's sessions and cached logins", func(t *testing.T) {
		web := pagesOf(b, tc).signedInClient(t, "hanako@skydesk.jp", "hanako-password-1")
		dialPOP3S(t, b.addrs["pop3s"], tc, "hanako@skydesk.jp", "hanako-password-1").quit() // now in B's login cache
		out := nodeCLI(t, bin, a, "hanako-password-2\n", "user", "passwd", "hanako@skydesk.jp", "--password-stdin")
		if !strings.Contains(out, "1 settings sessions ended") {
			t.Errorf("user passwd via A printed %q", out)
		}
		if _, page := web.do("GET", "/settings", nil); strings.Contains(page, `id="account"`) || !strings.Contains(page, `action="/settings/signin"`) {
			t.Fatalf("B's settings session outlived a password change via A:\n%s", page)
		}
		if l := popRefused(t, b.addrs["pop3s"], tc, "hanako@skydesk.jp", "hanako-password-1"); !strings.HasPrefix(l, "-ERR [AUTH]") {
			t.Fatalf("old password on B after the change via A: %q", l)
		}
		dialPOP3S(t, b.addrs["pop3s"], tc, "hanako@skydesk.jp", "hanako-password-2").quit()
		pagesOf(b, tc).signedInClient(t, "hanako@skydesk.jp", "hanako-password-2")
	})

	t.Run("settings pages need no sticky routing", func(t *testing.T) {
		// One browser (cookies are per host, not port) meeting A and B
		// in turn, as behind a balancer without stickiness: a form from
		// one node is posted to the other.
		jar, _ := cookiejar.New(nil)
		onA := &webBrowserless{t: t, w: pagesOf(a, tc)}
		onB := &webBrowserless{t: t, w: pagesOf(b, tc)}
		onA.c, onB.c = onA.w.client, onB.w.client
		onA.c.Jar, onB.c.Jar = jar, jar
		onA.do("GET", "/settings", nil)
		if code, page := onB.do("POST", "/settings/signin", url.Values{"csrf": {onA.csr}, "address": {"jiro@skydesk.jp"}, "password": {"jiro-password-1"}}); code != http.StatusSeeOther {
			t.Fatalf("sign-in on B with A's form: %d\n%s", code, page)
		}
		if _, page := onA.do("GET", "/settings", nil); !strings.Contains(page, `id="account">jiro@skydesk.jp`) {
			t.Fatalf("A does not know the session B signed in:\n%s", page)
		}
		if code, page := onB.do("POST", "/settings/signout", url.Values{"csrf": {onA.csr}}); code != http.StatusSeeOther {
			t.Fatalf("sign-out on B with A's form: %d\n%s", code, page)
		}
		if _, page := onA.do("GET", "/settings", nil); strings.Contains(page, `id="account"`) {
			t.Fatal("A still shows the session signed out on B")
		}
	})

	t.Run("round-robin POP3S sees each client's address", func(t *testing.T) {
		srcs := []string{clientA, clientB, clientC, clientA}
		for _, src := range srcs {
			popVia(t, src, front["pop3s"], tc, "jiro@skydesk.jp", "jiro-password-1").quit()
		}
		// Every login logged by the node that served it, under the
		// client's address (never HAProxy's), two on each node.
		logins := func(n node) []string { return loginsFrom(n.logged(), "jiro@skydesk.jp") }
		waitFor(t, "the nodes to log the 4 logins", func() bool { return len(logins(a))+len(logins(b)) >= len(srcs) })
		onA, onB := logins(a), logins(b)
		got := slices.Sorted(slices.Values(append(onA, onB...)))
		if want := slices.Sorted(slices.Values(srcs)); !slices.Equal(got, want) || len(onA) != 2 || len(onB) != 2 {
			t.Fatalf("logins from %v on A and %v on B; want the client addresses %v, two on each node", onA, onB, want)
		}
	})

	t.Run("IN-USE across nodes, then kill -9 of A", func(t *testing.T) {
		held := popLogin(t, a.addrs["pop3s"], tc, "taro@skydesk.jp", "taro-password-1")
		uids := held.uidl()
		if l := popRefused(t, b.addrs["pop3s"], tc, "taro@skydesk.jp", "taro-password-1"); !strings.HasPrefix(l, "-ERR [IN-USE]") {
			t.Fatalf("node B while A holds the maildrop: %q", l)
		}
		held.cmd("DELE 1", "+OK")
		a.kill(t)
		start := time.Now()
		waitLeaseFree(t, b.addrs["pop3s"], tc, "taro@skydesk.jp", "taro-password-1")
		t.Logf("node B served the maildrop %v after node A was killed", time.Since(start))
		if got := popUIDs(t, b.addrs["pop3s"], tc, "taro@skydesk.jp", "taro-password-1"); !slices.Equal(got, uids) {
			t.Fatalf("after kill -9 of A mid-session: UIDs on B %v, want %v", got, uids)
		}
		waitFor(t, "haproxy's /readyz check to mark node A down", func() bool {
			return haproxyServer(front["stats"], "http", "s1") == "DOWN" && haproxyServer(front["stats"], "pop3s", "s1") == "DOWN"
		})
		for _, src := range []string{clientA, clientB} {
			popVia(t, src, front["pop3s"], tc, "jiro@skydesk.jp", "jiro-password-1").quit()
		}
	})
}

// loginsFrom returns the client addresses of the POP logins of user in
// a node's log.
func loginsFrom(log, user string) []string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		var line struct{ Msg, User, Remote string }
		if json.Unmarshal([]byte(l), &line) == nil && line.Msg == "logged in" && line.User == user {
			host, _, _ := net.SplitHostPort(line.Remote)
			out = append(out, host)
		}
	}
	return out
}
