package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skydesk/skydeskd/config"
	"github.com/skydesk/skydeskd/dnssrv"
)

// dnsConfig writes a configuration with the DNS and HTTP listeners on
// 127.0.0.1:0, the service hosts on loopback, and extra YAML appended.
func dnsConfig(t *testing.T, dir, name, mx, extra string) string {
	t.Helper()
	cfg := fmt.Sprintf(`data_dir: %s
log: {format: json, level: info}
listen: {http: "127.0.0.1:0", https: "", dns: "127.0.0.1:0", pop3s: "", pop3: "", smtps: "", submission: "", mx: %q}
dns:
  addresses:
    pop.skydesk.jp: [127.0.0.1]
    poppro.skydesk.jp: [127.0.0.1]
    smtp.skydesk.jp: [127.0.0.1, "::1"]
    autoconfig.skydesk.jp: [127.0.0.1]
    autodiscover.skydesk.jp: [127.0.0.1]
    mx.skydesk.jp: [127.0.0.1]
%s`, dir, mx, extra)
	file := filepath.Join(dir, name)
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// serveDNS runs `skydeskd serve --config file` in-process and returns the
// DNS (UDP and TCP share the port) and HTTP addresses from the
// "listening" log lines.
func serveDNS(t *testing.T, file string) (dnsAddr, httpAddr string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--config", file}, env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: pw, getenv: os.Getenv})
		pw.Close()
	}()
	addrs := map[string]string{}
	var logged strings.Builder // for the failure message
	sc := bufio.NewScanner(pr)
	for len(addrs) < 3 && sc.Scan() {
		logged.Write(sc.Bytes())
		logged.WriteByte('\n')
		var line struct{ Msg, Service, Addr string }
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" {
			addrs[line.Service] = line.Addr
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != exitOK {
				t.Errorf("serve exited %d", code)
			}
		case <-time.After(shutdownTimeout + 5*time.Second):
			t.Error("serve did not shut down")
		}
	})
	if addrs["dns-udp"] == "" || addrs["dns-udp"] != addrs["dns-tcp"] || addrs["http"] == "" {
		t.Fatalf("listeners %v: want dns-udp and dns-tcp on one port, and http; serve logged:\n%s", addrs, logged.String())
	}
	return addrs["dns-udp"], addrs["http"]
}

// dnsCLI runs a command in-process and returns its exit code and output.
func dnsCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut strings.Builder
	code := run(context.Background(), args, env{stdin: strings.NewReader(""), stdout: &out, stderr: &errOut, getenv: os.Getenv})
	return code, out.String(), errOut.String()
}

// waitFor polls cond until it holds or the deadline passes (the server
// picks up another process's domain change within WatchDomains' second).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond) // polling interval, bounded by the deadline
	}
}

const wantRecords = `; Publish these records in the zone of example.co.jp so mail clients configure
; themselves (RFC 6186/8314 SRV, Thunderbird autoconfig, Outlook autodiscover).
_pop3s._tcp.example.co.jp.	3600	IN	SRV	0 1 995 poppro.skydesk.jp.
_submissions._tcp.example.co.jp.	3600	IN	SRV	0 1 465 smtp.skydesk.jp.
_submission._tcp.example.co.jp.	3600	IN	SRV	0 1 587 smtp.skydesk.jp.
_pop3._tcp.example.co.jp.	3600	IN	SRV	0 0 0 .
_imap._tcp.example.co.jp.	3600	IN	SRV	0 0 0 .
_imaps._tcp.example.co.jp.	3600	IN	SRV	0 0 0 .
_autodiscover._tcp.example.co.jp.	3600	IN	SRV	0 1 443 autodiscover.skydesk.jp.
autoconfig.example.co.jp.	3600	IN	CNAME	autoconfig.skydesk.jp.
autodiscover.example.co.jp.	3600	IN	CNAME	autodiscover.skydesk.jp.
; Or delegate the zone to this service; it then serves only the records above
; (and SOA/NS), so do this only for a domain used for nothing else:
;   example.co.jp.	NS	ns1.skydesk.jp.
;   example.co.jp.	NS	ns2.skydesk.jp.
`

// TestDNS_recordsServeCheck: `dns records` prints what to publish; the
// running server, told about the domain by `skydeskd domain add` from
// another store handle (another process), answers it without a restart,
// so `dns check` against it finds every record ok; after `domain remove`
// the zone is refused and the check fails with exit 2.
func TestDNS_recordsServeCheck(t *testing.T) {
	t.Setenv("SKYDESKD_TEST_FAST_HASH", "1")
	dir := t.TempDir()
	file := dnsConfig(t, dir, "serve.yaml", "", "")
	dnsAddr, httpAddr := serveDNS(t, file)

	if code, _, stderr := dnsCLI(t, "dns", "records", "example.co.jp", "--config", file); code != exitRefused ||
		!strings.Contains(stderr, "not hosted") {
		t.Fatalf("records for a domain not hosted: exit %d, %q", code, stderr)
	}
	if code, _, stderr := dnsCLI(t, "domain", "add", "Example.CO.JP", "--config", file); code != exitOK {
		t.Fatalf("domain add: %d %s", code, stderr)
	}
	code, out, stderr := dnsCLI(t, "dns", "records", "example.co.jp", "--config", file)
	if code != exitOK || out != wantRecords {
		t.Fatalf("dns records: exit %d %s\n got:\n%s\nwant:\n%s", code, stderr, out, wantRecords)
	}

	check := func(cfg string) (int, string) {
		code, out, _ := dnsCLI(t, "dns", "check", "example.co.jp", "--config", cfg, "--resolver", dnsAddr)
		return code, out
	}
	waitFor(t, "the served zone to pass dns check", func() bool { code, _ := check(file); return code == exitOK })
	_, out = check(file)
	if n := strings.Count(out, "\nok "); n != 9 || !strings.Contains(out, "all 9 records ok") {
		t.Fatalf("dns check: %d ok lines:\n%s", n, out)
	}

	// A configuration that expects another SMTP host and the bundled MX:
	// the published SRV records are wrong and the MX missing.
	other := dnsConfig(t, dir, "other.yaml", "127.0.0.1:0", "provider: {smtp: {host: smtp2.skydesk.jp}}\n")
	code, out = check(other)
	if code != exitRefused {
		t.Fatalf("check with another SMTP host: exit %d, want %d\n%s", code, exitRefused, out)
	}
	for _, want := range []string{
		"wrong    _submissions._tcp.example.co.jp.\t3600\tIN\tSRV\t0 1 465 smtp2.skydesk.jp.\t; found: 0 1 465 smtp.skydesk.jp.",
		"wrong    _submission._tcp.example.co.jp.\t3600\tIN\tSRV\t0 1 587 smtp2.skydesk.jp.",
		"missing  example.co.jp.\t3600\tIN\tMX\t10 mx.skydesk.jp.",
		"ok       _pop3s._tcp.example.co.jp.\t3600\tIN\tSRV\t0 1 995 poppro.skydesk.jp.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}

	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`skydeskd_dns_queries_total{qtype="SRV",rcode="NOERROR"}`, `skydeskd_dns_queries_total{qtype="MX",rcode="NOERROR"}`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	if code, _, stderr := dnsCLI(t, "domain", "remove", "example.co.jp", "--config", file); code != exitOK {
		t.Fatalf("domain remove: %d %s", code, stderr)
	}
	// The domain is no longer ours: the server refuses the zone (and
	// `dns records|check` refuse the domain).
	pop3s := []dnssrv.Record{{Name: "_pop3s._tcp.example.co.jp.", TTL: 3600, Type: "SRV", Data: "0 1 995 poppro.skydesk.jp."}}
	waitFor(t, "the removed zone to be refused", func() bool {
		r := dnssrv.Check(context.Background(), dnsAddr, pop3s)
		return len(r) == 1 && r[0].Status == dnssrv.Failed && strings.Contains(strings.Join(r[0].Got, " "), "REFUSED")
	})
	if code, _ := check(file); code != exitRefused {
		t.Fatalf("check after removal: exit %d", code)
	}
}

// TestDNS_recordsIDN: a domain given in U-labels, any case, is printed
// in A-labels (what DNS hosts and clients use), with the bundled MX.
func TestDNS_recordsIDN(t *testing.T) {
	t.Setenv("SKYDESKD_TEST_FAST_HASH", "1")
	dir := t.TempDir()
	if code, _, stderr := dnsCLI(t, "domain", "add", "bücher.example", "--data", dir); code != exitOK {
		t.Fatalf("domain add: %d %s", code, stderr)
	}
	code, out, stderr := dnsCLI(t, "dns", "records", "BÜCHER.example", "--data", dir)
	if code != exitOK {
		t.Fatalf("dns records: %d %s", code, stderr)
	}
	for _, want := range []string{
		"_pop3s._tcp.xn--bcher-kva.example.\t3600\tIN\tSRV\t0 1 995 poppro.skydesk.jp.\n",
		"autoconfig.xn--bcher-kva.example.\t3600\tIN\tCNAME\tautoconfig.skydesk.jp.\n",
		// listen.mx is on by default: the MX is part of what to publish.
		"xn--bcher-kva.example.\t3600\tIN\tMX\t10 mx.skydesk.jp.\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("records lack %q:\n%s", want, out)
		}
	}
}

// TestDNS_usage: mistakes exit 1, refusals 2.
func TestDNS_usage(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"dns"}, exitUsage},
		{[]string{"dns", "zone"}, exitUsage},
		{[]string{"dns", "records"}, exitUsage},
		{[]string{"dns", "check", "a.example", "b.example"}, exitUsage},
		{[]string{"dns", "records", "not a domain", "--data", dir}, exitRefused},
		{[]string{"dns", "records", "unknown.example", "--data", dir}, exitRefused},
	} {
		if code, _, stderr := dnsCLI(t, tc.args...); code != tc.code {
			t.Errorf("%v: exit %d, want %d (%s)", tc.args, code, tc.code, stderr)
		}
	}
}

// config dns.rrl reaches dnssrv with its zeros meaning what the config
// file says (off, drop all), not dnssrv's "use the default".
func TestRRLOptions(t *testing.T) {
	for _, tc := range []struct {
		in   config.RRL
		want dnssrv.RRL
	}{
		{config.Default().DNS.RRL, dnssrv.RRL{ResponsesPerSecond: 20, Slip: 2, IPv4PrefixLen: 24, IPv6PrefixLen: 56}},
		{config.RRL{ResponsesPerSecond: 0, Slip: 2, IPv4PrefixLength: 24, IPv6PrefixLength: 56},
			dnssrv.RRL{ResponsesPerSecond: -1, Slip: 2, IPv4PrefixLen: 24, IPv6PrefixLen: 56}},
		{config.RRL{ResponsesPerSecond: 5, Slip: 0, IPv4PrefixLength: 32, IPv6PrefixLength: 64},
			dnssrv.RRL{ResponsesPerSecond: 5, Slip: -1, IPv4PrefixLen: 32, IPv6PrefixLen: 64}},
	} {
		if got := rrlOptions(tc.in); got.ResponsesPerSecond != tc.want.ResponsesPerSecond || got.Slip != tc.want.Slip ||
			got.IPv4PrefixLen != tc.want.IPv4PrefixLen || got.IPv6PrefixLen != tc.want.IPv6PrefixLen {
			t.Errorf("rrlOptions(%+v) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}
