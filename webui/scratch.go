package webui

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/skydesk/skydeskd/store"
)

// A session's scratch is what it shows once or holds for minutes: the
// flash after a form (which can carry a new app password in clear) and a
// two-step secret awaiting its confirming code. It is kept in the store
// next to the session (store.Sessions PutScratch …), so behind a
// round-robin balancer the page a form redirects to, or the form that
// confirms a code, may be served by any node: no sticky routing.
//
// Why the store, and not the other two ways to need no stickiness:
//   - Rendering one-time results in the POST response itself gives up
//     post/redirect/get (a reload posts the form again: a second app
//     password), and the pending two-step secret must outlive its request
//     anyway, to be confirmed by a later one on any node.
//   - A sealed cookie is held, and can be replayed, by the browser: the
//     store could not make the new app password "shown once" nor hold an
//     enrolment to maxEnrolFailures wrong codes (a replayed cookie brings
//     both back), and the app password would travel with every request
//     until its cookie expired.
//
// Sealing: AES-256-GCM under a key derived (HKDF-SHA256, RFC 5869) from
// the shared web secret and the session id of the cookie. The store keeps
// only SHA-256 of that id, and the web secret itself lives in the
// database (cmd/skydeskd/secrets.go), so a key from the secret alone
// would not protect a dump: with the id in it, a copy of the database (a
// backup, a replica, a dump) opens no entry, and a node opens one only
// while serving the browser that holds the cookie. The additional data
// binds an entry to its kind, its session and the credential generation
// the session was bound to: an entry of another session, or of this one
// before a credential change, does not open. The flash is taken (read
// and deleted in one statement) by the next view on whichever node, so it
// is shown once, and expires after flashLifetime unread; a pending secret
// lives enrolLifetime and counts its wrong codes in the store, so every
// node shares the one limit. Entries end with their session.
const (
	scratchFlash = "flash"
	scratchEnrol = "enrol"
	// flashLifetime bounds how long a flash waits for the view its
	// redirect leads to, normally within a second.
	flashLifetime = 2 * time.Minute
	// scratchInfo is the HKDF info prefix: the scratch keys are no other
	// keys derived from the web secret (the CSRF tokens are plain HMACs).
	scratchInfo = "skydeskd web scratch v1\x00"
)

// errScratchOpen is an entry that does not open: sealed for another
// session or generation, or altered.
var errScratchOpen = errors.New("scratch entry does not open")

// flashWire is a flash as it is sealed.
type flashWire struct {
	Saved      []string `json:"saved,omitempty"`
	Err        string   `json:"err,omitempty"`
	NewApp     string   `json:"newApp,omitempty"`
	NewSecret  string   `json:"newSecret,omitempty"`
	TwoStep    string   `json:"twoStep,omitempty"`
	TwoStepErr string   `json:"twoStepErr,omitempty"`
	Arg        int      `json:"arg,omitempty"`
}

// enrolWire is a pending two-step enrolment as it is sealed; Expires is
// exact (the store keeps its copy to the second).
type enrolWire struct {
	URL     string    `json:"url"`
	Secret  string    `json:"secret"`
	Expires time.Time `json:"expires"`
}

// pending is the session's enrolment as a request reads it: sealed names
// the entry for counting a wrong code (store.Sessions FailScratch).
type pending struct {
	key    store.TOTPKey
	left   int
	sealed []byte
}

// aead is the scratch cipher of the session with cookie value id.
func (s *sessionStore) aead(id string) (cipher.AEAD, error) {
	k, err := hkdf.Key(sha256.New, s.secret, nil, scratchInfo+id, 32)
	if err != nil {
		return nil, err
	}
	b, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	// A random 96-bit nonce per entry: a session seals a handful.
	return cipher.NewGCMWithRandomNonce(b)
}

// scratchAD is the additional data binding an entry to kind, its session
// and the credential generation the session is bound to.
func scratchAD(si signedIn, kind string) []byte {
	ad := append([]byte(kind), 0)
	ad = append(ad, si.key[:]...)
	return binary.BigEndian.AppendUint64(ad, uint64(si.gen))
}

// put seals v and stores it as the session's entry of kind until expires.
func (s *sessionStore) put(ctx context.Context, si signedIn, kind string, v any, expires time.Time) error {
	plain, err := json.Marshal(v)
	if err != nil {
		return err
	}
	a, err := s.aead(si.id)
	if err != nil {
		return err
	}
	sealed := a.Seal(nil, nil, plain, scratchAD(si, kind))
	// The store keeps seconds: round up, so it never drops an entry
	// before its time.
	if t := expires.Truncate(time.Second); t.Before(expires) {
		expires = t.Add(time.Second)
	}
	return s.db.PutScratch(ctx, si.key, kind, sealed, expires)
}

// open opens an entry of kind into v.
func (s *sessionStore) open(si signedIn, kind string, sealed []byte, v any) error {
	a, err := s.aead(si.id)
	if err != nil {
		return err
	}
	plain, err := a.Open(nil, nil, sealed, scratchAD(si, kind))
	if err != nil {
		return errScratchOpen
	}
	return json.Unmarshal(plain, v)
}

// setFlash keeps f for the session's next view (nil keeps nothing).
func (s *sessionStore) setFlash(ctx context.Context, si signedIn, f *flash) error {
	if f == nil {
		return s.db.DeleteScratch(ctx, si.key, scratchFlash)
	}
	w := flashWire{Saved: f.saved, Err: f.errKey, NewApp: f.newApp, NewSecret: f.newSecret,
		TwoStep: f.twoStep, TwoStepErr: f.twoStepErr, Arg: f.arg}
	return s.put(ctx, si, scratchFlash, w, s.now().Add(flashLifetime))
}

// takeFlash returns the pending flash, if any, and deletes it: of two
// views racing for it, on any nodes, one shows it. One that does not open
// is dropped unshown.
func (s *sessionStore) takeFlash(ctx context.Context, si signedIn) (*flash, error) {
	sc, err := s.db.TakeScratch(ctx, si.key, scratchFlash, s.now())
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var w flashWire
	if err := s.open(si, scratchFlash, sc.Sealed, &w); errors.Is(err, errScratchOpen) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("opening flash: %w", err)
	}
	return &flash{saved: w.Saved, errKey: w.Err, newApp: w.NewApp, newSecret: w.NewSecret,
		twoStep: w.TwoStep, twoStepErr: w.TwoStepErr, arg: w.Arg}, nil
}

// startEnrol keeps key pending in the session for enrolLifetime,
// replacing any earlier pending key and its count of wrong codes.
func (s *sessionStore) startEnrol(ctx context.Context, si signedIn, key store.TOTPKey) error {
	expires := s.now().Add(enrolLifetime)
	return s.put(ctx, si, scratchEnrol, enrolWire{URL: key.URL, Secret: key.Secret, Expires: expires}, expires)
}

// pendingEnrol returns the session's pending enrolment; ok is false when
// there is none. One that expired or does not open (the session was
// re-bound by a credential change since) is dropped.
func (s *sessionStore) pendingEnrol(ctx context.Context, si signedIn) (p pending, ok bool, err error) {
	now := s.now()
	sc, err := s.db.GetScratch(ctx, si.key, scratchEnrol, now)
	if errors.Is(err, store.ErrNotFound) {
		return pending{}, false, nil
	}
	if err != nil {
		return pending{}, false, err
	}
	var w enrolWire
	err = s.open(si, scratchEnrol, sc.Sealed, &w)
	if err != nil && !errors.Is(err, errScratchOpen) {
		return pending{}, false, fmt.Errorf("opening two-step enrolment: %w", err)
	}
	if err != nil || !now.Before(w.Expires) || sc.Failures >= maxEnrolFailures {
		return pending{}, false, s.endEnrol(ctx, si)
	}
	return pending{key: store.TOTPKey{URL: w.URL, Secret: w.Secret}, left: maxEnrolFailures - sc.Failures, sealed: sc.Sealed}, true, nil
}

// enrolFailed counts a wrong confirming code for p and returns how many
// tries are left; at 0 the key is dropped (also when another request
// replaced or dropped it meanwhile).
func (s *sessionStore) enrolFailed(ctx context.Context, si signedIn, p pending) (left int, err error) {
	n, err := s.db.FailScratch(ctx, si.key, scratchEnrol, p.sealed)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if n >= maxEnrolFailures {
		return 0, s.endEnrol(ctx, si)
	}
	return maxEnrolFailures - n, nil
}

// endEnrol drops the pending key.
func (s *sessionStore) endEnrol(ctx context.Context, si signedIn) error {
	return s.db.DeleteScratch(ctx, si.key, scratchEnrol)
}
