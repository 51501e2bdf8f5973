// Package store persists domains, accounts, credentials, POP settings and
// messages in one SQLite file (modernc.org/sqlite, no cgo), behind role
// interfaces (driver.go) that a second driver implements as well; the
// credential rules (Authenticator) work over those interfaces. The package
// is protocol-neutral: no POP3 or SMTP reply text or code lives here (the
// POP3 adapter is package popstore).
//
// The database runs in WAL mode with synchronous=FULL, so a commit is on
// disk (fsync'd) before it returns: a message acknowledged by SMTP or
// `skydeskd deliver` survives a kill -9. Writes go through one connection,
// reads through a small pool (DESIGN.md §7). *sql.DB never leaves the
// package; callers see typed methods and errors.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// FileName is the database file inside the data directory.
const FileName = "skydeskd.db"

//go:embed migrations/*.sql
var migrations embed.FS

// Store is the SQLite-backed persistence layer. It is safe for concurrent
// use.
type Store struct {
	w    *sql.DB // exactly one connection: SQLite has one writer
	r    *sql.DB // readers (WAL lets them run beside the writer)
	path string
	now  func() time.Time
	opts Options

	domains          domainCache
	onDomainsChanged []func()
	md               maildropStmts
	obKey            OnboardingKey
	counters         *MemoryCounters // the login throttle's (throttle_store.go)
}

// Options configure a Store.
type Options struct {
	// PersonalDomain is the provider's own domain (A-labels, lower case):
	// accounts there are "personal"; every other account needs a hosted
	// domain.
	PersonalDomain string
	// HashParams tunes password hashing; zero means DefaultHashParams.
	HashParams HashParams
	// TOTPIssuer names the service in authenticator apps (the provider's
	// display name); empty means DefaultTOTPIssuer.
	TOTPIssuer string
	// DefaultQuota is the mailbox quota in octets of accounts without one
	// of their own; 0 means unlimited.
	DefaultQuota int64
}

// Errors callers test with errors.Is.
var (
	ErrNotFound      = errors.New("not found")
	ErrExists        = errors.New("already exists")
	ErrUnknownDomain = errors.New("domain is neither the personal domain nor a hosted domain")
)

// Open opens (creating if needed) the database in dir and applies pending
// migrations.
func Open(ctx context.Context, dir string, opts Options) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating data directory: %w", err)
	}
	return OpenFile(ctx, filepath.Join(dir, FileName), opts)
}

// OpenFile opens the database at path.
func OpenFile(ctx context.Context, path string, opts Options) (*Store, error) {
	if opts.HashParams == (HashParams{}) {
		opts.HashParams = DefaultHashParams
	}
	// _txlock=immediate: write transactions take the lock at BEGIN, so two
	// writers never deadlock upgrading a read lock.
	dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)" +
		"&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)&_txlock=immediate"
	w, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("opening database: %w", err)
	}
	w.SetMaxOpenConns(1)
	r, err := sql.Open("sqlite", dsn+"&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("opening database: %w", err)
	}
	r.SetMaxOpenConns(8)
	r.SetMaxIdleConns(8)
	s := &Store{w: w, r: r, path: path, now: time.Now, opts: opts}
	s.counters = NewMemoryCounters(func() time.Time { return s.now() })
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if _, err := s.RefreshDomains(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.prepareMaildrop(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Path returns the database file name.
func (s *Store) Path() string { return s.path }

// Close closes both pools. In-flight transactions are rolled back by SQLite.
func (s *Store) Close() error {
	return errors.Join(s.md.close(), s.r.Close(), s.w.Close())
}

// OnDomainsChanged registers f to run after a hosted domain is added or
// removed through this Store.
func (s *Store) OnDomainsChanged(f func()) { s.onDomainsChanged = append(s.onDomainsChanged, f) }

func (s *Store) domainsChanged() {
	for _, f := range s.onDomainsChanged {
		f()
	}
}

// migrate applies embedded migrations NNNN_name.sql in order, each in its
// own transaction with its version recorded, so a crash leaves either the
// old or the new schema.
func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, applied INTEGER NOT NULL) STRICT`); err != nil {
		return fmt.Errorf("creating migrations table: %w", err)
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		base := filepath.Base(name)
		v, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
		if err != nil {
			return fmt.Errorf("migration %s: bad version prefix", base)
		}
		if err := s.applyMigration(ctx, v, name); err != nil {
			return fmt.Errorf("migration %s: %w", base, err)
		}
	}
	return nil
}

func (s *Store) applyMigration(ctx context.Context, version int, name string) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, version).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	body, err := migrations.ReadFile(name)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, string(body)); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied) VALUES (?, ?)`, version, s.now().Unix()); err != nil {
		return err
	}
	return tx.Commit()
}

// SchemaVersion returns the highest applied migration.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.r.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v)
	return v, err
}

// inTx runs f in a write transaction, committing if f returns nil.
func (s *Store) inTx(ctx context.Context, f func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("beginning transaction: %w", err)
	}
	defer tx.Rollback()
	if err := f(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("committing: %w", err)
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	return s.r.QueryRowContext(ctx, `SELECT 1`).Scan(&one)
}
