// Package templates holds the pure builders that render one
// profiles.Profile (plus, where the format carries it, the user's address)
// into each client's own document format (DESIGN.md §3, §5):
//
//   - Thunderbird autoconfig config-v1.1.xml (draft-ietf-mailmaint-autoconfig,
//     Mozilla's v1.1 format with the <pop3> hints; REFERENCE §1),
//   - Microsoft Autodiscover POX, responseschema/2006a, and its <Error>
//     documents with the MS-OXDSCLI codes (REFERENCE §2.3, §2.4),
//   - Autodiscover v2 JSON (REFERENCE §2.6),
//   - Apple configuration profiles with one com.apple.mail.managed payload,
//     signed as CMS SignedData (RFC 5652; REFERENCE §3).
//
// Documents are built with etree, encoding/json and plist, never with
// text/template fed with request data, so an address can never inject
// markup. Every builder is deterministic: identifiers come from an HMAC of
// the address, clocks are passed in, indentation is tabs, there is a final
// newline. Nothing here does I/O or imports config.
package templates
