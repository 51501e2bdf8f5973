package postgres_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/netip"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/skydesk/skydeskd/popd"
	"github.com/skydesk/skydeskd/popstore"
	"github.com/skydesk/skydeskd/store"
	"github.com/skydesk/skydeskd/store/postgres/pgtest"
	"github.com/skydesk/skydeskd/store/storetest"
)

// BenchmarkLoginCached is store's benchmark of the same name on
// PostgreSQL: a cached login is one credentials read.
func BenchmarkLoginCached(b *testing.B) {
	ctx := context.Background()
	s := open(b, pgtest.URL(b))
	if _, err := s.AddAccount(ctx, store.NewAccount{Address: "taro@skydesk.jp", Password: "right-password"}); err != nil {
		b.Fatal(err)
	}
	a, err := store.NewAuthenticator(s, store.AuthOptions{HashParams: store.TestHashParams})
	if err != nil {
		b.Fatal(err)
	}
	req := store.LoginRequest{Username: "taro@skydesk.jp", Password: "right-password",
		Remote: netip.MustParseAddr("192.0.2.1"), Service: store.ServicePOP3}
	if _, err := a.Login(ctx, req); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := a.Login(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMaildrop_Retr20KB is popstore's benchmark of the same name on
// PostgreSQL: RETR of a 20 KB message over POP3S on loopback.
func BenchmarkMaildrop_Retr20KB(b *testing.B) {
	ctx := context.Background()
	s := open(b, pgtest.URL(b))
	storetest.AddUser(b, s, "taro@skydesk.jp", "right-password")
	body := "Subject: x\r\n\r\n" + strings.Repeat(strings.Repeat("y", 78)+"\r\n", 250)
	if _, err := s.Deliver(ctx, store.Delivery{Recipients: []string{"taro@skydesk.jp"}, Body: []byte(body)}); err != nil {
		b.Fatal(err)
	}
	auth, err := store.NewAuthenticator(s, store.AuthOptions{HashParams: store.TestHashParams})
	if err != nil {
		b.Fatal(err)
	}
	be, err := popstore.New(popstore.Options{Auth: auth, Store: s, SettingsURL: "https://autoconfig.skydesk.jp/settings"})
	if err != nil {
		b.Fatal(err)
	}
	cert := storetest.Certificate(b)
	srv := popd.NewServer(be, popd.Options{Hostname: "pop.skydesk.jp", TLSConfig: cert.ServerTLS()})
	l, err := tls.Listen("tcp", "127.0.0.1:0", cert.ServerTLS())
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	b.Cleanup(func() { srv.Close() })
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	nc, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{RootCAs: pool, ServerName: "pop.skydesk.jp"})
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	c := textproto.NewReader(bufio.NewReader(nc))
	expect := func(line string) {
		if line != "" {
			fmt.Fprintf(nc, "%s\r\n", line)
		}
		if l, err := c.ReadLine(); err != nil || !strings.HasPrefix(l, "+OK") {
			b.Fatalf("%s: %q, %v", line, l, err)
		}
	}
	expect("")
	expect("USER taro@skydesk.jp")
	expect("PASS right-password")
	b.ReportAllocs()
	for b.Loop() {
		_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
		expect("RETR 1")
		if _, err := c.ReadDotBytes(); err != nil {
			b.Fatal(err)
		}
	}
}
