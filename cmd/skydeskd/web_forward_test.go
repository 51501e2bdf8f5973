package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/skydesk/skydeskd/internal/benchsink"
	"github.com/skydesk/skydeskd/store"
)

// fwdTexts are the forwarding texts the browser tests look for, by
// language (templates/web/i18n).
var fwdTexts = map[string]struct {
	targetLabel, keepYes, keepNo, off, pending, on, saved, turnedOff, lead, done, noRelay, refused string
}{
	"en": {"Forward a copy of incoming mail to", "Keep a copy here (POP downloads it too)", "Keep no copy here",
		"Forwarding is off.", "Waiting for %s to confirm", "Mail is forwarded to %s.",
		"A confirmation link was sent to the forwarding address.", "Forwarding turned off.",
		"Mail to %s will be forwarded to %s once you confirm.", "Confirmed: mail to %s is now forwarded to %s.",
		"Mail forwarding is not available on this service: no outgoing mail relay (smtp.smarthost) is set up.",
		"Forwarding could not be set: this service has no outgoing mail relay (smtp.smarthost)."},
	"ja": {"受信メールのコピーの転送先", "コピーを残す (POP でも受信できます)", "コピーを残さない",
		"転送はオフです。", "%s の承認待ちです。", "メールを %s に転送しています。",
		"転送先に確認リンクを送信しました。", "転送をオフにしました。",
		"承認すると、%s 宛てのメールが %s に転送されます。", "承認しました。%s 宛てのメールは %s に転送されます。",
		"このサービスではメール転送を利用できません。送信用の中継サーバー (smtp.smarthost) が設定されていません。",
		"転送を設定できませんでした。このサービスには送信用の中継サーバー (smtp.smarthost) がありません。"},
}

// fill replaces the %s in a text template with args, in order.
func fill(s string, args ...string) string {
	for _, a := range args {
		s = strings.Replace(s, "%s", a, 1)
	}
	return s
}

// browserSignedIn adds the account user and returns a browser signed in
// to its settings screen.
func browserSignedIn(t *testing.T, w *webApp, user string) context.Context {
	t.Helper()
	const pass = "correct horse battery"
	if _, err := w.store.AddAccount(context.Background(), store.NewAccount{Address: user, Password: pass}); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t)
	step(t, b, "sign in", chromedp.Navigate(w.webURL+"/settings?lang=en"),
		chromedp.SendKeys(chromedp.ID("address"), user),
		chromedp.SendKeys(chromedp.ID("password"), pass),
		chromedp.Submit(chromedp.ID("password")),
		chromedp.WaitVisible(chromedp.ID("account")))
	return b
}

// clickAndLoad clicks sel and waits for the page the click loads, then
// for wait to be visible: the old page may show an earlier notice.
func clickAndLoad(t *testing.T, b context.Context, what, sel, wait string) {
	t.Helper()
	sctx, cancel := context.WithTimeout(b, 20*time.Second)
	defer cancel()
	if _, err := chromedp.RunResponse(sctx, chromedp.Click(chromedp.ID(sel))); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	step(t, b, what, chromedp.WaitVisible(chromedp.ID(wait)))
}

// text is the visible text of the element with id.
func text(t *testing.T, b context.Context, id string) string {
	t.Helper()
	return strings.Join(strings.Fields(value(t, b, "text of #"+id, chromedp.Text(chromedp.ID(id)))), " ")
}

// labelOf is the text of the label the browser associates with the
// control with id (its accessible name source).
func labelOf(t *testing.T, b context.Context, id string) string {
	t.Helper()
	return value(t, b, "label of #"+id, chromedp.Evaluate[string](
		`(() => { const e = document.getElementById(`+jsString(id)+`); return e && e.labels.length ? e.labels[0].textContent.trim() : ""; })()`))
}

// checkByLabel checks the forwarding form's control whose label reads
// label, as a screen-reader user picks it by name; false when no label
// with that text controls a checkable input.
func checkByLabel(t *testing.T, b context.Context, label string) bool {
	t.Helper()
	return value(t, b, "check "+label, chromedp.Evaluate[bool](`(() => {
  const l = [...document.querySelectorAll("#fwd-form label")].find(l => l.textContent.trim() === `+jsString(label)+`);
  if (!l || !l.control) return false;
  l.control.click();
  return l.control.checked;
})()`))
}

// checkedLabel is the label text of the checked keep choice.
func checkedLabel(t *testing.T, b context.Context) string {
	t.Helper()
	return value(t, b, "checked keep", chromedp.Evaluate[string](
		`(() => { const e = document.querySelector('#fwd-form input[name=keep]:checked'); return e && e.labels.length ? e.labels[0].textContent.trim() : ""; })()`))
}

// jsString quotes s for a script (the texts here hold no quotes or
// backslashes; refuse any that would).
func jsString(s string) string {
	if strings.ContainsAny(s, "\"\\\n") {
		panic("jsString: " + s)
	}
	return `"` + s + `"`
}

// saveShot writes one full-page screenshot of the page shown now.
func saveShot(t *testing.T, b context.Context, name string) {
	t.Helper()
	png := value(t, b, "screenshot", chromedp.FullScreenshot(100))
	if err := os.WriteFile(filepath.Join(screenshotDir(t), name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Forwarding on the settings screen in a real browser, in English then
// Japanese, with the relay pointed at the bench sink: the target is
// entered and keep chosen by their labels, saving shows "confirmation
// sent" and the pending state; the link from the message the sink got
// opens a page that only asks, its button confirms (once: the link is
// then invalid); the settings screen
// then shows forwarding on with the chosen keep; turning it off shows the
// off state. Screenshots: screenshots/settings-forward-{pending,on}-
// {en,ja}-{desktop,phone}.png, forward-confirm-{en,ja}-{desktop,phone}.png,
// forward-confirmed-{en,ja}-desktop.png and
// settings-forward-turned-off-{en,ja}-desktop.png.
func TestWebBrowser_forward(t *testing.T) {
	sink := benchsink.Start(t)
	w := startWebApp(t, withSink(sink))
	ctx := context.Background()
	const user = "taro@skydesk.jp"
	b := browserSignedIn(t, w, user)
	for _, c := range []struct{ lang, target, keep string }{{"en", "taro.en@elsewhere.example", "no"}, {"ja", "taro.ja@elsewhere.example", "yes"}} {
		tx := fwdTexts[c.lang]
		settings := w.webURL + "/settings?lang=" + c.lang
		step(t, b, "open settings", chromedp.Navigate(settings), chromedp.WaitVisible(chromedp.ID("fwd-form")))
		if s := text(t, b, "fwd-state"); s != tx.off {
			t.Errorf("%s: state %q, want %q", c.lang, s, tx.off)
		}
		if l := labelOf(t, b, "fwd-target"); l != tx.targetLabel {
			t.Errorf("%s: target field labelled %q", c.lang, l)
		}
		keepLabel := map[string]string{"yes": tx.keepYes, "no": tx.keepNo}[c.keep]
		step(t, b, "enter target", chromedp.SendKeys(chromedp.ID("fwd-target"), c.target))
		if !checkByLabel(t, b, keepLabel) {
			t.Fatalf("%s: no keep choice labelled %q", c.lang, keepLabel)
		}
		skip := len(sink.Transactions())
		clickAndLoad(t, b, "save forwarding", "fwd-save", "saved")
		if s := text(t, b, "saved"); !strings.Contains(s, tx.saved) {
			t.Errorf("%s: saved notice %q", c.lang, s)
		}
		if s := text(t, b, "fwd-state"); !strings.Contains(s, fill(tx.pending, c.target)) {
			t.Errorf("%s: pending state %q", c.lang, s)
		}
		auditHere(t, b, c.lang+" pending")
		screenshots(t, b, "settings-forward-pending-"+c.lang, settings)

		// The target's owner opens the link from the message.
		link := sinkLink(t, sink, c.target, skip)
		step(t, b, "open link", chromedp.Navigate(link+"&lang="+c.lang), chromedp.WaitVisible(chromedp.ID("fwd-confirm-button")))
		if s := text(t, b, "fwd-confirm-lead"); s != fill(tx.lead, user, c.target) {
			t.Errorf("%s: confirmation page %q", c.lang, s)
		}
		if f, err := w.store.GetForward(ctx, user); err != nil || f.Confirmed {
			t.Fatalf("%s: opening the link confirmed: %+v %v", c.lang, f, err)
		}
		auditHere(t, b, c.lang+" confirmation page")
		screenshots(t, b, "forward-confirm-"+c.lang, link+"&lang="+c.lang)
		clickAndLoad(t, b, "confirm", "fwd-confirm-button", "fwd-confirmed")
		if s := text(t, b, "fwd-confirmed"); s != fill(tx.done, user, c.target) {
			t.Errorf("%s: confirmed page %q", c.lang, s)
		}
		saveShot(t, b, "forward-confirmed-"+c.lang+"-desktop")
		// The link works once.
		step(t, b, "open the link again", chromedp.Navigate(link+"&lang="+c.lang), chromedp.WaitVisible(chromedp.ID("fwd-invalid")))
		if n := value(t, b, "buttons", chromedp.Evaluate[int](`document.querySelectorAll("#fwd-confirm-button").length`)); n != 0 {
			t.Errorf("%s: a used link still offers the button", c.lang)
		}

		// Forwarding is on, with the keep chosen.
		step(t, b, "settings after confirming", chromedp.Navigate(settings), chromedp.WaitVisible(chromedp.ID("fwd-off")))
		if s := text(t, b, "fwd-state"); s != fill(tx.on, c.target) {
			t.Errorf("%s: active state %q", c.lang, s)
		}
		if l := checkedLabel(t, b); l != keepLabel {
			t.Errorf("%s: keep shows %q, want %q", c.lang, l, keepLabel)
		}
		if f, err := w.store.GetForward(ctx, user); err != nil || !f.Active() || f.Target != c.target || f.Keep != (c.keep == "yes") {
			t.Errorf("%s: stored %+v %v", c.lang, f, err)
		}
		screenshots(t, b, "settings-forward-on-"+c.lang, settings)

		// Off.
		step(t, b, "settings", chromedp.Navigate(settings), chromedp.WaitVisible(chromedp.ID("fwd-off")))
		clickAndLoad(t, b, "turn off", "fwd-off", "saved")
		if s := text(t, b, "saved"); !strings.Contains(s, tx.turnedOff) {
			t.Errorf("%s: off notice %q", c.lang, s)
		}
		if s := text(t, b, "fwd-state"); s != tx.off {
			t.Errorf("%s: state after off %q", c.lang, s)
		}
		if v := value(t, b, "target field", chromedp.Value(chromedp.ID("fwd-target"))); v != "" {
			t.Errorf("%s: target field keeps %q after off", c.lang, v)
		}
		saveShot(t, b, "settings-forward-turned-off-"+c.lang+"-desktop")
		if _, err := w.store.GetForward(ctx, user); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: after off: %v", c.lang, err)
		}
	}
}

// Without smtp.smarthost the forwarding section says forwarding is not
// available and has no form; a forwarding post made anyway (a script
// building the form the screen does not offer) is refused with the
// message that says why, and nothing is stored. Screenshots:
// screenshots/settings-forward-no-relay-{en,ja}-{desktop,phone}.png and
// settings-forward-refused-{en,ja}-desktop.png.
func TestWebBrowser_forwardNoRelay(t *testing.T) {
	w := startWebApp(t)
	ctx := context.Background()
	const user = "taro@skydesk.jp"
	b := browserSignedIn(t, w, user)
	const post = `(() => {
  const f = document.createElement("form");
  f.method = "post"; f.action = "/settings/forward";
  const add = (n, v) => { const i = document.createElement("input"); i.type = "hidden"; i.name = n; i.value = v; f.appendChild(i); };
  add("csrf", document.querySelector('input[name=csrf]').value);
  add("target", "me@elsewhere.example"); add("keep", "no");
  const btn = document.createElement("button"); btn.id = "fwd-forged"; btn.textContent = "post"; f.appendChild(btn);
  document.querySelector("main").appendChild(f); return true;
})()`
	for _, l := range []string{"en", "ja"} {
		tx := fwdTexts[l]
		settings := w.webURL + "/settings?lang=" + l
		step(t, b, "open settings", chromedp.Navigate(settings), chromedp.WaitVisible(chromedp.ID("fwd-no-relay")))
		if s := text(t, b, "fwd-no-relay"); s != tx.noRelay {
			t.Errorf("%s: no-relay text %q", l, s)
		}
		if n := value(t, b, "forms", chromedp.Evaluate[int](`document.querySelectorAll("#fwd-form, #fwd-target, #fwd-save").length`)); n != 0 {
			t.Errorf("%s: %d forwarding controls shown without a relay", l, n)
		}
		screenshots(t, b, "settings-forward-no-relay-"+l, settings)

		step(t, b, "open settings", chromedp.Navigate(settings), chromedp.WaitVisible(chromedp.ID("fwd-no-relay")))
		value(t, b, "build the form", chromedp.Evaluate[bool](post))
		clickAndLoad(t, b, "forged post", "fwd-forged", "form-error")
		if s := text(t, b, "form-error"); s != tx.refused {
			t.Errorf("%s: refusal %q, want %q", l, s, tx.refused)
		}
		saveShot(t, b, "settings-forward-refused-"+l+"-desktop")
	}
	if _, err := w.store.GetForward(ctx, user); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("without a relay forwarding was stored: %v", err)
	}
}
