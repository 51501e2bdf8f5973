package smtpd

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/skydesk/skydeskd/store"
)

// capturingStore keeps the octets of every accepted message (read from
// Body or Stream before Accept returns, as a real store does).
type capturingStore struct{ got [][]byte }

func (c *capturingStore) AccountExists(context.Context, string) (bool, error) { return true, nil }
func (c *capturingStore) IsLocalDomain(string) bool                           { return true }
func (c *capturingStore) MailboxUsage(context.Context, string) (store.Usage, error) {
	return store.Usage{}, nil
}

func (c *capturingStore) Accept(_ context.Context, a store.Accepted) ([]int64, int64, error) {
	b := store.NormalizeCRLF(a.Body)
	if a.Stream != nil {
		b = make([]byte, a.Stream.Size())
		if n, err := a.Stream.ReadAt(b, 0); n < len(b) {
			return nil, 0, err
		}
	}
	c.got = append(c.got, b)
	return []int64{1}, 0, nil
}

// FuzzData feeds arbitrary DATA through the streaming path (CRLF
// normalisation, the bounded header section, the spool, the fix-ups) on
// the MX and on submission: the stored message is the fixed-up input,
// its octets after the header section unchanged and its header fields
// kept, or the message is refused with an SMTP reply and nothing stored.
func FuzzData(f *testing.F) {
	for _, s := range []string{
		"", "\r\n", "Subject: x\r\n\r\nbody\r\n", "Subject: x\n\nbare LF\rbare CR\r", "no header line\r\nSubject: y\r\n",
		"From: <taro@skydesk.jp>\r\nSubject: a\r\n continued\r\n\r\n.\r\n..\r\n", "A: b\r\nnot a field\r\nFrom: <x@y>\r\n\r\n",
		"Bcc: <x@y>\r\nFrom: <taro@skydesk.jp>\r\n\r\nb", "X-Spam-Flag: YES\r\n\r\n", "Subject: \r\r\n\n\r\n\r\n",
		"Subject: big\r\n\r\n" + strings.Repeat("0123456789abcdef\r\n", 20000), // over spoolStep: the spool file
		strings.Repeat("X-Long: "+strings.Repeat("v", 1000)+"\r\n", 1100),      // over maxHeaderSection
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, in []byte, submission bool) {
		mode := MX
		if submission {
			mode = Submission
		}
		s := testSession(mode)
		st := &capturingStore{}
		s.b.store = st
		s.log = s.b.opts.Logger
		s.b.opts.MaxMessageSize = 2 << 20
		err := s.Data(bytes.NewReader(in))
		if err != nil {
			var se *smtp.SMTPError
			if !errors.As(err, &se) {
				t.Fatalf("Data refused with %T %v, not an SMTP reply", err, err)
			}
			if len(st.got) != 0 {
				t.Fatalf("refused (%v) but stored %d messages", err, len(st.got))
			}
			return
		}
		if len(st.got) != 1 {
			t.Fatalf("accepted, stored %d messages", len(st.got))
		}
		norm := store.NormalizeCRLF(in)
		m := parseMessage(norm)
		got := st.got[0]
		if !bytes.HasSuffix(got, norm[m.headerEnd:]) {
			t.Fatalf("stored message does not end with the input's body:\n%q\nwant suffix %q", got, norm[m.headerEnd:])
		}
		head := got[:len(got)-len(norm)+m.headerEnd]
		sm := parseMessage(head)
		for k, vs := range m.header {
			if strings.EqualFold(k, "Bcc") && submission || isVerdictField(k) {
				continue
			}
			if n := len(sm.header.Values(k)); n < len(vs) {
				t.Fatalf("stored header section has %d %s fields, the input %d:\n%q", n, k, len(vs), head)
			}
		}
	})
}
