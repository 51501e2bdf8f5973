package store

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The functions below are the account rules a store driver applies when
// it writes credentials, exported so that every driver (SQLite here,
// PostgreSQL in its own package) stores the same hashes, secrets and
// snapshots and refuses the same input; the conformance suite checks the
// results through the interfaces.

// HashPassword checks an account password against the policy (ErrBadPassword)
// and returns its PHC-format argon2id hash.
func HashPassword(ctx context.Context, p HashParams, password string) (string, error) {
	if err := checkPassword(password); err != nil {
		return "", err
	}
	return hashPassword(ctx, p, password)
}

// NewAppPassword checks an app-password name (ErrBadName) and returns the
// trimmed name, a new secret (shown once, four groups of four letters) and
// the hash to store.
func NewAppPassword(name string) (trimmed, secret, hash string, err error) {
	if err := checkAppName(name); err != nil {
		return "", "", "", err
	}
	if secret, err = newAppSecret(); err != nil {
		return "", "", "", err
	}
	if hash, err = hashAppSecret(normalizeAppSecret(secret)); err != nil {
		return "", "", "", err
	}
	return strings.TrimSpace(name), secret, hash, nil
}

// GenerateTOTP makes a new authenticator secret for a normalised address
// under issuer ("" means DefaultTOTPIssuer).
func GenerateTOTP(issuer, address string) (TOTPKey, error) {
	return generateTOTP(issuer, address)
}

// MatchTOTP returns the time step within ±1 of now whose code is code,
// skipping steps at or before last (-1: none accepted yet): ConfirmTOTP's
// check before a driver stores the secret and the step.
func MatchTOTP(secret, code string, now time.Time, last int64) (step int64, ok bool) {
	return matchTOTP(secret, code, now, last)
}

// NewDomainSnapshot builds the snapshot a driver's Domains returns.
func NewDomainSnapshot(serial uint32, names []string) *DomainSnapshot {
	snap := &DomainSnapshot{Serial: serial, set: make(map[string]bool, len(names)), list: append([]string(nil), names...)}
	sort.Strings(snap.list)
	for _, n := range names {
		snap.set[n] = true
	}
	return snap
}

// PollDomains calls d.RefreshDomains every interval until ctx ends, so a
// domain added by another process (an admin command, another node) is
// answered without a restart; onErr, if set, hears each failure.
func PollDomains(ctx context.Context, d interface {
	RefreshDomains(context.Context) (bool, error)
}, interval time.Duration, onErr func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := d.RefreshDomains(ctx); err != nil && ctx.Err() == nil && onErr != nil {
				onErr(err)
			}
		}
	}
}

// Migration is one embedded schema migration, NNNN_name.sql.
type Migration struct {
	Version int
	Name    string // the file's base name
	SQL     string
}

// ReadMigrations returns the files matching glob in fsys (NNNN_name.sql),
// in version order: each driver embeds its own dialect's files and
// applies them, each in a transaction with its version recorded.
func ReadMigrations(fsys fs.FS, glob string) ([]Migration, error) {
	names, err := fs.Glob(fsys, glob)
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	out := make([]Migration, 0, len(names))
	for _, name := range names {
		base := path.Base(name)
		v, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
		if err != nil {
			return nil, fmt.Errorf("migration %s: bad version prefix", base)
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("migration %s: %w", base, err)
		}
		out = append(out, Migration{Version: v, Name: base, SQL: string(body)})
	}
	return out, nil
}
