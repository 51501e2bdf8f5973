package autoconfig

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
)

// MobileConfigPath is the signed Apple profile route: the setup page
// (webui.ProfilePath) links to it, which cmd/skydeskd's tests check.
const MobileConfigPath = pathMobileConfig

// The service's URLs (REFERENCE §6).
const (
	pathTBConfig         = "/mail/config-v1.1.xml"
	pathTBWellKnown      = "/.well-known/autoconfig/mail/config-v1.1.xml"
	pathAutodiscoverXML  = "/autodiscover/autodiscover.xml"
	pathAutodiscoverJSON = "/autodiscover/autodiscover.json"
	pathMobileConfig     = "/apple/mobileconfig"
)

// caseless are the paths matched in any letter case: clients send both
// /autodiscover/autodiscover.xml and /Autodiscover/Autodiscover.xml
// (MS-OXDISCO uses the latter; IIS matches case-insensitively), and the
// v2 JSON path likewise (REFERENCE §2.1, §6).
var caseless = []string{pathAutodiscoverJSON + "/v1.0/", pathTBConfig, pathTBWellKnown, pathAutodiscoverXML, pathAutodiscoverJSON, pathMobileConfig}

// canonicalPath rewrites any letter case of the service's paths to the
// registered lower-case form before routing; echo's router is
// case-sensitive. The JSON path's <email> suffix is left as sent. Other
// paths (the web pages) are untouched.
func canonicalPath(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		canonicalize(c.Request().URL)
		return next(c)
	}
}

func canonicalize(u *url.URL) {
	for _, k := range caseless {
		exact := !strings.HasSuffix(k, "/")
		if p, ok := foldPrefix(u.Path, k, exact); ok {
			u.Path = p
			if u.RawPath != "" {
				u.RawPath, _ = foldPrefix(u.RawPath, k, exact)
			}
			return
		}
	}
}

// foldPrefix replaces a case-insensitive prefix (or, when exact, the whole
// string) k of p by k.
func foldPrefix(p, k string, exact bool) (string, bool) {
	if len(p) < len(k) || (exact && len(p) != len(k)) || !strings.EqualFold(p[:len(k)], k) {
		return p, false
	}
	if p[:len(k)] == k {
		return p, true
	}
	return k + p[len(k):], true
}

// queryParam returns the first value of a query parameter whose name
// matches any of names case-insensitively (Thunderbird sends emailaddress,
// Outlook Email, our pages email). Values are percent-decoded but a '+'
// stays a '+': form decoding would turn "a+tag@example.com" sent
// unencoded into "a tag@...", and an address never contains a space.
func queryParam(r *http.Request, names ...string) (string, bool) {
	v, ok := rawQueryParam(r.URL.RawQuery, names...)
	if !ok {
		return "", false
	}
	d, err := url.PathUnescape(v)
	if err != nil {
		// Present but undecodable: keep it raw, so it is refused as a
		// malformed address ('%' alone is legal atext, but not followed
		// by non-hex).
		return v, true
	}
	return d, true
}

// toHTTPS answers the plain-HTTP listener's Autodiscover and Apple routes
// with 302 Found to the same path and query over HTTPS (REFERENCE §2.5:
// Outlook and Thunderbird re-send their POST to the Location).
func (s *Server) toHTTPS(c echo.Context) error {
	r := c.Request()
	base := s.redirectBase
	if base == "" {
		host := r.Host
		if host == "" || strings.ContainsAny(host, "/\\@ \r\n") {
			return echo.NewHTTPError(http.StatusBadRequest, "bad Host header")
		}
		base = "https://" + host
	}
	// RequestURI of the parsed URL: already escaped, no CR/LF possible.
	return c.Redirect(http.StatusFound, base+r.URL.RequestURI())
}

// statusError is an error with a short, safe reason for the client.
type statusError struct {
	status int
	reason string
	err    error // logged at debug level, never sent
}

func (e *statusError) Error() string {
	if e.err != nil {
		return fmt.Sprintf("%d %s: %v", e.status, e.reason, e.err)
	}
	return fmt.Sprintf("%d %s", e.status, e.reason)
}

func (e *statusError) Unwrap() error { return e.err }

func fail(status int, reason string, err error) error {
	return &statusError{status: status, reason: reason, err: err}
}

// errorHandler is the one place errors become responses: a *statusError
// sends its reason, an *echo.HTTPError its status text; anything else is
// logged and answered "internal error" without detail (STYLE: only
// protocol-typed errors reach the wire).
func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status, reason := http.StatusInternalServerError, "internal error"
	var se *statusError
	var he *echo.HTTPError
	switch {
	case errors.As(err, &se):
		status, reason = se.status, se.reason
		if status >= 500 {
			s.log.Error("autoconfig request failed", "path", c.Request().URL.Path, "err", err)
		}
	case errors.As(err, &he):
		status = he.Code
		reason = strings.ToLower(http.StatusText(status))
		if m, ok := he.Message.(string); ok && status < 500 && len(m) < 100 {
			reason = strings.ToLower(m)
		}
		if status >= 500 {
			s.log.Error("autoconfig request failed", "path", c.Request().URL.Path, "err", err)
		}
	default:
		s.log.Error("autoconfig request failed", "path", c.Request().URL.Path, "err", err)
	}
	h := c.Response().Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	if c.Request().Method == http.MethodHead {
		// The headers a GET would get (RFC 9110 §9.3.2), as httpfront
		// sends them for a cached "not found".
		h.Set("Content-Type", echo.MIMETextPlainCharsetUTF8)
		h.Set("Content-Length", strconv.Itoa(len(reason)+1))
		_ = c.NoContent(status)
		return
	}
	_ = c.String(status, reason+"\n")
}
