package autoconfig

import (
	"errors"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/skydesk/skydeskd/store"
	"github.com/skydesk/skydeskd/templates/web"
)

// maxFormBytes bounds a settings form body; the largest (sign-in) is
// well under 2 KiB.
const maxFormBytes = 16 << 10

// Context keys set by postGuard.
const (
	ctxSession = "web.session"
	ctxAddress = "web.address"
)

// postGuard admits a settings form: it bounds and parses the body, refuses
// cross-site requests (Fetch Metadata), and checks the CSRF token — bound
// to the pre-session cookie for the sign-in form and to the session for
// everything else, which also requires a live session.
func (w *Web) postGuard(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		l := w.lang(c)
		if req.Header.Get("Sec-Fetch-Site") == "cross-site" {
			return w.fail(c, l, http.StatusForbidden, "error_forbidden")
		}
		req.Body = http.MaxBytesReader(c.Response(), req.Body, maxFormBytes)
		if err := req.ParseForm(); err != nil {
			return w.fail(c, l, http.StatusBadRequest, "err_bad_form")
		}
		token := req.PostForm.Get("csrf")
		if c.Path() == "/settings/signin" {
			if !w.checkCSRF("signin", cookieValue(c, preCookie), token) {
				return w.signInPage(c, l, http.StatusForbidden, "expired", "", 0)
			}
			return next(c)
		}
		id, address, _, ok := w.current(c, false)
		if !ok {
			return w.signInPage(c, l, http.StatusUnauthorized, "expired", "", 0)
		}
		if !w.checkCSRF("session", id, token) {
			return w.fail(c, l, http.StatusForbidden, "error_forbidden")
		}
		c.Set(ctxSession, id)
		c.Set(ctxAddress, address)
		return next(c)
	}
}

// signInPage shows the sign-in form with a fresh pre-session binding.
func (w *Web) signInPage(c echo.Context, l web.Lang, status int, problem, email string, retry int) error {
	pre := cookieValue(c, preCookie)
	if pre == "" {
		pre = randomToken()
		setCookie(c, preCookie, pre, 3600)
	}
	d := &web.SignIn{Base: w.base(l, "settings", "title_signin", "/settings", nil),
		CSRF: w.csrfToken("signin", pre), Email: email, Problem: problem, RetryMinutes: retry}
	if c.QueryParam("signedout") == "1" && problem == "" {
		d.Notice = "signed_out"
	}
	return w.render(c, status, l, web.SignInPage, d)
}

// settings shows the sign-in form or, signed in, the "Mail forwarding and
// POP/IMAP" screen.
func (w *Web) settings(c echo.Context) error {
	l := w.lang(c)
	id, address, f, ok := w.current(c, true)
	if !ok {
		problem := ""
		if cookieValue(c, sessionCookie) != "" {
			problem = "expired"
			setCookie(c, sessionCookie, "", -1)
		}
		return w.signInPage(c, l, http.StatusOK, problem, "", 0)
	}
	ctx := c.Request().Context()
	acc, err := w.o.Store.GetAccount(ctx, address)
	if errors.Is(err, store.ErrNotFound) {
		// The account was removed while signed in.
		w.sessions.delete(id)
		setCookie(c, sessionCookie, "", -1)
		return w.signInPage(c, l, http.StatusOK, "expired", "", 0)
	}
	if err != nil {
		w.o.Log.Error("reading account", "user", address, "err", err)
		return w.fail(c, l, http.StatusInternalServerError, "error_internal")
	}
	pop, err := w.o.Store.GetPOP(ctx, address)
	if err != nil {
		w.o.Log.Error("reading POP settings", "user", address, "err", err)
		return w.fail(c, l, http.StatusInternalServerError, "error_internal")
	}
	apps, err := w.o.Store.ListAppPasswords(ctx, address)
	if err != nil {
		w.o.Log.Error("listing app passwords", "user", address, "err", err)
		return w.fail(c, l, http.StatusInternalServerError, "error_internal")
	}
	d := &web.Settings{
		Base: w.base(l, "settings", "title_settings", "/settings", nil), CSRF: w.csrfToken("session", id),
		Address: acc.Address, Kind: acc.Kind.String(), TwoStep: acc.TwoStep, Federated: acc.Federated,
		POP: web.POP{Access: string(pop.Access), Since: web.FormatTime(l, pop.Since),
			IncludeSpam: pop.IncludeSpam, OnDelete: string(pop.OnDelete)},
	}
	for _, a := range apps {
		d.Apps = append(d.Apps, web.AppPassword{Name: a.Name, Created: web.FormatTime(l, a.Created), LastUsed: web.FormatTime(l, a.LastUsed)})
	}
	if f != nil {
		d.Saved, d.Error, d.NewApp, d.NewSecret = f.saved, f.errKey, f.newApp, f.newSecret
		d.TwoStepNotice, d.TwoStepError, d.TwoStepArg = f.twoStep, f.twoStepErr, f.arg
	}
	if !acc.TwoStep {
		if d.Setup, err = w.twoStepSetup(l, id); err != nil {
			w.o.Log.Error("showing two-step setup", "user", address, "err", err)
			return w.fail(c, l, http.StatusInternalServerError, "error_internal")
		}
	}
	return w.render(c, http.StatusOK, l, web.SettingsPage, d)
}

// remoteAddr is the peer address for throttling. X-Forwarded-For is not
// trusted: anyone could send one and escape the throttle.
func remoteAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr()
}

// lockMinutes is a lock-out's remaining time as the pages say it: whole
// minutes, rounded up, at least 1.
func lockMinutes(d time.Duration) int { return max(1, int(math.Ceil(d.Minutes()))) }

// signIn checks the address, account password and — for accounts with
// two-step verification on — the authenticator code through the shared
// Authenticator (ServiceWeb: app passwords are refused, federated accounts
// without a password get AuthNoPassword, two-step accounts without an
// authenticator app AuthNoAuthenticator, failures and wrong codes are
// throttled as for POP and SMTP). A wrong password and a wrong or missing
// code get the same answer.
func (w *Web) signIn(c echo.Context) error {
	l := w.lang(c)
	req := c.Request()
	email := strings.TrimSpace(req.PostForm.Get("address"))
	if len(email) > maxEmailParam {
		email = email[:maxEmailParam]
	}
	login, err := w.o.Auth.Login(req.Context(), store.LoginRequest{Username: email,
		Password: req.PostForm.Get("password"), OTP: req.PostForm.Get("otp"), Remote: remoteAddr(req), Service: store.ServiceWeb})
	var ae *store.AuthError
	if errors.As(err, &ae) {
		w.o.Log.Info("settings sign-in refused", "user", email, "remote", remoteAddr(req).String(), "reason", ae.Error())
		switch ae.Reason {
		case store.AuthNotFullAddress:
			return w.signInPage(c, l, http.StatusUnauthorized, "not_full", email, 0)
		case store.AuthNoPassword:
			return w.signInPage(c, l, http.StatusUnauthorized, "no_password", email, 0)
		case store.AuthNoAuthenticator:
			return w.signInPage(c, l, http.StatusUnauthorized, "no_authenticator", email, 0)
		case store.AuthLocked:
			mins := lockMinutes(ae.RetryAfter)
			c.Response().Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(ae.RetryAfter.Seconds()))))
			return w.signInPage(c, l, http.StatusTooManyRequests, "locked", email, mins)
		}
		return w.signInPage(c, l, http.StatusUnauthorized, "bad", email, 0)
	}
	if err != nil {
		w.o.Log.Error("settings sign-in", "user", email, "err", err)
		return w.fail(c, l, http.StatusInternalServerError, "error_internal")
	}
	id := w.sessions.create(login.Account.Address)
	setCookie(c, sessionCookie, id, 0)
	setCookie(c, preCookie, "", -1)
	w.o.Log.Info("settings sign-in", "user", login.Account.Address, "remote", remoteAddr(req).String())
	return c.Redirect(http.StatusSeeOther, "/settings")
}

func (w *Web) signOut(c echo.Context) error {
	w.sessions.delete(c.Get(ctxSession).(string))
	setCookie(c, sessionCookie, "", -1)
	return c.Redirect(http.StatusSeeOther, "/settings?signedout=1")
}

// done stores the outcome for the next view and redirects there.
func (w *Web) done(c echo.Context, f *flash) error {
	w.sessions.setFlash(c.Get(ctxSession).(string), f)
	return c.Redirect(http.StatusSeeOther, "/settings")
}

// savePOP applies the POP form with the semantics of `skydeskd pop set`.
// The access setting is sent only when the person changed it (or ticked
// "make all mail available again"): choosing "all" re-queues every
// message and "since" empties the queue, so re-sending an unchanged
// choice with an unrelated edit would silently do either.
func (w *Web) savePOP(c echo.Context) error {
	address := c.Get(ctxAddress).(string)
	form := c.Request().PostForm
	access, err := store.ParsePOPAccess(form.Get("access"))
	onDelete, err2 := store.ParseOnDelete(form.Get("on_delete"))
	spam := form.Get("spam")
	if err != nil || err2 != nil || (spam != "include" && spam != "exclude") {
		return w.done(c, &flash{errKey: "err_bad_form"})
	}
	include := spam == "include"
	ctx := c.Request().Context()
	cur, err := w.o.Store.GetPOP(ctx, address)
	if err != nil {
		w.o.Log.Error("reading POP settings", "user", address, "err", err)
		return w.fail(c, w.lang(c), http.StatusInternalServerError, "error_internal")
	}
	var u store.POPUpdate
	var saved []string
	if access != cur.Access {
		u.Access = &access
		saved = append(saved, "saved_access_"+string(access))
	} else if access == store.POPAll && form.Get("requeue") == "1" {
		u.Access = &access
		saved = append(saved, "saved_requeue")
	}
	if include != cur.IncludeSpam {
		u.IncludeSpam = &include
		saved = append(saved, "saved_spam_"+spam)
	}
	if onDelete != cur.OnDelete {
		u.OnDelete = &onDelete
		saved = append(saved, "saved_delete_"+string(onDelete))
	}
	if len(saved) == 0 {
		return w.done(c, &flash{saved: []string{"saved_nothing"}})
	}
	if _, err := w.o.Store.SetPOP(ctx, address, u); err != nil {
		w.o.Log.Error("saving POP settings", "user", address, "err", err)
		return w.fail(c, w.lang(c), http.StatusInternalServerError, "error_internal")
	}
	w.o.Log.Info("POP settings changed", "user", address, "changes", strings.Join(saved, ","))
	return w.done(c, &flash{saved: saved})
}

// createApp makes an app password; its secret is shown on the next view
// only (it is not stored anywhere but in the flash, in memory).
func (w *Web) createApp(c echo.Context) error {
	address := c.Get(ctxAddress).(string)
	name := strings.TrimSpace(c.Request().PostForm.Get("name"))
	secret, err := w.o.Store.CreateAppPassword(c.Request().Context(), address, name)
	switch {
	case errors.Is(err, store.ErrBadName):
		return w.done(c, &flash{errKey: "err_app_name"})
	case errors.Is(err, store.ErrExists):
		return w.done(c, &flash{errKey: "err_app_exists"})
	case err != nil:
		w.o.Log.Error("creating app password", "user", address, "err", err)
		return w.fail(c, w.lang(c), http.StatusInternalServerError, "error_internal")
	}
	w.o.Log.Info("app password created", "user", address, "name", name)
	return w.done(c, &flash{newApp: name, newSecret: secret})
}

func (w *Web) revokeApp(c echo.Context) error {
	address := c.Get(ctxAddress).(string)
	name := c.Request().PostForm.Get("name")
	err := w.o.Store.RevokeAppPassword(c.Request().Context(), address, name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return w.done(c, &flash{errKey: "err_app_not_found"})
	case err != nil:
		w.o.Log.Error("revoking app password", "user", address, "err", err)
		return w.fail(c, w.lang(c), http.StatusInternalServerError, "error_internal")
	}
	w.o.Log.Info("app password revoked", "user", address, "name", name)
	return w.done(c, &flash{saved: []string{"saved_app_revoked"}})
}
