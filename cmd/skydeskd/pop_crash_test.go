package main

import (
	"slices"
	"testing"
)

// RFC 1939 §6 with a real process: kill -9 in the middle of a session with
// DELE marks (even with "delete from server") deletes nothing and loses
// nothing; a QUIT that answered +OK is durable across another kill -9.
func TestPOP_kill9MidSessionDeletesNothing(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	popUser(t, dir, "taro@skydesk.jp", "right-password", "delete")
	var uids []string
	for i := range 3 {
		uids = append(uids, deliverCLI(t, bin, dir, "taro@skydesk.jp", false, "Subject: crash "+string(rune('a'+i))+"\n\nbody\n"))
	}
	cfg := writePOPConfig(t, dir)
	p := startProc(t, bin, []string{"pop3s"}, "serve", "--config", cfg)
	tc := trustDir(t, dir, "pop.skydesk.jp")

	c := popLogin(t, p.addrs["pop3s"], tc, "taro@skydesk.jp", "right-password")
	c.cmd("DELE 1", "+OK")
	c.cmd("DELE 2", "+OK")
	c.cmd("RETR 3", "+OK")
	p.kill(t)

	p = startProc(t, bin, []string{"pop3s"}, "serve", "--config", cfg)
	waitLeaseFree(t, p.addrs["pop3s"], tc, "taro@skydesk.jp", "right-password") // the killed session's lease
	if got := popUIDs(t, p.addrs["pop3s"], tc, "taro@skydesk.jp", "right-password"); !slices.Equal(got, uids) {
		t.Fatalf("after kill -9 mid-session: UIDs %v, want %v", got, uids)
	}

	c = popLogin(t, p.addrs["pop3s"], tc, "taro@skydesk.jp", "right-password")
	c.cmd("DELE 2", "+OK")
	c.cmd("QUIT", "+OK bye, 1 messages deleted")
	p.kill(t)
	p = startProc(t, bin, []string{"pop3s"}, "serve", "--config", cfg)
	if got, want := popUIDs(t, p.addrs["pop3s"], tc, "taro@skydesk.jp", "right-password"), []string{uids[0], uids[2]}; !slices.Equal(got, want) {
		t.Fatalf("after QUIT then kill -9: UIDs %v, want %v", got, want)
	}
}
