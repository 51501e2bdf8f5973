package main

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skydesk/skydeskd/autoconfig"
)

// The adapter's cost per request: one resolved counter and one histogram
// observation, no label hashing, no allocation.
func BenchmarkAutoconfigMetrics_Request(b *testing.B) {
	m, err := newAutoconfigMetrics(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		m.Request(1, 1, 1, 300*time.Nanosecond)
		m.Cache(1, true)
	}
}

func TestAutoconfigMetrics_registersOnce(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := newAutoconfigMetrics(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := newAutoconfigMetrics(reg); err == nil {
		t.Fatal("a second registration on one registry succeeded")
	}
	var _ autoconfig.Observer = (*autoconfigMetrics)(nil)
}
