package webui

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/skydesk/skydeskd/store"
	"github.com/skydesk/skydeskd/templates/web"
)

// ForwardTTL is how long a forwarding confirmation link works.
const ForwardTTL = 48 * time.Hour

// ErrNoRelay refuses forwarding on a service without a relay: forwarded
// copies and the confirmation message could not leave.
var ErrNoRelay = errors.New("mail forwarding needs a relay: smtp.smarthost is not set")

// ForwardStore is what setting up forwarding needs: the settings and the
// outbound queue the confirmation message goes through.
type ForwardStore interface {
	store.Forwarding
	Accept(ctx context.Context, a store.Accepted) (uids []int64, queueID int64, err error)
}

var _ ForwardStore = (*store.Store)(nil)

// ForwardRequest is one "forward set" (the admin command or the settings
// screen).
type ForwardRequest struct {
	Address, Target string
	Keep            bool
	// WebURL is the settings host the confirmation link points at.
	WebURL string
	// Relay reports whether smtp.smarthost is set.
	Relay bool
	Now   time.Time
}

// StartForward sets address's forwarding. A new target stays pending:
// the confirmation message with a one-time link (valid ForwardTTL) is
// queued for it through the relay in the same call, and forwarding starts
// only when the link is confirmed. The confirmed target given again only
// changes Keep. queued reports whether a confirmation was queued (the
// caller wakes the relay).
func StartForward(ctx context.Context, st ForwardStore, r *web.Renderer, req ForwardRequest) (f store.Forward, queued bool, err error) {
	if !req.Relay {
		return store.Forward{}, false, ErrNoRelay
	}
	target, err := store.CheckForwardTarget(req.Address, req.Target)
	if err != nil {
		return store.Forward{}, false, err
	}
	tok, h := store.NewForwardToken()
	expires := req.Now.Add(ForwardTTL)
	f, err = st.SetForward(ctx, req.Address, store.ForwardUpdate{Target: target, Keep: req.Keep, TokenHash: h, Expires: expires})
	if err != nil || f.Confirmed {
		return f, false, err
	}
	var id [12]byte
	_, _ = rand.Read(id[:])
	_, domain, _ := strings.Cut(f.Address, "@")
	msg, err := r.ForwardConfirmation(web.ForwardMail{Account: f.Address, Target: f.Target,
		Link:    strings.TrimRight(req.WebURL, "/") + web.ForwardConfirmPath + "?t=" + url.QueryEscape(tok),
		Expires: expires, Date: req.Now, MessageID: hex.EncodeToString(id[:]) + "@" + domain})
	if err != nil {
		return store.Forward{}, false, fmt.Errorf("building confirmation: %w", err)
	}
	// The account is the envelope sender: a bounce (no such target)
	// reaches its owner.
	if _, _, err := st.Accept(ctx, store.Accepted{Body: msg, From: f.Address, Remote: []string{f.Target}}); err != nil {
		return store.Forward{}, false, fmt.Errorf("queueing confirmation: %w", err)
	}
	return f, true, nil
}
