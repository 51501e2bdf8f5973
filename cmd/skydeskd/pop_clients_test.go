package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/skydesk/skydeskd/config"
	"github.com/skydesk/skydeskd/store/storetest"
)

// popRig is a real skydeskd process with POP3S and POP3+STLS.
type popRig struct {
	bin, dir, ca      string
	pop3s, pop3, http string // host:port
}

func startPOPRig(t *testing.T) *popRig {
	t.Helper()
	bin := buildBinary(t)
	dir := t.TempDir()
	cfg := writePOPConfig(t, dir)
	// Create the accounts before the first start so no admin write races
	// the server's own.
	for _, u := range []string{"curl", "mpop", "fetch", "py", "ossl"} {
		popUser(t, dir, u+"@skydesk.jp", "pw-"+u+"-123", "delete")
	}
	p := startProc(t, bin, []string{"pop3s", "pop3", "http"}, "serve", "--config", cfg)
	return &popRig{bin: bin, dir: dir, ca: filepath.Join(dir, config.SelfSignedCert),
		pop3s: p.addrs["pop3s"], pop3: p.addrs["pop3"], http: p.addrs["http"]}
}

// fill delivers n messages with `skydeskd deliver` and returns their UIDs.
func (r *popRig) fill(t *testing.T, user string, n int) []string {
	t.Helper()
	var uids []string
	for i := range n {
		uids = append(uids, deliverCLI(t, r.bin, r.dir, user, false,
			"From: a@example.org\nSubject: real client "+string(rune('A'+i))+"\n\n.dot-stuffed line\nbody\n"))
	}
	return uids
}

func (r *popRig) uids(t *testing.T, user string) []string {
	t.Helper()
	return popUIDs(t, r.pop3s, trustDir(t, r.dir, "pop.skydesk.jp"), user, "pw-"+strings.Split(user, "@")[0]+"-123")
}

func port(hostport string) string { return hostport[strings.LastIndex(hostport, ":")+1:] }

func runTool(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Real clients against the real binary (REFERENCE.md §5.1): curl, mpop,
// fetchmail, Python's poplib, openssl s_client.
func TestPOP_realClients(t *testing.T) {
	r := startPOPRig(t)

	t.Run("curl", func(t *testing.T) {
		curl := storetest.RequireTool(t, "curl")
		uids := r.fill(t, "curl@skydesk.jp", 3)
		common := []string{"-sS", "--cacert", r.ca, "--resolve", "pop.skydesk.jp:" + port(r.pop3s) + ":127.0.0.1",
			"--resolve", "pop.skydesk.jp:" + port(r.pop3) + ":127.0.0.1", "-u", "curl@skydesk.jp:pw-curl-123"}
		base := "pop3s://pop.skydesk.jp:" + port(r.pop3s) + "/"
		list := runTool(t, curl, append(common, base)...)
		if n := strings.Count(list, "\r\n"); n != 3 || !strings.HasPrefix(list, "1 ") {
			t.Errorf("curl LIST = %q", list)
		}
		body := runTool(t, curl, append(common, base+"1")...)
		if !strings.Contains(body, "Subject: real client A\r\n") || !strings.Contains(body, "\r\n.dot-stuffed line\r\n") {
			t.Errorf("curl RETR 1 = %q", body)
		}
		uidl := runTool(t, curl, append(common, "--ssl-reqd", "--login-options", "AUTH=PLAIN", "-X", "UIDL", "pop3://pop.skydesk.jp:"+port(r.pop3)+"/")...)
		if !strings.Contains(uidl, "1 "+uids[0]+"\r\n") {
			t.Errorf("curl STLS+PLAIN UIDL = %q", uidl)
		}
		runTool(t, curl, append(common, "-X", "DELE", "-I", base+"1")...)
		if got := r.uids(t, "curl@skydesk.jp"); !slices.Equal(got, uids[1:]) {
			t.Errorf("after curl DELE: %v, want %v", got, uids[1:])
		}
		// Wrong password: curl's "login denied" exit code 67.
		cmd := exec.Command(curl, append(common[:len(common)-2], "-u", "curl@skydesk.jp:wrong", base)...)
		if err := cmd.Run(); err == nil || cmd.ProcessState.ExitCode() != 67 {
			t.Errorf("curl with a wrong password: %v, want exit 67", err)
		}
	})

	t.Run("mpop", func(t *testing.T) {
		mpop := storetest.RequireTool(t, "mpop")
		uids := r.fill(t, "mpop@skydesk.jp", 3)
		md := t.TempDir()
		for _, d := range []string{"cur", "new", "tmp"} {
			if err := os.Mkdir(filepath.Join(md, d), 0o700); err != nil {
				t.Fatal(err)
			}
		}
		args := func(keep, uidls string, starttls bool) []string {
			a := []string{"--host=127.0.0.1", "--tls=on", "--tls-trust-file=" + r.ca, "--tls-host-override=pop.skydesk.jp",
				"--user=mpop@skydesk.jp", "--passwordeval=echo pw-mpop-123", "--keep=" + keep, "--delivery=maildir," + md,
				"--uidls-file=" + filepath.Join(md, uidls), "-q"}
			if starttls {
				return append(a, "--port="+port(r.pop3), "--tls-starttls=on", "--auth=plain")
			}
			return append(a, "--port="+port(r.pop3s), "--tls-starttls=off", "--auth=user")
		}
		runTool(t, mpop, args("on", "a.uidls", false)...)
		if n := count(t, filepath.Join(md, "new")); n != 3 {
			t.Fatalf("mpop --keep=on delivered %d messages, want 3", n)
		}
		if got := r.uids(t, "mpop@skydesk.jp"); !slices.Equal(got, uids) {
			t.Fatalf("after mpop --keep=on: %v, want %v", got, uids)
		}
		// Same UIDL file: nothing new to fetch (UIDs are stable).
		runTool(t, mpop, args("on", "a.uidls", true)...)
		if n := count(t, filepath.Join(md, "new")); n != 3 {
			t.Fatalf("mpop re-downloaded: %d messages", n)
		}
		runTool(t, mpop, args("off", "b.uidls", true)...)
		if n := count(t, filepath.Join(md, "new")); n != 6 {
			t.Fatalf("mpop --keep=off delivered %d, want 6 in total", n)
		}
		if got := r.uids(t, "mpop@skydesk.jp"); len(got) != 0 {
			t.Fatalf("after mpop --keep=off the server still lists %v", got)
		}
	})

	t.Run("fetchmail", func(t *testing.T) {
		fetchmail := storetest.RequireTool(t, "fetchmail")
		uids := r.fill(t, "fetch@skydesk.jp", 3)
		w := t.TempDir()
		rc := func(keep string) string {
			name := strings.ReplaceAll(keep, " ", "-")
			f := filepath.Join(w, "fetchmailrc-"+name)
			body := "set no syslog\nset no bouncemail\nset idfile " + filepath.Join(w, "ids-"+name) + "\n" +
				"poll 127.0.0.1 service " + port(r.pop3s) + " protocol pop3 uidl timeout 20\n" +
				"  user \"fetch@skydesk.jp\" there with password \"pw-fetch-123\" is root here\n" +
				"  ssl sslcertck sslcertfile " + r.ca + " sslcommonname pop.skydesk.jp\n" +
				"  " + keep + " fetchall\n" +
				"  mda \"/bin/sh -c 'cat >> " + filepath.Join(w, "mbox") + "'\"\n"
			if err := os.WriteFile(f, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			return f
		}
		out := runTool(t, fetchmail, "-f", rc("keep"), "--nodetach")
		mbox, _ := os.ReadFile(filepath.Join(w, "mbox"))
		if n := strings.Count(string(mbox), "Subject: real client"); n != 3 {
			t.Fatalf("fetchmail --keep delivered %d messages:\n%s", n, out)
		}
		if got := r.uids(t, "fetch@skydesk.jp"); !slices.Equal(got, uids) {
			t.Fatalf("after fetchmail keep: %v, want %v", got, uids)
		}
		runTool(t, fetchmail, "-f", rc("no keep"), "--nodetach")
		mbox, _ = os.ReadFile(filepath.Join(w, "mbox"))
		if n := strings.Count(string(mbox), "Subject: real client"); n != 6 {
			t.Fatalf("fetchmail without keep: %d messages in total, want 6", n)
		}
		if got := r.uids(t, "fetch@skydesk.jp"); len(got) != 0 {
			t.Fatalf("after fetchmail without keep the server still lists %v", got)
		}
	})

	t.Run("python-poplib", func(t *testing.T) {
		py := storetest.RequireTool(t, "python3")
		uids := r.fill(t, "py@skydesk.jp", 2)
		out := runTool(t, py, "-c", pyPoplib, "127.0.0.1", port(r.pop3s), port(r.pop3), r.ca)
		want := "stat 2\nuidl " + uids[0] + " " + uids[1] + "\nretr Subject: real client A\ndele ok\n" +
			"plaintext USER refused: TLS required\nstls stat 1\nbare user: invalid user name or password (use your full email address; federated accounts set a mail password first at https://autoconfig.skydesk.jp/settings; with two-step verification, use an app-specific password)\n"
		if out != want {
			t.Errorf("python poplib:\n%s\nwant\n%s", out, want)
		}
		if got := r.uids(t, "py@skydesk.jp"); !slices.Equal(got, uids[1:]) {
			t.Errorf("after poplib DELE+QUIT: %v, want %v", got, uids[1:])
		}
	})

	t.Run("openssl-starttls", func(t *testing.T) {
		openssl := storetest.RequireTool(t, "openssl")
		r.fill(t, "ossl@skydesk.jp", 1)
		cmd := exec.Command(openssl, "s_client", "-connect", r.pop3, "-starttls", "pop3", "-servername", "pop.skydesk.jp",
			"-CAfile", r.ca, "-verify_return_error", "-verify_hostname", "pop.skydesk.jp", "-quiet", "-crlf")
		cmd.Stdin = strings.NewReader("CAPA\nUSER ossl@skydesk.jp\nPASS pw-ossl-123\nSTAT\nQUIT\n")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("openssl s_client: %v\n%s", err, out)
		}
		s := string(out)
		for _, want := range []string{"\r\nUSER\r\n", "\r\nSASL PLAIN LOGIN\r\n", "+OK logged in, 1 messages", "+OK 1 ", "+OK bye"} {
			if !strings.Contains(s, want) {
				t.Errorf("s_client output lacks %q:\n%s", want, s)
			}
		}
		if strings.Contains(s, "\r\nSTLS\r\n") {
			t.Errorf("STLS still advertised after TLS:\n%s", s)
		}
	})
}

func count(t *testing.T, dir string) int {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

// pyPoplib drives Python's poplib: POP3S with USER/PASS, then POP3 + STLS.
const pyPoplib = `
import poplib, ssl, sys
host, pop3s, pop3, ca = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False  # the certificate names pop.skydesk.jp; 127.0.0.1 is in it too
c = poplib.POP3_SSL(host, pop3s, context=ctx, timeout=20)
c.user("py@skydesk.jp"); c.pass_("pw-py-123")
print("stat", c.stat()[0])
print("uidl", " ".join(l.split()[1].decode() for l in c.uidl()[1]))
print("retr", [l.decode() for l in c.retr(1)[1] if l.startswith(b"Subject:")][0])
c.dele(1); print("dele ok"); c.quit()
p = poplib.POP3(host, pop3, timeout=20)
try:
    p.user("py@skydesk.jp")
except poplib.error_proto as e:
    print("plaintext USER refused:", e.args[0].decode().split("] ")[1].split(":")[0])
p.stls(context=ssl.create_default_context(cafile=ca))
p.user("py@skydesk.jp"); p.pass_("pw-py-123")
print("stls stat", p.stat()[0]); p.quit()
b = poplib.POP3_SSL(host, pop3s, context=ctx, timeout=20)
b.user("py")
try:
    b.pass_("pw-py-123")
except poplib.error_proto as e:
    print("bare user:", e.args[0].decode().split("] ")[1])
b.quit()
`
