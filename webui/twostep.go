package webui

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/skydesk/skydeskd/store"
	"github.com/skydesk/skydeskd/templates/web"
)

// The owner turns two-step verification on and off on the settings
// screen. Turning it on is two requests: "start" makes a secret that is
// kept only in the session's scratch (sealed in the store, scratch.go, so
// the confirming code may reach any node; the accounts table is
// untouched, so an abandoned setup changes nothing), the page shows it as a QR code
// and in base32, and "confirm" commits it with a code from the
// authenticator app, which proves the app saved the secret: two-step on
// with a secret the app never saved would lock the owner out of this
// page. Turning it off needs a current code, checked and throttled like
// the sign-in's second factor (store.Authenticator.DisableTwoStep).
const (
	// enrolLifetime bounds how long a pending secret waits for its code:
	// enough to install an authenticator app, short enough that a
	// forgotten tab does not keep a secret pending.
	enrolLifetime = 10 * time.Minute
	// maxEnrolFailures wrong confirming codes drop the pending secret; the
	// owner starts again. A wrong code is usually a mistyped one or a
	// secret scanned into the wrong entry, not an attack: the secret is
	// on this very page, so guessing gains nothing.
	maxEnrolFailures = 5
	// twoStepAnchor is where the two-step forms send the browser back
	// to: the section, not the top of the page.
	twoStepAnchor = "/settings#two-step"
)

// twoStepDone stores the section's outcome and returns to it.
func (h *Handler) twoStepDone(w http.ResponseWriter, r *http.Request, s signedIn, f *flash) {
	h.doneTo(w, r, s, f, twoStepAnchor)
}

// startTwoStep makes a new pending secret for the signed-in account.
func (h *Handler) startTwoStep(w http.ResponseWriter, r *http.Request, s signedIn) {
	address := s.address
	acc, err := h.o.Store.GetAccount(r.Context(), address)
	if errors.Is(err, store.ErrNotFound) {
		redirect(w, http.StatusSeeOther, "/settings") // removed meanwhile: the screen signs out
		return
	}
	if err != nil {
		h.internalError(w, r, "reading account", address, err)
		return
	}
	if acc.TwoStep {
		h.twoStepDone(w, r, s, &flash{twoStepErr: "err_twostep_already_on"})
		return
	}
	key, err := h.o.Store.NewTOTPKey(address)
	if err != nil {
		h.internalError(w, r, "making a TOTP secret", address, err)
		return
	}
	if err := h.sessions.startEnrol(r.Context(), s, key); err != nil {
		h.internalError(w, r, "keeping the two-step setup", address, err)
		return
	}
	h.o.Log.Info("two-step setup started", "user", address)
	h.twoStepDone(w, r, s, nil)
}

// confirmTwoStep commits the pending secret with a code of it.
func (h *Handler) confirmTwoStep(w http.ResponseWriter, r *http.Request, s signedIn) {
	address := s.address
	p, ok, err := h.sessions.pendingEnrol(r.Context(), s)
	if err != nil {
		h.internalError(w, r, "reading the two-step setup", address, err)
		return
	}
	if !ok {
		h.twoStepDone(w, r, s, &flash{twoStepErr: "err_twostep_no_setup"})
		return
	}
	err = h.o.Store.ConfirmTOTP(r.Context(), address, p.key.Secret, r.PostForm.Get("code"))
	switch {
	case errors.Is(err, store.ErrBadCode):
		left, err := h.sessions.enrolFailed(r.Context(), s, p)
		if err != nil {
			h.internalError(w, r, "counting a wrong setup code", address, err)
			return
		}
		if left == 0 {
			h.o.Log.Info("two-step setup dropped after wrong codes", "user", address)
			h.twoStepDone(w, r, s, &flash{twoStepErr: "err_twostep_setup_dropped"})
			return
		}
		h.twoStepDone(w, r, s, &flash{twoStepErr: "err_twostep_setup_code", arg: left})
		return
	case errors.Is(err, store.ErrTwoStepOn):
		if !h.endEnrol(w, r, s) {
			return
		}
		h.twoStepDone(w, r, s, &flash{twoStepErr: "err_twostep_already_on"})
		return
	case err != nil:
		h.internalError(w, r, "confirming two-step", address, err)
		return
	}
	if !h.endEnrol(w, r, s) {
		return
	}
	h.o.Log.Info("two-step verification turned on", "user", address, "remote", remoteAddr(r).String())
	h.changed(w, r, s, &flash{twoStep: "twostep_now_on"}, twoStepAnchor)
}

// cancelTwoStep drops the pending secret.
func (h *Handler) cancelTwoStep(w http.ResponseWriter, r *http.Request, s signedIn) {
	if h.endEnrol(w, r, s) {
		h.twoStepDone(w, r, s, &flash{twoStep: "twostep_setup_cancelled"})
	}
}

// endEnrol drops the pending secret, failing the request if the store
// cannot.
func (h *Handler) endEnrol(w http.ResponseWriter, r *http.Request, s signedIn) bool {
	if err := h.sessions.endEnrol(r.Context(), s); err != nil {
		h.internalError(w, r, "ending the two-step setup", s.address, err)
		return false
	}
	return true
}

// offTwoStep turns two-step verification off with a current code. A
// sign-in more than reauthAge old must give the password too: then the
// password and code are checked together as a sign-in (recentAuth), which
// uses the code up, and two-step is turned off directly.
func (h *Handler) offTwoStep(w http.ResponseWriter, r *http.Request, s signedIn) {
	address := s.address
	fresh := h.o.Now().Sub(s.authAt) <= reauthAge
	if !fresh && !h.recentAuth(w, r, &s, reauthTwoStepOff, "") {
		return
	}
	var err error
	if fresh {
		err = h.o.Auth.DisableTwoStep(r.Context(), store.LoginRequest{Username: address,
			OTP: r.PostForm.Get("code"), Remote: remoteAddr(r), Service: store.ServiceWeb})
	} else {
		err = h.o.Store.SetTwoStep(r.Context(), address, false)
	}
	var ae *store.AuthError
	switch {
	case errors.As(err, &ae):
		h.o.Log.Info("two-step off refused", "user", address, "remote", remoteAddr(r).String(), "reason", ae.Error())
		switch ae.Reason {
		case store.AuthLocked:
			h.twoStepDone(w, r, s, &flash{twoStepErr: "err_twostep_locked", arg: ae.RetryMinutes()})
			return
		case store.AuthNoAuthenticator:
			h.twoStepDone(w, r, s, &flash{twoStepErr: "err_twostep_no_authenticator"})
			return
		}
		h.twoStepDone(w, r, s, &flash{twoStepErr: "err_twostep_off_code"})
		return
	case errors.Is(err, store.ErrTwoStepOff):
		h.twoStepDone(w, r, s, &flash{twoStep: "twostep_now_off"})
		return
	case errors.Is(err, store.ErrNotFound):
		redirect(w, http.StatusSeeOther, "/settings")
		return
	case err != nil:
		h.internalError(w, r, "turning two-step off", address, err)
		return
	}
	h.o.Log.Info("two-step verification turned off", "user", address, "remote", remoteAddr(r).String())
	h.changed(w, r, s, &flash{twoStep: "twostep_now_off"}, twoStepAnchor)
}

// twoStepSetup is the pending enrolment as the page shows it, or nil.
// The QR code is drawn per view and not cached: it carries the secret,
// which must not outlive the setup.
func (h *Handler) twoStepSetup(ctx context.Context, l web.Lang, s signedIn) (*web.TwoStepSetup, error) {
	p, ok, err := h.sessions.pendingEnrol(ctx, s)
	if !ok || err != nil {
		return nil, err
	}
	key := p.key
	label, err := h.r.T(l, "twostep_qr_label")
	if err != nil {
		return nil, err
	}
	qr, err := web.QRCode(key.URL, label)
	if err != nil {
		return nil, err
	}
	return &web.TwoStepSetup{QR: qr, Secret: groupSecret(key.Secret)}, nil
}

// groupSecret writes a base32 secret in groups of four, the way
// authenticator apps that take a typed key show it (Google Authenticator
// ignores the spaces).
func groupSecret(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i += 4 {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s[i:min(i+4, len(s))])
	}
	return b.String()
}
