package smtpd

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/skydesk/skydeskd/internal/cache"
	"github.com/skydesk/skydeskd/internal/connlimit"
	"github.com/skydesk/skydeskd/store"
)

// Replies of the resource guards (RFC 3463: X.2.2 mailbox full, X.7.0
// policy; 452 at RCPT so the client keeps the recipient for later,
// RFC 5321 §4.5.3.1.10).
var (
	errMailboxFull   = smtpErr(452, smtp.EnhancedCode{4, 2, 2}, "Mailbox full, try again later")
	errOverQuota     = smtpErr(552, smtp.EnhancedCode{5, 2, 2}, "Mailbox full: this message would exceed the recipient's quota")
	errRateLimited   = smtpErr(451, smtp.EnhancedCode{4, 7, 0}, "Too much mail from your network, please try again later")
	errRateBytesData = smtpErr(451, smtp.EnhancedCode{4, 7, 0}, "Too many octets of mail from your network, please try again later")
)

// guard is the state every listener of a Server shares: the budget of
// mail in flight and the MX rates per client network.
type guard struct {
	budget *inflight
	rates  *rates
}

func newGuard(o *Options) *guard {
	return &guard{
		budget: newInflight(o.MaxBytesInFlight, o.InFlightWait),
		rates:  newRates(o.MXMessagesPerMinute, o.MXBytesPerMinute, o.IPv4Prefix, o.IPv6Prefix, o.Now),
	}
}

// rates are token buckets per client network (connlimit.Network): a
// message and its octets at a steady rate per minute, a minute's worth at
// once. Idle networks fall out of a bounded cache (a full bucket is what a
// new one would be).
type rates struct {
	msgs, octets float64 // per minute; 0 is no limit
	v4, v6       int
	now          func() time.Time
	mu           sync.Mutex
	nets         *cache.Cache[netip.Prefix, *bucket]
}

type bucket struct {
	msgs, octets float64
	at           time.Time
}

func newRates(msgs int, octets int64, v4, v6 int, now func() time.Time) *rates {
	return &rates{msgs: float64(msgs), octets: float64(octets), v4: v4, v6: v6, now: now,
		nets: cache.New[netip.Prefix, *bucket](100_000, now)}
}

// bucketOf returns the refilled bucket of addr's network; r.mu is held.
func (r *rates) bucketOf(addr netip.Addr) *bucket {
	now := r.now()
	k := connlimit.Network(addr, r.v4, r.v6)
	b, ok := r.nets.Get(k)
	if !ok {
		b = &bucket{msgs: r.msgs, octets: r.octets, at: now}
	}
	r.nets.Put(k, b, time.Minute)
	if d := now.Sub(b.at).Minutes(); d > 0 {
		b.msgs = min(r.msgs, b.msgs+d*r.msgs)
		b.octets = min(r.octets, b.octets+d*r.octets)
		b.at = now
	}
	return b
}

// mail takes one message of addr's network at MAIL: refused while its
// message bucket is empty or its octets are spent.
func (r *rates) mail(addr netip.Addr) error {
	if r.msgs <= 0 && r.octets <= 0 {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.bucketOf(addr)
	if r.msgs > 0 && b.msgs < 1 || r.octets > 0 && b.octets <= 0 {
		return errRateLimited
	}
	if r.msgs > 0 {
		b.msgs--
	}
	return nil
}

// data charges a received message of n octets at the end of DATA:
// refused when the network's octets do not cover it. The octets are
// charged either way (the network sent them), so a sender of large
// messages is refused at MAIL until the bucket refills.
func (r *rates) data(addr netip.Addr, n int64) error {
	if r.octets <= 0 {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.bucketOf(addr)
	ok := b.octets >= float64(n)
	b.octets = max(b.octets-float64(n), -r.octets)
	if !ok {
		return errRateBytesData
	}
	return nil
}

// rcptQuota refuses a local mailbox that is already full (452 4.2.2), so
// the client keeps that recipient for later and the others get the mail.
func (s *session) rcptQuota(ctx context.Context, box string) error {
	u, err := s.b.store.MailboxUsage(ctx, box)
	if err != nil {
		return s.storeErr("reading quota", err)
	}
	if u.Full() {
		s.log.Info("mailbox full", "rcpt", box, "used", u.Used, "quota", u.Quota)
		s.note("mailbox_full")
		return errMailboxFull
	}
	return nil
}

// acceptErr is the reply to a failed store.Accept: over a quota, 552
// 5.2.2 (the message would not fit however often it is retried).
func (s *session) acceptErr(err error) error {
	if errors.Is(err, store.ErrOverQuota) {
		s.log.Info("message over quota", "err", err)
		s.note("over_quota")
		return errOverQuota
	}
	return s.fail(s.storeErr("storing message", err))
}
