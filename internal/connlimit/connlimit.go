// Package connlimit caps the connections a listener holds, in total and
// per client network, so that one address (or one IPv6 /64, which a
// single host usually owns whole) cannot take every slot of a server
// and leave other clients refused. Postfix's smtpd_client_connection_count_limit
// and Dovecot's mail_max_userip_connections are the same idea.
package connlimit

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Limits of one listener. A zero field means no limit of that kind.
type Limits struct {
	// Total connections open at once.
	Total int
	// PerNetwork connections open at once from one client network.
	PerNetwork int
	// IPv4Prefix and IPv6Prefix are the network sizes that count as one
	// client: default 32 and 64.
	IPv4Prefix, IPv6Prefix int
}

// Network returns the client network of addr under the given prefix
// lengths (0 means 32 for IPv4, 64 for IPv6). IPv4-mapped IPv6 addresses
// count as IPv4.
func Network(addr netip.Addr, v4, v6 int) netip.Prefix {
	addr = addr.Unmap()
	bits := v6
	if addr.Is4() {
		if bits = v4; bits <= 0 || bits > 32 {
			bits = 32
		}
	} else if bits <= 0 || bits > 128 {
		bits = 64
	}
	p, err := addr.Prefix(bits)
	if err != nil {
		return netip.Prefix{}
	}
	return p
}

// RemoteAddr is the IP address of a connection's peer, or the zero Addr
// for a non-IP connection.
func RemoteAddr(c net.Conn) netip.Addr {
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// Reason says which limit refused a connection.
type Reason string

// The reasons handed to Refuse.
const (
	OverTotal   Reason = "total"
	OverNetwork Reason = "network"
)

// Listener is a net.Listener whose Accept refuses connections over the
// limits: Refuse (if set) may write a short reply first ("421 …" for SMTP,
// "-ERR [SYS/TEMP] …" for POP3), then the connection is closed. The write
// gets a deadline of one second so a client that reads nothing cannot
// stall Accept.
type Listener struct {
	net.Listener
	lim    Limits
	refuse func(net.Conn, Reason)

	mu    sync.Mutex
	total int
	per   map[netip.Prefix]int

	refused atomic.Uint64
}

// Wrap limits l. refuse may be nil.
func Wrap(l net.Listener, lim Limits, refuse func(net.Conn, Reason)) *Listener {
	return &Listener{Listener: l, lim: lim, refuse: refuse, per: map[netip.Prefix]int{}}
}

// Refused counts the connections refused so far.
func (l *Listener) Refused() uint64 { return l.refused.Load() }

// Open is the number of connections held now.
func (l *Listener) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

// Accept returns the next connection within the limits. The returned
// connection frees its slot when closed.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := Network(RemoteAddr(c), l.lim.IPv4Prefix, l.lim.IPv6Prefix)
		if reason, ok := l.take(key); !ok {
			l.refused.Add(1)
			if l.refuse != nil {
				_ = c.SetWriteDeadline(time.Now().Add(time.Second))
				l.refuse(c, reason)
			}
			_ = c.Close()
			continue
		}
		return &conn{Conn: c, l: l, key: key}, nil
	}
}

func (l *Listener) take(key netip.Prefix) (Reason, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lim.Total > 0 && l.total >= l.lim.Total {
		return OverTotal, false
	}
	if l.lim.PerNetwork > 0 && l.per[key] >= l.lim.PerNetwork {
		return OverNetwork, false
	}
	l.total++
	l.per[key]++
	return "", true
}

func (l *Listener) release(key netip.Prefix) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if n := l.per[key] - 1; n > 0 {
		l.per[key] = n
	} else {
		delete(l.per, key)
	}
}

// conn frees its slot once, on the first Close.
type conn struct {
	net.Conn
	l    *Listener
	key  netip.Prefix
	once sync.Once
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.key) })
	return err
}

// Unwrap returns the underlying connection (for servers that look for a
// *net.TCPConn, e.g. to read the PROXY protocol or set keep-alives).
func (c *conn) Unwrap() net.Conn { return c.Conn }
