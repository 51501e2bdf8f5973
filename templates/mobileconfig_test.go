package templates

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
	"howett.net/plist"

	"github.com/skydesk/skydeskd/internal/golden"
	"github.com/skydesk/skydeskd/profiles"
)

func TestMobileConfig_golden(t *testing.T) {
	top := loadAppleKeys(t, "TopLevel.yaml")
	payload := loadAppleKeys(t, "CommonPayloadKeys.yaml", "com.apple.mail.managed.yaml")
	for _, f := range fixtures {
		t.Run(f.name, func(t *testing.T) {
			p, a := f.resolve(t)
			b, err := MobileConfig(p, a)
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, "apple-"+f.name+".mobileconfig", b)
			var doc map[string]any
			if _, err := plist.Unmarshal(b, &doc); err != nil {
				t.Fatalf("parsing back: %v", err)
			}
			checkAppleDict(t, "top level", doc, top)
			content, _ := doc["PayloadContent"].([]any)
			if len(content) != 1 {
				t.Fatalf("PayloadContent has %d payloads, want 1", len(content))
			}
			mail, _ := content[0].(map[string]any)
			checkAppleDict(t, "mail payload", mail, payload)
			checkMailPayload(t, mail, p, a)
			ids := MobileConfigIdentifiers(p, a)
			if doc["PayloadIdentifier"] != ids.Identifier || doc["PayloadUUID"] != ids.UUID ||
				mail["PayloadIdentifier"] != ids.PayloadIdentifier || mail["PayloadUUID"] != ids.PayloadUUID {
				t.Errorf("identifiers differ from MobileConfigIdentifiers")
			}
		})
	}
}

func checkMailPayload(t *testing.T, m map[string]any, p profiles.Profile, a profiles.Address) {
	t.Helper()
	want := map[string]any{
		"PayloadType": "com.apple.mail.managed", "EmailAccountType": "EmailTypePOP",
		"IncomingMailServerHostName": p.Incoming[0].Host, "IncomingMailServerPortNumber": uint64(995),
		"IncomingMailServerUseSSL": true, "IncomingMailServerAuthentication": "EmailAuthPassword",
		"OutgoingMailServerHostName": "smtp.skydesk.jp", "OutgoingMailServerPortNumber": uint64(465),
		"OutgoingMailServerUseSSL": true, "OutgoingMailServerAuthentication": "EmailAuthPassword",
		"OutgoingPasswordSameAsIncomingPassword": true,
	}
	if a != (profiles.Address{}) {
		want["EmailAddress"] = a.String()
		want["IncomingMailServerUsername"] = a.String()
		want["OutgoingMailServerUsername"] = a.String()
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %#v, want %#v", k, m[k], v)
		}
	}
	for _, k := range []string{"IncomingPassword", "OutgoingPassword"} {
		if _, ok := m[k]; ok {
			t.Errorf("%s rendered into a web-served profile", k)
		}
	}
	if a == (profiles.Address{}) {
		for _, k := range []string{"EmailAddress", "IncomingMailServerUsername"} {
			if _, ok := m[k]; ok {
				t.Errorf("generic profile has %s", k)
			}
		}
	}
}

// appleKey is one key of Apple's device-management YAML schema.
type appleKey struct {
	Key       string     `yaml:"key"`
	Type      string     `yaml:"type"`
	Presence  string     `yaml:"presence"`
	RangeList []any      `yaml:"rangelist"`
	Format    string     `yaml:"format"`
	Subkeys   []appleKey `yaml:"subkeys"`
}

func loadAppleKeys(t *testing.T, files ...string) map[string]appleKey {
	t.Helper()
	keys := map[string]appleKey{}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join("testdata", "schema", f))
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			PayloadKeys []appleKey `yaml:"payloadkeys"`
		}
		if err := yaml.Unmarshal(b, &doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if len(doc.PayloadKeys) == 0 {
			t.Fatalf("%s: no payloadkeys", f)
		}
		for _, k := range doc.PayloadKeys {
			keys[k.Key] = k
		}
	}
	return keys
}

// checkAppleDict checks every key of a plist dict against Apple's schema:
// known key, type, rangelist and format; and that required keys exist.
func checkAppleDict(t *testing.T, where string, d map[string]any, schema map[string]appleKey) {
	t.Helper()
	for _, e := range appleDictErrors(d, schema) {
		t.Errorf("%s: %s", where, e)
	}
}

func appleDictErrors(d map[string]any, schema map[string]appleKey) []string {
	var errs []string
	for k, v := range d {
		spec, ok := schema[k]
		if !ok {
			errs = append(errs, fmt.Sprintf("key %s is not in Apple's schema", k))
			continue
		}
		if got := plistType(v); got != spec.Type {
			errs = append(errs, fmt.Sprintf("%s: type %s, schema says %s", k, got, spec.Type))
			continue
		}
		if len(spec.RangeList) > 0 && !slices.ContainsFunc(spec.RangeList, func(r any) bool { return fmt.Sprint(r) == fmt.Sprint(v) }) {
			errs = append(errs, fmt.Sprintf("%s: %v not in %v", k, v, spec.RangeList))
		}
		if spec.Format != "" && !regexp.MustCompile(spec.Format).MatchString(fmt.Sprint(v)) {
			errs = append(errs, fmt.Sprintf("%s: %v does not match %s", k, v, spec.Format))
		}
	}
	for k, spec := range schema {
		if _, ok := d[k]; !ok && spec.Presence == "required" && k != "EncryptedPayloadContent" {
			errs = append(errs, "required key "+k+" missing")
		}
	}
	slices.Sort(errs)
	return errs
}

func plistType(v any) string {
	switch v.(type) {
	case string:
		return "<string>"
	case uint64, int64, int:
		return "<integer>"
	case bool:
		return "<boolean>"
	case []any:
		return "<array>"
	case map[string]any:
		return "<dictionary>"
	case []byte:
		return "<data>"
	case time.Time:
		return "<date>"
	case float64:
		return "<real>"
	}
	return fmt.Sprintf("%T", v)
}

// TestAppleSchemaCheck_canFail proves the schema check rejects what it
// must, so the golden test above cannot pass vacuously.
func TestAppleSchemaCheck_canFail(t *testing.T) {
	schema := loadAppleKeys(t, "CommonPayloadKeys.yaml", "com.apple.mail.managed.yaml")
	bad := map[string]any{
		"PayloadType": "com.apple.mail.managed", "PayloadVersion": uint64(1), "PayloadIdentifier": "x",
		"PayloadUUID": "x", "EmailAccountType": "EmailTypeExchange", "IncomingMailServerHostName": "h",
		"IncomingMailServerAuthentication": "EmailAuthPassword", "OutgoingMailServerHostName": "h",
		"IncomingMailServerPortNumber": "995", "Bogus": true, "SMIMESigningCertificateUUID": "not-a-uuid",
	}
	got := strings.Join(appleDictErrors(bad, schema), "\n")
	for _, want := range []string{"EmailTypeExchange not in", "IncomingMailServerPortNumber: type <string>", "Bogus is not in",
		"required key OutgoingMailServerAuthentication missing", "does not match"} {
		if !strings.Contains(got, want) {
			t.Errorf("schema check missed %q; got:\n%s", want, got)
		}
	}
}

func TestMobileConfigIdentifiers_stable(t *testing.T) {
	r := testResolver(t)
	p, _ := r.Lookup(t.Context(), "example.co.jp")
	a1 := MobileConfigIdentifiers(p, profiles.Address{Local: "Taro", Domain: "example.co.jp"})
	a2 := MobileConfigIdentifiers(p, profiles.Address{Local: "taro", Domain: "example.co.jp"})
	b := MobileConfigIdentifiers(p, profiles.Address{Local: "jiro", Domain: "example.co.jp"})
	if a1 != a2 {
		t.Errorf("case changes identifiers: %+v vs %+v", a1, a2)
	}
	if a1.UUID == b.UUID || a1.Identifier == b.Identifier || a1.PayloadUUID == b.PayloadUUID || a1.UUID == a1.PayloadUUID {
		t.Errorf("identifiers collide: %+v %+v", a1, b)
	}
	if !regexp.MustCompile(`^[0-9A-F]{8}-[0-9A-F]{4}-5[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$`).MatchString(a1.UUID) {
		t.Errorf("UUID %s is not an upper-case version-5 UUID", a1.UUID)
	}
	if !strings.HasPrefix(a1.Identifier, "jp.skydesk.mail.profile.") || strings.Contains(a1.Identifier, "taro") {
		t.Errorf("identifier %s", a1.Identifier)
	}
}

// testChain makes a root CA, an intermediate and a leaf signed by it.
func testChain(t testing.TB) (root, inter, leaf *x509.Certificate, key crypto.Signer) {
	t.Helper()
	mk := func(tmpl, parent *x509.Certificate, pub, signer any) *x509.Certificate {
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	now := time.Now()
	ca := func(n int64, cn string) *x509.Certificate {
		return &x509.Certificate{SerialNumber: big.NewInt(n), Subject: pkix.Name{CommonName: cn}, NotBefore: now.Add(-time.Hour),
			NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	}
	rk, ik, lk := newKey(), newKey(), newKey()
	rt := ca(1, "Test Root")
	root = mk(rt, rt, &rk.PublicKey, rk)
	inter = mk(ca(2, "Test Intermediate"), root, &ik.PublicKey, rk)
	lt := &x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "autoconfig.skydesk.jp"},
		DNSNames: []string{"autoconfig.skydesk.jp"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageAny}}
	leaf = mk(lt, inter, &lk.PublicKey, ik)
	return root, inter, leaf, lk
}

func writePEM(t *testing.T, path string, certs ...*x509.Certificate) {
	t.Helper()
	var b bytes.Buffer
	for _, c := range certs {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestSign_opensslVerify signs a profile with a leaf under an intermediate
// and verifies it with `openssl cms -verify` trusting only the root, so the
// intermediate must travel inside the SignedData; the content openssl
// extracts is byte-identical to the plist and parses as one.
func TestSign_opensslVerify(t *testing.T) {
	openssl := requireTool(t, "openssl")
	root, inter, leaf, key := testChain(t)
	p, a := fixtures[1].resolve(t)
	content, err := MobileConfig(p, a)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := Sign(content, Signer{Cert: leaf, Chain: []*x509.Certificate{inter}, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	in, rootPEM, out := filepath.Join(dir, "p.mobileconfig"), filepath.Join(dir, "root.pem"), filepath.Join(dir, "content.plist")
	writePEM(t, rootPEM, root)
	if err := os.WriteFile(in, signed, 0o644); err != nil {
		t.Fatal(err)
	}
	verify := func(ca string) ([]byte, error) {
		return exec.Command(openssl, "cms", "-verify", "-inform", "DER", "-in", in, "-CAfile", ca,
			"-purpose", "any", "-out", out).CombinedOutput()
	}
	if msg, err := verify(rootPEM); err != nil {
		t.Fatalf("openssl cms -verify: %v\n%s", err, msg)
	}
	got, err := os.ReadFile(out)
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("extracted content differs from the plist (%v)", err)
	}
	var doc map[string]any
	if _, err := plist.Unmarshal(got, &doc); err != nil || doc["PayloadType"] != "Configuration" {
		t.Fatalf("extracted content is not the profile plist: %v", err)
	}
	// A different root must not verify: the check can fail.
	other, _, _, _ := testChain(t)
	otherPEM := filepath.Join(dir, "other.pem")
	writePEM(t, otherPEM, other)
	if msg, err := verify(otherPEM); err == nil {
		t.Fatalf("verified against an unrelated root:\n%s", msg)
	}
}

func TestSign_refusesMissingMaterial(t *testing.T) {
	if _, err := Sign([]byte("x"), Signer{}); err == nil {
		t.Fatal("signed without a certificate")
	}
}
