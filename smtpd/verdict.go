package smtpd

import (
	"bytes"
	"net/textproto"
	"strconv"
	"strings"

	"github.com/skydesk/skydeskd/rspamd"
)

// isVerdictField reports whether a header field name is one a spam filter
// writes: X-Spam (rspamd's own) and X-Spam-* (SpamAssassin's X-Spam-Flag,
// X-Spam-Status, X-Spam-Score, X-Spam-Level…). Arriving from outside they
// are the sender's claim, not a verdict.
func isVerdictField(name string) bool {
	return strings.EqualFold(name, "X-Spam") ||
		len(name) > len("X-Spam-") && strings.EqualFold(name[:len("X-Spam-")], "X-Spam-")
}

// withVerdict returns m without the sender's verdict fields and with
// fields (complete header lines, "" for none) at the top of its header
// section.
func withVerdict(m message, fields string) message {
	out := make([]byte, 0, len(fields)+len(m.raw)+2)
	out = append(out, fields...)
	out = appendWithoutFunc(out, m.raw[:m.headerEnd], isVerdictField)
	n := message{headerEnd: len(out), headerless: m.headerless && fields == "", header: textproto.MIMEHeader{}}
	if m.headerless && fields != "" {
		out = append(out, "\r\n"...) // the body needs its blank line now
	}
	n.raw = append(out, m.raw[m.headerEnd:]...)
	for k, v := range m.header {
		if !isVerdictField(k) {
			n.header[k] = v
		}
	}
	return n
}

// verdictFields are the header fields recording the verdict, in
// SpamAssassin's widely read form (Thunderbird and most clients filter on
// X-Spam-Flag; X-Spam-Status starts with Yes or No) with rspamd's score,
// its reject threshold, its action and the symbols that matched.
func verdictFields(r rspamd.Result, spam bool) string {
	flag, status := "NO", "No"
	if spam {
		flag, status = "YES", "Yes"
	}
	var b strings.Builder
	b.WriteString("X-Spam-Flag: " + flag + "\r\n")
	line := "X-Spam-Status: " + status + ", score=" + score(r.Score) + " required=" + score(r.RequiredScore) +
		` action="` + string(r.Action) + `"`
	b.WriteString(line)
	lineLen := len(line)
	for i, sym := range r.Symbols {
		item := sym.Name + "(" + score(sym.Score) + ")"
		if i == 0 {
			item = "tests=" + item
		} else {
			b.WriteByte(',')
			lineLen++
		}
		// RFC 5322 §2.1.1: fold before 78 characters.
		if lineLen+1+len(item) > 78 {
			b.WriteString("\r\n\t")
			lineLen = 1
		} else if i == 0 {
			b.WriteByte(' ')
			lineLen++
		}
		b.WriteString(item)
		lineLen += len(item)
	}
	b.WriteString("\r\n")
	return b.String()
}

func score(f float64) string { return strconv.FormatFloat(f, 'f', 2, 64) }

// symbolList is the symbols for a log line.
func symbolList(syms []rspamd.Symbol) string {
	names := make([]string, len(syms))
	for i, s := range syms {
		names[i] = s.Name
	}
	return strings.Join(names, ",")
}

// appendWithoutFunc appends the header section hdr without the fields
// whose name drop reports, continuation lines included.
func appendWithoutFunc(out, hdr []byte, drop func(name string) bool) []byte {
	skipping := false
	for len(hdr) > 0 {
		line := hdr
		if i := bytes.Index(hdr, []byte("\r\n")); i >= 0 {
			line = hdr[:i+2]
		}
		hdr = hdr[len(line):]
		if line[0] != ' ' && line[0] != '\t' {
			field, _, _ := bytes.Cut(line, []byte(":"))
			skipping = drop(string(bytes.TrimRight(field, " \t")))
		}
		if !skipping {
			out = append(out, line...)
		}
	}
	return out
}
