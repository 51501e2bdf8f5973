//go:build !race

package popd_test

import (
	"runtime"
	"testing"

	"github.com/skydesk/skydeskd/popd"
)

// Memory per idle logged-in session stays small: write buffers go back to
// a pool between commands (DESIGN.md §7). The figure includes the client
// side of each TLS connection, which lives in the same process.
func TestServer_idleSessionMemory(t *testing.T) {
	be := newMem(t)
	const n = 200
	users := make([]string, n)
	for i := range users {
		users[i] = "user" + string(rune('a'+i%26)) + string(rune('a'+i/26)) + "@skydesk.jp"
		be.AddUser(users[i], "pw")
		be.Deliver(users[i], []byte("Subject: x\r\n\r\nhello\r\n"))
	}
	// All from 127.0.0.1: lift the per-network cap above n.
	ts := newTestServer(t, be, popd.Options{MaxConnectionsPerNetwork: 2 * n})
	warm := ts.dial(t)
	warm.login(users[0], "pw")
	warm.cmd("QUIT", "+OK")

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	clients := make([]*client, 0, n)
	for _, u := range users[1:] {
		c := ts.dial(t)
		c.login(u, "pw")
		c.cmd("RETR 1", "+OK") // a burst that used a write buffer
		c.multi()
		clients = append(clients, c)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := (int64(after.HeapInuse) - int64(before.HeapInuse) + int64(after.StackInuse) - int64(before.StackInuse)) / int64(len(clients))
	t.Logf("heap+stack per idle session (server and client): %d bytes", per)
	// A 16 KiB write buffer kept per session would alone exceed this.
	if per > 96<<10 {
		t.Errorf("idle session costs %d bytes, want at most 96 KiB", per)
	}
	runtime.KeepAlive(clients)
}
