package main

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"

	"github.com/skydesk/skydeskd/store/storetest"
)

// authenticatorApp makes codes as a phone app would, for the real clock
// the service runs on. The store accepts a code for the current 30-second
// step ±1, each step once and only after the last one used, so a test
// that needs several codes in a row picks, for each, the oldest step that
// is still newer than the last one used and stays acceptable for at least
// a few seconds (a step about to fall out of the window is skipped): no
// waiting for the clock, and no code typed across its expiry.
type authenticatorApp struct {
	t      *testing.T
	secret string
	last   int64 // the last step used; -1 none
}

func (a *authenticatorApp) code() string {
	a.t.Helper()
	const period, margin = 30, 5
	for range 3 {
		now := time.Now().Unix()
		cur := now / period
		for s := cur - 1; s <= cur+1; s++ {
			// Step s is accepted while the server's step is s-1 … s+1.
			if s <= a.last || (s+2)*period-now < margin {
				continue
			}
			c, err := totp.GenerateCode(a.secret, time.Unix(s*period, 0))
			if err != nil {
				a.t.Fatal(err)
			}
			a.last = s
			return c
		}
		// Every acceptable step is used (several codes within the last
		// seconds of one step): as a person would, wait for the app's
		// next code. This waits on the TOTP clock itself, not on the
		// service; with three codes that happens only when the first comes
		// in the last margin seconds of a step, so the wait is that short.
		time.Sleep(time.Until(time.Unix((cur+1)*period, 0)))
	}
	a.t.Fatalf("no fresh code: step %d used", a.last)
	return ""
}

// TestWebBrowser_twoStepSelf: taro turns two-step verification on himself
// (reads the key from the page, as he would type it into an app, and
// confirms with a code), after which POP refuses his account password
// with the app-password hint and an app password made on the page works;
// the sign-in then needs a code; he turns it off with a code and the
// account password works for POP again.
func TestWebBrowser_twoStepSelf(t *testing.T) {
	w := startWebApp(t)
	ctx := context.Background()
	const user, pass = "taro@skydesk.jp", "correct horse battery"
	storetest.AddUser(t, w.store, user, pass) // POP on: all mail
	w.popSubjects(t, user, pass, false)       // the account password works, and is cached

	b := newBrowser(t)
	step(t, b, "sign in", chromedp.Navigate(w.webURL+"/settings?lang=en"),
		chromedp.SendKeys(chromedp.ID("address"), user),
		chromedp.SendKeys(chromedp.ID("password"), pass),
		chromedp.Submit(chromedp.ID("password")),
		chromedp.WaitVisible(chromedp.ID("twostep-start")))
	step(t, b, "start", chromedp.Click(chromedp.ID("twostep-start")), chromedp.WaitVisible(chromedp.ID("totp-secret")))
	shown := value(t, b, "key", chromedp.Text(chromedp.ID("totp-secret")))
	app := &authenticatorApp{t: t, secret: strings.ReplaceAll(shown, " ", ""), last: -1}
	if len(app.secret) != 32 {
		t.Fatalf("key on the page %q", shown)
	}
	// The QR code, as the browser draws it, is the otpauth URI of that key.
	qr := readQR(t, b)
	u, err := url.Parse(qr)
	if err != nil || u.Scheme != "otpauth" || u.Host != "totp" || u.Query().Get("secret") != app.secret ||
		u.Query().Get("issuer") != w.cfg.Provider.Name || !strings.HasSuffix(u.Path, ":"+user) {
		t.Fatalf("QR code %q does not match the key %q", qr, shown)
	}
	if acc, _ := w.store.GetAccount(ctx, user); acc.TwoStep {
		t.Fatal("two-step on before the code was confirmed")
	}
	shot := func(name string) {
		t.Helper()
		step(t, b, "desktop viewport", chromedp.EmulateViewport(1280, 900, chromedp.EmulateScale(1)))
		png := value(t, b, "screenshot", chromedp.FullScreenshot(100))
		if err := os.WriteFile(filepath.Join(screenshotDir(t), name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
		step(t, b, "reset viewport", chromedp.EmulateReset())
	}
	for _, l := range []string{"en", "ja"} {
		auditPage(t, b, w.webURL+"/settings?lang="+l)
		screenshots(t, b, "settings-two-step-setup-"+l, w.webURL+"/settings?lang="+l)
	}

	// A mistyped code: told so, the same key stays.
	step(t, b, "wrong code", chromedp.Navigate(w.webURL+"/settings?lang=en"),
		chromedp.SendKeys(chromedp.ID("enrol-code"), "000000x"),
		chromedp.Click(chromedp.ID("twostep-confirm")),
		chromedp.WaitVisible(chromedp.ID("twostep-error")))
	if txt := value(t, b, "error", chromedp.Text(chromedp.ID("twostep-error"))); !strings.Contains(txt, "not correct") {
		t.Errorf("wrong-code error %q", txt)
	}
	if again := value(t, b, "key", chromedp.Text(chromedp.ID("totp-secret"))); again != shown {
		t.Fatalf("key changed after a wrong code: %q → %q", shown, again)
	}
	auditHere(t, b, "wrong setup code")
	shot("settings-two-step-wrong-code-en-desktop")

	step(t, b, "confirm", chromedp.SendKeys(chromedp.ID("enrol-code"), app.code()),
		chromedp.Click(chromedp.ID("twostep-confirm")),
		chromedp.WaitVisible(chromedp.ID("twostep-notice")))
	if txt := value(t, b, "notice", chromedp.Text(chromedp.ID("twostep-notice"))); !strings.Contains(txt, "now on") || !strings.Contains(txt, "app password") {
		t.Errorf("turned-on notice %q", txt)
	}
	auditHere(t, b, "two-step turned on")
	shot("settings-two-step-now-on-en-desktop")
	if r := w.popLoginFails(t, user, pass); !strings.Contains(r, "app-specific password") {
		t.Errorf("POP with the account password under two-step: %q", r)
	}
	// The app password, made right there.
	step(t, b, "create app password", chromedp.Click(chromedp.CSS(`#twostep-notice a[href="#app-name"]`)),
		chromedp.SendKeys(chromedp.ID("app-name"), "Phone mail"),
		chromedp.Click(chromedp.ID("app-create")), chromedp.WaitVisible(chromedp.ID("secret")))
	appPass := value(t, b, "app password", chromedp.Text(chromedp.ID("secret")))
	w.popSubjects(t, user, appPass, false)
	for _, l := range []string{"en", "ja"} {
		auditPage(t, b, w.webURL+"/settings?lang="+l)
		screenshots(t, b, "settings-two-step-on-"+l, w.webURL+"/settings?lang="+l)
	}

	// Signing in again needs a code now.
	step(t, b, "sign out", chromedp.Navigate(w.webURL+"/settings?lang=en"),
		chromedp.Click(chromedp.CSS(`form[action="/settings/signout"] button`)),
		chromedp.WaitVisible(chromedp.ID("password")))
	step(t, b, "sign in without a code", chromedp.SendKeys(chromedp.ID("address"), user),
		chromedp.SendKeys(chromedp.ID("password"), pass),
		chromedp.Submit(chromedp.ID("password")),
		chromedp.WaitVisible(chromedp.CSS(`.notice[role="alert"]`)))
	step(t, b, "sign in with a code", chromedp.SendKeys(chromedp.ID("password"), pass),
		chromedp.SendKeys(chromedp.ID("otp"), app.code()),
		chromedp.Submit(chromedp.ID("password")),
		chromedp.WaitVisible(chromedp.ID("off-code")))

	// Off, with a code; the account password works for POP again.
	step(t, b, "turn off", chromedp.SendKeys(chromedp.ID("off-code"), app.code()),
		chromedp.Click(chromedp.ID("twostep-off")),
		chromedp.WaitVisible(chromedp.ID("twostep-notice")))
	if txt := value(t, b, "notice", chromedp.Text(chromedp.ID("twostep-notice"))); !strings.Contains(txt, "now off") {
		t.Errorf("turned-off notice %q", txt)
	}
	auditHere(t, b, "two-step turned off")
	if acc, _ := w.store.GetAccount(ctx, user); acc.TwoStep {
		t.Fatal("two-step still on")
	}
	w.popSubjects(t, user, pass, false)
}
