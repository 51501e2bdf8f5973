package postgres_test

import (
	"bytes"
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/skydesk/skydeskd/store"
	"github.com/skydesk/skydeskd/store/postgres/pgtest"
)

// A failed login leaves three rows in the shared throttle, each keyed by
// a 32-byte hash: neither the client's address nor the account name is
// stored in clear.
func TestThrottle_keysAreHashed(t *testing.T) {
	ctx := t.Context()
	s := open(t, pgtest.URL(t))
	a, err := store.NewAuthenticator(s, store.AuthOptions{HashParams: store.TestHashParams})
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.Login(ctx, store.LoginRequest{Username: "taro@skydesk.jp", Password: "guess",
		Remote: netip.MustParseAddr("192.0.2.77"), Service: store.ServicePOP3})
	if _, ok := err.(*store.AuthError); !ok {
		t.Fatalf("login: %v", err)
	}
	var n int
	var keys []byte
	if err := s.QueryRowForTest(ctx, `SELECT count(*), string_agg(key_hash, ''::bytea) FROM throttle
		WHERE length(key_hash) = 32`).Scan(&n, &keys); err != nil || n != 3 {
		t.Fatalf("throttle rows of 32-byte keys: %d, %v; want 3", n, err)
	}
	for _, clear := range []string{"192.0.2", "taro", "skydesk"} {
		if bytes.Contains(keys, []byte(clear)) {
			t.Errorf("a throttle key holds %q in clear", clear)
		}
	}
}

// BenchmarkThrottleFailure is one failed login's write to the shared
// throttle: three keys read, locked and rewritten in one transaction.
func BenchmarkThrottleFailure(b *testing.B) {
	ctx := context.Background()
	s := open(b, pgtest.URL(b))
	keys := []string{"n\x00192.0.2.1/32", "p\x00192.0.2.1/32\x00taro@skydesk.jp", "a\x00taro@skydesk.jp"}
	for b.Loop() {
		now := time.Now()
		err := s.UpdateThrottle(ctx, now, keys, func(bs []store.ThrottleBucket) []store.ThrottleBucket {
			for i := range bs {
				bs[i] = store.ThrottleBucket{Level: 1, At: now, Expires: now.Add(time.Hour)}
			}
			return bs
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
