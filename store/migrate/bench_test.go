package migrate

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/skydesk/skydeskd/store"
	"github.com/skydesk/skydeskd/store/postgres/pgtest"
	"github.com/skydesk/skydeskd/store/storetest"
)

// BenchmarkRun_10k moves 100 accounts with 10,000 messages of 4 KiB and
// 20 of 1 MiB (chunked) per run into a new database, verification
// included:
//
//	go test -run '^$' -bench Run_10k -benchtime 3x ./store/migrate
func BenchmarkRun_10k(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	s := storetest.NewIn(b, dir)
	for i := range 100 {
		storetest.AddUser(b, s, fmt.Sprintf("user%d@example.co.jp", i), "user-password-1")
	}
	for i := range 20 {
		big := bytes.Repeat([]byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd\r\n"), (1<<20)/64)
		if _, err := s.Deliver(ctx, store.Delivery{Recipients: []string{fmt.Sprintf("user%d@example.co.jp", i)}, Stream: bytes.NewReader(big)}); err != nil {
			b.Fatal(err)
		}
	}
	s.Close()
	path := filepath.Join(dir, store.FileName)
	fillMessages(b, path, 10_000, 4096)
	c := pgtest.Start(b)
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		url := c.NewDatabase(b)
		b.StartTimer()
		sum, err := Run(ctx, path, url, Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(sum.Messages), "messages")
		b.ReportMetric(float64(sum.BodyOctets)/(1<<20), "MiB")
	}
}

// fillMessages adds n messages of size octets, spread over the accounts,
// in one SQLite transaction (the store's Deliver commits each with an
// fsync, too slow to set up a benchmark).
func fillMessages(b *testing.B, path string, n, size int) {
	b.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=foreign_keys(1)")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	tx, err := db.Begin()
	if err != nil {
		b.Fatal(err)
	}
	body := bytes.Repeat([]byte("x"), size-2)
	for i := range n {
		body[0] = byte('a' + i%26)
		if _, err := tx.Exec(`INSERT INTO messages (account_id, received, size, body) SELECT id, ?, ?, ? FROM accounts ORDER BY id LIMIT 1 OFFSET ?`,
			int64(i)*1e9, size, append(body, '\r', '\n'), i%100); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := tx.Exec(`UPDATE accounts SET usage = (SELECT coalesce(sum(size), 0) FROM messages WHERE account_id = accounts.id)`); err != nil {
		b.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
}
