package store

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/skydesk/skydeskd/internal/cache"
	"github.com/skydesk/skydeskd/internal/connlimit"
	"github.com/skydesk/skydeskd/profiles"
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
// popd's backend (popstore), smtpd and the settings page all call it.
//
// It works over the Credentials interface, never over SQL: every store
// driver reuses these rules unchanged and implements only the storage.
type Authenticator struct {
	c       Credentials
	now     func() time.Time
	url     string
	th      *throttles
	secret  [32]byte
	ttl     time.Duration
	cache   *cache.Cache[[32]byte, cacheEntry]
	dummy   string // hash verified for unknown users, to equalise timing
	sleep   func(ctx context.Context, d time.Duration) error
	observe func(Service, string)
	in      func(Service, string)
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
	// SettingsURL is the settings page the refusals' hints name
	// (AuthError.Hint), e.g. "https://autoconfig.skydesk.jp/settings".
	SettingsURL string
	// HashParams make the hash verified for unknown users (timing
	// equalisation); zero means DefaultHashParams.
	HashParams HashParams
	// Now is the clock of throttles, the cache and TOTP; nil means
	// time.Now.
	Now func() time.Time
	// Observe, if set, is told every outcome ("ok", "bad_credentials",
	// "not_full_address", "need_app_password", "no_password",
	// "no_authenticator", "locked", "delayed") for metrics.
	Observe func(svc Service, outcome string)
	// LoggedIn, if set, is told of every successful login with the
	// account's normalised address (onboarding figures: a first login
	// after a discovery). It runs before Login returns; keep it cheap.
	LoggedIn func(svc Service, address string)
	// Counters store the throttle's counts; nil means the Credentials'
	// own if they implement ThrottleCounters (every Driver does), else
	// process memory.
	Counters ThrottleCounters
	// Logger is told when shared counters fail and the throttle counts in
	// process memory meanwhile (once per outage); nil discards.
	Logger *slog.Logger
}

// NewAuthenticator returns the credential checker for this store, with
// its hash parameters and clock.
func (s *Store) NewAuthenticator(o AuthOptions) (*Authenticator, error) {
	o.HashParams = s.opts.HashParams
	o.Now = func() time.Time { return s.now() }
	return NewAuthenticator(s, o)
}

// NewAuthenticator returns the credential rules over any driver's
// Credentials.
func NewAuthenticator(c Credentials, o AuthOptions) (*Authenticator, error) {
	if o.Policy.LockAfter == 0 && o.Policy.FreeFailures == 0 {
		o.Policy = DefaultThrottlePolicy
	}
	if o.HashParams == (HashParams{}) {
		o.HashParams = DefaultHashParams
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Counters == nil {
		o.Counters, _ = c.(ThrottleCounters)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	a := &Authenticator{
		c: c, now: o.Now, url: o.SettingsURL, th: newThrottles(o.Policy, o.Now, o.Counters, o.Logger),
		ttl: CacheTTL, cache: cache.New[[32]byte, cacheEntry](maxCacheEntries, o.Now), observe: o.Observe, in: o.LoggedIn,
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
	dummy, err := hashPassword(context.Background(), o.HashParams, "dummy password for timing")
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

// Login checks one attempt. The error is an *AuthError for refusals, or
// another error for a failure of the store itself.
//
// The order is the throttling model's: a correct credential in the
// verified-login cache always passes, before any lock is looked at; a
// locked (client network) or (client network, account) is refused without
// verifying or counting anything; every other refusal spends one password
// hash (a dummy one when there is none to check), is counted alike under
// the three keys and answers the one text of AuthError.Hint.
func (a *Authenticator) Login(ctx context.Context, req LoginRequest) (Login, error) {
	user := strings.TrimSpace(req.Username)
	netw := a.network(req.Remote)
	userKey, refusal := userKeyOf(user)
	// A name that cannot be an account is looked up all the same: its
	// refusal then takes the time of an unknown address's.
	row, err := a.c.Credentials(ctx, userKey)
	found := false
	switch {
	case errors.Is(err, ErrNotFound):
		if refusal == 0 {
			refusal = AuthBadCredentials
		}
	case err != nil:
		return Login{}, err
	default:
		found = refusal == 0
	}

	// Only mail logins use the cache. A settings sign-in is rare, and under
	// two-step verification it needs a fresh one-time code every time: a
	// cached (account, password) verification must never stand in for it.
	useCache := found && req.Service.mail()
	ck := a.cacheKey(req.Service, userKey, req.Password)
	if useCache {
		if l, ok := a.cached(ctx, ck, row); ok {
			a.th.succeedCached(ctx, pairKey{netw, userKey})
			a.succeeded(req.Service, l)
			return l, nil
		}
	}
	if e := a.lockedOut(ctx, req.Service, netw, userKey); e != nil {
		return Login{}, e
	}
	if !found {
		if err := a.dummyVerify(ctx, req.Password); err != nil {
			return Login{}, err
		}
		return Login{}, a.failed(ctx, req, netw, userKey, &AuthError{Reason: refusal})
	}

	login, err := a.verify(ctx, req, row)
	var aerr *AuthError
	if errors.As(err, &aerr) {
		return Login{}, a.failed(ctx, req, netw, userKey, aerr)
	}
	if err != nil {
		return Login{}, err
	}
	a.th.succeed(ctx, pairKey{netw, userKey})
	if useCache {
		a.remember(ck, row, login.AppPassword)
	}
	if login.AppPassword != "" {
		if err := a.c.TouchAppPassword(ctx, row.Account.ID, login.AppPassword, a.now()); err != nil {
			return Login{}, err
		}
	}
	a.succeeded(req.Service, login)
	return login, nil
}

// succeeded reports a successful login to both hooks.
func (a *Authenticator) succeeded(svc Service, l Login) {
	a.note(svc, "ok")
	if a.in != nil {
		a.in(svc, l.Account.Address)
	}
}

// maxUserKey bounds the user names kept as throttle keys.
const maxUserKey = 320

// userKeyOf returns the key a user name is counted under (the normalized
// address, or the name itself lower-cased and truncated) and, for a name
// that cannot be an account, the reason it is refused (0 otherwise).
func userKeyOf(user string) (string, AuthReason) {
	if !strings.Contains(user, "@") {
		return truncate(strings.ToLower(user), maxUserKey), AuthNotFullAddress
	}
	addr, err := profiles.NormalizeAddress(user)
	if err != nil {
		return truncate(strings.ToLower(user), maxUserKey), AuthBadCredentials
	}
	return addr.String(), 0
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// network is the client network a remote address is counted under.
func (a *Authenticator) network(remote netip.Addr) netip.Prefix {
	return connlimit.Network(remote, a.th.policy.IPv4Prefix, a.th.policy.IPv6Prefix)
}

// verify applies the rules after the cache missed. A refusal is an
// *AuthError; any other error is a failure of the store.
func (a *Authenticator) verify(ctx context.Context, req LoginRequest, row CredentialRecord) (Login, error) {
	ok := func(app string) (Login, error) { return Login{Account: row.Account, AppPassword: app}, nil }
	// Every refusal costs one password hash, so that a federated account
	// without a mail password answers in the time of a wrong password (no
	// enumeration by timing): bad spends a dummy one if none was checked.
	hashed := false
	bad := func(r AuthReason) (Login, error) {
		if !hashed {
			if err := a.dummyVerify(ctx, req.Password); err != nil {
				return Login{}, err
			}
		}
		return Login{}, &AuthError{Reason: r}
	}
	// accountPassword: a malformed stored hash matches nothing. Its error
	// is ctx ending while waiting for a hash slot: the service's failure,
	// not the client's, so not a refusal the throttle counts.
	accountPassword := func() (bool, error) {
		if row.PasswordHash == "" {
			return false, nil
		}
		hashed = true
		m, err := verifyPassword(ctx, row.PasswordHash, req.Password)
		if errors.Is(err, errBadHash) {
			return false, nil
		}
		return m, err
	}
	if !req.Service.mail() {
		// The settings page: the account password, never an app password,
		// and under two-step verification a code (verifyTOTP).
		if row.PasswordHash == "" && row.Account.Federated {
			return bad(AuthNoPassword)
		}
		if m, err := accountPassword(); err != nil {
			return Login{}, err
		} else if !m {
			return bad(AuthBadCredentials)
		}
		if !row.Account.TwoStep {
			return ok("") // the code field is ignored
		}
		return a.verifyTOTP(ctx, req, row)
	}
	if !row.Account.TwoStep {
		if m, err := accountPassword(); err != nil {
			return Login{}, err
		} else if m {
			return ok("")
		}
	}
	if name, err := a.matchApp(ctx, row.Account.ID, req.Password); err != nil {
		return Login{}, err
	} else if name != "" {
		return ok(name)
	}
	if row.Account.TwoStep {
		if m, err := accountPassword(); err != nil {
			return Login{}, err
		} else if m {
			// Revealed only to someone who knows the password.
			return bad(AuthNeedAppPassword)
		}
	}
	if row.PasswordHash == "" && row.Account.Federated {
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
func (a *Authenticator) verifyTOTP(ctx context.Context, req LoginRequest, row CredentialRecord) (Login, error) {
	if row.TOTPSecret == "" {
		return Login{}, &AuthError{Reason: AuthNoAuthenticator}
	}
	step, match := matchTOTP(row.TOTPSecret, req.OTP, a.now(), row.TOTPLastStep)
	if !match {
		return Login{}, &AuthError{Reason: AuthBadCredentials}
	}
	used, err := a.c.UseTOTPStep(ctx, row.Account.ID, row.TOTPSecret, step)
	if err != nil {
		return Login{}, err
	}
	if !used {
		return Login{}, &AuthError{Reason: AuthBadCredentials} // replayed by a concurrent sign-in
	}
	return Login{Account: row.Account}, nil
}

// lockedOut refuses an attempt while its client network, or the pair of
// that network and the account, is locked.
func (a *Authenticator) lockedOut(ctx context.Context, svc Service, netw netip.Prefix, userKey string) *AuthError {
	d := a.th.lockedFor(ctx, netw, pairKey{netw, userKey})
	if d > 0 {
		a.note(svc, "locked")
		return &AuthError{Reason: AuthLocked, RetryAfter: d, SettingsURL: a.url}
	}
	return nil
}

// failed notes the refusal, counts it per client network, per (network,
// account) and per account (every refusal alike, whatever its reason, so
// the counts tell nothing about the account either), waits the delay of
// the pair's or the account's count unless the failure engaged a lock,
// and returns e.
func (a *Authenticator) failed(ctx context.Context, req LoginRequest, netw netip.Prefix, userKey string, e *AuthError) error {
	e.SettingsURL = a.url
	a.note(req.Service, reasonLabel(e.Reason))
	n, n2, locked := a.th.fail(ctx, netw, pairKey{netw, userKey})
	if locked {
		// The lock slows what follows; this answer need not wait.
		a.note(req.Service, "lock_engaged")
		return e
	}
	if d := a.th.policy.delay(max(n, n2)); d > 0 {
		a.note(req.Service, "delayed")
		if err := a.sleep(ctx, d); err != nil {
			return err
		}
	}
	return e
}

// matchApp returns the name of the app password equal to pw, or "".
func (a *Authenticator) matchApp(ctx context.Context, accountID int64, pw string) (string, error) {
	norm := normalizeAppSecret(pw)
	if len(norm) != 16 {
		return "", nil // app secrets are 16 letters; skip the hashing
	}
	apps, err := a.c.AppPasswordHashes(ctx, accountID)
	if err != nil {
		return "", err
	}
	for _, r := range apps {
		m, err := verifyAppSecret(ctx, r.Hash, norm)
		if err != nil && !errors.Is(err, errBadHash) {
			return "", err
		}
		if m {
			return r.Name, nil
		}
	}
	return "", nil
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

func (a *Authenticator) cached(ctx context.Context, k [32]byte, row CredentialRecord) (Login, bool) {
	now := a.now()
	e, ok := a.cache.Get(k) // an expired entry misses
	if ok && (e.gen != row.Generation || e.accountID != row.Account.ID) {
		a.cache.Delete(k) // a credential changed since: never again
		ok = false
	}
	if !ok {
		return Login{}, false
	}
	if e.app != "" && now.Sub(e.lastUsed) > time.Minute {
		e.lastUsed = now
		a.cache.Put(k, e, e.expires.Sub(now))
		// Best effort: last-used is informational, a failed write must not
		// refuse a correct login.
		_ = a.c.TouchAppPassword(ctx, row.Account.ID, e.app, now)
	}
	return Login{Account: row.Account, AppPassword: e.app}, true
}

func (a *Authenticator) remember(k [32]byte, row CredentialRecord, app string) {
	now := a.now()
	a.cache.Put(k, cacheEntry{accountID: row.Account.ID, gen: row.Generation, app: app, expires: now.Add(a.ttl), lastUsed: now}, a.ttl)
}
