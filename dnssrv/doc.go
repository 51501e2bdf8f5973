// Package dnssrv is skydeskd's authoritative DNS server: the DNS view of the
// same profiles.Profile every HTTP format renders (DESIGN.md §3, §5).
//
// It is authoritative for the provider zone and for every hosted domain,
// and answers from in-memory zones rebuilt when the domain list changes
// (Handler.Reload), never with a database query per packet. A zone is
// kept from one rebuild to the next while its domain stays hosted (the
// SOA serial, the one thing every change touches, is applied as answers
// are made), so a domain added to 10,000 builds one zone, in
// milliseconds, on every node (issue 14).
//
// Specifications implemented:
//   - RFC 1034/1035: authoritative answers (AA), NXDOMAIN vs NODATA with the
//     SOA in the authority section, CNAME chasing inside our own data,
//     REFUSED for names outside our zones.
//   - RFC 2181 §9: TC is set only when the answer itself does not fit;
//     additional records are dropped silently first.
//   - RFC 2308: negative answers carry the SOA with TTL min(TTL, MINIMUM).
//   - RFC 2782, RFC 6186, RFC 8314 §5.1: _pop3s, _pop3, _imap, _imaps,
//     _submission and _submissions SRV records; target "." for services
//     not offered. MS-OXDISCO: _autodiscover._tcp.
//   - RFC 6891: EDNS(0), the requester's UDP payload size honoured up to
//     Options.MaxUDPSize, BADVERS for versions other than 0, DO copied.
//   - RFC 7766: the same answers over TCP, without truncation.
//   - RFC 8020: empty non-terminals (e.g. _tcp.example.co.jp) are NODATA.
//   - RFC 8482: ANY is answered with one RRset, never the whole node.
//   - draft-vixie-dnsext-dns0x20: the query name's letter case is kept in
//     the question and in answer owner names.
//   - Response Rate Limiting, the Vixie/Schryver design of BIND's
//     rate-limit and NSD's rrl-* (Options.RRL, on by default): UDP answers
//     are counted per client network (IPv4 /24, IPv6 /56) and answer
//     class (name and type; NXDOMAIN per zone; errors together), 20 a
//     second; past that every second answer is sent empty with TC set
//     (the "slip", so a real resolver retries over TCP) and the others
//     dropped. TCP is never limited. Limited answers are counted
//     (Handler.RateLimited) and summarised in the log at most once a
//     minute, never logged one by one.
//
// Speed (DESIGN.md §7): Server reads the sockets itself, one UDP socket
// per CPU on the same port (SO_REUSEPORT), and Handler.AnswerWire answers
// a question seen before in this zone generation by patching a cached,
// packed template (ID, RD/CD, the question's letter case): no unpacking,
// no allocation. Over UDP (Handler.AnswerUDP) the rate limiting check
// follows: the answer's class is kept with the template, so it costs a
// multiply-hash of the client prefix, a clock read and one
// compare-and-swap on a fixed table, without a lock or allocation.
// Everything else, including every malformed packet, takes the slow path
// through miekg/dns (Handler.Answer), which the fast path is fuzzed
// against (FuzzAnswerWire). Handler also implements dns.Handler for use
// under miekg/dns's own server, without RRL (that server's UDP is its
// owner's to limit).
//
// miekg/dns is used only in this package (STYLE.md); callers see strings,
// Record and Result.
package dnssrv
