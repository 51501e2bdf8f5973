package benchsink

import (
	"net"
	"net/smtp"
	"strings"
	"testing"
	"time"
)

func send(t *testing.T, addr, from string, to []string, msg string) error {
	t.Helper()
	return smtp.SendMail(addr, nil, from, to, []byte(msg))
}

func checkRecords(t *testing.T, s *Sink) {
	msg := "Subject: hi\r\n\r\n.leading dot\r\nbody\r\n"
	if err := send(t, s.Addr, "SRS0=abcd=xy=example.org=bob@skydesk.jp", []string{"a@example.net", "b@example.net"}, msg); err != nil {
		t.Fatal(err)
	}
	txs := s.Wait(t, "one transaction", 10*time.Second, func(txs []Transaction, _ int) bool { return len(txs) == 1 })
	tx := txs[0]
	if tx.MailFrom != "SRS0=abcd=xy=example.org=bob@skydesk.jp" || strings.Join(tx.Rcpts, ",") != "a@example.net,b@example.net" {
		t.Fatalf("envelope: %+v", tx)
	}
	if string(tx.Data) != msg || !tx.Acknowledged {
		t.Fatalf("data %q acknowledged %v", tx.Data, tx.Acknowledged)
	}
}

// The rig's sink (or, without the rig, the stand-in) is recorded.
func TestSink_records(t *testing.T) {
	s := Start(t)
	t.Log(s.Origin)
	checkRecords(t, s)
}

// The stand-in answers as the rig's sink does.
func TestSink_standIn(t *testing.T) {
	t.Setenv("SKYDESK_BENCH_DIR", t.TempDir()) // no rig there
	s := Start(t)
	if !strings.HasPrefix(s.Origin, "stand-in") {
		t.Fatalf("origin %q", s.Origin)
	}
	checkRecords(t, s)
}

// A held reply leaves the sender waiting; a sender gone while its reply is
// held is recorded at once as not acknowledged (no Release needed).
func TestSink_hold(t *testing.T) {
	s := Start(t)
	s.Hold()
	c, err := net.Dial("tcp", s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := smtp.NewClient(c, "localhost")
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Mail("x@example.org"); err != nil {
		t.Fatal(err)
	}
	if err := cl.Rcpt("y@example.net"); err != nil {
		t.Fatal(err)
	}
	w, err := cl.Data()
	if err != nil {
		t.Fatal(err)
	}
	_, _ = w.Write([]byte("Subject: held\r\n\r\nx\r\n"))
	closed := make(chan error, 1)
	go func() { closed <- w.Close() }() // waits for the final reply
	s.Wait(t, "a held reply", 10*time.Second, func(_ []Transaction, held int) bool { return held == 1 })
	select {
	case err := <-closed:
		t.Fatalf("the sender got its reply while held: %v", err)
	default:
	}
	c.Close() // the sender dies mid-delivery
	<-closed
	txs := s.Wait(t, "the held transaction", 10*time.Second, func(txs []Transaction, held int) bool { return len(txs) == 1 && held == 0 })
	if txs[0].Acknowledged {
		t.Fatal("a reply to a closed sender counted as acknowledged")
	}
}
