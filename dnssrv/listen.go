package dnssrv

import (
	"context"
	"fmt"
	"net"
)

// udpReadBuffer is the receive buffer asked for per UDP socket.
const udpReadBuffer = 1 << 20

// ListenUDP binds n UDP sockets to addr with SO_REUSEPORT where the system
// has it (Linux), so n reader goroutines each get their own queue from
// the kernel instead of taking turns on one socket. With port 0 the first
// socket picks the port and the others join it. Linux only lets sockets
// of the same user share the port.
func ListenUDP(addr string, n int) ([]net.PacketConn, error) {
	if n < 1 || !reusePortSupported {
		n = 1
	}
	lc := net.ListenConfig{Control: reusePort}
	var pcs []net.PacketConn
	for i := range n {
		pc, err := lc.ListenPacket(context.Background(), "udp", addr)
		if err != nil {
			for _, p := range pcs {
				p.Close()
			}
			return nil, fmt.Errorf("listening on %s/udp: %w", addr, err)
		}
		if i == 0 {
			addr = pc.LocalAddr().String()
		}
		if uc, ok := pc.(*net.UDPConn); ok {
			// Bursts queue in the kernel instead of being dropped; the
			// system may cap it (net.core.rmem_max), which is fine.
			_ = uc.SetReadBuffer(udpReadBuffer)
		}
		pcs = append(pcs, pc)
	}
	return pcs, nil
}

// Listen binds ListenUDP's n sockets and a TCP listener on the same port,
// as a name server serves both (resolvers retry a truncated answer over
// TCP on the port they asked over UDP). With port 0 the kernel picks a
// free UDP port whose TCP twin may be taken by some other socket (a
// client connection's local port): then it tries another port.
func Listen(addr string, n int) ([]net.PacketConn, net.Listener, error) {
	_, port, _ := net.SplitHostPort(addr)
	tries := 1
	if port == "0" {
		tries = 10
	}
	var err error
	for range tries {
		var pcs []net.PacketConn
		if pcs, err = ListenUDP(addr, n); err != nil {
			return nil, nil, err
		}
		var l net.Listener
		if l, err = net.Listen("tcp", pcs[0].LocalAddr().String()); err == nil {
			return pcs, l, nil
		}
		for _, pc := range pcs {
			pc.Close()
		}
	}
	return nil, nil, fmt.Errorf("listening on %s/tcp: %w", addr, err)
}
