// Package web renders the people-facing pages of skydeskd: the setup page
// ("/": the settings table of DESIGN.md §1 for one address, the signed
// Apple profile download with its QR code, and per-client steps) and the
// settings screen ("Mail forwarding and POP/IMAP", DESIGN.md §2, and
// app-specific passwords).
//
// Pages are html/template files embedded in the binary, with every string
// looked up in the Japanese and English catalogues (i18n/*.json); assets
// (CSS, icon) are embedded too, so the pages work offline and load nothing
// from a CDN. The package is a pure builder: view models in, bytes out. It
// knows nothing of HTTP, sessions or the store.
package web

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"strings"
)

//go:embed pages/*.html i18n/*.json
var files embed.FS

//go:embed static
var static embed.FS

// Page names the templates Renderer.Render accepts.
type Page string

// The pages.
const (
	SetupPage    Page = "setup"
	SignInPage   Page = "signin"
	SettingsPage Page = "settings"
	ErrorPage    Page = "error"
	// ReauthPage asks a signed-in owner for the password again before a
	// sensitive change.
	ReauthPage Page = "reauth"
	// ForwardConfirmPage is a forwarding target's confirmation link.
	ForwardConfirmPage Page = "forward"
)

var pages = []Page{SetupPage, SignInPage, SettingsPage, ErrorPage, ReauthPage, ForwardConfirmPage}

// Renderer holds the parsed templates of every page in every language.
// It is safe for concurrent use.
type Renderer struct {
	tmpl map[Lang]map[Page]*template.Template
	cat  map[Lang]catalog
}

// catalog maps message keys to text; values may hold fmt verbs.
type catalog map[string]string

// loadCatalogs reads i18n/<lang>.json for every language.
func loadCatalogs() (map[Lang]catalog, error) {
	out := map[Lang]catalog{}
	for _, l := range Langs {
		b, err := files.ReadFile("i18n/" + string(l) + ".json")
		if err != nil {
			return nil, fmt.Errorf("reading catalogue %s: %w", l, err)
		}
		var c catalog
		if err := json.Unmarshal(b, &c); err != nil {
			return nil, fmt.Errorf("parsing catalogue %s: %w", l, err)
		}
		out[l] = c
	}
	return out, nil
}

// New parses the embedded templates and catalogues.
func New() (*Renderer, error) {
	cats, err := loadCatalogs()
	if err != nil {
		return nil, err
	}
	r := &Renderer{tmpl: map[Lang]map[Page]*template.Template{}, cat: cats}
	layout, err := fs.ReadFile(files, "pages/layout.html")
	if err != nil {
		return nil, fmt.Errorf("reading layout: %w", err)
	}
	for _, l := range Langs {
		r.tmpl[l] = map[Page]*template.Template{}
		for _, p := range pages {
			body, err := fs.ReadFile(files, "pages/"+string(p)+".html")
			if err != nil {
				return nil, fmt.Errorf("reading page %s: %w", p, err)
			}
			t := template.New("layout").Funcs(r.funcs(l))
			if _, err := t.Parse(string(layout)); err != nil {
				return nil, fmt.Errorf("parsing layout: %w", err)
			}
			if _, err := t.Parse(string(body)); err != nil {
				return nil, fmt.Errorf("parsing page %s: %w", p, err)
			}
			r.tmpl[l][p] = t
		}
	}
	return r, nil
}

// T returns the message key in language l, formatted with args. A missing
// key is an error at render time (see funcs), never a blank on the page.
func (r *Renderer) T(l Lang, key string, args ...any) (string, error) {
	s, ok := r.cat[l][key]
	if !ok {
		return "", fmt.Errorf("message %q missing in %s catalogue", key, l)
	}
	if len(args) == 0 {
		return s, nil
	}
	return fmt.Sprintf(s, args...), nil
}

func (r *Renderer) funcs(l Lang) template.FuncMap {
	return template.FuncMap{
		"t": func(key string, args ...any) (string, error) { return r.T(l, key, args...) },
		// lines splits a message at newlines, for step lists kept as one
		// catalogue entry.
		"lines": func(s string) []string { return strings.Split(s, "\n") },
		"list":  func(s ...string) []string { return s },
	}
}

// Render executes page p in language l with data (a *Setup, *SignIn,
// *Settings, *Reauth or *Error whose Base.Lang is l).
func (r *Renderer) Render(l Lang, p Page, data any) ([]byte, error) {
	t, ok := r.tmpl[l][p]
	if !ok {
		return nil, fmt.Errorf("no page %q in %q", p, l)
	}
	var b bytes.Buffer
	if err := t.ExecuteTemplate(&b, "layout", data); err != nil {
		return nil, fmt.Errorf("rendering %s (%s): %w", p, l, err)
	}
	return b.Bytes(), nil
}
