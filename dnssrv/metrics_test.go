package dnssrv_test

import (
	"maps"
	"testing"

	"github.com/miekg/dns"
)

// The qtype label is bounded: a query type the server does not know is
// counted as "other", whichever of the 65,536 values the client chose,
// over the learned fast path as over the first answer.
func TestQueryCounts_unknownTypeIsOther(t *testing.T) {
	f := start(t, nil)
	for range 2 { // the second round is answered from the learned templates
		for _, qt := range []uint16{dns.TypeSRV, dns.TypeTXT, 65280, 4242, dns.TypeReserved} {
			for _, network := range []string{"udp", "tcp"} {
				exchange(t, network, f.udp, query("_pop3s._tcp.skydesk.jp.", qt, 1232))
			}
		}
	}
	got := map[string]uint64{}
	f.h.QueryCounts(func(qtype, rcode string, n uint64) { got[qtype+" "+rcode] += n })
	want := map[string]uint64{"SRV NOERROR": 4, "TXT NOERROR": 4, "other NOERROR": 12}
	if !maps.Equal(got, want) {
		t.Fatalf("QueryCounts %v, want %v", got, want)
	}
}
