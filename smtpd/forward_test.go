package smtpd_test

import (
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skydesk/skydeskd/smtpd"
	"github.com/skydesk/skydeskd/store"
	"github.com/skydesk/skydeskd/store/storetest"
)

// forwardRig is the MX with forwarding on, its relay pointed at a fake
// smarthost (the sink), relayed by hand with RunOnce.
type forwardRig struct {
	f     *fixture
	sink  *smarthost
	relay *smtpd.Relay
	srs   *smtpd.SRS

	mu       sync.Mutex
	outcomes map[string]int // ObserveForward's counts
}

// counted returns ObserveForward's counts so far.
func (r *forwardRig) counted() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.outcomes)
}

func newForwardRig(t *testing.T, withRelay bool) *forwardRig {
	srs, err := smtpd.NewSRS([]byte("0123456789abcdef0123456789abcdef"), nil)
	if err != nil {
		t.Fatal(err)
	}
	r := &forwardRig{srs: srs, outcomes: map[string]int{}}
	fo := fixtureOpts{tune: func(o *smtpd.Options) {
		o.SRS = srs
		o.ObserveForward = func(outcome string) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.outcomes[outcome]++
		}
	}}
	if withRelay {
		fo.relay = handRelay{}
	}
	f := newFixture(t, fo)
	cert := storetest.Certificate(t)
	h, port := startSmarthost(t, cert.ServerTLS())
	relay := smtpd.NewRelay(f.st.Driver, smtpd.RelayOptions{
		Host: "127.0.0.1", Port: port, TLS: "implicit", Username: "relay-user", Password: "relay-secret",
		TLSConfig: trusting(cert), Logger: testLogger(t), Hostname: "smtp.skydesk.jp", SRS: srs,
		Now: func() time.Time { return time.Now().Add(time.Minute) },
	})
	r.f, r.sink, r.relay = f, h, relay
	return r
}

// forward sets and confirms addr's forwarding to target.
func (r *forwardRig) forward(t *testing.T, addr, target string, keep bool) {
	t.Helper()
	_, h := store.NewForwardToken()
	if _, err := r.f.st.SetForward(t.Context(), addr, store.ForwardUpdate{Target: target, Keep: keep, TokenHash: h, Expires: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.f.st.ConfirmForward(t.Context(), h); err != nil {
		t.Fatal(err)
	}
}

// send delivers body on the MX from sender to rcpt, then relays.
func (r *forwardRig) send(t *testing.T, from, rcpt, body string) {
	t.Helper()
	w := r.f.dialMX(t)
	w.must("MAIL FROM:<"+from+">", 250)
	w.must("RCPT TO:<"+rcpt+">", 250)
	if c, text := w.data(body); c != 250 {
		t.Fatalf("DATA = %d %s", c, text)
	}
	w.must("QUIT", 221)
	if err := r.relay.RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func fwdMsg(subject string, extra ...string) string {
	return "From: <news@example.org>\r\nTo: <" + taro + ">\r\n" + strings.Join(extra, "") +
		"Subject: " + subject + "\r\n\r\nhello\r\n"
}

func TestForward_keepAndSRS(t *testing.T) {
	for _, keep := range []bool{true, false} {
		t.Run(map[bool]string{true: "keep", false: "no-keep"}[keep], func(t *testing.T) {
			r := newForwardRig(t, true)
			r.forward(t, taro, "me@elsewhere.example", keep)
			r.send(t, "news@example.org", taro, fwdMsg("fwd"))
			got := r.sink.got()
			if len(got) != 1 || len(got[0].rcpts) != 1 || got[0].rcpts[0] != "me@elsewhere.example" {
				t.Fatalf("sink got %+v", got)
			}
			if !strings.HasPrefix(got[0].from, "srs0=") || !strings.HasSuffix(got[0].from, "@skydesk.jp") {
				t.Errorf("envelope sender %q is not an SRS0 address of ours", got[0].from)
			}
			if !strings.HasPrefix(got[0].body, "X-SkyDesk-Forwarded-For: "+taro+"\r\nReceived: ") {
				t.Errorf("forwarded copy does not start with the trace field then Received:\n%s", got[0].body)
			}
			if strings.Contains(got[0].body, "Return-Path:") {
				t.Error("forwarded copy carries the local Return-Path")
			}
			box := r.f.mailbox(t, taro, taroPW)
			if keep && len(box) != 1 || !keep && len(box) != 0 {
				t.Errorf("keep=%v: POP has %d messages", keep, len(box))
			}
			// A bounce to the SRS address reaches the account; a forged
			// one is refused.
			local, domain, _ := strings.Cut(got[0].from, "@")
			if acct, ok := r.srs.ReverseAccount(local, domain); !ok || acct != taro {
				t.Fatalf("ReverseAccount(%s) = %q, %v", got[0].from, acct, ok)
			}
			r.send(t, "", got[0].from, "From: MAILER-DAEMON@elsewhere.example\r\nSubject: bounce\r\n\r\nfailed\r\n")
			if n := len(r.sink.got()); n != 1 {
				t.Errorf("the bounce was forwarded again: sink has %d", n)
			}
			if box2 := r.f.mailbox(t, taro, taroPW); len(box2) != len(box)+1 {
				t.Errorf("bounce not delivered to the forwarding account: %d messages", len(box2))
			}
			w := r.f.dialMX(t)
			w.must("MAIL FROM:<>", 250)
			c, text := w.cmd("RCPT TO:<srs0=aaaaaaaa=" + local[14:] + "@" + domain + ">")
			isCode(t, c, text, 550, "5.1.1")
		})
	}
}

// Pending forwarding forwards nothing; spam and mail over the hop limit
// are kept, not forwarded, even with keep off; without a relay nothing is
// forwarded and the message is kept.
func TestForward_notForwarded(t *testing.T) {
	r := newForwardRig(t, true)
	_, h := store.NewForwardToken()
	if _, err := r.f.st.SetForward(t.Context(), taro, store.ForwardUpdate{Target: "me@elsewhere.example", TokenHash: h, Expires: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	r.send(t, "news@example.org", taro, fwdMsg("pending"))
	if got := r.sink.got(); len(got) != 0 {
		t.Fatalf("an unconfirmed target got %+v", got)
	}
	r.forward(t, taro, "me@elsewhere.example", false)
	r.send(t, "news@example.org", taro, fwdMsg("spam", "X-Spam-Flag: YES\r\n"))
	r.send(t, "news@example.org", taro, fwdMsg("hops", strings.Repeat("Received: from a by b; Thu, 03 Dec 2026 09:00:00 +0900\r\n", smtpd.MaxHops-1)))
	if got := r.sink.got(); len(got) != 0 {
		t.Fatalf("spam or a message over the hop limit was forwarded: %+v", got)
	}
	on := true
	if _, err := r.f.st.SetPOP(t.Context(), taro, store.POPUpdate{IncludeSpam: &on}); err != nil {
		t.Fatal(err)
	}
	if box := r.f.mailbox(t, taro, taroPW); len(box) != 3 {
		t.Errorf("POP has %d messages, want 3 (pending, spam, hops: all kept)", len(box))
	}

	nr := newForwardRig(t, false)
	nr.forward(t, taro, "me@elsewhere.example", false)
	nr.send(t, "news@example.org", taro, fwdMsg("no relay"))
	if len(nr.sink.got()) != 0 || len(nr.f.mailbox(t, taro, taroPW)) != 1 {
		t.Error("without a relay the message must be kept and not forwarded")
	}
	if got, want := r.counted(), map[string]int{smtpd.ForwardUnconfirmed: 1, smtpd.ForwardSpam: 1, smtpd.ForwardHopLimit: 1}; !maps.Equal(got, want) {
		t.Errorf("ObserveForward counted %v, want %v", got, want)
	}
	if got, want := nr.counted(), map[string]int{smtpd.ForwardNoRelay: 1}; !maps.Equal(got, want) {
		t.Errorf("without a relay, ObserveForward counted %v, want %v", got, want)
	}
}

// taro forwards to hanako and hanako to taro, both through the relay: the
// sink hands each copy back to our MX (as the Internet would). The second
// hop carries taro's own trace field, so it stops there, kept.
func TestForward_loopStops(t *testing.T) {
	r := newForwardRig(t, true)
	r.forward(t, taro, hanako, false)
	r.forward(t, hanako, taro, false)
	r.send(t, "news@example.org", taro, fwdMsg("loop"))
	for i := 0; i < 5; i++ {
		got := r.sink.got()
		if len(got) == i {
			break
		}
		c := got[i]
		r.send(t, c.from, c.rcpts[0], c.body)
	}
	got := r.sink.got()
	if len(got) != 2 || got[0].rcpts[0] != hanako || got[1].rcpts[0] != taro {
		t.Fatalf("sink got %d copies, want 2 (to hanako, back to taro)", len(got))
	}
	if box := r.f.mailbox(t, taro, taroPW); len(box) != 1 || !strings.Contains(box[0], "X-SkyDesk-Forwarded-For: "+hanako) {
		t.Errorf("taro's mailbox %d messages; want the looped copy kept", len(box))
	}
	if box := r.f.mailbox(t, hanako, hanakoPW); len(box) != 0 {
		t.Errorf("hanako (keep off) has %d messages", len(box))
	}
	if got, want := r.counted(), map[string]int{smtpd.ForwardQueued: 2, smtpd.ForwardLoop: 1}; !maps.Equal(got, want) {
		t.Errorf("ObserveForward counted %v, want %v", got, want)
	}
}

// Mail submitted by one account to another that forwards is forwarded
// too (submission adds no Return-Path, so nothing is cut off).
func TestForward_submission(t *testing.T) {
	r := newForwardRig(t, true)
	r.forward(t, hanako, "h@elsewhere.example", true)
	w := r.f.login(t, taro, taroPW)
	w.must("MAIL FROM:<"+taro+">", 250)
	w.must("RCPT TO:<"+hanako+">", 250)
	if c, text := w.data("From: <" + taro + ">\r\nSubject: internal\r\n\r\nhi\r\n"); c != 250 {
		t.Fatalf("DATA = %d %s", c, text)
	}
	w.must("QUIT", 221)
	if err := r.relay.RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	got := r.sink.got()
	if len(got) != 1 || !strings.HasPrefix(got[0].body, "X-SkyDesk-Forwarded-For: "+hanako+"\r\nReceived: ") {
		t.Fatalf("sink got %+v", got)
	}
}

// ObserveForward hears of a message only once it is stored: a spam
// message refused at DATA (it would overfill the mailbox it is kept in)
// counts nothing, so its retry is not counted twice.
func TestForward_refusedNotCounted(t *testing.T) {
	r := newForwardRig(t, true)
	r.forward(t, taro, "me@elsewhere.example", false)
	if err := r.f.st.SetQuota(t.Context(), taro, 2000); err != nil {
		t.Fatal(err)
	}
	w := r.f.dialMX(t)
	w.must("MAIL FROM:<news@example.org>", 250)
	w.must("RCPT TO:<"+taro+">", 250)
	c, text := w.data(fwdMsg("big spam", "X-Spam-Flag: YES\r\n") + strings.Repeat("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n", 60))
	isCode(t, c, text, 552, "5.2.2")
	if got := r.counted(); len(got) != 0 {
		t.Errorf("a refused message was counted: %v", got)
	}
	w.must("MAIL FROM:<news@example.org>", 250)
	w.must("RCPT TO:<"+taro+">", 250)
	if c, text := w.data(fwdMsg("small spam", "X-Spam-Flag: YES\r\n")); c != 250 {
		t.Fatalf("DATA = %d %s", c, text)
	}
	if got, want := r.counted(), map[string]int{smtpd.ForwardSpam: 1}; !maps.Equal(got, want) {
		t.Errorf("ObserveForward counted %v, want %v", got, want)
	}
}
