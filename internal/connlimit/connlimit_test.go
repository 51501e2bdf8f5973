package connlimit

import (
	"bufio"
	"net"
	"net/netip"
	"testing"
)

func TestNetwork(t *testing.T) {
	for _, tc := range []struct {
		addr   string
		v4, v6 int
		want   string
	}{
		{"192.0.2.7", 0, 0, "192.0.2.7/32"},
		{"192.0.2.7", 24, 0, "192.0.2.0/24"},
		{"::ffff:192.0.2.7", 0, 0, "192.0.2.7/32"},
		{"2001:db8:1:2:3:4:5:6", 0, 0, "2001:db8:1:2::/64"},
		{"2001:db8:1:2:3:4:5:6", 0, 56, "2001:db8:1::/56"},
	} {
		if got := Network(netip.MustParseAddr(tc.addr), tc.v4, tc.v6); got.String() != tc.want {
			t.Errorf("Network(%s, %d, %d) = %s, want %s", tc.addr, tc.v4, tc.v6, got, tc.want)
		}
	}
}

// listen returns a limited listener on 127.0.0.1 whose accepted
// connections are handed to the returned channel.
func listen(t *testing.T, lim Limits) (*Listener, <-chan net.Conn) {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := Wrap(inner, lim, func(c net.Conn, r Reason) { _, _ = c.Write([]byte("busy " + string(r) + "\r\n")) })
	t.Cleanup(func() { _ = l.Close() })
	ch := make(chan net.Conn, 64)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(ch)
				return
			}
			ch <- c
		}
	}()
	return l, ch
}

func dialFrom(t *testing.T, addr net.Addr, src string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c, err := d.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// refusedLine reads what a refused client is told before the close.
func refusedLine(t *testing.T, c net.Conn) string {
	t.Helper()
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("refused connection: %v", err)
	}
	return line
}

// One address that holds its share leaves another address served.
func TestListener_perNetwork(t *testing.T) {
	l, accepted := listen(t, Limits{Total: 10, PerNetwork: 3})
	var held []net.Conn
	for range 3 {
		dialFrom(t, l.Addr(), "127.0.0.1")
		held = append(held, <-accepted)
	}
	over := dialFrom(t, l.Addr(), "127.0.0.1")
	if got := refusedLine(t, over); got != "busy network\r\n" {
		t.Fatalf("4th connection from one address: %q", got)
	}
	dialFrom(t, l.Addr(), "127.0.0.2")
	<-accepted // another address is served
	if l.Refused() != 1 || l.Open() != 4 {
		t.Fatalf("refused %d open %d, want 1 and 4", l.Refused(), l.Open())
	}
	// A closed connection frees its slot, once however often it is closed.
	_ = held[0].Close()
	_ = held[0].Close()
	dialFrom(t, l.Addr(), "127.0.0.1")
	<-accepted
	if l.Open() != 4 {
		t.Fatalf("open %d after close and redial, want 4", l.Open())
	}
}

func TestListener_total(t *testing.T) {
	l, accepted := listen(t, Limits{Total: 2})
	dialFrom(t, l.Addr(), "127.0.0.1")
	<-accepted
	dialFrom(t, l.Addr(), "127.0.0.2")
	<-accepted
	if got := refusedLine(t, dialFrom(t, l.Addr(), "127.0.0.3")); got != "busy total\r\n" {
		t.Fatalf("over the total: %q", got)
	}
}

// A Counter's release frees the slot once, however often it is called.
func TestCounter_releaseOnce(t *testing.T) {
	l, ch := listen(t, Limits{})
	k := NewCounter(Limits{PerNetwork: 1})
	dialFrom(t, l.Addr(), "127.0.0.1")
	c := <-ch
	release, _, ok := k.Admit(c)
	if !ok {
		t.Fatal("first connection refused")
	}
	if _, reason, ok := k.Admit(c); ok || reason != OverNetwork {
		t.Fatalf("second admitted (%v, %q)", ok, reason)
	}
	release()
	release()
	if k.Open() != 0 || k.Refused() != 1 {
		t.Fatalf("open %d, refused %d; want 0, 1", k.Open(), k.Refused())
	}
	if _, _, ok := k.Admit(c); !ok {
		t.Fatal("refused after release")
	}
}
