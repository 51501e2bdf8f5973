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
	b.SetBytes(int64(len(msg)))
	b.SetParallelism(8) // 16 sessions on 2 cores, as in the rig
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var c *smtp.Client
		sent := 0
		for pb.Next() {
			if c == nil {
				var err error
				if c, err = smtp.DialTLS(f.smtps, f.clientTLS); err != nil {
					b.Error(err)
					return
				}
				if err := c.Auth(sasl.NewPlainClient("", taro, taroPW)); err != nil {
					b.Error(err)
					return
				}
			}
			if err := c.SendMail(taro, []string{hanako}, bytes.NewReader(msg)); err != nil {
				b.Error(err)
				return
			}
			if sent++; sent == 10 {
				_ = c.Quit()
				c, sent = nil, 0
			}
		}
		if c != nil {
			_ = c.Quit()
		}
	})
}
