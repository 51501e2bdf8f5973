package webui

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/skydesk/skydeskd/internal/cache"
	"github.com/skydesk/skydeskd/store"
)

// Sessions of the settings screen live in the store (store.Sessions), so
// they survive a restart and, on a shared database, every node sees them.
// The cookie holds only a random 256-bit id and the store only its
// SHA-256, so signing out or expiry ends a session at once (a signed
// cookie could not be revoked) and a copy of the database signs nobody
// in. Each session is bound to the account's credential generation at
// sign-in: a password, two-step or app-password change from anywhere (the
// settings screen, an admin command) ends it at its next request, one
// indexed read (GetSession). The session that made a change on this
// screen is re-bound to the new generation (RebindSession), and every
// other session of the account ends.
//
// What a session shows once or holds for minutes stays in this process's
// memory (scratch): the flash after a form (it can carry a new app
// password in clear) and a two-step secret awaiting its confirming code.
// Neither may reach the disk or a backup, and losing them on a restart
// costs a message or a restarted setup, nothing more. Several nodes need
// sticky routing for the few seconds between a form and the page it
// redirects to, or these kept encrypted under a key derived from the
// cookie's id, which the store never sees.
const (
	// sessionCookie: the __Host- prefix makes browsers refuse it unless
	// it is Secure, host-only and Path=/ (RFC 6265bis §4.1.3.2).
	sessionCookie = "__Host-skydesk-session"
	// preCookie binds the sign-in form's CSRF token before there is a
	// session.
	preCookie = "__Host-skydesk-pre"
	// maxScratch bounds the in-memory flashes and pending secrets; the
	// stalest go first.
	maxScratch = 50_000
	// touchEvery is how stale the stored last-seen time may get before a
	// request writes it again: a page view is then one read, and the
	// idle timeout is kept to this much.
	touchEvery = time.Minute
	// reauthAge: creating an app password or turning two-step
	// verification off needs a sign-in (or re-authentication) at most
	// this old, or the password again (reauth.go).
	reauthAge = 10 * time.Minute
)

// sessionLimits bound the sessions table: signing in again and again
// cannot fill the disk. An owner with more devices than PerAccount loses
// the session seen longest ago.
var sessionLimits = store.SessionLimits{PerAccount: 20, Total: 100_000}

// flash is shown on the next page view once, then dropped (post/redirect/
// get keeps a reload from repeating a change).
type flash struct {
	saved     []string
	errKey    string
	newApp    string
	newSecret string
	// twoStep and twoStepErr are the two-step section's own outcome
	// (catalogue keys), shown next to its forms; arg fills a %d in
	// twoStepErr (tries left, minutes locked).
	twoStep, twoStepErr string
	arg                 int
}

// scratch is what a session keeps in memory only (see above).
type scratch struct {
	flash *flash
	// enrol is the two-step enrolment waiting for its confirming code
	// (twostep.go); at most one per session.
	enrol *enrolment
	seen  time.Time
}

// signedIn is a live session as a request sees it.
type signedIn struct {
	id        string // the cookie value: binds the CSRF tokens
	key       store.SessionKey
	address   string
	accountID int64
	gen       int64     // the credential generation it is bound to
	authAt    time.Time // sign-in or last re-authentication
}

type sessionStore struct {
	db        store.Sessions
	idle, max time.Duration
	now       func() time.Time

	mu sync.Mutex
	m  *cache.Cache[store.SessionKey, *scratch] // under mu: entries are changed in place
}

func newSessionStore(db store.Sessions, idle, max time.Duration, now func() time.Time) *sessionStore {
	return &sessionStore{db: db, m: cache.New[store.SessionKey, *scratch](maxScratch, now), idle: idle, max: max, now: now}
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// sessionKey is how the store knows the session with cookie value id.
func sessionKey(id string) store.SessionKey { return sha256.Sum256([]byte(id)) }

// create starts a session for acc bound to credential generation gen (read
// before the password was checked, so a change racing the sign-in leaves
// the new session stale, never the reverse) and returns its id. A fresh
// id at every sign-in prevents session fixation. Expired sessions are
// swept here: sign-ins are rare and each costs a password hash anyway.
func (s *sessionStore) create(ctx context.Context, acc store.Account, gen int64) (string, error) {
	now := s.now()
	if _, err := s.db.ExpireSessions(ctx, now.Add(-s.idle), now.Add(-s.max)); err != nil {
		return "", err
	}
	id := randomToken()
	err := s.db.CreateSession(ctx, store.WebSession{Key: sessionKey(id), AccountID: acc.ID, Generation: gen,
		Created: now, Seen: now, AuthAt: now}, sessionLimits)
	if err != nil {
		return "", err
	}
	return id, nil
}

// get returns the live session of cookie value id: ok is false when there
// is none, it expired, or a credential change happened since it was bound
// (then it is deleted). The idle timer is refreshed at most every
// touchEvery.
func (s *sessionStore) get(ctx context.Context, id string) (signedIn, bool, error) {
	key := sessionKey(id)
	ws, err := s.db.GetSession(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		s.dropScratch(key)
		return signedIn{}, false, nil
	}
	if err != nil {
		return signedIn{}, false, err
	}
	now := s.now()
	if !ws.Current() || now.Sub(ws.Seen) > s.idle || now.Sub(ws.Created) > s.max {
		return signedIn{}, false, s.delete(ctx, key)
	}
	if now.Sub(ws.Seen) >= touchEvery {
		if err := s.db.TouchSession(ctx, key, now); err != nil {
			return signedIn{}, false, err
		}
	}
	return signedIn{id: id, key: key, address: ws.Address, accountID: ws.AccountID, gen: ws.Generation, authAt: ws.AuthAt}, true, nil
}

// delete ends a session.
func (s *sessionStore) delete(ctx context.Context, key store.SessionKey) error {
	s.dropScratch(key)
	return s.db.DeleteSession(ctx, key)
}

// update changes the session's scratch under the lock, making it if
// needed.
func (s *sessionStore) update(key store.SessionKey, change func(*scratch)) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	x, ok := s.m.Get(key)
	if !ok {
		x = &scratch{}
	}
	x.seen = now
	change(x)
	// Kept as long as the session may idle: a full cache drops expired
	// scratch first, then one at random.
	s.m.Put(key, x, s.idle)
}

func (s *sessionStore) dropScratch(key store.SessionKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m.Delete(key)
}

func (s *sessionStore) setFlash(key store.SessionKey, f *flash) {
	s.update(key, func(x *scratch) { x.flash = f })
}

// takeFlash returns the pending flash and drops it.
func (s *sessionStore) takeFlash(key store.SessionKey) *flash {
	s.mu.Lock()
	defer s.mu.Unlock()
	x, _ := s.m.Get(key)
	if x == nil {
		return nil
	}
	f := x.flash
	x.flash = nil
	return f
}

// startEnrol keeps key pending in the session for enrolLifetime, replacing
// any earlier pending key.
func (s *sessionStore) startEnrol(id store.SessionKey, key store.TOTPKey) {
	expires := s.now().Add(enrolLifetime)
	s.update(id, func(x *scratch) { x.enrol = &enrolment{key: key, expires: expires} })
}

// pendingEnrol returns the session's pending key and how many wrong codes
// it still allows. An expired one is dropped.
func (s *sessionStore) pendingEnrol(id store.SessionKey) (key store.TOTPKey, left int, ok bool) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	x, _ := s.m.Get(id)
	if x == nil || x.enrol == nil {
		return store.TOTPKey{}, 0, false
	}
	if !now.Before(x.enrol.expires) {
		x.enrol = nil
		return store.TOTPKey{}, 0, false
	}
	return x.enrol.key, maxEnrolFailures - x.enrol.wrong, true
}

// enrolFailed counts a wrong confirming code for the pending key and
// reports whether that used up its tries (the key is then dropped).
func (s *sessionStore) enrolFailed(id store.SessionKey, key store.TOTPKey) (discarded bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	x, _ := s.m.Get(id)
	if x == nil || x.enrol == nil || x.enrol.key != key {
		return true
	}
	x.enrol.wrong++
	if x.enrol.wrong >= maxEnrolFailures {
		x.enrol = nil
		return true
	}
	return false
}

// endEnrol drops the pending key.
func (s *sessionStore) endEnrol(id store.SessionKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if x, _ := s.m.Get(id); x != nil {
		x.enrol = nil
	}
}

// csrfToken is HMAC-SHA256(secret, purpose, binding) where binding is the
// session id or the pre-session cookie: both are HttpOnly, so a page on
// another site can neither read nor compute the token (OWASP "signed
// double-submit cookie").
func (h *Handler) csrfToken(purpose, binding string) string {
	m := hmac.New(sha256.New, h.o.Secret)
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write([]byte(binding))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (h *Handler) checkCSRF(purpose, binding, token string) bool {
	if binding == "" || token == "" {
		return false
	}
	return hmac.Equal([]byte(h.csrfToken(purpose, binding)), []byte(token))
}

func setCookie(w http.ResponseWriter, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

func cookieValue(r *http.Request, name string) string {
	ck, err := r.Cookie(name)
	if err != nil || len(ck.Value) > 128 {
		return ""
	}
	return ck.Value
}

// current returns the signed-in session, if any. err is a failure of the
// store.
func (h *Handler) current(r *http.Request) (s signedIn, ok bool, err error) {
	id := cookieValue(r, sessionCookie)
	if id == "" {
		return signedIn{}, false, nil
	}
	return h.sessions.get(r.Context(), id)
}
