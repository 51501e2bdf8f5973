package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/skydesk/skydeskd/smtpd"
)

// forwardOutcomes are the outcome label values of skydeskd_forward_total,
// listed at 0 from the start so a rate over them is defined at once.
var forwardOutcomes = []string{smtpd.ForwardQueued, smtpd.ForwardSpam, smtpd.ForwardLoop,
	smtpd.ForwardHopLimit, smtpd.ForwardUnconfirmed, smtpd.ForwardNoRelay}

// forwardMetric registers skydeskd_forward_total and returns the
// smtpd.Options.ObserveForward hook that counts into it. The label is
// the outcome only: no address or target ever appears in a metric.
func (a *app) forwardMetric() func(outcome string) {
	total := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "skydeskd_forward_total",
		Help: "What became of each forwarding mailbox's copy of a received message: queued for the relay, " +
			"or kept and not forwarded (refused_spam, loop, hop_limit, unconfirmed, no_relay)."}, []string{"outcome"})
	for _, o := range forwardOutcomes {
		total.WithLabelValues(o)
	}
	a.reg.MustRegister(total)
	return func(outcome string) { total.WithLabelValues(outcome).Inc() }
}
