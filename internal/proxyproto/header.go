// Package proxyproto reads the PROXY protocol header a load balancer
// (HAProxy's send-proxy and send-proxy-v2, nginx, AWS NLB, …) puts in
// front of a TCP connection to say which client it accepted, so that the
// server behind it sees the client's address instead of the balancer's.
//
// Spec: HAProxy's "The PROXY protocol, Versions 1 & 2"
// (doc/proxy-protocol.txt). Version 1 is one text line of at most 107
// octets; version 2 is a 16-octet binary preamble followed by the
// addresses and optional TLVs. Both are read strictly: a malformed or
// oversized header is an error and the connection is closed, never
// passed on with a guess.
package proxyproto

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Errors of ReadHeader, for errors.Is.
var (
	// ErrNoHeader: the connection did not start with a PROXY header.
	ErrNoHeader = errors.New("proxyproto: no PROXY protocol header")
	// ErrMalformed: the header broke the spec.
	ErrMalformed = errors.New("proxyproto: malformed header")
	// ErrTooLong: the header is longer than this package accepts.
	ErrTooLong = errors.New("proxyproto: header too long")
)

const (
	// v1MaxLen is the spec's bound on a version 1 line, CRLF included
	// (§2.1: "a receiver … must not need more than 107 bytes").
	v1MaxLen = 107
	// MaxV2Payload bounds what follows a version 2 preamble: 216 octets
	// of addresses (AF_UNIX, the largest) and room for TLVs such as
	// PP2_TYPE_AUTHORITY (the SNI) and PP2_TYPE_SSL. The spec allows up
	// to 65535; nothing a balancer sends about a TCP client needs that.
	MaxV2Payload = 2048
)

// v2Sig is the 12-octet version 2 signature (§2.2).
var v2Sig = []byte("\r\n\r\n\x00\r\nQUIT\n")

// Header is what a PROXY header said.
type Header struct {
	// Version is 1 or 2.
	Version int
	// Local is set for a version 2 LOCAL command (the balancer's own
	// health check) and a version 1 "UNKNOWN" line: the connection's
	// own addresses stand, Source and Destination are zero.
	Local bool
	// Source is the client's address as the balancer saw it
	// (IPv4-mapped IPv6 unmapped, as connlimit counts them).
	Source netip.AddrPort
	// Destination is the address the client connected to.
	Destination netip.AddrPort
}

// ReadHeader reads one PROXY header, version 1 or 2, from r, consuming
// exactly the header. The caller bounds the time (a read deadline).
func ReadHeader(r *bufio.Reader) (Header, error) {
	first, err := r.Peek(1)
	if err != nil {
		return Header{}, fmt.Errorf("proxyproto: reading header: %w", err)
	}
	switch first[0] {
	case 'P':
		return readV1(r)
	case '\r':
		return readV2(r)
	}
	return Header{}, ErrNoHeader
}

// readV1 parses "PROXY TCP4|TCP6 src dst sport dport\r\n" or
// "PROXY UNKNOWN …\r\n" (§2.1).
func readV1(r *bufio.Reader) (Header, error) {
	var line []byte
	for len(line) < v1MaxLen {
		b, err := r.ReadByte()
		if err != nil {
			return Header{}, fmt.Errorf("proxyproto: reading v1 header: %w", err)
		}
		line = append(line, b)
		if b == '\n' {
			break
		}
	}
	if !bytes.HasSuffix(line, []byte("\r\n")) {
		if len(line) >= v1MaxLen {
			return Header{}, ErrTooLong
		}
		return Header{}, fmt.Errorf("%w: v1 line not ended by CRLF", ErrMalformed)
	}
	f := strings.Split(string(line[:len(line)-2]), " ")
	if f[0] != "PROXY" || len(f) < 2 {
		return Header{}, ErrNoHeader
	}
	h := Header{Version: 1}
	switch f[1] {
	case "UNKNOWN":
		// §2.1: the rest of the line is to be ignored.
		h.Local = true
		return h, nil
	case "TCP4", "TCP6":
	default:
		return Header{}, fmt.Errorf("%w: v1 protocol %q", ErrMalformed, f[1])
	}
	if len(f) != 6 {
		return Header{}, fmt.Errorf("%w: v1 wants 6 fields, got %d", ErrMalformed, len(f))
	}
	src, err1 := v1Addr(f[1], f[2], f[4])
	dst, err2 := v1Addr(f[1], f[3], f[5])
	if err := errors.Join(err1, err2); err != nil {
		return Header{}, err
	}
	h.Source, h.Destination = src, dst
	return h, nil
}

// v1Addr parses one address and port of a v1 line: the family must match
// the protocol, ports are decimal without leading zeros (§2.1).
func v1Addr(proto, ip, port string) (netip.AddrPort, error) {
	a, err := netip.ParseAddr(ip)
	if err != nil || a.Zone() != "" || (proto == "TCP4") != a.Is4() {
		return netip.AddrPort{}, fmt.Errorf("%w: v1 %s address %q", ErrMalformed, proto, ip)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || port != strconv.FormatUint(p, 10) {
		return netip.AddrPort{}, fmt.Errorf("%w: v1 port %q", ErrMalformed, port)
	}
	return netip.AddrPortFrom(a.Unmap(), uint16(p)), nil
}

// readV2 parses the binary header (§2.2): signature, version and command,
// family and transport, payload length, then the addresses and TLVs.
func readV2(r *bufio.Reader) (Header, error) {
	var pre [16]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return Header{}, fmt.Errorf("proxyproto: reading v2 header: %w", err)
	}
	if !bytes.Equal(pre[:12], v2Sig) {
		return Header{}, ErrNoHeader
	}
	if pre[12]>>4 != 2 {
		return Header{}, fmt.Errorf("%w: v2 version %d", ErrMalformed, pre[12]>>4)
	}
	cmd, fam := pre[12]&0x0f, pre[13]
	n := int(binary.BigEndian.Uint16(pre[14:16]))
	if n > MaxV2Payload {
		return Header{}, ErrTooLong
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return Header{}, fmt.Errorf("proxyproto: reading v2 payload: %w", err)
	}
	h := Header{Version: 2}
	switch cmd {
	case 0x0: // LOCAL: the balancer's own connection; §2.2 says ignore the addresses
		h.Local = true
		return h, nil
	case 0x1: // PROXY
	default:
		return Header{}, fmt.Errorf("%w: v2 command %#x", ErrMalformed, cmd)
	}
	var size int
	switch fam {
	case 0x11: // TCP over IPv4
		size = 12
	case 0x21: // TCP over IPv6
		size = 36
	case 0x00, 0x31: // UNSPEC, UNIX stream: no IP client to name; §2.2
		// lets the receiver keep the connection's own addresses.
		h.Local = true
		return h, nil
	default: // UDP (0x12, 0x22), UNIX datagram: not a TCP listener's traffic
		return Header{}, fmt.Errorf("%w: v2 family/transport %#x on a stream", ErrMalformed, fam)
	}
	if n < size {
		return Header{}, fmt.Errorf("%w: v2 payload %d octets, addresses need %d", ErrMalformed, n, size)
	}
	al := size/2 - 2 // 4 or 16: source, destination, then the two ports
	src, _ := netip.AddrFromSlice(payload[:al])
	dst, _ := netip.AddrFromSlice(payload[al : 2*al])
	h.Source = netip.AddrPortFrom(src.Unmap(), binary.BigEndian.Uint16(payload[2*al:]))
	h.Destination = netip.AddrPortFrom(dst.Unmap(), binary.BigEndian.Uint16(payload[2*al+2:]))
	if err := checkTLVs(payload[size:]); err != nil {
		return Header{}, err
	}
	return h, nil
}

// checkTLVs checks that the TLVs after the addresses (§2.2.7) tile the
// rest of the payload exactly; their contents are not used.
func checkTLVs(b []byte) error {
	for len(b) > 0 {
		if len(b) < 3 {
			return fmt.Errorf("%w: v2 truncated TLV", ErrMalformed)
		}
		l := 3 + int(binary.BigEndian.Uint16(b[1:3]))
		if l > len(b) {
			return fmt.Errorf("%w: v2 TLV longer than the payload", ErrMalformed)
		}
		b = b[l:]
	}
	return nil
}

// tcpAddr converts an address of the header to what net.Conn.RemoteAddr
// returns for TCP (popstore and others assert *net.TCPAddr).
func tcpAddr(ap netip.AddrPort) *net.TCPAddr { return net.TCPAddrFromAddrPort(ap) }
