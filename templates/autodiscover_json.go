package templates

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// ProtocolAutodiscoverV1 is the only Autodiscover v2 protocol offered: it
// points the client at the POX endpoint (REFERENCE §2.6).
const ProtocolAutodiscoverV1 = "AutodiscoverV1"

// maxEchoedProtocol bounds how much of a client's Protocol value is echoed
// back in an error.
const maxEchoedProtocol = 64

type jsonV2 struct {
	Protocol string `json:"Protocol"`
	URL      string `json:"Url"`
}

type jsonV2Error struct {
	ErrorCode    string `json:"ErrorCode"`
	ErrorMessage string `json:"ErrorMessage"`
}

// AutodiscoverJSON renders the v2 answer for Protocol=AutodiscoverV1:
// {"Protocol":"AutodiscoverV1","Url":"https://HOST/autodiscover/autodiscover.xml"}
// where HOST is the provider's autodiscover host. Outlook then POSTs to
// that URL.
func AutodiscoverJSON(autodiscoverHost string) ([]byte, error) {
	if autodiscoverHost == "" {
		return nil, fmt.Errorf("autodiscover json: %w", ErrIncompleteProfile)
	}
	return marshalJSON(jsonV2{Protocol: ProtocolAutodiscoverV1,
		URL: "https://" + autodiscoverHost + "/autodiscover/autodiscover.xml"})
}

// AutodiscoverJSONInvalidProtocol renders mailcow's/Microsoft's answer to
// any other Protocol value (sent with HTTP 400). The value is truncated and
// JSON-escaped (encoding/json also escapes <, > and &).
func AutodiscoverJSONInvalidProtocol(protocol string) ([]byte, error) {
	if len(protocol) > maxEchoedProtocol {
		protocol = protocol[:maxEchoedProtocol]
		for !utf8.ValidString(protocol) {
			protocol = protocol[:len(protocol)-1]
		}
	}
	return marshalJSON(jsonV2Error{ErrorCode: "InvalidProtocol",
		ErrorMessage: "The given protocol value '" + protocol + "' is invalid. Supported values are '" + ProtocolAutodiscoverV1 + "'"})
}

// AutodiscoverJSONError renders a v2 error with a fixed code and message
// (e.g. "InvalidUser" for a malformed address, "NotFound" for a domain
// not hosted).
func AutodiscoverJSONError(code, message string) ([]byte, error) {
	return marshalJSON(jsonV2Error{ErrorCode: code, ErrorMessage: message})
}

func marshalJSON(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encoding json: %w", err)
	}
	return append(b, '\n'), nil
}
