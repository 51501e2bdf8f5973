package web

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"mime"
	"time"
)

// ForwardConfirmPath is the settings host's path of a forwarding
// confirmation link; the token follows as the query parameter t.
const ForwardConfirmPath = "/forward/confirm"

// ForwardMail is the message that asks a forwarding target to confirm.
type ForwardMail struct {
	Account, Target string
	Link            string // the one-time link (web_url + ForwardConfirmPath + ?t=)
	Expires         time.Time
	Date            time.Time
	MessageID       string // without angle brackets
}

// ForwardConfirmation builds the confirmation message in Japanese, then
// English (the target's language is unknown): header fields RFC 2047
// encoded, the body UTF-8 in base64 (RFC 2045), CRLF line endings. It
// names the account, the target and when the link stops working, and
// says that nothing happens if it is ignored.
func (r *Renderer) ForwardConfirmation(m ForwardMail) ([]byte, error) {
	var subj, body []string
	for _, l := range Langs {
		s, err := r.T(l, "fwd_mail_subject")
		if err != nil {
			return nil, err
		}
		b, err := r.T(l, "fwd_mail_body", m.Account, m.Target, m.Link, FormatTime(l, m.Expires))
		if err != nil {
			return nil, err
		}
		subj, body = append(subj, s), append(body, b)
	}
	var h bytes.Buffer
	fmt.Fprintf(&h, "From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%s>\r\n",
		m.Account, m.Target, mime.BEncoding.Encode("utf-8", subj[0]+" / "+subj[1]),
		m.Date.Format("Mon, 02 Jan 2006 15:04:05 -0700"), m.MessageID)
	h.WriteString("Auto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	enc := base64.StdEncoding.EncodeToString(bytes.ReplaceAll([]byte(body[0]+"\n\n----\n\n"+body[1]+"\n"), []byte("\n"), []byte("\r\n")))
	for len(enc) > 76 {
		h.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	h.WriteString(enc + "\r\n")
	return h.Bytes(), nil
}
