package config

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestProxyProtocol_decode(t *testing.T) {
	c := Default()
	err := Decode(strings.NewReader("proxy_protocol:\n  listeners: [pop3s, mx, https]\n  trusted: [10.0.0.0/24, \"2001:db8::5\", 192.0.2.9/16]\n"), c)
	if err != nil {
		t.Fatal(err)
	}
	p := c.ProxyProtocol
	if !p.On("pop3s") || !p.On("mx") || p.On("pop3") || p.HeaderTimeoutValue() != 5*time.Second {
		t.Fatalf("%+v", p)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24"), netip.MustParsePrefix("2001:db8::5/128"), netip.MustParsePrefix("192.0.0.0/16")}
	if got := p.TrustedPrefixes(); !slices.Equal(got, want) {
		t.Fatalf("trusted %v, want %v", got, want)
	}
}

func TestProxyProtocol_offByDefault(t *testing.T) {
	if p := Default().ProxyProtocol; len(p.Listeners) != 0 || len(p.Trusted) != 0 {
		t.Fatalf("default %+v", p)
	}
}

func TestProxyProtocol_validationNamesTheKey(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"unknown listener", "listeners: [imap]\n  trusted: [10.0.0.1]", `proxy_protocol.listeners: "imap" is not one of`},
		{"twice", "listeners: [mx, mx]\n  trusted: [10.0.0.1]", `"mx" listed twice`},
		{"off listener", "listeners: [mx]\n  trusted: [10.0.0.1]\nlisten: {mx: \"\"}", `"mx" is off`},
		{"bad network", "listeners: [mx]\n  trusted: [10.0.0/8]", `proxy_protocol.trusted: "10.0.0/8" is not a network`},
		{"catch-all", "listeners: [mx]\n  trusted: [\"::/0\"]", `would let any client name its own address`},
		{"no trusted", "listeners: [mx]", `proxy_protocol.trusted: must name`},
		{"no listeners", "trusted: [10.0.0.1]", `proxy_protocol.listeners: must name`},
		{"timeout", "listeners: [mx]\n  trusted: [10.0.0.1]\n  header_timeout: soon", `proxy_protocol.header_timeout`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Decode(strings.NewReader("proxy_protocol:\n  "+tc.yaml+"\n"), Default())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}
