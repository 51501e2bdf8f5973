package smtpd

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"strings"
	"time"
)

// srsMaxAge is how long a rewritten sender takes bounces (libsrs2's
// default): a bounce arrives within the sender's retry period.
const srsMaxAge = 21

// srsB32 is lower-case base32: the MX lower-cases recipients, so every
// character of an SRS address must survive that.
var srsB32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// SRS rewrites the envelope sender of forwarded copies (the Sender
// Rewriting Scheme's SRS0 form, as libsrs2 and Postfix's postsrsd write
// it): SRS0=HHHHHHHH=TT=domain=local@domain, where TT is the day (base32,
// modulo 1024) and HHHHHHHH an HMAC-SHA256 of TT, domain and local under
// a key of our own. The target's SPF check then sees one of our domains,
// and only we can make an address whose bounces we accept.
//
// The address carried is the forwarding account, not the original
// sender: bounces of forwarded mail are delivered to that account
// (ReverseAccount), and the original sender's address is not disclosed
// to the target's bounce path.
type SRS struct {
	key []byte
	now func() time.Time
}

// NewSRS returns a rewriter with key (at least 16 octets); now is the
// clock (nil: time.Now).
func NewSRS(key []byte, now func() time.Time) (*SRS, error) {
	if len(key) < 16 {
		return nil, errors.New("srs key shorter than 16 octets")
	}
	if now == nil {
		now = time.Now
	}
	return &SRS{key: key, now: now}, nil
}

func (s *SRS) day(t time.Time) int { return int(t.Unix()/86400) % 1024 }

func (s *SRS) hash(tt, domain, local string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(tt + "=" + domain + "=" + local))
	return srsB32.EncodeToString(m.Sum(nil)[:5])
}

// Sender is the rewritten envelope sender of a copy forwarded by account
// (a normalised local@domain), in the account's own domain.
func (s *SRS) Sender(account string) string {
	local, domain, _ := strings.Cut(account, "@")
	d := s.day(s.now())
	tt := srsB32.EncodeToString([]byte{byte(d >> 2), byte(d << 6)})[:2]
	return "srs0=" + s.hash(tt, domain, local) + "=" + tt + "=" + domain + "=" + local + "@" + domain
}

// IsSRS reports whether a (lower-cased) local part is in the SRS0 form.
func IsSRS(local string) bool { return strings.HasPrefix(local, "srs0=") }

// ReverseAccount returns the forwarding account an SRS0 recipient
// (normalised local part and domain) stands for; false when the hash is
// wrong, the address older than 21 days or made for another domain.
func (s *SRS) ReverseAccount(local, domain string) (string, bool) {
	parts := strings.SplitN(strings.ToLower(local), "=", 5)
	if len(parts) != 5 || parts[0] != "srs0" || len(parts[2]) != 2 || parts[3] != domain {
		return "", false
	}
	want := s.hash(parts[2], parts[3], parts[4])
	if !hmac.Equal([]byte(want), []byte(parts[1])) {
		return "", false
	}
	b, err := srsB32.DecodeString(parts[2] + "aaaaaa")
	if err != nil {
		return "", false
	}
	then := int(b[0])<<2 | int(b[1])>>6
	if (s.day(s.now())-then+1024)%1024 > srsMaxAge {
		return "", false
	}
	return parts[4] + "@" + domain, true
}
