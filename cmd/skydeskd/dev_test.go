package main

import (
	"bytes"
	"context"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/skydesk/skydeskd/config"
	"github.com/skydesk/skydeskd/store"
)

// TestSeedDemo_twoStep: the --dev demo data has a two-step account whose
// printed authenticator secret and app password work: the settings
// sign-in needs the password and a code, POP the app password.
func TestSeedDemo_twoStep(t *testing.T) {
	ctx := context.Background()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	s, err := openStore(ctx, cfg, store.TestHashParams)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a := &app{cfg: cfg, store: s, log: slog.New(slog.DiscardHandler), cert: &config.Certificate{CertFile: "cert.pem"}}
	var out bytes.Buffer
	if err := a.seedDemo(ctx, env{stdout: &out}); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(cfg.DataDir, demoFile))
	if err != nil {
		t.Fatal(err)
	}
	a.printDev(env{stdout: &out}, nil)
	if !strings.Contains(out.String(), string(raw[:20])) || !strings.Contains(out.String(), "authenticator secret: ") {
		t.Errorf("printDev does not show the credentials:\n%s", out.String())
	}
	creds := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		if addr, pw, _ := strings.Cut(l, " "); strings.Contains(addr, "@") {
			creds[addr] = pw
		}
	}
	for _, addr := range demoAccounts {
		if creds[addr] == "" {
			t.Errorf("no password for %s in:\n%s", addr, raw)
		}
	}
	// RFC 5321 §4.5.1: the demo's smtp.postmaster is a demo account.
	if pm := config.Dev(cfg.DataDir).SMTP.Postmaster; pm != demoPostmaster {
		t.Errorf("config.Dev smtp.postmaster = %q, demo account %q", pm, demoPostmaster)
	}
	if ok, err := s.AccountExists(ctx, demoPostmaster); err != nil || !ok {
		t.Errorf("demo postmaster account: exists=%v err=%v", ok, err)
	}
	secret := regexp.MustCompile(`(?m)^  authenticator secret: ([A-Z2-7]+)$`).FindSubmatch(raw)
	app := regexp.MustCompile(`(?m)^  app password for POP/SMTP: ([a-z ]+)$`).FindSubmatch(raw)
	if secret == nil || app == nil || !strings.Contains(string(raw), "otpauth://totp/") {
		t.Fatalf("two-step details missing:\n%s", raw)
	}
	auth, err := store.NewAuthenticator(s, store.AuthOptions{HashParams: store.TestHashParams})
	if err != nil {
		t.Fatal(err)
	}
	login := func(svc store.Service, pw, code string) error {
		_, err := auth.Login(ctx, store.LoginRequest{Username: demoTwoStep, Password: pw, OTP: code,
			Remote: netip.MustParseAddr("127.0.0.1"), Service: svc})
		return err
	}
	if err := login(store.ServiceWeb, creds[demoTwoStep], ""); err == nil {
		t.Error("settings sign-in without a code worked")
	}
	code, err := totp.GenerateCode(string(secret[1]), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := login(store.ServiceWeb, creds[demoTwoStep], code); err != nil {
		t.Errorf("settings sign-in with a code: %v", err)
	}
	if err := login(store.ServicePOP3, string(app[1]), ""); err != nil {
		t.Errorf("POP with the demo app password: %v", err)
	}
	if err := login(store.ServiceWeb, creds["taro@skydesk.jp"], ""); err == nil {
		t.Error("taro's password worked for jiro")
	}
}
