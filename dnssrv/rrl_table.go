package dnssrv

// The RRL table and its check, per answer (see RRL).

import (
	"encoding/binary"
	"hash/maphash"
	"log/slog"
	"math"
	"math/bits"
	"math/rand/v2"
	"net/netip"
	"sync/atomic"
	"time"
)

// rrlAction is what becomes of one UDP answer.
type rrlAction uint8

const (
	rrlSend rrlAction = iota
	rrlDrop
	rrlSlip
)

// The table is buckets of rrlWays slots, one 64-byte cache line each. A
// slot is one atomic word, updated by compare-and-swap, so the per-CPU
// UDP loops share it without a lock:
//
//	bits 63-44  tag: the key's hash bits not used for the bucket (0: free)
//	bits 43-40  limited answers since the last slip
//	bits 39-0   theoretical arrival time, µs, modulo 2^40 (12.7 days)
//
// Two keys of one bucket whose tags are equal (1 in 2^20) share a slot,
// which at worst limits the one with the other.
//
// The rate is a GCRA (the token bucket as one timestamp, ITU-T I.371):
// each answer moves the key's theoretical arrival time (TAT) one interval
// on from max(TAT, now), and an answer is limited while that would put
// the TAT more than Burst intervals ahead of now. Limited answers do not
// move it, so a key gets its rate even while flooded; a slot whose TAT is
// behind now holds nothing a fresh key would not, and is free to reuse.
const (
	rrlWays    = 8
	tatBits    = 40
	tatMask    = 1<<tatBits - 1
	slipShift  = tatBits
	slipMask   = 0xF
	tagShift   = 44
	rrlStripes = 16
)

// limiter is the RRL state of a Handler.
type limiter struct {
	slots    []atomic.Uint64
	mask     uint64       // buckets-1
	seed     maphash.Seed // of class hashes
	k        [4]uint64    // random keys of the per-packet mix
	interval uint64       // µs per answer at the steady rate
	limit    uint64       // the most a TAT may lead now and still be answered
	maxLead  uint64       // the most a TAT can lead now; more is stale
	slip     uint64       // 0: drop every limited answer
	// Prefix masks over the address in 16-byte form (IPv4 mapped).
	m4hi, m4lo, m6hi, m6lo uint64
	v4bits, v6bits         int
	clock                  func() time.Time // nil: time.Since(base)
	base                   time.Time
	errClass               uint64
	log                    *slog.Logger
	// Counters striped by key, so that limited answers on several CPUs
	// do not all add to one cache line.
	stats [rrlStripes]struct {
		dropped, slipped atomic.Uint64
		_                [48]byte
	}
	// The summary log line: at most one per rrlSummaryEvery.
	nextLog                  atomic.Uint64 // µs since base
	loggedDrops, loggedSlips atomic.Uint64
	lastLogAt                atomic.Uint64
}

func newLimiter(r RRL, log *slog.Logger) *limiter {
	buckets := uint64(1)
	for buckets*rrlWays < uint64(r.TableSize) {
		buckets <<= 1
	}
	l := &limiter{
		slots:    make([]atomic.Uint64, buckets*rrlWays),
		mask:     buckets - 1,
		seed:     maphash.MakeSeed(), // per process: collisions cannot be aimed
		interval: uint64(time.Second/time.Microsecond) / uint64(r.ResponsesPerSecond),
		slip:     uint64(max(r.Slip, 0)),
		v4bits:   r.IPv4PrefixLen,
		v6bits:   r.IPv6PrefixLen,
		clock:    r.Clock,
		log:      log,
	}
	for i := range l.k {
		l.k[i] = rand.Uint64() // ChaCha8, seeded per process by the runtime
	}
	l.limit = uint64(r.Burst-1) * l.interval
	l.maxLead = uint64(r.Burst) * l.interval
	l.m4hi, l.m4lo = prefixMask(96 + r.IPv4PrefixLen)
	l.m6hi, l.m6lo = prefixMask(r.IPv6PrefixLen)
	if l.clock != nil {
		l.base = l.clock()
	} else {
		l.base = time.Now()
	}
	l.errClass = l.classHash(classError, "", 0)
	return l
}

// prefixMask returns the mask of the first bits of a 128-bit address.
func prefixMask(bits int) (hi, lo uint64) {
	if bits >= 64 {
		return math.MaxUint64, math.MaxUint64 << (128 - bits)
	}
	return math.MaxUint64 << (64 - bits), 0
}

// check accounts one UDP answer of class to a client at a and says what
// to do with it. A client without an address (not UDP/IP) is not limited.
func (l *limiter) check(a netip.Addr, class uint64) rrlAction {
	if !a.IsValid() {
		return rrlSend
	}
	key := l.key(a, class)
	now := l.now()
	act := l.take(key, now)
	if act != rrlSend {
		l.limited(key, act, now, a)
	}
	return act
}

// key hashes the client's prefix with the class. IPv4 and IPv4-mapped
// IPv6 (a dual-stack socket) give the same key.
func (l *limiter) key(a netip.Addr, class uint64) uint64 {
	a16 := a.As16()
	hi, lo := binary.BigEndian.Uint64(a16[:8]), binary.BigEndian.Uint64(a16[8:])
	if a.Is4() || a.Is4In6() {
		hi, lo = hi&l.m4hi, lo&l.m4lo
	} else {
		hi, lo = hi&l.m6hi, lo&l.m6lo
	}
	return mix(mix(class^l.k[0], hi^l.k[1])^l.k[2], lo^l.k[3])
}

// mix is wyhash's multiply-and-fold. Keyed with the secret class hash
// and the random l.k, it spreads prefixes the attacker chooses over the
// table in a way the attacker cannot predict, at a fraction of the cost
// of a second maphash per packet.
func mix(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

// now is the time in µs since the limiter was made.
func (l *limiter) now() uint64 {
	var d time.Duration
	if l.clock != nil {
		d = l.clock().Sub(l.base)
	} else {
		d = time.Since(l.base)
	}
	return uint64(max(d, 0) / time.Microsecond)
}

// take is the GCRA step for key at now (see the table layout above).
func (l *limiter) take(key, now uint64) rrlAction {
	b := (key & l.mask) * rrlWays
	set := l.slots[b : b+rrlWays : b+rrlWays]
	tag := key >> tagShift
	if tag == 0 {
		tag = 1
	}
	now40 := now & tatMask
retry:
	for range 4 {
		victim, victimLead, victimOld := 0, uint64(math.MaxUint64), uint64(0)
		for i := range set {
			old := set[i].Load()
			lead := l.lead(old, now40)
			if old>>tagShift == tag {
				act, w := l.step(old, lead, now40)
				if w == old || set[i].CompareAndSwap(old, w) {
					return act
				}
				continue retry
			}
			if lead < victimLead {
				victim, victimLead, victimOld = i, lead, old
			}
		}
		// A new key: answered, its first interval taken, in the slot
		// nearest to idle.
		if set[victim].CompareAndSwap(victimOld, tag<<tagShift|(now40+l.interval)&tatMask) {
			return rrlSend
		}
	}
	return rrlSend // a bucket fought over by several CPUs at once: fail open
}

// lead is how far the TAT in slot word w is ahead of now: 0 for a free
// or idle slot, and for one so old that its 40-bit TAT has wrapped.
func (l *limiter) lead(w, now40 uint64) uint64 {
	if w == 0 {
		return 0
	}
	if d := (w - now40) & tatMask; d <= l.maxLead {
		return d
	}
	return 0
}

// step applies one answer to a slot of the key and returns the action
// and the new slot word.
func (l *limiter) step(old, lead, now40 uint64) (rrlAction, uint64) {
	tag := old >> tagShift << tagShift
	if lead <= l.limit {
		return rrlSend, old&^tatMask | (now40+lead+l.interval)&tatMask
	}
	if l.slip == 0 {
		return rrlDrop, old
	}
	n := old>>slipShift&slipMask + 1
	if n >= l.slip {
		return rrlSlip, tag | old&tatMask
	}
	return rrlDrop, tag | n<<slipShift | old&tatMask
}

// limited counts a limited answer and, at most once a minute, logs a
// summary: one line per dropped packet would itself be a way to flood
// the log.
func (l *limiter) limited(key uint64, act rrlAction, now uint64, a netip.Addr) {
	s := &l.stats[key>>32%rrlStripes]
	if act == rrlDrop {
		s.dropped.Add(1)
	} else {
		s.slipped.Add(1)
	}
	next := l.nextLog.Load()
	if now < next || !l.nextLog.CompareAndSwap(next, now+uint64(rrlSummaryEvery/time.Microsecond)) {
		return
	}
	dropped, slipped := l.counts()
	plen := l.v6bits
	if a.Is4() || a.Is4In6() {
		a, plen = a.Unmap(), l.v4bits
	}
	since := time.Duration(now-l.lastLogAt.Swap(now)) * time.Microsecond
	l.log.Warn("dns: response rate limiting: UDP answers dropped or truncated",
		"dropped", dropped-l.loggedDrops.Swap(dropped), "truncated", slipped-l.loggedSlips.Swap(slipped),
		"since", since.Round(time.Second), "prefix", netip.PrefixFrom(a, plen).Masked().String())
}

// counts returns the limited answers so far.
func (l *limiter) counts() (dropped, slipped uint64) {
	for i := range l.stats {
		dropped += l.stats[i].dropped.Load()
		slipped += l.stats[i].slipped.Load()
	}
	return dropped, slipped
}
