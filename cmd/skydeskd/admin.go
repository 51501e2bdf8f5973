package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/skydesk/skydeskd/store"
)

func sub(args []string, group string, subs ...string) (string, []string, error) {
	if len(args) == 0 {
		return "", nil, usagef("%s: want one of %s", group, strings.Join(subs, ", "))
	}
	for _, s := range subs {
		if args[0] == s {
			return s, args[1:], nil
		}
	}
	return "", nil, usagef("%s: unknown subcommand %q (want %s)", group, args[0], strings.Join(subs, ", "))
}

func cmdDomain(ctx context.Context, args []string, e env) error {
	which, args, err := sub(args, "domain", "add", "remove", "list")
	if err != nil {
		return err
	}
	c := common{getenv: e.getenv}
	fs := newFlags("domain "+which, &c)
	if which == "list" {
		if _, err := parse(fs, args); err != nil {
			return err
		}
		return c.withStore(ctx, func(s storeDriver) error {
			l, err := s.ListDomains(ctx)
			for _, d := range l {
				fmt.Fprintln(e.stdout, d)
			}
			return err
		})
	}
	pos, err := parse(fs, args, "DOMAIN")
	if err != nil {
		return err
	}
	return c.withStore(ctx, func(s storeDriver) error {
		if which == "add" {
			d, err := s.AddDomain(ctx, pos[0])
			if err == nil {
				fmt.Fprintf(e.stdout, "added domain %s\n", d)
			}
			return err
		}
		if err := s.RemoveDomain(ctx, pos[0]); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "removed domain %s\n", pos[0])
		return nil
	})
}

// readPassword reads one line from stdin (at most 1 KiB), without the line
// ending.
func readPassword(r io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(r, 1025)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading password: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("no password on standard input")
	}
	return line, nil
}

func cmdUser(ctx context.Context, args []string, e env) error {
	which, args, err := sub(args, "user", "add", "passwd", "set", "list")
	if err != nil {
		return err
	}
	c := common{getenv: e.getenv}
	fs := newFlags("user "+which, &c)
	switch which {
	case "list":
		if _, err := parse(fs, args); err != nil {
			return err
		}
		return c.withStore(ctx, func(s storeDriver) error {
			l, err := s.ListAccounts(ctx)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ADDRESS\tKIND\tPASSWORD\tTWO-STEP\tFEDERATED")
			for _, a := range l {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", a.Address, a.Kind, yesNo(a.HasPassword), onOffText(a.TwoStep), yesNo(a.Federated))
			}
			return tw.Flush()
		})
	case "add":
		stdinPw := fs.Bool("password-stdin", false, "read the password from standard input")
		federated := fs.Bool("federated", false, "federated (SSO) account: no mail password until one is set")
		pos, err := parse(fs, args, "ADDRESS")
		if err != nil {
			return err
		}
		if !*stdinPw && !*federated {
			return usagef("user add: give --password-stdin or --federated")
		}
		var pw string
		if *stdinPw {
			if pw, err = readPassword(e.stdin); err != nil {
				return err
			}
		}
		return c.withStore(ctx, func(s storeDriver) error {
			a, err := s.AddAccount(ctx, store.NewAccount{Address: pos[0], Password: pw, Federated: *federated})
			if err == nil {
				fmt.Fprintf(e.stdout, "added %s account %s (POP access disabled)\n", a.Kind, a.Address)
			}
			return err
		})
	case "passwd":
		stdinPw := fs.Bool("password-stdin", false, "read the password from standard input")
		revoke := fs.Bool("revoke-app-passwords", false, "also revoke every app password of the account, in the same transaction")
		pos, err := parse(fs, args, "ADDRESS")
		if err != nil {
			return err
		}
		if !*stdinPw {
			return usagef("user passwd: --password-stdin is required")
		}
		pw, err := readPassword(e.stdin)
		if err != nil {
			return err
		}
		// The credential generation moves on, which already voids the
		// account's settings sessions and cached logins; the sessions are
		// also deleted so that none is left on disk.
		return c.withStore(ctx, func(s storeDriver) error {
			n, err := s.ChangePassword(ctx, pos[0], pw, *revoke)
			if err != nil {
				return err
			}
			ended, err := s.DeleteAccountSessions(ctx, pos[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "password set for %s; %d settings sessions ended", pos[0], ended)
			if *revoke {
				fmt.Fprintf(e.stdout, "; %d app passwords revoked", n)
			}
			fmt.Fprintln(e.stdout)
			return nil
		})
	default: // set
		twoStep := fs.String("two-step", "", "on or off")
		quota := fs.String("quota", "", "mailbox quota: 500M, 2G, 0 for unlimited, or default")
		pos, err := parse(fs, args, "ADDRESS")
		if err != nil {
			return err
		}
		if *quota != "" && *twoStep == "" {
			return c.withStore(ctx, func(s storeDriver) error { return setQuota(ctx, s, e.stdout, pos[0], *quota) })
		}
		if *twoStep == "" || *quota != "" {
			return usagef("user set: give one of --two-step on|off or --quota SIZE")
		}
		on, err := onOff("two-step", *twoStep)
		if err != nil {
			return err
		}
		return c.withStore(ctx, func(s storeDriver) error {
			if !on {
				if err := s.SetTwoStep(ctx, pos[0], false); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "two-step verification off for %s (authenticator app removed)\n", pos[0])
				return nil
			}
			// On, or on again: a new authenticator secret every time, so
			// running it again rotates a lost or leaked one.
			k, err := s.EnrolTOTP(ctx, pos[0])
			if err != nil {
				return err
			}
			printTOTP(e.stdout, pos[0], k)
			return nil
		})
	}
}

// printTOTP shows a new authenticator secret, the one time it is shown.
func printTOTP(w io.Writer, address string, k store.TOTPKey) {
	fmt.Fprintf(w, "two-step verification on for %s\n", address)
	fmt.Fprintln(w, "Authenticator app (TOTP) for signing in to the settings screen; give it to the user,")
	fmt.Fprintln(w, "it is not shown again (running this command again replaces it):")
	fmt.Fprintf(w, "  otpauth URL: %s\n", k.URL)
	fmt.Fprintf(w, "  secret:      %s\n", k.Secret)
	fmt.Fprintln(w, "Mail apps (POP/SMTP) now need an app password: skydeskd app-password create ADDRESS --name NAME")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func onOffText(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func cmdAppPassword(ctx context.Context, args []string, e env) error {
	which, args, err := sub(args, "app-password", "create", "list", "revoke")
	if err != nil {
		return err
	}
	c := common{getenv: e.getenv}
	fs := newFlags("app-password "+which, &c)
	switch which {
	case "create":
		name := fs.String("name", "", "a name to recognise it by")
		pos, err := parse(fs, args, "ADDRESS")
		if err != nil {
			return err
		}
		if *name == "" {
			return usagef("app-password create: --name is required")
		}
		return c.withStore(ctx, func(s storeDriver) error {
			secret, err := s.CreateAppPassword(ctx, pos[0], *name)
			if err == nil {
				fmt.Fprintln(e.stdout, secret)
			}
			return err
		})
	case "list":
		pos, err := parse(fs, args, "ADDRESS")
		if err != nil {
			return err
		}
		return c.withStore(ctx, func(s storeDriver) error {
			l, err := s.ListAppPasswords(ctx, pos[0])
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tCREATED\tLAST USED")
			for _, p := range l {
				last := "never"
				if !p.LastUsed.IsZero() {
					last = p.LastUsed.UTC().Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\n", p.Name, p.Created.UTC().Format(time.RFC3339), last)
			}
			return tw.Flush()
		})
	default: // revoke
		pos, err := parse(fs, args, "ADDRESS", "NAME")
		if err != nil {
			return err
		}
		return c.withStore(ctx, func(s storeDriver) error {
			if err := s.RevokeAppPassword(ctx, pos[0], pos[1]); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "revoked app password %q for %s\n", pos[1], pos[0])
			return nil
		})
	}
}

func cmdPOP(ctx context.Context, args []string, e env) error {
	which, args, err := sub(args, "pop", "set", "show")
	if err != nil {
		return err
	}
	c := common{getenv: e.getenv}
	fs := newFlags("pop "+which, &c)
	if which == "show" {
		pos, err := parse(fs, args, "ADDRESS")
		if err != nil {
			return err
		}
		return c.withStore(ctx, func(s storeDriver) error {
			p, err := s.GetPOP(ctx, pos[0])
			if err != nil {
				return err
			}
			u, err := s.MailboxUsage(ctx, pos[0])
			if err != nil {
				return err
			}
			last, ok, err := s.LastPOPSession(ctx, pos[0])
			if err != nil {
				return err
			}
			printPOP(e.stdout, p)
			fmt.Fprintf(e.stdout, "usage: %s\n", quotaText(u))
			printLastPOP(e.stdout, last, ok)
			return nil
		})
	}
	access := fs.String("access", "", "disabled, all, since-now or since:YYYY-MM-DD")
	spam := fs.String("spam", "", "include or exclude")
	onDelete := fs.String("on-delete", "", "keep or delete")
	pos, err := parse(fs, args, "ADDRESS")
	if err != nil {
		return err
	}
	cfg, err := c.load()
	if err != nil {
		return err
	}
	var u store.POPUpdate
	if *access != "" {
		// A day is midnight in the provider's zone (provider.time_zone).
		a, day, err := store.ParsePOPChoice(*access, cfg.Provider.Location(), time.Now())
		if err != nil && strings.HasPrefix(*access, "since:") {
			return fmt.Errorf("--access: %w", err)
		}
		if err != nil {
			return fmt.Errorf("--access: %q is not disabled, all, since-now or since:YYYY-MM-DD", clipArg(*access))
		}
		u.Access, u.Day = &a, day
	}
	if *spam != "" {
		var inc bool
		switch *spam {
		case "include":
			inc = true
		case "exclude":
		default:
			return fmt.Errorf("--spam: %q is not include or exclude", *spam)
		}
		u.IncludeSpam = &inc
	}
	if *onDelete != "" {
		d, err := store.ParseOnDelete(*onDelete)
		if err != nil {
			return fmt.Errorf("--on-delete: %q is not keep or delete", *onDelete)
		}
		u.OnDelete = &d
	}
	if u.Access == nil && u.IncludeSpam == nil && u.OnDelete == nil {
		return usagef("pop set: give at least one of --access, --spam, --on-delete")
	}
	return c.withStore(ctx, func(s storeDriver) error {
		p, err := s.SetPOP(ctx, pos[0], u)
		if err == nil {
			printPOP(e.stdout, p)
		}
		return err
	})
}

func printPOP(w io.Writer, p store.POPSettings) {
	access := string(p.Access)
	switch {
	case p.Access == store.POPSince && p.SinceDay != "":
		access = "since:" + p.SinceDay + " (since " + p.Since.UTC().Format(time.RFC3339Nano) + ")"
	case p.Access == store.POPSince:
		access = "since-now (since " + p.Since.UTC().Format(time.RFC3339Nano) + ")"
	}
	spam := "exclude"
	if p.IncludeSpam {
		spam = "include"
	}
	fmt.Fprintf(w, "access: %s\nspam: %s\non-delete: %s\n", access, spam, p.OnDelete)
}

func cmdDeliver(ctx context.Context, args []string, e env) error {
	c := common{getenv: e.getenv}
	fs := newFlags("deliver", &c)
	spam := fs.Bool("spam", false, "store the message as spam")
	received := fs.String("received", "", "when the message arrived, RFC 3339 (imports, tests); default now")
	pos, err := parse(fs, args, "ADDRESS")
	if err != nil {
		return err
	}
	var at time.Time
	if *received != "" {
		if at, err = parseReceived(*received); err != nil {
			return err
		}
	}
	cfg, err := c.load()
	if err != nil {
		return err
	}
	body, err := spoolStdin(e.stdin, cfg.SMTP.MaxMessageSize)
	if err != nil {
		return err
	}
	defer body.Close()
	if body.Size() == 0 {
		return errors.New("empty message on standard input")
	}
	return c.withStore(ctx, func(s storeDriver) error {
		uids, err := s.Deliver(ctx, store.Delivery{Recipients: pos, Stream: body, Spam: *spam, Received: at})
		if err == nil {
			fmt.Fprintln(e.stdout, uids[0])
		}
		return err
	})
}

// printLastPOP prints the last POP session (popstore records it at QUIT
// or when the connection ends).
func printLastPOP(w io.Writer, ps store.POPSession, ok bool) {
	if !ok {
		fmt.Fprintln(w, "last POP access: never")
		return
	}
	remote := ps.Remote
	if remote == "" {
		remote = "unknown address"
	}
	fmt.Fprintf(w, "last POP access: %s from %s, %d downloaded\n", ps.At.UTC().Format(time.RFC3339), remote, ps.Downloaded)
}

// parseReceived reads deliver --received: RFC 3339 with a zone, from
// 1970 up to a day ahead (a clock a little fast is not an error, a
// typo'd year is).
func parseReceived(v string) (time.Time, error) {
	at, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("--received: %q is not an RFC 3339 time such as 2026-03-02T09:00:00+09:00", clipArg(v))
	}
	if at.Year() < 1970 || at.After(time.Now().Add(24*time.Hour)) {
		return time.Time{}, fmt.Errorf("--received: %s is before 1970 or in the future", v)
	}
	return at, nil
}

// clipArg bounds a command-line value quoted in an error.
func clipArg(v string) string {
	if len(v) > 64 {
		return v[:64] + "…"
	}
	return v
}
