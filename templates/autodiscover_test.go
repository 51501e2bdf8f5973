package templates

import (
	"encoding/json"
	"encoding/xml"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/skydesk/skydeskd/internal/golden"
	"github.com/skydesk/skydeskd/profiles"
)

type poxDoc struct {
	XMLName  xml.Name `xml:"http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006 Autodiscover"`
	Response struct {
		XMLName xml.Name
		User    struct {
			DisplayName string
		}
		Account struct {
			AccountType, Action string
			Protocol            []struct {
				Type, Server, LoginName, DomainRequired, SPA, SSL, Encryption, AuthRequired, TTL string
				Port                                                                             int
				UsePOPAuth, SMTPLast                                                             *string
			}
		}
		Error *struct {
			Time      string `xml:"Time,attr"`
			ID        string `xml:"Id,attr"`
			ErrorCode int
			Message   string
		}
	}
}

func TestAutodiscoverPOX_golden(t *testing.T) {
	for _, f := range fixtures {
		if f.address == "" {
			continue // POX always carries an address
		}
		t.Run(f.name, func(t *testing.T) {
			p, a := f.resolve(t)
			b, err := AutodiscoverPOX(p, a)
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, "autodiscover-"+f.name+".xml", b)
			var d poxDoc
			if err := xml.Unmarshal(b, &d); err != nil {
				t.Fatalf("parsing back: %v", err)
			}
			if d.Response.XMLName.Space != NSOutlookResponse || d.Response.User.DisplayName != a.String() ||
				d.Response.Account.AccountType != "email" || d.Response.Account.Action != "settings" {
				t.Errorf("response = %+v", d.Response)
			}
			servers := append(append([]profiles.Server(nil), p.Incoming...), p.Outgoing...)
			if len(d.Response.Account.Protocol) != len(servers) {
				t.Fatalf("%d protocols, want %d", len(d.Response.Account.Protocol), len(servers))
			}
			wantEnc := []string{"SSL", "SSL", "TLS"}
			wantType := []string{"POP3", "SMTP", "SMTP"}
			for i, pr := range d.Response.Account.Protocol {
				s := servers[i]
				if pr.Type != wantType[i] || pr.Server != s.Host || pr.Port != s.Port || pr.LoginName != a.String() ||
					pr.DomainRequired != "off" || pr.SPA != "off" || pr.SSL != "on" || pr.Encryption != wantEnc[i] || pr.AuthRequired != "on" {
					t.Errorf("protocol[%d] = %+v", i, pr)
				}
				if (pr.Type == "SMTP") != (pr.UsePOPAuth != nil && *pr.UsePOPAuth == "on" && pr.SMTPLast != nil && *pr.SMTPLast == "off") {
					t.Errorf("protocol[%d] UsePOPAuth/SMTPLast wrong", i)
				}
			}
			// Thunderbird's reader is namespace-blind: no prefixes.
			if strings.Contains(string(b), "<a:") || strings.Contains(string(b), "xmlns:") {
				t.Errorf("prefixed namespaces in output")
			}
		})
	}
}

func TestAutodiscoverError_golden(t *testing.T) {
	at := time.Date(2026, 4, 1, 21, 25, 4, 889708300, time.UTC)
	for _, code := range []ErrorCode{CodeNotFound, CodeInvalidRequest, CodeUnsupportedSchema, CodeInternal} {
		b, err := AutodiscoverError(code, "autodiscover.skydesk.jp", at)
		if err != nil {
			t.Fatal(err)
		}
		golden.Check(t, "autodiscover-error-"+fmtCode(code)+".xml", b)
		var d poxDoc
		if err := xml.Unmarshal(b, &d); err != nil {
			t.Fatalf("parsing back: %v", err)
		}
		e := d.Response.Error
		if e == nil || e.ErrorCode != int(code) || e.Message != code.Message() || e.Time != "21:25:04.8897083" || e.ID == "" ||
			d.Response.XMLName.Space != NSResponse {
			t.Errorf("error %d = %+v", code, e)
		}
	}
}

func fmtCode(c ErrorCode) string { return strconv.Itoa(int(c)) }

func TestAutodiscoverJSON_golden(t *testing.T) {
	b, err := AutodiscoverJSON("autodiscover.skydesk.jp")
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "autodiscover-v2.json", b)
	var ok struct{ Protocol, Url string }
	if err := json.Unmarshal(b, &ok); err != nil || ok.Protocol != "AutodiscoverV1" || ok.Url != "https://autodiscover.skydesk.jp/autodiscover/autodiscover.xml" {
		t.Errorf("v2 = %+v, %v", ok, err)
	}
	hostile := `Ews"}<script>` + strings.Repeat("x", 200)
	b, err = AutodiscoverJSONInvalidProtocol(hostile)
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "autodiscover-v2-invalid-protocol.json", b)
	var e struct{ ErrorCode, ErrorMessage string }
	if err := json.Unmarshal(b, &e); err != nil || e.ErrorCode != "InvalidProtocol" || !strings.Contains(e.ErrorMessage, `'Ews"}<script>xxx`) {
		t.Errorf("v2 error = %+v, %v", e, err)
	}
	if strings.Contains(string(b), "<script>") || len(e.ErrorMessage) > 160 {
		t.Errorf("protocol echoed unescaped or unbounded: %s", b)
	}
}
