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

// Counter counts the connections of one listener, in total and per
// client network. Listener uses one; a server whose accept loop must see
// the listener's own connection type (a *tls.Conn from tls.NewListener,
// which net/http and popd recognise by type) admits each connection
// through a Counter itself and releases the slot when it closes.
type Counter struct {
	lim Limits

	mu    sync.Mutex
	total int
	per   map[netip.Prefix]int

	refused atomic.Uint64
}

// NewCounter returns a Counter enforcing lim.
func NewCounter(lim Limits) *Counter {
	return &Counter{lim: lim, per: map[netip.Prefix]int{}}
}

// Admit takes a slot for c's client network. It returns the function
// that frees the slot (call it once, when c is closed), or the reason c
// is over the limits.
func (k *Counter) Admit(c net.Conn) (release func(), reason Reason, ok bool) {
	key := Network(RemoteAddr(c), k.lim.IPv4Prefix, k.lim.IPv6Prefix)
	if reason, ok := k.take(key); !ok {
		k.refused.Add(1)
		return nil, reason, false
	}
	var once sync.Once
	return func() { once.Do(func() { k.release(key) }) }, "", true
}

// Refused counts the connections refused so far.
func (k *Counter) Refused() uint64 { return k.refused.Load() }

// Open is the number of connections held now.
func (k *Counter) Open() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.total
}

func (k *Counter) take(key netip.Prefix) (Reason, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.lim.Total > 0 && k.total >= k.lim.Total {
		return OverTotal, false
	}
	if k.lim.PerNetwork > 0 && k.per[key] >= k.lim.PerNetwork {
		return OverNetwork, false
	}
	k.total++
	k.per[key]++
	return "", true
}

func (k *Counter) release(key netip.Prefix) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.total--
	if n := k.per[key] - 1; n > 0 {
		k.per[key] = n
	} else {
		delete(k.per, key)
	}
}

// Listener is a net.Listener whose Accept refuses connections over the
// limits: Refuse (if set) may write a short reply first ("421 …" for SMTP,
// "-ERR [SYS/TEMP] …" for POP3), then the connection is closed. The write
// gets a deadline of one second so a client that reads nothing cannot
// stall Accept.
type Listener struct {
	net.Listener
	*Counter
	refuse func(net.Conn, Reason)
}

// Wrap limits l. refuse may be nil.
func Wrap(l net.Listener, lim Limits, refuse func(net.Conn, Reason)) *Listener {
	return &Listener{Listener: l, Counter: NewCounter(lim), refuse: refuse}
}

// Accept returns the next connection within the limits. The returned
// connection frees its slot when closed.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		release, reason, ok := l.Admit(c)
		if !ok {
			Refuse(c, reason, l.refuse)
			continue
		}
		return &conn{Conn: c, release: release}, nil
	}
}

// Refuse tells c why it is refused through reply (if not nil), under a
// one-second write deadline, and closes it.
func Refuse(c net.Conn, reason Reason, reply func(net.Conn, Reason)) {
	if reply != nil {
		_ = c.SetWriteDeadline(time.Now().Add(time.Second))
		reply(c, reason)
	}
	_ = c.Close()
}

// conn frees its slot on the first Close.
type conn struct {
	net.Conn
	release func()
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}

// Unwrap returns the underlying connection (for servers that look for a
// *net.TCPConn, e.g. to read the PROXY protocol or set keep-alives).
func (c *conn) Unwrap() net.Conn { return c.Conn }
