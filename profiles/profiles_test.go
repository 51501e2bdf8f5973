package profiles

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func testResolver() *Resolver {
	return NewResolver(Settings{
		Provider:            Provider{ID: "skydesk.jp", Name: "SkyDesk Mail"},
		PersonalDomain:      "skydesk.jp",
		PersonalPOPHost:     "pop.skydesk.jp",
		OrganizationPOPHost: "poppro.skydesk.jp",
		POPPort:             995,
		SMTPHost:            "smtp.skydesk.jp",
		SMTPImplicitTLSPort: 465,
		SMTPSTARTTLSPort:    587,
	}, DomainSet{"example.co.jp": true, "xn--r8jz45g.jp": true})
}

func TestResolve(t *testing.T) {
	r := testResolver()
	for _, tc := range []struct {
		in         string
		kind       Kind
		addr       string // normalised address; "" when refused
		pop        string
		wantErr    error
		reasonPart string
	}{
		{in: "taro@skydesk.jp", kind: Personal, addr: "taro@skydesk.jp", pop: "pop.skydesk.jp"},
		{in: "you@example.co.jp", kind: Organization, addr: "you@example.co.jp", pop: "poppro.skydesk.jp"},
		{in: "Taro@SKYDESK.JP", kind: Personal, addr: "Taro@skydesk.jp", pop: "pop.skydesk.jp"},
		{in: "you@Example.Co.Jp", kind: Organization, addr: "you@example.co.jp", pop: "poppro.skydesk.jp"},
		{in: "taro+tag@skydesk.jp", kind: Personal, addr: "taro+tag@skydesk.jp", pop: "pop.skydesk.jp"},
		{in: "o'brien&co@example.co.jp", kind: Organization, addr: "o'brien&co@example.co.jp", pop: "poppro.skydesk.jp"},
		{in: "info@例え.jp", kind: Organization, addr: "info@xn--r8jz45g.jp", pop: "poppro.skydesk.jp"},
		{in: "info@XN--R8JZ45G.JP", kind: Organization, addr: "info@xn--r8jz45g.jp", pop: "poppro.skydesk.jp"},
		{in: "info@ＥＸＡＭＰＬＥ.co.jp", kind: Organization, addr: "info@example.co.jp", pop: "poppro.skydesk.jp"}, // UTS #46 width mapping
		{in: "a@b@skydesk.jp", wantErr: ErrInvalidAddress, reasonPart: "not allowed"},
		{in: "someone@gmail.com", kind: Unknown, addr: "someone@gmail.com", wantErr: ErrUnknownDomain},
		{in: "someone@sub.skydesk.jp", kind: Unknown, addr: "someone@sub.skydesk.jp", wantErr: ErrUnknownDomain},
		{in: "", wantErr: ErrInvalidAddress, reasonPart: "empty"},
		{in: "taro", wantErr: ErrInvalidAddress, reasonPart: "missing @"},
		{in: "@skydesk.jp", wantErr: ErrInvalidAddress, reasonPart: "empty local part"},
		{in: "taro@", wantErr: ErrInvalidAddress, reasonPart: "empty domain"},
		{in: "taro@localhost", wantErr: ErrInvalidAddress, reasonPart: "no dot"},
		{in: "ta ro@skydesk.jp", wantErr: ErrInvalidAddress, reasonPart: "space"},
		{in: "taro\r\nBcc: x@skydesk.jp", wantErr: ErrInvalidAddress},
		{in: `"taro"@skydesk.jp`, wantErr: ErrInvalidAddress, reasonPart: "not allowed"},
		{in: "<taro@skydesk.jp>", wantErr: ErrInvalidAddress},
		{in: ".taro@skydesk.jp", wantErr: ErrInvalidAddress, reasonPart: "dot"},
		{in: "taro..x@skydesk.jp", wantErr: ErrInvalidAddress, reasonPart: "dot"},
		{in: "taro@[127.0.0.1]", wantErr: ErrInvalidAddress, reasonPart: "literal"},
		{in: "taro@exa_mple.jp", wantErr: ErrInvalidAddress, reasonPart: "host name"},
		{in: "taro@-bad.jp", wantErr: ErrInvalidAddress},
		{in: strings.Repeat("a", 65) + "@skydesk.jp", wantErr: ErrInvalidAddress, reasonPart: "64"},
		{in: "a@" + strings.Repeat("b", 250) + ".jp", wantErr: ErrInvalidAddress, reasonPart: "254"},
		{in: "taro@sky\xffdesk.jp", wantErr: ErrInvalidAddress, reasonPart: "UTF-8"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			a, p, err := r.Resolve(context.Background(), tc.in)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Resolve(%q) err = %v, want %v", tc.in, err, tc.wantErr)
				}
				if tc.reasonPart != "" && !strings.Contains(err.Error(), tc.reasonPart) {
					t.Errorf("error %q does not say %q", err, tc.reasonPart)
				}
				if tc.addr != "" && a.String() != tc.addr {
					t.Errorf("address = %q, want %q", a, tc.addr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Resolve(%q): %v", tc.in, err)
			}
			if a.String() != tc.addr {
				t.Errorf("address = %q, want %q", a, tc.addr)
			}
			if p.Kind != tc.kind {
				t.Errorf("kind = %v, want %v", p.Kind, tc.kind)
			}
			checkProfile(t, p, tc.pop)
		})
	}
}

// checkProfile asserts the invariants of DESIGN.md §1 every format relies on.
func checkProfile(t *testing.T, p Profile, pop string) {
	t.Helper()
	if len(p.Incoming) != 1 {
		t.Fatalf("incoming servers = %d, want exactly 1", len(p.Incoming))
	}
	in := p.Incoming[0]
	if in.Protocol != POP3 || in.Host != pop || in.Port != 995 || in.Security != ImplicitTLS || !in.AuthRequired {
		t.Errorf("incoming = %+v", in)
	}
	if len(p.Outgoing) != 2 {
		t.Fatalf("outgoing servers = %d, want 2", len(p.Outgoing))
	}
	if o := p.Outgoing[0]; o.Host != "smtp.skydesk.jp" || o.Port != 465 || o.Security != ImplicitTLS || !o.AuthRequired {
		t.Errorf("first outgoing = %+v, want 465 implicit TLS", o)
	}
	if o := p.Outgoing[1]; o.Host != "smtp.skydesk.jp" || o.Port != 587 || o.Security != STARTTLS || !o.AuthRequired {
		t.Errorf("second outgoing = %+v, want 587 STARTTLS", o)
	}
}

func TestKindIgnoresMailboxExistence(t *testing.T) {
	r := testResolver()
	_, p1, err1 := r.Resolve(context.Background(), "exists@example.co.jp")
	_, p2, err2 := r.Resolve(context.Background(), "nobody-at-all-9f3k@example.co.jp")
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if p1.Kind != p2.Kind || p1.Incoming[0] != p2.Incoming[0] {
		t.Error("two addresses of one domain resolved differently")
	}
}

func TestDisplayDomain(t *testing.T) {
	if got := DisplayDomain("xn--r8jz45g.jp"); got != "例え.jp" {
		t.Errorf("DisplayDomain = %q", got)
	}
}

func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{"taro@skydesk.jp", "info@例え.jp", "a@b@c", "\r\n@x.jp", "x@[1.2.3.4]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAddress(s)
		if err != nil {
			return
		}
		out := a.String()
		if strings.ContainsAny(out, "\r\n<>\"\x00 ") {
			t.Fatalf("ParseAddress(%q) accepted unsafe %q", s, out)
		}
		again, err := ParseAddress(out)
		if err != nil || again != a {
			t.Fatalf("not idempotent: %q -> %q -> %v %v", s, out, again, err)
		}
	})
}

func BenchmarkResolve(b *testing.B) {
	r := testResolver()
	ctx := context.Background()
	for b.Loop() {
		if _, _, err := r.Resolve(ctx, "hanako@example.co.jp"); err != nil {
			b.Fatal(err)
		}
	}
}

func TestNormalizeAddress(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"  Taro@SkyDesk.JP ", "taro@skydesk.jp"},
		{"Info@例え.jp", "info@xn--r8jz45g.jp"},
		{"o'Brien&Co@Example.ORG", "o'brien&co@example.org"},
	} {
		a, err := NormalizeAddress(tc.in)
		if err != nil || a.String() != tc.want {
			t.Errorf("NormalizeAddress(%q) = %q, %v; want %q", tc.in, a, err, tc.want)
		}
	}
	if _, err := NormalizeAddress(" taro "); !errors.Is(err, ErrInvalidAddress) {
		t.Errorf("NormalizeAddress without @ = %v, want ErrInvalidAddress", err)
	}
	if got := (Address{Local: "Taro", Domain: "SkyDesk.JP"}).Fold(); got.String() != "taro@skydesk.jp" {
		t.Errorf("Fold = %q", got)
	}
}

func TestKindOf(t *testing.T) {
	hosted := DomainSet{"example.co.jp": true}
	for _, tc := range []struct {
		domain string
		want   Kind
	}{{"skydesk.jp", Personal}, {"example.co.jp", Organization}, {"example.com", Unknown}} {
		if k, err := KindOf(context.Background(), tc.domain, "skydesk.jp", hosted); err != nil || k != tc.want {
			t.Errorf("KindOf(%s) = %v, %v; want %v", tc.domain, k, err, tc.want)
		}
	}
}
