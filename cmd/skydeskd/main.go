// Command skydeskd serves mail-client autoconfiguration (Thunderbird,
// Outlook, Apple, DNS SRV) and the bundled POP3/SMTP backend, and carries
// the admin commands that manage domains, accounts and POP settings.
//
// Exit codes: 0 ok, 1 usage, 2 refused (bad input, unknown domain, …).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes scripts depend on.
const (
	exitOK      = 0
	exitUsage   = 1
	exitRefused = 2
)

// usageError is a command-line mistake (exit 1).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

// env is what a command may touch: no globals, so tests run commands
// in-process.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}))
}

const usageText = `usage: skydeskd COMMAND [flags]

Service:
  serve [--config FILE | --data DIR] [--dev]
Domains:
  domain add|remove DOMAIN      domain list
Accounts:
  user add ADDRESS [--password-stdin] [--federated]
  user passwd ADDRESS --password-stdin [--revoke-app-passwords]
                                ends the account's settings sessions; with the flag, also
                                revokes every app password in the same transaction
  user set ADDRESS --two-step on|off
                                on: registers a new authenticator app (TOTP) secret and
                                prints it once; again: rotates it; off: removes it
  user list
App-specific passwords:
  app-password create ADDRESS --name NAME
  app-password list ADDRESS
  app-password revoke ADDRESS NAME
POP settings:
  pop set ADDRESS [--access disabled|all|since-now|since:YYYY-MM-DD] [--spam include|exclude]
          [--on-delete keep|delete]
                                since:DAY lists mail received from 00:00 of DAY in
                                provider.time_zone (default Asia/Tokyo)
  pop show ADDRESS              settings, usage, last POP access (time, client, downloaded)
Forwarding (needs smtp.smarthost; the target confirms a link first):
  forward set ADDRESS --to EXTERNAL [--keep yes|no]
  forward show ADDRESS          forward off ADDRESS
Mail:
  deliver ADDRESS [--spam] [--received RFC3339] < message.eml
Figures:
  stats onboarding              per discovery format, addresses that asked for settings and
                                logged in to POP or SMTP within an hour (last 24 h, 7 days)
DNS:
  dns records DOMAIN
  dns check DOMAIN [--resolver ADDR]
Certificates (ACME):
  cert list                     name, issuer, not-after, last error
Moving to PostgreSQL (stop the node first):
  migrate --from sqlite:PATH --to postgres:URL
                                copies the SQLite store (file or data directory) into a new
                                PostgreSQL database, verifies counts and every message's
                                SHA-256, and refuses a target that holds data

Every command takes --config FILE or --data DIR (default /var/lib/skydeskd).
`

func run(ctx context.Context, args []string, e env) int {
	err := dispatch(ctx, args, e)
	if err == nil {
		return exitOK
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(e.stderr, "skydeskd: %s\n", ue.msg)
		fmt.Fprint(e.stderr, "run 'skydeskd help' for usage\n")
		return exitUsage
	}
	fmt.Fprintf(e.stderr, "skydeskd: %s\n", oneLine(err))
	return exitRefused
}

func dispatch(ctx context.Context, args []string, e env) error {
	if len(args) == 0 {
		return usagef("missing command")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "help", "-h", "--help":
		fmt.Fprint(e.stdout, usageText)
		return nil
	case "serve":
		return cmdServe(ctx, rest, e)
	case "domain":
		return cmdDomain(ctx, rest, e)
	case "user":
		return cmdUser(ctx, rest, e)
	case "app-password":
		return cmdAppPassword(ctx, rest, e)
	case "pop":
		return cmdPOP(ctx, rest, e)
	case "forward":
		return cmdForward(ctx, rest, e)
	case "deliver":
		return cmdDeliver(ctx, rest, e)
	case "stats":
		return cmdStats(ctx, rest, e)
	case "dns":
		return cmdDNS(ctx, rest, e)
	case "cert":
		return cmdCert(ctx, rest, e)
	case "migrate":
		return cmdMigrate(ctx, rest, e)
	}
	return usagef("unknown command %q", cmd)
}
