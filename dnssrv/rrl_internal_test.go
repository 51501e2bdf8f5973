package dnssrv

import (
	"encoding/binary"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The limiter's table, tested from inside: its size, its slots under
// concurrent use, and its 40-bit clock.

// stoppedClock is a clock that moves only when told.
type stoppedClock struct{ t atomic.Int64 }

func newStoppedClock() *stoppedClock {
	c := &stoppedClock{}
	c.t.Store(time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *stoppedClock) now() time.Time          { return time.Unix(0, c.t.Load()) }
func (c *stoppedClock) advance(d time.Duration) { c.t.Add(int64(d)) }

// testLimiter is a limiter for r (defaults filled in) on clk; nil clk is
// the real clock.
func testLimiter(r RRL, clk *stoppedClock) *limiter {
	if clk != nil {
		r.Clock = clk.now
	}
	if err := r.defaults(); err != nil {
		panic(err)
	}
	return newLimiter(r, slog.New(slog.DiscardHandler))
}

func addr4(i uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], i)
	return netip.AddrFrom4(b)
}

// TestLimiter_tableFull: a flood of new keys (every source network of
// the IPv4 space) neither grows the table nor allocates, and does not
// evict a key that is being limited: its slot is not the one nearest to
// idle.
func TestLimiter_tableFull(t *testing.T) {
	clk := newStoppedClock()
	l := testLimiter(RRL{TableSize: 1024, Slip: -1}, clk)
	if len(l.slots) != 1024 {
		t.Fatalf("%d slots for TableSize 1024", len(l.slots))
	}
	victim := netip.MustParseAddr("192.0.2.1")
	const class = 42
	for range 20 {
		if l.check(victim, class) != rrlSend {
			t.Fatal("burst limited")
		}
	}
	if l.check(victim, class) != rrlDrop {
		t.Fatal("past the burst: not limited")
	}
	next := uint32(0)
	flood := func() {
		next += 256 // a new /24 each time
		l.check(addr4(next), class)
	}
	if n := testing.AllocsPerRun(200_000, flood); n != 0 {
		t.Fatalf("%v allocations per new key", n)
	}
	if len(l.slots) != 1024 || cap(l.slots) != 1024 {
		t.Fatalf("table grew to %d slots", len(l.slots))
	}
	free := 0
	for i := range l.slots {
		if l.slots[i].Load() == 0 {
			free++
		}
	}
	if free != 0 {
		t.Fatalf("%d slots still free after 200000 new keys: the flood did not fill the table", free)
	}
	if l.check(victim, class) != rrlDrop {
		t.Fatal("the flood of new keys evicted the limited key: it is answered again")
	}
}

// TestLimiter_concurrent: the per-CPU UDP loops share slots without a
// lock; with the clock stopped, a key is answered exactly Burst times
// however many goroutines ask at once (run with -race).
func TestLimiter_concurrent(t *testing.T) {
	l := testLimiter(RRL{ResponsesPerSecond: 100, Burst: 50, Slip: 1}, newStoppedClock())
	a := netip.MustParseAddr("2001:db8::1")
	var sent, slips atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				switch l.check(a, 7) {
				case rrlSend:
					sent.Add(1)
				case rrlSlip:
					slips.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if sent.Load() != 50 || slips.Load() != 8000-50 {
		t.Fatalf("%d sent, %d slipped; want 50 and %d", sent.Load(), slips.Load(), 8000-50)
	}
	if d, s := l.counts(); d != 0 || s != 8000-50 {
		t.Fatalf("counts %d, %d", d, s)
	}
}

// TestLimiter_clockWraps: a slot keeps its time in 40 bits of µs (12.7
// days); an entry left that long reads as idle, not as limited.
func TestLimiter_clockWraps(t *testing.T) {
	clk := newStoppedClock()
	l := testLimiter(RRL{Slip: -1}, clk)
	a := netip.MustParseAddr("192.0.2.1")
	for range 20 {
		l.check(a, 1)
	}
	if l.check(a, 1) != rrlDrop {
		t.Fatal("not limited")
	}
	clk.advance(time.Duration(1<<tatBits)*time.Microsecond + 2*time.Second)
	if l.check(a, 1) != rrlSend {
		t.Fatal("limited again after the 40-bit clock wrapped")
	}
}

// BenchmarkRRLCheck measures the check one UDP answer goes through:
// masking the client address, hashing it with the answer's class, and
// the slot's compare-and-swap. "answered" is a legitimate client under
// the limit (1000 networks, one answer each per pass), "limited" one
// flooding a single key.
func BenchmarkRRLCheck(b *testing.B) {
	b.Run("answered", func(b *testing.B) {
		l := testLimiter(RRL{ResponsesPerSecond: rrlMaxRate}, nil)
		b.ReportAllocs()
		i := uint32(0)
		for b.Loop() {
			i++
			if l.check(addr4(i%1000<<8), 99) != rrlSend {
				b.Fatal("limited")
			}
		}
	})
	b.Run("limited", func(b *testing.B) {
		l := testLimiter(RRL{Burst: 1}, newStoppedClock())
		a := netip.MustParseAddr("192.0.2.1")
		l.check(a, 99)
		b.ReportAllocs()
		for b.Loop() {
			if l.check(a, 99) == rrlSend {
				b.Fatal("answered")
			}
		}
	})
}
