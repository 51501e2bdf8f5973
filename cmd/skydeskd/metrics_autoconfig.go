package main

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skydesk/skydeskd/autoconfig"
)

// autoconfigMetrics adapts autoconfig.Observer to Prometheus. Children are
// resolved once per label value (counters lazily, so only combinations
// seen are exported): a request costs no label hashing.
type autoconfigMetrics struct {
	requests   *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	cache      *prometheus.CounterVec
	signatures prometheus.Counter

	reqs    [autoconfig.NumFormats][autoconfig.NumOutcomes][autoconfig.NumClients]atomic.Pointer[counterBox]
	latency [autoconfig.NumFormats]prometheus.Observer
	hits    [autoconfig.NumFormats][2]prometheus.Counter // [f][0]=miss, [1]=hit
}

type counterBox struct{ prometheus.Counter }

var _ autoconfig.Observer = (*autoconfigMetrics)(nil)

func newAutoconfigMetrics(reg prometheus.Registerer) (*autoconfigMetrics, error) {
	m := &autoconfigMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "skydeskd", Subsystem: "autoconfig", Name: "requests_total",
			Help: "Autoconfig requests by format, outcome and client family (from User-Agent).",
		}, []string{"format", "outcome", "client"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "skydeskd", Subsystem: "autoconfig", Name: "request_duration_seconds",
			Help:    "Time to answer an autoconfig request, by format.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .05, .25, 1},
		}, []string{"format"}),
		cache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "skydeskd", Subsystem: "autoconfig", Name: "cache_total",
			Help: "Document cache lookups by format and result (hit, miss).",
		}, []string{"format", "result"}),
		signatures: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "skydeskd", Subsystem: "autoconfig", Name: "signatures_total",
			Help: "Apple profiles signed (cache misses of signed profiles).",
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.cache, m.signatures} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering autoconfig metrics: %w", err)
		}
	}
	for f := range autoconfig.Format(autoconfig.NumFormats) {
		m.latency[f] = m.duration.WithLabelValues(f.String())
		m.hits[f][0] = m.cache.WithLabelValues(f.String(), "miss")
		m.hits[f][1] = m.cache.WithLabelValues(f.String(), "hit")
	}
	return m, nil
}

func (m *autoconfigMetrics) Request(f autoconfig.Format, o autoconfig.Outcome, c autoconfig.Client, d time.Duration) {
	slot := &m.reqs[f][o][c]
	b := slot.Load()
	if b == nil {
		b = &counterBox{m.requests.WithLabelValues(f.String(), o.String(), c.String())}
		slot.Store(b)
	}
	b.Inc()
	m.latency[f].Observe(d.Seconds())
}

func (m *autoconfigMetrics) Cache(f autoconfig.Format, hit bool) {
	if hit {
		m.hits[f][1].Inc()
	} else {
		m.hits[f][0].Inc()
	}
}

func (m *autoconfigMetrics) Signed() { m.signatures.Inc() }
