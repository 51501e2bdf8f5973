// Package popstore implements popd.Backend on the store's role interfaces:
// the POP3 adapter, kept apart from storage as maddy keeps its go-smtp
// session apart from its storage. It owns the POP3 wording the store does
// not hold: RFC 2449/3206 response codes around the store's one hint per
// refusal (store.AuthError.Hint), the POP-access message, and the RFC 1939
// §4 exclusive maildrop lock, held as a lease in the database (lease.go).
package popstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skydesk/skydeskd/popd"
	"github.com/skydesk/skydeskd/store"
)

// Authenticator checks a login: *store.Authenticator, the one place of the
// credential rules.
type Authenticator interface {
	Login(ctx context.Context, req store.LoginRequest) (store.Login, error)
}

var _ Authenticator = (*store.Authenticator)(nil)

// Options configure a Backend.
type Options struct {
	// Auth applies the credential rules; required.
	Auth Authenticator
	// Store holds the maildrops; required.
	Store store.Maildrop
	// Leases hold the RFC 1939 §4 maildrop lock; default: Store, when it
	// implements store.Leases (both drivers do).
	Leases store.Leases
	// LeaseTTL is how long a lease outlives its last renewal: a session
	// renews it every LeaseTTL/3, so a node that dies blocks its accounts
	// for at most LeaseTTL. Default DefaultLeaseTTL.
	LeaseTTL time.Duration
	// SettingsURL is the settings page named in the POP-access message,
	// e.g. "https://autoconfig.skydesk.jp/settings".
	SettingsURL string
	// Logger; default discards.
	Logger *slog.Logger
	// Now is the clock of the last-session records (default time.Now).
	Now func() time.Time
}

// recordTimeout bounds the one write of a session's end: Logout has no
// context of its own (it runs as the connection closes).
const recordTimeout = 5 * time.Second

// Backend implements popd.Backend: the listing in one call at login,
// bodies read one message at a time, DELE marks applied in one call at
// QUIT according to the account's "when a client deletes" setting
// (DESIGN.md §2).
//
// The RFC 1939 §4 exclusive lock is a lease in the database
// (store.Leases), so every process on it, every node on one PostgreSQL
// database, sees it: a second session anywhere is answered IN-USE.
type Backend struct {
	opts   Options
	prefix string        // random, names this process in lease holders
	seq    atomic.Uint64 // numbers its sessions

	mu   sync.Mutex
	held map[int64]int // sessions of this process holding each account's lease

	outage store.OutageLog
}

var _ popd.Backend = (*Backend)(nil)

// New returns the POP3 backend over o.Store.
func New(o Options) (*Backend, error) {
	if o.Auth == nil || o.Store == nil {
		return nil, errors.New("popstore: Auth and Store are required")
	}
	if o.Leases == nil {
		l, ok := o.Store.(store.Leases)
		if !ok {
			return nil, errors.New("popstore: Leases are required (Store does not hold them)")
		}
		o.Leases = l
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = DefaultLeaseTTL
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	prefix, err := randomHolder()
	if err != nil {
		return nil, err
	}
	return &Backend{opts: o, prefix: prefix, held: map[int64]int{}}, nil
}

// Locked reports whether a POP3 session of this Backend holds the
// account's maildrop lease.
func (b *Backend) Locked(accountID int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.held[accountID] > 0
}

// NewSession implements popd.Backend.
func (b *Backend) NewSession(c *popd.Conn) (popd.Session, error) {
	var remote netip.Addr
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		remote = ta.AddrPort().Addr()
	}
	holder := fmt.Sprintf("%s/%d", b.prefix, b.seq.Add(1))
	return &session{b: b, st: b.opts.Store, remote: remote, holder: holder}, nil
}

type session struct {
	b        *Backend
	st       store.Maildrop
	remote   netip.Addr
	account  int64 // 0 until Login succeeds
	settings store.POPSettings
	ids      []int64
	sizes    []int64
	// retrieved marks the messages sent whole by RETR (1-based index
	// into ids); downloaded counts each once, however often it is sent.
	retrieved  []bool
	downloaded int
	// opened is the message Open read last; ahead holds the bodies read
	// ahead of RETR (body.go), by message number.
	opened int
	ahead  map[int][]byte
	holder string // lease holder id: this process and session
	lease  *renewer
}

var (
	_ popd.Session          = (*session)(nil)
	_ popd.RetrievedSession = (*session)(nil)
)

// Login implements popd.Session: the Authenticator decides, POP access is
// checked after a correct login (so "disabled" reveals nothing to someone
// without the password), then the maildrop lock is taken.
func (p *session) Login(ctx context.Context, username, password string) error {
	l, err := p.b.opts.Auth.Login(ctx, store.LoginRequest{Username: username, Password: password, Remote: p.remote, Service: store.ServicePOP3})
	if err != nil {
		var ae *store.AuthError
		if errors.As(err, &ae) {
			return authError(ae)
		}
		return p.b.temp("POP3 login", fmt.Errorf("POP3 login: %w", err))
	}
	st, err := p.st.MaildropSettings(ctx, l.Account.ID)
	if err != nil {
		return p.b.temp("reading POP settings", err)
	}
	if st.Access == store.POPDisabled {
		return &popd.Error{Code: "SYS/PERM", Text: "POP access is disabled for this account: enable it in the settings " +
			`"Mail forwarding and POP/IMAP" > "POP download"` + p.b.at()}
	}
	lease, err := p.b.acquire(ctx, l.Account.ID, p.holder)
	if err != nil {
		return p.b.temp("taking the maildrop lease", err)
	}
	p.account, p.settings, p.lease = l.Account.ID, st, lease
	return nil
}

func (b *Backend) at() string {
	if b.opts.SettingsURL == "" {
		return ""
	}
	return " at " + b.opts.SettingsURL
}

// authError renders a refused login as its RFC 2449/3206 answer with the
// store's one wording of the hint.
func authError(ae *store.AuthError) *popd.Error {
	if ae.Reason == store.AuthLocked {
		// RFC 2449 §8.1.1 LOGIN-DELAY: the client should not prompt for
		// a new password, just retry later (an [AUTH] here would make a
		// correct password look wrong).
		return &popd.Error{Code: "LOGIN-DELAY", Text: ae.Hint()}
	}
	return &popd.Error{Code: "AUTH", Text: ae.Hint()}
}

// Messages implements popd.Session: the POP queue under the settings read
// at login.
func (p *session) Messages(ctx context.Context) ([]popd.Message, error) {
	list, err := p.st.ListMaildrop(ctx, p.account, p.settings)
	if err != nil {
		return nil, p.b.temp("listing the maildrop", err)
	}
	out := make([]popd.Message, len(list))
	p.ids, p.sizes = make([]int64, len(list)), make([]int64, len(list))
	p.retrieved = make([]bool, len(list))
	for i, e := range list {
		p.ids[i], p.sizes[i] = e.ID, e.Size
		out[i] = popd.Message{Size: e.Size, UID: strconv.FormatInt(e.ID, 10)}
	}
	return out, nil
}

// Expunge implements popd.Session.
func (p *session) Expunge(ctx context.Context, nums []int) error {
	ids := make([]int64, len(nums))
	for i, n := range nums {
		ids[i] = p.ids[n-1]
	}
	if p.lease.lost.Load() {
		// Another session may own the maildrop now (this one could not
		// renew in time): its marks are not applied (RFC 1939 §6 treats
		// a session that cannot finish as one that applies nothing).
		return errLeaseLost
	}
	return p.b.temp("removing deleted messages", p.st.Expunge(ctx, p.account, ids))
}

// Retrieved implements popd.RetrievedSession.
func (p *session) Retrieved(n int) {
	if n >= 1 && n <= len(p.retrieved) && !p.retrieved[n-1] {
		p.retrieved[n-1] = true
		p.downloaded++
	}
}

// Logout implements popd.Session: records the session as the account's
// last POP access (one write; QUIT or a dropped connection alike), then
// releases the maildrop lease.
func (p *session) Logout() error {
	if p.account == 0 {
		return nil
	}
	ps := store.POPSession{At: p.b.opts.Now(), Downloaded: p.downloaded}
	if p.remote.IsValid() {
		ps.Remote = p.remote.Unmap().String()
	}
	ctx, cancel := context.WithTimeout(context.Background(), recordTimeout)
	err := p.st.RecordPOPSession(ctx, p.account, ps)
	cancel()
	if store.IsUnavailable(err) {
		// Only the "last POP access" record is lost: no line per session.
		p.b.outage.Warn(p.b.opts.Logger, "recording the POP session", err)
		err = nil
	}
	if rerr := p.b.release(p.account, p.holder, p.lease); rerr != nil && err == nil {
		err = rerr
	} else if err != nil {
		err = fmt.Errorf("recording the POP session: %w", err)
	}
	p.account, p.lease, p.ahead = 0, nil, nil
	return err
}

// errUnavailable answers any command the store could not serve because
// the database is away (store.IsUnavailable): RFC 3206 §4 SYS/TEMP, so
// the client keeps its password and tries again later.
var errUnavailable = &popd.Error{Code: "SYS/TEMP", Text: "mail storage is temporarily unavailable, try again shortly"}

// temp returns errUnavailable for an unavailable database, logged at
// most once in a while (store.OutageLog), and err itself otherwise.
func (b *Backend) temp(what string, err error) error {
	if !store.IsUnavailable(err) {
		return err
	}
	b.outage.Warn(b.opts.Logger, what, err)
	return errUnavailable
}
