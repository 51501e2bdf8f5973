package dnssrv

import (
	"net"
	"net/netip"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// A UDP socket bound to the wildcard address (listen.dns ":53") would
// answer from whatever source address the routing table picks; on a host
// with several addresses that is often not the one the query went to,
// and resolvers drop such answers. So on wildcard sockets the destination
// of each query is read from IP_PKTINFO/IPV6_PKTINFO and used as the
// source of the answer, as BIND, NSD and miekg/dns do.

// pktinfo reads and writes the destination address of UDP packets.
type pktinfo struct {
	oob []byte
}

// newPktinfo enables destination-address control messages on a wildcard
// socket; it returns nil for a socket bound to one address (nothing to
// do) or when the system offers neither family.
func newPktinfo(uc *net.UDPConn) *pktinfo {
	ua, ok := uc.LocalAddr().(*net.UDPAddr)
	if !ok || !ua.IP.IsUnspecified() {
		return nil
	}
	err6 := ipv6.NewPacketConn(uc).SetControlMessage(ipv6.FlagDst|ipv6.FlagInterface, true)
	err4 := ipv4.NewPacketConn(uc).SetControlMessage(ipv4.FlagDst|ipv4.FlagInterface, true)
	if err4 != nil && err6 != nil {
		return nil
	}
	n4 := len(ipv4.NewControlMessage(ipv4.FlagDst | ipv4.FlagInterface))
	n6 := len(ipv6.NewControlMessage(ipv6.FlagDst | ipv6.FlagInterface))
	return &pktinfo{oob: make([]byte, max(n4, n6))}
}

// read reads one packet and the address it was sent to.
func (p *pktinfo) read(uc *net.UDPConn, b []byte) (n int, from netip.AddrPort, dst net.IP, err error) {
	n, oobn, _, from, err := uc.ReadMsgUDPAddrPort(b, p.oob)
	if err != nil {
		return n, from, nil, err
	}
	oob := p.oob[:oobn]
	var cm6 ipv6.ControlMessage
	if cm6.Parse(oob) == nil && cm6.Dst != nil {
		return n, from, cm6.Dst, nil
	}
	var cm4 ipv4.ControlMessage
	if cm4.Parse(oob) == nil && cm4.Dst != nil {
		return n, from, cm4.Dst, nil
	}
	return n, from, nil, nil
}

// write sends b to addr from the source address src (nil: the kernel's
// choice).
func (p *pktinfo) write(uc *net.UDPConn, b []byte, to netip.AddrPort, src net.IP) error {
	var oob []byte
	switch {
	case src == nil:
	case src.To4() != nil:
		oob = (&ipv4.ControlMessage{Src: src}).Marshal()
	default:
		oob = (&ipv6.ControlMessage{Src: src}).Marshal()
	}
	_, _, err := uc.WriteMsgUDPAddrPort(b, oob, to)
	return err
}
