// Package rspamd is a client of rspamd's HTTP scanning protocol: it POSTs
// a message with its SMTP envelope to /checkv2 and returns the typed
// verdict (https://rspamd.com/doc/developers/protocol.html).
//
// The package knows nothing of SMTP replies or storage: Verdict maps
// rspamd's action to a Disposition (deliver, deliver as spam, defer,
// reject) and applies the operator's on-error policy; the MX turns that
// into its reply.
package rspamd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// Defaults of Options.
const (
	DefaultTimeout     = 10 * time.Second
	DefaultMaxResponse = 1 << 20
)

// Options configure a Client. Zero values get the documented defaults.
type Options struct {
	// URL is the base URL of rspamd's normal worker, such as
	// http://127.0.0.1:11333; /checkv2 is appended.
	URL string
	// Timeout bounds one check: connecting, sending and reading the
	// answer (default DefaultTimeout).
	Timeout time.Duration
	// MaxResponse bounds the answer read, in octets (default
	// DefaultMaxResponse): a larger answer is an error, never truncated.
	MaxResponse int64
	// OnError is what Verdict answers when rspamd cannot be asked
	// (default Accept).
	OnError OnError
	// Observe, if set, is told every check's outcome (for metrics).
	Observe func(Outcome)
	// Transport replaces the HTTP transport (tests).
	Transport http.RoundTripper
}

// Client asks one rspamd. It is safe for concurrent use.
type Client struct {
	url  string
	opts Options
	http *http.Client
}

// New returns a client of the rspamd at o.URL.
func New(o Options) (*Client, error) {
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("rspamd url %q is not an http(s) URL", o.URL)
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxResponse <= 0 {
		o.MaxResponse = DefaultMaxResponse
	}
	if o.OnError == "" {
		o.OnError = Accept
	}
	if o.Observe == nil {
		o.Observe = func(Outcome) {}
	}
	rt := o.Transport
	if rt == nil {
		// No Proxy: HTTP_PROXY in the environment must never send the
		// mail we receive to a third party. rspamd 3.4's normal worker
		// answers "Connection: close"; the idle pool serves a proxy in
		// front of it that keeps connections.
		rt = &http.Transport{
			DialContext:         (&net.Dialer{Timeout: o.Timeout}).DialContext,
			MaxIdleConns:        64,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     90 * time.Second,
		}
	}
	return &Client{
		url:  strings.TrimSuffix(u.String(), "/") + "/checkv2",
		opts: o,
		http: &http.Client{Transport: rt, Timeout: o.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
	}, nil
}

// Request is the SMTP envelope and connection of one message, sent as
// rspamd's request headers.
type Request struct {
	IP   netip.Addr // the SMTP client's address (IP)
	Helo string     // its EHLO/HELO name (Helo)
	// Hostname is the client's verified reverse-DNS name; "" sends the
	// milter convention "[address]", which rspamd reads as "no name".
	Hostname string
	From     string   // envelope sender, "" for the null reverse-path (From)
	Rcpt     []string // envelope recipients, one Rcpt header each
	QueueID  string   // our transaction id, for matching logs (Queue-Id)
}

// Action is rspamd's recommended action (its "action" field).
type Action string

// The actions of rspamd's default configuration, plus the two a custom
// one may add.
const (
	NoAction       Action = "no action"
	Greylist       Action = "greylist"
	AddHeader      Action = "add header"
	RewriteSubject Action = "rewrite subject"
	SoftReject     Action = "soft reject"
	Reject         Action = "reject"
	Discard        Action = "discard"
	Quarantine     Action = "quarantine"
)

// Symbol is one rule that matched, with the score it added.
type Symbol struct {
	Name  string
	Score float64
}

// Result is rspamd's answer to one check.
type Result struct {
	Action        Action
	Score         float64
	RequiredScore float64 // the score of the reject action
	// Symbols sorted by name; names are printable ASCII without spaces.
	Symbols []Symbol
	// SMTPMessage is rspamd's text for the SMTP reply, made safe for one:
	// one line of printable ASCII, at most maxMessage octets; "" if none.
	SMTPMessage string
}

// Errors of Check, for errors.Is (the metrics label of each is Kind).
var (
	ErrUnavailable = errors.New("rspamd unavailable")
	ErrTimeout     = errors.New("rspamd timed out")
	ErrStatus      = errors.New("rspamd answered an HTTP error")
	ErrBadResponse = errors.New("rspamd answer malformed")
)

// Message is a message of known length read in pieces (a spool file, or
// a *bytes.Reader), so a large one is streamed to rspamd, never copied
// whole into memory.
type Message interface {
	io.ReaderAt
	Size() int64
}

// Check sends msg (the message as received, CRLF line endings) with its
// envelope and returns rspamd's verdict. Errors wrap one of ErrUnavailable,
// ErrTimeout, ErrStatus or ErrBadResponse.
func (c *Client) Check(ctx context.Context, r Request, msg Message) (Result, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, io.NewSectionReader(msg, 0, msg.Size()))
	if err != nil {
		return Result{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if req.ContentLength = msg.Size(); req.ContentLength == 0 { // sent with Content-Length, not chunked
		req.Body = http.NoBody
	}
	r.header(req.Header)
	resp, err := c.http.Do(req)
	if err != nil {
		return Result{}, classify(ctx, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.opts.MaxResponse+1))
	if err != nil {
		return Result{}, classify(ctx, err)
	}
	if int64(len(body)) > c.opts.MaxResponse {
		return Result{}, fmt.Errorf("%w: answer longer than %d octets", ErrBadResponse, c.opts.MaxResponse)
	}
	if resp.StatusCode != http.StatusOK {
		return Result{}, fmt.Errorf("%w: %s: %s", ErrStatus, resp.Status, oneLine(string(body), 200))
	}
	return parse(body)
}

// header sets rspamd's request headers (protocol.html, "HTTP request").
func (r Request) header(h http.Header) {
	if r.IP.IsValid() {
		h.Set("IP", r.IP.Unmap().String())
	}
	if r.Helo != "" {
		h.Set("Helo", headerValue(r.Helo, 255))
	}
	switch {
	case r.Hostname != "":
		h.Set("Hostname", headerValue(r.Hostname, 255))
	case r.IP.IsValid():
		h.Set("Hostname", "["+r.IP.Unmap().String()+"]")
	}
	// rspamd reads an empty From as the null reverse-path <>.
	h.Set("From", headerValue(r.From, 512))
	for _, rc := range r.Rcpt {
		h.Add("Rcpt", headerValue(rc, 512))
	}
	if r.QueueID != "" {
		h.Set("Queue-Id", headerValue(r.QueueID, 64))
	}
}

// classify wraps a transport error: a deadline is ErrTimeout, anything
// else (refused, reset) ErrUnavailable.
func classify(ctx context.Context, err error) error {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil || (errors.As(err, &ne) && ne.Timeout()) {
		return fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// answer is the part of the /checkv2 JSON we read.
type answer struct {
	Action        *Action  `json:"action"`
	Score         *float64 `json:"score"`
	RequiredScore float64  `json:"required_score"`
	Symbols       map[string]struct {
		Score float64 `json:"score"`
	} `json:"symbols"`
	Messages struct {
		SMTP string `json:"smtp_message"`
	} `json:"messages"`
}

func parse(body []byte) (Result, error) {
	var a answer
	if err := json.Unmarshal(body, &a); err != nil {
		return Result{}, fmt.Errorf("%w: %w", ErrBadResponse, err)
	}
	if a.Action == nil || a.Score == nil {
		return Result{}, fmt.Errorf("%w: no action or score", ErrBadResponse)
	}
	if _, ok := dispositions[*a.Action]; !ok {
		// An action we do not know could mean anything: not a verdict.
		return Result{}, fmt.Errorf("%w: unknown action %q", ErrBadResponse, oneLine(string(*a.Action), 64))
	}
	res := Result{Action: *a.Action, Score: *a.Score, RequiredScore: a.RequiredScore,
		SMTPMessage: oneLine(a.Messages.SMTP, maxMessage)}
	for name, s := range a.Symbols {
		if n := symbolName(name); n != "" {
			res.Symbols = append(res.Symbols, Symbol{Name: n, Score: s.Score})
		}
	}
	sort.Slice(res.Symbols, func(i, j int) bool { return res.Symbols[i].Name < res.Symbols[j].Name })
	return res, nil
}

// maxMessage bounds rspamd's SMTP message: with "550 5.7.1 " the reply
// line stays well under RFC 5321 §4.5.3.1.5's 512 octets.
const maxMessage = 200

// oneLine keeps printable ASCII (controls and non-ASCII dropped, runs of
// white space made one space) and at most max octets: safe in an SMTP
// reply, a request header and a log line.
func oneLine(v string, max int) string {
	var b strings.Builder
	space := false
	for i := 0; i < len(v) && b.Len() < max; i++ {
		c := v[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			space = b.Len() > 0
		case c > 0x20 && c < 0x7f:
			if space {
				b.WriteByte(' ')
				space = false
			}
			if b.Len() < max {
				b.WriteByte(c)
			}
		}
	}
	return b.String()
}

// headerValue drops control characters (no header injection) but keeps
// UTF-8, which SMTPUTF8 addresses (RFC 6531) carry, and keeps at most max
// octets without splitting a character.
func headerValue(v string, max int) string {
	v = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			return -1
		}
		return r
	}, v)
	if len(v) > max {
		for max > 0 && !utf8.RuneStart(v[max]) {
			max-- // do not cut a character in two
		}
		v = v[:max]
	}
	return v
}

// symbolName keeps rspamd symbol names (A-Z, 0-9, _ by convention) safe
// for a header list: printable ASCII without space, comma, parentheses.
func symbolName(n string) string {
	if len(n) > 64 {
		n = n[:64]
	}
	return strings.Map(func(r rune) rune {
		if r <= 0x20 || r >= 0x7f || strings.ContainsRune(",()", r) {
			return -1
		}
		return r
	}, n)
}
