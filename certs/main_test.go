package certs_test

import (
	"testing"

	"github.com/skydesk/skydeskd/store/storetest"
)

// TestMain stops the PostgreSQL cluster the tests started under
// storetest.DatabaseEnv=postgres.
func TestMain(m *testing.M) { storetest.Main(m) }
