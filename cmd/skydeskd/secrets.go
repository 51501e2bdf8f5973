package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/skydesk/skydeskd/certs"
)

// The service's own secrets: the CSRF key of the settings pages
// (web-secret) and the SRS key of forwarding (srs-key, smtpd/forward.go).
// Every node sharing the database must hold the same ones: behind a
// balancer a form one node served is posted to another, and a bounce to
// an address one node rewrote reaches another's MX. So they live in the
// database, in the blob storage ACME uses (its private keys are there
// already), under secretPrefix, and are made once, under a lock, by the
// first process that needs them. An earlier version kept each in a file
// of the same name in the data directory: that file's value is taken
// over, so the tokens and SRS addresses it made stay valid.
var sharedSecrets = []string{"web-secret", "srs-key"}

const (
	// secretPrefix is the blob storage key prefix of the secrets; no
	// ACME key starts with it (certmagic uses "acme", "certificates",
	// "ocsp").
	secretPrefix = "skydeskd-secrets"
	secretLen    = 32
)

// loadSecrets reads (or makes) every shared secret into a.secrets.
func (a *app) loadSecrets(ctx context.Context) error {
	st := certs.NewStorage(a.store.CertBackend())
	a.secrets = map[string][]byte{}
	for _, name := range sharedSecrets {
		v, err := sharedSecret(ctx, st, a.cfg.DataDir, name)
		if err != nil {
			return fmt.Errorf("secret %s: %w", name, err)
		}
		a.secrets[name] = v
	}
	return nil
}

// secret returns the shared secret name (one of sharedSecrets).
func (a *app) secret(name string) []byte { return a.secrets[name] }

// sharedSecret returns the stored secret name, storing it first if there
// is none: the data directory's file of that name if one is there, else
// random bytes. The lock makes two nodes starting at once agree.
func sharedSecret(ctx context.Context, st *certs.Storage, dataDir, name string) ([]byte, error) {
	key := secretPrefix + "/" + name
	if v, err := st.Load(ctx, key); err == nil && len(v) == secretLen {
		return v, nil
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err := st.Lock(ctx, key); err != nil {
		return nil, err
	}
	defer func() { _ = st.Unlock(context.WithoutCancel(ctx), key) }()
	if v, err := st.Load(ctx, key); err == nil && len(v) == secretLen {
		return v, nil // another node made it while this one waited
	}
	v, err := os.ReadFile(filepath.Join(dataDir, name))
	if err != nil || len(v) < secretLen {
		v = make([]byte, secretLen)
		_, _ = rand.Read(v) // crypto/rand.Read never fails (Go 1.24+)
	}
	v = v[:secretLen]
	if err := st.Store(ctx, key, v); err != nil {
		return nil, err
	}
	return v, nil
}
