package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/skydesk/skydeskd/internal/pebbletest"
	"github.com/skydesk/skydeskd/store/storetest"
)

// TestServeACME runs `serve` with acme.enabled against a real Pebble:
// service names and a domain added at run time by `domain add` get
// trusted certificates (curl --cacert Pebble's root), the Apple profile is
// signed with the ACME certificate (openssl cms -verify), `cert list`
// shows them, and a removed domain's names stop being served.
func TestServeACME(t *testing.T) {
	curl := storetest.RequireTool(t, "curl")
	openssl := storetest.RequireTool(t, "openssl")
	t.Setenv("SKYDESKD_TEST_FAST_HASH", "1")
	httpPort, httpsPort := pebbletest.FreePort(t, false), pebbletest.FreePort(t, false)
	pb := pebbletest.Start(t, pebbletest.Options{HTTPPort: httpPort, TLSPort: httpsPort})
	root := pb.RootFile(t)
	for _, h := range []string{"autoconfig.skydesk.jp", "autodiscover.skydesk.jp", "pop.skydesk.jp", "poppro.skydesk.jp", "smtp.skydesk.jp"} {
		pb.AddA(t, h, "127.0.0.1")
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "skydeskd.yaml")
	cfg := fmt.Sprintf(`data_dir: %s
log: {format: json, level: info}
listen: {http: "127.0.0.1:%d", https: "127.0.0.1:%d", dns: "", pop3s: "", pop3: "", smtps: "", submission: "", mx: ""}
dns: {addresses: {autoconfig.skydesk.jp: [127.0.0.1]}}
acme: {enabled: true, ca_url: %q, trusted_roots: %q, resolver: %q, email: ops@skydesk.jp}
`, dir, httpPort, httpsPort, pb.DirURL, pb.CAFile, pb.DNSAddr)
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	logFile, err := os.Create(filepath.Join(dir, "serve.log"))
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		done <- run(ctx, []string{"serve", "--config", file}, env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: logFile, getenv: os.Getenv})
	}()
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(logFile.Name())
			t.Logf("serve log:\n%s", b)
		}
	})
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != exitOK {
			t.Errorf("serve exited %d", code)
		}
	})
	trusted := func(name string) bool {
		p := strconv.Itoa(httpsPort)
		err := exec.Command(curl, "-sS", "-o", "/dev/null", "--max-time", "5", "--cacert", root,
			"--resolve", name+":"+p+":127.0.0.1", "https://"+name+":"+p+"/healthz").Run()
		return err == nil
	}
	within := func(d time.Duration, what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(d)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within %v", what, d)
			}
			select {
			case code := <-done:
				t.Fatalf("serve exited %d", code)
			case <-tick.C:
			}
		}
	}
	within(30*time.Second, "service name trusted", func() bool { return trusted("autoconfig.skydesk.jp") })

	admin := func(args ...string) string {
		t.Helper()
		var out strings.Builder
		if code := run(context.Background(), append(args, "--config", file), env{stdin: strings.NewReader(""), stdout: &out, stderr: io.Discard, getenv: os.Getenv}); code != exitOK {
			t.Fatalf("%v exited %d", args, code)
		}
		return out.String()
	}
	pb.AddA(t, "autoconfig.org.test", "127.0.0.1")
	pb.AddA(t, "autodiscover.org.test", "127.0.0.1")
	admin("domain", "add", "org.test")
	start := time.Now()
	within(30*time.Second, "autoconfig.org.test", func() bool { return trusted("autoconfig.org.test") })
	within(30*time.Second-time.Since(start), "autodiscover.org.test", func() bool { return trusted("autodiscover.org.test") })
	t.Logf("domain added by another process: both names trusted after %v", time.Since(start).Round(time.Millisecond))

	// The Apple profile is signed with the ACME certificate and chain.
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pb.Root(t))
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, "127.0.0.1:"+strconv.Itoa(httpsPort))
		},
	}}
	profile := filepath.Join(dir, "p.mobileconfig")
	within(10*time.Second, "profile signed with the ACME certificate", func() bool {
		resp, err := client.Get("https://autoconfig.skydesk.jp/apple/mobileconfig?email=taro%40skydesk.jp")
		if err != nil {
			return false
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || os.WriteFile(profile, body, 0o600) != nil {
			return false
		}
		return exec.Command(openssl, "cms", "-verify", "-inform", "DER", "-in", profile, "-CAfile", root,
			"-purpose", "any", "-out", os.DevNull).Run() == nil
	})

	list := admin("cert", "list")
	for _, n := range []string{"autoconfig.skydesk.jp", "autoconfig.org.test", "autodiscover.org.test"} {
		if !strings.Contains(list, n+"  ") || !strings.Contains(list, "Pebble Intermediate") {
			t.Fatalf("cert list lacks %s with its issuer:\n%s", n, list)
		}
	}
	t.Logf("cert list:\n%s", list)

	resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(httpPort) + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	resp.Body.Close()
	for _, m := range []string{`skydeskd_cert_expiry_seconds{name="autoconfig.org.test"}`, "skydeskd_cert_orders_total"} {
		if !strings.Contains(string(metrics), m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}

	// SKYDESKD_STIME=5: measure full (no resumption) TLS handshakes per
	// second with the ECDSA P-256 ACME certificate for the note.
	if secs := os.Getenv("SKYDESKD_STIME"); secs != "" {
		// No SNI option in s_time: the default name (autoconfig host)
		// selects the same ACME certificate.
		out, err := exec.Command(openssl, "s_time", "-connect", "127.0.0.1:"+strconv.Itoa(httpsPort),
			"-new", "-time", secs).CombinedOutput()
		if err != nil {
			t.Fatalf("openssl s_time: %v\n%s", err, out)
		}
		t.Logf("openssl s_time -new:\n%s", out)
	}

	admin("domain", "remove", "org.test")
	within(10*time.Second, "removed domain's names no longer served", func() bool {
		return !trusted("autoconfig.org.test") && !trusted("autodiscover.org.test")
	})
	if trusted("evil.test") {
		t.Fatal("a name outside the list is served a trusted certificate")
	}
}
