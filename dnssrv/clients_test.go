package dnssrv_test

import (
	"bufio"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/skydesk/skydeskd/profiles"
	"github.com/skydesk/skydeskd/store/storetest"
	"github.com/skydesk/skydeskd/templates"
)

// tbServer is one server section of Thunderbird's config-v1.1.xml.
type tbServer struct {
	Type       string `xml:"type,attr"`
	Hostname   string `xml:"hostname"`
	Port       int    `xml:"port"`
	SocketType string `xml:"socketType"`
	Username   string `xml:"username"`
}

type tbDoc struct {
	Incoming []tbServer `xml:"emailProvider>incomingServer"`
	Outgoing []tbServer `xml:"emailProvider>outgoingServer"`
}

// thunderbird returns what the Thunderbird document says for address:
// the same Profile and builder the HTTP endpoint uses.
func thunderbird(t *testing.T, r *profiles.Resolver, address string) tbDoc {
	t.Helper()
	a, p, err := r.Resolve(context.Background(), address)
	if err != nil {
		t.Fatal(err)
	}
	b, err := templates.Thunderbird(p, a)
	if err != nil {
		t.Fatal(err)
	}
	var d tbDoc
	if err := xml.Unmarshal(b, &d); err != nil {
		t.Fatalf("parsing the Thunderbird document: %v\n%s", err, b)
	}
	if len(d.Incoming) == 0 || len(d.Outgoing) == 0 {
		t.Fatalf("Thunderbird document without servers:\n%s", b)
	}
	return d
}

// clientConfig parses the "key value" lines mpop/msmtp --configure print.
func clientConfig(out string) map[string]string {
	kv := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, _ := strings.Cut(line, " ")
		kv[k] = v
	}
	return kv
}

// listenLoopback53 binds UDP and TCP port 53 on a random 127.0.53.x
// address (the system resolver only speaks to port 53). Port 53 needs
// root: locally a refusal skips the test, in CI (root) it fails it.
func listenLoopback53(t *testing.T) (string, net.PacketConn, net.Listener) {
	t.Helper()
	for range 20 {
		ip := fmt.Sprintf("127.0.53.%d", 1+rand.IntN(250))
		pc, err := net.ListenPacket("udp", ip+":53")
		if errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) {
			if os.Getenv("CI") == "true" {
				t.Fatalf("binding port 53 (CI runs as root): %v", err)
			}
			t.Skipf("binding port 53 needs root: %v", err)
		}
		if err != nil {
			continue
		}
		l, err := net.Listen("tcp", ip+":53")
		if err != nil {
			pc.Close()
			continue
		}
		return ip, pc, l
	}
	t.Fatal("no free 127.0.53.x:53")
	return "", nil, nil
}

// inResolverNamespace runs name with args in a private mount namespace
// whose /etc/resolv.conf names only ip (the rig's lo-dns.sh technique);
// the machine's own resolver configuration is never touched.
func inResolverNamespace(t *testing.T, unshare, ip string, name string, args ...string) string {
	t.Helper()
	conf := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(conf, []byte("nameserver "+ip+"\noptions timeout:2 attempts:2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(userns bool) ([]byte, error) {
		argv := []string{"--mount", "--propagation", "private"}
		if userns {
			argv = append([]string{"--user", "--map-root-user"}, argv...)
		}
		argv = append(argv, "--", "sh", "-c", `mount --bind "$0" /etc/resolv.conf && exec "$@"`, conf, name)
		cmd := exec.Command(unshare, append(argv, args...)...)
		cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
		return cmd.CombinedOutput()
	}
	// As root a plain mount namespace; without CAP_SYS_ADMIN (a non-root
	// user, or a container without it) a user namespace as well.
	out, err := run(os.Geteuid() != 0)
	if err != nil && os.Geteuid() == 0 && strings.Contains(string(out), "ermission") {
		out, err = run(true)
	}
	if err != nil {
		t.Fatalf("%s %s in a private mount namespace: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	t.Logf("%s %s:\n%s", filepath.Base(name), strings.Join(args, " "), out)
	return string(out)
}

// tlsMode is Thunderbird's socketType in mpop/msmtp terms.
func tlsMode(socketType string) (tls, starttls string) {
	switch socketType {
	case "SSL":
		return "on", "off"
	case "STARTTLS":
		return "on", "on"
	}
	return "off", "off"
}

// TestClients_configure runs `mpop --configure` and `msmtp --configure`,
// which read RFC 6186/8314 SRV records through the system resolver, against
// the server, and checks they arrive at the POP and SMTP settings the
// Thunderbird document gives for the same address.
func TestClients_configure(t *testing.T) {
	mpop := storetest.RequireTool(t, "mpop")
	msmtp := storetest.RequireTool(t, "msmtp")
	unshare := storetest.RequireTool(t, "unshare")
	dom := &domains{serial: 1, list: []string{"example.co.jp"}}
	r := profiles.NewResolver(settings, dom)
	h, err := newTestHandler(r, dom)
	if err != nil {
		t.Fatal(err)
	}
	ip, pc, l := listenLoopback53(t)
	serveOn(t, h, pc, l)

	for _, address := range []string{"taro@skydesk.jp", "hanako@example.co.jp", "Jiro@Example.CO.JP"} {
		t.Run(address, func(t *testing.T) {
			tb := thunderbird(t, r, address)
			local, _, _ := strings.Cut(address, "@")

			in := tb.Incoming[0]
			got := clientConfig(inResolverNamespace(t, unshare, ip, mpop, "--configure", address))
			tls, starttls := tlsMode(in.SocketType)
			want := map[string]string{"host": in.Hostname, "port": strconv.Itoa(in.Port), "tls": tls, "tls_starttls": starttls}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("mpop %s = %q, Thunderbird document says %q", k, got[k], v)
				}
			}
			// mpop and msmtp write the local part as user (RFC 6186 §4 says
			// to try the full address first; Thunderbird's document has the
			// full address); the servers accept both with a hint.
			if u := got["user"]; u != local && !strings.EqualFold(u, address) {
				t.Errorf("mpop user %q, want %q or %q", u, local, address)
			}

			out := tb.Outgoing[0]
			got = clientConfig(inResolverNamespace(t, unshare, ip, msmtp, "--configure", address))
			tls, starttls = tlsMode(out.SocketType)
			want = map[string]string{"host": out.Hostname, "port": strconv.Itoa(out.Port), "tls": tls, "tls_starttls": starttls, "auth": "on"}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("msmtp %s = %q, Thunderbird document says %q", k, got[k], v)
				}
			}
		})
	}
}
