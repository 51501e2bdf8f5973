package main

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skydesk/skydeskd/store"
	"github.com/skydesk/skydeskd/store/storetest"
)

// onboardingCount reads skydeskd_onboarding_total{format,outcome} as
// /metrics would export it.
func onboardingCount(t *testing.T, reg *prometheus.Registry, format, outcome string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "skydeskd_onboarding_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["format"] == format && labels["outcome"] == outcome {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no series for %s/%s", format, outcome)
	return 0
}

// The recorder: a discovery then a POP or SMTP login within the hour is a
// first login, counted once however often the client asks or logs in; a
// settings sign-in is no mail login; without a login, the settling after
// the hour counts no_login; the write rate is bounded.
func TestOnboardingRecorder(t *testing.T) {
	s := storetest.NewDriver(t)
	reg := prometheus.NewRegistry()
	r, err := newOnboardingRecorder(s, slog.New(slog.DiscardHandler), reg)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	r.now = func() time.Time { return now }
	ctx := context.Background()

	for range 3 {
		r.Discovered("thunderbird", "taro@skydesk.jp")
	}
	r.Discovered(formatSetupPage, "taro@skydesk.jp")
	r.Discovered("mobileconfig", "hanako@example.co.jp")
	r.LoggedIn(store.ServiceWeb, "taro@skydesk.jp")
	if n := onboardingCount(t, reg, "thunderbird", "first_login"); n != 0 {
		t.Errorf("a settings sign-in counted as a first login: %v", n)
	}
	now = now.Add(10 * time.Minute)
	r.LoggedIn(store.ServicePOP3, "taro@skydesk.jp")
	r.LoggedIn(store.ServiceSMTP, "taro@skydesk.jp")
	for _, f := range []string{"thunderbird", formatSetupPage} {
		if n := onboardingCount(t, reg, f, "first_login"); n != 1 {
			t.Errorf("%s first_login = %v, want 1", f, n)
		}
	}
	// hanako never logs in: the settling after the hour says so.
	r.settle(ctx)
	if n := onboardingCount(t, reg, "mobileconfig", "no_login"); n != 0 {
		t.Errorf("settled before the hour: %v", n)
	}
	now = now.Add(time.Hour)
	r.settle(ctx)
	r.settle(ctx)
	if n := onboardingCount(t, reg, "mobileconfig", "no_login"); n != 1 {
		t.Errorf("mobileconfig no_login = %v, want 1", n)
	}
	stats, err := s.OnboardingStats(ctx, now.Add(-24*time.Hour), now)
	if err != nil || len(stats) != 3 {
		t.Fatalf("stats %+v, %v", stats, err)
	}

	// A burst of made-up addresses is cut at discoveryBurst writes.
	now = now.Add(time.Hour) // the bucket is full again
	for i := range 2 * discoveryBurst {
		r.Discovered("thunderbird", "scan"+string(rune('a'+i%26))+string(rune('a'+i/26))+"@skydesk.jp")
	}
	stats, _ = s.OnboardingStats(ctx, now.Add(-time.Minute), now)
	if len(stats) != 1 || stats[0].Asked != discoveryBurst {
		t.Errorf("a burst wrote %+v, want %d discoveries", stats, discoveryBurst)
	}
}

// BenchmarkOnboarding_repeat is what every cached autoconfig answer pays
// once the address was seen: a lock-free lookup.
func BenchmarkOnboarding_repeat(b *testing.B) {
	s := storetest.NewDriver(b)
	r, err := newOnboardingRecorder(s, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	r.Discovered("thunderbird", "taro@skydesk.jp")
	b.ReportAllocs()
	for b.Loop() {
		r.Discovered("thunderbird", "taro@skydesk.jp")
	}
}
