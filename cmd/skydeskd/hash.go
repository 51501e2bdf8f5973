package main

import "github.com/skydesk/skydeskd/store"

// hashParams returns the password-hash parameters. SKYDESKD_TEST_FAST_HASH=1
// selects cheap ones; it exists for the test suite only and is documented
// as such. It is read through the env seam like every other variable; a
// nil getenv (a command without one) means the shipped parameters.
func hashParams(getenv func(string) string) store.HashParams {
	if getenv != nil && getenv("SKYDESKD_TEST_FAST_HASH") == "1" {
		return store.TestHashParams
	}
	return store.DefaultHashParams
}
