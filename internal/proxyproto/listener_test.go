package proxyproto

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"
)

// On Linux every 127.0.0.0/8 address is loopback: the balancer dials
// from 127.0.0.2 (trusted), a direct client from 127.0.0.3.
const (
	balancer = "127.0.0.2"
	direct   = "127.0.0.3"
)

func listen(t *testing.T, timeout time.Duration) *Listener {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := Wrap(raw, Options{Trusted: []netip.Prefix{netip.MustParsePrefix(balancer + "/32")}, HeaderTimeout: timeout})
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func dial(t *testing.T, l net.Listener, src, send string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c, err := d.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if send != "" {
		if _, err := io.WriteString(c, send); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// accept returns the next accepted connection, failing after 5 s.
func accept(t *testing.T, l net.Listener) net.Conn {
	t.Helper()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() { c, err := l.Accept(); ch <- res{c, err} }()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatal(r.err)
		}
		t.Cleanup(func() { _ = r.c.Close() })
		return r.c
	case <-time.After(5 * time.Second):
		t.Fatal("nothing accepted")
	}
	return nil
}

// readN reads exactly n octets from c.
func readN(t *testing.T, c net.Conn, n int) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestListener_trustedHeaders(t *testing.T) {
	for _, tc := range []struct{ name, header, remote string }{
		{"v1", "PROXY TCP4 192.0.2.7 198.51.100.1 51000 995\r\n", "192.0.2.7:51000"},
		{"v1 tcp6", "PROXY TCP6 2001:db8::7 2001:db8::1 51000 995\r\n", "[2001:db8::7]:51000"},
		{"v2", v2(1, 0x11, ip("192.0.2.7"), ip("198.51.100.1"), ports(51000, 995)), "192.0.2.7:51000"},
		{"v2 tcp6", v2(1, 0x21, ip("2001:db8::7"), ip("2001:db8::1"), ports(51000, 995)), "[2001:db8::7]:51000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := listen(t, 5*time.Second)
			// The header and the first client octets in one segment, as
			// HAProxy sends a TLS ClientHello right behind it.
			dial(t, l, balancer, tc.header+"USER alice\r\n")
			c := accept(t, l)
			ta, ok := c.RemoteAddr().(*net.TCPAddr)
			if !ok || ta.String() != tc.remote {
				t.Fatalf("RemoteAddr = %#v, want %s", c.RemoteAddr(), tc.remote)
			}
			if got := readN(t, c, len("USER alice\r\n")); got != "USER alice\r\n" {
				t.Fatalf("after the header: %q", got)
			}
		})
	}
}

// A LOCAL header (HAProxy's health check) keeps the balancer's address.
func TestListener_local(t *testing.T) {
	l := listen(t, 5*time.Second)
	dial(t, l, balancer, v2(0, 0x00)+"x")
	c := accept(t, l)
	if got := connAddr(c); got != balancer {
		t.Fatalf("RemoteAddr %s, want the balancer's", c.RemoteAddr())
	}
	if readN(t, c, 1) != "x" {
		t.Fatal("lost the octet after the header")
	}
}

func connAddr(c net.Conn) string { return c.RemoteAddr().(*net.TCPAddr).IP.String() }

// An untrusted source that sends a header is a direct client: its
// address stands, and the header is data for the protocol (which refuses
// it as an unknown command), never an address.
func TestListener_untrustedHeaderIsData(t *testing.T) {
	l := listen(t, 5*time.Second)
	h := "PROXY TCP4 192.0.2.7 198.51.100.1 51000 995\r\n"
	dial(t, l, direct, h)
	c := accept(t, l)
	if got := connAddr(c); got != direct {
		t.Fatalf("RemoteAddr %s, want the direct client's %s", c.RemoteAddr(), direct)
	}
	if got := readN(t, c, len(h)); got != h {
		t.Fatalf("read %q", got)
	}
	if l.Refused() != 0 {
		t.Fatal("a direct client counted as refused")
	}
}

// A trusted source without a valid header is closed, not served with the
// balancer's address; the next good connection is accepted.
func TestListener_trustedWithoutHeaderClosed(t *testing.T) {
	for _, tc := range []struct{ name, send string }{
		{"no header", "USER alice\r\n"},
		{"malformed v1", "PROXY TCP4 192.0.2.7 nowhere 1 2\r\n"},
		{"oversized v1", "PROXY TCP4 " + string(make([]byte, 200))},
		{"oversized v2", v2Str(0x21, 0x11, MaxV2Payload+1)},
		{"eof", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := listen(t, 5*time.Second)
			bad := dial(t, l, balancer, tc.send)
			if tc.send == "" {
				_ = bad.(*net.TCPConn).CloseWrite()
			}
			dial(t, l, balancer, "PROXY TCP4 192.0.2.9 198.51.100.1 1 2\r\n")
			if got := connAddr(accept(t, l)); got != "192.0.2.9" {
				t.Fatalf("accepted %s, want only the good connection", got)
			}
			_ = bad.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := bad.Read(make([]byte, 1)); err == nil {
				t.Fatal("the bad connection is still open")
			}
			if l.Refused() != 1 {
				t.Fatalf("Refused = %d", l.Refused())
			}
		})
	}
}

// A balancer connection that sends half a header is closed at the
// header timeout, and meanwhile others are accepted: the header is read
// off the accept path.
func TestListener_slowHeader(t *testing.T) {
	const timeout = time.Second
	l := listen(t, timeout)
	slow := dial(t, l, balancer, "PROXY TCP4 192.0.2.7 ")
	start := time.Now()
	dial(t, l, direct, "")
	if got := connAddr(accept(t, l)); got != direct {
		t.Fatalf("accepted %s first", got)
	}
	dial(t, l, balancer, "PROXY TCP4 192.0.2.9 198.51.100.1 1 2\r\n")
	if got := connAddr(accept(t, l)); got != "192.0.2.9" {
		t.Fatalf("accepted %s", got)
	}
	if time.Since(start) >= timeout {
		t.Fatalf("the slow header held up Accept for %v", time.Since(start))
	}
	_ = slow.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := slow.Read(make([]byte, 1))
	if err == nil || time.Since(start) < timeout {
		t.Fatalf("slow connection: %v after %v, want closed after %v", err, time.Since(start), timeout)
	}
}

func TestListener_close(t *testing.T) {
	l := listen(t, time.Second)
	errc := make(chan error, 1)
	go func() { _, err := l.Accept(); errc <- err }()
	_ = l.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept after Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Accept did not return after Close")
	}
}
