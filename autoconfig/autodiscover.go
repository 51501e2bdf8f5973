package autoconfig

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/skydesk/skydeskd/profiles"
	"github.com/skydesk/skydeskd/templates"
)

// Request schemas (REFERENCE §2.2). Only the outlook response schema is
// offered; mobilesync (ActiveSync) requests get error 601.
const outlookResponseSchema = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"

// maxXMLDepth bounds element nesting in a request (a real one has 3).
const maxXMLDepth = 16

// Errors of parsePOX. Each is answered with ErrorCode 600 and HTTP 400.
var (
	errDoctype    = errors.New("DOCTYPE or other directive in request")
	errNotPOX     = errors.New("root element is not Autodiscover")
	errNoAddress  = errors.New("no EMailAddress in request")
	errManyReqs   = errors.New("more than one Request element")
	errTooDeep    = errors.New("request nested too deeply")
	errTooLarge   = errors.New("request body too large")
	errEmptyBody  = errors.New("empty request body")
	errBadRequest = errors.New("malformed request")
)

// poxRequest is what we read from an Autodiscover POX request.
type poxRequest struct {
	Email  string
	Schema string
}

// parsePOX reads a request by local names, tolerating any namespace or
// prefix (REFERENCE §2.2). It refuses any DOCTYPE (so no entity can be
// declared, let alone expanded: encoding/xml knows only the five
// predefined entities and fails on others) and more than one Request
// (MS-ASCMD: ErrorCode 600).
func parsePOX(body []byte) (poxRequest, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return poxRequest{}, errEmptyBody
	}
	d := xml.NewDecoder(bytes.NewReader(body))
	d.Strict = true
	var req poxRequest
	var stack []string
	requests := 0
	root := false
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return poxRequest{}, fmt.Errorf("%w: %w", errBadRequest, err)
		}
		switch t := tok.(type) {
		case xml.Directive:
			return poxRequest{}, errDoctype
		case xml.StartElement:
			if len(stack) == 0 {
				if root || t.Name.Local != "Autodiscover" {
					return poxRequest{}, errNotPOX
				}
				root = true
			}
			if len(stack) >= maxXMLDepth {
				return poxRequest{}, errTooDeep
			}
			stack = append(stack, t.Name.Local)
			if len(stack) == 2 && t.Name.Local == "Request" {
				if requests++; requests > 1 {
					return poxRequest{}, errManyReqs
				}
			}
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) == 3 && stack[1] == "Request" {
				switch stack[2] {
				case "EMailAddress":
					req.Email += string(t)
				case "AcceptableResponseSchema":
					req.Schema += string(t)
				}
			}
		}
	}
	if !root {
		return poxRequest{}, errNotPOX
	}
	req.Email, req.Schema = strings.TrimSpace(req.Email), strings.TrimSpace(req.Schema)
	if req.Email == "" {
		return poxRequest{}, errNoAddress
	}
	return req, nil
}

// readBody reads at most MaxBodyBytes; more is errTooLarge (413).
func readBody(c echo.Context) ([]byte, error) {
	r := c.Request()
	if r.ContentLength > MaxBodyBytes {
		return nil, errTooLarge
	}
	b, err := io.ReadAll(http.MaxBytesReader(c.Response(), r.Body, MaxBodyBytes))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, errTooLarge
	}
	if err != nil {
		return nil, fmt.Errorf("%w: reading body: %w", errBadRequest, err)
	}
	return b, nil
}

// autodiscoverXML answers Outlook's (and Thunderbird's) POX request
// (REFERENCE §2.2-2.4). It never reads the Authorization header, which
// Thunderbird fills with the user's password, and never answers 401.
// GET with ?Email= is answered like a POST; a GET without is error 600.
//
// Status: settings and the "not found" (500) and "unsupported schema"
// (601) errors are HTTP 200, as Exchange does; a malformed request (600)
// is HTTP 400 and a body over 64 KiB 413.
func (s *Server) autodiscoverXML(c echo.Context) error {
	r := c.Request()
	var req poxRequest
	if r.Method == http.MethodPost {
		body, err := readBody(c)
		if errors.Is(err, errTooLarge) {
			return fail(http.StatusRequestEntityTooLarge, "request body larger than 64 KiB", err)
		}
		if err == nil {
			req, err = parsePOX(body)
		}
		if err != nil {
			return s.autodiscoverError(c, http.StatusBadRequest, templates.CodeInvalidRequest, outcomeBadRequest, err)
		}
	} else {
		v, _ := queryParam(r, "Email", "emailaddress")
		if v == "" {
			return s.autodiscoverError(c, http.StatusBadRequest, templates.CodeInvalidRequest, outcomeBadRequest, errNoAddress)
		}
		req = poxRequest{Email: v, Schema: outlookResponseSchema}
	}
	// A missing schema is read as Outlook's (some clients omit it).
	if req.Schema != "" && req.Schema != outlookResponseSchema {
		return s.autodiscoverError(c, http.StatusOK, templates.CodeUnsupportedSchema, outcomeUnsupported, nil)
	}
	a, err := parseAddress(req.Email, "EMailAddress")
	if err != nil {
		return s.autodiscoverError(c, http.StatusBadRequest, templates.CodeInvalidRequest, outcomeBadRequest, err)
	}
	p, err := s.lookup(r.Context(), a.Domain)
	if errors.Is(err, errNotHosted) {
		return s.autodiscoverError(c, http.StatusOK, templates.CodeNotFound, outcomeNotFound, nil)
	}
	if err != nil {
		return err
	}
	body, err := s.document(fmtAutodiscoverXML, p, a, templates.AutodiscoverPOX)
	if err != nil {
		return err
	}
	s.discover(fmtAutodiscoverXML, a.String())
	return c.Blob(http.StatusOK, contentTypeXML, body)
}

// autodiscoverError sends a documented <Error> document.
func (s *Server) autodiscoverError(c echo.Context, status int, code templates.ErrorCode, o outcome, cause error) error {
	body, err := s.errorDoc(code)
	if err != nil {
		return err
	}
	if cause != nil && s.log.Enabled(c.Request().Context(), -4) {
		s.log.Debug("autodiscover request refused", "code", int(code), "err", cause)
	}
	c.Set(outcomeKey, o)
	return c.Blob(status, contentTypeXML, body)
}

// autodiscoverJSON answers Autodiscover v2 (REFERENCE §2.6):
// /autodiscover/autodiscover.json?Email=&Protocol= and
// /autodiscover/autodiscover.json/v1.0/<email>?Protocol=. Protocol is
// compared case-insensitively; AutodiscoverV1 gets the POX URL, anything
// else the documented InvalidProtocol error. Every valid address in a
// hosted domain gets the same 200 (Office 365's 302-for-unknown-users is
// an enumeration vector).
func (s *Server) autodiscoverJSON(c echo.Context) error {
	r := c.Request()
	proto, _ := queryParam(r, "Protocol")
	if !strings.EqualFold(proto, templates.ProtocolAutodiscoverV1) {
		body, err := templates.AutodiscoverJSONInvalidProtocol(proto)
		if err != nil {
			return err
		}
		c.Set(outcomeKey, outcomeUnsupported)
		return c.Blob(http.StatusBadRequest, echo.MIMEApplicationJSON, body)
	}
	email := c.Param("email")
	if email != "" && r.URL.RawPath != "" {
		// echo routes on RawPath when the path had escapes (%40).
		var err error
		if email, err = url.PathUnescape(email); err != nil {
			return s.jsonError(c, http.StatusBadRequest, "InvalidUser", "The email address is not valid.")
		}
	}
	if email == "" {
		email, _ = queryParam(r, "Email")
	}
	if email == "" {
		return s.jsonError(c, http.StatusBadRequest, "InvalidUser", "An email address is required.")
	}
	a, err := parseAddress(email, "Email")
	if err != nil {
		return s.jsonError(c, http.StatusBadRequest, "InvalidUser", "The email address is not valid.")
	}
	p, err := s.lookup(r.Context(), a.Domain)
	if errors.Is(err, errNotHosted) {
		return s.jsonError(c, http.StatusNotFound, "NotFound", templates.CodeNotFound.Message())
	}
	if err != nil {
		return err
	}
	// One document per provider host, whatever the address.
	body, err := s.document(fmtAutodiscoverJSON, p, profiles.Address{}, func(p profiles.Profile, _ profiles.Address) ([]byte, error) {
		return templates.AutodiscoverJSON(p.Provider.AutodiscoverHost)
	})
	if err != nil {
		return err
	}
	s.discover(fmtAutodiscoverJSON, a.String())
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, body)
}

func (s *Server) jsonError(c echo.Context, status int, code, message string) error {
	body, err := templates.AutodiscoverJSONError(code, message)
	if err != nil {
		return err
	}
	return c.Blob(status, echo.MIMEApplicationJSON, body)
}

// errorDocs caches the <Error> documents of the current second: their
// only variable part is the Time attribute, so an unknown domain costs a
// lookup, not a build, like a hosted one.
type errorDocs struct {
	mu   sync.Mutex
	sec  int64
	docs map[templates.ErrorCode][]byte
}

func (s *Server) errorDoc(code templates.ErrorCode) ([]byte, error) {
	now := s.now()
	e := &s.errDocs
	e.mu.Lock()
	defer e.mu.Unlock()
	if sec := now.Unix(); sec != e.sec || e.docs == nil {
		e.sec, e.docs = sec, make(map[templates.ErrorCode][]byte, 4)
	}
	if b, ok := e.docs[code]; ok {
		return b, nil
	}
	b, err := templates.AutodiscoverError(code, s.serverName, now.Truncate(time.Second))
	if err != nil {
		return nil, err
	}
	e.docs[code] = b
	return b, nil
}
