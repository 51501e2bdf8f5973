package templates

import (
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/skydesk/skydeskd/profiles"
)

// Autodiscover namespaces (REFERENCE §2.2-2.4). They are http:// URIs: the
// https:// form on Microsoft Learn is a rewrite artefact, and Thunderbird
// and MS-ASCMD compare them exactly.
const (
	NSResponse        = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
	NSOutlookResponse = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
	NSOutlookRequest  = "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"
)

// autodiscoverTTL is Protocol/TTL in hours: how long Outlook may keep the
// settings before rediscovering (default 1; a week suits settings that
// change only with the provider's host names).
const autodiscoverTTL = "168"

// ErrorCode is an MS-OXDSCLI Autodiscover error code (REFERENCE §2.4).
type ErrorCode int

// The documented codes.
const (
	// CodeNotFound: "The email address cannot be found." Used for every
	// domain the provider does not host, whether or not a mailbox exists.
	CodeNotFound ErrorCode = 500
	// CodeBadAddress: the address is recognised but has no configuration.
	CodeBadAddress ErrorCode = 501
	// CodeInvalidRequest: the XML request was improperly formatted.
	CodeInvalidRequest ErrorCode = 600
	// CodeUnsupportedSchema: no provider for the AcceptableResponseSchema
	// (mobilesync and any other non-outlook schema; we offer no ActiveSync).
	CodeUnsupportedSchema ErrorCode = 601
	// CodeConfigError: the address is recognised but configuration errors
	// prevent a response.
	CodeConfigError ErrorCode = 602
	// CodeInternal: the Autodiscover server threw an internal error.
	CodeInternal ErrorCode = 603
)

// Message is the short English text of a code, as Exchange sends it.
func (c ErrorCode) Message() string {
	switch c {
	case CodeNotFound:
		return "The email address cannot be found."
	case CodeBadAddress:
		return "Bad Address"
	case CodeInvalidRequest:
		return "Invalid Request"
	case CodeUnsupportedSchema:
		return "The server was unable to provide configuration information of the requested type."
	case CodeConfigError:
		return "Bad Address"
	case CodeInternal:
		return "Internal Server Error"
	}
	return "Error"
}

// AutodiscoverPOX renders the Outlook POX response (responseschema/2006a)
// for an address (REFERENCE §2.3): a POP3 Protocol for the kind's host and
// one SMTP Protocol per submission server in the Profile's order. Every
// Protocol says LoginName = full address (Outlook's default is only the
// local part), SPA off (its default is on, which Thunderbird maps to
// "secure" auth), SSL on, Encryption SSL for implicit TLS or TLS for
// STARTTLS, AuthRequired on and DomainRequired off.
//
// The response uses default xmlns declarations, never prefixes:
// Thunderbird's reader is namespace-blind.
func AutodiscoverPOX(p profiles.Profile, a profiles.Address) ([]byte, error) {
	if err := checkProfile(p); err != nil {
		return nil, err
	}
	if a == (profiles.Address{}) {
		return nil, errors.New("autodiscover: an address is required")
	}
	user := a.String()
	doc := newDoc()
	root := doc.CreateElement("Autodiscover")
	root.CreateAttr("xmlns", NSResponse)
	resp := root.CreateElement("Response")
	resp.CreateAttr("xmlns", NSOutlookResponse)
	text(resp.CreateElement("User"), "DisplayName", user)
	acct := resp.CreateElement("Account")
	text(acct, "AccountType", "email")
	text(acct, "Action", "settings")
	servers := append(append([]profiles.Server(nil), p.Incoming...), p.Outgoing...)
	for _, s := range servers {
		enc, err := Encryption(s.Security)
		if err != nil {
			return nil, err
		}
		if _, err := AuthMethod(s.Auth); err != nil {
			return nil, err
		}
		pr := acct.CreateElement("Protocol")
		text(pr, "Type", strings.ToUpper(string(s.Protocol)))
		text(pr, "Server", s.Host)
		text(pr, "Port", strconv.Itoa(s.Port))
		text(pr, "LoginName", user)
		text(pr, "DomainRequired", "off")
		text(pr, "SPA", "off")
		text(pr, "SSL", "on")
		text(pr, "Encryption", enc)
		text(pr, "AuthRequired", onOff(s.AuthRequired))
		if s.Protocol == profiles.SMTP {
			// Reuse the POP3 credentials; no POP-before-SMTP.
			text(pr, "UsePOPAuth", "on")
			text(pr, "SMTPLast", "off")
		}
		text(pr, "TTL", autodiscoverTTL)
	}
	return write(doc)
}

// Encryption maps a Security to Protocol/Encryption: "SSL" for implicit
// TLS, "TLS" for STARTTLS (the Outlook ENCRYPT_CONN_* convention,
// REFERENCE §2.3 and §7.1). Thunderbird ignores it and decides by port.
func Encryption(s profiles.Security) (string, error) {
	switch s {
	case profiles.ImplicitTLS:
		return "SSL", nil
	case profiles.STARTTLS:
		return "TLS", nil
	}
	return "", fmt.Errorf("security %d: no encryption value", s)
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// AutodiscoverError renders the documented <Error> response (REFERENCE
// §2.4). server names the answering service: Id is a hash of it, as in
// Exchange's responses. now is the Time attribute (UTC time of day); pass a
// fixed time for reproducible output.
func AutodiscoverError(code ErrorCode, server string, now time.Time) ([]byte, error) {
	doc := newDoc()
	root := doc.CreateElement("Autodiscover")
	root.CreateAttr("xmlns", NSResponse)
	resp := root.CreateElement("Response")
	resp.CreateAttr("xmlns", NSResponse)
	e := resp.CreateElement("Error")
	e.CreateAttr("Time", now.UTC().Format("15:04:05.0000000"))
	h := fnv.New32a()
	h.Write([]byte(server))
	e.CreateAttr("Id", strconv.FormatUint(uint64(h.Sum32()), 10))
	text(e, "ErrorCode", strconv.Itoa(int(code)))
	text(e, "Message", code.Message())
	e.CreateElement("DebugData")
	return write(doc)
}
