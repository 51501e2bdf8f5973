package templates

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"howett.net/plist"

	"github.com/skydesk/skydeskd/profiles"
)

// MobileConfigContentType is the MIME type Safari hands to the profile
// installer; served as anything else, iOS shows the file as text
// (REFERENCE §3.4).
const MobileConfigContentType = "application/x-apple-aspen-config"

// idKey is the fixed HMAC key identifiers are derived with (as mox does).
// It is not a secret: it only makes the identifiers a stable function of
// (provider, address) that says nothing readable about the address.
// Changing it makes every re-download install a second profile instead of
// replacing the first.
var idKey = []byte("skydeskd/templates mobileconfig identifiers v1")

// derive returns HMAC-SHA256(idKey, provider NUL purpose NUL subject).
func derive(provider, purpose, subject string) []byte {
	m := hmac.New(sha256.New, idKey)
	m.Write([]byte(provider))
	m.Write([]byte{0})
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write([]byte(subject))
	return m.Sum(nil)
}

// ProfileUUID formats the first 16 bytes of a derivation as an upper-case
// RFC 9562 UUID with version 5 and the RFC variant, the form Apple's
// YAML expects (^[0-9A-Za-z]{8}-...-{12}$).
func ProfileUUID(provider, purpose, subject string) string {
	b := derive(provider, purpose, subject)[:16]
	b[6] = b[6]&0x0f | 0x50
	b[8] = b[8]&0x3f | 0x80
	h := strings.ToUpper(hex.EncodeToString(b))
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// reverseDNS turns "skydesk.jp" into "jp.skydesk" for PayloadIdentifier.
func reverseDNS(domain string) string {
	labels := strings.Split(domain, ".")
	for i, j := 0, len(labels)-1; i < j; i, j = i+1, j-1 {
		labels[i], labels[j] = labels[j], labels[i]
	}
	return strings.Join(labels, ".")
}

// MobileConfigIDs are the identifiers of one address's profile.
type MobileConfigIDs struct {
	Identifier, UUID               string // the Configuration
	PayloadIdentifier, PayloadUUID string // its com.apple.mail.managed payload
}

// MobileConfigIdentifiers derives the identifiers for an address (the zero
// Address: for the domain's generic profile). They are a pure function of
// the provider and the normalised address, so a re-download replaces the
// installed profile: "During a profile replacement, the system updates
// payloads with the same PayloadIdentifier and PayloadUUID"
// (CommonPayloadKeys.yaml; REFERENCE §3.1).
func MobileConfigIdentifiers(p profiles.Profile, a profiles.Address) MobileConfigIDs {
	prov := providerID(p)
	subject := "domain:" + p.Domain
	if a != (profiles.Address{}) {
		subject = "address:" + a.Fold().String()
	}
	tag := hex.EncodeToString(derive(prov, "identifier", subject)[:10])
	base := reverseDNS(prov) + ".mail.profile." + tag
	return MobileConfigIDs{
		Identifier:        base,
		UUID:              ProfileUUID(prov, "configuration", subject),
		PayloadIdentifier: base + ".pop",
		PayloadUUID:       ProfileUUID(prov, "payload", subject),
	}
}

// MobileConfig renders the unsigned Apple configuration profile (an XML
// plist, keys sorted, tab indent) holding one com.apple.mail.managed
// payload of type EmailTypePOP (REFERENCE §3.2, §3.3): the kind's POP host
// with SSL, the first (implicit TLS) submission server, EmailAuthPassword
// both ways, the full address as both user names and
// OutgoingPasswordSameAsIncomingPassword so the device asks once. It never
// contains a password ("Only use this in encrypted profiles"). Display
// texts are Japanese and English. The zero Address renders a profile
// without EmailAddress and user names: the device prompts for them.
//
// iOS's UseSSL on 587 is undocumented (REFERENCE §3.2), so only servers
// with implicit TLS are eligible.
func MobileConfig(p profiles.Profile, a profiles.Address) ([]byte, error) {
	if err := checkProfile(p); err != nil {
		return nil, err
	}
	in, ok := firstImplicit(p.Incoming)
	if !ok {
		return nil, fmt.Errorf("mobileconfig: no implicit-TLS incoming server: %w", ErrIncompleteProfile)
	}
	out, ok := firstImplicit(p.Outgoing)
	if !ok {
		return nil, fmt.Errorf("mobileconfig: no implicit-TLS outgoing server: %w", ErrIncompleteProfile)
	}
	ids := MobileConfigIdentifiers(p, a)
	name := p.Provider.Name
	if name == "" {
		name = providerID(p)
	}
	org := name
	generic := a == (profiles.Address{})
	who := name
	if !generic {
		// Display texts are for people: show an IDN domain in U-labels.
		who = name + " (" + a.Local + "@" + profiles.DisplayDomain(a.Domain) + ")"
	}
	payload := map[string]any{
		"PayloadType":                            "com.apple.mail.managed",
		"PayloadVersion":                         1,
		"PayloadIdentifier":                      ids.PayloadIdentifier,
		"PayloadUUID":                            ids.PayloadUUID,
		"PayloadDisplayName":                     name + " POP3/SMTP",
		"PayloadDescription":                     name + " のメールアカウント / " + name + " mail account",
		"PayloadOrganization":                    org,
		"EmailAccountDescription":                name,
		"EmailAccountType":                       "EmailTypePOP",
		"IncomingMailServerAuthentication":       "EmailAuthPassword",
		"IncomingMailServerHostName":             in.Host,
		"IncomingMailServerPortNumber":           in.Port,
		"IncomingMailServerUseSSL":               true,
		"OutgoingMailServerAuthentication":       authOrNone(out.AuthRequired),
		"OutgoingMailServerHostName":             out.Host,
		"OutgoingMailServerPortNumber":           out.Port,
		"OutgoingMailServerUseSSL":               true,
		"OutgoingPasswordSameAsIncomingPassword": true,
		"PreventMove":                            false,
		"PreventAppSheet":                        false,
		"allowMailDrop":                          false,
	}
	if !generic {
		payload["EmailAddress"] = a.String()
		payload["IncomingMailServerUsername"] = a.String()
		payload["OutgoingMailServerUsername"] = a.String()
	}
	top := map[string]any{
		"PayloadType":         "Configuration",
		"PayloadVersion":      1,
		"PayloadIdentifier":   ids.Identifier,
		"PayloadUUID":         ids.UUID,
		"PayloadDisplayName":  who,
		"PayloadOrganization": org,
		"PayloadDescription": name + " の POP3/SMTP アカウントを設定します。パスワードはインストール中に入力してください。 / " +
			"Sets up your " + name + " POP3/SMTP account. You enter your password while installing.",
		"PayloadRemovalDisallowed": false,
		"PayloadContent":           []any{payload},
	}
	var buf bytes.Buffer
	enc := plist.NewEncoderForFormat(&buf, plist.XMLFormat)
	enc.Indent("\t")
	if err := enc.Encode(top); err != nil {
		return nil, fmt.Errorf("encoding plist: %w", err)
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

func firstImplicit(ss []profiles.Server) (profiles.Server, bool) {
	for _, s := range ss {
		if s.Security == profiles.ImplicitTLS {
			return s, true
		}
	}
	return profiles.Server{}, false
}

func authOrNone(required bool) string {
	if required {
		return "EmailAuthPassword"
	}
	return "EmailAuthNone"
}
