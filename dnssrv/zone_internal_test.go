package dnssrv

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/skydesk/skydeskd/profiles"
)

// TestReload_buildsOnlyChanged: with 1,000 hosted domains, a Reload after
// one domain is added builds that zone alone and keeps every other zone
// (the same pointer); one after a domain that takes a service host from
// the provider zone is added builds that domain's zone and the provider
// zone again, and nothing else.
func TestReload_buildsOnlyChanged(t *testing.T) {
	var hosted []string
	for i := range 1000 {
		hosted = append(hosted, fmt.Sprintf("d%04d.example", i))
	}
	serial, list := uint32(1), hosted
	r := profiles.NewResolver(profiles.Settings{
		Provider:       profiles.Provider{AutoconfigHost: "autoconfig.skydesk.jp", AutodiscoverHost: "autodiscover.skydesk.jp"},
		PersonalDomain: "skydesk.jp", PersonalPOPHost: "pop.skydesk.jp", OrganizationPOPHost: "poppro.skydesk.jp",
		POPPort: 995, SMTPHost: "smtp.skydesk.jp", SMTPImplicitTLSPort: 465, SMTPSTARTTLSPort: 587,
	}, nil)
	lo := []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	h, err := NewHandler(Options{
		Profile: r.ProfileFor, PersonalDomain: "skydesk.jp", Nameservers: []string{"ns1.skydesk.jp"},
		Addresses: map[string][]netip.Addr{"ns1.skydesk.jp": lo, "smtp.skydesk.jp": lo, "pop.skydesk.jp": lo},
	}, func() (uint32, []string) { return serial, list })
	if err != nil {
		t.Fatal(err)
	}
	// reload changes the list and reports the zones built: the apexes
	// whose zone is not the one before.
	reload := func(next []string) []string {
		t.Helper()
		before := h.zones.Load()
		serial, list = serial+1, next
		h.Reload()
		after := h.zones.Load()
		if after.serial != serial {
			t.Fatalf("serial %d, want %d", after.serial, serial)
		}
		var built []string
		for _, apex := range after.apexes() {
			if after.byApex[apex] != before.byApex[apex] {
				built = append(built, apex)
			}
		}
		return built
	}
	added := append(append([]string(nil), hosted...), "new.example")
	if built := reload(added); fmt.Sprint(built) != "[new.example.]" {
		t.Fatalf("adding new.example built %q, want only its zone", built)
	}
	if built := reload(hosted); len(built) != 0 {
		t.Fatalf("removing new.example built %q, want none", built)
	}
	// smtp.skydesk.jp hosted: its address moves there from skydesk.jp.
	if built := reload(append(append([]string(nil), hosted...), "smtp.skydesk.jp")); fmt.Sprint(built) != "[skydesk.jp. smtp.skydesk.jp.]" {
		t.Fatalf("adding smtp.skydesk.jp built %q, want it and skydesk.jp.", built)
	}
	if n := h.zones.Load().byApex["skydesk.jp."].nodes["smtp.skydesk.jp."]; n != nil {
		t.Fatalf("skydesk.jp. still has smtp.skydesk.jp.: %v", n.sets)
	}
	if built := reload(hosted); fmt.Sprint(built) != "[skydesk.jp.]" {
		t.Fatalf("removing smtp.skydesk.jp built %q, want skydesk.jp. again", built)
	}
	if h.zones.Load().byApex["skydesk.jp."].nodes["smtp.skydesk.jp."] == nil {
		t.Fatal("smtp.skydesk.jp. not back in skydesk.jp.")
	}
}
