package webui

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/skydesk/skydeskd/store"
	"github.com/skydesk/skydeskd/store/storetest"
)

// "From a specific day": the day is read in the provider's zone (Japan
// time by default), saved only when it changes, shown back on the page;
// hostile dates are refused with one message, changing nothing and
// echoing nothing.
func TestWeb_POP_sinceDay(t *testing.T) {
	env := newWebEnv(t, store.ThrottlePolicy{})
	ctx := context.Background()
	storetest.AddUser(t, env.st.Driver, "taro@skydesk.jp", "correct horse")
	c := env.client()
	token := csrfOf(t, env.signIn(c, "taro@skydesk.jp", "correct horse"))
	save := func(lang, access, day string) string {
		t.Helper()
		form := url.Values{"csrf": {token}, "access": {access}, "since_day": {day}, "spam": {"exclude"}, "on_delete": {"keep"}}
		resp, body := do(t, c, "POST", env.srv.URL+"/settings/pop?lang="+lang, form, nil)
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("save: %d\n%s", resp.StatusCode, body)
		}
		_, page := do(t, c, "GET", env.srv.URL+"/settings?lang="+lang, nil, nil)
		return page
	}

	page := save("en", "since_day", "2026-03-02")
	u := env.st.last(t)
	if u.Access == nil || *u.Access != store.POPSince || u.Day == nil || u.Day.Date != "2026-03-02" ||
		!u.Day.Start.Equal(time.Date(2026, 3, 1, 15, 0, 0, 0, time.UTC)) {
		t.Fatalf("since_day: update %+v (day %+v)", u, u.Day)
	}
	for _, want := range []string{`value="since_day" checked`, `name="since_day" value="2026-03-02"`, `max="2026-11-26"`,
		"received since 2 Mar 2026", "mail received since then can be downloaded"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q:\n%s", want, page)
		}
	}
	if page := save("ja", "since_day", "2026-03-02"); !strings.Contains(page, "2026年3月2日（日本時間）以降") {
		t.Errorf("Japanese status missing:\n%s", page)
	}
	n := len(env.st.updates)
	if page = save("en", "since_day", "2026-03-02"); len(env.st.updates) != n || !strings.Contains(page, "Nothing was changed") {
		t.Error("the same day again sent an update")
	}
	// Another day is a change; so is "from now on" afterwards.
	save("en", "since_day", "2026-03-03")
	if u := env.st.last(t); u.Day == nil || u.Day.Date != "2026-03-03" {
		t.Fatalf("another day: %+v", u)
	}
	save("en", "since", "")
	if got, _ := env.st.GetPOP(ctx, "taro@skydesk.jp"); got.Access != store.POPSince || got.SinceDay != "" {
		t.Fatalf("from now on after a day: %+v", got)
	}

	// The clock is 2026-11-26 21:00 in Japan: tomorrow there is refused.
	n = len(env.st.updates)
	for _, day := range []string{"", "2026-02-30", "2026-13-01", "9999-12-31", "2026-11-27", "1969-12-31", "0001-01-01",
		"26-03-02", "2026-03-02T00:00", "<script>alert(1)</script>", "２０２６-03-02", strings.Repeat("2026-03-02", 500)} {
		page := save("en", "since_day", day)
		if len(env.st.updates) != n || !strings.Contains(page, "Choose a day from 1 Jan 1970 up to today") {
			t.Errorf("day %.30q: accepted or no message", day)
		}
		if strings.Contains(page, "<script>alert") || (len(day) > 10 && strings.Contains(page, day)) {
			t.Errorf("day %.30q echoed", day)
		}
	}
	// After midnight in Japan (15:30 UTC), 2026-11-27 is today there.
	env.clock.add(3*time.Hour + 30*time.Minute)
	token = csrfOf(t, env.signIn(c, "taro@skydesk.jp", "correct horse")) // the session idled out
	save("en", "since_day", "2026-11-27")
	if u := env.st.last(t); u.Day == nil || u.Day.Date != "2026-11-27" {
		t.Fatalf("today in Japan refused: %+v", u)
	}
}

// The POP section shows the last POP session.
func TestWeb_POP_lastAccess(t *testing.T) {
	env := newWebEnv(t, store.ThrottlePolicy{})
	acc := storetest.AddUser(t, env.st.Driver, "taro@skydesk.jp", "correct horse")
	c := env.client()
	env.signIn(c, "taro@skydesk.jp", "correct horse")
	get := func(lang string) string {
		_, page := do(t, c, "GET", env.srv.URL+"/settings?lang="+lang, nil, nil)
		return page
	}
	if page := get("en"); !strings.Contains(page, "No mail app has downloaded mail with POP yet.") {
		t.Errorf("no session yet:\n%s", page)
	}
	at := time.Date(2026, 11, 26, 8, 5, 0, 0, time.UTC)
	if err := env.st.RecordPOPSession(context.Background(), acc.ID, store.POPSession{At: at, Remote: "192.0.2.9", Downloaded: 2}); err != nil {
		t.Fatal(err)
	}
	if page := get("en"); !strings.Contains(page, "Last POP access: 26 Nov 2026 17:05 JST from 192.0.2.9, 2 message(s) downloaded.") {
		t.Errorf("en:\n%s", page)
	}
	if page := get("ja"); !strings.Contains(page, "最後の POP アクセス：2026年11月26日 17:05 JST、接続元 192.0.2.9、2 通ダウンロード。") {
		t.Errorf("ja:\n%s", page)
	}
}

// The setup page reports a result for a hosted address (onboarding).
func TestWeb_Setup_discovered(t *testing.T) {
	env := newWebEnv(t, store.ThrottlePolicy{})
	var got []string
	opts := env.opts
	opts.Discovered = func(a string) { got = append(got, a) }
	w, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	env.serving.Store(w)
	c := env.client()
	for _, q := range []string{"Hanako%40Example.co.jp", "a%40gmail.com", "not-an-address", "hanako%40example.co.jp"} {
		do(t, c, "GET", env.srv.URL+"/?email="+q, nil, nil)
	}
	if want := []string{"hanako@example.co.jp", "hanako@example.co.jp"}; !slices.Equal(got, want) {
		t.Errorf("discovered %q, want %q", got, want)
	}
}
