package smtpd

import (
	"context"
	"net/textproto"
	"strings"
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
