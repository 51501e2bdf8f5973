package config

import (
	"fmt"
	"time"
)

// POPServer holds the POP3 server's own settings (the advertised server is
// provider.pop).
type POPServer struct {
	// LeaseTTL is how long the RFC 1939 §4 maildrop lock, a lease in the
	// database shared by every node, outlives its last renewal (a session
	// renews it every third of this): a node that dies keeps its sessions'
	// accounts locked (IN-USE) for at most this long (Go duration, at
	// least 1s; empty: 60s).
	LeaseTTL string `yaml:"lease_ttl"`
}

// DefaultLeaseTTL is pop.lease_ttl unless set.
const DefaultLeaseTTL = 60 * time.Second

// LeaseTTLValue returns LeaseTTL parsed (Validate has checked it).
func (p POPServer) LeaseTTLValue() time.Duration {
	if p.LeaseTTL == "" {
		return DefaultLeaseTTL
	}
	d, _ := time.ParseDuration(p.LeaseTTL)
	return d
}

func (p POPServer) validate() error {
	if p.LeaseTTL == "" {
		return nil
	}
	d, err := time.ParseDuration(p.LeaseTTL)
	if err != nil || d < time.Second {
		return &FieldError{Key: "pop.lease_ttl", Reason: fmt.Sprintf("%q is not a duration of at least 1s", p.LeaseTTL)}
	}
	return nil
}
