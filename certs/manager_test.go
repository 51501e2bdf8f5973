package certs_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/skydesk/skydeskd/certs"
	"github.com/skydesk/skydeskd/internal/pebbletest"
	"github.com/skydesk/skydeskd/store"
	"github.com/skydesk/skydeskd/store/postgres"
	"github.com/skydesk/skydeskd/store/storetest"
)

// serviceName is the one service host name in these tests.
const serviceName = "autoconfig.svc.test"

// listeners are a node's HTTP and HTTPS listeners, bound before Pebble
// starts so Pebble can be told their ports.
type listeners struct{ http, https net.Listener }

func bind(t *testing.T) listeners {
	t.Helper()
	var ls listeners
	var err error
	if ls.http, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if ls.https, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ls.http.Close(); ls.https.Close() })
	return ls
}

func port(l net.Listener) int { return l.Addr().(*net.TCPAddr).Port }

// orders counts ACME orders per name across every node of a test.
type orders struct {
	mu sync.Mutex
	n  map[string]int
}

func (o *orders) observe(event, name string) {
	if event != "order" {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.n == nil {
		o.n = map[string]int{}
	}
	o.n[name]++
}

func (o *orders) count(name string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.n[name]
}

type nodeOptions struct {
	renewal  float64
	validity time.Duration
}

// startNode runs a Manager on backend. serve says whether this node
// serves ls (the first node) or only shares its ports (the second one,
// which answers through the shared storage).
func startNode(t *testing.T, pb *pebbletest.Server, backend certs.Backend, ls listeners, serve bool, o *orders, no nodeOptions) *certs.Manager {
	t.Helper()
	m, err := certs.New(certs.Options{
		CA: pb.DirURL, Email: "ops@svc.test", TrustedRoots: pb.CA, Backend: backend,
		ServiceNames: []string{serviceName},
		Check:        certs.NewChecker(pb.DNSAddr, []netip.Addr{netip.MustParseAddr("127.0.0.1")}, []string{serviceName}).Check,
		HTTPAddr:     ls.http.Addr().String(), TLSAddr: ls.https.Addr().String(),
		DefaultName:        serviceName,
		RenewalWindowRatio: no.renewal,
		RenewCheckInterval: time.Second,
		RetryMin:           100 * time.Millisecond, RetryMax: time.Second,
		Logger:  slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Observe: o.observe,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	if serve {
		ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
		quiet := log.New(io.Discard, "", 0) // failed handshakes are what the tests provoke
		hs := &http.Server{Handler: m.HTTPHandler(ok), ReadHeaderTimeout: 5 * time.Second, ErrorLog: quiet}
		ts := &http.Server{Handler: ok, ReadHeaderTimeout: 5 * time.Second, ErrorLog: quiet}
		tl := tls.NewListener(ls.https, &tls.Config{GetCertificate: m.GetCertificate, NextProtos: []string{"http/1.1", "acme-tls/1"}})
		go hs.Serve(ls.http)
		go ts.Serve(tl)
		t.Cleanup(func() { hs.Close(); ts.Close() })
	}
	return m
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// openCerts opens the certificate storage of the store in dir: SQLite,
// or PostgreSQL under storetest.DatabaseEnv (the same dir, the same
// database: two nodes sharing it).
func openCerts(t *testing.T, dir string) certs.Backend {
	t.Helper()
	switch s := storetest.Open(t, dir, store.Options{PersonalDomain: "svc.test"}).(type) {
	case *store.Store:
		return s.Certs()
	case *postgres.Store:
		return s.Certs()
	default:
		t.Fatalf("no certificate storage in %T", s)
		return nil
	}
}

// eventually polls cond every 50ms until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		<-tick.C
	}
}

// curlOK reports whether curl verifies name's certificate on the HTTPS
// listener against the CA file, and fetches the page.
func curlOK(t *testing.T, caFile, name string, p int) (bool, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "curl", "-sS", "--max-time", "5", "--cacert", caFile,
		"--resolve", name+":"+strconv.Itoa(p)+":127.0.0.1", "https://"+name+":"+strconv.Itoa(p)+"/").CombinedOutput()
	return err == nil && string(out) == "ok\n", string(out)
}

// served returns the leaf certificate the HTTPS listener presents for name
// (without verifying it).
func served(t *testing.T, name string, p int) *x509.Certificate {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", "127.0.0.1:"+strconv.Itoa(p),
		&tls.Config{ServerName: name, InsecureSkipVerify: true})
	if err != nil {
		return nil
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0]
}

func needCurl(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("curl not installed")
		}
		t.Skip("curl not installed")
	}
}

func TestManager_Pebble(t *testing.T) {
	needCurl(t)
	ls := bind(t)
	pb := pebbletest.Start(t, pebbletest.Options{HTTPPort: port(ls.http), TLSPort: port(ls.https)})
	root := pb.RootFile(t)
	st := openCerts(t, t.TempDir())
	var o orders
	m := startNode(t, pb, st, ls, true, &o, nodeOptions{})
	p := port(ls.https)

	pb.AddA(t, serviceName, "127.0.0.1")
	eventually(t, 30*time.Second, "service name certificate", func() bool { ok, _ := curlOK(t, root, serviceName, p); return ok })

	t.Run("domain added at run time", func(t *testing.T) {
		pb.AddA(t, "autoconfig.org.test", "127.0.0.1")
		pb.SetCNAME(t, "autodiscover.org.test", serviceName) // a CNAME to our host passes too
		m.SetDomains([]string{"org.test"})
		start := time.Now()
		for _, n := range []string{"autoconfig.org.test", "autodiscover.org.test"} {
			eventually(t, 30*time.Second-time.Since(start), n, func() bool { ok, _ := curlOK(t, root, n, p); return ok })
		}
		t.Logf("both names trusted %v after the domain was added", time.Since(start).Round(time.Millisecond))
	})

	t.Run("not pointed at us: no order until it is", func(t *testing.T) {
		pb.AddA(t, "autoconfig.late.test", "192.0.2.1") // elsewhere
		m.SetDomains([]string{"org.test", "late.test"})
		var sts []certs.Status
		eventually(t, 10*time.Second, "pre-check failure recorded", func() bool {
			var err error
			sts, err = certs.Inspect(context.Background(), st, []string{"autoconfig.late.test", "autodiscover.late.test"})
			return err == nil && sts[0].LastError != "" && sts[1].LastError != ""
		})
		if o.count("autoconfig.late.test")+o.count("autodiscover.late.test") != 0 {
			t.Fatal("a name that does not point at us was ordered")
		}
		t.Logf("last errors: %q; %q", sts[0].LastError, sts[1].LastError)
		pb.ClearA(t, "autoconfig.late.test")
		pb.AddA(t, "autoconfig.late.test", "127.0.0.1")
		eventually(t, 30*time.Second, "certificate after DNS fixed", func() bool { ok, _ := curlOK(t, root, "autoconfig.late.test", p); return ok })
		if ok, _ := curlOK(t, root, "autodiscover.late.test", p); ok {
			t.Fatal("autodiscover.late.test has a trusted certificate without DNS")
		}
	})

	t.Run("outside the list", func(t *testing.T) {
		pb.AddA(t, "evil.test", "127.0.0.1")
		if ok, out := curlOK(t, root, "evil.test", p); ok {
			t.Fatalf("evil.test verified: %s", out)
		}
		if o.count("evil.test") != 0 {
			t.Fatal("evil.test was ordered")
		}
		sts, err := certs.Inspect(context.Background(), st, []string{"evil.test"})
		if err != nil || !sts[0].NotAfter.IsZero() {
			t.Fatalf("evil.test in storage: %+v %v", sts, err)
		}
	})

	t.Run("removed domain is not served", func(t *testing.T) {
		m.SetDomains([]string{"late.test"})
		eventually(t, 10*time.Second, "names dropped", func() bool {
			a, _ := curlOK(t, root, "autoconfig.org.test", p)
			b, _ := curlOK(t, root, "autodiscover.org.test", p)
			return !a && !b
		})
		if ok, _ := curlOK(t, root, serviceName, p); !ok {
			t.Fatal("service name no longer served")
		}
	})

	for _, n := range []string{serviceName, "autoconfig.org.test", "autodiscover.org.test", "autoconfig.late.test"} {
		if c := o.count(n); c != 1 {
			t.Errorf("%s ordered %d times, want 1", n, c)
		}
	}
}

// TestManager_TwoNodes runs two Managers on two store handles of one
// SQLite file (as two processes would be), behind one pair of listeners:
// each name is ordered once, and both nodes serve it.
func TestManager_TwoNodes(t *testing.T) {
	ls := bind(t)
	pb := pebbletest.Start(t, pebbletest.Options{HTTPPort: port(ls.http), TLSPort: port(ls.https)})
	dir := t.TempDir()
	var o orders
	a := startNode(t, pb, openCerts(t, dir), ls, true, &o, nodeOptions{})
	b := startNode(t, pb, openCerts(t, dir), ls, false, &o, nodeOptions{})
	names := []string{serviceName, "autoconfig.two.test", "autodiscover.two.test"}
	for _, n := range names {
		pb.AddA(t, n, "127.0.0.1")
	}
	a.SetDomains([]string{"two.test"})
	b.SetDomains([]string{"two.test"})
	for _, n := range names {
		eventually(t, 30*time.Second, n+" on both nodes", func() bool { return a.Certificate(n) != nil && b.Certificate(n) != nil })
		if c := o.count(n); c != 1 {
			t.Errorf("%s: %d orders across two nodes, want 1", n, c)
		}
		if !a.Certificate(n).Leaf.Equal(b.Certificate(n).Leaf) {
			t.Errorf("%s: the nodes serve different certificates", n)
		}
	}
}

// TestManager_Renewal issues 30-second certificates and renews at half
// their lifetime: the listener serves the new one without a restart.
func TestManager_Renewal(t *testing.T) {
	ls := bind(t)
	pb := pebbletest.Start(t, pebbletest.Options{HTTPPort: port(ls.http), TLSPort: port(ls.https), Validity: 30 * time.Second})
	var o orders
	m := startNode(t, pb, openCerts(t, t.TempDir()), ls, true, &o, nodeOptions{renewal: 0.5})
	pb.AddA(t, serviceName, "127.0.0.1")
	var first *x509.Certificate
	eventually(t, 30*time.Second, "first certificate", func() bool {
		c := m.Certificate(serviceName)
		if c != nil {
			first = c.Leaf
		}
		return c != nil
	})
	eventually(t, 40*time.Second, "renewed certificate served", func() bool {
		c := served(t, serviceName, port(ls.https))
		return c != nil && c.SerialNumber.Cmp(first.SerialNumber) != 0 && c.NotAfter.After(first.NotAfter)
	})
	if o.count(serviceName) < 2 {
		t.Fatalf("orders = %d, want the first and a renewal", o.count(serviceName))
	}
}

func TestNew_badKeyType(t *testing.T) {
	st := openCerts(t, t.TempDir())
	ok := func(context.Context, string) error { return nil }
	if _, err := certs.New(certs.Options{KeyType: "dsa", Backend: st, Check: ok}); err == nil {
		t.Fatal("key type dsa accepted")
	}
	if _, err := certs.New(certs.Options{KeyType: "rsa2048", Backend: st, Check: ok}); err != nil {
		t.Fatal(err)
	}
}

func TestNames(t *testing.T) {
	got := certs.Names([]string{"Autoconfig.Svc.Test.", "pop.svc.test", "autoconfig.svc.test"}, []string{"a.example", "b.example"})
	want := []string{"autoconfig.svc.test", "pop.svc.test", "autoconfig.a.example", "autodiscover.a.example", "autoconfig.b.example", "autodiscover.b.example"}
	if !slices.Equal(got, want) {
		t.Fatalf("Names = %v, want %v", got, want)
	}
}
