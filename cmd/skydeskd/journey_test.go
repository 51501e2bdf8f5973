package main

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"howett.net/plist"

	"github.com/skydesk/skydeskd/config"
	"github.com/skydesk/skydeskd/store/storetest"
)

// The --dev ports are fixed (config.Dev). The documents advertise the
// production ports; in --dev each is served on its 9xxx twin, and the host
// names resolve (through our own DNS) to 127.0.0.1. Those two mappings are
// the only liberty the journey takes with the advertised settings.
var devPort = map[int]int{995: 9995, 465: 9465, 587: 9587}

const (
	devHTTP  = "127.0.0.1:8080"
	devHTTPS = "127.0.0.1:8443"
	devDNS   = "127.0.0.1:8053"
)

// devPortsLock serialises every test that starts `serve --dev` (fixed
// ports) across packages and concurrent `go test` runs.
const devPortsLock = "/tmp/skydeskd-dev-ports.lock"

func lockDevPorts(t *testing.T) {
	t.Helper()
	f, err := os.OpenFile(devPortsLock, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() })
	// A --dev server started by hand also holds the ports: wait for them
	// (polling with a deadline), then fail with a clear message.
	deadline := time.Now().Add(3 * time.Minute)
	for _, a := range []string{devHTTP, devHTTPS, devDNS, "127.0.0.1:9995", "127.0.0.1:9110", "127.0.0.1:9465", "127.0.0.1:9587", "127.0.0.1:9025"} {
		for {
			l, err := net.Listen("tcp", a)
			if err == nil {
				l.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("--dev port %s stays busy (another skydeskd --dev running?): %v", a, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// server is one advertised server, in the terms every format can say.
type server struct {
	Host string
	Port int
	TLS  string // "implicit" or "starttls"
	User string // "" when the format cannot say (SRV: the full address, RFC 6186 §3)
}

// settings is what one format tells a client.
type settings struct {
	In  server
	Out []server
}

func tlsMode(socketType string) string {
	switch socketType {
	case "SSL":
		return "implicit"
	case "STARTTLS", "TLS":
		return "starttls"
	}
	return "?" + socketType
}

func httpGet(t *testing.T, c *http.Client, u string) []byte {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %v\n%s", u, resp.StatusCode, err, b)
	}
	return b
}

func thunderbirdSettings(t *testing.T, c *http.Client, addr string) settings {
	body := httpGet(t, c, "http://"+devHTTP+"/mail/config-v1.1.xml?emailaddress="+url.QueryEscape(addr))
	type srv struct {
		Type       string `xml:"type,attr"`
		Hostname   string `xml:"hostname"`
		Port       int    `xml:"port"`
		SocketType string `xml:"socketType"`
		Username   string `xml:"username"`
	}
	var doc struct {
		In  []srv `xml:"emailProvider>incomingServer"`
		Out []srv `xml:"emailProvider>outgoingServer"`
	}
	if err := xml.Unmarshal(body, &doc); err != nil || len(doc.In) != 1 || doc.In[0].Type != "pop3" {
		t.Fatalf("Thunderbird document: %v\n%s", err, body)
	}
	conv := func(s srv) server {
		return server{s.Hostname, s.Port, tlsMode(s.SocketType), strings.ReplaceAll(s.Username, "%EMAILADDRESS%", addr)}
	}
	out := settings{In: conv(doc.In[0])}
	for _, o := range doc.Out {
		out.Out = append(out.Out, conv(o))
	}
	return out
}

func autodiscoverSettings(t *testing.T, c *http.Client, addr string) settings {
	req := `<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
  <Request>
    <EMailAddress>` + addr + `</EMailAddress>
    <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>
  </Request>
</Autodiscover>`
	resp, err := c.Post("https://"+devHTTPS+"/Autodiscover/Autodiscover.xml", "text/xml", strings.NewReader(req))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	var doc struct {
		Protocols []struct {
			Type, Server, LoginName, SSL, Encryption string
			Port                                     int
		} `xml:"Response>Account>Protocol"`
	}
	if err := xml.Unmarshal(body, &doc); err != nil || resp.StatusCode != 200 {
		t.Fatalf("Autodiscover: %d %v\n%s", resp.StatusCode, err, body)
	}
	var out settings
	for _, p := range doc.Protocols {
		mode := tlsMode(p.Encryption)
		if p.SSL != "on" {
			mode = "none"
		}
		s := server{p.Server, p.Port, mode, p.LoginName}
		switch p.Type {
		case "POP3":
			out.In = s
		case "SMTP":
			out.Out = append(out.Out, s)
		default:
			t.Errorf("Autodiscover offers %s", p.Type)
		}
	}
	return out
}

// appleSettings downloads the signed profile, verifies the CMS signature
// with openssl against the service certificate, and reads the POP payload.
func appleSettings(t *testing.T, c *http.Client, addr, certFile string) settings {
	der := httpGet(t, c, "https://"+devHTTPS+"/apple/mobileconfig?email="+url.QueryEscape(addr))
	in := filepath.Join(t.TempDir(), "p.mobileconfig")
	if err := os.WriteFile(in, der, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(storetest.RequireTool(t, "openssl"), "cms", "-verify", "-inform", "DER", "-in", in,
		"-CAfile", certFile, "-purpose", "any")
	var content, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &content, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("openssl cms -verify: %v\n%s", err, errb.String())
	}
	var prof struct {
		PayloadContent []map[string]any
	}
	if _, err := plist.Unmarshal(content.Bytes(), &prof); err != nil || len(prof.PayloadContent) != 1 {
		t.Fatalf("profile plist: %v\n%s", err, content.String())
	}
	p := prof.PayloadContent[0]
	if p["PayloadType"] != "com.apple.mail.managed" || p["EmailAccountType"] != "EmailTypePOP" {
		t.Fatalf("payload %v", p)
	}
	num := func(k string) int { v, _ := p[k].(uint64); return int(v) }
	str := func(k string) string { v, _ := p[k].(string); return v }
	mode := func(k string, port int) string {
		// Apple has one flag: UseSSL on 587 means STARTTLS, elsewhere
		// implicit TLS (REFERENCE §3.2).
		if v, _ := p[k].(bool); !v {
			return "none"
		}
		if port == 587 {
			return "starttls"
		}
		return "implicit"
	}
	inPort, outPort := num("IncomingMailServerPortNumber"), num("OutgoingMailServerPortNumber")
	return settings{
		In: server{str("IncomingMailServerHostName"), inPort, mode("IncomingMailServerUseSSL", inPort), str("IncomingMailServerUsername")},
		Out: []server{{str("OutgoingMailServerHostName"), outPort, mode("OutgoingMailServerUseSSL", outPort),
			str("OutgoingMailServerUsername")}},
	}
}

// ourResolver asks the --dev DNS server.
var ourResolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, devDNS)
}}

// srvSettings reads RFC 6186/8314 SRV records; the user name is the full
// address (RFC 6186 §3), so User stays empty here.
func srvSettings(t *testing.T, domain string) settings {
	ctx := t.Context()
	one := func(service, mode string) []server {
		_, recs, err := ourResolver.LookupSRV(ctx, service, "tcp", domain)
		if err != nil {
			t.Fatalf("SRV _%s._tcp.%s: %v", service, domain, err)
		}
		var out []server
		for _, r := range recs {
			out = append(out, server{strings.TrimSuffix(r.Target, "."), int(r.Port), mode, ""})
		}
		return out
	}
	in := one("pop3s", "implicit")
	if len(in) != 1 {
		t.Fatalf("_pop3s: %v", in)
	}
	return settings{In: in[0], Out: append(one("submissions", "implicit"), one("submission", "starttls")...)}
}

// dial resolves an advertised host through our DNS and maps the port to
// its --dev twin.
func dialTarget(t *testing.T, s server) (ip string, port int) {
	ips, err := ourResolver.LookupHost(t.Context(), s.Host)
	if err != nil || !slices.Contains(ips, "127.0.0.1") {
		t.Fatalf("A %s = %v, %v; want 127.0.0.1", s.Host, ips, err)
	}
	p, ok := devPort[s.Port]
	if !ok {
		t.Fatalf("no --dev listener for advertised port %d", s.Port)
	}
	return "127.0.0.1", p
}

func withoutUser(ss []server) []server {
	out := slices.Clone(ss)
	for i := range out {
		out[i].User = ""
	}
	return out
}

// TestJourney is the end-to-end journey of the issue: the real binary
// with --dev; for a personal and an organization address, the four formats
// agree; a real client sends with exactly those settings; another fetches
// and deletes according to the POP settings.
func TestJourney(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary on the fixed --dev ports")
	}
	storetest.SkipOnPostgres(t, "serve --dev is the SQLite quick start of make run (--data only, no database section)")
	if inNetns(t) {
		return
	}
	for _, tool := range []string{"msmtp", "swaks", "mpop", "openssl"} {
		storetest.RequireTool(t, tool)
	}
	bin := buildBinary(t)
	lockDevPorts(t)
	dir := t.TempDir()
	startProc(t, bin, []string{"http", "https", "dns-udp", "pop3s", "smtps", "submission", "mx"}, "serve", "--dev", "--data", dir)
	certFile := filepath.Join(dir, config.SelfSignedCert)
	creds := map[string]string{}
	raw, err := os.ReadFile(filepath.Join(dir, demoFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		a, pw, _ := strings.Cut(l, " ")
		creds[a] = pw
	}
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: trustDir(t, dir, "127.0.0.1")}}

	for _, tc := range []struct {
		addr, kind, onDelete string
		outIndex             int // which advertised outgoing server to use
		sender               string
	}{
		{"taro@skydesk.jp", "personal", "keep", 0, "msmtp"},
		{"hanako@example.co.jp", "organization", "delete", 1, "swaks"},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			pw := creds[tc.addr]
			if pw == "" {
				t.Fatalf("no demo password for %s in %s", tc.addr, demoFile)
			}
			domain := tc.addr[strings.IndexByte(tc.addr, '@')+1:]
			tb := thunderbirdSettings(t, hc, tc.addr)
			ad := autodiscoverSettings(t, hc, tc.addr)
			ap := appleSettings(t, hc, tc.addr, certFile)
			// The setup page is a discovery format too (onboarding).
			httpGet(t, hc, "https://"+devHTTPS+"/?email="+url.QueryEscape(tc.addr))
			srv := srvSettings(t, domain)
			t.Logf("Thunderbird: %+v", tb)
			if !reflect.DeepEqual(tb, ad) {
				t.Errorf("Thunderbird and Autodiscover disagree:\n%+v\n%+v", tb, ad)
			}
			if ap.In != tb.In || len(tb.Out) == 0 || ap.Out[0] != tb.Out[0] {
				t.Errorf("Apple profile disagrees with Thunderbird:\n%+v\n%+v", ap, tb)
			}
			in := tb.In
			in.User = ""
			if srv.In != in || !reflect.DeepEqual(srv.Out, withoutUser(tb.Out)) {
				t.Errorf("SRV records disagree with Thunderbird:\n%+v\n%+v", srv, tb)
			}
			if tb.In.User != tc.addr {
				t.Errorf("user name %q, want the full address", tb.In.User)
			}
			if len(tb.Out) <= tc.outIndex {
				t.Fatalf("only %d outgoing servers advertised", len(tb.Out))
			}

			mustCLI(t, dir, "", "pop", "set", tc.addr, "--on-delete", tc.onDelete)
			subject := fmt.Sprintf("journey %s %d", tc.kind, time.Now().UnixNano())
			out := tb.Out[tc.outIndex]
			ip, port := dialTarget(t, out)
			send(t, tc.sender, out, ip, port, certFile, pw, tc.addr, subject)

			// Fetch with mpop using the incoming settings; --keep=off
			// makes it DELE what it downloaded.
			ip, port = dialTarget(t, tb.In)
			mbox := fetchMpop(t, tb.In, ip, port, certFile, pw)
			if !strings.Contains(mbox, "Subject: "+subject) {
				t.Fatalf("mpop did not download %q:\n%s", subject, mbox)
			}
			popTLS := trustDir(t, dir, tb.In.Host)
			pop := dialPOP3S(t, net.JoinHostPort(ip, strconv.Itoa(port)), popTLS, tb.In.User, pw)
			if left := pop.messages(); len(left) != 0 {
				t.Fatalf("%d messages still in the POP queue after mpop deleted them", len(left))
			}
			pop.quit()
			// "all mail" re-queues every message still on the server: kept
			// mail comes back, deleted mail does not.
			mustCLI(t, dir, "", "pop", "set", tc.addr, "--access", "all")
			pop = dialPOP3S(t, net.JoinHostPort(ip, strconv.Itoa(port)), popTLS, tb.In.User, pw)
			back := strings.Contains(strings.Join(pop.messages(), "\n"), "Subject: "+subject)
			pop.quit()
			if want := tc.onDelete == "keep"; back != want {
				t.Fatalf("on-delete %s: message on server after DELE = %v, want %v", tc.onDelete, back, want)
			}
		})
	}
	checkOnboarding(t, hc, dir)
}

// journeyInner marks the copy of the test running inside its own network
// namespace.
const journeyInner = "SKYDESKD_JOURNEY_NETNS"

// inNetns runs this test again inside a private network namespace
// (`unshare -rn`, loopback only) when the kernel allows it, so the fixed
// --dev ports can never collide with a --dev server someone runs by hand
// or another test; it reports whether it did. Without user namespaces the
// test runs here under the file lock.
func inNetns(t *testing.T) bool {
	if os.Getenv(journeyInner) != "" {
		return false
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil || exec.Command(unshare, "-rn", "true").Run() != nil {
		return false
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, unshare, "-rn", "sh", "-c", `ip link set lo up && exec "$0" -test.run '^TestJourney$' -test.v -test.count=1`, os.Args[0])
	cmd.Env = append(os.Environ(), journeyInner+"=1")
	out, err := cmd.CombinedOutput()
	t.Logf("inside unshare -rn:\n%s", out)
	if err != nil {
		t.Fatalf("journey in its network namespace: %v", err)
	}
	if !strings.Contains(string(out), "--- PASS: TestJourney") {
		t.Fatal("the journey did not run in its network namespace")
	}
	return true
}

// send submits one message with a real client and exactly the advertised
// server settings (host name checked against the certificate).
func send(t *testing.T, client string, s server, ip string, port int, certFile, pw, addr, subject string) {
	t.Helper()
	body := "From: " + addr + "\r\nTo: " + addr + "\r\nSubject: " + subject + "\r\n\r\nsent on the journey\r\n"
	var args []string
	switch client {
	case "msmtp":
		starttls := map[string]string{"implicit": "off", "starttls": "on"}[s.TLS]
		pwFile := filepath.Join(t.TempDir(), "pw")
		if err := os.WriteFile(pwFile, []byte(pw), 0o600); err != nil {
			t.Fatal(err)
		}
		args = []string{"--host=" + ip, "--port=" + strconv.Itoa(port), "--tls=on", "--tls-starttls=" + starttls,
			"--tls-host-override=" + s.Host, "--tls-trust-file=" + certFile, "--auth=on", "--user=" + s.User,
			"--passwordeval=cat " + pwFile, "--from=" + addr, "--", addr}
	case "swaks":
		mode := map[string]string{"implicit": "--tls-on-connect", "starttls": "--tls"}[s.TLS]
		// swaks verifies against --server; 127.0.0.1 is in the
		// certificate, and the host name was resolved through our DNS.
		args = []string{"--server", ip, "--port", strconv.Itoa(port), mode, "--tls-verify", "--tls-ca-path", certFile,
			"--auth", "LOGIN", "--auth-user", s.User, "--auth-password", pw, "--from", addr, "--to", addr,
			"--data", "-"}
	}
	out, err := runClient(t, body, client, args...)
	if err != nil {
		t.Fatalf("%s: %v\n%s", client, err, out)
	}
}

func fetchMpop(t *testing.T, s server, ip string, port int, certFile, pw string) string {
	t.Helper()
	tmp := t.TempDir()
	pwFile, mbox := filepath.Join(tmp, "pw"), filepath.Join(tmp, "mbox")
	if err := os.WriteFile(pwFile, []byte(pw), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(mbox, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	starttls := map[string]string{"implicit": "off", "starttls": "on"}[s.TLS]
	out, err := runClient(t, "", "mpop", "--host="+ip, "--port="+strconv.Itoa(port), "--tls=on",
		"--tls-starttls="+starttls, "--tls-host-override="+s.Host, "--tls-trust-file="+certFile,
		"--auth=user", "--user="+s.User, "--passwordeval=cat "+pwFile, "--keep=off", "--only-new=off",
		"--uidls-file="+filepath.Join(tmp, "uidls"), "--delivery=mbox,"+mbox, "--timeout=30", "-Q")
	if err != nil {
		t.Fatalf("mpop: %v\n%s", err, out)
	}
	b, err := os.ReadFile(mbox)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func runClient(t *testing.T, stdin, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, storetest.RequireTool(t, name), args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	return out.String(), err
}
