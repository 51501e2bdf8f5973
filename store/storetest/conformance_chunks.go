package storetest

import (
	"bytes"
	"errors"
	"testing"

	"github.com/skydesk/skydeskd/store"
)

// bigBody is n octets of CRLF lines whose content varies with position, so
// a chunk stored or read out of place shows.
func bigBody(n int) []byte {
	var b bytes.Buffer
	b.WriteString("Subject: big\r\n\r\n")
	for i := 0; b.Len() < n; i++ {
		b.WriteString("line ")
		b.WriteString(string(rune('a' + i%26)))
		for j := 0; j < i%70; j++ {
			b.WriteByte(byte('0' + j%10))
		}
		b.WriteString("\r\n")
	}
	return b.Bytes()[:n]
}

// failingBody fails after ok octets, as a spool file whose disk failed.
type failingBody struct {
	*bytes.Reader
	ok int64
}

func (f failingBody) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > f.ok {
		return 0, errors.New("disk failed")
	}
	return f.Reader.ReadAt(p, off)
}

// testChunkedBodies: a body of several chunks reads back byte-exact in any
// window, and one whose source fails halfway stores nothing at all.
func testChunkedBodies(t *testing.T, d store.Driver) {
	ctx := t.Context()
	acc := user(t, d, "taro@skydesk.jp")
	body := bigBody(3*store.ChunkSize + 12345)
	uids, err := d.Deliver(ctx, store.Delivery{Recipients: []string{"taro@skydesk.jp"}, Stream: bytes.NewReader(body)})
	if err != nil {
		t.Fatal(err)
	}
	l, err := d.ListMaildrop(ctx, acc.ID, store.POPSettings{Access: store.POPAll})
	if err != nil || len(l) != 1 || l[0].Size != int64(len(body)) {
		t.Fatalf("ListMaildrop = %+v, %v; want size %d", l, err, len(body))
	}
	got, err := d.AppendBody(ctx, acc.ID, uids[0], 0, int64(len(body)), nil)
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("AppendBody(whole) = %d octets, %v; want the %d stored", len(got), err, len(body))
	}
	for _, w := range [][2]int64{{store.ChunkSize - 3, 7}, {1, store.ChunkSize * 2}, {int64(len(body)) - 5, 100}, {store.ChunkSize, store.ChunkSize}} {
		want := body[w[0]:min(w[0]+w[1], int64(len(body)))]
		if got, err := d.AppendBody(ctx, acc.ID, uids[0], w[0], w[1], []byte("x")); err != nil || !bytes.Equal(got, append([]byte("x"), want...)) {
			t.Errorf("AppendBody(%d, %d) = %d octets, %v; want %d", w[0], w[1], len(got), err, len(want)+1)
		}
	}
	if _, err := d.AppendBody(ctx, user(t, d, "hanako@skydesk.jp").ID, uids[0], 0, 10, nil); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("another account's chunked message: %v, want ErrNotFound", err)
	}
	before, _ := d.MailboxUsage(ctx, "taro@skydesk.jp")
	broken := failingBody{bytes.NewReader(body), 2 * store.ChunkSize}
	if _, _, err := d.Accept(ctx, store.Accepted{Stream: broken, Local: []string{"taro@skydesk.jp", "hanako@skydesk.jp"}}); err == nil {
		t.Fatal("Accept of a body failing halfway succeeded")
	}
	if l, _ := d.ListMaildrop(ctx, acc.ID, store.POPSettings{Access: store.POPAll}); len(l) != 1 {
		t.Errorf("after a failed Accept the maildrop holds %d messages, want 1", len(l))
	}
	if after, _ := d.MailboxUsage(ctx, "taro@skydesk.jp"); after != before {
		t.Errorf("usage after a failed Accept = %+v, want %+v", after, before)
	}
}

// testQuota: usage counts deliveries and deletions; a delivery over the
// quota stores nothing, for no recipient.
func testQuota(t *testing.T, d store.Driver) {
	ctx := t.Context()
	acc := user(t, d, "taro@skydesk.jp")
	user(t, d, "hanako@skydesk.jp")
	if err := d.SetQuota(ctx, "taro@skydesk.jp", 100); err != nil {
		t.Fatal(err)
	}
	if err := d.SetQuota(ctx, "nobody@skydesk.jp", 100); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SetQuota(unknown) = %v, want ErrNotFound", err)
	}
	a := deliver(t, d, "taro@skydesk.jp", false, "Subject: a\r\n\r\n"+string(bytes.Repeat([]byte("x"), 44))+"\r\n") // 60 octets
	if u, err := d.MailboxUsage(ctx, "Taro@skydesk.jp"); err != nil || u != (store.Usage{Used: 60, Quota: 100}) || u.Full() {
		t.Errorf("MailboxUsage = %+v, %v; want 60 of 100, not full", u, err)
	}
	_, _, err := d.Accept(ctx, store.Accepted{Body: bytes.Repeat([]byte("y"), 41), Local: []string{"hanako@skydesk.jp", "taro@skydesk.jp"}})
	if !errors.Is(err, store.ErrOverQuota) {
		t.Fatalf("Accept over quota = %v, want ErrOverQuota", err)
	}
	if u, _ := d.MailboxUsage(ctx, "hanako@skydesk.jp"); u.Used != 0 {
		t.Errorf("the other recipient kept %d octets of a refused message", u.Used)
	}
	deliver(t, d, "taro@skydesk.jp", false, string(bytes.Repeat([]byte("z"), 40)))
	if u, _ := d.MailboxUsage(ctx, "taro@skydesk.jp"); !u.Full() {
		t.Errorf("MailboxUsage at 100 of 100 = %+v, want full", u)
	}
	all, del := store.POPAll, store.DeleteOnServer
	setPOP(t, d, "taro@skydesk.jp", store.POPUpdate{Access: &all, OnDelete: &del})
	if err := d.Expunge(ctx, acc.ID, []int64{a}); err != nil {
		t.Fatal(err)
	}
	if u, _ := d.MailboxUsage(ctx, "taro@skydesk.jp"); u.Used != 40 {
		t.Errorf("usage after deleting 60 of 100 octets = %d, want 40", u.Used)
	}
	if err := d.SetQuota(ctx, "taro@skydesk.jp", 0); err != nil {
		t.Fatal(err)
	}
	if u, _ := d.MailboxUsage(ctx, "taro@skydesk.jp"); u.Quota != 0 || u.Default || !u.Fits(1<<40) {
		t.Errorf("unlimited quota: %+v", u)
	}
	if err := d.SetQuota(ctx, "taro@skydesk.jp", store.QuotaDefault); err != nil {
		t.Fatal(err)
	}
	if u, _ := d.MailboxUsage(ctx, "taro@skydesk.jp"); !u.Default {
		t.Errorf("after SetQuota(QuotaDefault): %+v, want Default", u)
	}
}
