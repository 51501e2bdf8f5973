package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// SIGTERM (here: the context serve runs under) with a POP3 session open:
// the client is told "-ERR [SYS/TEMP] server shutting down", serve exits 0,
// and the session's DELE marks are not applied (no QUIT, no UPDATE).
func TestPOP_shutdownTellsClientsAndAppliesNothing(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	popUser(t, dir, "taro@skydesk.jp", "right-password", "delete")
	uid := deliverCLI(t, bin, dir, "taro@skydesk.jp", false, "Subject: stays\n\nx\n")
	cfg := writePOPConfig(t, dir)
	t.Setenv("SKYDESKD_TEST_FAST_HASH", "1")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--config", cfg}, env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: pw, getenv: os.Getenv})
		pw.Close()
	}()
	addrs := map[string]string{}
	sc := bufio.NewScanner(pr)
	for (addrs["pop3s"] == "" || addrs["pop3"] == "") && sc.Scan() {
		var line struct{ Msg, Service, Addr string }
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" {
			addrs[line.Service] = line.Addr
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	if addrs["pop3s"] == "" || addrs["pop3"] == "" {
		t.Fatalf("listeners: %v", addrs)
	}
	tc := trustDir(t, dir, "pop.skydesk.jp")
	c := popLogin(t, addrs["pop3s"], tc, "taro@skydesk.jp", "right-password")
	c.cmd("DELE 1", "+OK")

	cancel()
	c.cmd("", "-ERR [SYS/TEMP] server shutting down")
	select {
	case code := <-done:
		if code != exitOK {
			t.Fatalf("serve exited %d", code)
		}
	case <-time.After(shutdownTimeout + 5*time.Second):
		t.Fatal("serve did not shut down")
	}

	p := startProc(t, bin, []string{"pop3s"}, "serve", "--config", cfg)
	if got := popUIDs(t, p.addrs["pop3s"], tc, "taro@skydesk.jp", "right-password"); !slices.Equal(got, []string{uid}) {
		t.Fatalf("after shutdown: %v, want [%s]", got, uid)
	}
}
