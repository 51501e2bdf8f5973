package smtpd_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skydesk/skydeskd/smtpd"
	"github.com/skydesk/skydeskd/store"
	"github.com/skydesk/skydeskd/store/storetest"
)

// outage is a database that can go away: while down, the store and the
// authenticator fail as the PostgreSQL driver does then.
type outage struct{ down atomic.Bool }

func (o *outage) err() error {
	if o.down.Load() {
		return fmt.Errorf("connecting: %w", store.ErrUnavailable)
	}
	return nil
}

type outageStore struct {
	store.Driver
	o *outage
}

func (s outageStore) AccountExists(ctx context.Context, address string) (bool, error) {
	if err := s.o.err(); err != nil {
		return false, err
	}
	return s.Driver.AccountExists(ctx, address)
}

func (s outageStore) Accept(ctx context.Context, a store.Accepted) ([]int64, int64, error) {
	if err := s.o.err(); err != nil {
		return nil, 0, err
	}
	return s.Driver.Accept(ctx, a)
}

type outageAuth struct {
	*store.Authenticator
	o *outage
}

func (a outageAuth) Login(ctx context.Context, req store.LoginRequest) (store.Login, error) {
	if err := a.o.err(); err != nil {
		return store.Login{}, err
	}
	return a.Authenticator.Login(ctx, req)
}

// With the database away, AUTH is 454 4.7.0 (RFC 4954 §6), RCPT and the
// end of DATA 451 4.3.0: temporary, never a 5xx that would bounce the
// mail or make a client drop the password. It is logged once, not per
// command; once the database is back the same session goes on.
func TestOutage_temporaryReplies(t *testing.T) {
	s := storetest.NewDriver(t)
	storetest.AddUser(t, s, taro, taroPW)
	auth, err := store.NewAuthenticator(s, store.AuthOptions{HashParams: store.TestHashParams})
	if err != nil {
		t.Fatal(err)
	}
	o := &outage{}
	var logs logRecords
	cert := storetest.Certificate(t)
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	srv := smtpd.NewServer(outageStore{s, o}, outageAuth{auth, o}, smtpd.Options{Hostname: "smtp.skydesk.jp",
		TLSConfig: cert.ServerTLS(), Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
		ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second})
	f := &fixture{clientTLS: &tls.Config{RootCAs: pool, ServerName: "smtp.skydesk.jp", MinVersion: tls.VersionTLS12}}
	f.smtps, f.mx = serveOn(t, srv.ServeTLS), serveOn(t, srv.ServeMX)
	t.Cleanup(func() { srv.Close() })

	o.down.Store(true)
	mx := f.dial(t, f.mx, false)
	mx.must("EHLO mx.example", 250)
	mx.must("MAIL FROM:<a@elsewhere.example>", 250)
	for range 3 {
		c, text := mx.cmd("RCPT TO:<" + taro + ">")
		isCode(t, c, text, 451, "4.3.0")
	}
	sub := f.dial(t, f.smtps, true)
	sub.must("EHLO client.example", 250)
	c, text := sub.cmd(plain(taro, taroPW))
	isCode(t, c, text, 454, "4.7.0")

	o.down.Store(false)
	mx.must("RCPT TO:<"+taro+">", 250)
	o.down.Store(true)
	c, text = mx.data(msg("a@elsewhere.example", taro, "during", "body"))
	isCode(t, c, text, 451, "4.3.0")

	o.down.Store(false)
	sub.must(plain(taro, taroPW), 235)
	mx.must("MAIL FROM:<a@elsewhere.example>", 250)
	mx.must("RCPT TO:<"+taro+">", 250)
	c, text = mx.data(msg("a@elsewhere.example", taro, "after", "body"))
	isCode(t, c, text, 250, "2.0.0")
	if n := len(logs.find(slog.LevelWarn, "database unavailable")); n != 2 { // once per service (MX, submission)
		t.Errorf("the outage was logged %d times, want once per service", n)
	}
}
