package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Issue 13 §4: the waits before a connection is any use are configurable:
// with each set to 300 ms, a client that connects and says nothing is
// closed after that long on every listener, not after the defaults (SMTP's
// first command 1 min, DNS-over-TCP's first query 5 s, the TLS handshake
// 10 s, the POP login 1 min).
func TestServe_silentClientTimeoutsAreConfigurable(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "skydeskd.yaml")
	cfg := fmt.Sprintf(`data_dir: %s
log: {format: json, level: info}
listen: {http: "", https: "", dns: "127.0.0.1:0", pop3s: "127.0.0.1:0", pop3: "127.0.0.1:0", smtps: "127.0.0.1:0", submission: "127.0.0.1:0", mx: "127.0.0.1:0"}
limits:
  tls_handshake_timeout: 300ms
  pop: {login_timeout: 300ms}
  smtp: {first_command_timeout: 300ms}
  dns_tcp: {first_query_timeout: 300ms}
`, dir)
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	listeners := []string{"mx", "submission", "smtps", "pop3", "pop3s", "dns-tcp"}
	addrs, _ := serveInProcess(t, file, listeners)
	for _, l := range listeners {
		t.Run(l, func(t *testing.T) {
			t.Parallel()
			start := time.Now() // before the dial: the server's clock starts at its accept
			c, err := net.Dial("tcp", addrs[l])
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetReadDeadline(start.Add(4 * time.Second)) // under every default
			_, err = io.Copy(io.Discard, c)                   // the greeting, if any, then EOF
			took := time.Since(start)
			if err != nil {
				t.Fatalf("a silent client was not closed within 4 s: %v", err)
			}
			if took < 300*time.Millisecond {
				t.Fatalf("closed after %v, before the configured 300 ms", took)
			}
			t.Logf("silent client closed after %v", took)
		})
	}
}
