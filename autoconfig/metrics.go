package autoconfig

import (
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
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

// Format, Outcome and Client are the label values of a request: small
// fixed sets, so an observer can resolve its counters once per value and
// a request costs no label hashing.
type (
	Format  = format
	Outcome = outcome
	Client  = client
)

// NumFormats, NumOutcomes and NumClients bound the values of each set
// (0 to N-1), for observers that index arrays by them.
const (
	NumFormats  = nFormats
	NumOutcomes = nOutcomes
	NumClients  = nClients
)

func (o outcome) String() string { return outcomeNames[o] }
func (c client) String() string  { return clientNames[c] }

// Observer is told of every autoconfig request, cache lookup and
// signature. autoconfig names no metrics itself: cmd/skydeskd adapts this
// to Prometheus, as it does for every server package (one convention:
// packages report through hooks, cmd owns the metric names).
type Observer interface {
	// Request is one answered request of a document format (the web
	// pages' requests are not reported) and how long it took.
	Request(f Format, o Outcome, c Client, d time.Duration)
	// Cache is one document-cache lookup.
	Cache(f Format, hit bool)
	// Signed is one Apple profile signed (a signed-profile cache miss).
	Signed()
}

type nopObserver struct{}

func (nopObserver) Request(Format, Outcome, Client, time.Duration) {}
func (nopObserver) Cache(Format, bool)                             {}
func (nopObserver) Signed()                                        {}

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
		s.obs.Request(f, o, fam, time.Since(start))
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
