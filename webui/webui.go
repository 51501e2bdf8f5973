// Package webui serves the pages people open in a browser: the setup page
// ("/": the settings of an address, with a QR code for the Apple profile),
// the settings screen ("/settings": sign-in, POP download, app passwords,
// two-step verification) and their assets ("/assets/…").
//
// Framework: net/http's ServeMux with method patterns ("GET /settings",
// "POST /settings/pop"), not echo. The product owner keeps echo inside one
// package (autoconfig) and miekg/dns inside one (dnssrv), so that moving
// to echo v5 or miekg/dns v2 touches one folder each (STYLE "Two version
// flags"); ten routes and a few wrappers need nothing a ServeMux lacks.
// What echo did for the pages is written out here, byte for byte: its
// 405 with Allow and its 204 answer to OPTIONS (methodNotAllowed), its
// Content-Type spellings (ctypeHTML, ctypeText), and its routing on the
// raw path (Serves).
//
// Security: every page carries a CSP without script, no framing and no
// caching (headers); the forms are POSTed behind Go's
// http.CrossOriginProtection (Fetch Metadata, then Origin against Host)
// and carry CSRF tokens bound to an HttpOnly cookie (session.go);
// sessions live in the store under a __Host- cookie, bound to the
// account's credential generation, with their one-time notices and
// pending two-step secrets sealed next to them (scratch.go, so no node
// needs sticky routing), and creating an app password or
// turning two-step off needs a recent sign-in (reauth.go). The plain-HTTP
// listener (a request without TLS) never serves a page: it redirects to
// Options.WebURL, so passwords and session cookies never travel in clear
// text.
package webui

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/skydesk/skydeskd/internal/cache"
	"github.com/skydesk/skydeskd/profiles"
	"github.com/skydesk/skydeskd/store"
	"github.com/skydesk/skydeskd/templates/web"
)

// Resolver resolves an address to its Profile (*profiles.Resolver).
type Resolver interface {
	Resolve(ctx context.Context, address string) (profiles.Address, profiles.Profile, error)
}

// Store is the part of the store the settings screen uses. POP settings
// keep the semantics of `skydeskd pop set`. Sessions live in it
// (session.go).
type Store interface {
	store.Sessions
	// Credentials gives the credential generation a new session is bound
	// to (a normalised address).
	Credentials(ctx context.Context, address string) (store.CredentialRecord, error)
	GetAccount(ctx context.Context, address string) (store.Account, error)
	GetPOP(ctx context.Context, address string) (store.POPSettings, error)
	// LastPOPSession is the account's last POP session (time, client,
	// messages downloaded), shown in the POP section.
	LastPOPSession(ctx context.Context, address string) (store.POPSession, bool, error)
	// MailboxUsage is the mailbox's size against its quota, shown on the
	// settings screen.
	MailboxUsage(ctx context.Context, address string) (store.Usage, error)
	SetPOP(ctx context.Context, address string, u store.POPUpdate) (store.POPSettings, error)
	CreateAppPassword(ctx context.Context, address, name string) (string, error)
	ListAppPasswords(ctx context.Context, address string) ([]store.AppPassword, error)
	RevokeAppPassword(ctx context.Context, address, name string) error
	// NewTOTPKey and ConfirmTOTP: the owner's own two-step enrolment
	// (twostep.go).
	NewTOTPKey(address string) (store.TOTPKey, error)
	ConfirmTOTP(ctx context.Context, address, secret, code string) error
	// SetTwoStep turns two-step off after a re-authentication that
	// checked the code already (twostep.go).
	SetTwoStep(ctx context.Context, address string, on bool) error
}

// Authenticator checks a sign-in: the single place for credential rules
// and failed-login throttling, shared with POP and SMTP.
type Authenticator interface {
	Login(ctx context.Context, req store.LoginRequest) (store.Login, error)
	// DisableTwoStep turns two-step verification off with a current
	// authenticator code, throttled like a sign-in.
	DisableTwoStep(ctx context.Context, req store.LoginRequest) error
}

// Options configure the setup page and the settings screen.
type Options struct {
	Resolver Resolver
	Store    Store
	Auth     Authenticator
	// Provider is the service name on the pages; HelpURL the provider's
	// help pages.
	Provider, HelpURL string
	// WebURL is the public HTTPS base URL (config provider.web_url): the
	// QR code encodes WebURL + the profile path, and the plain-HTTP
	// listener redirects the pages there.
	WebURL string
	// Secret keys the CSRF tokens and, with each session's id, its
	// scratch (at least 32 random bytes, the same on every node, so
	// tokens and scratch survive a restart and hold on every node).
	Secret []byte
	// SessionIdle and SessionMax bound a signed-in session: it ends after
	// SessionIdle without a request, and SessionMax after sign-in in any
	// case. Defaults 30 minutes and 12 hours.
	SessionIdle, SessionMax time.Duration
	Log                     *slog.Logger
	// Relay reports whether smtp.smarthost is set: without it the
	// forwarding section says forwarding is unavailable and refuses it.
	// Wake, if set, tells the relay a confirmation message was queued.
	Relay bool
	Wake  func()
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
	// Location is the provider's time zone (config provider.time_zone): a
	// POP "from this day" starts at midnight there. Default: Japan time
	// (+09:00; Asia/Tokyo has had no daylight saving since 1951).
	Location *time.Location
	// Discovered, if set, is told of every setup-page result for an
	// address of a hosted domain (normalised), for onboarding figures.
	Discovered func(address string)
}

// Handler serves the pages on both listeners; whether a request came over
// TLS (Request.TLS) decides between the page and a redirect to WebURL.
// Serves tells a composing handler which requests are the pages'.
type Handler struct {
	o        Options
	r        *web.Renderer
	sessions *sessionStore
	qr       *cache.Cache[[2]string, template.HTML]
	pages    *cache.Cache[pageKey, []byte]
	webURL   string
	mux      *http.ServeMux
}

// New checks the options and parses the embedded pages.
func New(o Options) (*Handler, error) {
	if o.Resolver == nil || o.Store == nil || o.Auth == nil {
		return nil, errors.New("web: resolver, store and authenticator are required")
	}
	if len(o.Secret) < 32 {
		return nil, errors.New("web: the secret must have at least 32 bytes")
	}
	u, err := url.Parse(o.WebURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("web: provider web_url %q is not an https:// URL", o.WebURL)
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Location == nil {
		o.Location = time.FixedZone("JST", 9*60*60)
	}
	if o.SessionIdle <= 0 {
		o.SessionIdle = 30 * time.Minute
	}
	if o.SessionMax <= 0 {
		o.SessionMax = 12 * time.Hour
	}
	r, err := web.New()
	if err != nil {
		return nil, err
	}
	h := &Handler{o: o, r: r, webURL: strings.TrimRight(o.WebURL, "/"),
		sessions: newSessionStore(o.Store, o.Secret, o.SessionIdle, o.SessionMax, o.Now)}
	h.qr, h.pages = cache.New[[2]string, template.HTML](qrCacheEntries, nil), cache.New[pageKey, []byte](pageCacheEntries, nil)
	h.mux = h.routes()
	return h, nil
}

// ServeHTTP serves a request Serves accepted. Without TLS every page
// redirects to the HTTPS WebURL.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			// The request boundary, as autoconfig recovers its own.
			h.o.Log.Error("panic serving page", "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			plainError(w, r, http.StatusInternalServerError, "internal error")
		}
	}()
	if r.TLS == nil {
		h.toHTTPS(w, r)
		return
	}
	h.mux.ServeHTTP(w, r)
}

// toHTTPS sends a plain-HTTP page request to the same path on WebURL.
// Only GET and HEAD are redirected: a form posted in clear text has
// already exposed its fields, and resending it would hide that.
func (h *Handler) toHTTPS(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeBody(w, http.StatusForbidden, ctypeText, []byte("Use HTTPS: "+h.webURL+"/\n"))
		return
	}
	redirect(w, http.StatusMovedPermanently, h.webURL+r.URL.RequestURI())
}

// headers sets the security headers of every page: a CSP that allows only
// our own stylesheet and forms (no script at all), no framing, no Referer
// (the query carries an address), and no caching of personal pages.
func (h *Handler) headers(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Strict-Transport-Security", "max-age=31536000")
		hd.Set("Cache-Control", "no-store")
		hd.Set("Vary", "Accept-Language, Cookie")
		next(w, r)
	}
}

// The Content-Type values the pages have always been sent with (echo's
// spelling: "UTF-8" in capitals).
const (
	ctypeHTML = "text/html; charset=UTF-8"
	ctypeText = "text/plain; charset=UTF-8"
)

// writeBody sends a complete response; a Content-Type already set wins.
func writeBody(w http.ResponseWriter, status int, ctype string, b []byte) {
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", ctype)
	}
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// redirect sends a Location without a body (net/http's http.Redirect
// would add a small HTML one).
func redirect(w http.ResponseWriter, status int, location string) {
	w.Header().Set("Location", location)
	w.WriteHeader(status)
}

// plainError answers outside a page, as the autoconfig service answers
// its own errors: the lower-case reason as text, never cached; for HEAD
// the headers a GET would get (RFC 9110 §9.3.2).
func plainError(w http.ResponseWriter, r *http.Request, status int, reason string) {
	hd := w.Header()
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Content-Type", ctypeText)
	if r.Method == http.MethodHead {
		hd.Set("Content-Length", strconv.Itoa(len(reason)+1))
		w.WriteHeader(status)
		return
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, reason+"\n")
}

// langCookie remembers the language switch.
const langCookie = "skydesk-lang"

// lang picks the page language: the switch (?lang=), then its cookie, then
// Accept-Language. Using the switch stores the choice for a year.
func (h *Handler) lang(w http.ResponseWriter, r *http.Request) web.Lang {
	if l, ok := web.ParseLang(r.URL.Query().Get("lang")); ok {
		http.SetCookie(w, &http.Cookie{Name: langCookie, Value: string(l), Path: "/", MaxAge: 365 * 24 * 3600,
			Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
		return l
	}
	if ck, err := r.Cookie(langCookie); err == nil {
		if l, ok := web.ParseLang(ck.Value); ok {
			return l
		}
	}
	return web.Negotiate(r.Header.Get("Accept-Language"))
}

// base fills the layout fields; query is kept in the language switch.
func (h *Handler) base(l web.Lang, nav, title, path string, query url.Values) web.Base {
	q := url.Values{}
	for k, v := range query {
		if k != "lang" {
			q[k] = v
		}
	}
	q.Set("lang", string(l.Other()))
	return web.Base{Lang: l, Provider: h.o.Provider, HelpURL: h.o.HelpURL, Nav: nav, Title: title,
		SwitchURL: path + "?" + q.Encode(), NoIndex: path != "/" || len(q) > 1}
}

// render writes a page, or the generic error page if rendering fails.
func (h *Handler) render(w http.ResponseWriter, status int, l web.Lang, p web.Page, data any) {
	b, err := h.r.Render(l, p, data)
	if err != nil {
		h.o.Log.Error("rendering page", "page", string(p), "err", err)
		h.fail(w, l, http.StatusInternalServerError, "error_internal")
		return
	}
	writeBody(w, status, ctypeHTML, b)
}

// internalError logs a failure below the page for user and shows the
// generic error page.
func (h *Handler) internalError(w http.ResponseWriter, r *http.Request, what, user string, err error) {
	h.o.Log.Error(what, "user", user, "err", err)
	h.fail(w, h.lang(w, r), http.StatusInternalServerError, "error_internal")
}

// fail shows the error page; it never carries error text from below.
func (h *Handler) fail(w http.ResponseWriter, l web.Lang, status int, msg string) {
	d := &web.Error{Base: h.base(l, "", "title_error", "/", nil), Message: msg}
	b, err := h.r.Render(l, web.ErrorPage, d)
	if err != nil {
		writeBody(w, status, ctypeText, []byte(http.StatusText(status)))
		return
	}
	writeBody(w, status, ctypeHTML, b)
}
