package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"

	"golang.org/x/crypto/argon2"
)

// HashParams are argon2id parameters (RFC 9106).
type HashParams struct {
	Time    uint32
	Memory  uint32 // KiB
	Threads uint8
}

// DefaultHashParams follow OWASP's argon2id minimum (19 MiB, t=2, p=1):
// tens of milliseconds per verification by design. The verified-login
// cache keeps repeat POP logins cheap (DESIGN.md §7).
var DefaultHashParams = HashParams{Time: 2, Memory: 19 * 1024, Threads: 1}

// TestHashParams are cheap parameters for tests only.
var TestHashParams = HashParams{Time: 1, Memory: 64, Threads: 1}

var b64 = base64.RawStdEncoding

// hashSlots bounds the argon2id computations running at once, across the
// process, to the number of CPUs Go uses. Each takes Memory KiB (19 MiB by
// default) and a core for tens of milliseconds, and a failed login is
// counted by the throttle only after its hash: without a bound, N logins
// arriving together (a flood of guesses over many connections) would take
// N × 19 MiB and every core, starving POP, SMTP and HTTP answers. More
// slots than CPUs would not verify faster anyway. Dovecot bounds its auth
// workers the same way (auth_worker_max_count).
var hashSlots = make(chan struct{}, max(2, runtime.GOMAXPROCS(0)))

// hashWaiting counts the computations waiting for a hash slot.
var hashWaiting atomic.Int64

// HashSlots reports the argon2id computations running and waiting for one
// of the process's slots, and the number of slots (for metrics: a queue
// that stays long is a login storm, or too few CPUs for the logins).
func HashSlots() (running, waiting, slots int) {
	return len(hashSlots), int(hashWaiting.Load()), cap(hashSlots)
}

// argon2id computes an argon2id key in one of the hashSlots, waiting for
// one as long as ctx allows.
func argon2id(ctx context.Context, password string, salt []byte, p HashParams, n uint32) ([]byte, error) {
	hashWaiting.Add(1)
	select {
	case hashSlots <- struct{}{}:
		hashWaiting.Add(-1)
	case <-ctx.Done():
		hashWaiting.Add(-1)
		return nil, fmt.Errorf("waiting to hash a password: %w", ctx.Err())
	}
	defer func() { <-hashSlots }()
	return argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, n), nil
}

// newSalt returns 16 random bytes, the salt of every stored hash.
func newSalt() ([]byte, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return nil, fmt.Errorf("reading salt: %w", err)
	}
	return salt, nil
}

// hashPassword returns a PHC-format argon2id string with a random salt:
// $argon2id$v=19$m=…,t=…,p=…$salt$hash.
func hashPassword(ctx context.Context, p HashParams, password string) (string, error) {
	salt, err := newSalt()
	if err != nil {
		return "", err
	}
	key, err := argon2id(ctx, password, salt, p, 32)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

var errBadHash = errors.New("malformed password hash")

// verifyPassword compares in constant time (crypto/subtle). An error is
// a malformed hash (errBadHash) or ctx ending while it waits for a slot.
func verifyPassword(ctx context.Context, encoded, password string) (bool, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, errBadHash
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return false, errBadHash
	}
	var p HashParams
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return false, errBadHash
	}
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return false, errBadHash
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil || len(want) == 0 {
		return false, errBadHash
	}
	got, err := argon2id(ctx, password, salt, p, uint32(len(want)))
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// App passwords are 16 letters drawn uniformly from 26 (about 75 bits),
// not chosen by people: guessing one offline from its hash is out of
// reach whatever the hash costs, so a slow hash would only make every
// login with one (and every wrong 16-letter guess, once per app password
// of the account) cost tens of milliseconds and 19 MiB. They are stored
// as a salted SHA-256, as services store random API tokens:
// $sha256$salt$hash. Hashes made before are argon2id and still verify.
const appHashPrefix = "$sha256$"

// hashAppSecret hashes a normalized app password secret.
func hashAppSecret(secret string) (string, error) {
	salt, err := newSalt()
	if err != nil {
		return "", err
	}
	sum := appSum(salt, secret)
	return appHashPrefix + b64.EncodeToString(salt) + "$" + b64.EncodeToString(sum[:]), nil
}

func appSum(salt []byte, secret string) [sha256.Size]byte {
	h := sha256.New()
	h.Write(salt)
	h.Write([]byte(secret))
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

// verifyAppSecret checks secret against an app password hash of either
// form, in constant time. An error is a malformed hash (errBadHash), or
// ctx ending while an argon2id one waits for a slot.
func verifyAppSecret(ctx context.Context, encoded, secret string) (bool, error) {
	rest, ok := strings.CutPrefix(encoded, appHashPrefix)
	if !ok {
		return verifyPassword(ctx, encoded, secret)
	}
	saltB64, sumB64, ok := strings.Cut(rest, "$")
	if !ok {
		return false, errBadHash
	}
	salt, err := b64.DecodeString(saltB64)
	if err != nil {
		return false, errBadHash
	}
	want, err := b64.DecodeString(sumB64)
	if err != nil || len(want) != sha256.Size {
		return false, errBadHash
	}
	got := appSum(salt, secret)
	return subtle.ConstantTimeCompare(got[:], want) == 1, nil
}
