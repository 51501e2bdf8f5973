package dnssrv

import (
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"time"

	"github.com/miekg/dns"
)

// Response Rate Limiting (RRL), the Vixie/Schryver design BIND 9 ships as
// rate-limit and NSD and Knot as rrl-*/rate-limit. A spoofed query makes
// us send an answer, bigger than the query, to the victim whose address
// was forged; a public authoritative server must cap how often the same
// answer goes to the same network. Answers are counted per key: the
// client's network prefix and the answer's class. Over the limit, an
// answer is dropped, or every Slip-th one is sent truncated (TC=1, no
// records) so that a real resolver behind the prefix retries over TCP,
// which cannot be spoofed and is never limited (RFC 7766 §1).

// RRL configures response rate limiting of UDP answers (Options.RRL). The
// zero value is the defaults: on, 20 answers per second per key.
type RRL struct {
	// ResponsesPerSecond is the steady rate of answers per key; default
	// 20, at most 1000000; negative turns RRL off. The key is the client
	// prefix and the answer's class: the query name and type for an
	// answer, the name for NODATA (so random query types share it), the
	// zone for NXDOMAIN (so a random-subdomain flood shares one key), and
	// one key for every error (REFUSED, FORMERR, ...).
	//
	// 20 is the top of BIND's example range (5-20): a resolver asks for
	// one of our SRV names once per TTL (an hour), so even hundreds of
	// resolver instances behind one /24 (a public resolver's egress)
	// stay far below it, while a reflection through us is capped at 20
	// answers a second per victim network and name. NSD's default of 200
	// serves zones whose every name may be hot; ours has a handful.
	ResponsesPerSecond int
	// Burst is how many answers a key gets back to back after being
	// idle; default ResponsesPerSecond, one second's worth, the credit
	// BIND's account balance is capped at.
	Burst int
	// Slip: every Slip-th limited answer of a key is sent truncated
	// instead of dropped; default 2, as BIND and NSD: a real resolver
	// gets through within two tries, and a truncated answer is no bigger
	// than the query, so there is nothing to amplify. 1 truncates every
	// limited answer; at most 10; negative drops them all (BIND's and
	// NSD's "slip 0").
	Slip int
	// IPv4PrefixLen and IPv6PrefixLen group clients into networks;
	// defaults 24 and 56 (BIND's; an ISP hands out a /56 or /64 per
	// customer, so one customer is one network).
	IPv4PrefixLen, IPv6PrefixLen int
	// TableSize is the number of keys tracked, rounded up to a power of
	// two; default 65536 (512 KiB). The table never grows: a new key
	// takes the slot of an idle key in its bucket of 8, or else of the
	// one nearest to idle, so a flood of new keys, each answered once,
	// does not evict a key being limited.
	TableSize int
	// Clock is the time source; default time.Now (monotonic). Tests
	// inject one.
	Clock func() time.Time
}

const (
	rrlDefaultRate  = 20
	rrlMaxRate      = 1_000_000 // one answer per µs, the clock's unit
	rrlMaxSlip      = 10        // BIND's maximum
	rrlMaxBurst     = 10_000
	rrlDefaultTable = 1 << 16
	rrlSummaryEvery = time.Minute
)

// defaults fills in r's zero fields and checks the others. RRL is on
// when ResponsesPerSecond is positive afterwards.
func (r *RRL) defaults() error {
	if r.ResponsesPerSecond < 0 {
		return nil
	}
	if r.ResponsesPerSecond == 0 {
		r.ResponsesPerSecond = rrlDefaultRate
	}
	if r.Burst == 0 {
		r.Burst = min(r.ResponsesPerSecond, rrlMaxBurst)
	}
	if r.Slip == 0 {
		r.Slip = 2
	}
	if r.IPv4PrefixLen == 0 {
		r.IPv4PrefixLen = 24
	}
	if r.IPv6PrefixLen == 0 {
		r.IPv6PrefixLen = 56
	}
	if r.TableSize == 0 {
		r.TableSize = rrlDefaultTable
	}
	switch {
	case r.ResponsesPerSecond > rrlMaxRate:
		return fmt.Errorf("dnssrv: RRL.ResponsesPerSecond %d above %d", r.ResponsesPerSecond, rrlMaxRate)
	case r.Burst < 0 || r.Burst > rrlMaxBurst:
		return fmt.Errorf("dnssrv: RRL.Burst %d not in 1..%d", r.Burst, rrlMaxBurst)
	case r.Slip > rrlMaxSlip:
		return fmt.Errorf("dnssrv: RRL.Slip %d above %d", r.Slip, rrlMaxSlip)
	case r.IPv4PrefixLen < 0 || r.IPv4PrefixLen > 32:
		return fmt.Errorf("dnssrv: RRL.IPv4PrefixLen %d not in 1..32", r.IPv4PrefixLen)
	case r.IPv6PrefixLen < 0 || r.IPv6PrefixLen > 128:
		return fmt.Errorf("dnssrv: RRL.IPv6PrefixLen %d not in 1..128", r.IPv6PrefixLen)
	case r.TableSize < 0 || r.TableSize > 1<<26:
		return fmt.Errorf("dnssrv: RRL.TableSize %d not in 1..%d", r.TableSize, 1<<26)
	}
	return nil
}

// Answer classes (RFC 1035 §4.1.1 RCODE, RFC 2308 NODATA).
const (
	classAnswer byte = 1 + iota
	classNoData
	classNXDomain
	classError
)

// class returns the hashed class of answer m: answers by query name and
// type; NODATA by name; NXDOMAIN by the zone, the owner of the SOA in
// the authority section (RFC 2308 §3), so that random names under one
// zone share a key, as in BIND; everything else is an error and shares
// one key per prefix.
func (l *limiter) class(m *dns.Msg) uint64 {
	switch {
	case m.Rcode == dns.RcodeSuccess && len(m.Question) == 1:
		q := m.Question[0]
		if len(m.Answer) > 0 || m.Truncated {
			return l.classHash(classAnswer, q.Name, q.Qtype)
		}
		return l.classHash(classNoData, q.Name, 0)
	case m.Rcode == dns.RcodeNameError:
		for _, rr := range m.Ns {
			if soa, ok := rr.(*dns.SOA); ok {
				return l.classHash(classNXDomain, soa.Hdr.Name, 0)
			}
		}
		return l.classHash(classNXDomain, "", 0)
	}
	return l.errClass
}

// classHash hashes a class; name is compared without case (0x20).
func (l *limiter) classHash(kind byte, name string, qtype uint16) uint64 {
	var h maphash.Hash
	h.SetSeed(l.seed)
	_ = h.WriteByte(kind)
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		_ = h.WriteByte(c)
	}
	var b [4]byte
	binary.BigEndian.PutUint16(b[:], uint16(len(name)))
	binary.BigEndian.PutUint16(b[2:], qtype)
	_, _ = h.Write(b[:])
	return h.Sum64()
}

// slipResponse turns the answer resp into RRL's "slip": the header and
// question only, with TC set, so the client retries over TCP. The OPT
// record, always last in our answers, is kept: RFC 6891 §6.1.1, a
// request with one gets a response with one.
// It returns nil if resp cannot be cut (then it is dropped).
func slipResponse(resp []byte) []byte {
	if len(resp) < 12 {
		return nil
	}
	end := 12
	for range binary.BigEndian.Uint16(resp[4:]) {
		n := skipName(resp, end)
		if n < 0 || n+4 > len(resp) {
			return nil
		}
		end = n + 4
	}
	var opt []byte
	if binary.BigEndian.Uint16(resp[10:]) > 0 && len(resp) >= end+11 {
		t := resp[len(resp)-11:]
		if t[0] == 0 && binary.BigEndian.Uint16(t[1:]) == dns.TypeOPT && t[9] == 0 && t[10] == 0 {
			opt = t
		}
	}
	resp[2] |= 0x02 // TC
	clear(resp[6:12])
	if opt != nil {
		resp[11] = 1
	}
	n := copy(resp[end:], opt)
	return resp[:end+n]
}

// skipName returns the offset after the domain name at off, or -1.
func skipName(b []byte, off int) int {
	for off < len(b) {
		l := int(b[off])
		switch {
		case l == 0:
			return off + 1
		case l&0xC0 == 0xC0:
			return off + 2
		case l > 63:
			return -1
		}
		off += 1 + l
	}
	return -1
}

// RateLimited returns how many UDP answers response rate limiting has
// dropped, and how many it sent truncated instead (slipped).
func (h *Handler) RateLimited() (dropped, slipped uint64) {
	if h.rrl == nil {
		return 0, 0
	}
	return h.rrl.counts()
}
