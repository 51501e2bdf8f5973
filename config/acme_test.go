package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidate_acme(t *testing.T) {
	const enabled = "acme:\n  enabled: true\ndns:\n  addresses:\n    autoconfig.skydesk.jp: [192.0.2.10]\n"
	for _, tc := range []struct{ yaml, key string }{
		{"acme:\n  ca_url: http://ca.example/dir\n", "acme.ca_url"},
		{"acme:\n  key_type: dsa\n", "acme.key_type"},
		{"acme:\n  email: nobody\n", "acme.email"},
		{"acme:\n  resolver: 127.0.0.1\n", "acme.resolver"},
		{"acme:\n  enabled: true\n", "acme.enabled"}, // no dns.addresses for the autoconfig host
		{enabled + "listen:\n  http: \"\"\n  https: \"\"\n", "acme.enabled"},
		{"acme:\n  enable: true\n", "enable"}, // unknown key
	} {
		t.Run(tc.key, func(t *testing.T) {
			err := Decode(strings.NewReader(tc.yaml), Default())
			if err == nil || !strings.Contains(err.Error(), tc.key) {
				t.Fatalf("error %v does not name %q for:\n%s", err, tc.key, tc.yaml)
			}
		})
	}
	c := Default()
	if err := Decode(strings.NewReader(strings.Replace(enabled, "enabled: true\n", "enabled: true\n  email: ops@skydesk.jp\n  resolver: \"[::1]:53\"\n", 1)), c); err != nil {
		t.Fatal(err)
	}
	if !c.ACME.Enabled || c.ACME.CAURL != LetsEncryptDirectory || c.ACME.KeyType != "p256" {
		t.Fatalf("acme = %+v", c.ACME)
	}
}

func TestACME_RootPool(t *testing.T) {
	if p, err := (ACME{}).RootPool(); p != nil || err != nil {
		t.Fatalf("unset = %v, %v; want system roots (nil)", p, err)
	}
	dir := t.TempDir()
	cfg := Default()
	cfg.DataDir = dir
	cert, err := cfg.LoadCertificate() // a self-signed PEM to read back
	if err != nil {
		t.Fatal(err)
	}
	if p, err := (ACME{TrustedRoots: cert.CertFile}).RootPool(); p == nil || err != nil {
		t.Fatalf("PEM file = %v, %v", p, err)
	}
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := (ACME{TrustedRoots: junk}).RootPool(); err == nil || !strings.Contains(err.Error(), "acme.trusted_roots") {
		t.Fatalf("junk file: %v", err)
	}
	if _, err := (ACME{TrustedRoots: filepath.Join(dir, "missing")}).RootPool(); err == nil {
		t.Fatal("missing file accepted")
	}
}
