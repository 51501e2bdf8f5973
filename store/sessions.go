package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// SessionKey identifies a settings session in the store: SHA-256 of the
// session id. The id is the secret the browser holds in its cookie; the
// store never sees it, so a copy of the database (a backup, a replica)
// signs nobody in.
type SessionKey [32]byte

// WebSession is one signed-in session of the settings screen.
type WebSession struct {
	Key       SessionKey
	AccountID int64
	// Generation is the account's credential generation the session is
	// bound to (CredentialRecord.Generation at sign-in).
	Generation int64
	// Created is the sign-in, Seen the last request, AuthAt the last time
	// the owner proved the account password (sign-in or
	// re-authentication).
	Created, Seen, AuthAt time.Time

	// Read by GetSession from the account: its address and current
	// credential generation. A session with Generation !=
	// AccountGeneration is over.
	Address           string
	AccountGeneration int64
}

// Current reports whether no credential change happened since the
// session was bound.
func (s WebSession) Current() bool { return s.Generation == s.AccountGeneration }

// SessionLimits bound the sessions table so that signing in again and
// again cannot fill the disk: an account keeps at most PerAccount
// sessions and the table at most Total; past either, the sessions seen
// longest ago give way to the new one.
type SessionLimits struct {
	PerAccount, Total int
}

// Sessions store the settings screen's sessions (webui), so they survive
// a restart and, with a shared database, are seen by every node. Times are
// kept to the second. The lifetime policy (idle and absolute limits,
// re-authentication age) belongs to the caller; the store keeps the times
// and the credential generation binding.
type Sessions interface {
	// CreateSession stores a new session (s.Address and
	// s.AccountGeneration are ignored), then trims the account's and the
	// table's sessions to lim. A session bound to an older generation
	// than the account's may be created: it is simply never Current.
	CreateSession(ctx context.Context, s WebSession, lim SessionLimits) error
	// GetSession reads a session with its account's address and current
	// generation in one indexed read; ErrNotFound if there is none (or
	// its account is gone).
	GetSession(ctx context.Context, key SessionKey) (WebSession, error)
	// TouchSession records a request at seen (the idle timer).
	TouchSession(ctx context.Context, key SessionKey, seen time.Time) error
	// ReauthSession records that the owner proved the password again at.
	ReauthSession(ctx context.Context, key SessionKey, at time.Time) error
	// RebindSession is called after this session made one credential
	// change (every change moves the account's generation on by exactly
	// one). When the account's generation is from+1, it binds the session
	// to it and deletes every other session of the account, in one
	// transaction, and reports true. Otherwise another change came in
	// between, from elsewhere: the session is deleted too, and false.
	RebindSession(ctx context.Context, key SessionKey, from int64) (bool, error)
	// DeleteSession ends one session (signing out); none is no error.
	DeleteSession(ctx context.Context, key SessionKey) error
	// DeleteAccountSessions ends every session of an account (any case)
	// and returns how many there were; ErrNotFound for no such account.
	DeleteAccountSessions(ctx context.Context, address string) (int64, error)
	// ExpireSessions deletes the sessions last seen before seenBefore or
	// created before createdBefore, returning how many.
	ExpireSessions(ctx context.Context, seenBefore, createdBefore time.Time) (int64, error)

	// The session's scratch (sessions_scratch.go): a few short-lived
	// entries, one per kind, that end with the session.

	// PutScratch stores the session's entry of kind (1-16 octets),
	// replacing any, with no failures counted; sealed (at most
	// MaxScratchSealed octets) is opaque to the store. ErrNotFound if
	// there is no such session.
	PutScratch(ctx context.Context, key SessionKey, kind string, sealed []byte, expires time.Time) error
	// GetScratch reads the entry of kind; ErrNotFound if there is none
	// or it has expired (now at or past Expires).
	GetScratch(ctx context.Context, key SessionKey, kind string, now time.Time) (Scratch, error)
	// TakeScratch reads and deletes the entry of kind in one statement:
	// of requests racing for it, on any node, one gets it. ErrNotFound
	// as GetScratch (an expired entry is deleted too).
	TakeScratch(ctx context.Context, key SessionKey, kind string, now time.Time) (Scratch, error)
	// FailScratch counts one failed use of the entry of kind, if it is
	// still the one sealed (not replaced meanwhile), and returns the
	// failures counted so far; ErrNotFound otherwise. The count is kept
	// by the store, so nodes sharing it share one limit.
	FailScratch(ctx context.Context, key SessionKey, kind string, sealed []byte) (int, error)
	// DeleteScratch deletes the entry of kind; none is no error.
	DeleteScratch(ctx context.Context, key SessionKey, kind string) error
}

// MaxScratchSealed bounds a scratch entry's sealed value.
const MaxScratchSealed = 4096

// Scratch is one entry of a session's scratch as PutScratch left it.
// Times are kept to the second.
type Scratch struct {
	Sealed   []byte
	Expires  time.Time
	Failures int
}

var _ Sessions = (*Store)(nil)

// CreateSession implements Sessions.
func (s *Store) CreateSession(ctx context.Context, ws WebSession, lim SessionLimits) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO web_sessions (id_hash, account_id, generation, created, seen, auth_at)
			VALUES (?, ?, ?, ?, ?, ?)`, ws.Key[:], ws.AccountID, ws.Generation,
			ws.Created.Unix(), ws.Seen.Unix(), ws.AuthAt.Unix()); err != nil {
			return fmt.Errorf("creating session: %w", err)
		}
		// The newest stay; the new one is kept whatever its ties.
		if lim.PerAccount > 0 {
			if _, err := tx.ExecContext(ctx, `DELETE FROM web_sessions WHERE id_hash IN (
				SELECT id_hash FROM web_sessions WHERE account_id = ? AND id_hash != ?
				ORDER BY seen DESC, created DESC LIMIT -1 OFFSET ?)`,
				ws.AccountID, ws.Key[:], lim.PerAccount-1); err != nil {
				return fmt.Errorf("trimming the account's sessions: %w", err)
			}
		}
		if lim.Total > 0 {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM web_sessions`).Scan(&n); err != nil {
				return fmt.Errorf("counting sessions: %w", err)
			}
			if n > lim.Total {
				if _, err := tx.ExecContext(ctx, `DELETE FROM web_sessions WHERE id_hash IN (
					SELECT id_hash FROM web_sessions WHERE id_hash != ? ORDER BY seen, created LIMIT ?)`,
					ws.Key[:], n-lim.Total); err != nil {
					return fmt.Errorf("trimming sessions: %w", err)
				}
			}
		}
		return nil
	})
}

// GetSession implements Sessions: one read by primary key joined to the
// account by primary key.
func (s *Store) GetSession(ctx context.Context, key SessionKey) (WebSession, error) {
	ws := WebSession{Key: key}
	var created, seen, auth int64
	err := s.r.QueryRowContext(ctx, `SELECT w.account_id, w.generation, w.created, w.seen, w.auth_at, a.address, a.credential_gen
		FROM web_sessions w JOIN accounts a ON a.id = w.account_id WHERE w.id_hash = ?`, key[:]).
		Scan(&ws.AccountID, &ws.Generation, &created, &seen, &auth, &ws.Address, &ws.AccountGeneration)
	if errors.Is(err, sql.ErrNoRows) {
		return WebSession{}, fmt.Errorf("session: %w", ErrNotFound)
	}
	if err != nil {
		return WebSession{}, fmt.Errorf("reading session: %w", err)
	}
	ws.Created, ws.Seen, ws.AuthAt = time.Unix(created, 0), time.Unix(seen, 0), time.Unix(auth, 0)
	return ws, nil
}

// TouchSession implements Sessions.
func (s *Store) TouchSession(ctx context.Context, key SessionKey, seen time.Time) error {
	if _, err := s.w.ExecContext(ctx, `UPDATE web_sessions SET seen = ? WHERE id_hash = ?`, seen.Unix(), key[:]); err != nil {
		return fmt.Errorf("touching session: %w", err)
	}
	return nil
}

// ReauthSession implements Sessions.
func (s *Store) ReauthSession(ctx context.Context, key SessionKey, at time.Time) error {
	if _, err := s.w.ExecContext(ctx, `UPDATE web_sessions SET auth_at = ?, seen = ? WHERE id_hash = ?`,
		at.Unix(), at.Unix(), key[:]); err != nil {
		return fmt.Errorf("recording re-authentication: %w", err)
	}
	return nil
}

// RebindSession implements Sessions.
func (s *Store) RebindSession(ctx context.Context, key SessionKey, from int64) (bool, error) {
	var ok bool
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var account int64
		err := tx.QueryRowContext(ctx, `UPDATE web_sessions SET generation = ? WHERE id_hash = ? AND generation = ?
			AND (SELECT credential_gen FROM accounts WHERE id = account_id) = ? RETURNING account_id`,
			from+1, key[:], from, from+1).Scan(&account)
		if errors.Is(err, sql.ErrNoRows) {
			_, err = tx.ExecContext(ctx, `DELETE FROM web_sessions WHERE id_hash = ?`, key[:])
			return err
		}
		if err != nil {
			return err
		}
		ok = true
		_, err = tx.ExecContext(ctx, `DELETE FROM web_sessions WHERE account_id = ? AND id_hash != ?`, account, key[:])
		return err
	})
	if err != nil {
		return false, fmt.Errorf("rebinding session: %w", err)
	}
	return ok, nil
}

// DeleteSession implements Sessions.
func (s *Store) DeleteSession(ctx context.Context, key SessionKey) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM web_sessions WHERE id_hash = ?`, key[:]); err != nil {
		return fmt.Errorf("deleting session: %w", err)
	}
	return nil
}

// DeleteAccountSessions implements Sessions.
func (s *Store) DeleteAccountSessions(ctx context.Context, address string) (int64, error) {
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		id, _, err := accountID(ctx, tx, address)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM web_sessions WHERE account_id = ?`, id)
		if err != nil {
			return fmt.Errorf("ending sessions: %w", err)
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

// ExpireSessions implements Sessions.
func (s *Store) ExpireSessions(ctx context.Context, seenBefore, createdBefore time.Time) (int64, error) {
	res, err := s.w.ExecContext(ctx, `DELETE FROM web_sessions WHERE seen < ? OR created < ?`,
		seenBefore.Unix(), createdBefore.Unix())
	if err != nil {
		return 0, fmt.Errorf("expiring sessions: %w", err)
	}
	return res.RowsAffected()
}
