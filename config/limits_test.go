package config

import (
	"strings"
	"testing"
	"time"
)

func TestLimits_defaults(t *testing.T) {
	l := Default().Limits
	for _, c := range []struct{ got, want any }{
		{l.IPv4Prefix, 32}, {l.IPv6Prefix, 64},
		{l.TLSHandshakeTimeoutValue(), 10 * time.Second},
		{l.POP.ConnectionsPerNetwork, 50}, {l.POP.LoginTimeoutValue(), time.Minute},
		{l.SMTP.ConnectionsPerNetwork, 20}, {l.HTTP.ConnectionsPerNetwork, 64}, {l.DNSTCP.ConnectionsPerNetwork, 16},
	} {
		if c.got != c.want {
			t.Errorf("got %v, want %v", c.got, c.want)
		}
	}
}

func TestLimits_decode(t *testing.T) {
	c := Default()
	err := Decode(strings.NewReader("limits:\n  ipv6_prefix: 56\n  pop:\n    connections_per_network: 200\n"), c)
	if err != nil {
		t.Fatal(err)
	}
	if c.Limits.IPv6Prefix != 56 || c.Limits.POP.ConnectionsPerNetwork != 200 || c.Limits.POP.LoginTimeout != "1m" ||
		c.Limits.SMTP.FirstCommandTimeoutValue() != time.Minute || c.Limits.DNSTCP.FirstQueryTimeoutValue() != 5*time.Second {
		t.Errorf("limits = %+v", c.Limits)
	}
}

func TestLimits_validationNamesTheKey(t *testing.T) {
	for _, tc := range []struct{ yaml, key string }{
		{"limits:\n  ipv4_prefix: 33\n", "limits.ipv4_prefix"},
		{"limits:\n  ipv6_prefix: 16\n", "limits.ipv6_prefix"},
		{"limits:\n  tls_handshake_timeout: 0s\n", "limits.tls_handshake_timeout"},
		{"limits:\n  pop:\n    login_timeout: soon\n", "limits.pop.login_timeout"},
		{"limits:\n  pop:\n    connections_per_network: 0\n", "limits.pop.connections_per_network"},
		{"limits:\n  smtp:\n    connections_per_network: -1\n", "limits.smtp.connections_per_network"},
		{"limits:\n  http:\n    connections_per_network: 0\n", "limits.http.connections_per_network"},
		{"limits:\n  dns_tcp:\n    connections_per_network: 0\n", "limits.dns_tcp.connections_per_network"},
		{"limits:\n  smtp:\n    first_command_timeout: -1s\n", "limits.smtp.first_command_timeout"},
		{"limits:\n  dns_tcp:\n    first_query_timeout: later\n", "limits.dns_tcp.first_query_timeout"},
		{"limits:\n  pop:\n    connections: 5\n", "connections"}, // unknown key
	} {
		t.Run(tc.key, func(t *testing.T) {
			err := Decode(strings.NewReader(tc.yaml), Default())
			if err == nil || !strings.Contains(err.Error(), tc.key) {
				t.Fatalf("error %v does not name %q", err, tc.key)
			}
		})
	}
}

// The annotated example shows the shipped limits.
func TestLimits_exampleMatchesDefault(t *testing.T) {
	c, err := Load("../skydeskd.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Limits != Default().Limits {
		t.Errorf("example limits %+v, want %+v", c.Limits, Default().Limits)
	}
}
