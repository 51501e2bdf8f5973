// Package postgres is the PostgreSQL store driver (github.com/jackc/pgx/v5
// with pgxpool), for several nodes sharing one database. It implements
// store.Driver as the SQLite store does and passes the same conformance
// suite (store/storetest); the credential rules, the POP3 adapter, smtpd
// and the settings page run over it unchanged. The account rules it
// applies when writing (password policy and hashing, app-password
// secrets, TOTP) are store's own (store/driverkit.go), so both drivers
// store the same hashes and refuse the same input.
//
// Its schema is embedded (migrations/*.sql), one file per SQLite migration
// with the same version number, so a version means the same tables on both
// drivers; 0011 (the shared login throttle) has no SQLite twin, since
// SQLite counts in process memory. Whichever process opens the database first (a node or an admin
// command) applies pending migrations under a PostgreSQL advisory lock;
// the others wait for it and find nothing left to do.
//
// Shared today: everything the store holds (domains, accounts,
// credentials and their generation, POP settings, messages with their
// bodies in bytea, chunked beyond store.ChunkSize, quotas and usage, kept
// under the account row's lock (quota.go), the relay queue, settings
// sessions, certificates and their locks, the last POP session, the
// onboarding records, the POP3 maildrop leases (leases.go) and the
// failed-login throttle's counts (throttle.go). Each node keeps a
// snapshot of the hosted domains, refreshed when another node's change
// arrives by LISTEN/NOTIFY (listen.go). Still per process: the login
// cache (a credential change voids it on every node through the shared
// credential generation).
//
// A database that cannot be used (refused, restarting, a broken
// connection, no answer within QueryTimeout) fails each call with an
// error that errors.Is store.ErrUnavailable (errors.go), which the
// protocols answer as temporary; the pool reconnects by itself at the
// first query after the database returns.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/skydesk/skydeskd/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is the PostgreSQL-backed store. It is safe for concurrent use.
type Store struct {
	pool boundedPool // every statement bounded and classified (errors.go)
	now  func() time.Time
	opts store.Options

	domains          domainCache
	refreshMu        sync.Mutex
	onDomainsChanged []func()
	obKey            store.OnboardingKey
	listen           listenHooks // listen.go
}

var _ store.Driver = (*Store)(nil)

// DefaultMaxConns is the pool size unless the URL sets pool_max_conns.
const DefaultMaxConns = 16

// migrationLock is the advisory lock key (pg_advisory_lock) under which
// migrations run: "skydeskd" in ASCII.
const migrationLock = 0x736b796465736b64

// Open connects to the database at url (postgres://user@host/db?…, any
// libpq key word pgx takes, plus pgxpool's pool_* settings) and applies
// pending migrations.
func Open(ctx context.Context, url string, opts store.Options) (*Store, error) {
	if opts.HashParams == (store.HashParams{}) {
		opts.HashParams = store.DefaultHashParams
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("database url: %w", err)
	}
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = DefaultMaxConns
	}
	if !strings.Contains(url, "connect_timeout") {
		cfg.ConnConfig.ConnectTimeout = connectTimeout
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to PostgreSQL: %w", classify(err))
	}
	s := &Store{pool: boundedPool{Pool: pool, timeout: QueryTimeout}, now: time.Now, opts: opts}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	if _, err := s.RefreshDomains(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the pool, waiting for connections in use to be returned.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// Ping checks that the database answers; a failure is store.ErrUnavailable.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("pinging PostgreSQL: %w", err)
	}
	return nil
}

// migrate applies the embedded migrations NNNN_name.sql in order, each in
// its own transaction with its version recorded, on one connection that
// holds the advisory lock meanwhile: two processes opening a new database
// at once apply each migration once.
func (s *Store) migrate(ctx context.Context) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("connecting to PostgreSQL: %w", classify(err))
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(migrationLock)); err != nil {
		return fmt.Errorf("taking the migration lock: %w", err)
	}
	defer func() {
		// A failed unlock ends the connection, which releases the lock.
		if _, err := conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, int64(migrationLock)); err != nil {
			conn.Conn().Close(context.WithoutCancel(ctx))
		}
	}()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, applied BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("creating migrations table: %w", err)
	}
	ms, err := store.ReadMigrations(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	for _, m := range ms {
		if err := s.applyMigration(ctx, conn.Conn(), m); err != nil {
			return fmt.Errorf("migration %s: %w", m.Name, err)
		}
	}
	return nil
}

func (s *Store) applyMigration(ctx context.Context, conn *pgx.Conn, m store.Migration) error {
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM schema_migrations WHERE version = $1`, m.Version).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		// The simple protocol runs a file of several statements at once.
		if _, err := tx.Exec(ctx, m.SQL, pgx.QueryExecModeSimpleProtocol); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, applied) VALUES ($1, $2)`, m.Version, s.now().Unix())
		return err
	})
}

// SchemaVersion returns the highest applied migration.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.pool.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v)
	return v, err
}

// querier is what a pool and a transaction share.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// inTx runs f in a transaction, committing if f returns nil. The
// transaction, each of its statements included, ends by QueryTimeout
// (unless ctx ends sooner), and a failure of the database is
// store.ErrUnavailable.
func (s *Store) inTx(ctx context.Context, f func(tx pgx.Tx) error) error {
	ctx, cancel := s.pool.bound(ctx)
	defer cancel()
	return classify(s.runTx(ctx, f))
}

func (s *Store) runTx(ctx context.Context, f func(tx pgx.Tx) error) error {
	tx, err := s.pool.Pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("beginning transaction: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	deadline, _ := ctx.Deadline() // bound set one
	if err := f(boundedTx{Tx: tx, deadline: deadline}); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("committing: %w", err)
	}
	return nil
}

// noRows reports whether err is a query's empty result.
func noRows(err error) bool { return errors.Is(err, pgx.ErrNoRows) }
