package dnssrv_test

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/skydesk/skydeskd/dnssrv"
)

// rawUDP sends b and returns the answer, or nil when none arrives within
// wait (a dropped packet).
func rawUDP(t *testing.T, addr string, b []byte, wait time.Duration) []byte {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 65535)
	n, err := c.Read(buf)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf[:n]
}

func packed(t *testing.T, m *dns.Msg) []byte {
	t.Helper()
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestServer_malformed: garbage is dropped or answered FORMERR/NOTIMP,
// and the server keeps answering afterwards.
func TestServer_malformed(t *testing.T) {
	f := start(t, nil)
	good := packed(t, query("_pop3s._tcp.skydesk.jp.", dns.TypeSRV, 0))
	twoQuestions := query("_pop3s._tcp.skydesk.jp.", dns.TypeSRV, 0)
	twoQuestions.Question = append(twoQuestions.Question, twoQuestions.Question[0])
	update := query("skydesk.jp.", dns.TypeSOA, 0)
	update.Opcode = dns.OpcodeUpdate
	answer := query("skydesk.jp.", dns.TypeSOA, 0)
	answer.Response = true
	badLabel := append([]byte(nil), good...)
	badLabel[12] = 0xC0 // a compression pointer in the question pointing at itself
	badLabel[13] = 12
	for _, tc := range []struct {
		name  string
		pkt   []byte
		rcode int // -1: dropped
	}{
		{"too short for a header", []byte{1, 2, 3}, -1},
		{"empty", nil, -1},
		{"question cut off", good[:len(good)-3], dns.RcodeFormatError},
		{"compression loop", badLabel, dns.RcodeFormatError},
		{"two questions", packed(t, twoQuestions), dns.RcodeFormatError},
		{"UPDATE opcode", packed(t, update), dns.RcodeNotImplemented},
		{"a response", packed(t, answer), -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wait := 2 * time.Second
			if tc.rcode < 0 {
				wait = 200 * time.Millisecond // proving a negative: how long we listen for an answer
			}
			dropped := f.h.Dropped()
			b := rawUDP(t, f.udp, tc.pkt, wait)
			if tc.rcode < 0 {
				if b != nil {
					t.Fatalf("answered %d bytes, want the packet dropped", len(b))
				}
				for deadline := time.Now().Add(5 * time.Second); f.h.Dropped() == dropped; {
					if time.Now().After(deadline) {
						t.Fatal("dropped packet not counted")
					}
					time.Sleep(10 * time.Millisecond) // polling, bounded by the deadline
				}
			} else {
				if len(b) < 12 {
					t.Fatalf("answer %x, want a DNS header", b)
				}
				if id := binary.BigEndian.Uint16(b); len(tc.pkt) >= 2 && id != binary.BigEndian.Uint16(tc.pkt) {
					t.Errorf("id %d, want the query's", id)
				}
				if rc := int(b[3] & 0x0F); rc != tc.rcode {
					t.Errorf("rcode %s, want %s", dns.RcodeToString[rc], dns.RcodeToString[tc.rcode])
				}
			}
			// Still alive.
			r := exchange(t, "udp", f.udp, query("_pop3s._tcp.skydesk.jp.", dns.TypeSRV, 0))
			if len(r.Answer) != 1 {
				t.Fatalf("after %s: answer %v", tc.name, r.Answer)
			}
		})
	}
}

// TestServer_tcpGarbage: over TCP a length-prefixed message whose
// question is cut off is answered FORMERR on the same connection, and the
// listener keeps serving.
func TestServer_tcpGarbage(t *testing.T) {
	f := start(t, nil)
	c, err := net.Dial("tcp", f.tcp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	good := packed(t, query("_pop3s._tcp.skydesk.jp.", dns.TypeSRV, 0))
	bad := good[:len(good)-3]
	if _, err := c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(bad))), bad...)); err != nil {
		t.Fatal(err)
	}
	var n [2]byte
	if _, err := io.ReadFull(c, n[:]); err != nil {
		t.Fatalf("reading the FORMERR answer: %v", err)
	}
	b := make([]byte, binary.BigEndian.Uint16(n[:]))
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatal(err)
	}
	if len(b) < 12 || int(b[3]&0x0F) != dns.RcodeFormatError {
		t.Fatalf("answer %x, want FORMERR", b)
	}
	r := exchange(t, "tcp", f.tcp, query("_submission._tcp.skydesk.jp.", dns.TypeSRV, 0))
	if len(r.Answer) != 1 {
		t.Fatalf("after garbage: %v", r)
	}
}

// TestServer_tcpPipelining: RFC 7766 §6.2.1.1, several queries written at
// once on one connection are all answered, each with its own ID.
func TestServer_tcpPipelining(t *testing.T) {
	f := start(t, nil)
	c, err := net.Dial("tcp", f.tcp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	names := []string{"_pop3s._tcp.skydesk.jp.", "_submissions._tcp.example.co.jp.", "nothing.example.co.jp.", "_imap._tcp.skydesk.jp."}
	var batch []byte
	ids := map[uint16]string{}
	for i, n := range names {
		q := query(n, dns.TypeSRV, 0)
		q.Id = uint16(1000 + i)
		ids[q.Id] = n
		b := packed(t, q)
		batch = append(binary.BigEndian.AppendUint16(batch, uint16(len(b))), b...)
	}
	if _, err := c.Write(batch); err != nil {
		t.Fatal(err)
	}
	for range names {
		var n [2]byte
		if _, err := io.ReadFull(c, n[:]); err != nil {
			t.Fatalf("reading answers (%d left): %v", len(ids), err)
		}
		b := make([]byte, binary.BigEndian.Uint16(n[:]))
		if _, err := io.ReadFull(c, b); err != nil {
			t.Fatal(err)
		}
		r := new(dns.Msg)
		if err := r.Unpack(b); err != nil {
			t.Fatal(err)
		}
		name, ok := ids[r.Id]
		if !ok || r.Question[0].Name != name {
			t.Fatalf("answer id %d for %v: not one of the queries outstanding %v", r.Id, r.Question, ids)
		}
		delete(ids, r.Id)
	}
}

// TestServer_shutdownIdleTCP: Shutdown closes idle TCP connections at
// once instead of waiting for their idle timeout, and both serve loops
// return nil.
func TestServer_shutdownIdleTCP(t *testing.T) {
	f := start(t, nil) // for its handler
	pcs, l := listenPair(t, "127.0.0.1:0")
	srv := dnssrv.NewServer(f.h, pcs, l)
	errs := make(chan error, 2)
	go func() { errs <- srv.ServeUDP() }()
	go func() { errs <- srv.ServeTCP() }()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	b := packed(t, query("_pop3s._tcp.skydesk.jp.", dns.TypeSRV, 0))
	if _, err := c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...)); err != nil {
		t.Fatal(err)
	}
	var n [2]byte
	if _, err := io.ReadFull(c, n[:]); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, binary.BigEndian.Uint16(n[:]))); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown with an idle connection: %v", err)
	}
	if _, err := c.Read(n[:]); !errors.Is(err, io.EOF) {
		t.Fatalf("idle connection after shutdown: %v, want EOF", err)
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("serve: %v", err)
		}
	}
}
