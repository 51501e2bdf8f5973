package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// The bulk loader of the scale measurement (scale_test.go): test code,
// not an admin command. Loading a million accounts through the store
// would hash a million passwords; COPY writes rows with one precomputed
// hash (the PHC string store.HashPassword makes, the format the store
// writes and verifies) in seconds instead of hours.

// scaleDomain and scaleAddress name the loaded domains and accounts:
// account i lives in domain i mod domains.
func scaleDomain(i int) string           { return fmt.Sprintf("d%05d.scale.example", i) }
func scaleAddress(i, domains int) string { return fmt.Sprintf("u%07d@%s", i, scaleDomain(i%domains)) }

// bulkLoad fills an empty, migrated database: domains hosted domains,
// accounts organisation accounts with the password hash and POP access
// "all", and msgAccounts of them with an app password and msgsEach small
// messages (so the planner meets tables of some size, as in production).
func bulkLoad(ctx context.Context, url string, domains, accounts int, hash string, msgAccounts, msgsEach int) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("bulk load: connecting: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	now := time.Now().Unix()
	i := 0
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{"domains"}, []string{"name", "created"},
		pgx.CopyFromFunc(func() ([]any, error) {
			if i == domains {
				return nil, nil
			}
			i++
			return []any{scaleDomain(i - 1), now}, nil
		})); err != nil {
		return fmt.Errorf("bulk load: domains: %w", err)
	}
	i = 0
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{"accounts"}, []string{"address", "domain", "kind", "password_hash", "created"},
		pgx.CopyFromFunc(func() ([]any, error) {
			if i == accounts {
				return nil, nil
			}
			i++
			return []any{scaleAddress(i-1, domains), scaleDomain((i - 1) % domains), "organization", hash, now}, nil
		})); err != nil {
		return fmt.Errorf("bulk load: accounts: %w", err)
	}
	body := []byte(strings.Repeat("x", 200) + "\r\n")
	received := time.Now().UnixNano()
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO pop_settings (account_id, access) SELECT id, 'all' FROM accounts`, nil},
		{`INSERT INTO messages (account_id, received, size, body)
			SELECT a.id, $1, $2, $3 FROM (SELECT id FROM accounts ORDER BY id LIMIT $4) a, generate_series(1, $5)`,
			[]any{received, len(body), body, msgAccounts, msgsEach}},
		{`INSERT INTO app_passwords (account_id, name, hash, created)
			SELECT id, 'phone', $1, $2 FROM accounts ORDER BY id LIMIT $3`, []any{hash, now, msgAccounts}},
		{`UPDATE meta SET value = (value::bigint + 1)::text WHERE key = 'domains_serial'`, nil},
		{`ANALYZE`, nil},
	} {
		if _, err := conn.Exec(ctx, q.sql, q.args...); err != nil {
			return fmt.Errorf("bulk load: %s: %w", strings.Fields(q.sql)[0], err)
		}
	}
	return nil
}

func pgxConnect(ctx context.Context, url string) (*pgx.Conn, error) { return pgx.Connect(ctx, url) }

// explain runs EXPLAIN ANALYZE on sql and returns the plan and the
// execution time PostgreSQL reports.
func explain(ctx context.Context, conn *pgx.Conn, sql string, args ...any) (plan, took string, err error) {
	rows, err := conn.Query(ctx, "EXPLAIN (ANALYZE, COSTS OFF) "+sql, args...)
	if err != nil {
		return "", "", err
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return "", "", err
	}
	var b strings.Builder
	for _, l := range lines {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "Execution Time: "); ok {
			took = v
		}
		b.WriteString(l + "\n")
	}
	return b.String(), took, nil
}

// scanNodes lists the scan nodes of a plan, e.g. "Index Scan using
// accounts_address_key on accounts".
func scanNodes(plan string) string {
	var out []string
	for _, l := range strings.Split(plan, "\n") {
		l = strings.TrimLeft(strings.TrimSpace(l), "-> ")
		if strings.Contains(l, "Scan") {
			out = append(out, strings.TrimSpace(strings.SplitN(l, "(", 2)[0]))
		}
	}
	return strings.Join(out, "; ")
}
