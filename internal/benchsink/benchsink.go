// Package benchsink starts the bench rig's SMTP sink (../shared/bench,
// tools/mailload -mode sink: the relay target the peers are measured
// with) for tests, behind a recording proxy so a test can see what each
// delivery sent (envelope and message) and hold the sink's final reply to
// DATA, which leaves the sending relay blocked mid-delivery.
//
// The rig is found through $SKYDESK_BENCH_DIR or as ../shared/bench next to
// the module root. Where it is absent (a checkout without the team's shared
// folder), an in-process stand-in answers with the sink's exact replies, and
// the test log says so: the tests still run, never skip.
package benchsink

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// queuedReply starts the sink's reply to the end of DATA; the stand-in
// writes the same line.
const queuedReply = "250 2.0.0 Ok: queued"

// Transaction is one mail transaction that reached the sink.
type Transaction struct {
	MailFrom string   // the reverse path, without angle brackets or parameters
	Rcpts    []string // forward paths, in order
	Data     []byte   // the message as sent, dot-stuffing undone, CRLF lines
	// Acknowledged: the sink's 250 was passed on to the sender. False when
	// the sender was gone before (killed while the reply was held).
	Acknowledged bool
}

// Sink is a running sink behind its recording proxy.
type Sink struct {
	// Addr is host:port to point a relay (smarthost, tls none) at.
	Addr string
	// Origin says which sink answers: the rig's binary or the stand-in.
	Origin string

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every change
	txs     []Transaction
	held    int
	hold    chan struct{} // non-nil while replies are held; closed to release
}

// Start starts a sink for t, stopped at its end.
func Start(t testing.TB) *Sink {
	t.Helper()
	target, origin := startRig(t)
	if target == "" {
		target = startStandIn(t)
	}
	s := &Sink{Origin: origin, changed: make(chan struct{})}
	s.Addr = serve(t, func(c net.Conn) { s.proxy(c, target) }, s.Release)
	t.Logf("benchsink: %s at %s", origin, s.Addr)
	return s
}

// serve accepts loopback connections for t, each handled by handle on
// its own goroutine; at t's end it stops, runs release (so no handler
// stays blocked) and waits for the handlers. It returns the address.
func serve(t testing.TB, handle func(net.Conn), release func()) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		release()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				handle(c)
			}()
		}
	}()
	return ln.Addr().String()
}

// Hold makes the proxy keep back every final reply to DATA until Release:
// the sender waits for it as a relay waits on a slow or distant server. A
// sender that dies meanwhile has its transaction recorded at once, not
// Acknowledged (the sink has the message; the sender never heard so).
func (s *Sink) Hold() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hold == nil {
		s.hold = make(chan struct{})
	}
}

// Release passes held replies on (to senders still connected).
func (s *Sink) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hold != nil {
		close(s.hold)
		s.hold = nil
	}
}

// Transactions returns the transactions the sink accepted so far.
func (s *Sink) Transactions() []Transaction {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Transaction(nil), s.txs...)
}

// Wait waits until cond holds over the accepted transactions and the
// number of replies held right now, or fails t after timeout.
func (s *Sink) Wait(t testing.TB, what string, timeout time.Duration, cond func(txs []Transaction, held int) bool) []Transaction {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		txs, held, ch := append([]Transaction(nil), s.txs...), s.held, s.changed
		s.mu.Unlock()
		if cond(txs, held) {
			return txs
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("benchsink: %s: not within %v (%d transactions, %d held)", what, timeout, len(txs), held)
		}
	}
}

// notify wakes Wait; s.mu is held.
func (s *Sink) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// proxy relays one connection to target, recording the client's
// transactions and holding final DATA replies while asked to.
func (s *Sink) proxy(c net.Conn, target string) {
	defer c.Close()
	up, err := net.DialTimeout("tcp", target, 5*time.Second)
	if err != nil {
		return
	}
	defer up.Close()
	pending := make(chan Transaction, 16) // ended DATA, reply not yet seen
	gone := make(chan struct{})           // the sender closed its side
	go func() {
		defer up.Close()
		record(io.TeeReader(bufio.NewReader(c), up), pending)
		close(gone)
		close(pending)
	}()
	r := bufio.NewReader(up)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if strings.HasPrefix(line, queuedReply) {
			if !s.accepted(c, line, pending, gone) {
				return
			}
			continue
		}
		if _, err := io.WriteString(c, line); err != nil {
			return
		}
	}
}

// accepted handles the sink's 250 to an ended DATA: the oldest pending
// transaction is accepted; the reply waits while held, then goes on to a
// sender still there.
func (s *Sink) accepted(c net.Conn, line string, pending <-chan Transaction, gone <-chan struct{}) bool {
	tx, ok := <-pending
	if !ok {
		return false
	}
	s.mu.Lock()
	hold := s.hold
	if hold != nil {
		s.held++
		s.notify()
	}
	s.mu.Unlock()
	err := error(nil)
	if hold != nil {
		select {
		case <-hold:
		case <-gone: // the sender died waiting: recorded at once, unacknowledged
			err = net.ErrClosed
		}
		s.mu.Lock()
		s.held--
		s.mu.Unlock()
	}
	if err == nil {
		_, err = io.WriteString(c, line)
	}
	tx.Acknowledged = err == nil
	s.mu.Lock()
	s.txs = append(s.txs, tx)
	s.notify()
	s.mu.Unlock()
	return err == nil
}

// record parses the client's side of the session: envelope commands and
// the DATA section of each transaction (RFC 5321 §4.1.1, §4.5.2).
func record(r io.Reader, pending chan<- Transaction) {
	br := bufio.NewReaderSize(r, 64<<10)
	var tx Transaction
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.ToUpper(strings.TrimRight(line, "\r\n"))
		switch {
		case strings.HasPrefix(cmd, "MAIL FROM:"):
			tx = Transaction{MailFrom: path(line[len("MAIL FROM:"):])}
		case strings.HasPrefix(cmd, "RCPT TO:"):
			tx.Rcpts = append(tx.Rcpts, path(line[len("RCPT TO:"):]))
		case cmd == "RSET":
			tx = Transaction{}
		case cmd == "DATA":
			var data bytes.Buffer
			for {
				l, err := br.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" || l == ".\n" {
					break
				}
				data.WriteString(strings.TrimPrefix(l, "."))
			}
			tx.Data = data.Bytes()
			pending <- tx
			tx = Transaction{}
		}
	}
}

// path takes "<a@b> SIZE=1" or " <a@b>" to "a@b".
func path(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '>'); strings.HasPrefix(s, "<") && i > 0 {
		return s[1:i]
	}
	if f := strings.Fields(s); len(f) > 0 {
		return f[0]
	}
	return ""
}

// rigDir finds the bench rig: $SKYDESK_BENCH_DIR, or ../shared/bench beside
// the module root (the folder holding go.mod).
func rigDir() (string, error) {
	if d := os.Getenv("SKYDESK_BENCH_DIR"); d != "" {
		return rigAt(d)
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return rigAt(filepath.Join(dir, "..", "shared", "bench"))
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// rigAt returns d if it holds the rig's sink source.
func rigAt(d string) (string, error) {
	if _, err := os.Stat(filepath.Join(d, "tools", "mailload", "sink.go")); err != nil {
		return "", err
	}
	return d, nil
}
