package main

import (
	"bytes"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/skydesk/skydeskd/internal/benchsink"
	"github.com/skydesk/skydeskd/store/postgres/pgtest"
)

// relayNode is one serve process of the relay test.
type relayNode struct {
	name, dir string
	p         *proc
}

// Two serve nodes on one PostgreSQL database relay through the bench
// rig's sink. (1) Mail submitted on node B goes out promptly and exactly
// once. (2) While the node sending a message waits on the sink's held
// final reply, mail submitted on that busy node is claimed by the other
// one within a second of the 250: woken by NOTIFY, its poll timer being
// the busy node's claim lease (10 s) away. (3) kill -9 of the busy node:
// the sink has its message unacknowledged; once its claim lease ends, the
// other node sends the message again (acknowledged). None is lost, the
// queue ends empty, and only the killed delivery is sent twice (at least
// once, never lost).
func TestRelayNodes_notifyWakeAndKilledWorker(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary twice")
	}
	url := pgtest.URL(t)
	sink := benchsink.Start(t)
	host, port, err := net.SplitHostPort(sink.Addr)
	if err != nil {
		t.Fatal(err)
	}
	const lease = 10 * time.Second
	extra := fmt.Sprintf("database: {driver: postgres, url: %q}\nsmtp: {smarthost: {host: %q, port: %s, tls: none, retry_period: 1h, claim_lease: %v}}\n",
		url, host, port, lease)
	bin := buildBinary(t)
	const user, pw = "taro@skydesk.jp", "relay-nodes-pw-1"
	var nodes []*relayNode
	for _, name := range []string{"A", "B"} {
		dir := t.TempDir()
		file := writeSMTPConfig(t, dir, extra)
		if name == "A" {
			mustCLI(t, dir, pw+"\n", "user", "add", user, "--password-stdin", "--config", file)
		}
		nodes = append(nodes, &relayNode{name: name, dir: dir, p: startProc(t, bin, []string{"smtps"}, "serve", "--config", file)})
	}
	db, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close(t.Context()) })
	submit := func(n *relayNode, subject string) time.Time {
		t.Helper()
		start := time.Now()
		body := "From: " + user + "\r\nTo: far@example.org\r\nSubject: " + subject + "\r\n\r\nthrough the smarthost\r\n"
		if err := sendSMTPS(n.p.addrs["smtps"], trustDir(t, n.dir, "smtp.skydesk.jp"), user, pw, user, []string{"far@example.org"}, body); err != nil {
			t.Fatalf("submitting %q on node %s: %v", subject, n.name, err)
		}
		return start
	}
	is := func(subject string) func(benchsink.Transaction) bool {
		return func(tx benchsink.Transaction) bool {
			return bytes.Contains(tx.Data, []byte("\r\nSubject: "+subject+"\r\n"))
		}
	}
	count := func(txs []benchsink.Transaction, subject string, acked bool) int {
		n := 0
		for _, tx := range txs {
			if is(subject)(tx) && tx.Acknowledged == acked {
				n++
			}
		}
		return n
	}
	// holderNode is the node whose relay holds the claim on the queued
	// message with subject (the claim names the process).
	holderNode := func(subject string) *relayNode {
		t.Helper()
		var holder string
		if err := db.QueryRow(t.Context(), `SELECT coalesce(claimed_by, '') FROM queue_messages
			WHERE position($1 in convert_from(body, 'UTF8')) > 0`, "Subject: "+subject+"\r\n").Scan(&holder); err != nil {
			t.Fatalf("reading the claim on %q: %v", subject, err)
		}
		for _, n := range nodes {
			if f := strings.Split(holder, "/"); len(f) == 3 && f[1] == strconv.Itoa(n.p.cmd.Process.Pid) {
				return n
			}
		}
		t.Fatalf("%q is claimed by %q, no node of this test", subject, holder)
		return nil
	}
	queueEmpty := func(what string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			var n int
			if err := db.QueryRow(t.Context(), `SELECT count(*) FROM queue_rcpts`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d recipients still queued after 30 s", what, n)
			}
			time.Sleep(20 * time.Millisecond) // the settle follows the sink's reply; polled with a deadline
		}
	}

	// (1) Submitted on B, relayed at once (no poll timer involved: every
	// node's timer is a minute away on an empty queue).
	start := submit(nodes[1], "m0")
	sink.Wait(t, "m0 relayed", 10*time.Second, func(txs []benchsink.Transaction, _ int) bool { return count(txs, "m0", true) == 1 })
	t.Logf("m0, submitted on node B: acknowledged by the sink %v after the submission began (sink: %s)", time.Since(start), sink.Origin)
	queueEmpty("after m0")

	// (2) X sends m1 and waits on the held reply; m2, submitted on X
	// itself, must be claimed by the other node, Y.
	sink.Hold()
	submit(nodes[1], "m1")
	sink.Wait(t, "m1's reply held", 10*time.Second, func(_ []benchsink.Transaction, held int) bool { return held == 1 })
	x := holderNode("m1")
	y := nodes[0]
	if x == y {
		y = nodes[1]
	}
	start = submit(x, "m2")
	accepted := time.Since(start)
	sink.Wait(t, "m2 sent by the other node", 2*time.Second, func(_ []benchsink.Transaction, held int) bool { return held == 2 })
	t.Logf("m2, submitted on busy node %s: at the sink's final reply through node %s %v after the 250 (%v after the submission began); the claim lease is %v",
		x.name, y.name, time.Since(start)-accepted, time.Since(start), lease)
	if h := holderNode("m2"); h != y {
		t.Fatalf("m2 is claimed by node %s, want the idle node %s", h.name, y.name)
	}

	// (3) kill -9 the node sending m1.
	x.p.kill(t)
	killed := time.Now()
	sink.Wait(t, "m1 recorded unacknowledged", 10*time.Second, func(txs []benchsink.Transaction, _ int) bool { return count(txs, "m1", false) == 1 })
	sink.Release()
	sink.Wait(t, "m1 taken over and m2 acknowledged", lease+20*time.Second, func(txs []benchsink.Transaction, _ int) bool {
		return count(txs, "m1", true) == 1 && count(txs, "m2", true) == 1
	})
	t.Logf("m1 delivered by node %s %v after node %s was killed (lease %v)", y.name, time.Since(killed), x.name, lease)
	queueEmpty("after the takeover")
	txs := sink.Transactions()
	for _, c := range []struct {
		subject     string
		acked, lost int
	}{{"m0", 1, 0}, {"m1", 1, 1}, {"m2", 1, 0}} {
		if a, u := count(txs, c.subject, true), count(txs, c.subject, false); a != c.acked || u != c.lost {
			t.Errorf("%s at the sink: %d acknowledged, %d unacknowledged; want %d and %d", c.subject, a, u, c.acked, c.lost)
		}
	}
	if len(txs) != 4 {
		t.Errorf("the sink saw %d transactions, want 4", len(txs))
	}
}
