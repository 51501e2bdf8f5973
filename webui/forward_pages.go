package webui

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/skydesk/skydeskd/store"
	"github.com/skydesk/skydeskd/templates/web"
)

// The forwarding forms of the settings screen, and the confirmation page
// the link in the message to the target opens (no session: the target's
// owner is usually not the account's).
const (
	pathForwardSet = "/settings/forward"
	pathForwardOff = "/settings/forward/off"
)

// forwardStore is the store when it supports forwarding (the settings
// section is hidden otherwise).
func (h *Handler) forwardStore() (ForwardStore, bool) {
	fs, ok := h.o.Store.(ForwardStore)
	return fs, ok
}

// forwardView is the settings screen's forwarding section.
func (h *Handler) forwardView(ctx context.Context, l web.Lang, address string) (*web.Forwarding, error) {
	fs, ok := h.forwardStore()
	if !ok {
		return nil, nil
	}
	v := &web.Forwarding{Relay: h.o.Relay, Keep: true}
	f, err := fs.GetForward(ctx, address)
	if errors.Is(err, store.ErrNotFound) {
		return v, nil
	}
	if err != nil {
		return nil, err
	}
	v.Target, v.Keep, v.Pending = f.Target, f.Keep, !f.Confirmed
	if v.Pending {
		v.Expires = web.FormatTime(l, f.Expires)
	}
	return v, nil
}

// setForward starts forwarding to the form's target (pending until the
// target confirms) or changes keep for the confirmed one.
func (h *Handler) setForward(w http.ResponseWriter, r *http.Request, s signedIn) {
	fs, ok := h.forwardStore()
	if !ok {
		h.done(w, r, s, &flash{errKey: "fwd_err_no_relay"})
		return
	}
	keep := r.PostForm.Get("keep") != "no"
	f, queued, err := StartForward(r.Context(), fs, h.r, ForwardRequest{Address: s.address, Target: r.PostForm.Get("target"),
		Keep: keep, WebURL: h.webURL, Relay: h.o.Relay, Now: h.o.Now()})
	switch {
	case errors.Is(err, ErrNoRelay):
		h.done(w, r, s, &flash{errKey: "fwd_err_no_relay"})
		return
	case errors.Is(err, store.ErrBadSetting):
		h.done(w, r, s, &flash{errKey: "fwd_err_target"})
		return
	case err != nil:
		h.internalError(w, r, "setting forwarding", s.address, err)
		return
	}
	if queued && h.o.Wake != nil {
		h.o.Wake()
	}
	h.o.Log.Info("forwarding set", "user", s.address, "target", f.Target, "keep", f.Keep, "confirmed", f.Confirmed)
	saved := "fwd_saved_keep"
	if queued {
		saved = "fwd_saved_pending"
	}
	h.done(w, r, s, &flash{saved: []string{saved}})
}

// offForward turns forwarding off.
func (h *Handler) offForward(w http.ResponseWriter, r *http.Request, s signedIn) {
	fs, ok := h.forwardStore()
	if !ok {
		h.done(w, r, s, &flash{saved: []string{"fwd_saved_off"}})
		return
	}
	if err := fs.DisableForward(r.Context(), s.address); err != nil && !errors.Is(err, store.ErrNotFound) {
		h.internalError(w, r, "turning forwarding off", s.address, err)
		return
	}
	h.o.Log.Info("forwarding off", "user", s.address)
	h.done(w, r, s, &flash{saved: []string{"fwd_saved_off"}})
}

// forwardConfirm is the link's page. GET only shows what would be
// confirmed and a button: link scanners and previews that fetch the link
// confirm nothing. POST spends the token.
func (h *Handler) forwardConfirm(w http.ResponseWriter, r *http.Request) {
	l := h.lang(w, r)
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		if err := r.ParseForm(); err != nil {
			h.fail(w, l, http.StatusBadRequest, "err_bad_form")
			return
		}
	}
	tok := r.FormValue("t")
	d := &web.ForwardConfirm{Base: h.base(l, "", "fwd_confirm_title", web.ForwardConfirmPath, url.Values{"t": {tok}}), Token: tok}
	d.NoIndex = true
	fs, ok := h.forwardStore()
	if !ok || tok == "" || len(tok) > 128 {
		d.State = "invalid"
		h.render(w, http.StatusNotFound, l, web.ForwardConfirmPage, d)
		return
	}
	var f store.Forward
	var err error
	if r.Method == http.MethodPost {
		f, err = fs.ConfirmForward(r.Context(), store.HashForwardToken(tok))
		d.State = "done"
	} else {
		f, err = fs.ForwardByToken(r.Context(), store.HashForwardToken(tok))
		d.State = "ask"
	}
	if errors.Is(err, store.ErrNotFound) {
		d.State = "invalid"
		h.render(w, http.StatusNotFound, l, web.ForwardConfirmPage, d)
		return
	}
	if err != nil {
		h.internalError(w, r, "confirming forwarding", "", err)
		return
	}
	if d.State == "done" {
		h.o.Log.Info("forwarding confirmed", "user", f.Address, "target", f.Target)
	}
	d.Account, d.Target = f.Address, f.Target
	h.render(w, http.StatusOK, l, web.ForwardConfirmPage, d)
}
