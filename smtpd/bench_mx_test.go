package smtpd_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/skydesk/skydeskd/rspamd"
	"github.com/skydesk/skydeskd/rspamd/rspamdtest"
	"github.com/skydesk/skydeskd/smtpd"
)

// BenchmarkMX measures inbound mail on the MX, without a filter (the
// header-derived flag) and through a real rspamd (one worker, the test
// configuration), in the same run: 10 messages of about 4 KB per session,
// sessions in parallel, delivered durably into SQLite with group commit.
// The msgs/s metric is the comparison.
func BenchmarkMX(b *testing.B) {
	var body bytes.Buffer
	body.WriteString(mxHead + "Subject: bench\r\n\r\n")
	for body.Len() < 4000 {
		body.WriteString("The quarterly report is attached; see the figures on page two.\r\n")
	}
	msg := body.Bytes()
	b.Run("no-filter", func(b *testing.B) {
		benchMX(b, newFixture(b, fixtureOpts{batch: true, maxSize: 1 << 20, tune: noMXRates}), msg)
	})
	b.Run("rspamd", func(b *testing.B) {
		srv := rspamdtest.Start(b)
		sc := rspamdClient(b, srv.URL, rspamd.TempFail, nil) // an error fails the run
		benchMX(b, newFixture(b, fixtureOpts{batch: true, maxSize: 1 << 20, scanner: sc, tune: noMXRates}), msg)
	})
}

func benchMX(b *testing.B, f *fixture, msg []byte) {
	b.SetParallelism(4) // 8 sessions on 2 cores
	sendParallel(b, func() (*smtp.Client, error) {
		c, err := smtp.Dial(f.mx)
		if err == nil {
			err = c.Hello("mta.example.org")
		}
		return c, err
	}, "news@example.org", taro, msg)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// sendParallel sends msg b.N times from parallel sessions opened by open,
// 10 messages per session.
func sendParallel(b *testing.B, open func() (*smtp.Client, error), from, to string, msg []byte) {
	b.SetBytes(int64(len(msg)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var c *smtp.Client
		sent := 0
		for pb.Next() {
			if c == nil {
				var err error
				if c, err = open(); err != nil {
					if c != nil {
						c.Close()
					}
					b.Error(err)
					return
				}
			}
			if err := c.SendMail(from, []string{to}, bytes.NewReader(msg)); err != nil {
				b.Error(strings.TrimSpace(err.Error()))
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

// noMXRates lifts the MX rates per client network: the benchmark's one
// address stands for the many senders of a real MX.
func noMXRates(o *smtpd.Options) { o.MXMessagesPerMinute, o.MXBytesPerMinute = -1, -1 }
