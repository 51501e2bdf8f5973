package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/skydesk/skydeskd/config"
	"github.com/skydesk/skydeskd/store"
)

// configSize is a size config.Validate accepted; "-1" (a limit turned
// off) is -1.
func configSize(s string) int64 {
	if s == "-1" {
		return -1
	}
	n, _ := config.ParseSize(s)
	return n
}

// setQuota is `user set ADDRESS --quota SIZE|default`.
func setQuota(ctx context.Context, s storeDriver, w io.Writer, address, size string) error {
	q := store.QuotaDefault
	if size != "default" {
		n, err := config.ParseSize(size)
		if err != nil {
			return usagef("user set --quota: %v (or default)", err)
		}
		q = n
	}
	if err := s.SetQuota(ctx, address, q); err != nil {
		return err
	}
	u, err := s.MailboxUsage(ctx, address)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "quota of %s: %s\n", address, quotaText(u))
	return nil
}

// quotaText is "12.0 MiB of 1.0 GiB" (or "of unlimited"), "(default)"
// when the account follows smtp.default_quota.
func quotaText(u store.Usage) string {
	q := "unlimited"
	if u.Quota > 0 {
		q = mib(u.Quota)
	}
	t := mib(u.Used) + " of " + q
	if u.Default {
		t += " (default)"
	}
	return t
}

func mib(n int64) string {
	if n >= 1<<30 {
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

// spooled is standard input copied to an unlinked temporary file with CRLF
// line endings, so `skydeskd deliver` of a large message is stored in
// chunks, never whole in memory.
type spooled struct {
	*io.SectionReader
	f *os.File
}

func (s spooled) Close() error { return s.f.Close() }

// spoolStdin copies at most max octets of r (store.ErrTooBig beyond).
func spoolStdin(r io.Reader, max int64) (spooled, error) {
	f, err := os.CreateTemp("", "skydeskd-deliver-*")
	if err != nil {
		return spooled{}, fmt.Errorf("spooling message: %w", err)
	}
	_ = os.Remove(f.Name())
	lr := &io.LimitedReader{R: r, N: max + 1}
	n, err := io.Copy(f, store.CRLFReader(lr))
	if err == nil && lr.N <= 0 {
		err = fmt.Errorf("%w: over %d octets", store.ErrTooBig, max)
	}
	if err != nil {
		f.Close()
		return spooled{}, fmt.Errorf("reading message: %w", err)
	}
	return spooled{io.NewSectionReader(f, 0, n), f}, nil
}
