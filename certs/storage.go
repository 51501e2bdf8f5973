package certs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
)

// Backend is where Storage keeps its data: keyed values and named locks
// with an expiry, shared by every node. *store.CertStore implements it on
// SQLite (a PostgreSQL driver implements the same methods).
type Backend interface {
	Put(ctx context.Context, key string, value []byte) error
	// Get and Stat return an error matching fs.ErrNotExist for a missing key.
	Get(ctx context.Context, key string) ([]byte, error)
	Stat(ctx context.Context, key string) (size int64, modified time.Time, err error)
	// Delete removes key and every key under "key/".
	Delete(ctx context.Context, key string) error
	// Keys lists every key under "prefix/" (all depths; "" = all), sorted.
	Keys(ctx context.Context, prefix string) ([]string, error)
	// TryLock takes name for owner until ttl from now if it is free,
	// expired or owner's already, and reports whether owner holds it.
	TryLock(ctx context.Context, name, owner string, ttl time.Duration) (bool, error)
	ExtendLock(ctx context.Context, name, owner string, ttl time.Duration) error
	Unlock(ctx context.Context, name, owner string) error
}

// Lock timing: a held lock is extended every lockTTL/3, so it expires
// lockTTL after its holder dies; a waiter polls between lockPollMin and
// lockPollMax.
const (
	lockTTL     = 2 * time.Minute
	lockPollMin = 100 * time.Millisecond
	lockPollMax = 2 * time.Second
)

// Storage is a certmagic.Storage on a Backend. Every lock taken gets its
// own owner token (this Storage's random id and a counter): certmagic
// relies on a lock excluding other goroutines of the same process too
// (one account registration, one order per name), not only other nodes.
type Storage struct {
	b     Backend
	owner string

	mu   sync.Mutex
	seq  uint64
	held map[string]heldLock // lock name → its token and keep-alive
}

type heldLock struct {
	token string
	stop  context.CancelFunc
}

var (
	_ certmagic.Storage          = (*Storage)(nil)
	_ certmagic.TryLocker        = (*Storage)(nil)
	_ certmagic.LockLeaseRenewer = (*Storage)(nil)
)

// NewStorage returns a Storage on b with a fresh random lock owner id.
func NewStorage(b Backend) *Storage {
	id := make([]byte, 12)
	_, _ = rand.Read(id)
	return &Storage{b: b, owner: hex.EncodeToString(id), held: map[string]heldLock{}}
}

// Store implements certmagic.Storage.
func (s *Storage) Store(ctx context.Context, key string, value []byte) error {
	return s.b.Put(ctx, key, value)
}

// Load implements certmagic.Storage.
func (s *Storage) Load(ctx context.Context, key string) ([]byte, error) {
	return s.b.Get(ctx, key)
}

// Delete implements certmagic.Storage.
func (s *Storage) Delete(ctx context.Context, key string) error {
	return s.b.Delete(ctx, key)
}

// Exists implements certmagic.Storage: key is a value or a "directory".
func (s *Storage) Exists(ctx context.Context, key string) bool {
	_, err := s.Stat(ctx, key)
	return err == nil
}

// List implements certmagic.Storage. Non-recursive lists the immediate
// children of path, "directories" included, as certmagic's FileStorage
// does.
func (s *Storage) List(ctx context.Context, path string, recursive bool) ([]string, error) {
	path = strings.TrimSuffix(path, "/")
	keys, err := s.b.Keys(ctx, path)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s: %w", path, fs.ErrNotExist)
	}
	if recursive {
		return withDirs(path, keys), nil
	}
	seen := map[string]bool{}
	var out []string
	for _, k := range keys {
		rest := strings.TrimPrefix(k, prefixOf(path))
		child := prefixOf(path) + strings.SplitN(rest, "/", 2)[0]
		if !seen[child] {
			seen[child] = true
			out = append(out, child)
		}
	}
	return out, nil
}

// withDirs adds the intermediate "directories" under path to keys, as a
// recursive directory walk would list them.
func withDirs(path string, keys []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, k := range keys {
		rest := strings.TrimPrefix(k, prefixOf(path))
		parts := strings.Split(rest, "/")
		for i := 1; i <= len(parts); i++ {
			p := prefixOf(path) + strings.Join(parts[:i], "/")
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	sort.Strings(out)
	return out
}

func prefixOf(path string) string {
	if path == "" {
		return ""
	}
	return path + "/"
}

// Stat implements certmagic.Storage.
func (s *Storage) Stat(ctx context.Context, key string) (certmagic.KeyInfo, error) {
	size, mod, err := s.b.Stat(ctx, key)
	if err == nil {
		return certmagic.KeyInfo{Key: key, Size: size, Modified: mod, IsTerminal: true}, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return certmagic.KeyInfo{}, err
	}
	keys, lerr := s.b.Keys(ctx, strings.TrimSuffix(key, "/"))
	if lerr != nil {
		return certmagic.KeyInfo{}, lerr
	}
	if len(keys) == 0 {
		return certmagic.KeyInfo{}, err
	}
	return certmagic.KeyInfo{Key: key, IsTerminal: false}, nil
}

// Lock implements certmagic.Locker: it waits until name is free or stale,
// or ctx ends.
func (s *Storage) Lock(ctx context.Context, name string) error {
	wait := lockPollMin
	for {
		ok, err := s.TryLock(ctx, name)
		if err != nil || ok {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("waiting for lock %s: %w", name, ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, lockPollMax)
	}
}

// TryLock implements certmagic.TryLocker. A taken lock is kept alive in the
// background until Unlock.
func (s *Storage) TryLock(ctx context.Context, name string) (bool, error) {
	s.mu.Lock()
	s.seq++
	token := s.owner + "-" + strconv.FormatUint(s.seq, 10)
	s.mu.Unlock()
	ok, err := s.b.TryLock(ctx, name, token, lockTTL)
	if err != nil || !ok {
		return false, err
	}
	kctx, cancel := context.WithCancel(context.Background())
	s.mu.Lock()
	if old, ok := s.held[name]; ok {
		old.stop() // its lease expired and this call took the lock over
	}
	s.held[name] = heldLock{token: token, stop: cancel}
	s.mu.Unlock()
	go s.keepAlive(kctx, name, token)
	return true, nil
}

// keepAlive extends a held lock every lockTTL/3, so a long order (ACME
// retries) keeps it while a crashed holder's lock goes stale.
func (s *Storage) keepAlive(ctx context.Context, name, token string) {
	t := time.NewTicker(lockTTL / 3)
	defer t.Stop()
	for ctx.Err() == nil {
		select {
		case <-ctx.Done(): // unlocked
		case <-t.C:
			if err := s.b.ExtendLock(ctx, name, token, lockTTL); err != nil {
				return // lost or failing: the next Unlock is harmless
			}
		}
	}
}

// RenewLockLease implements certmagic.LockLeaseRenewer.
func (s *Storage) RenewLockLease(ctx context.Context, name string, lease time.Duration) error {
	s.mu.Lock()
	h, ok := s.held[name]
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("renewing lock %s: not held here", name)
	}
	return s.b.ExtendLock(ctx, name, h.token, max(lease, lockTTL))
}

// Unlock implements certmagic.Locker.
func (s *Storage) Unlock(ctx context.Context, name string) error {
	s.mu.Lock()
	h, ok := s.held[name]
	delete(s.held, name)
	s.mu.Unlock()
	if !ok {
		return nil
	}
	h.stop()
	return s.b.Unlock(ctx, name, h.token)
}

// String names the storage in certmagic's logs.
func (s *Storage) String() string { return "skydeskd store" }
