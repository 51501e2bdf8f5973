package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/skydesk/skydeskd/autoconfig"
	"github.com/skydesk/skydeskd/store"
)

// cmdStats is `skydeskd stats onboarding`: per discovery format, how many
// addresses asked for their settings in the last 24 hours and 7 days, and
// how many of those logged in to POP or SMTP within an hour.
func cmdStats(ctx context.Context, args []string, e env) error {
	_, args, err := sub(args, "stats", "onboarding")
	if err != nil {
		return err
	}
	c := common{getenv: e.getenv}
	fs := newFlags("stats onboarding", &c)
	if _, err := parse(fs, args); err != nil {
		return err
	}
	return c.withStore(ctx, func(s storeDriver) error {
		now := time.Now()
		var periods [2][]store.OnboardingCount
		for i, d := range []time.Duration{24 * time.Hour, 7 * 24 * time.Hour} {
			if periods[i], err = s.OnboardingStats(ctx, now.Add(-d), now); err != nil {
				return err
			}
		}
		printOnboarding(e.stdout, periods[0], periods[1])
		return nil
	})
}

// onboardingFormats are the rows, in a fixed order, each shown even
// without figures.
func onboardingFormats() []string {
	var out []string
	for f := range autoconfig.Format(autoconfig.NumFormats) {
		if f.String() != "other" {
			out = append(out, f.String())
		}
	}
	return append(out, formatSetupPage)
}

func printOnboarding(w io.Writer, day, week []store.OnboardingCount) {
	find := func(cs []store.OnboardingCount, f string) store.OnboardingCount {
		for _, c := range cs {
			if c.Format == f {
				return c
			}
		}
		return store.OnboardingCount{Format: f}
	}
	fmt.Fprintf(w, "%-18s %-28s %s\n", "format", "last 24 h", "last 7 days")
	for _, f := range onboardingFormats() {
		fmt.Fprintf(w, "%-18s %-28s %s\n", f, onboardingCell(find(day, f)), onboardingCell(find(week, f)))
	}
	fmt.Fprintln(w, "(asked: addresses that asked for settings; logged in: to POP or SMTP within an hour; "+
		"pending: asked less than an hour ago, no login yet)")
}

// onboardingCell is "asked 12, logged in 9 (75%), pending 1"; the share
// counts only settled discoveries (asked minus pending).
func onboardingCell(c store.OnboardingCount) string {
	s := fmt.Sprintf("%d asked, %d logged in", c.Asked, c.LoggedIn)
	if settled := c.Asked - c.Pending; settled > 0 {
		s += fmt.Sprintf(" (%d%%)", 100*c.LoggedIn/settled)
	}
	if c.Pending > 0 {
		s += fmt.Sprintf(", %d pending", c.Pending)
	}
	return s
}
