package smtpd

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/skydesk/skydeskd/store"
)

// diagnostic renders a failure as an RFC 3464 Diagnostic-Code value.
func diagnostic(err error) string {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return fmt.Sprintf("%d %d.%d.%d %s", se.Code, se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2], printable(se.Message))
	}
	return "451 4.4.1 smarthost unreachable"
}

// status is the RFC 3463 code of a failure; 4.4.7 ("delivery time
// expired") when temporary failures outlasted the retry period.
func status(err error) string {
	var se *smtp.SMTPError
	if errors.As(err, &se) && se.Code >= 500 && se.EnhancedCode[0] == 5 {
		return fmt.Sprintf("%d.%d.%d", se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2])
	}
	if errors.As(err, &se) && se.Code >= 500 {
		return "5.0.0"
	}
	return "4.4.7"
}

// buildDSN returns a delivery status notification (RFC 3464, as a
// multipart/report of RFC 6522) for the failed recipients of m, with the
// original header section attached (text/rfc822-headers).
func buildDSN(hostname string, m store.QueuedMessage, failed []rcptResult, now time.Time) []byte {
	boundary := "dsn-" + newID()
	date := now.Format(dateLayout)
	var b bytes.Buffer
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\r\n", a...) }
	w("From: Mail Delivery System <MAILER-DAEMON@%s>", hostname)
	w("To: <%s>", m.From)
	w("Subject: Undelivered Mail Returned to Sender")
	w("Date: %s", date)
	w("Message-ID: <%s@%s>", newID(), hostname)
	w("Auto-Submitted: auto-replied") // RFC 3834: no auto-replies to this
	w("MIME-Version: 1.0")
	w("Content-Type: multipart/report; report-type=delivery-status; boundary=\"%s\"", boundary)
	w("")
	w("--%s", boundary)
	w("Content-Type: text/plain; charset=utf-8")
	w("")
	w("Your message could not be delivered to the following recipient(s):")
	w("")
	for _, f := range failed {
		w("  <%s>: %s", f.rcpt, diagnostic(f.err))
	}
	w("")
	w("Sent %s, last attempt %s.", m.Created.Format(dateLayout), date)
	w("")
	w("--%s", boundary)
	w("Content-Type: message/delivery-status")
	w("")
	w("Reporting-MTA: dns; %s", hostname)
	w("Arrival-Date: %s", m.Created.Format(dateLayout))
	for _, f := range failed {
		w("")
		w("Final-Recipient: rfc822; %s", f.rcpt)
		w("Action: failed")
		w("Status: %s", status(f.err))
		w("Diagnostic-Code: smtp; %s", diagnostic(f.err))
		w("Last-Attempt-Date: %s", date)
	}
	w("")
	w("--%s", boundary)
	w("Content-Type: text/rfc822-headers")
	w("")
	orig := parseMessage(m.Body)
	b.Write(bytes.TrimRight(orig.raw[:orig.headerEnd], "\r\n"))
	w("")
	w("")
	w("--%s--", boundary)
	return b.Bytes()
}
