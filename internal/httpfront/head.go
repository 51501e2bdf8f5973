package httpfront

import (
	"bytes"
	"strings"
	"unsafe"
)

// Request is the head of a request the front may answer from memory. Its
// strings point into the connection's read buffer: they are valid only
// during Responder.Respond and must be copied to be kept.
type Request struct {
	// Method is "GET" or "HEAD"; nothing else is offered to a Responder.
	Method string
	// Path is the request target up to '?', exactly as sent (not
	// percent-decoded). It starts with '/'.
	Path string
	// RawQuery is the target after '?', still percent-encoded.
	RawQuery string
	// Host is the Host header.
	Host string
	// UserAgent is the first User-Agent header, or "".
	UserAgent string
	// TLS reports whether the connection is TLS: the request came to the
	// HTTPS listener (the front sets it after parsing).
	TLS bool

	// close is set by "Connection: close": answer, then close.
	close bool
}

// maxHead is the largest request head the front parses itself, and the
// size of a connection's read buffer. Mail clients' requests are a few
// hundred bytes; a larger head (big cookies) goes to net/http, which
// applies http.Server.MaxHeaderBytes.
const maxHead = 4 << 10

// headEnd reports the length of the head at the start of b, including its
// blank line, or 0 when b holds no complete head yet. bad is set when the
// bytes seen so far are not a head this parser takes (a line ending in a
// bare LF, a NUL): the request is handed to net/http, which decides.
func headEnd(b []byte) (n int, bad bool) {
	start := 0
	for {
		i := bytes.IndexByte(b[start:], '\n')
		if i < 0 {
			return 0, false
		}
		i += start
		if i == 0 || b[i-1] != '\r' {
			return 0, true
		}
		if i == start+1 { // "\r\n": the blank line
			if start == 0 {
				// RFC 9112 §2.2 lets a server skip empty lines before
				// the request line; net/http does, so we leave it that.
				return 0, true
			}
			return i + 1, false
		}
		start = i + 1
	}
}

// parseHead parses a complete head (as found by headEnd) into r. ok is
// false for anything but a plain origin-form GET or HEAD over HTTP/1.1
// with a valid single Host, no body and no upgrade: such requests are
// answered by net/http, so every error status and every less common
// feature (HTTP/1.0 keep-alive, Expect, bodies, h2c) keeps its behaviour.
// Whatever parseHead accepts, net/http's ReadRequest accepts with the
// same method, path, query and Host (FuzzParseHead checks this).
//
// The strings in r alias head (no allocation per request); see Request.
func parseHead(head []byte, r *Request) (ok bool) {
	*r = Request{}
	line, rest, _ := bytes.Cut(head, crlf)
	// Request line (RFC 9112 §3): method SP request-target SP HTTP-version.
	switch {
	case bytes.HasPrefix(line, methodGet):
		r.Method, line = "GET", line[len(methodGet):]
	case bytes.HasPrefix(line, methodHead):
		r.Method, line = "HEAD", line[len(methodHead):]
	default:
		return false
	}
	if !bytes.HasSuffix(line, proto11) {
		return false
	}
	target := line[:len(line)-len(proto11)]
	if len(target) == 0 || target[0] != '/' {
		return false // absolute-form, asterisk-form: net/http's
	}
	for _, c := range target {
		// Printable ASCII only; '#' never belongs in a target.
		if c <= ' ' || c >= 0x7f || c == '#' {
			return false
		}
	}
	if p, q, found := bytes.Cut(target, question); found {
		r.Path, r.RawQuery = str(p), str(q)
	} else {
		r.Path = str(target)
	}
	if !validPath(r.Path) {
		return false
	}

	hosts := 0
	for {
		line, rest, _ = bytes.Cut(rest, crlf)
		if len(line) == 0 {
			break
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return false // obs-fold (leading space) lands here too
		}
		name, value := line[:colon], trimOWS(line[colon+1:])
		if !validToken(name) || !validValue(value) {
			return false
		}
		// Most headers (Accept-*, Cookie) are none of these: the length
		// test skips the comparisons for them.
		switch len(name) {
		case len("host"):
			if equalFold(name, "host") {
				hosts++
				r.Host = str(value)
			}
		case len("user-agent"): // and "connection"
			if equalFold(name, "user-agent") {
				if r.UserAgent == "" {
					r.UserAgent = str(value)
				}
			} else if equalFold(name, "connection") && !connectionTokens(value, r) {
				return false
			}
		case len("content-length"): // and "http2-settings"
			if equalFold(name, "content-length") && string(value) != "0" || equalFold(name, "http2-settings") {
				return false
			}
		case len("transfer-encoding"), len("expect"), len("upgrade"):
			if equalFold(name, "transfer-encoding") || equalFold(name, "expect") || equalFold(name, "upgrade") {
				return false
			}
		}
	}
	// RFC 9112 §3.2: exactly one Host in HTTP/1.1; net/http answers 400
	// otherwise, and checks its syntax.
	return hosts == 1 && validHost(r.Host)
}

var (
	crlf       = []byte("\r\n")
	question   = []byte("?")
	methodGet  = []byte("GET ")
	methodHead = []byte("HEAD ")
	proto11    = []byte(" HTTP/1.1")
)

// str returns b as a string without copying. The caller keeps b unchanged
// while the string is in use (see Request).
func str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// connectionTokens reads a Connection header: "close" asks to close after
// the answer; "keep-alive" is the default. Any other token (upgrade,
// hop-by-hop header names) is net/http's business.
func connectionTokens(v []byte, r *Request) bool {
	for len(v) > 0 {
		var tok []byte
		tok, v, _ = bytes.Cut(v, []byte(","))
		tok = trimOWS(tok)
		switch {
		case len(tok) == 0:
		case equalFold(tok, "close"):
			r.close = true
		case equalFold(tok, "keep-alive"):
		default:
			return false
		}
	}
	return true
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// equalFold compares an ASCII header name with a lower-case constant.
func equalFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// validToken: RFC 9110 §5.6.2 tchar.
func validToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !tchar[c] {
			return false
		}
	}
	return true
}

// tchar is the RFC 9110 §5.6.2 token alphabet.
var tchar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// validValue: RFC 9110 §5.5 field-value, no CTL but HTAB (obs-text, bytes
// ≥ 0x80, is allowed, as net/http does).
func validValue(b []byte) bool {
	for _, c := range b {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// validHost is deliberately narrower than RFC 3986's host: a DNS name or
// an IP literal with an optional port. Anything else (userinfo, percent
// signs) goes to net/http's own check.
func validHost(h string) bool {
	if h == "" {
		return false
	}
	for i := range len(h) {
		c := h[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-', c == '.', c == ':', c == '[', c == ']', c == '_':
		default:
			return false
		}
	}
	return true
}

// validPath keeps to paths that net/http would pass on unchanged: no
// percent-escapes (a Responder matches literal paths), no "." or ".."
// segments and no empty ones (which ServeMux would redirect).
func validPath(p string) bool {
	if strings.IndexByte(p, '%') >= 0 {
		return false
	}
	for seg := range strings.SplitSeq(p[1:], "/") {
		if seg == "." || seg == ".." {
			return false
		}
	}
	return !strings.Contains(p, "//")
}
