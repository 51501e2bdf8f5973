package proxyproto

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"strings"
	"testing"
)

// v2 builds a version 2 header: command, family, then the payload.
func v2(cmd, fam byte, payload ...[]byte) string {
	var p []byte
	for _, b := range payload {
		p = append(p, b...)
	}
	h := append([]byte(nil), v2Sig...)
	h = append(h, 0x20|cmd, fam)
	h = binary.BigEndian.AppendUint16(h, uint16(len(p)))
	return string(append(h, p...))
}

func ip(s string) []byte { return netip.MustParseAddr(s).AsSlice() }

func ports(src, dst uint16) []byte {
	return binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(nil, src), dst)
}

func TestReadHeader(t *testing.T) {
	v4 := [][]byte{ip("192.0.2.7"), ip("198.51.100.1"), ports(51000, 995)}
	v6 := [][]byte{ip("2001:db8::7"), ip("2001:db8::1"), ports(51000, 25)}
	for _, tc := range []struct {
		name, in string
		src, dst string // "" for a LOCAL header
		local    bool
		err      error
	}{
		{name: "v1 tcp4", in: "PROXY TCP4 192.0.2.7 198.51.100.1 51000 995\r\n", src: "192.0.2.7:51000", dst: "198.51.100.1:995"},
		{name: "v1 tcp6", in: "PROXY TCP6 2001:db8::7 2001:db8::1 51000 25\r\n", src: "[2001:db8::7]:51000", dst: "[2001:db8::1]:25"},
		{name: "v1 unknown", in: "PROXY UNKNOWN ffff:f...f:ffff 8.8.8.8 65535 65535\r\n", local: true},
		{name: "v1 unknown bare", in: "PROXY UNKNOWN\r\n", local: true},
		{name: "v1 longest", in: "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n",
			src: "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535", dst: "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"},
		{name: "v1 family mismatch", in: "PROXY TCP4 2001:db8::7 198.51.100.1 1 2\r\n", err: ErrMalformed},
		{name: "v1 leading zero port", in: "PROXY TCP4 192.0.2.7 198.51.100.1 0995 995\r\n", err: ErrMalformed},
		{name: "v1 port out of range", in: "PROXY TCP4 192.0.2.7 198.51.100.1 65536 995\r\n", err: ErrMalformed},
		{name: "v1 missing field", in: "PROXY TCP4 192.0.2.7 198.51.100.1 995\r\n", err: ErrMalformed},
		{name: "v1 double space", in: "PROXY TCP4  192.0.2.7 198.51.100.1 1 995\r\n", err: ErrMalformed},
		{name: "v1 udp", in: "PROXY UDP4 192.0.2.7 198.51.100.1 1 53\r\n", err: ErrMalformed},
		{name: "v1 bare LF", in: "PROXY TCP4 192.0.2.7 198.51.100.1 1 995\n", err: ErrMalformed},
		{name: "v1 oversized", in: "PROXY TCP4 " + strings.Repeat("1", 120) + "\r\n", err: ErrTooLong},
		{name: "v1 not proxy", in: "PROXZ TCP4 192.0.2.7 198.51.100.1 1 2\r\n", err: ErrNoHeader},
		{name: "pop3 command", in: "USER alice\r\n", err: ErrNoHeader},
		{name: "tls hello", in: "\x16\x03\x01\x02\x00", err: ErrNoHeader},
		{name: "v2 tcp4", in: v2(1, 0x11, v4...), src: "192.0.2.7:51000", dst: "198.51.100.1:995"},
		{name: "v2 tcp6", in: v2(1, 0x21, v6...), src: "[2001:db8::7]:51000", dst: "[2001:db8::1]:25"},
		{name: "v2 v4-mapped", in: v2(1, 0x21, ip("::ffff:192.0.2.7"), ip("2001:db8::1"), ports(1, 2)), src: "192.0.2.7:1", dst: "[2001:db8::1]:2"},
		{name: "v2 tcp4 with TLVs", in: v2(1, 0x11, append(v4, []byte{0x02, 0, 4, 'm', 'a', 'i', 'l'}, []byte{0x04, 0, 0})...), src: "192.0.2.7:51000", dst: "198.51.100.1:995"},
		{name: "v2 local", in: v2(0, 0x00), local: true},
		{name: "v2 local with addresses", in: v2(0, 0x11, v4...), local: true},
		{name: "v2 unspec", in: v2(1, 0x00), local: true},
		{name: "v2 udp", in: v2(1, 0x12, v4...), err: ErrMalformed},
		{name: "v2 bad command", in: v2(2, 0x11, v4...), err: ErrMalformed},
		{name: "v2 version 1", in: v2Str(0x11, 0x11, 12) + string(make([]byte, 12)), err: ErrMalformed},
		{name: "v2 short addresses", in: v2(1, 0x21, v4...), err: ErrMalformed},
		{name: "v2 truncated TLV", in: v2(1, 0x11, append(v4, []byte{0x02, 0})...), err: ErrMalformed},
		{name: "v2 TLV overruns", in: v2(1, 0x11, append(v4, []byte{0x02, 0, 9, 'x'})...), err: ErrMalformed},
		{name: "v2 oversized", in: v2(1, 0x11, v4[0], v4[1], v4[2], make([]byte, MaxV2Payload)), err: ErrTooLong},
		{name: "v2 bad signature", in: "\r\n\r\n\x00\r\nQUIZ\n\x21\x11\x00\x0c", err: ErrNoHeader},
		{name: "v2 payload cut", in: v2(1, 0x11, v4...)[:20], err: io.ErrUnexpectedEOF},
		{name: "empty", in: "", err: io.EOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			if tc.err == nil {
				in += "rest"
			}
			r := bufio.NewReaderSize(strings.NewReader(in), 256)
			h, err := ReadHeader(r)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.Local != tc.local {
				t.Fatalf("Local = %v", h.Local)
			}
			if !tc.local && (h.Source.String() != tc.src || h.Destination.String() != tc.dst) {
				t.Fatalf("got %s → %s, want %s → %s", h.Source, h.Destination, tc.src, tc.dst)
			}
			// Exactly the header is consumed.
			if rest, _ := io.ReadAll(r); string(rest) != "rest" {
				t.Fatalf("after the header: %q", rest)
			}
		})
	}
}

// v2Str is a preamble with arbitrary version/command and family octets.
func v2Str(verCmd, fam byte, n uint16) string {
	h := append(append([]byte(nil), v2Sig...), verCmd, fam)
	return string(binary.BigEndian.AppendUint16(h, n))
}

func FuzzReadHeader(f *testing.F) {
	f.Add([]byte("PROXY TCP4 192.0.2.7 198.51.100.1 51000 995\r\n"))
	f.Add([]byte(v2(1, 0x21, ip("2001:db8::7"), ip("2001:db8::1"), ports(1, 2))))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bufio.NewReaderSize(strings.NewReader(string(b)), 256)
		h, err := ReadHeader(r)
		if err == nil && !h.Local && !h.Source.IsValid() {
			t.Fatalf("header without a source: %+v", h)
		}
	})
}
