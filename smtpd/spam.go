package smtpd

import (
	"cmp"
	"context"
	"net/textproto"
	"strings"

	"github.com/emersion/go-smtp"

	"github.com/skydesk/skydeskd/rspamd"
)

// Classifier gives the spam verdict for a message arriving on the MX. The
// verdict is stored as the message's spam flag, which POP's "include spam"
// setting reads. A real filter (rspamd, SpamAssassin spamd) can be plugged
// in by implementing it; errors become a temporary failure (451), so mail
// is retried rather than delivered unfiltered.
type Classifier interface {
	Classify(ctx context.Context, header textproto.MIMEHeader) (spam bool, err error)
}

// HeaderClassifier trusts the upstream filter's verdict headers:
// SpamAssassin's "X-Spam-Flag: YES" and "X-Spam-Status: Yes, score=…",
// and rspamd's "X-Spam: Yes". A sender forging them only sends their own
// mail to spam; "No" values are never trusted to override anything.
type HeaderClassifier struct{}

var _ Classifier = HeaderClassifier{}

// Classify implements Classifier.
func (HeaderClassifier) Classify(_ context.Context, h textproto.MIMEHeader) (bool, error) {
	for _, v := range h.Values("X-Spam-Flag") {
		if strings.EqualFold(strings.TrimSpace(v), "yes") {
			return true, nil
		}
	}
	for _, v := range h.Values("X-Spam") {
		if strings.EqualFold(strings.TrimSpace(v), "yes") {
			return true, nil
		}
	}
	for _, v := range h.Values("X-Spam-Status") {
		f := strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
		if len(f) > 0 && strings.EqualFold(f[0], "yes") {
			return true, nil
		}
	}
	return false, nil
}

// Scanner checks a whole message with its envelope on the MX, after DATA
// and before the reply (rspamd.Client implements it). When set it
// replaces the Classifier: a sender's own X-Spam-* fields are removed and
// the scanner's verdict alone sets the spam flag.
type Scanner interface {
	Verdict(ctx context.Context, r rspamd.Request, msg rspamd.Message) rspamd.Verdict
}

var _ Scanner = (*rspamd.Client)(nil)

// Replies to rspamd's refusals when it gives no text of its own (RFC 3463
// X.7.1: delivery not authorized, message refused).
const (
	spamRefused  = "Message refused as spam"
	spamDeferred = "Message deferred by the spam filter, try again later"
)

// scan asks the Scanner about m, whose whole text is msg. It returns m with the verdict header
// fields in place of any X-Spam-* the sender wrote and the spam flag, or
// the reply refusing the message (nothing is stored then).
func (s *session) scan(m message, msg rspamd.Message) (message, bool, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	v := s.b.opts.Scanner.Verdict(ctx, rspamd.Request{IP: s.remote, Helo: s.helo, From: s.from, Rcpt: s.rcpts, QueueID: s.id}, msg)
	if v.Err != nil {
		s.log.Warn("spam check failed", "err", v.Err, "kind", rspamd.Kind(v.Err), "then", v.Disposition.String())
		if v.Disposition == rspamd.Defer {
			return m, false, errTempFail
		}
		// Unchecked: delivered as normal mail, still without the
		// sender's verdict fields.
		return withVerdict(m, ""), false, nil
	}
	r := v.Result
	switch v.Disposition {
	case rspamd.Refuse:
		s.log.Info("message refused by the spam filter", "from", printable(s.from), "action", r.Action, "score", r.Score,
			"symbols", symbolList(r.Symbols))
		s.note("spam_refused")
		return m, false, smtpErr(550, smtp.EnhancedCode{5, 7, 1}, cmp.Or(r.SMTPMessage, spamRefused))
	case rspamd.Defer:
		s.log.Info("message deferred by the spam filter", "from", printable(s.from), "action", r.Action, "score", r.Score)
		s.note("spam_deferred")
		return m, false, smtpErr(451, smtp.EnhancedCode{4, 7, 1}, cmp.Or(r.SMTPMessage, spamDeferred))
	}
	spam := v.Disposition == rspamd.DeliverSpam
	s.log.Debug("spam check", "action", r.Action, "score", r.Score, "spam", spam)
	return withVerdict(m, verdictFields(r, spam)), spam, nil
}
