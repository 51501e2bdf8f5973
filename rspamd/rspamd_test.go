package rspamd_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skydesk/skydeskd/rspamd"
	"github.com/skydesk/skydeskd/rspamd/rspamdtest"
)

// fake serves handler on 127.0.0.1 and returns a client of it.
func fake(t *testing.T, o rspamd.Options, handler http.HandlerFunc) *rspamd.Client {
	t.Helper()
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	o.URL = srv.URL
	c, err := rspamd.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func reply(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, body)
	}
}

func TestCheck_requestHeaders(t *testing.T) {
	var got http.Header
	var path, body string
	c := fake(t, rspamd.Options{}, func(w http.ResponseWriter, r *http.Request) {
		got, path = r.Header.Clone(), r.URL.Path
		b, _ := io.ReadAll(r.Body)
		body = string(b)
		_, _ = io.WriteString(w, `{"action":"no action","score":0.5,"required_score":15}`)
	})
	req := rspamd.Request{IP: netip.MustParseAddr("::ffff:192.0.2.7"), Helo: "mail.example.net\r\nX: y",
		From: "a@example.net", Rcpt: []string{"b@skydesk.jp", "太郎@skydesk.jp"}, QueueID: "abc\x00\x7f" + strings.Repeat("é", 40)}
	if _, err := c.Check(context.Background(), req, bytes.NewReader([]byte("Subject: x\r\n\r\nhi\r\n"))); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string][]string{
		"Ip": {"192.0.2.7"}, "Helo": {"mail.example.netX: y"}, "Hostname": {"[192.0.2.7]"},
		"From": {"a@example.net"}, "Rcpt": {"b@skydesk.jp", "太郎@skydesk.jp"}, // SMTPUTF8 kept
		"Queue-Id": {"abc" + strings.Repeat("é", 30)}, // controls dropped, 64 octets, no split character
	} {
		if !slices.Equal(got.Values(k), want) {
			t.Errorf("%s = %q, want %q", k, got.Values(k), want)
		}
	}
	if path != "/checkv2" || body != "Subject: x\r\n\r\nhi\r\n" {
		t.Errorf("posted %q to %s", body, path)
	}
}

func TestCheck_result(t *testing.T) {
	c := fake(t, rspamd.Options{}, reply(`{"is_skipped":false,"score":9.5,"required_score":15.0,"action":"reject",
		"symbols":{"Z_RULE":{"name":"Z_RULE","score":8.0},"A RULE,(x)":{"score":1.5}},
		"messages":{"smtp_message":"Spam\r\n250 ok\u00e9 `+strings.Repeat("x", 400)+`"}}`))
	res, err := c.Check(context.Background(), rspamd.Request{}, bytes.NewReader([]byte("x")))
	if err != nil {
		t.Fatal(err)
	}
	if res.Action != rspamd.Reject || res.Score != 9.5 || res.RequiredScore != 15 {
		t.Errorf("got %+v", res)
	}
	if want := []rspamd.Symbol{{Name: "ARULEx", Score: 1.5}, {Name: "Z_RULE", Score: 8}}; !slices.Equal(res.Symbols, want) {
		t.Errorf("symbols %+v, want %+v", res.Symbols, want)
	}
	// One line, printable ASCII, bounded: no reply injection.
	if m := res.SMTPMessage; !strings.HasPrefix(m, "Spam 250 ok xxx") || len(m) != 200 || strings.ContainsAny(m, "\r\n\u00e9") {
		t.Errorf("smtp message %q (%d octets)", m, len(m))
	}
}

// hang answers nothing (or a partial body) until the client gives up or
// the test ends.
func hang(partial string) func(release <-chan struct{}) http.HandlerFunc {
	return func(release <-chan struct{}) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			// Reading the body lets the server notice the client leaving.
			_, _ = io.Copy(io.Discard, r.Body)
			if partial != "" {
				_, _ = io.WriteString(w, partial)
				w.(http.Flusher).Flush()
			}
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
	}
}

func fixed(h http.HandlerFunc) func(<-chan struct{}) http.HandlerFunc {
	return func(<-chan struct{}) http.HandlerFunc { return h }
}

func TestCheck_errors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		handler func(release <-chan struct{}) http.HandlerFunc
		want    error
	}{
		{"malformed json", fixed(reply(`{"action":`)), rspamd.ErrBadResponse},
		{"html", fixed(reply(`<html>proxy error</html>`)), rspamd.ErrBadResponse},
		{"no action", fixed(reply(`{"score":1}`)), rspamd.ErrBadResponse},
		{"no score", fixed(reply(`{"action":"no action"}`)), rspamd.ErrBadResponse},
		{"unknown action", fixed(reply(`{"action":"launch missiles","score":1}`)), rspamd.ErrBadResponse},
		{"oversized", fixed(reply(`{"action":"no action","score":1,"x":"` + strings.Repeat("a", 2000) + `"}`)), rspamd.ErrBadResponse},
		{"http 500", fixed(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, `{"error":"cannot parse"}`, http.StatusInternalServerError)
		}), rspamd.ErrStatus},
		{"redirect", fixed(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://192.0.2.1/", http.StatusFound)
		}), rspamd.ErrStatus},
		{"slow", hang(""), rspamd.ErrTimeout},
		{"slow body", hang(`{"action":"no action",`), rspamd.ErrTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			release := make(chan struct{})
			c := fake(t, rspamd.Options{Timeout: 300 * time.Millisecond, MaxResponse: 1024}, tc.handler(release))
			t.Cleanup(func() { close(release) }) // before the server's Close
			start := time.Now()
			_, err := c.Check(context.Background(), rspamd.Request{}, bytes.NewReader([]byte("x")))
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v: the timeout did not bound the check", d)
			}
		})
	}
}

func TestCheck_unavailable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there now
	c, err := rspamd.New(rspamd.Options{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Check(context.Background(), rspamd.Request{}, bytes.NewReader([]byte("x"))); !errors.Is(err, rspamd.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
}

func TestNew_badURL(t *testing.T) {
	for _, u := range []string{"", "127.0.0.1:11333", "ftp://x/", "http://"} {
		if _, err := rspamd.New(rspamd.Options{URL: u}); err == nil {
			t.Errorf("%q accepted", u)
		}
	}
}

func TestVerdict(t *testing.T) {
	for _, tc := range []struct {
		action rspamd.Action
		want   rspamd.Disposition
	}{
		{rspamd.NoAction, rspamd.Deliver},
		{rspamd.Greylist, rspamd.Defer},
		{rspamd.SoftReject, rspamd.Defer},
		{rspamd.AddHeader, rspamd.DeliverSpam},
		{rspamd.RewriteSubject, rspamd.DeliverSpam},
		{rspamd.Discard, rspamd.DeliverSpam},
		{rspamd.Quarantine, rspamd.DeliverSpam},
		{rspamd.Reject, rspamd.Refuse},
	} {
		var seen []rspamd.Outcome
		c := fake(t, rspamd.Options{Observe: func(o rspamd.Outcome) { seen = append(seen, o) }},
			reply(`{"action":"`+string(tc.action)+`","score":1}`))
		v := c.Verdict(context.Background(), rspamd.Request{}, bytes.NewReader([]byte("x")))
		if v.Disposition != tc.want || v.Err != nil || v.Result.Action != tc.action {
			t.Errorf("%s: got %v %v, want %v", tc.action, v.Disposition, v.Err, tc.want)
		}
		if len(seen) != 1 || seen[0].Action != tc.action || seen[0].Error != "" {
			t.Errorf("%s: observed %+v", tc.action, seen)
		}
	}
}

func TestVerdict_onError(t *testing.T) {
	for _, tc := range []struct {
		policy rspamd.OnError
		want   rspamd.Disposition
	}{
		{"", rspamd.Deliver},
		{rspamd.Accept, rspamd.Deliver},
		{rspamd.TempFail, rspamd.Defer},
	} {
		var mu sync.Mutex
		var seen []rspamd.Outcome
		c := fake(t, rspamd.Options{OnError: tc.policy, Observe: func(o rspamd.Outcome) {
			mu.Lock()
			seen = append(seen, o)
			mu.Unlock()
		}}, reply(`not json`))
		v := c.Verdict(context.Background(), rspamd.Request{}, bytes.NewReader([]byte("x")))
		if v.Disposition != tc.want || !errors.Is(v.Err, rspamd.ErrBadResponse) {
			t.Errorf("on_error %q: got %v %v, want %v", tc.policy, v.Disposition, v.Err, tc.want)
		}
		if len(seen) != 1 || seen[0].Error != "bad_response" || seen[0].Action != "" {
			t.Errorf("on_error %q: observed %+v", tc.policy, seen)
		}
	}
}

// The real rspamd gives the verdicts the smtpd tests rely on.
func TestCheck_realRspamd(t *testing.T) {
	srv := rspamdtest.Start(t)
	c, err := rspamd.New(rspamd.Options{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	req := rspamd.Request{IP: netip.MustParseAddr("192.0.2.7"), Helo: "mail.example.net", From: "a@example.net",
		Rcpt: []string{"b@skydesk.jp"}, QueueID: "q1"}
	head := "From: <a@example.net>\r\nTo: <b@skydesk.jp>\r\nSubject: hello\r\nDate: Thu, 03 Dec 2026 09:00:00 +0000\r\nMessage-ID: <1@example.net>\r\n\r\n"
	for _, tc := range []struct {
		name, body string
		want       rspamd.Action
	}{
		{"ham", "See you at lunch tomorrow.\r\n", rspamd.NoAction},
		{"spam word", "Cheap " + rspamdtest.SpamWord + " today.\r\n", rspamd.AddHeader},
		{"gtube", rspamdtest.GTUBE + "\r\n", rspamd.Reject},
	} {
		res, err := c.Check(context.Background(), req, bytes.NewReader([]byte(head+tc.body)))
		if err != nil {
			t.Fatalf("%s: %v\n%s", tc.name, err, srv.Log())
		}
		if res.Action != tc.want {
			t.Errorf("%s: action %q (score %.2f, %v), want %q", tc.name, res.Action, res.Score, res.Symbols, tc.want)
		}
	}
}
