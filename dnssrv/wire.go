package dnssrv

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/miekg/dns"
)

// The wire fast path. Zones only change on Reload, so the answer to a
// given question (name in lower case, type, class, EDNS presence, DO bit
// and payload limit) is always the same bytes apart from the message ID,
// the RD and CD bits, and the letter case of the question name. Those
// answers are kept packed per zone generation; a query that matches is
// answered by copying the template and patching those fields, with no
// allocation. Compression pointers in the template point into the
// question, so owner names take the query's case (0x20) as in the slow
// path. Anything unusual (other opcodes, several questions, OPT options
// we would have to look at, EDNS versions other than 0, compression in
// the question) takes the slow path through miekg/dns.

// maxCached bounds the templates per zone generation, so a flood of
// random names cannot grow memory; past it, misses take the slow path.
const maxCached = 4096

// template is one cached answer.
type template struct {
	wire  []byte // ID 0, RD and CD clear, lower-case question
	count *atomic.Uint64
	class uint64 // RRL class (UDP templates, RRL on)
}

// wireCache maps a question key to its template, copy-on-write: reads
// are one atomic load and a map lookup.
type wireCache struct {
	m  atomic.Pointer[map[string]*template]
	mu sync.Mutex // serialises inserts
}

func (c *wireCache) get(key []byte) *template {
	m := c.m.Load()
	if m == nil {
		return nil
	}
	return (*m)[string(key)]
}

// put adds a template. Past half the bound only positive answers are
// added, so a flood of random names (NXDOMAIN, REFUSED) cannot keep real
// names out of the cache.
func (c *wireCache) put(key []byte, t *template, positive bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Load()
	var n map[string]*template
	if old == nil {
		n = make(map[string]*template, 64)
	} else {
		if len(*old) >= maxCached || len(*old) >= maxCached/2 && !positive {
			return
		}
		n = make(map[string]*template, len(*old)+1)
		for k, v := range *old {
			n[k] = v
		}
	}
	n[string(key)] = t
	c.m.Store(&n)
}

// question is what parseQuery learns from a packet it can take.
type question struct {
	qend  int    // end of the question section
	qtype uint16 // for counting
	udp   uint16 // effective payload limit over UDP
	edns  bool
	do    bool
}

// parseQuery checks that pkt is a plain query the fast path can answer
// and writes its cache key (lower-case question, then EDNS state) to key.
// It returns false for anything else.
func parseQuery(pkt []byte, key []byte, maxUDP uint16, udp bool) (question, []byte, bool) {
	var q question
	if len(pkt) < 17 {
		return q, key, false
	}
	flags := binary.BigEndian.Uint16(pkt[2:])
	if flags&0x8000 != 0 || (flags>>11)&0xF != dns.OpcodeQuery {
		return q, key, false
	}
	qd, an, ns, ar := binary.BigEndian.Uint16(pkt[4:]), binary.BigEndian.Uint16(pkt[6:]),
		binary.BigEndian.Uint16(pkt[8:]), binary.BigEndian.Uint16(pkt[10:])
	if qd != 1 || an != 0 || ns != 0 || ar > 1 {
		return q, key, false
	}
	i := 12
	for {
		if i >= len(pkt) {
			return q, key, false
		}
		l := int(pkt[i])
		if l == 0 {
			key = append(key, 0)
			i++
			break
		}
		if l > 63 || i+1+l > len(pkt) || i+1+l-12 > 254 {
			return q, key, false // pointers, extended labels, overlong names
		}
		key = append(key, byte(l))
		for _, c := range pkt[i+1 : i+1+l] {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			key = append(key, c)
		}
		i += 1 + l
	}
	if i+4 > len(pkt) {
		return q, key, false
	}
	key = append(key, pkt[i:i+4]...)
	q.qtype = binary.BigEndian.Uint16(pkt[i:])
	q.qend = i + 4
	q.udp = dns.MinMsgSize
	if ar == 1 {
		// RFC 6891 §6.1.2: root owner, type OPT, CLASS = payload size,
		// TTL = extended RCODE, VERSION, DO and Z.
		o := q.qend
		if o+11 > len(pkt) || pkt[o] != 0 || binary.BigEndian.Uint16(pkt[o+1:]) != dns.TypeOPT || pkt[o+6] != 0 {
			return q, key, false
		}
		size := binary.BigEndian.Uint16(pkt[o+3:])
		rdlen := int(binary.BigEndian.Uint16(pkt[o+9:]))
		if o+11+rdlen != len(pkt) {
			return q, key, false
		}
		q.edns, q.do = true, pkt[o+7]&0x80 != 0
		q.udp = min(max(size, dns.MinMsgSize), maxUDP)
	} else if q.qend != len(pkt) {
		return q, key, false
	}
	if !udp {
		q.udp = 0 // no limit over TCP
	}
	var e byte
	if q.edns {
		e |= 1
	}
	if q.do {
		e |= 2
	}
	key = append(key, e, byte(q.udp>>8), byte(q.udp))
	return q, key, true
}

// AnswerWire answers the raw query pkt, appending the answer to out (nil:
// drop). It takes the fast path when it can and otherwise unpacks with
// miekg/dns; malformed packets are dropped when the header is unreadable
// or answered FORMERR, as miekg/dns's own server does.
func (h *Handler) AnswerWire(pkt []byte, udp bool, out []byte) []byte {
	resp, _ := h.answerWire(pkt, udp, out)
	return resp
}

// AnswerUDP is AnswerWire for a query that came over UDP from the address
// from, with response rate limiting (Options.RRL): nil when the answer is
// dropped, the header and question with TC set when it slips. An invalid
// from is not limited.
func (h *Handler) AnswerUDP(pkt []byte, from netip.Addr, out []byte) []byte {
	resp, class := h.answerWire(pkt, true, out)
	if resp == nil || h.rrl == nil {
		return resp
	}
	switch h.rrl.check(from, class) {
	case rrlDrop:
		return nil
	case rrlSlip:
		return slipResponse(resp)
	}
	return resp
}

// answerWire is AnswerWire, also returning the answer's RRL class when
// it is over UDP and RRL is on.
func (h *Handler) answerWire(pkt []byte, udp bool, out []byte) ([]byte, uint64) {
	var kb [300]byte
	zs := h.zones.Load()
	q, key, ok := parseQuery(pkt, kb[:0], h.opts.MaxUDPSize, udp)
	if ok {
		if t := zs.cache.get(key); t != nil {
			t.count.Add(1)
			return patch(out, t.wire, pkt, q.qend), t.class
		}
	}
	if len(pkt) < 12 || pkt[2]&0x80 != 0 {
		h.dropped.Add(1)
		return nil, 0 // unreadable header, or a response: never answer (reflection)
	}
	req := new(dns.Msg)
	if err := req.Unpack(pkt); err != nil {
		h.opts.Logger.Debug("dns: malformed query", "err", err, "len", len(pkt))
		h.counter(0, dns.RcodeFormatError).Add(1)
		var class uint64
		if h.rrl != nil {
			class = h.rrl.errClass
		}
		return append(out, pkt[0], pkt[1], 0x80|pkt[2]&0x78, dns.RcodeFormatError, 0, 0, 0, 0, 0, 0, 0, 0), class
	}
	resp, qtype, m := h.answer(req, udp)
	if resp == nil {
		return nil, 0
	}
	count := h.counter(qtype, m.Rcode)
	count.Add(1)
	if ok {
		h.learn(zs, key, q, count)
	}
	return append(out, resp...), h.rrlClass(m, udp)
}

// rrlClass is the RRL class of answer m, when it goes over UDP and RRL
// is on (else 0, which nothing reads).
func (h *Handler) rrlClass(m *dns.Msg, udp bool) uint64 {
	if !udp || h.rrl == nil {
		return 0
	}
	return h.rrl.class(m)
}

// learn packs the canonical answer for a fast-path question and caches it.
func (h *Handler) learn(zs *zones, key []byte, q question, count *atomic.Uint64) {
	canon := new(dns.Msg)
	canon.Opcode = dns.OpcodeQuery
	name, _, err := dns.UnpackDomainName(key, 0)
	if err != nil {
		return
	}
	canon.Question = []dns.Question{{Name: name, Qtype: q.qtype, Qclass: binary.BigEndian.Uint16(key[q.qend-12-2:])}}
	if q.edns {
		size := q.udp
		if size == 0 {
			size = h.opts.MaxUDPSize
		}
		canon.SetEdns0(size, q.do)
	}
	wire, _, m := h.answer(canon, q.udp != 0)
	// The template must carry the question at the same offsets.
	if len(wire) < q.qend || binary.BigEndian.Uint16(wire[4:]) != 1 || string(wire[12:q.qend-4]) != string(key[:q.qend-16]) {
		return
	}
	t := &template{wire: wire, count: count, class: h.rrlClass(m, q.udp != 0)}
	zs.cache.put(key, t, m.Rcode == dns.RcodeSuccess)
}

// patch copies a template and gives it the query's ID, RD and CD bits and
// question bytes (the name's letter case).
func patch(out, wire, pkt []byte, qend int) []byte {
	n := len(out)
	out = append(out, wire...)
	r := out[n:]
	r[0], r[1] = pkt[0], pkt[1]
	r[2] |= pkt[2] & 0x01 // RD
	r[3] |= pkt[3] & 0x10 // CD
	copy(r[12:qend], pkt[12:qend])
	return out
}

// countKey identifies a (query type, response code) pair.
type countKey struct {
	qtype uint16
	rcode int
}

// otherType counts every query type countedType does not list; 65535 is
// reserved (RFC 6895 §3.1), so it stands for no type of its own.
const otherType = dns.TypeReserved

// countedType bounds the qtype label of the query metrics: the types this
// server answers or refuses by name, the ones resolvers commonly ask any
// authoritative server (TXT for SPF, CAA before issuing a certificate,
// HTTPS from browsers) and 0 for packets that did not parse; any other of
// the 65,536 values a client can put in a question is otherType.
func countedType(t uint16) uint16 {
	switch t {
	case 0, dns.TypeA, dns.TypeNS, dns.TypeCNAME, dns.TypeSOA, dns.TypeMX, dns.TypeTXT, dns.TypeAAAA,
		dns.TypeSRV, dns.TypeOPT, dns.TypeHTTPS, dns.TypeCAA, dns.TypeANY, dns.TypeAXFR, dns.TypeIXFR:
		return t
	}
	return otherType
}

// counter returns the query counter of a (type, rcode) pair.
func (h *Handler) counter(qtype uint16, rcode int) *atomic.Uint64 {
	k := countKey{countedType(qtype), rcode}
	if c, ok := h.counts.Load(k); ok {
		return c.(*atomic.Uint64)
	}
	c, _ := h.counts.LoadOrStore(k, new(atomic.Uint64))
	return c.(*atomic.Uint64)
}

// QueryCounts calls f for every (query type, response code) pair seen,
// with the number of queries: the type's mnemonic ("SRV"; "other" for
// every type outside countedType's short list, "none" for packets that
// did not parse) and the rcode's ("NOERROR", "NXDOMAIN", …). For metrics,
// read at scrape time, so the hot path only adds to an atomic counter.
func (h *Handler) QueryCounts(f func(qtype, rcode string, n uint64)) {
	h.counts.Range(func(k, v any) bool {
		ck := k.(countKey)
		var t string
		switch ck.qtype {
		case 0:
			t = "none"
		case otherType:
			t = "other"
		default:
			t = dns.Type(ck.qtype).String()
		}
		rc, ok := dns.RcodeToString[ck.rcode]
		if !ok {
			rc = "RCODE" + itoa(ck.rcode)
		}
		f(t, rc, v.(*atomic.Uint64).Load())
		return true
	})
}

// Dropped returns how many packets were dropped unanswered: shorter than
// a header, or responses (answering those would let anyone aim two
// servers at each other).
func (h *Handler) Dropped() uint64 { return h.dropped.Load() }

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for ; n > 0; n /= 10 {
		i--
		b[i] = byte('0' + n%10)
	}
	return string(b[i:])
}
