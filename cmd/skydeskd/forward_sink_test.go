package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"maps"
	"mime"
	"net"
	"net/http"
	"net/mail"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skydesk/skydeskd/config"
	"github.com/skydesk/skydeskd/internal/benchsink"
	"github.com/skydesk/skydeskd/smtpd"
	"github.com/skydesk/skydeskd/store"
)

// sinkWait bounds every wait for the relay to reach the sink.
const sinkWait = 30 * time.Second

// withSink points the service's relay at the bench sink (tls none, as
// the rig's sink speaks) and opens the MX on loopback.
func withSink(s *benchsink.Sink) func(*config.Config) {
	return func(c *config.Config) {
		host, port, _ := net.SplitHostPort(s.Addr)
		p, _ := strconv.Atoi(port)
		c.Listen.MX = "127.0.0.1:0"
		c.SMTP.Smarthost = config.Smarthost{Host: host, Port: p, TLS: "none", RetryPeriod: "1h", ClaimLease: "5m"}
	}
}

// addPOPAccount adds an account with POP on for all mail.
func addPOPAccount(t *testing.T, w *webApp, address, password string) {
	t.Helper()
	ctx := context.Background()
	if _, err := w.store.AddAccount(ctx, store.NewAccount{Address: address, Password: password}); err != nil {
		t.Fatal(err)
	}
	all := store.POPAll
	if _, err := w.store.SetPOP(ctx, address, store.POPUpdate{Access: &all}); err != nil {
		t.Fatal(err)
	}
}

// confirmLink matches the one-time link in the confirmation message.
var confirmLink = regexp.MustCompile(`https://\S+/forward/confirm\?t=[A-Za-z0-9_%-]+`)

// sinkLink waits for the confirmation message to target at the sink
// (the only transaction to target after the first skip) and returns its
// link, read from the decoded body as the target's owner would.
func sinkLink(t *testing.T, sink *benchsink.Sink, target string, skip int) string {
	t.Helper()
	txs := sink.Wait(t, "confirmation to "+target, sinkWait, func(txs []benchsink.Transaction, _ int) bool {
		return len(txs) > skip && slices.ContainsFunc(txs[skip:], func(tx benchsink.Transaction) bool { return slices.Equal(tx.Rcpts, []string{target}) })
	})
	i := skip + slices.IndexFunc(txs[skip:], func(tx benchsink.Transaction) bool { return slices.Equal(tx.Rcpts, []string{target}) })
	m, err := mail.ReadMessage(bytes.NewReader(txs[i].Data))
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject")); !strings.Contains(s, "Confirm mail forwarding") {
		t.Errorf("confirmation subject %q", s)
	}
	body, err := io.ReadAll(io.LimitReader(base64.NewDecoder(base64.StdEncoding, m.Body), 1<<16))
	if err != nil {
		t.Fatal(err)
	}
	link := confirmLink.FindString(string(body))
	if link == "" {
		t.Fatalf("no confirmation link in:\n%s", body)
	}
	return link
}

// confirmByHTTP opens the link (the page only asks) and presses the
// button (a POST of the token), as the target's owner does.
func confirmByHTTP(t *testing.T, w *webApp, link, account string) {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	page := httpDo(t, w, http.MethodGet, link, nil)
	if !strings.Contains(page, `id="fwd-confirm-button"`) {
		t.Fatalf("the link's page has no confirm button:\n%s", page)
	}
	if f, err := w.store.GetForward(context.Background(), account); err != nil || f.Confirmed {
		t.Fatalf("opening the link confirmed already: %+v %v", f, err)
	}
	page = httpDo(t, w, http.MethodPost, w.webURL+u.Path, url.Values{"t": {u.Query().Get("t")}})
	if !strings.Contains(page, `id="fwd-confirmed"`) {
		t.Fatalf("confirming:\n%s", page)
	}
}

// httpDo sends one request with the service's client and returns the
// page (status 200 required).
func httpDo(t *testing.T, w *webApp, method, target string, form url.Values) string {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := w.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	page, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: %d\n%s", method, target, resp.StatusCode, page)
	}
	return string(page)
}

// forwardCounts reads skydeskd_forward_total{outcome} as /metrics would
// export it.
func forwardCounts(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "skydeskd_forward_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				got[l.GetValue()] = m.GetCounter().GetValue()
			}
		}
	}
	return got
}

// fwdSinkMsg is a message from the Internet with its own Date and
// Message-ID, so the MX adds only Received and the copy can be compared.
func fwdSinkMsg(to, subject, extra string) string {
	return "From: News <news@example.org>\r\nTo: <" + to + ">\r\nSubject: " + subject + "\r\n" +
		"Date: Thu, 03 Dec 2026 09:00:00 +0900\r\nMessage-ID: <" + strings.ReplaceAll(subject, " ", ".") + "@example.org>\r\n" +
		extra + "\r\nhello " + subject + "\r\n"
}

// mxSend delivers one message on the service's MX.
func mxSend(t *testing.T, w *webApp, from, to, body string) {
	t.Helper()
	if err := sendMX(w.addrs["mx"], from, []string{to}, body); err != nil {
		t.Fatalf("MX delivery to %s: %v", to, err)
	}
}

// copiesTo returns the sink's transactions to rcpt.
func copiesTo(txs []benchsink.Transaction, rcpt string) []benchsink.Transaction {
	var out []benchsink.Transaction
	for _, tx := range txs {
		if slices.Equal(tx.Rcpts, []string{rcpt}) {
			out = append(out, tx)
		}
	}
	return out
}

// Forwarding end to end with the relay pointed at the bench rig's sink:
// a new target gets only the confirmation (mail before it is kept, not
// forwarded); once the link is confirmed, MX mail reaches the sink with
// an SRS sender of ours that decodes to the forwarding account, the
// message intact under our trace field, and stays in POP only with keep
// yes; spam is not forwarded; two accounts forwarding to each other
// through the Internet (the sink's copy handed back to our MX) stop after
// one round. skydeskd_forward_total counts each case.
func TestForward_benchSink(t *testing.T) {
	sink := benchsink.Start(t)
	w := startWebApp(t, withSink(sink))
	ctx := context.Background()
	const pw = "correct horse battery"
	const keepAcct, keepTo = "keep@skydesk.jp", "keep-target@elsewhere.example"
	const dropAcct, dropTo = "drop@skydesk.jp", "drop-target@elsewhere.example"
	for _, a := range []string{keepAcct, dropAcct} {
		addPOPAccount(t, w, a, pw)
	}

	// Set up on the settings screen (as a form post): pending.
	set := func(acct, target, keep string) {
		t.Helper()
		b := w.signedInClient(t, acct, pw)
		if code, page := b.do("POST", "/settings/forward", url.Values{"csrf": {b.csr}, "target": {target}, "keep": {keep}}); code != http.StatusSeeOther {
			t.Fatalf("forward set: %d\n%s", code, page)
		}
	}
	set(keepAcct, keepTo, "yes")
	set(dropAcct, dropTo, "no")
	keepLink, dropLink := sinkLink(t, sink, keepTo, 0), sinkLink(t, sink, dropTo, 0)

	// Unconfirmed: delivered here, not forwarded.
	mxSend(t, w, "news@example.org", dropAcct, fwdSinkMsg(dropAcct, "before confirming", ""))
	if c := forwardCounts(t, w.reg); c[smtpd.ForwardUnconfirmed] != 1 || c[smtpd.ForwardQueued] != 0 {
		t.Errorf("before confirming: skydeskd_forward_total %v", c)
	}

	confirmByHTTP(t, w, keepLink, keepAcct)
	confirmByHTTP(t, w, dropLink, dropAcct)
	spam := fwdSinkMsg(keepAcct, "spam offer", "X-Spam-Flag: YES\r\n")
	mxSend(t, w, "news@example.org", keepAcct, spam)
	msgs := map[string]string{keepAcct: fwdSinkMsg(keepAcct, "kept and forwarded", ""), dropAcct: fwdSinkMsg(dropAcct, "forwarded only", "")}
	targets := map[string]string{keepAcct: keepTo, dropAcct: dropTo}
	for _, a := range []string{keepAcct, dropAcct} {
		mxSend(t, w, "news@example.org", a, msgs[a])
	}
	txs := sink.Wait(t, "two forwarded copies", sinkWait, func(txs []benchsink.Transaction, _ int) bool {
		return len(copiesTo(txs, keepTo)) == 2 && len(copiesTo(txs, dropTo)) == 2
	})
	for _, a := range []string{keepAcct, dropAcct} {
		c := copiesTo(txs, targets[a])[1] // [0] is the confirmation
		local, domain, _ := strings.Cut(c.MailFrom, "@")
		if !smtpd.IsSRS(local) || domain != "skydesk.jp" {
			t.Errorf("%s: envelope sender %q is not an SRS0 address at our domain", a, c.MailFrom)
		}
		// Our SRS carries the forwarding account (not the original
		// sender): a bounce of the copy goes back to it.
		if acct, ok := w.srs.ReverseAccount(local, domain); !ok || acct != a {
			t.Errorf("%s: SRS sender %q decodes to %q, %v", a, c.MailFrom, acct, ok)
		}
		data := string(c.Data)
		if !strings.HasPrefix(data, smtpd.ForwardedForField+": "+a+"\r\nReceived: ") || !strings.HasSuffix(data, msgs[a]) {
			t.Errorf("%s: the copy is not our trace field, Received, then the message intact:\n%s", a, data)
		}
	}
	for _, tx := range txs {
		if s := string(tx.Data); strings.Contains(s, "before confirming") || strings.Contains(s, "spam offer") {
			t.Errorf("the sink got mail it must not:\n%s", s)
		}
	}
	if got := w.popSubjects(t, keepAcct, pw, false); strings.Join(got, ",") != "kept and forwarded" {
		t.Errorf("keep yes: POP lists %q", got) // the spam is kept, hidden from POP by default
	}
	if got := w.popSubjects(t, dropAcct, pw, false); strings.Join(got, ",") != "before confirming" {
		t.Errorf("keep no: POP lists %q, want only the mail from before the confirmation", got)
	}

	loopBetween(t, w, sink, pw)

	want := map[string]float64{smtpd.ForwardQueued: 4, smtpd.ForwardUnconfirmed: 1, smtpd.ForwardSpam: 1, smtpd.ForwardLoop: 1,
		smtpd.ForwardHopLimit: 0, smtpd.ForwardNoRelay: 0}
	if c := forwardCounts(t, w.reg); !maps.Equal(c, want) {
		t.Errorf("skydeskd_forward_total %v, want %v", c, want)
	}
	// Every queued copy and the four confirmations, nothing more: the
	// counts above were final when the last MX delivery was answered.
	txs = sink.Wait(t, "all mail", sinkWait, func(txs []benchsink.Transaction, _ int) bool { return len(txs) >= 8 })
	if len(txs) != 8 {
		t.Errorf("the sink got %d messages, want 8 (4 confirmations, 4 copies)", len(txs))
	}
	if f, err := w.store.GetForward(ctx, keepAcct); err != nil || !f.Active() || f.Target != keepTo {
		t.Errorf("forwarding of %s: %+v %v", keepAcct, f, err)
	}
}

// loopBetween: a@ forwards to b@ and b@ to a@ (both ours; a local
// target goes out through the relay like any other), each copy that
// reaches the sink is handed back to our MX as the Internet would. The
// copy that comes back to a@ carries a@'s own trace field: kept, the
// loop ends after one round (two copies).
func loopBetween(t *testing.T, w *webApp, sink *benchsink.Sink, pw string) {
	t.Helper()
	const a, b = "loop-a@skydesk.jp", "loop-b@skydesk.jp"
	for _, p := range [][2]string{{a, b}, {b, a}} {
		addPOPAccount(t, w, p[0], pw)
		skip := len(sink.Transactions())
		c := w.signedInClient(t, p[0], pw)
		if code, page := c.do("POST", "/settings/forward", url.Values{"csrf": {c.csr}, "target": {p[1]}, "keep": {"no"}}); code != http.StatusSeeOther {
			t.Fatalf("forward set: %d\n%s", code, page)
		}
		confirmByHTTP(t, w, sinkLink(t, sink, p[1], skip), p[0])
	}
	skip := len(sink.Transactions())
	mxSend(t, w, "news@example.org", a, fwdSinkMsg(a, "ping pong", ""))
	for round := 1; round <= 2; round++ {
		txs := sink.Wait(t, "loop copy "+strconv.Itoa(round), sinkWait, func(txs []benchsink.Transaction, _ int) bool { return len(txs) >= skip+round })
		c := txs[skip+round-1]
		if want := []string{b, a}[round-1]; !slices.Equal(c.Rcpts, []string{want}) {
			t.Fatalf("loop copy %d to %v, want %s", round, c.Rcpts, want)
		}
		mxSend(t, w, c.MailFrom, c.Rcpts[0], string(c.Data))
	}
	if got := w.popSubjects(t, a, pw, false); strings.Join(got, ",") != "ping pong" {
		t.Errorf("a@ keeps %q, want the copy that came back", got)
	}
	if got := w.popSubjects(t, b, pw, false); len(got) != 0 {
		t.Errorf("b@ (keep no) has %q", got)
	}
}
