package webui

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"sync"
	"time"

	"github.com/skydesk/skydeskd/store"
)

// Sessions of the settings screen live in memory on the server: the
// cookie holds only a random 256-bit id, so signing out or expiry ends a
// session at once (a signed cookie could not be revoked), and a restart
// signs everyone out, which is acceptable for a settings page. A scale-out
// deployment must pin /settings to one replica or move this map to the
// store.
const (
	// sessionCookie: the __Host- prefix makes browsers refuse it unless
	// it is Secure, host-only and Path=/ (RFC 6265bis §4.1.3.2).
	sessionCookie = "__Host-skydesk-session"
	// preCookie binds the sign-in form's CSRF token before there is a
	// session.
	preCookie = "__Host-skydesk-pre"
	// maxSessions bounds memory; the stalest sessions go first.
	maxSessions = 50_000
)

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

type session struct {
	id      string
	address string
	created time.Time
	seen    time.Time
	flash   *flash
	// enrol is the two-step enrolment waiting for its confirming code
	// (twostep.go); at most one per session.
	enrol *enrolment
}

type sessionStore struct {
	mu        sync.Mutex
	m         map[string]*session
	idle, max time.Duration
	now       func() time.Time
}

func newSessionStore(idle, max time.Duration, now func() time.Time) *sessionStore {
	return &sessionStore{m: map[string]*session{}, idle: idle, max: max, now: now}
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *sessionStore) expired(x *session, now time.Time) bool {
	return now.Sub(x.seen) > s.idle || now.Sub(x.created) > s.max
}

// create starts a session for address and returns its id. A fresh id at
// every sign-in prevents session fixation.
func (s *sessionStore) create(address string) string {
	now := s.now()
	x := &session{id: randomToken(), address: address, created: now, seen: now}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= maxSessions {
		var oldest *session
		for id, y := range s.m {
			if s.expired(y, now) {
				delete(s.m, id)
			} else if oldest == nil || y.seen.Before(oldest.seen) {
				oldest = y
			}
		}
		if len(s.m) >= maxSessions && oldest != nil {
			delete(s.m, oldest.id)
		}
	}
	s.m[x.id] = x
	return x.id
}

// get returns the live session's address and pending flash (taken), and
// refreshes its idle timer.
func (s *sessionStore) get(id string, takeFlash bool) (address string, f *flash, ok bool) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	x := s.m[id]
	if x == nil {
		return "", nil, false
	}
	if s.expired(x, now) {
		delete(s.m, id)
		return "", nil, false
	}
	x.seen = now
	if takeFlash {
		f, x.flash = x.flash, nil
	}
	return x.address, f, true
}

// update changes the session id, if there is one, under the lock.
func (s *sessionStore) update(id string, change func(*session)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if x := s.m[id]; x != nil {
		change(x)
	}
}

func (s *sessionStore) setFlash(id string, f *flash) {
	s.update(id, func(x *session) { x.flash = f })
}

// startEnrol keeps key pending in the session for enrolLifetime, replacing
// any earlier pending key.
func (s *sessionStore) startEnrol(id string, key store.TOTPKey) {
	expires := s.now().Add(enrolLifetime)
	s.update(id, func(x *session) { x.enrol = &enrolment{key: key, expires: expires} })
}

// pendingEnrol returns the session's pending key and how many wrong codes
// it still allows. An expired one is dropped.
func (s *sessionStore) pendingEnrol(id string) (key store.TOTPKey, left int, ok bool) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	x := s.m[id]
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
func (s *sessionStore) enrolFailed(id string, key store.TOTPKey) (discarded bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	x := s.m[id]
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
func (s *sessionStore) endEnrol(id string) {
	s.update(id, func(x *session) { x.enrol = nil })
}

func (s *sessionStore) delete(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
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

// current returns the signed-in session (id, address), if any.
func (h *Handler) current(r *http.Request, takeFlash bool) (id, address string, f *flash, ok bool) {
	id = cookieValue(r, sessionCookie)
	if id == "" {
		return "", "", nil, false
	}
	address, f, ok = h.sessions.get(id, takeFlash)
	return id, address, f, ok
}
