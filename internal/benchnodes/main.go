// Command benchnodes seeds a store for `make bench-nodes` (run.sh beside
// it): accounts bench01…benchNN@skydesk.jp with one password, POP access
// "all mail", each with -msgs messages of about -size octets delivered
// through the store API (in process, no protocol and no process per
// message), and a quota-free sink account the SMTPS runs send to. A
// benchmark tool, not a product command: it lives here, out of the
// binary.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/skydesk/skydeskd/store"
	"github.com/skydesk/skydeskd/store/postgres"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "benchnodes:", err)
		os.Exit(1)
	}
}

func run() error {
	driver := flag.String("driver", "sqlite", "sqlite or postgres")
	data := flag.String("data", "", "sqlite: the data_dir")
	url := flag.String("url", "", "postgres: the database URL")
	users := flag.Int("users", 16, "accounts bench01…")
	msgs := flag.Int("msgs", 100, "messages per account")
	size := flag.Int("size", 20000, "approximate message size in octets")
	password := flag.String("password", "benchpass1", "the accounts' password")
	sink := flag.String("sink", "sink@skydesk.jp", "quota-free account the SMTP runs deliver to")
	flag.Parse()

	ctx := context.Background()
	opts := store.Options{PersonalDomain: "skydesk.jp", HashParams: store.DefaultHashParams}
	var d store.Driver
	switch *driver {
	case "sqlite":
		s, err := store.Open(ctx, *data, opts)
		if err != nil {
			return err
		}
		defer s.Close()
		d = s
	case "postgres":
		s, err := postgres.Open(ctx, *url, opts)
		if err != nil {
			return err
		}
		defer s.Close()
		d = s
	default:
		return fmt.Errorf("-driver %q: want sqlite or postgres", *driver)
	}

	line := strings.Repeat("abcdefghij", 7) + "\r\n"
	body := []byte("From: <sender@example.org>\r\nTo: <bench@skydesk.jp>\r\nSubject: bench\r\n\r\n" +
		strings.Repeat(line, *size/len(line)))
	all := store.POPAll
	for i := 1; i <= *users; i++ {
		addr := fmt.Sprintf("bench%02d@skydesk.jp", i)
		if err := account(ctx, d, addr, *password); err != nil {
			return err
		}
		if _, err := d.SetPOP(ctx, addr, store.POPUpdate{Access: &all}); err != nil {
			return fmt.Errorf("%s: POP access: %w", addr, err)
		}
		for range *msgs {
			if _, err := d.Deliver(ctx, store.Delivery{Recipients: []string{addr}, Body: body}); err != nil {
				return fmt.Errorf("%s: delivering: %w", addr, err)
			}
		}
	}
	if err := account(ctx, d, *sink, *password); err != nil {
		return err
	}
	if err := d.SetQuota(ctx, *sink, 0); err != nil {
		return fmt.Errorf("%s: quota: %w", *sink, err)
	}
	fmt.Printf("seeded %d accounts × %d messages of %d octets, and %s\n", *users, *msgs, len(body), *sink)
	return nil
}

// account adds addr, or keeps it if present (a re-run).
func account(ctx context.Context, d store.Driver, addr, password string) error {
	if _, err := d.AddAccount(ctx, store.NewAccount{Address: addr, Password: password}); err != nil && !errors.Is(err, store.ErrExists) {
		return fmt.Errorf("%s: %w", addr, err)
	}
	return nil
}
