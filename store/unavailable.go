package store

import (
	"errors"
	"log/slog"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// ErrUnavailable marks a failure of the database rather than of the
// request: it could not be reached, it went away mid-query, it is starting
// up or shutting down, or it did not answer in time. The same call is
// expected to work again once the database is back, so protocols answer it
// as temporary (POP3 -ERR [SYS/TEMP], RFC 3206 §4; SMTP 451 4.3.0, RFC
// 3463 §3.5) and never as a refusal. The PostgreSQL driver wraps such
// errors so that errors.Is(err, ErrUnavailable) holds and the cause stays
// in the chain; test with IsUnavailable, which also knows SQLite's busy
// database.
var ErrUnavailable = errors.New("database unavailable")

// IsUnavailable reports whether err is the database's trouble, not the
// request's: ErrUnavailable in its chain, or SQLite's SQLITE_BUSY or
// SQLITE_LOCKED (the write lock still held by another process after the
// busy_timeout; the same write works once it is released).
func IsUnavailable(err error) bool {
	if errors.Is(err, ErrUnavailable) {
		return true
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff { // the primary code of an extended one
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return true
		}
	}
	return false
}

// OutageLogInterval is how often an OutageLog writes while the trouble
// lasts.
const OutageLogInterval = 10 * time.Second

// OutageLog reports a database outage at Warn without a line per session:
// the first unavailable error, then at most one line per
// OutageLogInterval, each counting the errors left out since the last
// (a POP3 or SMTP server under load sees hundreds a second). The zero
// value is ready; it is safe for concurrent use.
type OutageLog struct {
	mu      sync.Mutex
	last    time.Time
	dropped int
	now     func() time.Time // nil: time.Now (tests set it)
}

// Warn logs err (an IsUnavailable error met while doing what) unless a
// line was written less than OutageLogInterval ago.
func (o *OutageLog) Warn(log *slog.Logger, what string, err error) {
	o.mu.Lock()
	now := time.Now()
	if o.now != nil {
		now = o.now()
	}
	if !o.last.IsZero() && now.Sub(o.last) < OutageLogInterval {
		o.dropped++
		o.mu.Unlock()
		return
	}
	dropped := o.dropped
	o.last, o.dropped = now, 0
	o.mu.Unlock()
	log.Warn("database unavailable: answering temporary errors", "while", what, "err", err, "suppressed", dropped)
}
