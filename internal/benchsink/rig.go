package benchsink

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startRig builds the rig's mailload and starts its sink on a free
// loopback port; "" when the rig is not there.
func startRig(t testing.TB) (addr, origin string) {
	t.Helper()
	dir, err := rigDir()
	if err != nil {
		t.Logf("benchsink: the bench rig is not here (%v); using the in-process stand-in", err)
		return "", "stand-in sink (rig absent)"
	}
	bin := filepath.Join(t.TempDir(), "mailload")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = filepath.Join(dir, "tools", "mailload")
	build.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("benchsink: building %s: %v\n%s", build.Dir, err, out)
	}
	for try := 0; try < 3; try++ {
		if addr := runSink(t, bin); addr != "" {
			return addr, "bench rig sink (" + build.Dir + ")"
		}
	}
	t.Fatal("benchsink: the rig's sink did not start on a free port in 3 tries")
	return "", ""
}

// runSink starts the sink on a port that was free a moment ago and waits
// for its "listening" line; "" if it exited (the port was taken meanwhile).
func runSink(t testing.TB, bin string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-mode", "sink", "-listen", addr)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("benchsink: %v", err)
	}
	up := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		said := false
		for sc.Scan() {
			if !said && strings.Contains(sc.Text(), "sink listening on") {
				said = true
				up <- true
			}
		}
		if !said {
			up <- false
		}
	}()
	select {
	case ok := <-up:
		if !ok {
			cancel()
			_ = cmd.Wait()
			return ""
		}
	case <-time.After(30 * time.Second):
		cancel()
		_ = cmd.Wait()
		t.Fatal("benchsink: the sink said nothing for 30 s")
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	return addr
}

// startStandIn serves the sink's dialogue in process (same replies as
// tools/mailload/sink.go), for checkouts without the rig.
func startStandIn(t testing.TB) string {
	return serve(t, standIn, func() {})
}

func standIn(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	w := bufio.NewWriter(c)
	say := func(s string) { w.WriteString(s + "\r\n") }
	say("220 sink.example.test ESMTP rig-sink")
	for {
		if w.Flush() != nil {
			return
		}
		_ = c.SetDeadline(time.Now().Add(time.Minute))
		l, err := r.ReadString('\n')
		if err != nil {
			return
		}
		verb := strings.ToUpper(strings.TrimRight(l, "\r\n"))
		if i := strings.IndexAny(verb, " :"); i >= 0 {
			verb = verb[:i]
		}
		switch verb {
		case "EHLO":
			say("250-sink.example.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250 SIZE 104857600")
		case "HELO":
			say("250 sink.example.test")
		case "MAIL", "RCPT", "RSET", "NOOP":
			say("250 2.0.0 Ok")
		case "DATA":
			say("354 End data with <CR><LF>.<CR><LF>")
			if w.Flush() != nil {
				return
			}
			for {
				d, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if d == ".\r\n" || d == ".\n" {
					break
				}
			}
			say(queuedReply + " to /dev/null")
		case "QUIT":
			say("221 2.0.0 Bye")
			_ = w.Flush()
			return
		default:
			say("502 5.5.2 Command not implemented")
		}
	}
}
