package config

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Certificate is the service certificate: the TLS listeners present it and
// Apple profiles are signed with it (with its chain).
type Certificate struct {
	TLS   tls.Certificate
	Leaf  *x509.Certificate
	Chain []*x509.Certificate // intermediates, leaf excluded
	Key   crypto.Signer
	// CertFile is the PEM file the certificate was read from, for tests and
	// operators (`openssl cms -verify -CAfile`).
	CertFile string
}

// File names of the generated self-signed certificate in the data directory.
const (
	SelfSignedCert = "tls-cert.pem"
	SelfSignedKey  = "tls-key.pem"
)

// LoadCertificate reads the configured certificate files or, with none
// configured, makes a self-signed ECDSA P-256 certificate once in the data
// directory (for the service names plus localhost and 127.0.0.1) and reuses
// it on later starts.
func (c *Config) LoadCertificate() (*Certificate, error) {
	certFile, keyFile := c.TLS.CertFile, c.TLS.KeyFile
	if certFile == "" {
		certFile = filepath.Join(c.DataDir, SelfSignedCert)
		keyFile = filepath.Join(c.DataDir, SelfSignedKey)
		if _, err := os.Stat(certFile); errors.Is(err, os.ErrNotExist) {
			names := append(c.ServiceHosts(), c.TLS.ExtraNames...)
			names = append(names, c.SMTP.Hostname, "localhost")
			if err := writeSelfSigned(certFile, keyFile, dedupe(names)); err != nil {
				return nil, fmt.Errorf("making self-signed certificate: %w", err)
			}
		}
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("loading certificate: %w", err)
	}
	cert := &Certificate{TLS: pair, CertFile: certFile}
	for i, der := range pair.Certificate {
		x, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("parsing certificate: %w", err)
		}
		if i == 0 {
			cert.Leaf = x
		} else {
			cert.Chain = append(cert.Chain, x)
		}
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, errors.New("loading certificate: private key cannot sign")
	}
	cert.Key = signer
	cert.TLS.Leaf = cert.Leaf
	return cert, nil
}

// ServerTLS returns the TLS configuration for every listener: TLS 1.2 or
// later (RFC 8314 §4.1).
func (c *Certificate) ServerTLS() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{c.TLS},
	}
}

func writeSelfSigned(certFile, keyFile string, names []string) error {
	if err := os.MkdirAll(filepath.Dir(certFile), 0o700); err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: names[0], Organization: []string{"skydeskd self-signed"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(2, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageEmailProtection},
		BasicConstraintsValid: true,
		IsCA:                  true, // self-signed: lets clients pin it as a CA (openssl -CAfile)
		DNSNames:              names,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	// Key first, with a temporary name, so a crash never leaves a certificate
	// without its key.
	if err := writeFileAtomic(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	return writeFileAtomic(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
