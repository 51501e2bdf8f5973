package smtpd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/skydesk/skydeskd/store"
)

// Queue is the durable outbound queue (store/queue.go), shared by the
// relays of every node on a shared database: each message is claimed for
// a lease before it is sent and settled by the claim's holder only
// (store/queue_claim.go).
type Queue interface {
	ClaimQueue(ctx context.Context, now time.Time, holder string, lease time.Duration, limit int) ([]store.QueuedMessage, error)
	RenewQueueClaim(ctx context.Context, id int64, holder string, lease time.Duration) (bool, error)
	QueueSettle(ctx context.Context, id int64, holder string, r store.QueueResult) error
	NextQueueAttempt(ctx context.Context) (time.Time, bool, error)
}

var _ Queue = (*store.Store)(nil)

// RelayOptions configure the smarthost client.
type RelayOptions struct {
	Host string
	Port int
	// TLS is "implicit" (RFC 8314), "starttls" (RFC 3207, required, never
	// downgraded) or "none".
	TLS                string
	Username, Password string
	// RetryPeriod: recipients still failing this long after the message
	// was accepted are bounced to the sender (default 5 days, RFC 5321
	// §4.5.4.1 suggests at least 4-5 days).
	RetryPeriod time.Duration
	// TLSConfig verifies the smarthost (default: system roots, ServerName
	// = Host).
	TLSConfig *tls.Config
	// Hostname is our EHLO name and the DSN's Reporting-MTA.
	Hostname string
	// Backoff is the wait after the n-th failed attempt (default 1m·2ⁿ⁻¹,
	// at most 1h).
	Backoff     func(n int) time.Duration
	DialTimeout time.Duration
	// SRS, if set, sends the DSN of a forwarded copy (its sender is an
	// SRS0 address, forward_srs.go) to the forwarding account.
	SRS *SRS
	// Worker names this relay as a queue claim's holder; unique among
	// every relay on the queue (default: host name, process id and a
	// random part).
	Worker string
	// ClaimLease is how long a claimed message stays this relay's
	// without a renewal (default 5 minutes): the relay renews it every
	// third of it while sending, and a relay that died holds its message
	// back from the others this long at most.
	ClaimLease time.Duration
	Logger     *slog.Logger
	Now        func() time.Time
}

// Relay sends queued mail through the smarthost, with retries, backoff and
// DSN bounces after the retry period. Any number of Relays, in one process
// or on several nodes, can work one queue: each message is claimed by one
// of them at a time. Delivery is at least once: a relay that dies after
// the smarthost accepted a message and before recording it leaves the
// message to be sent again by another once its claim lease ends, so the
// smarthost may see a duplicate then (never a loss).
type Relay struct {
	q    Queue
	o    RelayOptions
	wake chan struct{}
}

// NewRelay returns a relay for q.
func NewRelay(q Queue, o RelayOptions) *Relay {
	if o.RetryPeriod <= 0 {
		o.RetryPeriod = 120 * time.Hour
	}
	if o.Backoff == nil {
		o.Backoff = func(n int) time.Duration {
			return min(time.Minute<<min(max(n-1, 0), 10), time.Hour)
		}
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.TLSConfig == nil {
		o.TLSConfig = &tls.Config{ServerName: o.Host, MinVersion: tls.VersionTLS12}
	}
	if o.Hostname == "" {
		o.Hostname = "localhost"
	}
	if o.Worker == "" {
		o.Worker = defaultWorker()
	}
	if o.ClaimLease < time.Millisecond {
		o.ClaimLease = DefaultClaimLease
	}
	return &Relay{q: q, o: o, wake: make(chan struct{}, 1)}
}

// Wake makes Run look at the queue now (a message was just queued).
func (r *Relay) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run processes the queue until ctx ends.
func (r *Relay) Run(ctx context.Context) {
	r.o.Logger.Info("relaying through the smarthost", "addr", net.JoinHostPort(r.o.Host, strconv.Itoa(r.o.Port)), "tls", r.o.TLS)
	for {
		if err := r.RunOnce(ctx); err != nil && ctx.Err() == nil {
			r.o.Logger.Error("relay", "err", err)
		}
		wait := time.Minute
		if next, ok, err := r.q.NextQueueAttempt(ctx); err == nil && ok {
			wait = min(max(next.Sub(r.o.Now()), 0), wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-r.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// RunOnce tries every due message once that no other relay has claimed,
// claiming one at a time (a message waiting behind a long delivery here
// stays free for another node's relay).
func (r *Relay) RunOnce(ctx context.Context) error {
	for ctx.Err() == nil {
		due, err := r.q.ClaimQueue(ctx, r.o.Now(), r.o.Worker, r.o.ClaimLease, 1)
		if err != nil || len(due) == 0 {
			return err
		}
		for _, m := range due {
			if err := r.attempt(ctx, m); err != nil {
				return err
			}
		}
	}
	return nil
}

// rcptResult is one recipient's outcome.
type rcptResult struct {
	rcpt string
	err  error // nil: delivered
}

func permanent(err error) bool {
	var se *smtp.SMTPError
	return errors.As(err, &se) && se.Code >= 500
}

// attempt sends m once, holding its claim, and settles every recipient's
// outcome. A claim lost meanwhile (this relay's lease ended and another
// took the message over) aborts the send and records nothing.
func (r *Relay) attempt(ctx context.Context, m store.QueuedMessage) error {
	log := r.o.Logger.With("queue_id", m.ID)
	sendCtx, release := r.holdClaim(ctx, m.ID, log)
	results := r.send(sendCtx, m)
	release()
	if errors.Is(context.Cause(sendCtx), store.ErrClaimLost) {
		log.Warn("relay claim lost mid-delivery; another worker has the message")
		return nil
	}
	res, expired := r.outcome(m, results)
	// Recorded even while shutting down: what the smarthost accepted must
	// not be sent again.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	if err := r.q.QueueSettle(sctx, m.ID, r.o.Worker, res); errors.Is(err, store.ErrClaimLost) {
		log.Warn("relay claim lost before the result was recorded; another worker has the message")
		return nil
	} else if err != nil {
		return err
	}
	if len(res.Delivered) > 0 {
		log.Info("relayed", "rcpts", len(res.Delivered))
	}
	if len(res.Deferred) > 0 {
		log.Warn("relay deferred", "rcpts", len(res.Deferred), "reason", res.Reason, "next", res.Next)
	}
	if len(res.Bounced) > 0 {
		log.Warn("relay failed, bounced to sender", "rcpts", len(res.Bounced), "expired", expired)
	}
	return nil
}

// outcome sorts an attempt's results into what QueueSettle records.
func (r *Relay) outcome(m store.QueuedMessage, results []rcptResult) (res store.QueueResult, expired bool) {
	var failedRes []rcptResult
	now := r.o.Now()
	expired = now.Sub(m.Created) >= r.o.RetryPeriod
	for _, rr := range results {
		switch {
		case rr.err == nil:
			res.Delivered = append(res.Delivered, rr.rcpt)
		case permanent(rr.err) || expired:
			res.Bounced = append(res.Bounced, rr.rcpt)
			failedRes = append(failedRes, rr)
		default:
			res.Deferred = append(res.Deferred, rr.rcpt)
			res.Reason = diagnostic(rr.err)
		}
	}
	if len(res.Deferred) > 0 {
		attempts := 0
		for _, rc := range m.Rcpts {
			attempts = max(attempts, rc.Attempts)
		}
		res.Next = now.Add(r.o.Backoff(attempts + 1))
	}
	if len(res.Bounced) > 0 {
		res.DSN = buildDSN(r.o.Hostname, m, failedRes, now)
		res.BounceTo = r.bounceTo(m.From)
	}
	return res, expired
}

// bounceTo is where a failed message's DSN goes: its sender, or for a
// forwarded copy the account that forwarded it ("" drops the DSN: a null
// sender, or an SRS address that does not verify).
func (r *Relay) bounceTo(from string) string {
	local, domain, _ := strings.Cut(strings.ToLower(from), "@")
	if r.o.SRS == nil || !IsSRS(local) {
		return from
	}
	acct, _ := r.o.SRS.ReverseAccount(local, domain)
	return acct
}

// errSmarthost stands for any connection-level failure: its details are
// logged, the DSN only says the smarthost could not be reached.
var errSmarthost = smtpErr(451, smtp.EnhancedCode{4, 4, 1}, "smarthost unreachable")

// send runs one SMTP transaction with the smarthost and returns a result
// per recipient.
func (r *Relay) send(ctx context.Context, m store.QueuedMessage) []rcptResult {
	all := func(err error) []rcptResult {
		out := make([]rcptResult, len(m.Rcpts))
		for i, rc := range m.Rcpts {
			out[i] = rcptResult{rc.Address, err}
		}
		return out
	}
	c, err := r.dial(ctx)
	if err != nil {
		r.o.Logger.Warn("smarthost", "err", err)
		return all(errSmarthost)
	}
	defer c.Close()
	// ctx ends when the claim is lost: stop before the final dot if we can.
	defer context.AfterFunc(ctx, func() { c.Close() })()
	if err := c.Mail(m.From, mailOptions(c, m)); err != nil {
		return all(connErr(r.o.Logger, err))
	}
	out := make([]rcptResult, 0, len(m.Rcpts))
	var accepted []int
	for _, rc := range m.Rcpts {
		err := c.Rcpt(rc.Address, nil)
		if err != nil {
			err = connErr(r.o.Logger, err)
		} else {
			accepted = append(accepted, len(out))
		}
		out = append(out, rcptResult{rc.Address, err})
	}
	if len(accepted) == 0 {
		_ = c.Quit()
		return out
	}
	err = func() error {
		w, err := c.Data()
		if err != nil {
			return err
		}
		if _, err := w.Write(m.Body); err != nil {
			return err
		}
		return w.Close()
	}()
	if err != nil {
		err = connErr(r.o.Logger, err)
		for _, i := range accepted {
			out[i].err = err
		}
		return out
	}
	_ = c.Quit()
	return out
}

// mailOptions declares 8-bit content and UTF-8 addresses when the
// smarthost supports them (RFC 6152, RFC 6531); otherwise the message goes
// as is, which nearly every server accepts for 8-bit bodies.
func mailOptions(c *smtp.Client, m store.QueuedMessage) *smtp.MailOptions {
	o := &smtp.MailOptions{}
	if ok, _ := c.Extension("8BITMIME"); ok && !ascii(string(m.Body)) {
		o.Body = smtp.Body8BitMIME
	}
	if ok, _ := c.Extension("SMTPUTF8"); ok {
		addrs := m.From
		for _, r := range m.Rcpts {
			addrs += r.Address
		}
		o.UTF8 = !ascii(addrs)
	}
	return o
}

func ascii(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// connErr keeps the smarthost's SMTP replies (they belong in a DSN) and
// replaces network errors by errSmarthost.
func connErr(log *slog.Logger, err error) error {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se
	}
	log.Warn("smarthost", "err", err)
	return errSmarthost
}

func (r *Relay) dial(ctx context.Context) (*smtp.Client, error) {
	addr := net.JoinHostPort(r.o.Host, strconv.Itoa(r.o.Port))
	d := net.Dialer{Timeout: r.o.DialTimeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dialing %s: %w", addr, err)
	}
	var c *smtp.Client
	switch r.o.TLS {
	case "implicit":
		c = smtp.NewClient(tls.Client(conn, r.o.TLSConfig))
	case "starttls":
		c, err = smtp.NewClientStartTLS(conn, r.o.TLSConfig)
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("STARTTLS with %s: %w", addr, err)
		}
	default:
		c = smtp.NewClient(conn)
	}
	c.CommandTimeout = 5 * time.Minute
	c.SubmissionTimeout = 10 * time.Minute
	if err := c.Hello(r.o.Hostname); err != nil {
		c.Close()
		return nil, fmt.Errorf("EHLO to %s: %w", addr, err)
	}
	if r.o.Username != "" {
		if err := c.Auth(sasl.NewPlainClient("", r.o.Username, r.o.Password)); err != nil {
			c.Close()
			return nil, fmt.Errorf("AUTH with %s: %w", addr, err)
		}
	}
	return c, nil
}
