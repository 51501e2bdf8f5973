package autoconfig

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes of a request, the "outcome" label.
const (
	outcomeOK                = "ok"
	outcomeNotFound          = "not_found" // domain not hosted (any format)
	outcomeBadRequest        = "bad_request"
	outcomeUnsupported       = "unsupported" // Autodiscover 601, JSON InvalidProtocol
	outcomeTooLarge          = "too_large"
	outcomeMethodNotAllowed  = "method_not_allowed"
	outcomeRedirect          = "redirect"
	outcomeError             = "error"
	outcomeKey               = "autoconfig.outcome"
	metricsNamespace         = "skydeskd"
	metricsSubsystem         = "autoconfig"
	clientFamilyUnknownLabel = "other"
)

type metrics struct {
	requests   *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	cache      *prometheus.CounterVec
	signatures prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Subsystem: metricsSubsystem, Name: "requests_total",
			Help: "Autoconfig requests by format, outcome and client family (from User-Agent).",
		}, []string{"format", "outcome", "client"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: metricsNamespace, Subsystem: metricsSubsystem, Name: "request_duration_seconds",
			Help:    "Time to answer an autoconfig request, by format.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .05, .25, 1},
		}, []string{"format"}),
		cache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Subsystem: metricsSubsystem, Name: "cache_total",
			Help: "Document cache lookups by format and result (hit, miss).",
		}, []string{"format", "result"}),
		signatures: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNamespace, Subsystem: metricsSubsystem, Name: "signatures_total",
			Help: "Apple profiles signed (cache misses of signed profiles).",
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.cache, m.signatures} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering autoconfig metrics: %w", err)
		}
	}
	return m, nil
}

// observe is the outermost middleware: it turns a handler error into a
// response (so the status is known), then counts the request.
func (s *Server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		if err := next(c); err != nil {
			c.Error(err)
		}
		f := formatOf(c.Request().URL.Path)
		if f == fmtOther {
			return nil // the web pages count their own requests
		}
		status := c.Response().Status
		outcome, _ := c.Get(outcomeKey).(string)
		if outcome == "" {
			outcome = outcomeFromStatus(status)
		}
		ua := c.Request().UserAgent()
		fam := clientFamily(ua)
		s.m.requests.WithLabelValues(f.String(), outcome, fam).Inc()
		s.m.duration.WithLabelValues(f.String()).Observe(time.Since(start).Seconds())
		if s.log.Enabled(c.Request().Context(), -4) { // slog.LevelDebug
			s.log.Debug("autoconfig request", "format", f.String(), "method", c.Request().Method,
				"status", status, "outcome", outcome, "client", fam, "remote", c.RealIP())
		}
		return nil
	}
}

func formatOf(path string) format {
	switch {
	case path == pathTBConfig || path == pathTBWellKnown:
		return fmtThunderbird
	case path == pathAutodiscoverXML:
		return fmtAutodiscoverXML
	case path == pathAutodiscoverJSON || strings.HasPrefix(path, pathAutodiscoverJSON+"/"):
		return fmtAutodiscoverJSON
	case path == pathMobileConfig:
		return fmtMobileConfig
	}
	return fmtOther
}

func outcomeFromStatus(status int) string {
	switch {
	case status < 300:
		return outcomeOK
	case status < 400:
		return outcomeRedirect
	case status == http.StatusNotFound:
		return outcomeNotFound
	case status == http.StatusMethodNotAllowed:
		return outcomeMethodNotAllowed
	case status == http.StatusRequestEntityTooLarge:
		return outcomeTooLarge
	case status < 500:
		return outcomeBadRequest
	}
	return outcomeError
}

// clientFamily maps a User-Agent to a small fixed set of labels (bounded
// cardinality). Order matters: Thunderbird's UA also says Mozilla and
// Gecko; Outlook's says Windows; Safari's and Chrome's say Macintosh.
func clientFamily(ua string) string {
	has := func(s string) bool { return strings.Contains(ua, s) }
	switch {
	case ua == "":
		return "none"
	case has("Thunderbird"), has("Betterbird"):
		return "thunderbird"
	case has("Outlook"), has("Microsoft Office"), has("MSOffice"), has("Microsoft.Exchange"):
		return "outlook"
	case has("K-9"), has("Thunderbird for Android"):
		return "k9"
	case has("Evolution"), has("evolution"):
		return "evolution"
	case has("iPhone"), has("iPad"), has("iPod"), has("CFNetwork"), has("Darwin"),
		has("Macintosh") && has("Safari") && !has("Chrome") && !has("Firefox"):
		return "apple"
	case has("Android"):
		return "android"
	case has("Mozilla/"):
		return "browser"
	case has("curl/"), has("Wget/"), has("Go-http-client"), has("python"), has("wrk"):
		return "tool"
	}
	return clientFamilyUnknownLabel
}
