package smtpd

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

func TestParseMessage(t *testing.T) {
	for _, tc := range []struct {
		name, raw  string
		headerEnd  int
		headerless bool
		subject    string
	}{
		{"normal", "Subject: hi\r\nFrom: a@b\r\n\r\nbody\r\n", 24, false, "hi"},
		{"bare-LF", "Subject: hi\nFrom: a@b\n\nbody\n", 24, false, "hi"},
		{"folded", "Subject: one\r\n two\r\n\r\nx", 20, false, "one two"},
		{"no-body", "Subject: hi\r\n", 13, false, "hi"},
		{"headerless", "just text\r\nmore\r\n", 0, true, ""},
		{"blank-first", "\r\nbody\r\n", 0, false, ""},
		{"malformed-line-ends-header", "Subject: hi\r\nnot a header\r\n\r\nbody", 13, false, "hi"},
		{"space-in-name", "Bad Name: x\r\n\r\n", 0, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := parseMessage([]byte(tc.raw))
			if m.headerEnd != tc.headerEnd || m.headerless != tc.headerless || m.header.Get("Subject") != tc.subject {
				t.Errorf("headerEnd=%d headerless=%v subject=%q", m.headerEnd, m.headerless, m.header.Get("Subject"))
			}
		})
	}
}

// Client-chosen text never breaks out of its header line.
func TestHeloAndPrintableCannotInject(t *testing.T) {
	if got := heloName("evil\r\nX-Injected: 1"); strings.ContainsAny(got, "\r\n ") {
		t.Errorf("heloName kept a line break or space: %q", got)
	}
	if got := heloName(""); got != "unknown" {
		t.Errorf("empty helo = %q", got)
	}
	if got := printable("a\r\nb\x00c"); got != "abc" {
		t.Errorf("printable = %q", got)
	}
}

func testSession(mode Mode) *session {
	b := &backend{mode: mode, opts: Options{Hostname: "smtp.skydesk.jp"}}
	b.opts.defaults()
	b.opts.Now = func() time.Time { return time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC) }
	return &session{b: b, id: "testid", remote: netip.MustParseAddr("192.0.2.1"), tls: true,
		user: "taro@skydesk.jp", rcpts: []string{"hanako@example.co.jp"}, local: []string{"hanako@example.co.jp"}, from: "taro@skydesk.jp", helo: "client.example"}
}

func TestFixUp_headerless(t *testing.T) {
	s := testSession(Submission)
	got := string(s.fixUp(parseMessage([]byte("hello\r\n"))))
	want := "Received: from client.example ([192.0.2.1])\r\n\tby smtp.skydesk.jp (skydeskd) with ESMTPSA id testid\r\n" +
		"\tfor <hanako@example.co.jp>; Thu, 26 Nov 2026 09:00:00 +0000\r\n" +
		"From: <taro@skydesk.jp>\r\nDate: Thu, 26 Nov 2026 09:00:00 +0000\r\nMessage-ID: <"
	if !strings.HasPrefix(got, want) || !strings.HasSuffix(got, "@smtp.skydesk.jp>\r\n\r\nhello\r\n") {
		t.Fatalf("got\n%s", got)
	}
}

// Submission strips Bcc (with its continuation lines) and nothing else.
func TestFixUp_stripsBcc(t *testing.T) {
	s := testSession(Submission)
	raw := "From: taro@skydesk.jp\r\nBcc: secret@example.org,\r\n\tother@example.org\r\nSubject: x\r\nBCC: more@example.org\r\n\r\nBcc: in the body stays\r\n"
	got := string(s.fixUp(parseMessage([]byte(raw))))
	if strings.Contains(got, "secret@") || strings.Contains(got, "other@") || strings.Contains(got, "more@") ||
		!strings.Contains(got, "\r\nFrom: taro@skydesk.jp\r\nSubject: x\r\n") || !strings.HasSuffix(got, "\r\n\r\nBcc: in the body stays\r\n") {
		t.Fatalf("got\n%s", got)
	}
	mx := testSession(MX)
	if got := string(mx.fixUp(parseMessage([]byte(raw)))); !strings.Contains(got, "secret@") {
		t.Fatal("the MX must deliver the header as received")
	}
}

func TestHeaderClassifier(t *testing.T) {
	for raw, want := range map[string]bool{
		"X-Spam-Flag: YES\r\n\r\n":                    true,
		"X-Spam-Status: Yes, score=9\r\n\r\n":         true,
		"X-Spam-Status: yes score=9\r\n\r\n":          true,
		"X-Spam: Yes\r\n\r\n":                         true,
		"X-Spam-Status: No, score=-1\r\n\r\n":         false,
		"X-Spam-Status: Yesterday\r\n\r\n":            false,
		"Subject: X-Spam-Flag: YES\r\n\r\n":           false,
		"Subject: x\r\n\r\nX-Spam-Flag: YES\r\n":      false, // in the body
		"X-Spam-Flag: NO\r\nX-Spam-Flag: YES\r\n\r\n": true,
	} {
		got, err := HeaderClassifier{}.Classify(context.Background(), parseMessage([]byte(raw)).header)
		if err != nil || got != want {
			t.Errorf("%q: %v, %v; want %v", raw, got, err, want)
		}
	}
}

// FuzzParseMessage: any input splits without panicking, the split is
// inside the message, and fixUp keeps every original octet after the
// header section.
func FuzzParseMessage(f *testing.F) {
	for _, s := range []string{"Subject: x\r\n\r\nbody", "\r\n", "a", "X: y\n z\n\nq", ":\r\n\r\n", "\xff\xfe: \x00\r\n\r\n"} {
		f.Add([]byte(s))
	}
	s := testSession(MX)
	f.Fuzz(func(t *testing.T, raw []byte) {
		m := parseMessage(raw)
		if m.headerEnd < 0 || m.headerEnd > len(m.raw) {
			t.Fatalf("headerEnd %d outside [0,%d]", m.headerEnd, len(m.raw))
		}
		out := s.fixUp(m)
		if !bytes.HasSuffix(out, m.raw[m.headerEnd:]) {
			t.Fatal("body changed")
		}
	})
}

func BenchmarkParseAndFixUp20KB(b *testing.B) {
	var msg bytes.Buffer
	msg.WriteString("From: <taro@skydesk.jp>\r\nTo: <hanako@example.co.jp>\r\nSubject: bench\r\n\r\n")
	for msg.Len() < 20000 {
		msg.WriteString(strings.Repeat("abcdefghij", 7) + "\r\n")
	}
	raw := msg.Bytes()
	s := testSession(Submission)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		m := parseMessage(raw)
		if err := s.checkFrom(m); err != nil {
			b.Fatal(err)
		}
		_ = s.fixUp(m)
	}
}

// Submission: every originator field names the authenticated user, and a
// header section with a stray line (behind which a second From: would hide
// from this check) is refused.
func TestCheckFrom_originators(t *testing.T) {
	s := testSession(Submission)
	for _, tc := range []struct {
		name, header string
		code         int // 0: accepted
	}{
		{"own-from", "From: Taro <taro@skydesk.jp>\r\n", 0},
		{"no-from", "Subject: x\r\n", 0},
		{"case-insensitive", "From: <TARO@SkyDesk.JP>\r\n", 0},
		{"foreign-from", "From: <boss@example.co.jp>\r\n", 550},
		{"two-froms", "From: <taro@skydesk.jp>\r\nFrom: <taro@skydesk.jp>\r\n", 554},
		{"own-sender", "From: <taro@skydesk.jp>\r\nSender: <taro@skydesk.jp>\r\n", 0},
		{"foreign-sender", "From: <taro@skydesk.jp>\r\nSender: <boss@example.co.jp>\r\n", 550},
		{"two-senders", "Sender: <taro@skydesk.jp>\r\nSender: <taro@skydesk.jp>\r\n", 554},
		{"own-resent", "From: <taro@skydesk.jp>\r\nResent-From: <taro@skydesk.jp>\r\n", 0},
		{"foreign-resent-from", "From: <taro@skydesk.jp>\r\nResent-From: <boss@example.co.jp>\r\n", 550},
		{"second-resent-block-foreign", "Resent-From: <taro@skydesk.jp>\r\nResent-From: <boss@example.co.jp>\r\n", 550},
		{"foreign-resent-sender", "Resent-Sender: <boss@example.co.jp>\r\n", 550},
		{"unparsable-sender", "From: <taro@skydesk.jp>\r\nSender: <<<\r\n", 554},
		{"hidden-second-from", "From: <taro@skydesk.jp>\r\nno colon here\r\nFrom: <boss@example.co.jp>\r\n", 554},
		{"encoded-display-name", "From: =?ISO-2022-JP?B?GyRCO1hFRBsoQg==?= <taro@skydesk.jp>\r\n", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.checkFrom(parseMessage([]byte(tc.header + "\r\nbody\r\n")))
			code := 0
			if err != nil {
				var se *smtp.SMTPError
				if !errors.As(err, &se) {
					t.Fatalf("not an SMTP reply: %v", err)
				}
				code = se.Code
			}
			if code != tc.code {
				t.Errorf("code %d (%v), want %d", code, err, tc.code)
			}
		})
	}
}

// FuzzCheckFrom: any header section either passes the originator rule
// with every originator field naming the user, or is refused with a 5xx
// reply; never a panic.
func FuzzCheckFrom(f *testing.F) {
	for _, s := range []string{"From: <taro@skydesk.jp>\r\n\r\nx", "Sender: a@b\r\n\r\n", "From: x\r\nbad\r\nFrom: y\r\n\r\n",
		"Resent-From: <taro@skydesk.jp>, <TARO@skydesk.jp>\r\n\r\n", "From:\r\n \r\n\r\n"} {
		f.Add([]byte(s))
	}
	s := testSession(Submission)
	f.Fuzz(func(t *testing.T, raw []byte) {
		m := parseMessage(raw)
		err := s.checkFrom(m)
		if err == nil {
			if m.malformed {
				t.Fatal("malformed header section accepted")
			}
			for _, field := range originatorFields {
				for _, v := range m.header.Values(field) {
					list, perr := fromParser.ParseList(v)
					if perr != nil {
						t.Fatalf("accepted unparsable %s %q", field, v)
					}
					for _, a := range list {
						if !s.owns(a.Address) {
							t.Fatalf("accepted foreign %s %q", field, a.Address)
						}
					}
				}
			}
			return
		}
		var se *smtp.SMTPError
		if !errors.As(err, &se) || se.Code < 500 {
			t.Fatalf("refusal is not a 5xx SMTP reply: %v", err)
		}
	})
}
