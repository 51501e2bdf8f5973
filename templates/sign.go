package templates

import (
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/smallstep/pkcs7"
)

// Signer is the material a profile is signed with: the service
// certificate, its intermediates (leaf excluded) and its key. templates
// does not import config; the caller passes config.Certificate's fields.
type Signer struct {
	Cert  *x509.Certificate
	Chain []*x509.Certificate
	Key   crypto.Signer
}

// Sign wraps content in a DER CMS SignedData (RFC 5652) with the content
// attached, SHA-256, signed attributes (content type, message digest,
// signing time) and the certificate plus its chain in the certificates
// set. Apple shows such a profile as "Verified" when the chain reaches a
// trusted root (Apple DevForums 699960; REFERENCE §3.4). The signing time
// makes the output differ on every call: cache it, don't compare it.
func Sign(content []byte, s Signer) ([]byte, error) {
	if s.Cert == nil || s.Key == nil {
		return nil, errors.New("signing profile: no certificate or key")
	}
	sd, err := pkcs7.NewSignedData(content)
	if err != nil {
		return nil, fmt.Errorf("signing profile: %w", err)
	}
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	if err := sd.AddSignerChain(s.Cert, s.Key, s.Chain, pkcs7.SignerInfoConfig{}); err != nil {
		return nil, fmt.Errorf("signing profile: %w", err)
	}
	der, err := sd.Finish()
	if err != nil {
		return nil, fmt.Errorf("signing profile: %w", err)
	}
	return der, nil
}
