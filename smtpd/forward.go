package smtpd

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/skydesk/skydeskd/store"
)

// Forwarder is the optional part of Store that mail forwarding needs
// (store.Forwarding); a Store without it forwards nothing.
type Forwarder interface {
	GetForward(ctx context.Context, address string) (store.Forward, error)
}

var _ Forwarder = (*store.Store)(nil)

// Loop protection for forwarding. MaxHops follows RFC 5321 §6.3, which
// asks for a hop limit of at least 100 on relays; a forwarder stops much
// earlier, as Postfix's hopcount_limit (50) and Exim's received_header
// maximum do, because every forwarding hop here may double the mail.
const (
	MaxHops = 25
	// ForwardedForField names, on every forwarded copy, the account that
	// forwarded it: a copy that comes back to that account is kept, not
	// forwarded again, so two accounts forwarding to each other stop
	// after one round.
	ForwardedForField = "X-SkyDesk-Forwarded-For"
)

// The outcomes ObserveForward is told, one per forwarding mailbox of a
// message (a mailbox without forwarding is not counted).
const (
	ForwardQueued      = "queued"       // the copy is in the relay queue
	ForwardSpam        = "refused_spam" // spam: kept, not forwarded
	ForwardLoop        = "loop"         // our trace field names the mailbox
	ForwardHopLimit    = "hop_limit"    // MaxHops Received fields or more
	ForwardUnconfirmed = "unconfirmed"  // the target has not confirmed yet
	ForwardNoRelay     = "no_relay"     // no relay or no SRS key
)

// forwarding decides, after the message is checked, what each local
// mailbox does with it (on the MX and on submission between accounts): local is the mailboxes that keep a copy, fwd the
// copies to queue, kept the ObserveForward outcomes of the forwarding
// mailboxes whose copy is not forwarded (told once the message is
// stored: a refused message, retried later, is not counted twice). A message is forwarded only with a relay and an SRS
// key, when it is not spam, under the hop limit and not already forwarded
// by the same account; whenever it is not forwarded it is kept, whatever
// Keep says, so no message is lost.
func (s *session) forwarding(ctx context.Context, m message, spam bool) (local []string, fwd []store.ForwardCopy, kept []string) {
	fw, ok := s.b.store.(Forwarder)
	if !ok {
		return s.local, nil, nil
	}
	skip := 0
	if s.b.mode == MX { // fixUp's Return-Path: not for the relayed copy
		skip = len("Return-Path: <" + printable(s.from) + ">\r\n")
	}
	hops := len(m.header.Values("Received")) + 1 // our own
	traces := m.header.Values(ForwardedForField)
	for _, box := range s.local {
		if slices.Contains(s.srsBoxes, box) {
			// A bounce of a copy we forwarded: never forwarded again.
			local = append(local, box)
			continue
		}
		f, err := fw.GetForward(ctx, box)
		switch {
		case errors.Is(err, store.ErrNotFound):
			local = append(local, box)
			continue
		case store.IsUnavailable(err):
			s.b.outage.Warn(s.b.log, "reading forwarding: kept", err) // storing fails too: 451
			local = append(local, box)
			continue
		case err != nil:
			s.log.Error("reading forwarding: kept", "mailbox", box, "err", err)
			local = append(local, box)
			continue
		case !f.Active():
			kept = append(kept, ForwardUnconfirmed)
			local = append(local, box)
			continue
		}
		why := ""
		switch {
		case spam:
			why = ForwardSpam
		case s.b.opts.Relay == nil || s.b.opts.SRS == nil:
			why = ForwardNoRelay
		case hops >= MaxHops:
			why = ForwardHopLimit
		case traced(traces, box):
			why = ForwardLoop
		}
		if why != "" {
			s.log.Info("not forwarded: kept", "mailbox", box, "reason", why, "hops", hops)
			kept = append(kept, why)
			local = append(local, box)
			continue
		}
		from := ""
		if s.from != "" { // RFC 5321 §4.5.5: a null sender stays null
			from = s.b.opts.SRS.Sender(box)
		}
		fwd = append(fwd, store.ForwardCopy{From: from, To: f.Target,
			Header: []byte(ForwardedForField + ": " + box + "\r\n"),
			Skip:   int64(skip)})
		if f.Keep {
			local = append(local, box)
		}
	}
	return local, fwd, kept
}

// forwarded counts, once Accept stored the message, what forwarding did:
// the copies queued (the message once in Observe, each copy in
// ObserveForward) and the outcomes of the mailboxes that kept theirs.
func (s *session) forwarded(fwd []store.ForwardCopy, kept []string) {
	for _, o := range kept {
		s.noteForward(o)
	}
	if len(fwd) == 0 {
		return
	}
	s.note("forwarded")
	for range fwd {
		s.noteForward(ForwardQueued)
	}
}

// noteForward tells ObserveForward one forwarding outcome.
func (s *session) noteForward(outcome string) {
	if s.b.opts.ObserveForward != nil {
		s.b.opts.ObserveForward(outcome)
	}
}

// traced reports whether one of the trace fields names box.
func traced(traces []string, box string) bool {
	for _, t := range traces {
		if strings.EqualFold(strings.TrimSpace(t), box) {
			return true
		}
	}
	return false
}

// srsMailbox returns the forwarding account an SRS0 recipient stands for
// (a bounce of a copy it forwarded), "" for an address not in SRS0 form.
// A wrong or expired hash is refused like an unknown recipient: nothing
// is stored, and a bounce of a bounce is never sent (RFC 5321 §6.1).
func (s *session) srsMailbox(ctx context.Context, local, domain string) (string, error) {
	if s.b.mode != MX || s.b.opts.SRS == nil || !IsSRS(local) {
		return "", nil
	}
	acct, ok := s.b.opts.SRS.ReverseAccount(local, domain)
	if !ok {
		s.log.Info("invalid or expired SRS address", "rcpt", local+"@"+domain)
		s.note("unknown_rcpt")
		return "", errNoSuchUser
	}
	exists, err := s.b.store.AccountExists(ctx, acct)
	if err != nil {
		return "", s.storeErr("checking recipient", err)
	}
	if !exists {
		s.note("unknown_rcpt")
		return "", errNoSuchUser
	}
	if !slices.Contains(s.srsBoxes, acct) {
		s.srsBoxes = append(s.srsBoxes, acct)
	}
	return acct, nil
}

// GetForward implements Forwarder over the wrapped store (forwarding off
// when it has none), so the group-committing MX forwards too.
func (b *Batcher) GetForward(ctx context.Context, address string) (store.Forward, error) {
	if f, ok := b.BatchStore.(Forwarder); ok {
		return f.GetForward(ctx, address)
	}
	return store.Forward{}, store.ErrNotFound
}
