package profiles

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// Address is a parsed email address. Domain is in A-labels, lower case;
// Local keeps its case (RFC 5321 §2.4: the local part is case-sensitive,
// the receiving host decides).
type Address struct {
	Local  string
	Domain string
}

// String returns local@domain.
func (a Address) String() string { return a.Local + "@" + a.Domain }

// AddressError says why an address was refused. The reason is safe to show
// to the person who typed it.
type AddressError struct {
	Reason string
}

func (e *AddressError) Error() string { return "invalid address: " + e.Reason }

// ErrInvalidAddress matches every *AddressError with errors.Is.
var ErrInvalidAddress = errors.New("invalid address")

// Is makes errors.Is(err, ErrInvalidAddress) true.
func (e *AddressError) Is(target error) bool { return target == ErrInvalidAddress }

// MaxAddressLength is RFC 5321 §4.5.3.1.3's path limit less the brackets.
const MaxAddressLength = 254

// idnaProfile converts U-labels to A-labels with the lookup rules of
// UTS #46 (case folding, mapping), as browsers and mail clients do.
var idnaProfile = idna.New(
	idna.MapForLookup(),
	idna.Transitional(false),
	idna.BidiRule(),
	idna.ValidateLabels(true),
	idna.StrictDomainName(true),
)

func bad(format string, a ...any) error {
	return &AddressError{Reason: fmt.Sprintf(format, a...)}
}

// ParseAddress parses a bare address (no display name, no angle brackets),
// splitting at the last '@'. The domain is case-folded and converted to
// A-labels (Thunderbird rejects U-labels in host names, REFERENCE §1.1).
// The local part may be dot-atom or UTF-8 (RFC 6531) but never contains
// controls, spaces, quotes or any of <>()[]\,;: so it can never break a
// header, an XML document or a file name unescaped.
func ParseAddress(s string) (Address, error) {
	if s == "" {
		return Address{}, bad("empty")
	}
	if len(s) > MaxAddressLength {
		return Address{}, bad("longer than %d octets", MaxAddressLength)
	}
	if !utf8.ValidString(s) {
		return Address{}, bad("not valid UTF-8")
	}
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return Address{}, bad("missing @")
	}
	local, domain := s[:at], s[at+1:]
	if err := checkLocal(local); err != nil {
		return Address{}, err
	}
	d, err := ParseDomain(domain)
	if err != nil {
		return Address{}, err
	}
	return Address{Local: local, Domain: d}, nil
}

// NormalizeAddress is the one address normaliser (DESIGN.md §4): it trims
// surrounding white space, parses the address (ParseAddress) and folds it
// (Fold). Accounts are stored, looked up, logged in and named in generated
// profiles in this form, so "Taro@SkyDesk.JP" is taro@skydesk.jp everywhere.
func NormalizeAddress(s string) (Address, error) {
	a, err := ParseAddress(strings.TrimSpace(s))
	if err != nil {
		return Address{}, err
	}
	return a.Fold(), nil
}

// Fold returns a with the local part and domain in lower case. Like nearly
// every provider, local parts are matched case-insensitively (RFC 5321
// §2.4 leaves it to the receiving host).
func (a Address) Fold() Address {
	return Address{Local: strings.ToLower(a.Local), Domain: strings.ToLower(a.Domain)}
}

func checkLocal(local string) error {
	if local == "" {
		return bad("empty local part")
	}
	if len(local) > 64 {
		return bad("local part longer than 64 octets")
	}
	if local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, "..") {
		return bad("misplaced dot in local part")
	}
	for _, r := range local {
		switch {
		case r < 0x21 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			return bad("control character or space in local part")
		case strings.ContainsRune(`"(),:;<>@[\]`, r):
			return bad("character %q not allowed in local part", r)
		}
	}
	return nil
}

// ParseDomain case-folds a domain and converts it to A-labels. A trailing
// dot is refused: addresses carry no root label.
func ParseDomain(domain string) (string, error) {
	if domain == "" {
		return "", bad("empty domain")
	}
	if strings.HasPrefix(domain, "[") {
		return "", bad("address literals are not accepted")
	}
	a, err := idnaProfile.ToASCII(domain)
	if err != nil {
		return "", bad("domain %q is not a valid host name", domain)
	}
	a = strings.ToLower(a)
	if !strings.Contains(a, ".") {
		return "", bad("domain has no dot")
	}
	if len(a) > 253 {
		return "", bad("domain longer than 253 octets")
	}
	return a, nil
}

// DisplayDomain returns the Unicode form of an A-label domain, for pages
// meant for people; it falls back to the input.
func DisplayDomain(domain string) string {
	u, err := idna.Display.ToUnicode(domain)
	if err != nil {
		return domain
	}
	return u
}
