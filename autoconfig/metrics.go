package autoconfig

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
)

// outcome of a request, the "outcome" label.
type outcome uint8

const (
	outcomeNone             outcome = iota // derive from the status
	outcomeOK                              // a document was served
	outcomeNotFound                        // domain not hosted (any format)
	outcomeBadRequest                      // malformed address or request
	outcomeUnsupported                     // Autodiscover 601, JSON InvalidProtocol
	outcomeTooLarge                        // body over 64 KiB
	outcomeMethodNotAllowed                // wrong method
	outcomeRedirect                        // plain HTTP to HTTPS
	outcomeError                           // internal error
	nOutcomes
)

var outcomeNames = [nOutcomes]string{"", "ok", "not_found", "bad_request", "unsupported", "too_large", "method_not_allowed", "redirect", "error"}

// outcomeKey is where a handler records an outcome the status does not
// tell (Autodiscover errors are HTTP 200).
const outcomeKey = "autoconfig.outcome"

// client families, the "client" label: a small fixed set.
type client uint8

const (
	clientNone client = iota
	clientThunderbird
	clientOutlook
	clientK9
	clientEvolution
	clientApple
	clientAndroid
	clientBrowser
	clientTool
	clientOther
	nClients
)

var clientNames = [nClients]string{"none", "thunderbird", "outlook", "k9", "evolution", "apple", "android", "browser", "tool", "other"}

type metrics struct {
	requests   *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	cache      *prometheus.CounterVec
	signatures prometheus.Counter

	// Resolved children, so a request costs no label hashing: counters
	// are created on first use (only combinations seen are exported).
	reqs    [nFormats][nOutcomes][nClients]atomic.Pointer[counterBox]
	latency [nFormats]prometheus.Observer
	hits    [nFormats][2]prometheus.Counter // [f][0]=miss, [1]=hit
}

type counterBox struct{ prometheus.Counter }

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
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
	for f := fmtThunderbird; f < nFormats; f++ {
		m.latency[f] = m.duration.WithLabelValues(f.String())
		m.hits[f][0] = m.cache.WithLabelValues(f.String(), "miss")
		m.hits[f][1] = m.cache.WithLabelValues(f.String(), "hit")
	}
	return m, nil
}

func (m *metrics) cacheHit(f format)  { m.hits[f][1].Inc() }
func (m *metrics) cacheMiss(f format) { m.hits[f][0].Inc() }

func (m *metrics) request(f format, o outcome, c client) {
	slot := &m.reqs[f][o][c]
	b := slot.Load()
	if b == nil {
		b = &counterBox{m.requests.WithLabelValues(f.String(), outcomeNames[o], clientNames[c])}
		slot.Store(b)
	}
	b.Inc()
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
		o, _ := c.Get(outcomeKey).(outcome)
		if o == outcomeNone {
			o = outcomeFromStatus(status)
		}
		fam := clientFamily(c.Request().UserAgent())
		s.m.request(f, o, fam)
		s.m.latency[f].Observe(time.Since(start).Seconds())
		if s.log.Enabled(c.Request().Context(), slog.LevelDebug) {
			s.log.Debug("autoconfig request", "format", f.String(), "method", c.Request().Method,
				"status", status, "outcome", outcomeNames[o], "client", clientNames[fam], "remote", c.RealIP())
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

func outcomeFromStatus(status int) outcome {
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
func clientFamily(ua string) client {
	has := func(s string) bool { return strings.Contains(ua, s) }
	switch {
	case ua == "":
		return clientNone
	case has("Thunderbird"), has("Betterbird"):
		return clientThunderbird
	case has("Outlook"), has("Microsoft Office"), has("MSOffice"), has("Microsoft.Exchange"):
		return clientOutlook
	case has("K-9"), has("Thunderbird for Android"):
		return clientK9
	case has("Evolution"), has("evolution"):
		return clientEvolution
	case has("iPhone"), has("iPad"), has("iPod"), has("CFNetwork"), has("Darwin"),
		has("Macintosh") && has("Safari") && !has("Chrome") && !has("Firefox"):
		return clientApple
	case has("Android"):
		return clientAndroid
	case has("Mozilla/"):
		return clientBrowser
	case has("curl/"), has("Wget/"), has("Go-http-client"), has("python"), has("wrk"):
		return clientTool
	}
	return clientOther
}
