package templates

import (
	"context"
	"os"
	"os/exec"
	"testing"

	"github.com/skydesk/skydeskd/profiles"
)

// testSettings are the shipped defaults (config.Default), written out so
// that a change to the defaults shows up as a golden diff here.
var testSettings = profiles.Settings{
	Provider: profiles.Provider{
		ID: "skydesk.jp", Name: "SkyDesk Mail", ShortName: "SkyDesk",
		HelpURL:          "https://www.skydesk.jp/help/mail/client-settings",
		WebURL:           "https://autoconfig.skydesk.jp",
		AutoconfigHost:   "autoconfig.skydesk.jp",
		AutodiscoverHost: "autodiscover.skydesk.jp",
	},
	PersonalDomain:      "skydesk.jp",
	PersonalPOPHost:     "pop.skydesk.jp",
	OrganizationPOPHost: "poppro.skydesk.jp",
	POPPort:             995,
	SMTPHost:            "smtp.skydesk.jp",
	SMTPImplicitTLSPort: 465,
	SMTPSTARTTLSPort:    587,
}

// idnDomain is a hosted IDN domain (U-labels as a user types it).
const idnDomain = "例え.jp"

func testResolver(t testing.TB) *profiles.Resolver {
	t.Helper()
	idn, err := profiles.ParseDomain(idnDomain)
	if err != nil {
		t.Fatal(err)
	}
	return profiles.NewResolver(testSettings, profiles.DomainSet{"example.co.jp": true, idn: true})
}

// fixture is one address every format is rendered for.
type fixture struct {
	name    string
	address string // as typed; "" = the generic document for domain
	domain  string
}

var fixtures = []fixture{
	{"personal", "Taro.Yamada@skydesk.jp", ""},
	{"organization", "hanako+news@Example.co.jp", ""},
	{"idn", "jiro@" + idnDomain, ""},
	{"escaping", "o'brien&co@example.co.jp", ""}, // & and ' are legal atext: goldens show the entities
	{"generic", "", "example.co.jp"},
}

func (f fixture) resolve(t testing.TB) (profiles.Profile, profiles.Address) {
	t.Helper()
	r := testResolver(t)
	if f.address == "" {
		p, err := r.Lookup(context.Background(), f.domain)
		if err != nil {
			t.Fatal(err)
		}
		return p, profiles.Address{}
	}
	a, p, err := r.Resolve(context.Background(), f.address)
	if err != nil {
		t.Fatal(err)
	}
	return p, a.Fold()
}

// requireTool is storetest.RequireTool without importing the store (the
// templates tests stay pure): missing locally skips, missing in CI fails.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is required in CI: %v", name, err)
	}
	t.Skipf("%s not installed: %v", name, err)
	return ""
}
