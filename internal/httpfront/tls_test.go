package httpfront

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// tlsResponder answers "/hot" and records whether it saw a TLS request.
type tlsResponder struct{ sawTLS chan bool }

func (t *tlsResponder) Respond(r *Request) (Answer, bool) {
	t.sawTLS <- r.TLS
	if r.Path != "/hot" {
		return Answer{}, false
	}
	return Answer{Status: 200, Header: []byte("Content-Type: text/plain\r\n"), Body: []byte("hot\n")}, true
}

// TestFront_handOffSetsRequestTLS: a request the front hands to net/http
// after reading it from a TLS connection has Request.TLS set, with the
// connection's real state, like one net/http reads from a *tls.Conn
// itself; so does every later request on the connection, and the
// Responder sees Request.TLS too. On a plain listener both say no TLS.
func TestFront_handOffSetsRequestTLS(t *testing.T) {
	serverTLS, clientTLS := testTLS(t)
	for _, secure := range []bool{true, false} {
		resp := &tlsResponder{sawTLS: make(chan bool, 8)}
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			state := "none"
			if r.TLS != nil {
				state = r.TLS.ServerName
				if !r.TLS.HandshakeComplete || r.TLS.Version < tls.VersionTLS12 {
					state = "incomplete"
				}
			}
			_, _ = io.WriteString(w, r.URL.Path+" tls="+state+"\n")
		})
		conf := serverTLS
		if !secure {
			conf = nil
		}
		addr, _ := startFront(t, resp, testServer(h), conf)
		var c net.Conn
		var err error
		if secure {
			cc := clientTLS.Clone()
			cc.NextProtos = []string{"http/1.1"}
			c, err = tls.Dial("tcp", addr, cc)
		} else {
			c, err = net.Dial("tcp", addr)
		}
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(c)
		want := map[bool]string{true: "tls=localhost", false: "tls=none"}[secure]
		// The first request is the front's to decline: the connection,
		// with both requests, goes to net/http.
		if _, err := io.WriteString(c, "GET /cold HTTP/1.1\r\nHost: a\r\n\r\nGET /hot HTTP/1.1\r\nHost: a\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		for _, path := range []string{"/cold", "/hot"} {
			r, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(r.Body)
			_ = r.Body.Close()
			if got := strings.TrimSpace(string(body)); got != path+" "+want {
				t.Errorf("secure=%v %s: handler saw %q, want %q", secure, path, got, path+" "+want)
			}
		}
		_ = c.Close()
		if saw := <-resp.sawTLS; saw != secure {
			t.Errorf("secure=%v: Responder saw Request.TLS=%v", secure, saw)
		}
	}
}
