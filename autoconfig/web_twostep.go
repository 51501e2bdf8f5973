package autoconfig

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/skydesk/skydeskd/store"
	"github.com/skydesk/skydeskd/templates/web"
)

// The owner turns two-step verification on and off on the settings
// screen. Turning it on is two requests: "start" makes a secret that is
// kept only in the server-side session (the accounts table is untouched,
// so an abandoned setup changes nothing), the page shows it as a QR code
// and in base32, and "confirm" commits it with a code from the
// authenticator app, which proves the app saved the secret: two-step on
// with a secret the app never saved would lock the owner out of this
// page. Turning it off needs a current code, checked and throttled like
// the sign-in's second factor (store.Authenticator.DisableTwoStep).
const (
	// enrolLifetime bounds how long a pending secret waits for its code:
	// enough to install an authenticator app, short enough that a
	// forgotten tab does not keep a secret in memory.
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

// enrolment is a pending two-step secret (one per session).
type enrolment struct {
	key     store.TOTPKey
	expires time.Time
	wrong   int
}

// twoStepDone stores the section's outcome and returns to it.
func (w *Web) twoStepDone(c echo.Context, f *flash) error {
	w.sessions.setFlash(c.Get(ctxSession).(string), f)
	return c.Redirect(http.StatusSeeOther, twoStepAnchor)
}

// startTwoStep makes a new pending secret for the signed-in account.
func (w *Web) startTwoStep(c echo.Context) error {
	id, address := c.Get(ctxSession).(string), c.Get(ctxAddress).(string)
	acc, err := w.o.Store.GetAccount(c.Request().Context(), address)
	if errors.Is(err, store.ErrNotFound) {
		return c.Redirect(http.StatusSeeOther, "/settings") // removed meanwhile: the screen signs out
	}
	if err != nil {
		w.o.Log.Error("reading account", "user", address, "err", err)
		return w.fail(c, w.lang(c), http.StatusInternalServerError, "error_internal")
	}
	if acc.TwoStep {
		return w.twoStepDone(c, &flash{twoStepErr: "err_twostep_already_on"})
	}
	key, err := w.o.Store.NewTOTPKey(address)
	if err != nil {
		w.o.Log.Error("making a TOTP secret", "user", address, "err", err)
		return w.fail(c, w.lang(c), http.StatusInternalServerError, "error_internal")
	}
	w.sessions.startEnrol(id, key)
	w.o.Log.Info("two-step setup started", "user", address)
	return w.twoStepDone(c, nil)
}

// confirmTwoStep commits the pending secret with a code of it.
func (w *Web) confirmTwoStep(c echo.Context) error {
	id, address := c.Get(ctxSession).(string), c.Get(ctxAddress).(string)
	key, _, ok := w.sessions.pendingEnrol(id)
	if !ok {
		return w.twoStepDone(c, &flash{twoStepErr: "err_twostep_no_setup"})
	}
	err := w.o.Store.ConfirmTOTP(c.Request().Context(), address, key.Secret, c.Request().PostForm.Get("code"))
	switch {
	case errors.Is(err, store.ErrBadCode):
		if w.sessions.enrolFailed(id, key) {
			w.o.Log.Info("two-step setup dropped after wrong codes", "user", address)
			return w.twoStepDone(c, &flash{twoStepErr: "err_twostep_setup_dropped"})
		}
		_, left, _ := w.sessions.pendingEnrol(id)
		return w.twoStepDone(c, &flash{twoStepErr: "err_twostep_setup_code", arg: left})
	case errors.Is(err, store.ErrTwoStepOn):
		w.sessions.endEnrol(id)
		return w.twoStepDone(c, &flash{twoStepErr: "err_twostep_already_on"})
	case err != nil:
		w.o.Log.Error("confirming two-step", "user", address, "err", err)
		return w.fail(c, w.lang(c), http.StatusInternalServerError, "error_internal")
	}
	w.sessions.endEnrol(id)
	w.o.Log.Info("two-step verification turned on", "user", address, "remote", remoteAddr(c.Request()).String())
	return w.twoStepDone(c, &flash{twoStep: "twostep_now_on"})
}

// cancelTwoStep drops the pending secret.
func (w *Web) cancelTwoStep(c echo.Context) error {
	w.sessions.endEnrol(c.Get(ctxSession).(string))
	return w.twoStepDone(c, &flash{twoStep: "twostep_setup_cancelled"})
}

// offTwoStep turns two-step verification off with a current code.
func (w *Web) offTwoStep(c echo.Context) error {
	address := c.Get(ctxAddress).(string)
	req := c.Request()
	err := w.o.Auth.DisableTwoStep(req.Context(), store.LoginRequest{Username: address,
		OTP: req.PostForm.Get("code"), Remote: remoteAddr(req), Service: store.ServiceWeb})
	var ae *store.AuthError
	switch {
	case errors.As(err, &ae):
		w.o.Log.Info("two-step off refused", "user", address, "remote", remoteAddr(req).String(), "reason", ae.Error())
		switch ae.Reason {
		case store.AuthLocked:
			return w.twoStepDone(c, &flash{twoStepErr: "err_twostep_locked", arg: lockMinutes(ae.RetryAfter)})
		case store.AuthNoAuthenticator:
			return w.twoStepDone(c, &flash{twoStepErr: "err_twostep_no_authenticator"})
		}
		return w.twoStepDone(c, &flash{twoStepErr: "err_twostep_off_code"})
	case errors.Is(err, store.ErrTwoStepOff):
		return w.twoStepDone(c, &flash{twoStep: "twostep_now_off"})
	case errors.Is(err, store.ErrNotFound):
		return c.Redirect(http.StatusSeeOther, "/settings")
	case err != nil:
		w.o.Log.Error("turning two-step off", "user", address, "err", err)
		return w.fail(c, w.lang(c), http.StatusInternalServerError, "error_internal")
	}
	w.o.Log.Info("two-step verification turned off", "user", address, "remote", remoteAddr(req).String())
	return w.twoStepDone(c, &flash{twoStep: "twostep_now_off"})
}

// twoStepSetup is the pending enrolment as the page shows it, or nil.
// The QR code is drawn per view and not cached: it carries the secret,
// which must not outlive the session.
func (w *Web) twoStepSetup(l web.Lang, id string) (*web.TwoStepSetup, error) {
	key, _, ok := w.sessions.pendingEnrol(id)
	if !ok {
		return nil, nil
	}
	label, err := w.r.T(l, "twostep_qr_label")
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
