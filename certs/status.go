package certs

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io/fs"
	"strings"
	"time"
)

// statusPrefix holds one JSON record per name with its last error, beside
// certmagic's keys in the same storage, so `skydeskd cert list` in another
// process (or on another node) sees why a name has no certificate.
const statusPrefix = "skydeskd/status"

type statusRecord struct {
	Error string    `json:"error"`
	At    time.Time `json:"at"`
}

func (m *Manager) recordError(ctx context.Context, name string, err error) {
	if err == nil {
		return
	}
	b, _ := json.Marshal(statusRecord{Error: err.Error(), At: time.Now().UTC()})
	if perr := m.opts.Backend.Put(ctx, statusPrefix+"/"+name, b); perr != nil {
		m.log.Warn("recording certificate error", "name", name, "err", perr)
	}
}

func (m *Manager) clearError(ctx context.Context, name string) {
	if err := m.opts.Backend.Delete(ctx, statusPrefix+"/"+name); err != nil {
		m.log.Warn("clearing certificate error", "name", name, "err", err)
	}
}

// Status is one managed name as `skydeskd cert list` shows it.
type Status struct {
	Name     string
	Issuer   string    // the issuing CA's common name; "" without a certificate
	NotAfter time.Time // zero without a certificate
	// LastError is the last pre-check or order failure since the last
	// success, with its time.
	LastError   string
	LastErrorAt time.Time
}

// Inspect reads the certificates and last errors of names from the
// storage, without a running Manager.
func Inspect(ctx context.Context, b Backend, names []string) ([]Status, error) {
	keys, err := b.Keys(ctx, "certificates")
	if err != nil {
		return nil, err
	}
	out := make([]Status, 0, len(names))
	for _, n := range names {
		st := Status{Name: n}
		for _, k := range keys {
			if !strings.HasSuffix(k, "/"+n+"/"+n+".crt") {
				continue
			}
			leaf, err := loadLeaf(ctx, b, k)
			if err != nil {
				return nil, err
			}
			if leaf != nil && leaf.NotAfter.After(st.NotAfter) {
				st.Issuer, st.NotAfter = issuerName(leaf), leaf.NotAfter
			}
		}
		raw, err := b.Get(ctx, statusPrefix+"/"+n)
		if err == nil {
			var rec statusRecord
			if json.Unmarshal(raw, &rec) == nil {
				st.LastError, st.LastErrorAt = rec.Error, rec.At
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

func loadLeaf(ctx context.Context, b Backend, key string) (*x509.Certificate, error) {
	raw, err := b.Get(ctx, key)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		return nil, nil
	}
	return x509.ParseCertificate(block.Bytes)
}

func issuerName(c *x509.Certificate) string {
	if c.Issuer.CommonName != "" {
		return c.Issuer.CommonName
	}
	return strings.Join(c.Issuer.Organization, ", ")
}
