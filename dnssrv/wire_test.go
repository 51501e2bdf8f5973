package dnssrv_test

import (
	"fmt"
	"testing"

	"github.com/miekg/dns"

	"github.com/skydesk/skydeskd/profiles"
)

// TestAnswerWire_cacheBound: a flood of random names fills at most half
// the template cache, so a real name asked afterwards still gets the
// allocation-free fast path.
func TestAnswerWire_cacheBound(t *testing.T) {
	dom := &domains{serial: 1, list: []string{"example.co.jp"}}
	h, err := newTestHandler(profiles.NewResolver(settings, dom), dom)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]byte, 0, 4096)
	for i := range 5000 {
		pkt, err := query(fmt.Sprintf("r%d.example.co.jp.", i), dns.TypeA, 0).Pack()
		if err != nil {
			t.Fatal(err)
		}
		if r := h.AnswerWire(pkt, true, out[:0]); r == nil {
			t.Fatal("no answer")
		}
	}
	pkt, err := query("_submission._tcp.example.co.jp.", dns.TypeSRV, 0).Pack()
	if err != nil {
		t.Fatal(err)
	}
	h.AnswerWire(pkt, true, out[:0]) // learned here
	if n := testing.AllocsPerRun(100, func() { h.AnswerWire(pkt, true, out[:0]) }); n != 0 {
		t.Fatalf("%v allocations per answer after a flood of random names: not on the fast path", n)
	}
	// Another random name stays on the slow path (the bound refuses more
	// negative templates), which also shows the measurement can fail.
	nx, err := query("r99999.example.co.jp.", dns.TypeA, 0).Pack()
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(10, func() { h.AnswerWire(nx, true, out[:0]) }); n == 0 {
		t.Fatal("a random name past the bound was answered without allocating: it was cached")
	}
}
