package webui

import (
	"errors"
	"math"
	"net/http"
	"strconv"

	"github.com/skydesk/skydeskd/store"
	"github.com/skydesk/skydeskd/templates/web"
)

// What a re-authentication confirms: the form it repeats.
const (
	reauthApp        = "app_create"  // creating an app password (pathAppCreate)
	reauthTwoStepOff = "twostep_off" // turning two-step off (pathTwoStepOff)
)

// recentAuth admits a form that opens a way into the mailbox or removes a
// protection (creating an app password, turning two-step verification
// off): a session whose owner signed in or re-authenticated at most
// reauthAge ago passes. Any other session must give the account password
// again, and with two-step on a current code, checked by the shared
// Authenticator as a sign-in (throttled the same way): someone who finds
// a signed-in browser, or steals its cookie, cannot mint a mail password
// with it. On success the session's authentication time is renewed and
// true returned; otherwise the re-authentication page has been answered.
func (h *Handler) recentAuth(w http.ResponseWriter, r *http.Request, s *signedIn, action, name string) bool {
	now := h.o.Now()
	if now.Sub(s.authAt) <= reauthAge {
		return true
	}
	l := h.lang(w, r)
	if !r.PostForm.Has("password") {
		h.reauthPage(w, r, l, http.StatusOK, s, action, name, "", 0)
		return false
	}
	ctx := r.Context()
	login, err := h.o.Auth.Login(ctx, store.LoginRequest{Username: s.address, Password: r.PostForm.Get("password"),
		OTP: r.PostForm.Get("code"), Remote: remoteAddr(r), Service: store.ServiceWeb})
	var ae *store.AuthError
	switch {
	case errors.As(err, &ae):
		h.o.Log.Info("re-authentication refused", "user", s.address, "remote", remoteAddr(r).String(), "reason", ae.Error())
		if ae.Reason == store.AuthLocked {
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(ae.RetryAfter.Seconds()))))
			h.reauthPage(w, r, l, http.StatusTooManyRequests, s, action, name, "locked", ae.RetryMinutes())
			return false
		}
		h.reauthPage(w, r, l, http.StatusUnauthorized, s, action, name, "bad", 0)
		return false
	case err != nil:
		h.internalError(w, r, "re-authenticating", s.address, err)
		return false
	case login.Account.ID != s.accountID:
		// The address now names another account: this session is void.
		redirect(w, http.StatusSeeOther, "/settings")
		return false
	}
	if err := h.sessions.db.ReauthSession(ctx, s.key, now); err != nil {
		h.internalError(w, r, "recording re-authentication", s.address, err)
		return false
	}
	s.authAt = now
	h.o.Log.Info("re-authenticated", "user", s.address, "remote", remoteAddr(r).String())
	return true
}

// reauthPage asks for the password (and code) again, repeating the form
// of action with its name.
func (h *Handler) reauthPage(w http.ResponseWriter, r *http.Request, l web.Lang, status int, s *signedIn,
	action, name, problem string, retry int) {
	acc, err := h.o.Store.GetAccount(r.Context(), s.address)
	if err != nil {
		h.internalError(w, r, "reading account", s.address, err)
		return
	}
	d := &web.Reauth{Base: h.base(l, "settings", "title_reauth", "/settings", nil), CSRF: h.csrfToken("session", s.id),
		Address: s.address, Action: action, Name: name, NeedCode: acc.TwoStep || action == reauthTwoStepOff,
		Problem: problem, RetryMinutes: retry}
	h.render(w, status, l, web.ReauthPage, d)
}
