package main

import (
	"bytes"
	"context"
	_ "image/png"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/pquerna/otp/totp"
	"github.com/smallstep/pkcs7"
	"howett.net/plist"

	"github.com/skydesk/skydeskd/store"
)

// lookUp types an address into the setup page's form and returns the POP
// host the table shows.
func lookUp(t *testing.T, ctx context.Context, w *webApp, address string) string {
	t.Helper()
	step(t, ctx, "look up "+address,
		chromedp.Navigate(w.webURL+"/?lang=en"),
		chromedp.SendKeys(chromedp.ID("email"), address),
		chromedp.Submit(chromedp.ID("email")),
		chromedp.WaitVisible(chromedp.ID("result-h")))
	return value(t, ctx, "POP host", chromedp.Text(chromedp.CSS(`[data-field="pop-host"]`)))
}

// TestWebBrowser_setup: a new user looks up a personal and an
// organization address in Chromium, downloads the signed profile, and the
// QR code on the page decodes to the download URL.
func TestWebBrowser_setup(t *testing.T) {
	w := startWebApp(t)
	ctx := newBrowser(t)

	for _, tc := range []struct{ address, host string }{
		{"taro@skydesk.jp", w.cfg.Provider.POP.PersonalHost},
		{"hanako@example.co.jp", w.cfg.Provider.POP.OrganizationHost},
	} {
		if _, err := w.store.AddDomain(context.Background(), "example.co.jp"); err != nil && !strings.Contains(err.Error(), "exists") {
			t.Fatal(err)
		}
		if got := lookUp(t, ctx, w, tc.address); got != tc.host {
			t.Errorf("%s: page shows POP host %q, want %q", tc.address, got, tc.host)
		}
	}
	// Unknown domain: an explanation, no table.
	step(t, ctx, "unknown domain", chromedp.Navigate(w.webURL+"/?lang=en&email=someone%40gmail.com"),
		chromedp.WaitVisible(chromedp.CSS(".notice")))
	if txt := value(t, ctx, "notice", chromedp.Text(chromedp.CSS(".notice"))); !strings.Contains(txt, "gmail.com does not use") {
		t.Errorf("unknown-domain notice: %q", txt)
	}

	// Download the profile by clicking the button, as a person would.
	dl := t.TempDir()
	lookUp(t, ctx, w, "taro@skydesk.jp")
	events := chromedp.BrowserEvents(ctx, browser.DownloadProgress)
	on := true
	if _, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: dl, EventsEnabled: &on}); err != nil {
		t.Fatal(err)
	}
	step(t, ctx, "click download", chromedp.Click(chromedp.ID("download")))
	var file string
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	for ev, err := range events {
		if err != nil || wctx.Err() != nil {
			t.Fatalf("waiting for the download: %v", err)
		}
		if ev.State == browser.DownloadProgressStateCompleted {
			file = filepath.Join(dl, ev.GUID)
			break
		}
		if ev.State == browser.DownloadProgressStateCanceled {
			t.Fatal("download canceled")
		}
	}
	cancel()
	der, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	content := checkSignedProfile(t, w, der, "taro@skydesk.jp")

	// The QR code, as the browser draws it, decodes to the download URL.
	qr := readQR(t, ctx)
	want := w.webURL + "/apple/mobileconfig?email=taro%40skydesk.jp"
	if qr != want {
		t.Fatalf("QR code = %q, want %q", qr, want)
	}
	// A phone opening that URL gets the same profile.
	resp, err := w.client.Get(qr)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "application/x-apple-aspen-config" {
		t.Fatalf("QR URL: %d %q", resp.StatusCode, ct)
	}
	if got := checkSignedProfile(t, w, body, "taro@skydesk.jp"); !bytes.Equal(got, content) {
		t.Error("the QR URL serves a different profile than the button")
	}

	// The plain-HTTP listener sends people to the HTTPS pages.
	presp, err := w.client.Get("http://" + w.addrs["http"] + "/settings?lang=ja")
	if err != nil {
		t.Fatal(err)
	}
	presp.Body.Close()
	if loc := presp.Header.Get("Location"); presp.StatusCode != http.StatusMovedPermanently || loc != w.webURL+"/settings?lang=ja" {
		t.Errorf("plain HTTP /settings: %d → %q", presp.StatusCode, loc)
	}
	keyboardLookUp(t, ctx, w)
	for _, l := range []string{"en", "ja"} {
		auditPage(t, ctx, w.webURL+"/?lang="+l+"&email=hanako%40example.co.jp")
		auditPage(t, ctx, w.webURL+"/?lang="+l+"&email=someone%40gmail.com")
		screenshots(t, ctx, "setup-"+l, w.webURL+"/?lang="+l+"&email=hanako%40example.co.jp")
	}
	screenshots(t, ctx, "setup-unknown-ja", w.webURL+"/?lang=ja&email=someone%40gmail.com")
}

// checkSignedProfile asserts der is CMS SignedData (RFC 5652) signed by
// the service certificate, holding a plist for address; it returns the
// plist.
func checkSignedProfile(t *testing.T, w *webApp, der []byte, address string) []byte {
	t.Helper()
	// ContentInfo { contentType 1.2.840.113549.1.7.2 (signedData) … }
	signedDataOID := []byte{0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02}
	if len(der) < 20 || der[0] != 0x30 || !bytes.Contains(der[:20], signedDataOID) {
		t.Fatalf("profile is not a CMS SignedData ContentInfo: % x", der[:min(len(der), 20)])
	}
	p7, err := pkcs7.Parse(der)
	if err != nil {
		t.Fatalf("parsing CMS: %v", err)
	}
	if err := p7.Verify(); err != nil {
		t.Fatalf("signature: %v", err)
	}
	if signer := p7.GetOnlySigner(); signer == nil || !signer.Equal(w.cert.Leaf) {
		t.Fatal("profile not signed by the service certificate")
	}
	var doc map[string]any
	if _, err := plist.Unmarshal(p7.Content, &doc); err != nil {
		t.Fatalf("content is not a plist: %v", err)
	}
	if doc["PayloadType"] != "Configuration" || !bytes.Contains(p7.Content, []byte(address)) {
		t.Fatalf("plist: %v", doc)
	}
	return p7.Content
}

// TestWebBrowser_settings: a user signs in, changes each POP setting and
// saves, and a real POP3 session behaves accordingly; creates an app
// password and logs in to POP with it; revokes it and the login fails.
// CSRF-less, cross-site and unauthenticated posts are refused.
func TestWebBrowser_settings(t *testing.T) {
	w := startWebApp(t)
	ctx := context.Background()
	const user, pass = "taro@skydesk.jp", "correct horse battery"
	if _, err := w.store.AddAccount(ctx, store.NewAccount{Address: user, Password: pass}); err != nil {
		t.Fatal(err)
	}
	deliver := func(subject string, spam bool) {
		t.Helper()
		msg := "From: a@example.org\r\nTo: " + user + "\r\nSubject: " + subject + "\r\n\r\nbody\r\n"
		if _, err := w.store.Deliver(ctx, store.Delivery{Recipients: []string{user}, Body: []byte(msg), Spam: spam}); err != nil {
			t.Fatal(err)
		}
	}
	deliver("ham-1", false)
	deliver("spam-1", true)
	// New accounts start with POP disabled (DESIGN.md §2).
	if r := w.popLoginFails(t, user, pass); !strings.Contains(r, "SYS/PERM") {
		t.Errorf("disabled POP: %q", r)
	}

	b := newBrowser(t)
	step(t, b, "sign in", chromedp.Navigate(w.webURL+"/settings?lang=en"),
		chromedp.SendKeys(chromedp.ID("address"), user),
		chromedp.SendKeys(chromedp.ID("password"), pass),
		chromedp.Submit(chromedp.ID("password")),
		chromedp.WaitVisible(chromedp.ID("account")))

	save := func(what string, clicks ...string) string {
		t.Helper()
		var acts []chromedp.Action[chromedp.Void]
		for _, id := range clicks {
			acts = append(acts, chromedp.Click(chromedp.ID(id)))
		}
		step(t, b, what, acts...)
		// Wait for the new page: the old one may show an earlier notice.
		sctx, cancel := context.WithTimeout(b, 20*time.Second)
		defer cancel()
		if _, err := chromedp.RunResponse(sctx, chromedp.Click(chromedp.ID("pop-save"))); err != nil {
			t.Fatalf("%s: saving: %v", what, err)
		}
		step(t, b, what, chromedp.WaitVisible(chromedp.ID("saved")))
		return value(t, b, "saved notice", chromedp.Text(chromedp.ID("saved")))
	}
	check := func(what string, got []string, want ...string) {
		t.Helper()
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("%s: POP lists %q, want %q", what, got, want)
		}
	}

	// POP for all mail, spam excluded, keep on delete.
	save("enable all", "access-all")
	check("all, no spam", w.popSubjects(t, user, pass, true), "ham-1") // DELE ham-1: kept on the server
	check("after DELE with keep", w.popSubjects(t, user, pass, false))
	// Include spam, and put all mail back in the queue.
	msg := save("include spam + requeue", "spam-yes", "requeue")
	if !strings.Contains(msg, "available to POP again") {
		t.Errorf("requeue notice: %q", msg)
	}
	check("requeued with spam", w.popSubjects(t, user, pass, false), "ham-1", "spam-1")
	// Mail from now on: the queue empties; new mail enters it.
	save("since now", "access-since")
	check("since now", w.popSubjects(t, user, pass, false))
	deliver("ham-2", false)
	check("new mail", w.popSubjects(t, user, pass, false), "ham-2")
	// Delete from server: DELE removes ham-2 for good, so requeueing
	// everything brings back only the older two.
	save("delete on server", "delete-delete")
	check("before DELE", w.popSubjects(t, user, pass, true), "ham-2")
	save("all again", "access-all")
	check("after DELE with delete", w.popSubjects(t, user, pass, false), "ham-1", "spam-1")
	// Exclude spam again.
	save("exclude spam", "spam-no")
	check("no spam", w.popSubjects(t, user, pass, false), "ham-1")
	// Disabled: refused with a hint.
	save("disable", "access-disabled")
	if r := w.popLoginFails(t, user, pass); !strings.Contains(r, "SYS/PERM") {
		t.Errorf("disabled again: %q", r)
	}
	save("enable", "access-all")

	// App password: created, shown once, works for POP; revoked, fails.
	step(t, b, "create app password", chromedp.SendKeys(chromedp.ID("app-name"), "Phone mail"),
		chromedp.Click(chromedp.ID("app-create")), chromedp.WaitVisible(chromedp.ID("secret")))
	secret := value(t, b, "secret", chromedp.Text(chromedp.ID("secret")))
	shot := value(t, b, "screenshot", chromedp.FullScreenshot(100))
	if err := os.WriteFile(filepath.Join(screenshotDir(t), "settings-new-app-password-en-desktop.png"), shot, 0o644); err != nil {
		t.Fatal(err)
	}
	if len(strings.ReplaceAll(secret, " ", "")) != 16 {
		t.Fatalf("secret %q", secret)
	}
	check("app password login", w.popSubjects(t, user, secret, false), "ham-1")
	for _, l := range []string{"en", "ja"} {
		auditPage(t, b, w.webURL+"/settings?lang="+l)
		screenshots(t, b, "settings-"+l, w.webURL+"/settings?lang="+l)
	}
	step(t, b, "revoke", chromedp.Navigate(w.webURL+"/settings?lang=en"),
		chromedp.Click(chromedp.CSS(`#apps button.danger`)), chromedp.WaitVisible(chromedp.ID("apps-empty")))
	w.popLoginFails(t, user, secret)

	refusedPosts(t, w, b, user)

	step(t, b, "sign out", chromedp.Navigate(w.webURL+"/settings?lang=en"), chromedp.Click(chromedp.CSS(`form[action="/settings/signout"] button`)),
		chromedp.WaitVisible(chromedp.ID("password")))
	for _, l := range []string{"en", "ja"} {
		auditPage(t, b, w.webURL+"/settings?lang="+l)
		screenshots(t, b, "signin-"+l, w.webURL+"/settings?lang="+l)
	}

	// A federated (SSO) account has no mail password: it gets the one
	// refusal every failed sign-in gets (no enumeration), whose single
	// sign-on box says how to set one.
	if _, err := w.store.AddDomain(ctx, "example.co.jp"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.store.AddAccount(ctx, store.NewAccount{Address: "sso@example.co.jp", Federated: true}); err != nil {
		t.Fatal(err)
	}
	for _, shot := range []struct{ lang, view string }{{"en", "desktop"}, {"ja", "desktop"}, {"ja", "phone"}} {
		acts := []chromedp.Action[chromedp.Void]{}
		if shot.view == "phone" {
			acts = append(acts, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(1), chromedp.EmulateMobile))
		}
		acts = append(acts, chromedp.Navigate(w.webURL+"/settings?lang="+shot.lang),
			chromedp.SendKeys(chromedp.ID("address"), "sso@example.co.jp"),
			chromedp.SendKeys(chromedp.ID("password"), "my SSO password"),
			chromedp.Submit(chromedp.ID("password")),
			chromedp.WaitVisible(chromedp.ID("no-password")),
			chromedp.Click(chromedp.CSS("#no-password summary")),
			chromedp.WaitVisible(chromedp.CSS("#no-password ol")))
		step(t, b, "federated sign-in", acts...)
		png := value(t, b, "screenshot", chromedp.FullScreenshot(100))
		if err := os.WriteFile(filepath.Join(screenshotDir(t), "signin-federated-"+shot.lang+"-"+shot.view+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
		step(t, b, "reset viewport", chromedp.EmulateReset())
	}
}

// refusedPosts: a form on another site (the browser omits the SameSite
// cookie), a post without a session and one without a CSRF token all
// leave the settings alone.
func refusedPosts(t *testing.T, w *webApp, b context.Context, user string) {
	t.Helper()
	ctx := context.Background()
	before, err := w.store.GetPOP(ctx, user)
	if err != nil {
		t.Fatal(err)
	}
	// Cross-site: a page elsewhere auto-posts a form to us.
	evil := "data:text/html," + url.PathEscape(`<form method="post" action="`+w.webURL+`/settings/pop">`+
		`<input name="access" value="disabled"><input name="spam" value="include"><input name="on_delete" value="delete">`+
		`<button id="go">go</button></form>`)
	step(t, b, "cross-site page", chromedp.Navigate(evil))
	sctx, cancel := context.WithTimeout(b, 20*time.Second)
	resp, err := chromedp.RunResponse(sctx, chromedp.Click(chromedp.ID("go")))
	cancel()
	if err != nil {
		t.Fatalf("cross-site post: %v", err)
	}
	if resp.Status != http.StatusForbidden {
		t.Errorf("cross-site post: %d, want 403", resp.Status)
	}

	// Session cookie taken from the browser, but no CSRF token; and no
	// session at all.
	for _, tc := range []struct {
		name   string
		cookie string
		status int
	}{
		{"no session", "", http.StatusUnauthorized},
		{"no token", sessionCookieOf(t, w, b), http.StatusForbidden},
	} {
		req, _ := http.NewRequest("POST", w.webURL+"/settings/pop",
			strings.NewReader("access=disabled&spam=include&on_delete=delete"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if tc.cookie != "" {
			req.Header.Set("Cookie", "__Host-skydesk-session="+tc.cookie)
		}
		resp, err := w.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s: %d, want %d", tc.name, resp.StatusCode, tc.status)
		}
	}
	if after, _ := w.store.GetPOP(ctx, user); after != before {
		t.Fatalf("refused posts changed POP settings: %+v → %+v", before, after)
	}
}

// sessionCookieOf reads the browser's HttpOnly session cookie through the
// DevTools protocol.
func sessionCookieOf(t *testing.T, w *webApp, b context.Context) string {
	t.Helper()
	res, err := chromedp.Call(b, network.GetCookies, network.GetCookiesParams{URLs: []string{w.webURL + "/settings"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range res.Cookies {
		if c.Name == "__Host-skydesk-session" {
			if !c.HTTPOnly || !c.Secure || c.SameSite != network.CookieSameSiteLax {
				t.Errorf("session cookie attributes: %+v", c)
			}
			return c.Value
		}
	}
	t.Fatal("browser holds no session cookie")
	return ""
}

// TestWebBrowser_twoStep: an account with two-step verification signs in
// with its password alone and is refused; with the password and a code
// from its authenticator secret (computed here as an authenticator app
// would) it reaches the settings screen.
func TestWebBrowser_twoStep(t *testing.T) {
	w := startWebApp(t)
	ctx := context.Background()
	const user, pass = "taro@skydesk.jp", "correct horse battery"
	if _, err := w.store.AddAccount(ctx, store.NewAccount{Address: user, Password: pass}); err != nil {
		t.Fatal(err)
	}
	key, err := w.store.EnrolTOTP(ctx, user)
	if err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t)
	step(t, b, "sign in without a code", chromedp.Navigate(w.webURL+"/settings?lang=en"),
		chromedp.SendKeys(chromedp.ID("address"), user),
		chromedp.SendKeys(chromedp.ID("password"), pass),
		chromedp.Submit(chromedp.ID("password")),
		chromedp.WaitVisible(chromedp.CSS(`.notice[role="alert"]`)))
	if txt := value(t, b, "notice", chromedp.Text(chromedp.CSS(`.notice[role="alert"]`))); !strings.Contains(txt, "verification code is not correct") {
		t.Fatalf("refusal says %q", txt)
	}
	shot := value(t, b, "screenshot", chromedp.FullScreenshot(100))
	if err := os.WriteFile(filepath.Join(screenshotDir(t), "signin-two-step-refused-en-desktop.png"), shot, 0o644); err != nil {
		t.Fatal(err)
	}
	// The form keeps the address; the keyboard reaches the code field
	// from the password field.
	if got := value(t, b, "address kept", chromedp.Value(chromedp.ID("address"))); got != user {
		t.Errorf("address field %q after the refusal", got)
	}
	code, err := totp.GenerateCode(key.Secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	step(t, b, "type the password", chromedp.SendKeys(chromedp.ID("password"), pass), chromedp.Focus(chromedp.ID("password")),
		chromedp.KeyEvent(kb.Tab))
	if f := value(t, b, "focus", chromedp.Evaluate[string](`document.activeElement.id`)); f != "otp" {
		t.Errorf("Tab from the password focuses %q, want the code field", f)
	}
	step(t, b, "sign in with a code", chromedp.KeyEvent(code), chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible(chromedp.ID("account")))
	if got := value(t, b, "account", chromedp.Text(chromedp.ID("account"))); got != user {
		t.Errorf("signed in as %q", got)
	}
	// The sign-in form with the code field, phone and desktop, both
	// languages, passes the accessibility audit.
	step(t, b, "sign out", chromedp.Click(chromedp.CSS(`form[action="/settings/signout"] button`)),
		chromedp.WaitVisible(chromedp.ID("otp")))
	for _, l := range []string{"en", "ja"} {
		auditPage(t, b, w.webURL+"/settings?lang="+l)
		screenshots(t, b, "signin-two-step-"+l, w.webURL+"/settings?lang="+l)
	}
}
