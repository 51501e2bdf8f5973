package smtpd_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skydesk/skydeskd/smtpd"
	"github.com/skydesk/skydeskd/store"
	"github.com/skydesk/skydeskd/store/storetest"
)

// queueRemote queues a message from taro for rcpt, as an accepted
// submission does, and returns its queue id.
func queueRemote(t *testing.T, s store.Driver, rcpt, subject string) int64 {
	t.Helper()
	_, qid, err := s.Accept(t.Context(), store.Accepted{Body: []byte(msg(taro, rcpt, subject, "x")), From: taro, Remote: []string{rcpt}})
	if err != nil {
		t.Fatal(err)
	}
	return qid
}

// Two relays working one queue at once (two nodes' workers) send every
// message exactly once: a message is claimed by one of them at a time.
func TestRelay_twoWorkersOneQueue(t *testing.T) {
	s := storetest.NewDriver(t)
	storetest.AddUser(t, s, taro, taroPW)
	cert := storetest.Certificate(t)
	h, port := startSmarthost(t, cert.ServerTLS())
	ctx, cancel := context.WithCancel(t.Context())
	var relays []*smtpd.Relay
	stopped := make(chan struct{}, 2)
	for _, w := range []string{"node-a", "node-b"} {
		r := smtpd.NewRelay(s, smtpd.RelayOptions{Host: "127.0.0.1", Port: port, TLS: "implicit",
			Username: "relay-user", Password: "relay-secret", TLSConfig: trusting(cert), Logger: testLogger(t), Worker: w})
		relays = append(relays, r)
		go func() { defer func() { stopped <- struct{}{} }(); r.Run(ctx) }()
	}
	t.Cleanup(func() { cancel(); <-stopped; <-stopped })
	const n = 20
	for i := range n {
		queueRemote(t, s, fmt.Sprintf("r%d@remote.example", i), fmt.Sprintf("message %d", i))
		relays[i%2].Wake()
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(h.got()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d messages relayed within 30 s", len(h.got()), n)
		}
		time.Sleep(10 * time.Millisecond) // polling another goroutine's progress with a deadline
	}
	seen := map[string]int{}
	for _, m := range h.got() {
		seen[strings.Join(m.rcpts, ",")]++
	}
	for i := range n {
		if r := fmt.Sprintf("r%d@remote.example", i); seen[r] != 1 {
			t.Errorf("%s relayed %d times, want once", r, seen[r])
		}
	}
	for {
		if l, _ := s.QueueLen(t.Context()); l == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("queue not empty after every message was relayed")
		}
		time.Sleep(10 * time.Millisecond) // the last settle follows the smarthost's reply
	}
}

// renewFails is a queue whose claim renewals fail (this node cannot reach
// the database) and that counts settles.
type renewFails struct {
	store.Driver
	settled atomic.Int32
}

func (q *renewFails) RenewQueueClaim(context.Context, int64, string, time.Duration) (bool, error) {
	return false, errors.New("database unreachable")
}

func (q *renewFails) QueueSettle(ctx context.Context, id int64, holder string, r store.QueueResult) error {
	q.settled.Add(1)
	return q.Driver.QueueSettle(ctx, id, holder, r)
}

// renewLost is a queue on which every renewal finds the claim gone.
type renewLost struct{ renewFails }

func (q *renewLost) RenewQueueClaim(context.Context, int64, string, time.Duration) (bool, error) {
	return false, nil
}

// A relay whose claim ran out during a long delivery (its renewals could
// not reach the database) and was taken over by another worker records
// nothing afterwards: the new owner's result stands. A relay told its
// claim is gone aborts the delivery and records nothing either.
func TestRelay_lostClaimRecordsNothing(t *testing.T) {
	s := storetest.NewDriver(t)
	storetest.AddUser(t, s, taro, taroPW)
	cert := storetest.Certificate(t)
	h, port := startSmarthostWith(t, cert.ServerTLS(), &smarthost{hold: make(chan struct{}), inData: make(chan struct{}, 4)})
	released := false
	release := func() {
		if !released {
			released = true
			close(h.hold)
		}
	}
	t.Cleanup(release)
	opts := smtpd.RelayOptions{Host: "127.0.0.1", Port: port, TLS: "implicit", Username: "relay-user", Password: "relay-secret",
		TLSConfig: trusting(cert), Logger: testLogger(t), Worker: "node-a", ClaimLease: 200 * time.Millisecond}
	q := &renewFails{Driver: s}
	qid := queueRemote(t, s, "ok@remote.example", "slow")
	done := make(chan error, 1)
	go func() { done <- smtpd.NewRelay(q, opts).RunOnce(t.Context()) }()
	select {
	case <-h.inData:
	case <-time.After(10 * time.Second):
		t.Fatal("the relay did not reach the end of DATA")
	}
	// Node B takes the message over once node A's lease has ended.
	var taken []store.QueuedMessage
	deadline := time.Now().Add(10 * time.Second)
	for len(taken) == 0 {
		var err error
		if taken, err = s.ClaimQueue(t.Context(), time.Now().Add(time.Minute), "node-b", time.Minute, 1); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("node A's claim did not end")
		}
		time.Sleep(10 * time.Millisecond) // polling a lease's end with a deadline
	}
	release() // node A hears 250 now, too late to record it
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("RunOnce: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("RunOnce did not return")
	}
	if q.settled.Load() != 1 {
		t.Fatalf("node A settled %d times, want one refused attempt", q.settled.Load())
	}
	if l, _ := s.QueueLen(t.Context()); l != 1 {
		t.Fatalf("queue length %d: node A's late result was recorded", l)
	}
	if err := s.QueueSettle(t.Context(), qid, "node-b", store.QueueResult{Delivered: []string{"ok@remote.example"}}); err != nil {
		t.Fatalf("node B's result: %v", err)
	}

	// Told the claim is gone, node A aborts and records nothing.
	h2, port2 := startSmarthostWith(t, cert.ServerTLS(), &smarthost{hold: make(chan struct{}), inData: make(chan struct{}, 4)})
	t.Cleanup(func() { close(h2.hold) })
	opts.Port = port2
	lost := &renewLost{renewFails{Driver: s}}
	queueRemote(t, s, "ok@remote.example", "aborted")
	start := time.Now()
	if err := smtpd.NewRelay(lost, opts).RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	if lost.settled.Load() != 0 {
		t.Fatal("a relay that lost its claim recorded a result")
	}
	t.Logf("aborted %v after the claim was lost (lease %v)", time.Since(start), opts.ClaimLease)
}
