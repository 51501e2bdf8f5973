package rspamd

import (
	"context"
	"errors"
	"time"
)

// Disposition is what the receiving MTA does with a message.
type Disposition int

// Dispositions, from rspamd's actions.
const (
	// Deliver stores the message as normal mail.
	Deliver Disposition = iota
	// DeliverSpam stores the message with the spam flag.
	DeliverSpam
	// Defer refuses it for now (a 4xx reply): the sender retries.
	Defer
	// Refuse refuses it for good (a 5xx reply): nothing is stored.
	Refuse
)

func (d Disposition) String() string {
	return [...]string{"deliver", "deliver_spam", "defer", "refuse"}[d]
}

// dispositions maps every known action. "rewrite subject" is only
// flagged: the subject the sender wrote is kept. "discard" and
// "quarantine" (custom actions) are delivered as spam rather than lost:
// there is no quarantine here, and a silent discard would make a false
// positive undiscoverable.
var dispositions = map[Action]Disposition{
	NoAction:       Deliver,
	Greylist:       Defer,
	SoftReject:     Defer,
	AddHeader:      DeliverSpam,
	RewriteSubject: DeliverSpam,
	Discard:        DeliverSpam,
	Quarantine:     DeliverSpam,
	Reject:         Refuse,
}

// Disposition is what the action asks of the MTA.
func (a Action) Disposition() Disposition { return dispositions[a] }

// OnError is the policy when rspamd cannot give a verdict.
type OnError string

// OnError policies.
const (
	// Accept delivers the message unfiltered (as normal mail): mail keeps
	// flowing while rspamd is down.
	Accept OnError = "accept"
	// TempFail defers the message: senders retry until rspamd is back.
	TempFail OnError = "tempfail"
)

// Verdict is the outcome of one check.
type Verdict struct {
	Disposition Disposition
	// Result is rspamd's answer; zero when Err is set.
	Result Result
	// Err is why rspamd gave no answer; Disposition then follows OnError
	// (Deliver or Defer).
	Err error
}

// Outcome is one check as metrics see it.
type Outcome struct {
	// Action is rspamd's action, "" on error.
	Action Action
	// Error is Kind(err) of a failed check, "" on success.
	Error string
	// Took is the time spent waiting for rspamd.
	Took time.Duration
}

// Kind names the class of a Check error for metrics and logs: timeout,
// unavailable, http_status, bad_response (other).
func Kind(err error) string {
	switch {
	case errors.Is(err, ErrTimeout):
		return "timeout"
	case errors.Is(err, ErrUnavailable):
		return "unavailable"
	case errors.Is(err, ErrStatus):
		return "http_status"
	case errors.Is(err, ErrBadResponse):
		return "bad_response"
	}
	return "other"
}

// Verdict checks msg and maps the answer to a disposition, applying the
// OnError policy when rspamd gives none. Every call is reported to
// Options.Observe.
func (c *Client) Verdict(ctx context.Context, r Request, msg Message) Verdict {
	start := time.Now()
	res, err := c.Check(ctx, r, msg)
	took := time.Since(start)
	if err != nil {
		c.opts.Observe(Outcome{Error: Kind(err), Took: took})
		d := Deliver
		if c.opts.OnError == TempFail {
			d = Defer
		}
		return Verdict{Disposition: d, Err: err}
	}
	c.opts.Observe(Outcome{Action: res.Action, Took: took})
	return Verdict{Disposition: res.Action.Disposition(), Result: res}
}
