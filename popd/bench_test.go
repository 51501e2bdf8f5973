package popd_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/skydesk/skydeskd/popd"
	"github.com/skydesk/skydeskd/popd/popdmem"
)

// BenchmarkServer_Session: one TLS session, login, UIDL and RETR of 100
// messages of ~20 KB (the bench rig's mailload workload), QUIT.
func BenchmarkServer_Session(b *testing.B) {
	be := popdmem.New()
	be.AddUser("taro@skydesk.jp", "secret pw")
	line := bytes.Repeat([]byte("x"), 76)
	body := append([]byte("Subject: bench\r\n\r\n"), bytes.Repeat(append(line, '\r', '\n'), 260)...)
	for range 100 {
		be.Deliver("taro@skydesk.jp", body)
	}
	ts := newTestServer(b, be, popd.Options{})
	b.SetBytes(int64(100 * len(body)))
	b.ReportAllocs()
	for b.Loop() {
		c := ts.dial(b)
		c.login("taro@skydesk.jp", "secret pw")
		c.cmd("UIDL", "+OK")
		c.multi()
		for i := 1; i <= 100; i++ {
			c.cmd(fmt.Sprintf("RETR %d", i), "+OK")
			c.drain()
		}
		c.cmd("QUIT", "+OK")
		c.conn.Close()
	}
}

// drain skips a multi-line body without allocating per line.
func (c *client) drain() {
	for {
		l, err := c.r.ReadSlice('\n')
		if err != nil {
			c.t.Fatal(err)
		}
		if string(l) == ".\r\n" {
			return
		}
	}
}
