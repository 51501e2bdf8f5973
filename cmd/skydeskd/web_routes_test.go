package main

import (
	"testing"

	"github.com/skydesk/skydeskd/autoconfig"
	"github.com/skydesk/skydeskd/webui"
)

// TestProfilePathShared: the setup page links to exactly the autoconfig
// service's Apple route (the two packages do not import each other).
func TestProfilePathShared(t *testing.T) {
	if webui.ProfilePath != autoconfig.MobileConfigPath {
		t.Fatalf("web pages link to %q, the route is %q", webui.ProfilePath, autoconfig.MobileConfigPath)
	}
}
