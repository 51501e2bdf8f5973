package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/skydesk/skydeskd/popd"
)

// MaildropOptions configure the store's POP3 backend.
type MaildropOptions struct {
	// Auth applies the credential rules; required.
	Auth *Authenticator
	// SettingsURL is the settings page named in hints (app passwords, mail
	// password, POP access), e.g. "https://autoconfig.skydesk.jp/settings".
	SettingsURL string
	// Logger; default discards.
	Logger *slog.Logger
}

// Maildrop implements popd.Backend on the store: the listing in one query
// at login, bodies read one message at a time, DELE marks applied in one
// transaction at QUIT according to the account's "when a client deletes"
// setting (DESIGN.md §2).
//
// The RFC 1939 §4 exclusive lock is an in-process map keyed by account id.
// Two skydeskd processes on one database do not see each other's locks;
// that is safe for the data (a QUIT only takes rows still in the POP queue
// out of it, both processes list the same UIDs) but a client could
// download a message twice. Run one POP3 process per database; a
// PostgreSQL store would use an advisory lock instead.
type Maildrop struct {
	s    *Store
	opts MaildropOptions

	// Prepared once: modernc's SQLite otherwise parses every statement
	// on every call, which showed at the top of a RETR profile.
	list, body, settings *sql.Stmt

	mu     sync.Mutex
	locked map[int64]struct{}
}

var _ popd.Backend = (*Maildrop)(nil)

// NewMaildrop returns the POP3 backend of this store.
func (s *Store) NewMaildrop(o MaildropOptions) (*Maildrop, error) {
	if o.Auth == nil {
		return nil, errors.New("maildrop: an Authenticator is required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	m := &Maildrop{s: s, opts: o, locked: map[int64]struct{}{}}
	ctx := context.Background()
	var err error
	if m.list, err = s.r.PrepareContext(ctx, `SELECT id, size FROM messages INDEXED BY messages_pop
		WHERE account_id = ? AND in_pop = 1 AND (? OR spam = 0) AND received >= ? ORDER BY id`); err != nil {
		return nil, fmt.Errorf("preparing maildrop listing: %w", err)
	}
	if m.body, err = s.r.PrepareContext(ctx, `SELECT substr(body, ?, ?) FROM messages WHERE id = ? AND account_id = ?`); err != nil {
		return nil, fmt.Errorf("preparing message read: %w", err)
	}
	if m.settings, err = s.r.PrepareContext(ctx, `SELECT access, since, include_spam, on_delete FROM pop_settings WHERE account_id = ?`); err != nil {
		return nil, fmt.Errorf("preparing POP settings read: %w", err)
	}
	return m, nil
}

// Close releases the prepared statements.
func (m *Maildrop) Close() error {
	return errors.Join(m.list.Close(), m.body.Close(), m.settings.Close())
}

// Locked reports whether a POP3 session holds the account's maildrop.
func (m *Maildrop) Locked(accountID int64) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.locked[accountID]
	return ok
}

// NewSession implements popd.Backend.
func (m *Maildrop) NewSession(c *popd.Conn) (popd.Session, error) {
	var remote netip.Addr
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		remote = ta.AddrPort().Addr()
	}
	return &popSession{m: m, remote: remote}, nil
}

type popSession struct {
	m        *Maildrop
	remote   netip.Addr
	account  int64 // 0 until Login succeeds
	settings POPSettings
	ids      []int64
	sizes    []int64
}

var _ popd.Session = (*popSession)(nil)

// Login implements popd.Session: the Authenticator decides, POP access is
// checked after a correct login (so "disabled" reveals nothing to someone
// without the password), then the maildrop lock is taken.
func (p *popSession) Login(ctx context.Context, username, password string) error {
	l, err := p.m.opts.Auth.Login(ctx, LoginRequest{Username: username, Password: password, Remote: p.remote, Service: ServicePOP3})
	if err != nil {
		var ae *AuthError
		if errors.As(err, &ae) {
			return p.m.authWireError(ae)
		}
		return fmt.Errorf("POP3 login: %w", err)
	}
	st, err := p.m.readSettings(ctx, l.Account.ID)
	if err != nil {
		return err
	}
	if st.Access == POPDisabled {
		return &popd.Error{Code: "SYS/PERM", Text: "POP access is disabled for this account: enable it in the settings " +
			`"Mail forwarding and POP/IMAP" > "POP download"` + p.m.at()}
	}
	p.m.mu.Lock()
	defer p.m.mu.Unlock()
	if _, busy := p.m.locked[l.Account.ID]; busy {
		return popd.ErrInUse
	}
	p.m.locked[l.Account.ID] = struct{}{}
	p.account, p.settings = l.Account.ID, st
	return nil
}

// readSettings is popSettings over the prepared statement.
func (m *Maildrop) readSettings(ctx context.Context, account int64) (POPSettings, error) {
	var p POPSettings
	var since sql.NullInt64
	if err := m.settings.QueryRowContext(ctx, account).Scan(&p.Access, &since, &p.IncludeSpam, &p.OnDelete); err != nil {
		return POPSettings{}, fmt.Errorf("reading POP settings: %w", err)
	}
	if since.Valid {
		p.Since = time.Unix(0, since.Int64)
	}
	return p, nil
}

func (m *Maildrop) at() string {
	if m.opts.SettingsURL == "" {
		return ""
	}
	return " at " + m.opts.SettingsURL
}

// authWireError turns a refused login into its RFC 2449/3206 answer.
func (m *Maildrop) authWireError(ae *AuthError) *popd.Error {
	switch ae.Reason {
	case AuthNotFullAddress:
		return &popd.Error{Code: "AUTH", Text: "use your full email address as the user name"}
	case AuthNeedAppPassword:
		return &popd.Error{Code: "AUTH", Text: "two-step verification is on: sign in with an app-specific password; create one in the settings" + m.at()}
	case AuthNoPassword:
		return &popd.Error{Code: "AUTH", Text: "this account has no mail password yet: set one in the settings" + m.at()}
	case AuthLocked:
		// RFC 2449 §8.1.1 LOGIN-DELAY: the client should not prompt for
		// a new password, just retry later (an [AUTH] here would make a
		// correct password look wrong).
		mins := int((ae.RetryAfter + time.Minute - 1) / time.Minute)
		return &popd.Error{Code: "LOGIN-DELAY", Text: fmt.Sprintf("too many failed logins: try again in %d minutes", max(mins, 1))}
	}
	return &popd.Error{Code: "AUTH", Text: "invalid user name or password"}
}

// Messages lists the POP queue in one query over the covering index
// messages_pop: in the queue, minus spam unless "include spam", minus mail
// received before "from now on" was chosen (the queue was emptied then;
// the filter also covers a delivery racing that choice).
func (p *popSession) Messages(ctx context.Context) ([]popd.Message, error) {
	var since int64
	if p.settings.Access == POPSince {
		since = p.settings.Since.UnixNano()
	}
	rows, err := p.m.list.QueryContext(ctx, p.account, boolInt(p.settings.IncludeSpam), since)
	if err != nil {
		return nil, fmt.Errorf("listing maildrop: %w", err)
	}
	defer rows.Close()
	var out []popd.Message
	for rows.Next() {
		var id, size int64
		if err := rows.Scan(&id, &size); err != nil {
			return nil, fmt.Errorf("listing maildrop: %w", err)
		}
		p.ids = append(p.ids, id)
		p.sizes = append(p.sizes, size)
		out = append(out, popd.Message{Size: size, UID: strconv.FormatInt(id, 10)})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing maildrop: %w", err)
	}
	return out, nil
}

// errGone: another process or an admin removed the message meanwhile.
var errGone = &popd.Error{Text: "message is no longer on the server"}

// bodyChunk: bodies up to this size are read in one query; larger ones in
// chunks of this size, so memory per RETR stays bounded.
const bodyChunk = 1 << 20

var bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// Open implements popd.Session.
func (p *popSession) Open(ctx context.Context, n int) (io.ReadCloser, error) {
	id, size := p.ids[n-1], p.sizes[n-1]
	if size > bodyChunk {
		return &chunkReader{ctx: ctx, m: p.m, account: p.account, id: id, size: size}, nil
	}
	buf := bodyPool.Get().(*bytes.Buffer)
	buf.Reset()
	if err := p.m.readBody(ctx, p.account, id, 1, size, buf); err != nil {
		bodyPool.Put(buf)
		return nil, err
	}
	return &pooledBody{Reader: bytes.NewReader(buf.Bytes()), buf: buf}, nil
}

// readBody appends octets [off, off+n) (1-based, SQL substr) of a body.
func (m *Maildrop) readBody(ctx context.Context, account, id, off, n int64, buf *bytes.Buffer) error {
	rows, err := m.body.QueryContext(ctx, off, n, id, account)
	if err != nil {
		return fmt.Errorf("reading message: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return fmt.Errorf("reading message: %w", err)
		}
		return errGone
	}
	var raw sql.RawBytes
	if err := rows.Scan(&raw); err != nil {
		return fmt.Errorf("reading message: %w", err)
	}
	buf.Write(raw)
	return rows.Close()
}

type pooledBody struct {
	*bytes.Reader
	buf *bytes.Buffer
}

func (b *pooledBody) Close() error {
	if b.buf != nil && b.buf.Cap() <= 4*bodyChunk {
		bodyPool.Put(b.buf)
	}
	b.buf = nil
	return nil
}

// chunkReader streams a large body in bodyChunk pieces.
type chunkReader struct {
	ctx     context.Context
	m       *Maildrop
	account int64
	id      int64
	size    int64
	off     int64
	buf     bytes.Buffer
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if r.buf.Len() == 0 {
		if r.off >= r.size {
			return 0, io.EOF
		}
		n := min(bodyChunk, r.size-r.off)
		r.buf.Reset()
		if err := r.m.readBody(r.ctx, r.account, r.id, r.off+1, n, &r.buf); err != nil {
			return 0, err
		}
		if int64(r.buf.Len()) == 0 {
			return 0, io.ErrUnexpectedEOF
		}
		r.off += int64(r.buf.Len())
	}
	return r.buf.Read(p)
}

func (r *chunkReader) Close() error { return nil }

// Expunge implements popd.Session: one transaction applies every mark per
// the current "when a client deletes" setting. keep: the messages leave the
// POP queue and stay in the mailbox; delete: the rows are removed.
func (p *popSession) Expunge(ctx context.Context, nums []int) error {
	ids := make([]byte, 0, 8*len(nums)+2)
	ids = append(ids, '[')
	for i, n := range nums {
		if i > 0 {
			ids = append(ids, ',')
		}
		ids = strconv.AppendInt(ids, p.ids[n-1], 10)
	}
	ids = append(ids, ']')
	return p.m.s.inTx(ctx, func(tx *sql.Tx) error {
		st, err := popSettings(ctx, tx, p.account)
		if err != nil {
			return err
		}
		q := `UPDATE messages SET in_pop = 0 WHERE account_id = ? AND id IN (SELECT value FROM json_each(?))`
		if st.OnDelete == DeleteOnServer {
			q = `DELETE FROM messages WHERE account_id = ? AND id IN (SELECT value FROM json_each(?))`
		}
		if _, err := tx.ExecContext(ctx, q, p.account, string(ids)); err != nil {
			return fmt.Errorf("applying DELE marks: %w", err)
		}
		return nil
	})
}

// Logout implements popd.Session: releases the maildrop lock.
func (p *popSession) Logout() error {
	if p.account == 0 {
		return nil
	}
	p.m.mu.Lock()
	delete(p.m.locked, p.account)
	p.m.mu.Unlock()
	p.account = 0
	return nil
}
