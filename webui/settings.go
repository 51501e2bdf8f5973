package webui

import (
	"context"
	"errors"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/skydesk/skydeskd/profiles"
	"github.com/skydesk/skydeskd/store"
	"github.com/skydesk/skydeskd/templates/web"
)

// maxFormBytes bounds a settings form body; the largest (sign-in) is
// well under 2 KiB.
const maxFormBytes = 16 << 10

// sessionHandler handles a settings form of a signed-in session.
type sessionHandler func(w http.ResponseWriter, r *http.Request, s signedIn)

// readForm bounds and parses a settings form. Cross-site posts never get
// here: http.CrossOriginProtection (routes.go) refuses them first.
func (h *Handler) readForm(w http.ResponseWriter, r *http.Request) (web.Lang, bool) {
	l := h.lang(w, r)
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		h.fail(w, l, http.StatusBadRequest, "err_bad_form")
		return l, false
	}
	return l, true
}

// signInGuard admits the sign-in form: its CSRF token is bound to the
// pre-session cookie.
func (h *Handler) signInGuard(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		l, ok := h.readForm(w, r)
		if !ok {
			return
		}
		if !h.checkCSRF("signin", cookieValue(r, preCookie), r.PostForm.Get("csrf")) {
			h.signInPage(w, r, l, http.StatusForbidden, "expired", "", 0)
			return
		}
		next(w, r)
	}
}

// sessionGuard admits every other form: it requires a live session and a
// CSRF token bound to it.
func (h *Handler) sessionGuard(next sessionHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		l, ok := h.readForm(w, r)
		if !ok {
			return
		}
		s, ok, err := h.current(r)
		if err != nil {
			h.internalError(w, r, "reading session", "", err)
			return
		}
		if !ok {
			h.signInPage(w, r, l, http.StatusUnauthorized, "expired", "", 0)
			return
		}
		if !h.checkCSRF("session", s.id, r.PostForm.Get("csrf")) {
			h.fail(w, l, http.StatusForbidden, "error_forbidden")
			return
		}
		next(w, r, s)
	}
}

// signInPage shows the sign-in form with a fresh pre-session binding.
func (h *Handler) signInPage(w http.ResponseWriter, r *http.Request, l web.Lang, status int, problem, email string, retry int) {
	pre := cookieValue(r, preCookie)
	if pre == "" {
		pre = randomToken()
		setCookie(w, preCookie, pre, 3600)
	}
	d := &web.SignIn{Base: h.base(l, "settings", "title_signin", "/settings", nil),
		CSRF: h.csrfToken("signin", pre), Email: email, Problem: problem, RetryMinutes: retry}
	if r.URL.Query().Get("signedout") == "1" && problem == "" {
		d.Notice = "signed_out"
	}
	h.render(w, status, l, web.SignInPage, d)
}

// settings shows the sign-in form or, signed in, the "Mail forwarding and
// POP/IMAP" screen.
func (h *Handler) settings(w http.ResponseWriter, r *http.Request) {
	l := h.lang(w, r)
	s, ok, err := h.current(r)
	if err != nil {
		h.internalError(w, r, "reading session", "", err)
		return
	}
	if !ok {
		problem := ""
		if cookieValue(r, sessionCookie) != "" {
			problem = "expired"
			setCookie(w, sessionCookie, "", -1)
		}
		h.signInPage(w, r, l, http.StatusOK, problem, "", 0)
		return
	}
	ctx := r.Context()
	id, address := s.id, s.address
	acc, err := h.o.Store.GetAccount(ctx, address)
	if errors.Is(err, store.ErrNotFound) {
		// The account was removed while signed in.
		_ = h.sessions.delete(ctx, s.key)
		setCookie(w, sessionCookie, "", -1)
		h.signInPage(w, r, l, http.StatusOK, "expired", "", 0)
		return
	}
	if err != nil {
		h.o.Log.Error("reading account", "user", address, "err", err)
		h.fail(w, l, http.StatusInternalServerError, "error_internal")
		return
	}
	pop, err := h.popView(ctx, l, address)
	if err != nil {
		h.o.Log.Error("reading POP settings", "user", address, "err", err)
		h.fail(w, l, http.StatusInternalServerError, "error_internal")
		return
	}
	apps, err := h.o.Store.ListAppPasswords(ctx, address)
	if err != nil {
		h.o.Log.Error("listing app passwords", "user", address, "err", err)
		h.fail(w, l, http.StatusInternalServerError, "error_internal")
		return
	}
	usage, err := h.o.Store.MailboxUsage(ctx, address)
	if err != nil {
		h.o.Log.Error("reading mailbox usage", "user", address, "err", err)
		h.fail(w, l, http.StatusInternalServerError, "error_internal")
		return
	}
	d := &web.Settings{
		Base: h.base(l, "settings", "title_settings", "/settings", nil), CSRF: h.csrfToken("session", id),
		Address: acc.Address, Kind: acc.Kind.String(), TwoStep: acc.TwoStep, Federated: acc.Federated,
		POP:     pop,
		Mailbox: web.NewMailbox(usage.Used, usage.Quota),
	}
	if d.Forwarding, err = h.forwardView(ctx, l, address); err != nil {
		h.o.Log.Error("reading forwarding", "user", address, "err", err)
		h.fail(w, l, http.StatusInternalServerError, "error_internal")
		return
	}
	for _, a := range apps {
		d.Apps = append(d.Apps, web.AppPassword{Name: a.Name, Created: web.FormatTime(l, a.Created), LastUsed: web.FormatTime(l, a.LastUsed)})
	}
	f, err := h.sessions.takeFlash(ctx, s)
	if err != nil {
		h.internalError(w, r, "reading the flash", address, err)
		return
	}
	if f != nil {
		d.Saved, d.Error, d.NewApp, d.NewSecret = f.saved, f.errKey, f.newApp, f.newSecret
		d.TwoStepNotice, d.TwoStepError, d.TwoStepArg = f.twoStep, f.twoStepErr, f.arg
	}
	if !acc.TwoStep {
		if d.Setup, err = h.twoStepSetup(ctx, l, s); err != nil {
			h.o.Log.Error("showing two-step setup", "user", address, "err", err)
			h.fail(w, l, http.StatusInternalServerError, "error_internal")
			return
		}
	}
	h.render(w, http.StatusOK, l, web.SettingsPage, d)
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

// signIn checks the address, account password and — for accounts with
// two-step verification on — the authenticator code through the shared
// Authenticator (ServiceWeb: app passwords are refused, federated accounts
// without a password get AuthNoPassword, two-step accounts without an
// authenticator app AuthNoAuthenticator, failures and wrong codes are
// throttled as for POP and SMTP). A wrong password and a wrong or missing
// code get the same answer.
func (h *Handler) signIn(w http.ResponseWriter, r *http.Request) {
	l := h.lang(w, r)
	email := strings.TrimSpace(r.PostForm.Get("address"))
	if len(email) > maxEmailParam {
		email = email[:maxEmailParam]
	}
	ctx := r.Context()
	gen, err := h.generation(ctx, email)
	if err != nil {
		h.internalError(w, r, "reading credential generation", email, err)
		return
	}
	login, err := h.o.Auth.Login(ctx, store.LoginRequest{Username: email,
		Password: r.PostForm.Get("password"), OTP: r.PostForm.Get("otp"), Remote: remoteAddr(r), Service: store.ServiceWeb})
	var ae *store.AuthError
	if errors.As(err, &ae) {
		h.o.Log.Info("settings sign-in refused", "user", email, "remote", remoteAddr(r).String(), "reason", ae.Error())
		// A bare local part, an unknown address, a wrong password and a
		// federated account without a password get the one answer (its
		// hints cover each case), so the page tells no one which
		// addresses exist or sign in through their organization.
		switch ae.Reason {
		case store.AuthNoAuthenticator:
			h.signInPage(w, r, l, http.StatusUnauthorized, "no_authenticator", email, 0)
			return
		case store.AuthLocked:
			mins := ae.RetryMinutes()
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(ae.RetryAfter.Seconds()))))
			h.signInPage(w, r, l, http.StatusTooManyRequests, "locked", email, mins)
			return
		}
		h.signInPage(w, r, l, http.StatusUnauthorized, "bad", email, 0)
		return
	}
	if err != nil {
		h.o.Log.Error("settings sign-in", "user", email, "err", err)
		h.fail(w, l, http.StatusInternalServerError, "error_internal")
		return
	}
	id, err := h.sessions.create(ctx, login.Account, gen)
	if err != nil {
		h.internalError(w, r, "creating session", login.Account.Address, err)
		return
	}
	setCookie(w, sessionCookie, id, 0)
	setCookie(w, preCookie, "", -1)
	h.o.Log.Info("settings sign-in", "user", login.Account.Address, "remote", remoteAddr(r).String())
	redirect(w, http.StatusSeeOther, "/settings")
}

// generation is the credential generation of the account a sign-in names,
// read before its password is checked; -1 when there is no such account
// (the sign-in fails then anyway).
func (h *Handler) generation(ctx context.Context, email string) (int64, error) {
	a, err := profiles.NormalizeAddress(email)
	if err != nil {
		return -1, nil
	}
	c, err := h.o.Store.Credentials(ctx, a.String())
	if errors.Is(err, store.ErrNotFound) {
		return -1, nil
	}
	return c.Generation, err
}

func (h *Handler) signOut(w http.ResponseWriter, r *http.Request, s signedIn) {
	if err := h.sessions.delete(r.Context(), s.key); err != nil {
		h.internalError(w, r, "ending session", s.address, err)
		return
	}
	setCookie(w, sessionCookie, "", -1)
	redirect(w, http.StatusSeeOther, "/settings?signedout=1")
}

// done stores the outcome for the next view and redirects there.
func (h *Handler) done(w http.ResponseWriter, r *http.Request, s signedIn, f *flash) {
	h.doneTo(w, r, s, f, "/settings")
}

// doneTo is done redirecting to anchor. A flash the store cannot keep
// fails the request: the owner sees the change went wrong rather than a
// silent page (for a new app password, its only showing).
func (h *Handler) doneTo(w http.ResponseWriter, r *http.Request, s signedIn, f *flash, anchor string) {
	if err := h.sessions.setFlash(r.Context(), s, f); err != nil {
		h.internalError(w, r, "keeping the flash", s.address, err)
		return
	}
	redirect(w, http.StatusSeeOther, anchor)
}

// changed follows a credential change this session made (the account's
// generation moved on by one): the session is re-bound to the new
// generation and every other session of the account ends. If another
// change came in between from elsewhere, this session ends too and the
// browser lands on the sign-in form. Then as done, to anchor.
func (h *Handler) changed(w http.ResponseWriter, r *http.Request, s signedIn, f *flash, anchor string) {
	ok, err := h.sessions.db.RebindSession(r.Context(), s.key, s.gen)
	if err != nil {
		h.internalError(w, r, "re-binding session", s.address, err)
		return
	}
	if !ok {
		h.o.Log.Info("session ended by a concurrent credential change", "user", s.address)
		redirect(w, http.StatusSeeOther, "/settings")
		return
	}
	s.gen++ // re-bound: its scratch is sealed to the new generation
	h.doneTo(w, r, s, f, anchor)
}

// createApp makes an app password; its secret is shown on the next view
// only, on whichever node (it is kept nowhere but in the flash, sealed
// under a key the store never holds, scratch.go). It needs
// a recent sign-in or the password again (recentAuth).
func (h *Handler) createApp(w http.ResponseWriter, r *http.Request, s signedIn) {
	address := s.address
	name := strings.TrimSpace(r.PostForm.Get("name"))
	if !h.recentAuth(w, r, &s, reauthApp, name) {
		return
	}
	secret, err := h.o.Store.CreateAppPassword(r.Context(), address, name)
	switch {
	case errors.Is(err, store.ErrBadName):
		h.done(w, r, s, &flash{errKey: "err_app_name"})
		return
	case errors.Is(err, store.ErrExists):
		h.done(w, r, s, &flash{errKey: "err_app_exists"})
		return
	case err != nil:
		h.internalError(w, r, "creating app password", address, err)
		return
	}
	h.o.Log.Info("app password created", "user", address, "name", name)
	h.changed(w, r, s, &flash{newApp: name, newSecret: secret}, "/settings")
}

func (h *Handler) revokeApp(w http.ResponseWriter, r *http.Request, s signedIn) {
	address := s.address
	name := r.PostForm.Get("name")
	err := h.o.Store.RevokeAppPassword(r.Context(), address, name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		h.done(w, r, s, &flash{errKey: "err_app_not_found"})
		return
	case err != nil:
		h.internalError(w, r, "revoking app password", address, err)
		return
	}
	h.o.Log.Info("app password revoked", "user", address, "name", name)
	h.changed(w, r, s, &flash{saved: []string{"saved_app_revoked"}}, "/settings")
}
