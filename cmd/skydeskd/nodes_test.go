package main

import (
	"crypto/tls"
	"strings"
	"testing"
	"time"
)

// waitLeaseFree logs in until the maildrop lease of a killed process has
// expired (pop.lease_ttl), then logs out: a polled condition with a
// deadline.
func waitLeaseFree(t *testing.T, addr string, tc *tls.Config, user, pw string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		p := popDial(t, addr, tc)
		p.cmd("USER "+user, "+OK")
		l := p.cmd("PASS "+pw, "")
		if strings.HasPrefix(l, "+OK") {
			p.cmd("QUIT", "+OK")
			return
		}
		p.cmd("QUIT", "")
		if !strings.HasPrefix(l, "-ERR [IN-USE]") || time.Now().After(deadline) {
			t.Fatalf("waiting for the killed session's lease to end: %q", l)
		}
		time.Sleep(50 * time.Millisecond) // polling a condition with a deadline
	}
}
