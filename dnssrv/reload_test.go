package dnssrv_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/skydesk/skydeskd/dnssrv"
	"github.com/skydesk/skydeskd/profiles"
)

// manyDomains returns n hosted domain names, sorted as the store lists
// them.
func manyDomains(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("d%05d.example", i)
	}
	return out
}

// BenchmarkReload measures Handler.Reload at 10,000 hosted domains when
// one domain changed: each op adds "new.example" or removes it again, so
// the list alternates between 10,000 and 10,001 domains (the serial
// changes every time, as the store's does). The snapshot hands out
// prebuilt lists, so only dnssrv's work is measured.
func BenchmarkReload(b *testing.B) {
	base := manyDomains(10_000)
	lists := [2][]string{base, append(append([]string(nil), base...), "new.example")}
	serial, cur := uint32(1), 0
	snap := func() (uint32, []string) { return serial, lists[cur] }
	r := profiles.NewResolver(settings, &domains{})
	h, err := dnssrv.NewHandler(testOptions(r), snap)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		serial++
		cur = 1 - cur
		h.Reload()
	}
}

// zoneLogs returns the zone warnings and notes logged since the last
// call, as "level message key=value ..." text (the "rebuilt" line, which
// counts the zones built, left out), and forgets them.
func (l *logRecords) zoneLogs() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, r := range l.recs {
		if strings.Contains(r.Message, "rebuilt") {
			continue
		}
		line := r.Level.String() + " " + r.Message
		r.Attrs(func(a slog.Attr) bool { line += " " + a.String(); return true })
		out = append(out, line)
	}
	l.recs = nil
	return out
}

// TestReload_sameAsFresh: after each change of the domain list, a
// Handler that Reloads answers every question byte for byte as a Handler
// built from scratch on the same list, and logs the same warnings. The
// changes move service hosts between zones (smtp.skydesk.jp hosted from
// the start, so the provider zone is first built without its address,
// then not hosted, then hosted again), nest zones (sub.new.example under new.example) and remove
// the last organization, whose unaddressed POP host (poppro.skydesk.jp,
// left out of the addresses here) must then stop being warned about.
func TestReload_sameAsFresh(t *testing.T) {
	dom := &domains{serial: 1, list: []string{"example.co.jp", "smtp.skydesk.jp"}}
	r := profiles.NewResolver(settings, dom)
	options := func(log *logRecords) dnssrv.Options {
		o := testOptions(r)
		delete(o.Addresses, "poppro.skydesk.jp")
		o.Logger = slog.New(log)
		return o
	}
	logs := &logRecords{}
	h, err := dnssrv.NewHandler(options(logs), dom.snapshot)
	if err != nil {
		t.Fatal(err)
	}
	logs.zoneLogs()
	names := []string{"", "_pop3s._tcp.", "_submissions._tcp.", "_submission._tcp.", "_pop3._tcp.", "_imaps._tcp.",
		"_autodiscover._tcp.", "_tcp.", "autoconfig.", "autodiscover.", "nothing.", "smtp.", "pop.", "big.", "ns1.", "ns2.", "x.sub."}
	types := []uint16{dns.TypeSOA, dns.TypeNS, dns.TypeSRV, dns.TypeA, dns.TypeAAAA, dns.TypeMX, dns.TypeCNAME, dns.TypeANY, dns.TypeTXT}
	for i, list := range [][]string{
		{"example.co.jp"},
		{"example.co.jp", "new.example"},
		{"example.co.jp", "new.example", "smtp.skydesk.jp"},
		{"example.co.jp", "new.example", "smtp.skydesk.jp", "sub.new.example"},
		{"new.example", "sub.new.example"},
		{"sub.new.example"},
		{"skydesk.jp"},
		{"example.co.jp"},
	} {
		dom.set(uint32(2+i), list...)
		h.Reload()
		freshLogs := &logRecords{}
		fresh, err := dnssrv.NewHandler(options(freshLogs), dom.snapshot)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := h.Zones(), fresh.Zones(); !slices.Equal(got, want) {
			t.Fatalf("%v: zones %q, want %q", list, got, want)
		}
		if got, want := logs.zoneLogs(), freshLogs.zoneLogs(); !slices.Equal(got, want) {
			t.Errorf("%v: logged\n%q\nwant\n%q", list, got, want)
		}
		for _, apex := range append(h.Zones(), "skydesk.jp.", "elsewhere.example.") {
			for _, name := range names {
				for _, qt := range types {
					for _, edns := range []uint16{0, 1232} {
						q := query(name+apex, qt, edns)
						got, _, _ := h.Answer(q, true)
						want, _, _ := fresh.Answer(q, true)
						if !bytes.Equal(got, want) {
							t.Fatalf("%v: %s %s edns %d: answers differ", list, name+apex, dns.TypeToString[qt], edns)
						}
					}
				}
			}
		}
	}
}
