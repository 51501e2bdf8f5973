package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/skydesk/skydeskd/store"
)

// demoFile keeps the generated demo passwords so every --dev start can
// print them again.
const demoFile = "demo-credentials.txt"

// demo accounts of the quick start (issue #2). jiro has two-step
// verification on: the settings screen asks it for an authenticator code,
// and mail apps need its app password. The postmaster account is
// smtp.postmaster of config.Dev, so postmaster@ every demo domain is
// accepted as RFC 5321 §4.5.1 requires.
var demoAccounts = []string{"taro@skydesk.jp", "hanako@example.co.jp", demoTwoStep, demoPostmaster}

const (
	demoTwoStep    = "jiro@example.co.jp"
	demoPostmaster = "postmaster@skydesk.jp"
)

const demoDomain = "example.co.jp"

func randomPassword() (string, error) {
	const alphabet = "abcdefghijkmnpqrstuvwxyzACDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, 14)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b), nil
}

// seedDemo fills an empty data directory: the demo hosted domain, the demo
// accounts with random passwords and POP access "all mail", and a welcome
// message each; for the two-step account also an authenticator secret and
// an app password. Each account is an "ADDRESS PASSWORD" line of the
// credentials file; the two-step details follow on indented lines.
func (a *app) seedDemo(ctx context.Context, e env) error {
	accs, err := a.store.ListAccounts(ctx)
	if err != nil {
		return err
	}
	domains, err := a.store.ListDomains(ctx)
	if err != nil {
		return err
	}
	if len(accs) > 0 || len(domains) > 0 {
		return nil
	}
	if _, err := a.store.AddDomain(ctx, demoDomain); err != nil {
		return err
	}
	var lines []string
	for _, addr := range demoAccounts {
		pw, err := randomPassword()
		if err != nil {
			return err
		}
		if _, err := a.store.AddAccount(ctx, store.NewAccount{Address: addr, Password: pw}); err != nil {
			return err
		}
		all := store.POPAll
		if _, err := a.store.SetPOP(ctx, addr, store.POPUpdate{Access: &all}); err != nil {
			return err
		}
		msg := "From: SkyDesk Mail <support@skydesk.jp>\r\nTo: " + addr + "\r\nSubject: Welcome to SkyDesk Mail\r\n" +
			"Date: Thu, 26 Nov 2026 09:00:00 +0900\r\nMessage-ID: <welcome." + strings.ReplaceAll(addr, "@", ".") + "@skydesk.jp>\r\n" +
			"\r\nYour account works. This message was delivered by skydeskd --dev.\r\n"
		if _, err := a.store.Deliver(ctx, store.Delivery{Recipients: []string{addr}, Body: []byte(msg)}); err != nil {
			return err
		}
		lines = append(lines, addr+" "+pw)
		if addr == demoTwoStep {
			more, err := a.seedTwoStep(ctx, addr)
			if err != nil {
				return err
			}
			lines = append(lines, more...)
		}
	}
	return os.WriteFile(filepath.Join(a.cfg.DataDir, demoFile), []byte(strings.Join(lines, "\n")+"\n"), 0o600)
}

// seedTwoStep turns two-step verification on for the demo account and
// returns the lines that tell a demo user how to sign in with it.
func (a *app) seedTwoStep(ctx context.Context, addr string) ([]string, error) {
	k, err := a.store.EnrolTOTP(ctx, addr)
	if err != nil {
		return nil, err
	}
	app, err := a.store.CreateAppPassword(ctx, addr, "demo")
	if err != nil {
		return nil, err
	}
	return []string{
		"  two-step verification on: /settings also asks for a code from an authenticator app",
		"  authenticator secret: " + k.Secret,
		"  authenticator URL:    " + k.URL,
		"  app password for POP/SMTP: " + app,
	}, nil
}

func (a *app) printDev(e env, comps []component) {
	w := e.stdout
	fmt.Fprintln(w, "skydeskd --dev is running (127.0.0.1 only). Ctrl-C stops it.")
	fmt.Fprintln(w, "Listeners:")
	for _, c := range comps {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.addr)
	}
	if b, err := os.ReadFile(filepath.Join(a.cfg.DataDir, demoFile)); err == nil {
		fmt.Fprintln(w, "Demo accounts (address password):")
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			fmt.Fprintf(w, "  %s\n", l)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		a.log.Warn("reading demo credentials", "err", err)
	}
	fmt.Fprintln(w, "Try:")
	fmt.Fprintln(w, "  curl http://127.0.0.1:8080/healthz")
	fmt.Fprintln(w, "  curl 'http://127.0.0.1:8080/mail/config-v1.1.xml?emailaddress=taro@skydesk.jp'")
	fmt.Fprintln(w, "  curl -k -o taro.mobileconfig 'https://127.0.0.1:8443/apple/mobileconfig?email=taro@skydesk.jp'")
	fmt.Fprintln(w, "  dig @127.0.0.1 -p 8053 _pop3s._tcp.example.co.jp SRV")
	fmt.Fprintln(w, "  curl -k --user 'taro@skydesk.jp:PASSWORD' pop3s://127.0.0.1:9995/")
	fmt.Fprintln(w, "  swaks --server 127.0.0.1:9025 --from someone@example.org --to postmaster@example.co.jp   (lands in "+demoPostmaster+")")
	fmt.Fprintln(w, "  open https://127.0.0.1:8443/ in a browser (self-signed certificate)")
	fmt.Fprintln(w, "  open https://127.0.0.1:8443/settings: "+demoTwoStep+" also needs a code from an authenticator app holding its secret")
	fmt.Fprintf(w, "Certificate: %s\n", a.cert.CertFile)
}
