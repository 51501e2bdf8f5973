package main

import (
	"os"

	"github.com/skydesk/skydeskd/store"
)

// hashParams returns the password-hash parameters. SKYDESKD_TEST_FAST_HASH=1
// selects cheap ones; it exists for the test suite only and is documented
// as such.
func hashParams() store.HashParams {
	if os.Getenv("SKYDESKD_TEST_FAST_HASH") == "1" {
		return store.TestHashParams
	}
	return store.DefaultHashParams
}
