package storetest

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/skydesk/skydeskd/store"
)

// testForwarding checks the Forwarding role: a new target is pending until
// its token is confirmed, the token works once and not after it expires,
// the confirmed target given again only changes keep, and Accept queues
// forwarded copies with their own sender and trace header.
func testForwarding(t *testing.T, d store.Driver) {
	ctx := t.Context()
	user(t, d, "taro@skydesk.jp")
	if _, err := d.GetForward(ctx, "taro@skydesk.jp"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetForward before any = %v, want ErrNotFound", err)
	}
	if _, err := d.SetForward(ctx, "Taro@skydesk.jp", store.ForwardUpdate{Target: "taro@skydesk.jp"}); !errors.Is(err, store.ErrBadSetting) {
		t.Errorf("forwarding to itself = %v, want ErrBadSetting", err)
	}
	future := time.Now().Add(48 * time.Hour)
	tok, h := store.NewForwardToken()
	f, err := d.SetForward(ctx, "taro@skydesk.jp", store.ForwardUpdate{Target: "Taro@Example.ORG", Keep: true, TokenHash: h, Expires: future})
	if err != nil || f.Confirmed || f.Target != "Taro@example.org" && f.Target != "taro@example.org" || !f.Keep {
		t.Fatalf("SetForward = %+v, %v; want pending, keep", f, err)
	}
	if f.Expires.Unix() != future.Unix() {
		t.Errorf("Expires = %v, want %v", f.Expires, future)
	}
	if got, err := d.ForwardByToken(ctx, store.HashForwardToken(tok)); err != nil || got.Address != "taro@skydesk.jp" || got.Confirmed {
		t.Fatalf("ForwardByToken = %+v, %v", got, err)
	}
	if _, err := d.ForwardByToken(ctx, store.HashForwardToken(tok+"x")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a wrong token = %v, want ErrNotFound", err)
	}
	if got, _ := d.GetForward(ctx, "taro@skydesk.jp"); got.Confirmed {
		t.Fatal("reading the link confirmed it")
	}
	if got, err := d.ConfirmForward(ctx, h); err != nil || !got.Confirmed || !got.Active() {
		t.Fatalf("ConfirmForward = %+v, %v", got, err)
	}
	if _, err := d.ConfirmForward(ctx, h); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second ConfirmForward = %v, want ErrNotFound (single use)", err)
	}
	// The confirmed target again: keep changes, nothing to confirm.
	_, h2 := store.NewForwardToken()
	f, err = d.SetForward(ctx, "taro@skydesk.jp", store.ForwardUpdate{Target: f.Target, Keep: false, TokenHash: h2, Expires: future})
	if err != nil || !f.Confirmed || f.Keep {
		t.Fatalf("SetForward same target = %+v, %v; want confirmed, keep off", f, err)
	}
	if _, err := d.ForwardByToken(ctx, h2); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a token issued for the confirmed target works: %v", err)
	}
	// A new target is pending again; an expired link confirms nothing.
	_, h3 := store.NewForwardToken()
	f, err = d.SetForward(ctx, "taro@skydesk.jp", store.ForwardUpdate{Target: "other@example.org", Keep: true, TokenHash: h3, Expires: time.Now().Add(-time.Second)})
	if err != nil || f.Confirmed {
		t.Fatalf("SetForward new target = %+v, %v; want pending", f, err)
	}
	if _, err := d.ConfirmForward(ctx, h3); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("expired ConfirmForward = %v, want ErrNotFound", err)
	}
	if err := d.DisableForward(ctx, "taro@skydesk.jp"); err != nil {
		t.Fatal(err)
	}
	if err := d.DisableForward(ctx, "taro@skydesk.jp"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second DisableForward = %v, want ErrNotFound", err)
	}
	if _, err := d.GetForward(ctx, "nobody@skydesk.jp"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetForward of a missing account = %v", err)
	}

	// Accept: a forwarded copy only (keep off) is queued with its header.
	_, qid, err := d.Accept(ctx, store.Accepted{Body: []byte("Subject: x\n\nbody\n"),
		Forwards: []store.ForwardCopy{{From: "srs0=x@skydesk.jp", To: "t@example.org", Header: []byte("X-Trace: taro\r\n")}}})
	if err != nil || qid == 0 {
		t.Fatalf("Accept forward only = %d, %v", qid, err)
	}
	due, err := d.DueQueue(ctx, time.Now().Add(time.Hour), 10)
	if err != nil || len(due) != 1 {
		t.Fatalf("DueQueue = %+v, %v", due, err)
	}
	if m := due[0]; m.From != "srs0=x@skydesk.jp" || len(m.Rcpts) != 1 || m.Rcpts[0].Address != "t@example.org" ||
		!strings.HasPrefix(string(m.Body), "X-Trace: taro\r\nSubject: x\r\n") {
		t.Errorf("queued %q from %s to %+v", m.Body, m.From, m.Rcpts)
	}
}
