package templates

import (
	"errors"
	"fmt"

	"github.com/beevik/etree"

	"github.com/skydesk/skydeskd/profiles"
)

// ErrIncompleteProfile is returned for a Profile that cannot be rendered:
// an unknown kind, or no incoming or no outgoing server. Callers map an
// unknown domain to "not found" before building, so this is a bug.
var ErrIncompleteProfile = errors.New("profile has no servers to render")

// PlaceholderAddress is what Thunderbird substitutes with the address the
// user typed (REFERENCE §1.1 "Placeholders"). It is rendered when the
// request carried no address (mobile clients and TB's privacy pref omit it).
const PlaceholderAddress = "%EMAILADDRESS%"

// login returns the user name rendered into documents: always the full
// address (DESIGN.md §1), or the placeholder for the generic document.
func login(a profiles.Address) string {
	if a == (profiles.Address{}) {
		return PlaceholderAddress
	}
	return a.String()
}

func checkProfile(p profiles.Profile) error {
	if p.Kind == profiles.Unknown || len(p.Incoming) == 0 || len(p.Outgoing) == 0 {
		return ErrIncompleteProfile
	}
	for _, s := range append(append([]profiles.Server(nil), p.Incoming...), p.Outgoing...) {
		if s.Host == "" || s.Port < 1 || s.Port > 65535 {
			return fmt.Errorf("server %s:%d: %w", s.Host, s.Port, ErrIncompleteProfile)
		}
	}
	return nil
}

// SocketType maps a Security to Thunderbird's case-sensitive socketType
// values: "SSL" is implicit TLS, "STARTTLS" a mandatory upgrade
// (readFromXML.sys.mjs; REFERENCE §1.1). Plain text is never offered.
func SocketType(s profiles.Security) (string, error) {
	switch s {
	case profiles.ImplicitTLS:
		return "SSL", nil
	case profiles.STARTTLS:
		return "STARTTLS", nil
	}
	return "", fmt.Errorf("security %d: no socketType", s)
}

// AuthMethod maps an Auth to the autoconfig draft's authentication value.
func AuthMethod(a profiles.Auth) (string, error) {
	switch a {
	case profiles.PasswordCleartext:
		return "password-cleartext", nil
	}
	return "", fmt.Errorf("auth %d: no authentication value", a)
}

// write serialises an etree document with an XML declaration, tab
// indentation and a final newline.
func write(doc *etree.Document) ([]byte, error) {
	doc.IndentTabs()
	b, err := doc.WriteToBytes()
	if err != nil {
		return nil, fmt.Errorf("writing xml: %w", err)
	}
	return b, nil
}

func newDoc() *etree.Document {
	doc := etree.NewDocument()
	doc.CreateProcInst("xml", `version="1.0" encoding="UTF-8"`)
	return doc
}

func text(parent *etree.Element, tag, value string) *etree.Element {
	e := parent.CreateElement(tag)
	e.SetText(value)
	return e
}
