package webui

import (
	"net/http"
	"strings"

	"github.com/skydesk/skydeskd/templates/web"
)

// The form targets of the settings screen: POST only; a bookmarked or
// reloaded one shows the screen.
const (
	pathSignIn         = "/settings/signin"
	pathSignOut        = "/settings/signout"
	pathPOP            = "/settings/pop"
	pathAppCreate      = "/settings/app-passwords"
	pathAppRevoke      = "/settings/app-passwords/revoke"
	pathTwoStepStart   = "/settings/two-step/start"
	pathTwoStepConfirm = "/settings/two-step/confirm"
	pathTwoStepCancel  = "/settings/two-step/cancel"
	pathTwoStepOff     = "/settings/two-step/off"
)

// The Allow values of the pages (as echo listed them: OPTIONS first).
const (
	allowGet  = "OPTIONS, GET, HEAD"
	allowForm = "OPTIONS, GET, HEAD, POST"
)

// routes is the HTTPS side. A method pattern "GET /x" also takes HEAD;
// the bare pattern "/x" catches every other method of the same path
// (ServeMux prefers the pattern with a method) and answers 405 or, for
// OPTIONS, 204 with the allowed methods.
func (h *Handler) routes() *http.ServeMux {
	mux := http.NewServeMux()
	get := func(pattern string, f http.HandlerFunc) {
		mux.HandleFunc("GET "+pattern, f)
		mux.HandleFunc(pattern, methodNotAllowed(allowGet))
	}
	get("/{$}", h.headers(h.setup))
	get("/settings", h.headers(h.settings))
	get("/assets/{name...}", h.asset) // any depth, as echo's trailing ":name" matched

	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.fail(w, h.lang(w, r), http.StatusForbidden, "error_forbidden")
	}))
	form := func(path string, f http.HandlerFunc) {
		mux.Handle("POST "+path, h.headers(cop.Handler(f).ServeHTTP))
		mux.HandleFunc("GET "+path, func(w http.ResponseWriter, r *http.Request) {
			redirect(w, http.StatusSeeOther, "/settings")
		})
		mux.HandleFunc(path, methodNotAllowed(allowForm))
	}
	form(pathSignIn, h.signInGuard(h.signIn))
	// The confirmation link: GET shows a button, POST confirms.
	mux.HandleFunc("GET "+web.ForwardConfirmPath, h.headers(h.forwardConfirm))
	mux.Handle("POST "+web.ForwardConfirmPath, h.headers(cop.Handler(http.HandlerFunc(h.forwardConfirm)).ServeHTTP))
	mux.HandleFunc(web.ForwardConfirmPath, methodNotAllowed(allowForm))
	for path, f := range map[string]sessionHandler{
		pathSignOut:        h.signOut,
		pathPOP:            h.savePOP,
		pathAppCreate:      h.createApp,
		pathAppRevoke:      h.revokeApp,
		pathTwoStepStart:   h.startTwoStep,
		pathTwoStepConfirm: h.confirmTwoStep,
		pathTwoStepCancel:  h.cancelTwoStep,
		pathTwoStepOff:     h.offTwoStep,
		pathForwardSet:     h.setForward,
		pathForwardOff:     h.offForward,
	} {
		form(path, h.sessionGuard(f))
	}
	return mux
}

// methodNotAllowed answers a page path asked with another method.
func methodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		plainError(w, r, http.StatusMethodNotAllowed, "method not allowed")
	}
}

// Serves reports whether r is for the pages; anything else belongs to the
// autoconfig service next to them. Paths are matched as sent (the raw
// path when it has escapes), so "/settin%67s" is not a page, as it never
// was. Over plain HTTP the whole of "/settings/…" and "/assets/…" is
// redirected; over TLS only the routes exist, "/assets/" with a name.
func (h *Handler) Serves(r *http.Request) bool {
	p := rawPath(r)
	switch {
	case p == "/" || p == "/settings":
		return true
	case r.TLS == nil:
		return strings.HasPrefix(p, "/settings/") || strings.HasPrefix(p, "/assets/") || p == web.ForwardConfirmPath
	case strings.HasPrefix(p, "/assets/"):
		return len(p) > len("/assets/")
	}
	switch p {
	case pathSignIn, pathSignOut, pathPOP, pathAppCreate, pathAppRevoke,
		pathTwoStepStart, pathTwoStepConfirm, pathTwoStepCancel, pathTwoStepOff,
		pathForwardSet, pathForwardOff, web.ForwardConfirmPath:
		return true
	}
	return false
}

// rawPath is the path as sent: RawPath when the request spelled it with
// escapes the default encoding would not use.
func rawPath(r *http.Request) string {
	if r.URL.RawPath != "" {
		return r.URL.RawPath
	}
	return r.URL.Path
}
