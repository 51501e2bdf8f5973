package config

import (
	"bytes"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDefaultIsValid(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatalf("Default() invalid: %v", err)
	}
	if err := Dev(t.TempDir()).Validate(); err != nil {
		t.Fatalf("Dev() invalid: %v", err)
	}
}

func TestPublishedDefaults(t *testing.T) {
	p := Default().Provider
	for _, c := range []struct{ got, want any }{
		{p.PersonalDomain, "skydesk.jp"},
		{p.POP.PersonalHost, "pop.skydesk.jp"},
		{p.POP.OrganizationHost, "poppro.skydesk.jp"},
		{p.POP.Port, 995},
		{p.SMTP.Host, "smtp.skydesk.jp"},
		{p.SMTP.ImplicitTLSPort, 465},
		{p.SMTP.STARTTLSPort, 587},
		{Default().SMTP.Postmaster, "postmaster@skydesk.jp"},
		{Dev(t.TempDir()).SMTP.Postmaster, "postmaster@skydesk.jp"},
	} {
		if c.got != c.want {
			t.Errorf("got %v, want %v", c.got, c.want)
		}
	}
}

func TestExampleFileMatchesDefault(t *testing.T) {
	// The annotated example documents every key with its default: loading
	// it must succeed and change nothing.
	c, err := Load(filepath.Join("..", "skydeskd.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	d := Default()
	d.DNS.Addresses = map[string][]string{}
	c.TLS.ExtraNames = nil
	if got, want := c.Provider, d.Provider; got != want {
		t.Errorf("provider = %+v, want %+v", got, want)
	}
	if c.Listen != d.Listen || c.SMTP != d.SMTP || c.Log != d.Log || c.Auth != d.Auth || c.DataDir != d.DataDir {
		t.Errorf("example differs from Default():\n%+v\n%+v", c, d)
	}
}

func TestValidationErrorsNameTheKey(t *testing.T) {
	for _, tc := range []struct{ yaml, key string }{
		{"provider:\n  pop:\n    port: 0\n", "provider.pop.port"},
		{"provider:\n  smtp:\n    implicit_tls_port: 70000\n", "provider.smtp.implicit_tls_port"},
		{"provider:\n  smtp:\n    host: \"\"\n", "provider.smtp.host"},
		{"provider:\n  pop:\n    personal_host: \"pop skydesk\"\n", "provider.pop.personal_host"},
		{"provider:\n  personal_domain: \"\"\n", "provider.personal_domain"},
		{"provider:\n  help_url: ftp://x\n", "provider.help_url"},
		{"provider:\n  time_zone: Mars/Olympus\n", "provider.time_zone"},
		{"provider:\n  time_zone: Local\n", "provider.time_zone"},
		{"provider:\n  time_zone: \"\"\n", "provider.time_zone"},
		{"provider:\n  time_zone: ../../etc/passwd\n", "provider.time_zone"},
		{"listen:\n  pop3s: \"nonsense\"\n", "listen.pop3s"},
		{"tls:\n  cert_file: /x.pem\n", "tls.cert_file"},
		{"smtp:\n  max_message_size: 10\n", "smtp.max_message_size"},
		{"smtp:\n  smarthost:\n    host: relay.example.net\n    port: 0\n", "smtp.smarthost.port"},
		{"smtp:\n  postmaster: postmaster\n", "smtp.postmaster"},
		{"smtp:\n  smarthost:\n    host: relay.example.net\n    port: 465\n    tls: maybe\n", "smtp.smarthost.tls"},
		{"smtp:\n  smarthost:\n    host: relay.example.net\n    port: 465\n    claim_lease: 0s\n", "smtp.smarthost.claim_lease"},
		{"spam:\n  rspamd_url: 127.0.0.1:11333\n", "spam.rspamd_url"},
		{"spam:\n  timeout: 0s\n", "spam.timeout"},
		{"spam:\n  on_error: reject\n", "spam.on_error"},
		{"dns:\n  addresses:\n    pop.skydesk.jp: [not-an-ip]\n", "dns.addresses.pop.skydesk.jp"},
		{"dns:\n  nameservers: []\n", "dns.nameservers"},
		{"dns:\n  rrl:\n    responses_per_second: -1\n", "dns.rrl.responses_per_second"},
		{"dns:\n  rrl:\n    slip: 11\n", "dns.rrl.slip"},
		{"dns:\n  rrl:\n    ipv4_prefix_length: 33\n", "dns.rrl.ipv4_prefix_length"},
		{"dns:\n  rrl:\n    ipv6_prefix_length: 0\n", "dns.rrl.ipv6_prefix_length"},
		{"log:\n  level: loud\n", "log.level"},
		{"auth:\n  lock_duration: soon\n", "auth.lock_duration"},
		{"auth:\n  failures_before_lock: 2\n", "auth.failures_before_lock"},
		{"data_dir: \"\"\n", "data_dir"},
		{"provider:\n  pop:\n    prot: 995\n", "prot"},  // unknown key
		{"listen:\n  imap: \":143\"\n", "imap"},         // unknown key
		{"provider:\n  pop:\n    port: many\n", "port"}, // wrong type
	} {
		t.Run(tc.key, func(t *testing.T) {
			c := Default()
			err := Decode(strings.NewReader(tc.yaml), c)
			if err == nil {
				t.Fatalf("accepted:\n%s", tc.yaml)
			}
			if !strings.Contains(err.Error(), tc.key) {
				t.Errorf("error %q does not name %q", err, tc.key)
			}
		})
	}
}

// smtp.postmaster: an address an account could have, or "" for none.
func TestValidate_postmaster(t *testing.T) {
	for _, tc := range []struct {
		value string
		ok    bool
	}{
		{"postmaster@skydesk.jp", true},
		{"Postmaster@SkyDesk.JP", true},
		{"abuse-desk@example.co.jp", true},
		{"postmaster@xn--r8jz45g.jp", true},
		{"", true}, // no service-wide postmaster
		{"postmaster", false},
		{"@skydesk.jp", false},
		{"postmaster@", false},
		{"postmaster@localhost", false},
		{"postmaster@skydesk.jp.", false},
		{"post master@skydesk.jp", false},
		{"<postmaster@skydesk.jp>", false},
		{`"postmaster"@skydesk.jp`, false},
		{".postmaster@skydesk.jp", false},
		{"post..master@skydesk.jp", false},
		{"postmaster@例え.jp", false}, // A-labels, as for every host key
		{"postmaster@sky_desk.jp", false},
		{strings.Repeat("p", 65) + "@skydesk.jp", false},
	} {
		t.Run(tc.value, func(t *testing.T) {
			c := Default()
			c.SMTP.Postmaster = tc.value
			err := c.Validate()
			if tc.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tc.ok && (err == nil || !strings.HasPrefix(err.Error(), "smtp.postmaster: ")) {
				t.Fatalf("got %v, want an smtp.postmaster error", err)
			}
		})
	}
}

// The default postmaster moves with provider.personal_domain unless the
// file names smtp.postmaster itself (then that value, "" included, wins).
func TestDecode_postmasterFollowsPersonalDomain(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"log:\n  level: debug\n", "postmaster@skydesk.jp"},
		{"provider:\n  personal_domain: mail.example.net\n", "postmaster@mail.example.net"},
		{"provider: {personal_domain: mail.example.net}\nsmtp: {hostname: smtp.example.net}\n", "postmaster@mail.example.net"},
		{"provider:\n  personal_domain: mail.example.net\nsmtp:\n  postmaster: hostmaster@example.net\n", "hostmaster@example.net"},
		{"provider:\n  personal_domain: mail.example.net\nsmtp:\n  postmaster: \"\"\n", ""},
		{"smtp:\n  postmaster: \"\"\n", ""},
	} {
		c := Default()
		if err := Decode(strings.NewReader(tc.yaml), c); err != nil {
			t.Fatalf("%q: %v", tc.yaml, err)
		}
		if c.SMTP.Postmaster != tc.want {
			t.Errorf("%q: smtp.postmaster = %q, want %q", tc.yaml, c.SMTP.Postmaster, tc.want)
		}
	}
}

func TestLoadOverridesOnlyGivenKeys(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(p, []byte("provider:\n  name: Other Mail\n  pop:\n    port: 1995\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.Provider.Name != "Other Mail" || c.Provider.POP.Port != 1995 || c.Provider.POP.PersonalHost != "pop.skydesk.jp" {
		t.Errorf("provider = %+v", c.Provider)
	}
}

func TestSelfSignedCertificateMadeOnceAndReused(t *testing.T) {
	c := Default()
	c.DataDir = t.TempDir()
	first, err := c.LoadCertificate()
	if err != nil {
		t.Fatal(err)
	}
	second, err := c.LoadCertificate()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first.Leaf.Raw, second.Leaf.Raw) {
		t.Error("certificate was regenerated on the second start")
	}
	leaf := first.Leaf
	if leaf.PublicKeyAlgorithm != x509.ECDSA {
		t.Errorf("key algorithm = %v, want ECDSA", leaf.PublicKeyAlgorithm)
	}
	for _, name := range []string{"pop.skydesk.jp", "poppro.skydesk.jp", "smtp.skydesk.jp", "autoconfig.skydesk.jp", "localhost"} {
		if err := leaf.VerifyHostname(name); err != nil {
			t.Errorf("certificate not valid for %s: %v", name, err)
		}
	}
	if err := leaf.VerifyHostname("127.0.0.1"); err != nil {
		t.Errorf("certificate not valid for 127.0.0.1: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(c.DataDir, SelfSignedKey)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode: %v %v", fi.Mode(), err)
	}
	if cfg := first.ServerTLS(); cfg.MinVersion < 0x0303 {
		t.Errorf("TLS minimum %x, want TLS 1.2+", cfg.MinVersion)
	}
}

// spam: off by default (today's header-derived flag); on with a URL.
func TestSpam(t *testing.T) {
	d := Default()
	if d.Spam.RspamdURL != "" || d.Spam.OnError != "accept" || d.Spam.TimeoutValue() != 10*time.Second {
		t.Errorf("default spam %+v", d.Spam)
	}
	c := Default()
	if err := Decode(strings.NewReader("spam:\n  rspamd_url: http://127.0.0.1:11333\n  on_error: tempfail\n  timeout: 3s\n"), c); err != nil {
		t.Fatal(err)
	}
	if c.Spam.RspamdURL != "http://127.0.0.1:11333" || c.Spam.OnError != "tempfail" || c.Spam.TimeoutValue() != 3*time.Second {
		t.Errorf("decoded %+v", c.Spam)
	}
}

func TestProviderLocation(t *testing.T) {
	loc := Default().Provider.Location()
	got := time.Date(2026, 3, 2, 0, 0, 0, 0, loc).UTC()
	if want := time.Date(2026, 3, 1, 15, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("midnight in the default zone is %v UTC, want %v (Asia/Tokyo, +09:00)", got, want)
	}
}
