package dnssrv

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/miekg/dns"
)

// Snapshot returns the hosted domains (A-labels, lower case) and the
// serial that changes whenever they change (the SOA serial). The store's
// in-memory DomainSnapshot provides both; dnssrv does not import store.
type Snapshot func() (serial uint32, hosted []string)

// Handler answers queries from in-memory zones. It implements dns.Handler.
type Handler struct {
	opts  Options
	snap  Snapshot
	addrs *addrIndex
	zones atomic.Pointer[zones]
	mu    sync.Mutex // serialises Reload
	// counts holds an *atomic.Uint64 per countKey (QueryCounts).
	counts  sync.Map
	dropped atomic.Uint64
	rrl     *limiter // nil: RRL off
}

var _ dns.Handler = (*Handler)(nil)

// NewHandler builds the zones from o and the current snapshot.
func NewHandler(o Options, snap Snapshot) (*Handler, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	if snap == nil {
		return nil, fmt.Errorf("dnssrv: a domain snapshot is required")
	}
	h := &Handler{opts: o, snap: snap, addrs: newAddrIndex(&o)}
	if o.RRL.ResponsesPerSecond > 0 {
		h.rrl = newLimiter(o.RRL, o.Logger)
	}
	h.Reload()
	return h, nil
}

// Reload rebuilds the zones from the snapshot; queries in flight keep the
// old set. Call it when the domain list changes (store.OnDomainsChanged).
// Only the zones of domains added (and of those whose service hosts moved
// to or from a new apex) are built; the others are kept from the previous
// set, as Options.Profile must give a domain the same Profile every time.
func (h *Handler) Reload() {
	h.mu.Lock()
	defer h.mu.Unlock()
	serial, hosted := h.snap()
	zs, built := buildZones(&h.opts, h.addrs, h.zones.Load(), serial, hosted)
	h.zones.Store(zs)
	h.opts.Logger.Info("dns zones rebuilt", "serial", serial, "zones", len(zs.byApex), "built", built)
}

// Zones lists the apexes served, sorted (absolute, lower case).
func (h *Handler) Zones() []string { return h.zones.Load().apexes() }

// ServeDNS answers one query. A panic is answered SERVFAIL and logged, as
// CoreDNS does, so one bad packet cannot stop the server.
func (h *Handler) ServeDNS(w dns.ResponseWriter, r *dns.Msg) { h.serve(w, r, isUDP(w)) }

func isUDP(w dns.ResponseWriter) bool {
	return w.LocalAddr() != nil && w.LocalAddr().Network() == "udp"
}

func (h *Handler) serve(w dns.ResponseWriter, r *dns.Msg, udp bool) {
	defer func() {
		if v := recover(); v != nil {
			h.opts.Logger.Error("dns: panic answering query", "panic", v, "remote", w.RemoteAddr().String())
			m := new(dns.Msg)
			m.SetRcode(r, dns.RcodeServerFailure)
			_ = w.WriteMsg(m)
		}
	}()
	buf, qtype, rcode := h.Answer(r, udp)
	if buf == nil {
		h.dropped.Add(1)
		return
	}
	if _, err := w.Write(buf); err != nil {
		h.opts.Logger.Debug("dns: writing answer", "err", err, "remote", w.RemoteAddr().String())
	}
	h.counter(qtype, rcode).Add(1)
}

// Answer returns the packed response to request r (nil: drop it), the
// query type and the response code. udp selects truncation to the
// requester's payload size.
func (h *Handler) Answer(r *dns.Msg, udp bool) (packed []byte, qtype uint16, rcode int) {
	packed, qtype, m := h.answer(r, udp)
	if m == nil {
		return nil, 0, 0
	}
	return packed, qtype, m.Rcode
}

// answer is Answer, returning the message packed (its rcode, and its
// class for RRL); m is nil when r is not answered.
func (h *Handler) answer(r *dns.Msg, udp bool) (packed []byte, qtype uint16, m *dns.Msg) {
	if r.Response {
		return nil, 0, nil // never answer an answer (reflection loops)
	}
	m = h.respond(r)
	if len(r.Question) == 1 {
		qtype = r.Question[0].Qtype
	}
	limit := 65535
	if udp {
		limit = dns.MinMsgSize
		if opt := r.IsEdns0(); opt != nil {
			limit = int(min(max(opt.UDPSize(), dns.MinMsgSize), h.opts.MaxUDPSize))
		}
	}
	buf, err := m.Pack()
	if err != nil {
		h.opts.Logger.Error("dns: packing answer", "err", err)
		m = new(dns.Msg)
		m.SetRcode(r, dns.RcodeServerFailure)
		if buf, err = m.Pack(); err != nil {
			return nil, qtype, m
		}
	}
	if len(buf) > limit {
		buf = truncate(m, limit)
	}
	return buf, qtype, m
}

// truncate fits m into limit bytes. RFC 2181 §9: additional records go
// first, without TC; if the answer or authority still does not fit, they
// are dropped whole and TC tells the client to retry over TCP.
func truncate(m *dns.Msg, limit int) []byte {
	opt := m.IsEdns0()
	m.Extra = nil
	if opt != nil {
		m.Extra = []dns.RR{opt}
	}
	if buf, err := m.Pack(); err == nil && len(buf) <= limit {
		return buf
	}
	m.Answer, m.Ns, m.Truncated = nil, nil, true
	buf, _ := m.Pack()
	return buf
}

// respond builds the response message for r.
func (h *Handler) respond(r *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(r)
	m.Compress = true
	m.RecursionAvailable = false
	if r.Opcode != dns.OpcodeQuery {
		m.SetRcode(r, dns.RcodeNotImplemented)
		return m
	}
	if len(r.Question) != 1 {
		m.SetRcode(r, dns.RcodeFormatError)
		return m
	}
	if opt := r.IsEdns0(); opt != nil {
		// RFC 6891 §6.1.3: answer with our own OPT; the DO bit is copied
		// (RFC 3225 §3), though we do not sign.
		m.SetEdns0(h.opts.MaxUDPSize, opt.Do())
		if opt.Version() != 0 {
			m.Rcode = dns.RcodeBadVers
			m.IsEdns0().SetExtendedRcode(dns.RcodeBadVers)
			return m
		}
	}
	q := r.Question[0]
	if q.Qclass != dns.ClassINET {
		m.Rcode = dns.RcodeRefused // CHAOS version.bind and friends: not told
		return m
	}
	switch q.Qtype {
	case dns.TypeAXFR, dns.TypeIXFR:
		// Zone transfers are not offered: every name server runs skydeskd
		// with the same configuration and store.
		m.Rcode = dns.RcodeRefused
		return m
	case dns.TypeOPT:
		m.Rcode = dns.RcodeFormatError
		return m
	}
	h.lookup(m, q)
	return m
}

// anyOrder is the RRset preference for RFC 8482 minimal ANY answers.
var anyOrder = []uint16{dns.TypeSRV, dns.TypeSOA, dns.TypeMX, dns.TypeA, dns.TypeAAAA, dns.TypeNS}

func (h *Handler) lookup(m *dns.Msg, q dns.Question) {
	zs := h.zones.Load()
	qlower := strings.ToLower(q.Name)
	z := zs.find(qlower)
	if z == nil {
		m.Rcode = dns.RcodeRefused
		m.Authoritative = false
		return
	}
	m.Authoritative = true
	// Owner names keep the query's letter case (0x20): the query name
	// itself, and its own suffix for the apex.
	owner := func(lower string) string {
		if lower == qlower {
			return q.Name
		}
		if len(q.Name) == len(qlower) && len(lower) < len(qlower) && strings.HasSuffix(qlower, lower) &&
			qlower[len(qlower)-len(lower)-1] == '.' {
			return q.Name[len(q.Name)-len(lower):]
		}
		return lower
	}
	name := qlower
	n := z.nodes[name]
	qtype := q.Qtype
	// CNAME chase inside our own data (RFC 1034 §4.3.2 step 3a), bounded;
	// the rcode is that of the last name (RFC 6604).
	for hops := 0; n != nil && n.cname != nil && qtype != dns.TypeCNAME && hops < 8; hops++ {
		m.Answer = append(m.Answer, withOwner(n.cname, owner(name)))
		name = n.cname.Target
		if z = zs.find(name); z == nil {
			return // outside our zones: the resolver goes on from here
		}
		n = z.nodes[name]
	}
	if n == nil {
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{negativeSOA(z, owner(z.apex), zs.serial)}
		return
	}
	if qtype == dns.TypeCNAME && n.cname != nil {
		m.Answer = append(m.Answer, withOwner(n.cname, owner(name)))
		return
	}
	if qtype == dns.TypeANY {
		// RFC 8482 §4.1: one RRset is enough.
		qtype = 0
		for _, t := range anyOrder {
			if n.rrset(t) != nil {
				qtype = t
				break
			}
		}
	}
	rs := n.rrset(qtype)
	if rs == nil {
		m.Ns = []dns.RR{negativeSOA(z, owner(z.apex), zs.serial)} // NODATA (RFC 2308 §2.2)
		return
	}
	set := rs.rrs
	if qtype == dns.TypeSOA {
		set = []dns.RR{withSerial(z.soa, zs.serial)}
	}
	if o := owner(name); o != name {
		for _, rr := range set {
			m.Answer = append(m.Answer, withOwner(rr, o))
		}
	} else {
		m.Answer = append(m.Answer, set...)
	}
	if ex := rs.extra; len(ex) > 0 {
		opt := m.IsEdns0()
		m.Extra = append([]dns.RR(nil), ex...)
		if opt != nil {
			m.Extra = append(m.Extra, opt) // OPT last, where readers look
		}
	}
}

// withSerial is the SOA of zone data (serial 0, see zone) as answered:
// with the serial of the domain list.
func withSerial(soa *dns.SOA, serial uint32) *dns.SOA {
	c := *soa
	c.Serial = serial
	return &c
}

// negativeSOA is the SOA for the authority section of NXDOMAIN and NODATA
// answers, with TTL min(TTL, MINIMUM) (RFC 2308 §3).
func negativeSOA(z *zone, owner string, serial uint32) dns.RR {
	soa := withSerial(z.soa, serial)
	soa.Hdr.Name = owner
	soa.Hdr.Ttl = min(soa.Hdr.Ttl, soa.Minttl)
	return soa
}

func withOwner(rr dns.RR, owner string) dns.RR {
	if rr.Header().Name == owner {
		return rr
	}
	c := dns.Copy(rr)
	c.Header().Name = owner
	return c
}
