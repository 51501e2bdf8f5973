package smtpd

import (
	"errors"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/skydesk/skydeskd/store"
)

// loginServer is the non-standard but ubiquitous LOGIN mechanism
// (draft-murchison-sasl-login): "Username:" then "Password:" challenges.
// Evolution maps "password-cleartext" to AUTH LOGIN (REFERENCE §5.1);
// Outlook and many phones use it too. go-sasl ships only the client side.
type loginServer struct {
	check    func(username, password string) error
	username string
	step     int
}

var _ sasl.Server = (*loginServer)(nil)

// maxCredential bounds each LOGIN answer (RFC 4954 line limits keep the
// base64 line short anyway).
const maxCredential = 1024

func (l *loginServer) Next(response []byte) (challenge []byte, done bool, err error) {
	switch l.step {
	case 0:
		l.step = 1
		if response == nil {
			// No initial response: ask for the user name.
			return []byte("Username:"), false, nil
		}
		fallthrough
	case 1:
		if len(response) > maxCredential {
			return nil, true, errBadCredentialLength
		}
		l.username = string(response)
		l.step = 2
		return []byte("Password:"), false, nil
	case 2:
		l.step = 3
		if len(response) > maxCredential {
			return nil, true, errBadCredentialLength
		}
		return nil, true, l.check(l.username, string(response))
	}
	return nil, true, sasl.ErrUnexpectedClientResponse
}

var errBadCredentialLength = smtpErr(500, smtp.EnhancedCode{5, 5, 6}, "Authentication exchange line is too long")

func asAuthError(err error) (*store.AuthError, bool) {
	var ae *store.AuthError
	ok := errors.As(err, &ae)
	return ae, ok
}

// saslErrors keeps go-sasl's own error texts ("sasl: invalid response")
// off the wire: go-smtp would write them after a 454.
type saslErrors struct{ sasl.Server }

func (w saslErrors) Next(response []byte) ([]byte, bool, error) {
	c, done, err := w.Server.Next(response)
	if err != nil {
		var se *smtp.SMTPError
		if !errors.As(err, &se) {
			err = errMalformedAuth
		}
	}
	return c, done, err
}

var errMalformedAuth = smtpErr(501, smtp.EnhancedCode{5, 5, 2}, "Malformed authentication data")
