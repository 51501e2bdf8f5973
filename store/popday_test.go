package store_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/skydesk/skydeskd/store"
)

func TestParsePOPDay(t *testing.T) {
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	// 2026-03-10 23:30 UTC is already 2026-03-11 in Tokyo.
	now := time.Date(2026, 3, 10, 23, 30, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want string // RFC 3339 start, "" for an error
	}{
		{"2026-03-02", "2026-03-01T15:00:00Z"},
		{"2026-03-11", "2026-03-10T15:00:00Z"}, // today in Tokyo, tomorrow in UTC
		{"1970-01-01", "1969-12-31T15:00:00Z"},
		{"2026-03-12", ""}, // the future
		{"9999-12-31", ""},
		{"1969-12-31", ""}, // before 1970
		{"0000-01-01", ""},
		{"2026-02-30", ""}, // no such day
		{"2026-13-01", ""},
		{"2026-3-2", ""},
		{"2026/03/02", ""},
		{"+2026-03-0", ""},
		{"2026-03-02T00:00:00Z", ""},
		{"", ""},
		{strings.Repeat("9", 10000), ""},
		{"２０２６-03-02", ""}, // full-width digits
	} {
		d, err := store.ParsePOPDay(tc.in, tokyo, now)
		if tc.want == "" {
			if err == nil || !errors.Is(err, store.ErrBadSetting) || len(err.Error()) > 200 {
				t.Errorf("ParsePOPDay(%.20q) = %v, %v; want a short ErrBadSetting", tc.in, d, err)
			}
			continue
		}
		if err != nil || d.Date != tc.in || d.Start.UTC().Format(time.RFC3339) != tc.want {
			t.Errorf("ParsePOPDay(%q) = %v, %v; want start %s", tc.in, d, err, tc.want)
		}
	}
}

func TestParsePOPChoice(t *testing.T) {
	now := time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)
	for in, want := range map[string]store.POPAccess{"disabled": store.POPDisabled, "all": store.POPAll, "since-now": store.POPSince, "since:2026-03-01": store.POPSince} {
		a, day, err := store.ParsePOPChoice(in, time.UTC, now)
		if err != nil || a != want || (day != nil) != strings.HasPrefix(in, "since:") {
			t.Errorf("ParsePOPChoice(%q) = %v, %v, %v", in, a, day, err)
		}
	}
	for _, in := range []string{"since", "since:", "since:tomorrow", "since:2026-03-11", "ALL", ""} {
		if _, _, err := store.ParsePOPChoice(in, time.UTC, now); err == nil {
			t.Errorf("ParsePOPChoice(%q) accepted", in)
		}
	}
}
