package smtpd

import (
	"net/netip"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/skydesk/skydeskd/internal/cache"
	"github.com/skydesk/skydeskd/internal/connlimit"
)

// errTooManyRefused ends an MX session that has been refused too many
// recipients (RFC 5321 §3.8: 421 and close).
var errTooManyRefused = smtpErr(421, smtp.EnhancedCode{4, 7, 0}, "Too many rejected recipients, closing connection")

// rcptLimiter rate-limits the recipients the MX refuses, so that the
// answers cannot be used to list the mailboxes: per session at most
// Options.MaxRefusedRecipients (Postfix's smtpd_hard_error_limit), and
// per client network a leaky bucket of Options.RefusedRecipientsPerNetwork
// that drains as many per hour, across connections. Once over either, every
// further RCPT of the session (to any address, so that a 250 reveals
// nothing either) gets 421 4.7.0 and the connection is closed.
type rcptLimiter struct {
	perSession int
	perNetwork float64
	perSecond  float64
	v4, v6     int
	now        func() time.Time

	mu   sync.Mutex // serialises each read-modify-write of a bucket
	nets *cache.Cache[netip.Prefix, refusals]
}

type refusals struct {
	level float64
	at    time.Time
}

const maxLimitedNetworks = 100_000

func newRcptLimiter(o Options) *rcptLimiter {
	return &rcptLimiter{perSession: o.MaxRefusedRecipients, perNetwork: float64(o.RefusedRecipientsPerNetwork),
		perSecond: float64(o.RefusedRecipientsPerNetwork) / time.Hour.Seconds(),
		v4:        o.IPv4Prefix, v6: o.IPv6Prefix, now: o.Now,
		nets: cache.New[netip.Prefix, refusals](maxLimitedNetworks, o.Now)}
}

func (l *rcptLimiter) drained(r refusals, now time.Time) refusals {
	r.level = max(0, r.level-now.Sub(r.at).Seconds()*l.perSecond)
	r.at = now
	return r
}

// over reports whether a session that has had refused recipients refused
// so far, from remote, is over a limit.
func (l *rcptLimiter) over(remote netip.Addr, refused int) bool {
	if refused >= l.perSession {
		return true
	}
	r, ok := l.nets.Get(connlimit.Network(remote, l.v4, l.v6))
	// Over when one more refusal would not fit in the bucket.
	return ok && l.drained(r, l.now()).level+1 > l.perNetwork
}

// refuse counts one refused recipient of remote's network.
func (l *rcptLimiter) refuse(remote netip.Addr) {
	key := connlimit.Network(remote, l.v4, l.v6)
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	r, _ := l.nets.Get(key)
	r = l.drained(r, now)
	r.level = min(r.level+1, l.perNetwork)
	l.nets.Put(key, r, time.Duration(r.level/l.perSecond*float64(time.Second))+time.Second)
}

// rcptLimit runs before an MX RCPT is looked at: over a limit, it writes
// the 421 itself and closes the connection (go-smtp would answer a 421
// from Rcpt and keep reading), and returns the error for go-smtp's reply,
// which then goes nowhere.
func (s *session) rcptLimit() error {
	l := s.b.rcpt
	if l == nil || !l.over(s.remote, s.refused) {
		return nil
	}
	s.log.Warn("too many refused recipients: closing", "refused", s.refused)
	s.note("rcpt_limited")
	nc := s.c.Conn()
	_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = nc.Write([]byte("421 4.7.0 " + errTooManyRefused.Message + "\r\n"))
	_ = s.c.Close()
	return errTooManyRefused
}

// rcptRefused counts a refused MX recipient; it returns err.
func (s *session) rcptRefused(err error) error {
	if s.b.rcpt != nil {
		s.refused++
		s.b.rcpt.refuse(s.remote)
	}
	return err
}
