package smtpd

import (
	"bytes"
	"io"
	"mime"
	"net/mail"
	"net/textproto"
	"strings"

	"github.com/emersion/go-smtp"

	"github.com/skydesk/skydeskd/store"
)

// message is a received message split at the end of its header section.
type message struct {
	raw []byte // CRLF line endings
	// headerEnd is where the header section ends: the offset of the blank
	// line, of the first line that is not a header field, or len(raw).
	headerEnd int
	// headerless: the first line is not a header field (everything is
	// body), so fix-ups need their own blank line.
	headerless bool
	// malformed: a line that is neither a header field, a continuation
	// nor the blank line ended a header section that had begun. Anything
	// after it (a second From:, say) is body to us but may be a header
	// to the recipient's client.
	malformed bool
	header    textproto.MIMEHeader
}

// parseMessage splits raw leniently: a malformed line ends the header
// section instead of failing the message, since mail from the Internet is
// often sloppy and must still be delivered (RFC 5321 §6.4 asks MTAs not to
// "fix" bodies). Header values are unfolded.
func parseMessage(raw []byte) message {
	raw = store.NormalizeCRLF(raw)
	m := message{raw: raw, header: textproto.MIMEHeader{}}
	var name string
	var val []byte
	flush := func() {
		if name != "" {
			m.header.Add(name, strings.TrimSpace(string(val)))
		}
		name, val = "", nil
	}
	pos := 0
	for pos < len(raw) {
		end := bytes.Index(raw[pos:], []byte("\r\n"))
		next := len(raw)
		line := raw[pos:]
		if end >= 0 {
			line, next = raw[pos:pos+end], pos+end+2
		}
		switch {
		case len(line) == 0:
			flush()
			m.headerEnd = pos
			return m
		case (line[0] == ' ' || line[0] == '\t') && name != "":
			val = append(val, ' ')
			val = append(val, bytes.TrimSpace(line)...)
		default:
			i := bytes.IndexByte(line, ':')
			if i <= 0 || !fieldName(line[:i]) {
				flush()
				m.headerEnd = pos
				m.headerless = pos == 0
				m.malformed = pos > 0
				return m
			}
			flush()
			name = textproto.CanonicalMIMEHeaderKey(string(line[:i]))
			val = append([]byte(nil), line[i+1:]...)
		}
		pos = next
	}
	flush()
	m.headerEnd = len(raw)
	return m
}

// fieldName: RFC 5322 §3.6.8 ftext is printable US-ASCII except ":".
func fieldName(b []byte) bool {
	for _, c := range b {
		if c < 33 || c > 126 {
			return false
		}
	}
	return true
}

// utf8Passthrough lets the From check parse any encoded-word display name
// (ISO-2022-JP is common in Japan and unknown to net/mail): only the
// address matters.
var fromParser = mail.AddressParser{WordDecoder: &mime.WordDecoder{
	CharsetReader: func(_ string, r io.Reader) (io.Reader, error) { return r, nil },
}}

// originatorFields are the fields that name who sent a message (RFC 5322
// §3.6.2, §3.6.6). Each must name the authenticated address on
// submission, or a client could show the recipient another sender.
var originatorFields = []string{"From", "Sender", "Resent-From", "Resent-Sender"}

// errMalformedHeader: RFC 5322 §2.2 allows only header fields before the
// blank line. Refused on submission, where our client can fix it; MX mail
// stays lenient (parseMessage).
var errMalformedHeader = smtpErr(554, smtp.EnhancedCode{5, 6, 0},
	"Malformed header section: a line that is not a header field comes before the blank line")

// checkFrom enforces that every originator field names the authenticated
// address (RFC 6409 §6.1 allows an MSA to enforce submission rights), and
// refuses a header section the recipient could read differently from us.
func (s *session) checkFrom(m message) error {
	if m.malformed {
		return errMalformedHeader
	}
	if len(m.header.Values("From")) > 1 {
		return smtpErr(554, smtp.EnhancedCode{5, 6, 0}, "Message has more than one From header")
	}
	// RFC 5322 §3.6: at most one Sender; From and Sender at most once.
	if len(m.header.Values("Sender")) > 1 {
		return smtpErr(554, smtp.EnhancedCode{5, 6, 0}, "Message has more than one Sender header")
	}
	for _, field := range originatorFields {
		for _, v := range m.header.Values(field) {
			list, err := fromParser.ParseList(v)
			if err != nil || len(list) == 0 {
				return smtpErr(554, smtp.EnhancedCode{5, 6, 0}, "Cannot parse the "+field+" header")
			}
			for _, a := range list {
				if !s.owns(a.Address) {
					return smtpErr(550, smtp.EnhancedCode{5, 7, 1},
						field+" header <"+printable(a.Address)+"> is not yours: send as <"+s.user+">")
				}
			}
		}
	}
	return nil // a missing From is added by fixUp
}

// fixUp prepends the trace fields and adds the fields RFC 6409 §8.2/§8.3
// lets an MSA add when missing (Message-ID, Date; From on submission).
func (s *session) fixUp(m message) []byte {
	now := s.b.opts.Now()
	var h bytes.Buffer
	if s.b.mode == MX {
		// RFC 5321 §4.4: the final delivery adds Return-Path.
		h.WriteString("Return-Path: <" + printable(s.from) + ">\r\n")
	}
	h.WriteString(s.received(now))
	out := make([]byte, 0, len(m.raw)+h.Len()+256)
	out = append(out, h.Bytes()...)
	if s.b.mode == Submission && len(m.header.Values("Bcc")) > 0 {
		// RFC 5322 §3.6.3: Bcc recipients must not be revealed to the
		// others; clients usually strip the field, an MSA must not rely on
		// it (Postfix's cleanup does the same).
		out = appendWithout(out, m.raw[:m.headerEnd], "bcc")
	} else {
		out = append(out, m.raw[:m.headerEnd]...)
	}
	if s.b.mode == Submission && len(m.header.Values("From")) == 0 {
		out = append(out, "From: <"+s.user+">\r\n"...)
	}
	if len(m.header.Values("Date")) == 0 {
		out = append(out, "Date: "+now.Format(dateLayout)+"\r\n"...)
	}
	if len(m.header.Values("Message-Id")) == 0 {
		out = append(out, "Message-ID: <"+newID()+"@"+s.b.opts.Hostname+">\r\n"...)
	}
	if m.headerless {
		out = append(out, "\r\n"...)
	}
	return append(out, m.raw[m.headerEnd:]...)
}

// appendWithout appends the header section hdr without the fields named
// name (lower case), continuation lines included.
func appendWithout(out, hdr []byte, name string) []byte {
	return appendWithoutFunc(out, hdr, func(f string) bool { return strings.EqualFold(f, name) })
}

// dateLayout is RFC 5322 §3.3 date-time.
const dateLayout = "Mon, 02 Jan 2006 15:04:05 -0700"

// received builds the RFC 5321 §4.4 Received field with the RFC 3848
// "with" keyword (ESMTP, +S for TLS, +A for AUTH; UTF8 prefix for
// SMTPUTF8, RFC 6531 §3.7.3).
func (s *session) received(now interface{ Format(string) string }) string {
	proto := "ESMTP"
	if s.tls {
		proto += "S"
	}
	if s.user != "" {
		proto += "A"
	}
	if s.utf8 {
		proto = "UTF8" + strings.TrimPrefix(proto, "E")
	}
	helo := heloName(s.helo)
	var b strings.Builder
	b.WriteString("Received: from " + helo + " ([" + remoteIP(s.remote) + "])\r\n")
	b.WriteString("\tby " + s.b.opts.Hostname + " (skydeskd) with " + proto + " id " + s.id)
	// The for-clause only with one recipient: listing them all would
	// reveal Bcc recipients to each other. It names the forward-path the
	// client gave (RFC 5321 §4.4), not the mailbox it was delivered to:
	// postmaster@ a hosted domain stays that in the postmaster's copy.
	if len(s.rcpts) == 1 {
		b.WriteString("\r\n\tfor <" + s.rcpts[0] + ">")
	}
	b.WriteString("; " + now.Format(dateLayout) + "\r\n")
	return b.String()
}

// heloName keeps only characters legal in a domain or address literal, so
// a client cannot inject header lines through EHLO.
func heloName(h string) string {
	var b strings.Builder
	for _, c := range h {
		if b.Len() >= 255 {
			break
		}
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune(".-_:[]", c) {
			b.WriteRune(c)
		}
	}
	if b.Len() == 0 {
		return "unknown"
	}
	return b.String()
}

// printable makes client-supplied text safe for replies, headers and logs:
// no control characters, at most 256 octets.
func printable(v string) string {
	var b strings.Builder
	for _, c := range v {
		if b.Len() >= 256 {
			break
		}
		if c < 0x20 || c == 0x7f {
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}
