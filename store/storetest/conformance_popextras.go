package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/skydesk/skydeskd/store"
)

// testPOPExtras checks POP access from a day, the last POP session and
// the onboarding records (migration 0008's roles).
func testPOPExtras(t *testing.T, d store.Driver) {
	t.Run("POPFromDay", func(t *testing.T) { testPOPFromDay(t, d) })
	t.Run("LastPOPSession", func(t *testing.T) { testLastPOPSession(t, d) })
	t.Run("Onboarding", func(t *testing.T) { testOnboarding(t, d) })
}

// jst is the provider's zone (Asia/Tokyo has had no DST since 1951).
var jst = time.FixedZone("JST", 9*60*60)

func deliverAt(t *testing.T, d store.Driver, rcpt string, at time.Time) int64 {
	t.Helper()
	uids, err := d.Deliver(t.Context(), store.Delivery{Recipients: []string{rcpt}, Body: []byte("Subject: x\r\n\r\nx\r\n"), Received: at})
	if err != nil || len(uids) != 1 {
		t.Fatalf("Deliver = %v, %v", uids, err)
	}
	return uids[0]
}

func testPOPFromDay(t *testing.T, d store.Driver) {
	acc := user(t, d, "day@skydesk.jp")
	before := deliverAt(t, d, acc.Address, time.Date(2026, 3, 1, 23, 59, 59, 999999999, jst))
	first := deliverAt(t, d, acc.Address, time.Date(2026, 3, 2, 0, 0, 0, 0, jst))
	later := deliverAt(t, d, acc.Address, time.Date(2026, 3, 5, 12, 0, 0, 0, jst))
	// Downloaded and kept: out of the queue until a day re-queues it.
	if err := d.Expunge(t.Context(), acc.ID, []int64{first}); err != nil {
		t.Fatal(err)
	}
	day, err := store.ParsePOPDay("2026-03-02", jst, time.Date(2026, 3, 10, 0, 0, 0, 0, jst))
	if err != nil {
		t.Fatal(err)
	}
	since := store.POPSince
	got, err := d.SetPOP(t.Context(), acc.Address, store.POPUpdate{Access: &since, Day: &day})
	if err != nil {
		t.Fatal(err)
	}
	if got.Access != store.POPSince || got.SinceDay != "2026-03-02" || !got.Since.Equal(day.Start) {
		t.Errorf("settings after since:2026-03-02 = %+v", got)
	}
	if l := listing(t, d, acc); !slices.Equal(l, []int64{first, later}) {
		t.Errorf("from 2026-03-02 JST: %v, want [%d %d] (not %d, 23:59:59 the day before)", l, first, later, before)
	}
	// "From now on" afterwards forgets the day.
	got, err = d.SetPOP(t.Context(), acc.Address, store.POPUpdate{Access: &since})
	if err != nil || got.SinceDay != "" || len(listing(t, d, acc)) != 0 {
		t.Errorf("since now after a day: %+v, %v, listing %v", got, err, listing(t, d, acc))
	}
	all := store.POPAll
	if got, err = d.SetPOP(t.Context(), acc.Address, store.POPUpdate{Access: &all}); err != nil || got.SinceDay != "" {
		t.Errorf("all after a day: %+v, %v", got, err)
	}
	if l := listing(t, d, acc); !slices.Equal(l, []int64{before, first, later}) {
		t.Errorf("all: %v", l)
	}
	// A day without access since, or a malformed one, is refused.
	for _, u := range []store.POPUpdate{{Access: &all, Day: &day}, {Day: &day}, {Access: &since, Day: &store.POPDay{Date: "2026-3-2"}}} {
		if _, err := d.SetPOP(t.Context(), acc.Address, u); err == nil {
			t.Errorf("SetPOP(%+v) accepted", u)
		}
	}
}

func testLastPOPSession(t *testing.T, d store.Driver) {
	acc := user(t, d, "last@skydesk.jp")
	if _, ok, err := d.LastPOPSession(t.Context(), acc.Address); ok || err != nil {
		t.Fatalf("before any session: ok %v, err %v", ok, err)
	}
	at := time.Date(2026, 3, 2, 8, 30, 0, 0, jst)
	for _, ps := range []store.POPSession{{At: at, Remote: "192.0.2.7", Downloaded: 3}, {At: at.Add(time.Hour), Remote: "2001:db8::1", Downloaded: 0}} {
		if err := d.RecordPOPSession(t.Context(), acc.ID, ps); err != nil {
			t.Fatal(err)
		}
		got, ok, err := d.LastPOPSession(t.Context(), "Last@SkyDesk.jp")
		if err != nil || !ok || !got.At.Equal(ps.At) || got.Remote != ps.Remote || got.Downloaded != ps.Downloaded {
			t.Errorf("LastPOPSession = %+v, %v, %v; want %+v", got, ok, err, ps)
		}
	}
	if err := d.RecordPOPSession(t.Context(), acc.ID, store.POPSession{At: at, Downloaded: -1}); err == nil {
		t.Error("a negative count was recorded")
	}
}

func testOnboarding(t *testing.T, d store.Driver) {
	ctx := t.Context()
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, jst)
	rec := func(addr, format string, at time.Time) bool {
		t.Helper()
		ok, err := d.RecordDiscovery(ctx, addr, format, at)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !rec("Taro@SkyDesk.jp", "thunderbird", t0) || rec("taro@skydesk.jp", "thunderbird", t0.Add(time.Minute)) {
		t.Error("a repeat within the window was not folded into the first discovery")
	}
	rec("taro@skydesk.jp", "mobileconfig", t0.Add(2*time.Minute))
	rec("hanako@skydesk.jp", "thunderbird", t0)
	rec("jiro@skydesk.jp", "setup_page", t0.Add(-2*time.Hour))
	if _, err := d.RecordDiscovery(ctx, "not an address", "thunderbird", t0); err == nil {
		t.Error("a malformed address was recorded")
	}
	got, err := d.RecordLogin(ctx, "taro@skydesk.jp", t0.Add(30*time.Minute))
	slices.Sort(got)
	if err != nil || !slices.Equal(got, []string{"mobileconfig", "thunderbird"}) {
		t.Errorf("RecordLogin = %v, %v; want both of taro's formats", got, err)
	}
	if got, _ := d.RecordLogin(ctx, "taro@skydesk.jp", t0.Add(40*time.Minute)); len(got) != 0 {
		t.Errorf("a second login settled %v again", got)
	}
	// jiro's discovery is over an hour old: a login now is no first login.
	if got, _ := d.RecordLogin(ctx, "jiro@skydesk.jp", t0); len(got) != 0 {
		t.Errorf("a login after the window settled %v", got)
	}
	got, err = d.SettleOnboarding(ctx, t0.Add(30*time.Minute))
	if err != nil || !slices.Equal(got, []string{"setup_page"}) {
		t.Errorf("SettleOnboarding = %v, %v; want jiro's setup_page only", got, err)
	}
	stats, err := d.OnboardingStats(ctx, t0.Add(-24*time.Hour), t0.Add(30*time.Minute))
	want := []store.OnboardingCount{
		{Format: "mobileconfig", Asked: 1, LoggedIn: 1},
		{Format: "setup_page", Asked: 1},
		{Format: "thunderbird", Asked: 2, LoggedIn: 1, Pending: 1},
	}
	if err != nil || !slices.Equal(stats, want) {
		t.Errorf("OnboardingStats = %+v, %v; want %+v", stats, err, want)
	}
	if got, _ := d.SettleOnboarding(ctx, t0.Add(2*time.Hour)); !slices.Equal(got, []string{"thunderbird"}) {
		t.Errorf("hanako's discovery settled as %v, want thunderbird", got)
	}
	// Past the retention, nothing is left.
	if _, err := d.SettleOnboarding(ctx, t0.Add(store.OnboardingRetention+time.Hour)); err != nil {
		t.Fatal(err)
	}
	if stats, _ := d.OnboardingStats(ctx, t0.Add(-24*time.Hour), t0.Add(store.OnboardingRetention)); len(stats) != 0 {
		t.Errorf("after the retention: %+v", stats)
	}
}
