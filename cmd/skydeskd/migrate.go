package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/skydesk/skydeskd/store"
	"github.com/skydesk/skydeskd/store/migrate"
)

// cmdMigrate is `skydeskd migrate --from sqlite:PATH --to postgres:URL`:
// the SQLite store (a file, or a data directory holding skydeskd.db)
// copied into a new PostgreSQL database and verified (store/migrate).
// Refusals (non-empty target, other schema version, failed verification)
// exit 2 and leave the target without data.
func cmdMigrate(ctx context.Context, args []string, e env) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	from := fs.String("from", "", "sqlite:PATH (the database file or the data directory)")
	to := fs.String("to", "", "postgres:URL (postgres://user@host/db?…)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	path, ok := strings.CutPrefix(*from, "sqlite:")
	if !ok || path == "" {
		return usagef("migrate: --from sqlite:PATH is required")
	}
	url, err := targetURL(*to)
	if err != nil {
		return err
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, store.FileName)
	}
	sum, err := migrate.Run(ctx, path, url, migrate.Options{})
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	printSummary(e.stdout, path, sum)
	return nil
}

// targetURL takes postgres:URL, and a bare postgres:// or postgresql://
// URL as well (its scheme already says the driver).
func targetURL(to string) (string, error) {
	if strings.HasPrefix(to, "postgres://") || strings.HasPrefix(to, "postgresql://") {
		return to, nil
	}
	url, ok := strings.CutPrefix(to, "postgres:")
	if !ok || !(strings.HasPrefix(url, "postgres://") || strings.HasPrefix(url, "postgresql://")) {
		return "", usagef("migrate: --to postgres:postgres://USER@HOST/DB is required")
	}
	return url, nil
}

func printSummary(w io.Writer, path string, s migrate.Summary) {
	fmt.Fprintf(w, "migrated %s (schema version %d) in %s\n", path, s.SchemaVersion, s.Elapsed.Round(1e6))
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "table\trows\tverified")
	for _, t := range s.Tables {
		fmt.Fprintf(tw, "%s\t%d\tcount, checksum\n", t.Table, t.Rows)
	}
	tw.Flush()
	fmt.Fprintf(w, "message bodies: %d (%.1f MiB), SHA-256 equal in source and target\n", s.Messages, float64(s.BodyOctets)/(1<<20))
	fmt.Fprintf(w, "sequences reset: %d (new ids follow the highest SQLite gave out)\n", s.Sequences)
	for _, t := range s.Skipped {
		fmt.Fprintf(w, "not copied: %s (%d rows): %s\n", t.Table, t.Rows, migrate.SkipReason(t.Table))
	}
}
