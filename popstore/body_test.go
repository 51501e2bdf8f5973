package popstore_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/skydesk/skydeskd/store"
	"github.com/skydesk/skydeskd/store/storetest"
)

// A download message after message (read ahead on PostgreSQL, several
// bodies in one round trip) sends each message's own octets: bodies of
// many sizes, one held in chunks and larger than the read-ahead, one
// removed after the listing, then RETR and TOP out of order.
func TestMaildrop_retrInOrderAndOut(t *testing.T) {
	f := newPOPFixture(t)
	acc := storetest.AddUser(t, f.s, "taro@skydesk.jp", "right-password")
	setPOP(t, f.s, "taro@skydesk.jp", "", false, store.DeleteOnServer)
	const n = 16
	bodies := make([]string, n+1) // by message number
	uids := make([]string, n+1)
	for i := 1; i <= n; i++ {
		lines := 1 + (i*37)%700 // up to ~40 KB
		if i == 6 {
			lines = 6000 // > 256 KiB: chunked, beyond any read-ahead
		}
		bodies[i] = fmt.Sprintf("Subject: m%d\r\n\r\n", i) + strings.Repeat(fmt.Sprintf("line of message %d\r\n", i), lines)
		uids[i] = deliver(t, f.s, "taro@skydesk.jp", false, bodies[i])
	}
	c := f.dial(t)
	c.login("taro@skydesk.jp", "right-password")
	const gone = 11
	id, err := strconv.ParseInt(uids[gone], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.s.Expunge(ctx, acc.ID, []int64{id}); err != nil { // as an admin's removal
		t.Fatal(err)
	}
	retr := func(i int) {
		t.Helper()
		if i == gone {
			c.cmd("RETR "+strconv.Itoa(i), "-ERR message is no longer on the server")
			return
		}
		c.cmd("RETR "+strconv.Itoa(i), fmt.Sprintf("+OK %d octets", len(bodies[i])))
		if got, want := c.dot(), strings.ReplaceAll(bodies[i], "\r\n", "\n"); got != want {
			t.Errorf("RETR %d: %d octets %.30q…, want %d octets %.30q…", i, len(got), got, len(want), want)
		}
	}
	for i := 1; i <= n; i++ {
		retr(i)
	}
	for _, i := range []int{3, 2, 9, 10, 16, 1} {
		retr(i)
	}
	c.cmd("TOP 8 1", "+OK")
	if got, want := c.dot(), "Subject: m8\n\nline of message 8\n"; got != want {
		t.Errorf("TOP 8 1 = %q, want %q", got, want)
	}
	c.quit("+OK")
}
