package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/skydesk/skydeskd/store"
)

// POP "from a specific day" in a real browser, in English and Japanese:
// the date field is filled and saved, POP then lists mail received from
// 00:00 Japan time of that day (not the message at 23:59:59 the day
// before), the last POP access appears, and an empty day is refused.
// Screenshots: screenshots/settings-pop-day-{en,ja}-{desktop,phone}.png
// and settings-pop-day-error-ja-desktop.png.
func TestWebBrowser_popDay(t *testing.T) {
	w := startWebApp(t)
	ctx := context.Background()
	const user, pass = "taro@skydesk.jp", "correct horse battery"
	if _, err := w.store.AddAccount(ctx, store.NewAccount{Address: user, Password: pass}); err != nil {
		t.Fatal(err)
	}
	tokyo := w.cfg.Provider.Location()
	now := time.Now().In(tokyo)
	yesterday := time.Date(now.Year(), now.Month(), now.Day()-1, 0, 0, 0, 0, tokyo)
	day := yesterday.Format("2006-01-02")
	deliverAt := func(subject string, at time.Time) {
		t.Helper()
		msg := "From: a@example.org\r\nTo: " + user + "\r\nSubject: " + subject + "\r\n\r\nbody\r\n"
		if _, err := w.store.Deliver(ctx, store.Delivery{Recipients: []string{user}, Body: []byte(msg), Received: at}); err != nil {
			t.Fatal(err)
		}
	}
	deliverAt("before", yesterday.Add(-time.Second)) // 23:59:59 JST the day before
	deliverAt("first", yesterday)                    // 00:00:00 JST

	b := newBrowser(t)
	step(t, b, "sign in", chromedp.Navigate(w.webURL+"/settings?lang=en"),
		chromedp.SendKeys(chromedp.ID("address"), user),
		chromedp.SendKeys(chromedp.ID("password"), pass),
		chromedp.Submit(chromedp.ID("password")),
		chromedp.WaitVisible(chromedp.ID("account")))
	submit := func(what, lang, dayValue, wait string) string {
		t.Helper()
		step(t, b, what, chromedp.Navigate(w.webURL+"/settings?lang="+lang), chromedp.WaitVisible(chromedp.ID("since-day")),
			chromedp.Click(chromedp.ID("access-since-day")), chromedp.SetValue(chromedp.ID("since-day"), dayValue))
		sctx, cancel := context.WithTimeout(b, 20*time.Second)
		defer cancel()
		if _, err := chromedp.RunResponse(sctx, chromedp.Click(chromedp.ID("pop-save"))); err != nil {
			t.Fatalf("%s: saving: %v", what, err)
		}
		step(t, b, what, chromedp.WaitVisible(chromedp.ID(wait)))
		return value(t, b, what, chromedp.Text(chromedp.ID(wait)))
	}

	if msg := submit("since day", "en", day, "saved"); !strings.Contains(msg, "received from the day you chose") {
		t.Errorf("saved notice: %q", msg)
	}
	if got := w.popSubjects(t, user, pass, false); strings.Join(got, ",") != "first" {
		t.Fatalf("since %s: POP lists %q, want [first]", day, got)
	}
	for _, l := range []string{"en", "ja"} {
		step(t, b, "reload "+l, chromedp.Navigate(w.webURL+"/settings?lang="+l), chromedp.WaitVisible(chromedp.ID("pop-last")))
		if v := value(t, b, "date field", chromedp.Value(chromedp.ID("since-day"))); v != day {
			t.Errorf("%s: date field shows %q, want %q", l, v, day)
		}
		last := value(t, b, "last access", chromedp.Text(chromedp.ID("pop-last")))
		if want := map[string]string{"en": "from 127.0.0.1, 0 message(s) downloaded", "ja": "接続元 127.0.0.1、0 通ダウンロード"}[l]; !strings.Contains(last, want) {
			t.Errorf("%s: last POP access %q, want %q", l, last, want)
		}
		status := value(t, b, "status", chromedp.Text(chromedp.ID("pop-status")))
		if want := map[string]string{"en": "received since", "ja": "以降に受信したメール"}[l]; !strings.Contains(status, want) {
			t.Errorf("%s: status %q", l, status)
		}
		screenshots(t, b, "settings-pop-day-"+l, w.webURL+"/settings?lang="+l)
	}

	// An empty day (what a browser sends for an impossible one) is refused.
	if msg := submit("empty day", "ja", "", "form-error"); !strings.Contains(msg, "1970年1月1日から今日まで") {
		t.Errorf("refusal: %q", msg)
	}
	shot := value(t, b, "screenshot", chromedp.FullScreenshot(100))
	if err := os.WriteFile(filepath.Join(screenshotDir(t), "settings-pop-day-error-ja-desktop.png"), shot, 0o644); err != nil {
		t.Fatal(err)
	}
	if got, _ := w.store.GetPOP(ctx, user); got.SinceDay != day {
		t.Errorf("after the refusal: %+v", got)
	}
}
