package httpfront

import (
	"bufio"
	"bytes"
	"net/http"
	"strings"
	"testing"
)

func TestParseHead(t *testing.T) {
	for _, tc := range []struct {
		head string
		ok   bool
		want Request
	}{
		{"GET /mail/config-v1.1.xml?emailaddress=a%40b.jp HTTP/1.1\r\nHost: autoconfig.b.jp\r\nUser-Agent: Thunderbird/128\r\nUser-Agent: second\r\n\r\n", true,
			Request{Method: "GET", Path: "/mail/config-v1.1.xml", RawQuery: "emailaddress=a%40b.jp", Host: "autoconfig.b.jp", UserAgent: "Thunderbird/128"}},
		{"HEAD /x HTTP/1.1\r\nhOsT:   [::1]:8080 \t\r\nConnection: keep-alive, close\r\n\r\n", true,
			Request{Method: "HEAD", Path: "/x", Host: "[::1]:8080", close: true}},
		{"GET /.well-known/autoconfig/mail/config-v1.1.xml HTTP/1.1\r\nHost: a\r\n\r\n", true,
			Request{Method: "GET", Path: "/.well-known/autoconfig/mail/config-v1.1.xml", Host: "a"}},
		{"GET /x? HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", true, Request{Method: "GET", Path: "/x", Host: "a"}},
		{"GET /x HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n\r\n", false, Request{}},
		{"GET /x HTTP/1.1\r\nHost: a\r\nContent-Length: 00\r\n\r\n", false, Request{}},
		{"GET /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", false, Request{}},
		{"GET /x HTTP/1.1\r\nHost: a\r\n: empty name\r\n\r\n", false, Request{}},
		{"GET /x/. HTTP/1.1\r\nHost: a\r\n\r\n", false, Request{}},
		{"GET /x HTTP/1.10\r\nHost: a\r\n\r\n", false, Request{}},
		{"GET /x\tHTTP/1.1\r\nHost: a\r\n\r\n", false, Request{}},
		{"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", false, Request{}},
	} {
		var r Request
		ok := parseHead([]byte(tc.head), &r)
		if ok != tc.ok || (ok && r != tc.want) {
			t.Errorf("%q:\n got %v %+v\nwant %v %+v", tc.head, ok, r, tc.ok, tc.want)
		}
	}
}

func TestHeadEnd(t *testing.T) {
	for _, tc := range []struct {
		in  string
		n   int
		bad bool
	}{
		{"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET", 27, false},
		{"GET / HTTP/1.1\r\nHost: a\r\n", 0, false},
		{"GET / HTTP/1.1\r\nHost: a\r\n\r", 0, false},
		{"GET / HTTP/1.1\nHost: a\r\n\r\n", 0, true},
		{"\r\nGET / HTTP/1.1\r\n\r\n", 0, true},
		{"", 0, false},
	} {
		n, bad := headEnd([]byte(tc.in))
		if n != tc.n || bad != tc.bad {
			t.Errorf("headEnd(%q) = %d, %v; want %d, %v", tc.in, n, bad, tc.n, tc.bad)
		}
	}
}

// FuzzParseHead: whatever the front parses itself, net/http's
// ReadRequest parses too, to the same method, path, query and Host, with
// no body; and nothing panics.
func FuzzParseHead(f *testing.F) {
	for _, s := range []string{
		"GET /mail/config-v1.1.xml?emailaddress=a%40b.jp HTTP/1.1\r\nHost: a\r\nUser-Agent: x\r\n\r\n",
		"HEAD /apple/mobileconfig?email=a@b HTTP/1.1\r\nHost: [::1]:80\r\nConnection: close\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
		"GET /a/../b HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
		"GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\r\nX: a\r\n b\r\nHost: a\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		n, _ := headEnd(b)
		if n == 0 {
			return
		}
		head := b[:n]
		var r Request
		if !parseHead(head, &r) {
			return
		}
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(head)))
		if err != nil {
			t.Fatalf("front took %q, net/http refuses it: %v", head, err)
		}
		if req.Method != r.Method || req.URL.Path != r.Path || req.URL.RawQuery != r.RawQuery ||
			req.Host != r.Host || req.ContentLength > 0 || req.ProtoMinor != 1 {
			t.Fatalf("%q: front %+v, net/http %s %q %q %q", head, r, req.Method, req.URL.Path, req.URL.RawQuery, req.Host)
		}
		if ua := req.Header.Get("User-Agent"); ua != r.UserAgent {
			t.Fatalf("%q: User-Agent %q vs %q", head, r.UserAgent, ua)
		}
		if r.close != req.Close {
			t.Fatalf("%q: close %v vs %v", head, r.close, req.Close)
		}
		if strings.ContainsAny(r.Host, " \r\n") {
			t.Fatalf("host %q", r.Host)
		}
	})
}

func BenchmarkParseHead(b *testing.B) {
	head := []byte("GET /mail/config-v1.1.xml?emailaddress=taro%40skydesk.jp HTTP/1.1\r\nHost: autoconfig.skydesk.jp\r\n" +
		"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Thunderbird/128.0\r\nAccept: */*\r\n" +
		"Accept-Language: ja,en-US;q=0.7\r\nAccept-Encoding: gzip, deflate, br\r\nConnection: keep-alive\r\n\r\n")
	b.ReportAllocs()
	b.SetBytes(int64(len(head)))
	var r Request
	for b.Loop() {
		if n, _ := headEnd(head); n != len(head) || !parseHead(head, &r) {
			b.Fatal("not parsed")
		}
	}
}
