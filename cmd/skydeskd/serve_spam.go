package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/skydesk/skydeskd/rspamd"
	"github.com/skydesk/skydeskd/smtpd"
)

// spamScanner builds the MX's rspamd client from spam.*, with its metrics
// on /metrics; nil (the header-derived flag) when spam.rspamd_url is
// empty. Validate has checked the URL, timeout and policy.
func (a *app) spamScanner() (smtpd.Scanner, error) {
	sc := a.cfg.Spam
	if sc.RspamdURL == "" {
		return nil, nil
	}
	verdicts := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "skydeskd_rspamd_verdicts_total",
		Help: "rspamd answers on the MX, by action (no action, greylist, add header, rewrite subject, soft reject, reject)."},
		[]string{"action"})
	errs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "skydeskd_rspamd_errors_total",
		Help: "MX messages rspamd gave no verdict for (timeout, unavailable, http_status, bad_response); spam.on_error decided."},
		[]string{"reason"})
	latency := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "skydeskd_rspamd_duration_seconds",
		Help:    "Time spent waiting for rspamd per MX message, errors included.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}})
	a.reg.MustRegister(verdicts, errs, latency)
	c, err := rspamd.New(rspamd.Options{URL: sc.RspamdURL, Timeout: sc.TimeoutValue(), OnError: rspamd.OnError(sc.OnError),
		Observe: func(o rspamd.Outcome) {
			latency.Observe(o.Took.Seconds())
			if o.Error != "" {
				errs.WithLabelValues(o.Error).Inc()
				return
			}
			verdicts.WithLabelValues(string(o.Action)).Inc()
		}})
	if err != nil {
		return nil, err
	}
	a.log.Info("spam filter on the MX", "rspamd", sc.RspamdURL, "timeout", sc.TimeoutValue(), "on_error", sc.OnError)
	return c, nil
}
