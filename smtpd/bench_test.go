package smtpd_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// BenchmarkSubmission465 measures the whole submission path on 465: TLS,
// AUTH (cached after the first), and 10 messages of 20 KB per session,
// delivered durably into a real SQLite store, sessions in parallel.
func BenchmarkSubmission465(b *testing.B) {
	f := newFixture(b, fixtureOpts{batch: true, maxSize: 1 << 20})
	var body bytes.Buffer
	body.WriteString("From: <" + taro + ">\r\nTo: <" + hanako + ">\r\nSubject: bench\r\n\r\n")
	for body.Len() < 20000 {
		body.WriteString(strings.Repeat("abcdefghij", 7) + "\r\n")
	}
	msg := body.Bytes()
	b.SetParallelism(8) // 16 sessions on 2 cores, as in the rig
	sendParallel(b, func() (*smtp.Client, error) {
		c, err := smtp.DialTLS(f.smtps, f.clientTLS)
		if err == nil {
			err = c.Auth(sasl.NewPlainClient("", taro, taroPW))
		}
		return c, err
	}, taro, hanako, msg)
}
