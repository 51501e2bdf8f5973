package webui

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/skydesk/skydeskd/profiles"
	"github.com/skydesk/skydeskd/templates/web"
)

// maxEmailParam bounds the echoed address; longer input cannot be an
// address (RFC 5321 §4.5.3.1.3) and is not echoed whole.
const maxEmailParam = 320

// setup serves "/" and "/?email=ADDRESS": a GET form, so a help desk can
// send a link to the result. Whether a mailbox exists is never looked at:
// the answer depends on the domain alone (DESIGN.md §1).
func (h *Handler) setup(w http.ResponseWriter, r *http.Request) {
	l := h.lang(w, r)
	query := r.URL.Query()
	email := strings.TrimSpace(query.Get("email"))
	// A '+' written unencoded in a hand-made link arrives as a space under
	// form decoding; an address never contains a space, so put it back.
	email = strings.ReplaceAll(email, " ", "+")
	if len(email) > maxEmailParam {
		email = email[:maxEmailParam]
	}
	d := &web.Setup{Base: h.base(l, "setup", "title_setup", "/", query), Email: email}
	var addr profiles.Address
	var p profiles.Profile
	outcome := ""
	if email != "" {
		var err error
		addr, p, err = h.o.Resolver.Resolve(r.Context(), email)
		switch {
		case errors.Is(err, profiles.ErrInvalidAddress):
			d.Problem, outcome = "invalid", "invalid"
		case errors.Is(err, profiles.ErrUnknownDomain):
			d.Problem, d.Domain, outcome = "unknown", profiles.DisplayDomain(addr.Domain), "unknown"
		case err != nil:
			h.o.Log.Error("resolving address", "err", err)
			h.fail(w, l, http.StatusInternalServerError, "error_internal")
			return
		default:
			outcome = p.Kind.String()
			if h.o.Discovered != nil {
				h.o.Discovered(addr.Fold().String())
			}
		}
	}
	raw := r.URL.RawQuery
	key := pageKey{lang: l, query: raw, outcome: outcome}
	if b, ok := h.pages.Get(key); ok {
		writeBody(w, http.StatusOK, ctypeHTML, b)
		return
	}
	if outcome != "" && d.Problem == "" {
		res, err := h.result(l, addr, p)
		if err != nil {
			h.o.Log.Error("building setup result", "err", err)
			h.fail(w, l, http.StatusInternalServerError, "error_internal")
			return
		}
		d.Result = res
	}
	b, err := h.r.Render(l, web.SetupPage, d)
	if err != nil {
		h.o.Log.Error("rendering page", "page", "setup", "err", err)
		h.fail(w, l, http.StatusInternalServerError, "error_internal")
		return
	}
	if len(raw) <= maxCachedQuery {
		h.pages.Put(key, b, 0)
	}
	writeBody(w, http.StatusOK, ctypeHTML, b)
}

// ProfilePath is the signed Apple profile download of the autoconfig
// service; the page links to it and the QR code encodes its absolute URL.
const ProfilePath = "/apple/mobileconfig"

func (h *Handler) result(l web.Lang, addr profiles.Address, p profiles.Profile) (*web.SetupResult, error) {
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
	res := &web.SetupResult{
		Address: addr.String(), Display: addr.Local + "@" + profiles.DisplayDomain(addr.Domain),
		Kind: p.Kind.String(), Incoming: server(p.Incoming[0]),
		ProfileURL: rel, QRURL: h.webURL + rel,
	}
	for _, s := range p.Outgoing {
		res.Outgoing = append(res.Outgoing, server(s))
	}
	label, err := h.r.T(l, "qr_label", res.QRURL)
	if err != nil {
		return nil, err
	}
	if res.QR, err = h.qrCode(res.QRURL, label); err != nil {
		return nil, err
	}
	return res, nil
}

// asset serves the embedded stylesheet and icon with a strong ETag. The
// name is taken as sent, not unescaped: "/assets/site%2Ecss" is not found.
func (h *Handler) asset(w http.ResponseWriter, r *http.Request) {
	a, ok := web.LookupAsset(strings.TrimPrefix(rawPath(r), "/assets/"))
	if !ok {
		writeBody(w, http.StatusNotFound, ctypeText, []byte("not found\n"))
		return
	}
	hd := w.Header()
	hd.Set("ETag", a.ETag)
	hd.Set("Cache-Control", "public, max-age=3600")
	hd.Set("X-Content-Type-Options", "nosniff")
	if match := r.Header.Get("If-None-Match"); match != "" && strings.Contains(match, a.ETag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	writeBody(w, http.StatusOK, a.ContentType, a.Body)
}
