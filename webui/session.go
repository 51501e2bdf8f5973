package webui

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"time"

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
// What a session shows once or holds for minutes (its scratch: the flash
// after a form, a pending two-step secret) is kept in the store too,
// sealed under a key the store never holds (scratch.go), so any node may
// serve the page a form redirects to.
const (
	// sessionCookie: the __Host- prefix makes browsers refuse it unless
	// it is Secure, host-only and Path=/ (RFC 6265bis §4.1.3.2).
	sessionCookie = "__Host-skydesk-session"
	// preCookie binds the sign-in form's CSRF token before there is a
	// session.
	preCookie = "__Host-skydesk-pre"
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

// signedIn is a live session as a request sees it.
type signedIn struct {
	id        string // the cookie value: binds the CSRF tokens
	key       store.SessionKey
	address   string
	accountID int64
	gen       int64     // the credential generation it is bound to
	authAt    time.Time // sign-in or last re-authentication
}

// sessionStore keeps the sessions and their scratch in the store.
type sessionStore struct {
	db        store.Sessions
	idle, max time.Duration
	now       func() time.Time
	// secret is the web secret every node shares: with the session id it
	// keys the scratch entries (scratch.go).
	secret []byte
}

func newSessionStore(db store.Sessions, secret []byte, idle, max time.Duration, now func() time.Time) *sessionStore {
	return &sessionStore{db: db, secret: secret, idle: idle, max: max, now: now}
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

// delete ends a session, and with it its scratch.
func (s *sessionStore) delete(ctx context.Context, key store.SessionKey) error {
	return s.db.DeleteSession(ctx, key)
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
