package autoconfig

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/skydesk/skydeskd/profiles"
	"github.com/skydesk/skydeskd/store"
	"github.com/skydesk/skydeskd/templates/web"
)

// AddressResolver resolves an address to its Profile (*profiles.Resolver).
type AddressResolver interface {
	Resolve(ctx context.Context, address string) (profiles.Address, profiles.Profile, error)
}

// WebStore is the part of the store the settings screen uses
// (*store.Store). POP settings keep the semantics of `skydeskd pop set`.
type WebStore interface {
	GetAccount(ctx context.Context, address string) (store.Account, error)
	GetPOP(ctx context.Context, address string) (store.POPSettings, error)
	SetPOP(ctx context.Context, address string, u store.POPUpdate) (store.POPSettings, error)
	CreateAppPassword(ctx context.Context, address, name string) (string, error)
	ListAppPasswords(ctx context.Context, address string) ([]store.AppPassword, error)
	RevokeAppPassword(ctx context.Context, address, name string) error
	// NewTOTPKey and ConfirmTOTP: the owner's own two-step enrolment
	// (web_twostep.go).
	NewTOTPKey(address string) (store.TOTPKey, error)
	ConfirmTOTP(ctx context.Context, address, secret, code string) error
}

// WebAuthenticator checks a sign-in (*store.Authenticator): the single
// place for credential rules and failed-login throttling.
type WebAuthenticator interface {
	Login(ctx context.Context, req store.LoginRequest) (store.Login, error)
	// DisableTwoStep turns two-step verification off with a current
	// authenticator code, throttled like a sign-in.
	DisableTwoStep(ctx context.Context, req store.LoginRequest) error
}

// WebOptions configure the setup page and the settings screen.
type WebOptions struct {
	Resolver AddressResolver
	Store    WebStore
	Auth     WebAuthenticator
	// Provider is the service name on the pages; HelpURL the provider's
	// help pages.
	Provider, HelpURL string
	// WebURL is the public HTTPS base URL (config provider.web_url): the
	// QR code encodes WebURL + the profile path, and the plain-HTTP
	// listener redirects the pages there.
	WebURL string
	// Secret keys the CSRF tokens (at least 32 random bytes, kept in the
	// data directory so tokens survive a restart of a replica).
	Secret []byte
	// SessionIdle and SessionMax bound a signed-in session: it ends after
	// SessionIdle without a request, and SessionMax after sign-in in any
	// case. Defaults 30 minutes and 12 hours.
	SessionIdle, SessionMax time.Duration
	Log                     *slog.Logger
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// Web serves "/" (the setup page), "/settings…" (the settings screen) and
// "/assets/…". It implements Registrar.
type Web struct {
	o        WebOptions
	r        *web.Renderer
	sessions *sessionStore
	qr       boundedCache[[2]string, template.HTML]
	pages    boundedCache[pageKey, []byte]
	webURL   string
}

var _ Registrar = (*Web)(nil)

// NewWeb checks the options and parses the embedded pages.
func NewWeb(o WebOptions) (*Web, error) {
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
	w := &Web{o: o, r: r, webURL: strings.TrimRight(o.WebURL, "/"),
		sessions: newSessionStore(o.SessionIdle, o.SessionMax, o.Now)}
	w.qr.max, w.pages.max = qrCacheEntries, pageCacheEntries
	return w, nil
}

// Register adds the page routes. On the plain-HTTP listener (secure
// false) every page redirects to the HTTPS WebURL: passwords and session
// cookies never travel in clear text.
func (w *Web) Register(e *echo.Echo, secure bool) {
	get := []string{http.MethodGet, http.MethodHead}
	if !secure {
		for _, p := range []string{"/", "/settings", "/settings/*", "/assets/*"} {
			e.Any(p, w.toHTTPS)
		}
		return
	}
	e.Match(get, "/", w.setup, w.headers)
	e.Match(get, "/assets/:name", w.asset)
	e.Match(get, "/settings", w.settings, w.headers)
	for path, h := range map[string]echo.HandlerFunc{
		"/settings/signin":               w.signIn,
		"/settings/signout":              w.signOut,
		"/settings/pop":                  w.savePOP,
		"/settings/app-passwords":        w.createApp,
		"/settings/app-passwords/revoke": w.revokeApp,
		"/settings/two-step/start":       w.startTwoStep,
		"/settings/two-step/confirm":     w.confirmTwoStep,
		"/settings/two-step/cancel":      w.cancelTwoStep,
		"/settings/two-step/off":         w.offTwoStep,
	} {
		e.POST(path, h, w.headers, w.postGuard)
		// A bookmarked or reloaded form target shows the screen.
		e.Match(get, path, func(c echo.Context) error { return c.Redirect(http.StatusSeeOther, "/settings") })
	}
}

// toHTTPS sends a plain-HTTP page request to the same path on WebURL.
// Only GET and HEAD are redirected: a form posted in clear text has
// already exposed its fields, and resending it would hide that.
func (w *Web) toHTTPS(c echo.Context) error {
	req := c.Request()
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		return c.String(http.StatusForbidden, "Use HTTPS: "+w.webURL+"/\n")
	}
	return c.Redirect(http.StatusMovedPermanently, w.webURL+req.URL.RequestURI())
}

// headers sets the security headers of every page: a CSP that allows only
// our own stylesheet and forms (no script at all), no framing, no Referer
// (the query carries an address), and no caching of personal pages.
func (w *Web) headers(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Strict-Transport-Security", "max-age=31536000")
		h.Set("Cache-Control", "no-store")
		h.Set("Vary", "Accept-Language, Cookie")
		return next(c)
	}
}

// langCookie remembers the language switch.
const langCookie = "skydesk-lang"

// lang picks the page language: the switch (?lang=), then its cookie, then
// Accept-Language. Using the switch stores the choice for a year.
func (w *Web) lang(c echo.Context) web.Lang {
	if l, ok := web.ParseLang(c.QueryParam("lang")); ok {
		c.SetCookie(&http.Cookie{Name: langCookie, Value: string(l), Path: "/", MaxAge: 365 * 24 * 3600,
			Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
		return l
	}
	if ck, err := c.Cookie(langCookie); err == nil {
		if l, ok := web.ParseLang(ck.Value); ok {
			return l
		}
	}
	return web.Negotiate(c.Request().Header.Get("Accept-Language"))
}

// base fills the layout fields; query is kept in the language switch.
func (w *Web) base(l web.Lang, nav, title, path string, query url.Values) web.Base {
	q := url.Values{}
	for k, v := range query {
		if k != "lang" {
			q[k] = v
		}
	}
	q.Set("lang", string(l.Other()))
	return web.Base{Lang: l, Provider: w.o.Provider, HelpURL: w.o.HelpURL, Nav: nav, Title: title,
		SwitchURL: path + "?" + q.Encode(), NoIndex: path != "/" || len(q) > 1}
}

// render writes a page, or the generic error page if rendering fails.
func (w *Web) render(c echo.Context, status int, l web.Lang, p web.Page, data any) error {
	b, err := w.r.Render(l, p, data)
	if err != nil {
		w.o.Log.Error("rendering page", "page", string(p), "err", err)
		return w.fail(c, l, http.StatusInternalServerError, "error_internal")
	}
	return c.HTMLBlob(status, b)
}

// fail shows the error page; it never carries error text from below.
func (w *Web) fail(c echo.Context, l web.Lang, status int, msg string) error {
	d := &web.Error{Base: w.base(l, "", "title_error", "/", nil), Message: msg}
	b, err := w.r.Render(l, web.ErrorPage, d)
	if err != nil {
		return c.String(status, http.StatusText(status))
	}
	return c.HTMLBlob(status, b)
}

// maxEmailParam bounds the echoed address; longer input cannot be an
// address (RFC 5321 §4.5.3.1.3) and is not echoed whole.
const maxEmailParam = 320

// setup serves "/" and "/?email=ADDRESS": a GET form, so a help desk can
// send a link to the result. Whether a mailbox exists is never looked at:
// the answer depends on the domain alone (DESIGN.md §1).
func (w *Web) setup(c echo.Context) error {
	l := w.lang(c)
	email := strings.TrimSpace(c.QueryParam("email"))
	// A '+' written unencoded in a hand-made link arrives as a space under
	// form decoding; an address never contains a space, so put it back.
	email = strings.ReplaceAll(email, " ", "+")
	if len(email) > maxEmailParam {
		email = email[:maxEmailParam]
	}
	d := &web.Setup{Base: w.base(l, "setup", "title_setup", "/", c.QueryParams()), Email: email}
	var addr profiles.Address
	var p profiles.Profile
	outcome := ""
	if email != "" {
		var err error
		addr, p, err = w.o.Resolver.Resolve(c.Request().Context(), email)
		switch {
		case errors.Is(err, profiles.ErrInvalidAddress):
			d.Problem, outcome = "invalid", "invalid"
		case errors.Is(err, profiles.ErrUnknownDomain):
			d.Problem, d.Domain, outcome = "unknown", profiles.DisplayDomain(addr.Domain), "unknown"
		case err != nil:
			w.o.Log.Error("resolving address", "err", err)
			return w.fail(c, l, http.StatusInternalServerError, "error_internal")
		default:
			outcome = p.Kind.String()
		}
	}
	raw := c.Request().URL.RawQuery
	key := pageKey{lang: l, query: raw, outcome: outcome}
	if b, ok := w.pages.get(key); ok {
		return c.HTMLBlob(http.StatusOK, b)
	}
	if outcome != "" && d.Problem == "" {
		res, err := w.result(l, addr, p)
		if err != nil {
			w.o.Log.Error("building setup result", "err", err)
			return w.fail(c, l, http.StatusInternalServerError, "error_internal")
		}
		d.Result = res
	}
	b, err := w.r.Render(l, web.SetupPage, d)
	if err != nil {
		w.o.Log.Error("rendering page", "page", "setup", "err", err)
		return w.fail(c, l, http.StatusInternalServerError, "error_internal")
	}
	if len(raw) <= maxCachedQuery {
		w.pages.put(key, b)
	}
	return c.HTMLBlob(http.StatusOK, b)
}

// ProfilePath is the signed Apple profile download of the autoconfig
// service; the page links to it and the QR code encodes its absolute URL.
const ProfilePath = "/apple/mobileconfig"

func (w *Web) result(l web.Lang, addr profiles.Address, p profiles.Profile) (*web.SetupResult, error) {
	server := func(s profiles.Server) web.Server {
		sec := "ssl"
		if s.Security == profiles.STARTTLS {
			sec = "starttls"
		}
		return web.Server{Host: s.Host, Port: s.Port, Security: sec}
	}
	if len(p.Incoming) == 0 || len(p.Outgoing) == 0 {
		return nil, errors.New("profile without servers")
	}
	rel := ProfilePath + "?email=" + url.QueryEscape(addr.String())
	r := &web.SetupResult{
		Address: addr.String(), Display: addr.Local + "@" + profiles.DisplayDomain(addr.Domain),
		Kind: p.Kind.String(), Incoming: server(p.Incoming[0]),
		ProfileURL: rel, QRURL: w.webURL + rel,
	}
	for _, s := range p.Outgoing {
		r.Outgoing = append(r.Outgoing, server(s))
	}
	label, err := w.r.T(l, "qr_label", r.QRURL)
	if err != nil {
		return nil, err
	}
	if r.QR, err = w.qrCode(r.QRURL, label); err != nil {
		return nil, err
	}
	return r, nil
}

// asset serves the embedded stylesheet and icon with a strong ETag.
func (w *Web) asset(c echo.Context) error {
	a, ok := web.LookupAsset(c.Param("name"))
	if !ok {
		return c.String(http.StatusNotFound, "not found\n")
	}
	h := c.Response().Header()
	h.Set("ETag", a.ETag)
	h.Set("Cache-Control", "public, max-age=3600")
	h.Set("X-Content-Type-Options", "nosniff")
	if match := c.Request().Header.Get("If-None-Match"); match != "" && strings.Contains(match, a.ETag) {
		return c.NoContent(http.StatusNotModified)
	}
	return c.Blob(http.StatusOK, a.ContentType, a.Body)
}
