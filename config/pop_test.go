package config

import (
	"strings"
	"testing"
	"time"
)

func TestPOPLeaseTTL(t *testing.T) {
	if got := Default().POP.LeaseTTLValue(); got != DefaultLeaseTTL {
		t.Errorf("default lease TTL = %v, want %v", got, DefaultLeaseTTL)
	}
	c := Default()
	if err := Decode(strings.NewReader("pop:\n  lease_ttl: 90s\n"), c); err != nil {
		t.Fatal(err)
	}
	if got := c.POP.LeaseTTLValue(); got != 90*time.Second {
		t.Errorf("lease TTL = %v, want 90s", got)
	}
	for _, v := range []string{"soon", "500ms", "-1m"} {
		err := Decode(strings.NewReader("pop:\n  lease_ttl: "+v+"\n"), Default())
		if err == nil || !strings.Contains(err.Error(), "pop.lease_ttl") {
			t.Errorf("lease_ttl %s: error %v does not name pop.lease_ttl", v, err)
		}
	}
}
