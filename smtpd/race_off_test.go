//go:build !race

package smtpd_test

// raceEnabled: the test binary runs under the race detector.
const raceEnabled = false
