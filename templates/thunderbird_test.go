package templates

import (
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skydesk/skydeskd/internal/golden"
	"github.com/skydesk/skydeskd/profiles"
)

// tbDoc is what Thunderbird's readFromXML reads, for parsing goldens back.
type tbDoc struct {
	XMLName  xml.Name `xml:"clientConfig"`
	Version  string   `xml:"version,attr"`
	Provider struct {
		ID       string      `xml:"id,attr"`
		Domains  []string    `xml:"domain"`
		Name     string      `xml:"displayName"`
		Incoming []tbSection `xml:"incomingServer"`
		Outgoing []tbSection `xml:"outgoingServer"`
		Docs     []struct {
			URL   string `xml:"url,attr"`
			Descr []struct {
				Lang string `xml:"lang,attr"`
				Text string `xml:",chardata"`
			} `xml:"descr"`
		} `xml:"documentation"`
	} `xml:"emailProvider"`
}

type tbSection struct {
	Type       string   `xml:"type,attr"`
	Hostname   string   `xml:"hostname"`
	Port       int      `xml:"port"`
	SocketType []string `xml:"socketType"`
	Username   string   `xml:"username"`
	Auth       []string `xml:"authentication"`
	Password   *string  `xml:"password"`
	POP3       *struct {
		Leave string `xml:"leaveMessagesOnServer"`
	} `xml:"pop3"`
}

func TestThunderbird_golden(t *testing.T) {
	for _, f := range fixtures {
		t.Run(f.name, func(t *testing.T) {
			p, a := f.resolve(t)
			b, err := Thunderbird(p, a)
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, "thunderbird-"+f.name+".xml", b)
			checkThunderbird(t, b, p, a)
		})
	}
}

// checkThunderbird parses a document back and checks the invariants of
// REFERENCE §1.2 against the Profile it was built from.
func checkThunderbird(t *testing.T, b []byte, p profiles.Profile, a profiles.Address) {
	t.Helper()
	if !strings.HasPrefix(string(b), `<?xml version="1.0" encoding="UTF-8"?>`) || !strings.HasSuffix(string(b), "\n") {
		t.Errorf("missing XML declaration or final newline")
	}
	var d tbDoc
	if err := xml.Unmarshal(b, &d); err != nil {
		t.Fatalf("parsing back: %v", err)
	}
	user := a.String()
	if a == (profiles.Address{}) {
		user = "%EMAILADDRESS%"
	}
	if d.Version != "1.1" || d.Provider.ID != "skydesk.jp" || len(d.Provider.Domains) != 1 || d.Provider.Domains[0] != p.Domain {
		t.Errorf("header: version %q id %q domains %v", d.Version, d.Provider.ID, d.Provider.Domains)
	}
	wantPOP := "poppro.skydesk.jp"
	if p.Kind == profiles.Personal {
		wantPOP = "pop.skydesk.jp"
	}
	if len(d.Provider.Incoming) != 1 {
		t.Fatalf("%d incoming servers, want exactly 1", len(d.Provider.Incoming))
	}
	in := d.Provider.Incoming[0]
	if in.Type != "pop3" || in.Hostname != wantPOP || in.Port != 995 || strings.Join(in.SocketType, ",") != "SSL" ||
		in.Username != user || strings.Join(in.Auth, ",") != "password-cleartext" || in.POP3 == nil || in.POP3.Leave != "true" {
		t.Errorf("incoming = %+v", in)
	}
	want := []struct {
		port int
		st   string
	}{{465, "SSL"}, {587, "STARTTLS"}}
	if len(d.Provider.Outgoing) != len(want) {
		t.Fatalf("%d outgoing servers, want %d", len(d.Provider.Outgoing), len(want))
	}
	for i, o := range d.Provider.Outgoing {
		if o.Type != "smtp" || o.Hostname != "smtp.skydesk.jp" || o.Port != want[i].port || strings.Join(o.SocketType, ",") != want[i].st ||
			o.Username != user || strings.Join(o.Auth, ",") != "password-cleartext" {
			t.Errorf("outgoing[%d] = %+v", i, o)
		}
	}
	for _, s := range append(d.Provider.Incoming, d.Provider.Outgoing...) {
		if s.Password != nil {
			t.Errorf("a password element was rendered")
		}
	}
	if len(d.Provider.Docs) != 1 || len(d.Provider.Docs[0].Descr) != 2 || d.Provider.Docs[0].Descr[0].Lang != "ja" || d.Provider.Docs[0].Descr[1].Lang != "en" {
		t.Errorf("documentation = %+v", d.Provider.Docs)
	}
}

// TestThunderbird_relaxNG validates every Thunderbird golden against the
// autoconfig draft's RELAX NG schema (a copy in testdata/schema).
func TestThunderbird_relaxNG(t *testing.T) {
	xmllint := requireTool(t, "xmllint")
	files, err := filepath.Glob(filepath.Join("testdata", "golden", "thunderbird-*.xml"))
	if err != nil || len(files) < len(fixtures) {
		t.Fatalf("goldens: %v %v", files, err)
	}
	args := append([]string{"--noout", "--relaxng", filepath.Join("testdata", "schema", "autoconfig.rng")}, files...)
	out, err := exec.Command(xmllint, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("xmllint: %v\n%s", err, out)
	}
	// Prove the validator can fail: a document with a non-integer port.
	bad := filepath.Join(t.TempDir(), "bad.xml")
	b, _ := os.ReadFile(files[0])
	if err := os.WriteFile(bad, []byte(strings.Replace(string(b), "<port>995</port>", "<port>ninety</port>", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(xmllint, "--noout", "--relaxng", args[2], bad).CombinedOutput(); err == nil {
		t.Fatalf("xmllint accepted an invalid document:\n%s", out)
	}
}

func TestThunderbird_refusesIncompleteProfile(t *testing.T) {
	for _, p := range []profiles.Profile{
		{},
		{Kind: profiles.Personal, Domain: "skydesk.jp"},
		{Kind: profiles.Personal, Domain: "skydesk.jp", Incoming: []profiles.Server{{Host: "pop.skydesk.jp", Port: 0}},
			Outgoing: []profiles.Server{{Host: "smtp.skydesk.jp", Port: 465}}},
	} {
		if _, err := Thunderbird(p, profiles.Address{}); err == nil {
			t.Errorf("Thunderbird(%+v) succeeded", p)
		}
	}
}

func TestSocketType(t *testing.T) {
	for _, tc := range []struct {
		in   profiles.Security
		want string
	}{{profiles.ImplicitTLS, "SSL"}, {profiles.STARTTLS, "STARTTLS"}, {0, ""}} {
		got, err := SocketType(tc.in)
		if got != tc.want || (err != nil) != (tc.want == "") {
			t.Errorf("SocketType(%v) = %q, %v", tc.in, got, err)
		}
	}
}
