package migrate

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pquerna/otp/totp"

	"github.com/skydesk/skydeskd/store"
	"github.com/skydesk/skydeskd/store/postgres"
	"github.com/skydesk/skydeskd/store/postgres/pgtest"
)

var opts = store.Options{PersonalDomain: "skydesk.jp", HashParams: store.TestHashParams}

func openSQLite(t *testing.T, path string) *store.Store {
	t.Helper()
	s, err := store.OpenFile(context.Background(), path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openPG(t *testing.T, url string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), url, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// A store with a row in every table moves whole: what the API shows is
// the same on both drivers (accounts, credentials, app passwords, POP
// settings and last access, forwarding, usage and quota, every POP UID
// and body, the queue, the session, onboarding, certificates); logins
// work with the same secrets; a message delivered afterwards gets a UID
// above every one SQLite gave out; a second run is refused.
func TestRun(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	url := pgtest.URL(t)
	sum, err := Run(ctx, f.path, url, Options{})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	rows := map[string]int64{}
	for _, tc := range sum.Tables {
		rows[tc.Table] = tc.Rows
	}
	for table, want := range map[string]int64{"domains": 2, "accounts": 3, "app_passwords": 1, "messages": 9,
		"message_chunks": 4, "queue_messages": 1, "queue_rcpts": 1, "web_sessions": 1, "forwards": 1,
		"cert_blobs": 1, "onboarding": 1, "pop_last_access": 1} {
		if rows[table] != want {
			t.Errorf("%s: %d rows copied, want %d", table, rows[table], want)
		}
	}
	if sum.Messages != 9 || sum.BodyOctets < f.bigSize || sum.Sequences < 4 || len(sum.Skipped) != len(skipped) {
		t.Errorf("summary = %+v", sum)
	}

	src := openSQLite(t, f.path)
	dst := openPG(t, url)
	want, got := view(t, src, src.Certs(), f.certKey), view(t, dst, dst.Certs(), f.certKey)
	if want != got {
		t.Errorf("the API shows a different store after the move:\n--- SQLite\n%s\n--- PostgreSQL\n%s", want, got)
	}
	if !strings.Contains(got, "octets") || !strings.Contains(got, "someone@elsewhere.example") {
		t.Errorf("view misses bodies or the queue:\n%s", got)
	}

	if err := login(t, dst, store.ServicePOP3, taro, taroPW, ""); err != nil {
		t.Errorf("taro's POP login: %v", err)
	}
	if err := login(t, dst, store.ServicePOP3, taro, "wrong-password", ""); err == nil {
		t.Error("a wrong password logged in")
	}
	if err := login(t, dst, store.ServiceSMTP, hanako, f.appPass, ""); err != nil {
		t.Errorf("hanako's app password: %v", err)
	}
	code, err := totp.GenerateCode(f.totp, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := login(t, dst, store.ServiceWeb, hanako, hanakPW, code); err != nil {
		t.Errorf("hanako's settings login with password and code: %v", err)
	}
	if err := login(t, dst, store.ServicePOP3, fed, "any-password-1", ""); err == nil {
		t.Error("the federated account logged in with a password")
	}

	ids, err := dst.Deliver(ctx, store.Delivery{Recipients: []string{hanako}, Body: []byte("Subject: after\n\nnew\n")})
	if err != nil {
		t.Fatal(err)
	}
	if ids[0] <= f.deleted {
		t.Errorf("new message id %d, not above the deleted %d: a UID would be reused", ids[0], f.deleted)
	}
	if _, err := dst.AddAccount(ctx, store.NewAccount{Address: "new@skydesk.jp", Password: "new-password-1"}); err != nil {
		t.Errorf("adding an account after the move: %v", err)
	}

	_, err = Run(ctx, f.path, url, Options{})
	if !errors.Is(err, ErrNotEmpty) || !strings.Contains(err.Error(), "accounts") {
		t.Errorf("second run: %v, want ErrNotEmpty naming accounts", err)
	}
}

// A target that reads back different from the source (a chunk's octets,
// or any column of another table) fails the run and keeps nothing: the
// copy is one transaction, and a later run into the same database works.
func TestRun_verifyFails(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	c := pgtest.Start(t)
	url := c.NewDatabase(t)
	for _, tc := range []struct{ name, sql, want string }{
		{"chunk", `UPDATE message_chunks SET data = overlay(data placing '\x58'::bytea from 100) WHERE seq = 1`, "body differs"},
		{"message gone", `DELETE FROM messages WHERE id = (SELECT max(id) FROM messages WHERE NOT chunked)`, "rows in the source"},
		{"column", `UPDATE accounts SET quota = 7 WHERE quota IS NULL`, "table accounts: rows differ"},
		{"meta", `UPDATE meta SET value = 'x' WHERE key = 'onboarding_key'`, "table meta"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Run(ctx, f.path, url, Options{beforeVerify: func(ctx context.Context, tx pgx.Tx) error {
				tag, err := tx.Exec(ctx, tc.sql, pgx.QueryExecModeSimpleProtocol)
				if err == nil && tag.RowsAffected() == 0 {
					t.Errorf("%s changed nothing", tc.sql)
				}
				return err
			}})
			if !errors.Is(err, ErrVerify) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run = %v, want ErrVerify with %q", err, tc.want)
			}
		})
	}
	dst := openPG(t, url)
	if a, err := dst.ListAccounts(ctx); err != nil || len(a) != 0 {
		t.Fatalf("after failed runs the target has accounts %v (%v)", a, err)
	}
	dst.Close()
	if _, err := Run(ctx, f.path, url, Options{}); err != nil {
		t.Fatalf("run after failed ones: %v", err)
	}
}

// Before writing anything, a source is refused whose schema version is
// not this binary's, or that has a table or column the migration does
// not know.
func TestRun_refusesSource(t *testing.T) {
	ctx := context.Background()
	c := pgtest.Start(t)
	for _, tc := range []struct{ name, sql, want string }{
		{"newer", `INSERT INTO schema_migrations (version, applied) VALUES (9999, 0)`, "version 9999"},
		{"older", `DELETE FROM schema_migrations WHERE version = (SELECT max(version) FROM schema_migrations)`, "schema versions differ"},
		{"unknown table", `CREATE TABLE throttle_future (k TEXT PRIMARY KEY) STRICT`, "throttle_future: neither copied nor skipped"},
		{"unknown column", `ALTER TABLE domains ADD COLUMN note TEXT`, "only in SQLite [note]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			db, err := sql.Open("sqlite", "file:"+f.path)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := db.ExecContext(ctx, tc.sql); err != nil {
				t.Fatal(err)
			}
			db.Close()
			url := c.NewDatabase(t)
			if _, err := Run(ctx, f.path, url, Options{}); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run = %v, want an error with %q", err, tc.want)
			}
			if a, err := openPG(t, url).ListAccounts(ctx); err != nil || len(a) != 0 {
				t.Errorf("refused run left accounts %v (%v)", a, err)
			}
		})
	}
}
