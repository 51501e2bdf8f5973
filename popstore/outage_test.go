package popstore_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skydesk/skydeskd/popstore"
	"github.com/skydesk/skydeskd/store"
	"github.com/skydesk/skydeskd/store/storetest"
)

// outageDriver is a driver whose database can go away: while down, the
// calls a POP3 session makes fail as the PostgreSQL driver's do then.
type outageDriver struct {
	store.Driver
	down atomic.Bool
}

func (d *outageDriver) err() error {
	if d.down.Load() {
		return fmt.Errorf("connecting: %w", store.ErrUnavailable)
	}
	return nil
}

func (d *outageDriver) Credentials(ctx context.Context, address string) (store.CredentialRecord, error) {
	if err := d.err(); err != nil {
		return store.CredentialRecord{}, err
	}
	return d.Driver.Credentials(ctx, address)
}

func (d *outageDriver) AppendBody(ctx context.Context, account, id, off, n int64, dst []byte) ([]byte, error) {
	if err := d.err(); err != nil {
		return dst, err
	}
	return d.Driver.AppendBody(ctx, account, id, off, n, dst)
}

func (d *outageDriver) ReleaseLease(ctx context.Context, id int64, holder string) error {
	if err := d.err(); err != nil {
		return err
	}
	return d.Driver.ReleaseLease(ctx, id, holder)
}

func (d *outageDriver) RecordPOPSession(ctx context.Context, id int64, ps store.POPSession) error {
	if err := d.err(); err != nil {
		return err
	}
	return d.Driver.RecordPOPSession(ctx, id, ps)
}

// With the database away, a login and a RETR are answered -ERR [SYS/TEMP]
// (RFC 3206 §4), never [AUTH], and a refused login is not a credential
// failure: the client may try again on the same connection, past
// MaxAuthFailures. A session that ends during the outage gives its
// maildrop lease up once the database is back, not a TTL later.
func TestOutage_temporaryAndLeaseReleasedAfter(t *testing.T) {
	d := &outageDriver{Driver: storetest.NewDriver(t)}
	f := newPOPNode(t, d, store.AuthOptions{Policy: lenient}, popstore.Options{LeaseTTL: time.Minute})
	const user, pass = "taro@skydesk.jp", "right-password"
	storetest.AddUser(t, d.Driver, user, pass)
	setPOP(t, d.Driver, user, store.POPAll, false, store.KeepOnServer)
	deliver(t, d.Driver, user, false, "Subject: one\r\n\r\nbody\r\n")

	d.down.Store(true)
	c := f.dial(t)
	for range 5 { // popd's MaxAuthFailures is 3
		c.cmd("USER "+user, "+OK")
		c.cmd("PASS "+pass, "-ERR [SYS/TEMP] ")
	}
	d.down.Store(false)
	c.login(user, pass)
	d.down.Store(true)
	c.cmd("RETR 1", "-ERR [SYS/TEMP] ")
	c.quit("+OK") // the lease release fails: retried in the background

	d.down.Store(false)
	back := time.Now()
	for {
		c := f.dial(t)
		c.cmd("USER "+user, "+OK")
		l := c.cmd("PASS "+pass, "")
		if strings.HasPrefix(l, "+OK") {
			c.quit("+OK")
			break
		}
		c.quit("")
		if !strings.HasPrefix(l, "-ERR [IN-USE]") || time.Since(back) > 10*time.Second {
			t.Fatalf("after the outage: %q", l)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
	}
	t.Logf("maildrop free %v after the database's return (lease TTL 1m)", time.Since(back))
}
