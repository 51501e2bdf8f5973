package store

import (
	"fmt"
	"strings"
	"time"
)

// POPDay is a day POP access starts from: the date as chosen and its
// first instant in the provider's time zone (config provider.time_zone).
type POPDay struct {
	Date  string    // YYYY-MM-DD
	Start time.Time // 00:00:00 of Date in the provider's zone
}

// dayLayout is the one spelling of a day: the CLI's since:YYYY-MM-DD and
// the value of an HTML date input (HTML §2.3.5.2 "valid date string").
const dayLayout = "2006-01-02"

// minPOPDay is the earliest day accepted: no mail is older than the Unix
// epoch, and an earlier day is a typing mistake.
const minPOPDay = "1970-01-01"

// ParsePOPDay reads a day (YYYY-MM-DD) in loc, the provider's time zone.
// It refuses anything else: malformed or impossible dates (2026-02-30),
// days before 1970, and days after today in loc (now), which would
// silently list nothing.
func ParsePOPDay(s string, loc *time.Location, now time.Time) (POPDay, error) {
	if !validDay(s) {
		return POPDay{}, fmt.Errorf("%w: day %q is not a date YYYY-MM-DD", ErrBadSetting, clip(s))
	}
	start, err := time.ParseInLocation(dayLayout, s, loc)
	if err != nil {
		return POPDay{}, fmt.Errorf("%w: day %q is not a date YYYY-MM-DD", ErrBadSetting, s)
	}
	if s < minPOPDay {
		return POPDay{}, fmt.Errorf("%w: day %s is before 1970", ErrBadSetting, s)
	}
	if s > now.In(loc).Format(dayLayout) {
		return POPDay{}, fmt.Errorf("%w: day %s is in the future", ErrBadSetting, s)
	}
	return POPDay{Date: s, Start: start}, nil
}

// ParsePOPChoice reads the CLI's --access value: disabled, all,
// since-now, or since:YYYY-MM-DD (a day in loc, see ParsePOPDay). day is
// nil except for a day.
func ParsePOPChoice(s string, loc *time.Location, now time.Time) (a POPAccess, day *POPDay, err error) {
	if d, ok := strings.CutPrefix(s, "since:"); ok {
		pd, err := ParsePOPDay(d, loc, now)
		if err != nil {
			return "", nil, err
		}
		return POPSince, &pd, nil
	}
	if s == "since" {
		return "", nil, fmt.Errorf("%w: access %q is not disabled, all, since-now or since:YYYY-MM-DD", ErrBadSetting, s)
	}
	a, err = ParsePOPAccess(s)
	if err != nil {
		return "", nil, fmt.Errorf("%w: access %q is not disabled, all, since-now or since:YYYY-MM-DD", ErrBadSetting, clip(s))
	}
	return a, nil, nil
}

// validDay: exactly ten characters NNNN-NN-NN (time.Parse alone accepts
// nothing looser, but checking first keeps hostile input out of errors).
func validDay(s string) bool {
	if len(s) != len(dayLayout) {
		return false
	}
	for i := range len(s) {
		if i == 4 || i == 7 {
			if s[i] != '-' {
				return false
			}
		} else if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// clip bounds a user-supplied value quoted in an error.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
