package dnssrv_test

import (
	"net"
	"strings"
	"testing"

	"github.com/skydesk/skydeskd/dnssrv"
)

// Listen puts UDP and TCP on one port; on a fixed port whose TCP side is
// taken it fails naming TCP and leaves the UDP port free again.
func TestListen(t *testing.T) {
	pcs, l, err := dnssrv.Listen("127.0.0.1:0", 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(pcs) == 0 {
		t.Fatal("no UDP socket")
	}
	if u, tc := pcs[0].LocalAddr().String(), l.Addr().String(); u != tc {
		t.Fatalf("UDP %s, TCP %s: want one port", u, tc)
	}
	for _, pc := range pcs {
		pc.Close()
	}
	l.Close()

	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	addr := taken.Addr().String()
	if _, _, err := dnssrv.Listen(addr, 2); err == nil || !strings.Contains(err.Error(), "/tcp") {
		t.Fatalf("Listen(%s) with TCP taken = %v; want a /tcp error", addr, err)
	}
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatalf("UDP %s still held after the failed Listen: %v", addr, err)
	}
	pc.Close()
}
