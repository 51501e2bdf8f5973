package store

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Service is who asks for a login; the rules differ for mail clients and
// the settings page.
type Service string

// Services.
const (
	ServicePOP3 Service = "pop3"
	ServiceSMTP Service = "smtp"
	// ServiceWeb is the settings page: the account password only, never an
	// app password; with two-step verification on, also a current code from
	// the authenticator app (TOTP, RFC 6238).
	ServiceWeb Service = "web"
)

func (s Service) mail() bool { return s != ServiceWeb }

// AuthReason says why a login was refused. Protocol packages turn it into
// their own wire text (-ERR [AUTH] …, 535 5.7.8 …, a form message).
type AuthReason int

// Reasons. Only AuthBadCredentials can be the answer for an address that
// has no account, so none of them tells whether a mailbox exists.
const (
	// AuthBadCredentials: wrong user name or password.
	AuthBadCredentials AuthReason = iota + 1
	// AuthNotFullAddress: the user name is a bare local part; mail
	// clients must use the full address (mpop/msmtp --configure write the
	// local part, REFERENCE/bench notes).
	AuthNotFullAddress
	// AuthNeedAppPassword: two-step verification is on and the account
	// password was given: only app-specific passwords work for mail.
	AuthNeedAppPassword
	// AuthNoPassword: a federated (SSO) account without a mail password.
	AuthNoPassword
	// AuthLocked: too many failures from this address or for this account.
	AuthLocked
	// AuthNoAuthenticator: the settings page, two-step verification on, the
	// account password right, but no authenticator app registered, so no
	// code can ever be right. Only an administrator can register one.
	AuthNoAuthenticator
)

// AuthError is a refused login.
type AuthError struct {
	Reason     AuthReason
	RetryAfter time.Duration // for AuthLocked
}

func (e *AuthError) Error() string {
	switch e.Reason {
	case AuthNotFullAddress:
		return "user name is not a full email address"
	case AuthNeedAppPassword:
		return "two-step verification is on: use an app-specific password"
	case AuthNoPassword:
		return "account has no mail password"
	case AuthLocked:
		return fmt.Sprintf("too many failed logins, locked for %s", e.RetryAfter.Round(time.Second))
	case AuthNoAuthenticator:
		return "two-step verification is on but no authenticator app is registered; ask the administrator"
	}
	return "authentication failed"
}

// LoginRequest is one login attempt.
type LoginRequest struct {
	Username string
	Password string
	// OTP is the authenticator app's current code. Only ServiceWeb reads
	// it, and only for accounts with two-step verification on.
	OTP     string
	Remote  netip.Addr // the client's address, for throttling
	Service Service
}

// Login is a successful login.
type Login struct {
	Account Account
	// AppPassword is the name of the app password used ("" for the
	// account password).
	AppPassword string
}

// Authenticator applies the credential rules of DESIGN.md §4 in one place:
// full address as user name, two-step → app passwords only for mail and
// password + TOTP code for the settings page, federated → no password
// until set, failed-login throttling, and the verified-login cache.
// popd's backend, smtpd and the settings page all call it.
type Authenticator struct {
	s       *Store
	byIP    *throttle
	byUser  *throttle
	secret  [32]byte
	ttl     time.Duration
	mu      sync.Mutex
	cache   map[[32]byte]cacheEntry
	dummy   string // hash verified for unknown users, to equalise timing
	sleep   func(ctx context.Context, d time.Duration) error
	observe func(Service, string)
}

type cacheEntry struct {
	accountID int64
	gen       int64
	app       string
	expires   time.Time
	lastUsed  time.Time // last write of app_passwords.last_used
}

// CacheTTL is how long a verified login is remembered (Dovecot's auth
// cache works the same way). Any credential change drops entries at once.
const CacheTTL = 10 * time.Minute

const maxCacheEntries = 100_000

// AuthOptions configure an Authenticator.
type AuthOptions struct {
	Policy ThrottlePolicy
	// Observe, if set, is told every outcome ("ok", "bad_credentials",
	// "not_full_address", "need_app_password", "no_password",
	// "no_authenticator", "locked", "delayed") for metrics.
	Observe func(svc Service, outcome string)
}

// NewAuthenticator returns the credential checker for this store.
func (s *Store) NewAuthenticator(o AuthOptions) (*Authenticator, error) {
	if o.Policy == (ThrottlePolicy{}) {
		o.Policy = DefaultThrottlePolicy
	}
	a := &Authenticator{
		s: s, byIP: newThrottle(o.Policy, s.now), byUser: newThrottle(o.Policy, s.now),
		ttl: CacheTTL, cache: map[[32]byte]cacheEntry{}, observe: o.Observe,
		sleep: func(ctx context.Context, d time.Duration) error {
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-t.C:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		},
	}
	if _, err := rand.Read(a.secret[:]); err != nil {
		return nil, err
	}
	dummy, err := hashPassword(context.Background(), s.opts.HashParams, "dummy password for timing")
	if err != nil {
		return nil, err
	}
	a.dummy = dummy
	return a, nil
}

func (a *Authenticator) note(svc Service, outcome string) {
	if a.observe != nil {
		a.observe(svc, outcome)
	}
}

type credRow struct {
	id         int64
	hash       sql.NullString
	twoStep    bool
	federated  bool
	gen        int64
	totpSecret sql.NullString
	totpLast   sql.NullInt64
	acc        Account
}

type appRow struct {
	id   int64
	name string
	hash string
}

// Login checks one attempt. The error is an *AuthError for refusals, or
// another error for a failure of the store itself.
func (a *Authenticator) Login(ctx context.Context, req LoginRequest) (Login, error) {
	user := strings.TrimSpace(req.Username)
	ipKey := req.Remote.Unmap().String()
	if e := a.lockedOut(req.Service, a.byIP, ipKey); e != nil {
		return Login{}, e
	}
	if !strings.Contains(user, "@") {
		return Login{}, a.failed(ctx, req, ipKey, "", &AuthError{Reason: AuthNotFullAddress})
	}
	addr, err := NormalizeAddress(user)
	if err != nil {
		if err := a.dummyVerify(ctx, req.Password); err != nil {
			return Login{}, err
		}
		return Login{}, a.failed(ctx, req, ipKey, "", &AuthError{Reason: AuthBadCredentials})
	}
	userKey := addr.String()
	if e := a.lockedOut(req.Service, a.byUser, userKey); e != nil {
		return Login{}, e
	}

	row, err := a.credentials(ctx, userKey)
	if errors.Is(err, ErrNotFound) {
		if err := a.dummyVerify(ctx, req.Password); err != nil {
			return Login{}, err
		}
		return Login{}, a.failed(ctx, req, ipKey, userKey, &AuthError{Reason: AuthBadCredentials})
	}
	if err != nil {
		return Login{}, err
	}

	// Only mail logins use the cache. A settings sign-in is rare, and under
	// two-step verification it needs a fresh one-time code every time: a
	// cached (account, password) verification must never stand in for it.
	useCache := req.Service.mail()
	ck := a.cacheKey(req.Service, userKey, req.Password)
	if useCache {
		if l, ok := a.cached(ctx, ck, row); ok {
			a.clearFailures(ipKey, userKey)
			a.note(req.Service, "ok")
			return l, nil
		}
	}

	login, err := a.verify(ctx, req, row)
	var aerr *AuthError
	if errors.As(err, &aerr) {
		return Login{}, a.failed(ctx, req, ipKey, userKey, aerr)
	}
	if err != nil {
		return Login{}, err
	}
	a.clearFailures(ipKey, userKey)
	if useCache {
		a.remember(ck, row, login.AppPassword)
	}
	if login.AppPassword != "" {
		if err := a.touchApp(ctx, row.id, login.AppPassword); err != nil {
			return Login{}, err
		}
	}
	a.note(req.Service, "ok")
	return login, nil
}

func reasonLabel(r AuthReason) string {
	switch r {
	case AuthNotFullAddress:
		return "not_full_address"
	case AuthNeedAppPassword:
		return "need_app_password"
	case AuthNoPassword:
		return "no_password"
	case AuthLocked:
		return "locked"
	case AuthNoAuthenticator:
		return "no_authenticator"
	}
	return "bad_credentials"
}

// verify applies the rules after the cache missed. A refusal is an
// *AuthError; any other error is a failure of the store.
func (a *Authenticator) verify(ctx context.Context, req LoginRequest, row credRow) (Login, error) {
	ok := func(app string) (Login, error) { return Login{Account: row.acc, AppPassword: app}, nil }
	bad := func(r AuthReason) (Login, error) { return Login{}, &AuthError{Reason: r} }
	// accountPassword: a malformed stored hash matches nothing. Its error
	// is ctx ending while waiting for a hash slot: the service's failure,
	// not the client's, so not a refusal the throttle counts.
	accountPassword := func() (bool, error) {
		if !row.hash.Valid {
			return false, nil
		}
		m, err := verifyPassword(ctx, row.hash.String, req.Password)
		if errors.Is(err, errBadHash) {
			return false, nil
		}
		return m, err
	}
	if !req.Service.mail() {
		// The settings page: the account password, never an app password,
		// and under two-step verification a code (verifyTOTP).
		if !row.hash.Valid && row.federated {
			if err := a.dummyVerify(ctx, req.Password); err != nil {
				return Login{}, err
			}
			return bad(AuthNoPassword)
		}
		if m, err := accountPassword(); err != nil {
			return Login{}, err
		} else if !m {
			return bad(AuthBadCredentials)
		}
		if !row.twoStep {
			return ok("") // the code field is ignored
		}
		return a.verifyTOTP(ctx, req, row)
	}
	if !row.twoStep {
		if m, err := accountPassword(); err != nil {
			return Login{}, err
		} else if m {
			return ok("")
		}
	}
	if name, err := a.matchApp(ctx, row.id, req.Password); err != nil {
		return Login{}, err
	} else if name != "" {
		return ok(name)
	}
	if row.twoStep {
		if m, err := accountPassword(); err != nil {
			return Login{}, err
		} else if m {
			// Revealed only to someone who knows the password.
			return bad(AuthNeedAppPassword)
		}
	}
	if !row.hash.Valid && row.federated {
		return bad(AuthNoPassword)
	}
	return bad(AuthBadCredentials)
}

// dummyVerify spends a password verification's time when there is no
// hash to check, so a refusal takes as long for an unknown address as for
// a wrong password (no user enumeration by timing).
func (a *Authenticator) dummyVerify(ctx context.Context, password string) error {
	_, err := verifyPassword(ctx, a.dummy, password)
	return err
}

// verifyTOTP is the second factor of a settings sign-in under two-step
// verification, after the account password matched: a code of the
// registered secret for the current time step ±1, newer than the last
// accepted one (RFC 6238 §5.2: a code is accepted once). A missing or
// wrong code is AuthBadCredentials, throttled like a wrong password and
// indistinguishable from one, so the 10⁶ codes cannot be tried out.
func (a *Authenticator) verifyTOTP(ctx context.Context, req LoginRequest, row credRow) (Login, error) {
	if !row.totpSecret.Valid {
		return Login{}, &AuthError{Reason: AuthNoAuthenticator}
	}
	last := int64(-1)
	if row.totpLast.Valid {
		last = row.totpLast.Int64
	}
	step, match := matchTOTP(row.totpSecret.String, req.OTP, a.s.now(), last)
	if !match {
		return Login{}, &AuthError{Reason: AuthBadCredentials}
	}
	used, err := a.useTOTPStep(ctx, row.id, row.totpSecret.String, step)
	if err != nil {
		return Login{}, err
	}
	if !used {
		return Login{}, &AuthError{Reason: AuthBadCredentials} // replayed by a concurrent sign-in
	}
	return Login{Account: row.acc}, nil
}

// lockedOut refuses an attempt while key is locked out on th.
func (a *Authenticator) lockedOut(svc Service, th *throttle, key string) *AuthError {
	if d := th.check(key); d > 0 {
		a.note(svc, "locked")
		return &AuthError{Reason: AuthLocked, RetryAfter: d}
	}
	return nil
}

// clearFailures resets both throttles' counts after a success.
func (a *Authenticator) clearFailures(ipKey, userKey string) {
	a.byIP.succeed(ipKey)
	a.byUser.succeed(userKey)
}

// failed notes the refusal, counts the failure (per remote address, and
// per account when userKey is known), waits the throttle's delay and
// returns e.
func (a *Authenticator) failed(ctx context.Context, req LoginRequest, ipKey, userKey string, e *AuthError) error {
	a.note(req.Service, reasonLabel(e.Reason))
	d, locked := a.byIP.fail(ipKey)
	// AuthNoPassword and AuthNoAuthenticator: the account cannot sign in
	// however often it tries; counting would only lock out its owner.
	if userKey != "" && e.Reason != AuthNoPassword && e.Reason != AuthNoAuthenticator {
		d2, locked2 := a.byUser.fail(userKey)
		d, locked = max(d, d2), locked || locked2
	}
	if locked {
		a.note(req.Service, "lock_engaged")
	}
	if d > 0 {
		a.note(req.Service, "delayed")
		if err := a.sleep(ctx, d); err != nil {
			return err
		}
	}
	return e
}

func (a *Authenticator) credentials(ctx context.Context, address string) (credRow, error) {
	var r credRow
	var kind string
	var created int64
	err := a.s.r.QueryRowContext(ctx, `SELECT id, address, kind, password_hash, two_step, federated, credential_gen, created,
		totp_secret, totp_last_step FROM accounts WHERE address = ?`, address).
		Scan(&r.id, &r.acc.Address, &kind, &r.hash, &r.twoStep, &r.federated, &r.gen, &created, &r.totpSecret, &r.totpLast)
	if errors.Is(err, sql.ErrNoRows) {
		return r, ErrNotFound
	}
	if err != nil {
		return r, fmt.Errorf("reading credentials: %w", err)
	}
	r.acc.ID = r.id
	r.acc.HasPassword, r.acc.TwoStep, r.acc.Federated = r.hash.Valid, r.twoStep, r.federated
	r.acc.Created = time.Unix(created, 0)
	r.acc.Kind = kindFromText(kind)
	return r, nil
}

// matchApp returns the name of the app password equal to pw, or "".
func (a *Authenticator) matchApp(ctx context.Context, accountID int64, pw string) (string, error) {
	norm := normalizeAppSecret(pw)
	if len(norm) != 16 {
		return "", nil // app secrets are 16 letters; skip the hashing
	}
	rows, err := a.s.r.QueryContext(ctx, `SELECT id, name, hash FROM app_passwords WHERE account_id = ?`, accountID)
	if err != nil {
		return "", err
	}
	var apps []appRow
	for rows.Next() {
		var r appRow
		if err := rows.Scan(&r.id, &r.name, &r.hash); err != nil {
			rows.Close()
			return "", err
		}
		apps = append(apps, r)
	}
	rows.Close()
	for _, r := range apps {
		m, err := verifyAppSecret(ctx, r.hash, norm)
		if err != nil && !errors.Is(err, errBadHash) {
			return "", err
		}
		if m {
			return r.name, nil
		}
	}
	return "", rows.Err()
}

func (a *Authenticator) touchApp(ctx context.Context, accountID int64, name string) error {
	_, err := a.s.w.ExecContext(ctx, `UPDATE app_passwords SET last_used = ? WHERE account_id = ? AND name = ?`,
		a.s.now().Unix(), accountID, name)
	if err != nil {
		return fmt.Errorf("recording app password use: %w", err)
	}
	return nil
}

// cacheKey is an HMAC of (service class, account, password) under a
// per-process secret: the cache never holds a password or a fast hash of
// one that would outlive the process.
func (a *Authenticator) cacheKey(svc Service, address, password string) [32]byte {
	m := hmac.New(sha256.New, a.secret[:])
	class := "mail"
	if !svc.mail() {
		class = "web"
	}
	m.Write([]byte(class))
	m.Write([]byte{0})
	m.Write([]byte(address))
	m.Write([]byte{0})
	m.Write([]byte(password))
	var k [32]byte
	copy(k[:], m.Sum(nil))
	return k
}

func (a *Authenticator) cached(ctx context.Context, k [32]byte, row credRow) (Login, bool) {
	now := a.s.now()
	a.mu.Lock()
	e, ok := a.cache[k]
	if ok && (e.gen != row.gen || e.accountID != row.id || now.After(e.expires)) {
		delete(a.cache, k)
		ok = false
	}
	touch := ok && e.app != "" && now.Sub(e.lastUsed) > time.Minute
	if touch {
		e.lastUsed = now
		a.cache[k] = e
	}
	a.mu.Unlock()
	if !ok {
		return Login{}, false
	}
	if touch {
		// Best effort: last-used is informational, a failed write must not
		// refuse a correct login.
		_ = a.touchApp(ctx, row.id, e.app)
	}
	return Login{Account: row.acc, AppPassword: e.app}, true
}

func (a *Authenticator) remember(k [32]byte, row credRow, app string) {
	now := a.s.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.cache) >= maxCacheEntries {
		for ck, e := range a.cache {
			if now.After(e.expires) || len(a.cache) >= maxCacheEntries {
				delete(a.cache, ck)
			}
		}
	}
	a.cache[k] = cacheEntry{accountID: row.id, gen: row.gen, app: app, expires: now.Add(a.ttl), lastUsed: now}
}
