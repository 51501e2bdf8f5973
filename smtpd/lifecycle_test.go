package smtpd_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skydesk/skydeskd/smtpd"
	"github.com/skydesk/skydeskd/store/storetest"
)

// closeNotify is a listener that says when the server closed it (the
// moment Shutdown stopped accepting).
type closeNotify struct {
	net.Listener
	once   sync.Once
	closed chan struct{}
}

func (l *closeNotify) Close() error {
	l.once.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

// listen returns a closeNotify listener on 127.0.0.1:0.
func listen(t *testing.T) *closeNotify {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return &closeNotify{Listener: l, closed: make(chan struct{})}
}

// waitClosed waits for ch or fails after 20 seconds.
func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: not within 20s", what)
	}
}

// closedByServer reads c to its end and fails if the server wrote
// anything (an idle-timeout 421 would mean the grace did not close it).
func closedByServer(t *testing.T, c net.Conn, who string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	b, err := io.ReadAll(c)
	var ne net.Error
	if len(b) > 0 || errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("%s: read %q, %v; want the connection closed without a word", who, b, err)
	}
}

// Beyond MaxConnections a plaintext client is told 421 and closed, an
// implicit-TLS one is closed before the handshake; a slot is free again
// once its connection ends. Only the connections taken are counted.
func TestServer_connectionCap(t *testing.T) {
	var mu sync.Mutex
	counted := map[string]int{}
	f := newFixture(t, fixtureOpts{tune: func(o *smtpd.Options) {
		o.MaxConnections = 1
		o.Connected = func(l string) { mu.Lock(); counted[l]++; mu.Unlock() }
	}})
	w1 := f.dial(t, f.mx, false)
	c2, err := net.Dial("tcp", f.mx)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	_ = c2.SetDeadline(time.Now().Add(20 * time.Second))
	if b, _ := io.ReadAll(c2); string(b) != "421 4.7.0 Too many connections, try again later\r\n" {
		t.Fatalf("over the cap: %q", b)
	}
	w1.must("QUIT", 221)
	if b, err := io.ReadAll(w1.conn); len(b) > 0 || err != nil {
		t.Fatalf("after QUIT: %q, %v", b, err)
	}
	f.dial(t, f.mx, false).must("QUIT", 221) // the freed slot

	f.dial(t, f.smtps, true)
	tc, err := tls.DialWithDialer(&net.Dialer{Timeout: 20 * time.Second}, "tcp", f.smtps, f.clientTLS)
	if err == nil {
		tc.Close()
		t.Fatal("a TLS handshake over the cap succeeded")
	}
	mu.Lock()
	defer mu.Unlock()
	if counted["mx"] != 2 || counted["smtps"] != 1 || counted["submission"] != 0 {
		t.Errorf("Connected counted %v, want mx 2, smtps 1", counted)
	}
}

// Shutdown stops accepting, lets a transaction in progress finish during
// the grace period, then closes idle connections and one stalled in DATA,
// whose message is not stored (it was never acknowledged).
func TestServer_shutdownGraceThenForceClose(t *testing.T) {
	const grace = 3 * time.Second
	f := newFixture(t, fixtureOpts{tune: func(o *smtpd.Options) { o.ShutdownGrace = grace }})
	l := listen(t)
	serveListener(t, f.srv.ServeMX, l)
	addr := l.Addr().String()
	idle := f.dial(t, addr, false)
	idle.must("EHLO idle.example", 250)
	inDATA := func(name string) *wire {
		w := f.dial(t, addr, false)
		w.must("EHLO "+name+".example", 250)
		w.must("MAIL FROM:<someone@example.org>", 250)
		w.must("RCPT TO:<"+taro+">", 250)
		w.must("DATA", 354)
		return w
	}
	finishing, stalled := inDATA("finishing"), inDATA("stalled")
	if _, err := io.WriteString(stalled.conn, "Subject: never finished\r\n"); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	errc := make(chan error, 1)
	go func() { errc <- f.srv.Shutdown(context.Background()) }()
	waitClosed(t, l.closed, "Shutdown closing the listener")
	if _, err := io.WriteString(finishing.conn, msg("someone@example.org", taro, "finished in grace", "x")+".\r\n"); err != nil {
		t.Fatal(err)
	}
	finishing.expect(250)
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(grace + 20*time.Second):
		t.Fatal("Shutdown did not return")
	}
	if took := time.Since(start); took < grace {
		t.Errorf("Shutdown returned after %v, before the grace of %v", took, grace)
	}
	closedByServer(t, idle.conn, "idle client")
	closedByServer(t, stalled.conn, "client stalled in DATA")
	if n := f.st.count(); n != 1 || !strings.Contains(string(f.st.last(t).Body), "Subject: finished in grace\r\n") {
		t.Fatalf("%d messages stored, want only the finished one", n)
	}
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Error("still accepting after Shutdown")
	}
}

// When every session ends, Shutdown returns without waiting for the
// grace period.
func TestServer_shutdownReturnsWhenSessionsEnd(t *testing.T) {
	f := newFixture(t, fixtureOpts{tune: func(o *smtpd.Options) { o.ShutdownGrace = time.Hour }})
	w := f.dial(t, f.mx, false)
	errc := make(chan error, 1)
	go func() { errc <- f.srv.Shutdown(context.Background()) }()
	w.must("QUIT", 221)
	select {
	case err := <-errc:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Shutdown waited with no session left")
	}
}

// A context that ends before the grace period closes the connections
// then; Close closes them at once. Serve after either refuses.
func TestServer_shutdownContextAndClose(t *testing.T) {
	f := newFixture(t, fixtureOpts{tune: func(o *smtpd.Options) { o.ShutdownGrace = time.Hour }})
	idle := f.dial(t, f.submission, false)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := f.srv.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v", err)
	}
	closedByServer(t, idle.conn, "idle client")
	if err := f.srv.Close(); err != nil {
		t.Fatalf("Close after Shutdown: %v", err)
	}
	l := listen(t)
	if err := f.srv.Serve(l); !errors.Is(err, smtpd.ErrServerClosed) {
		t.Fatalf("Serve after Shutdown: %v", err)
	}
	waitClosed(t, l.closed, "Serve closing its listener")

	g := newFixture(t, fixtureOpts{tune: func(o *smtpd.Options) { o.ShutdownGrace = time.Hour }})
	idle = g.dial(t, g.smtps, true)
	if err := g.srv.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	closedByServer(t, idle.conn, "idle TLS client")
}

// watchedRelay records when the server starts and stops the worker.
type watchedRelay struct {
	smtpd.Relayer
	started, stopped chan struct{}
	ignoreCtx        chan struct{} // if set, Run returns only once it is closed
}

func newWatched(r smtpd.Relayer) *watchedRelay {
	return &watchedRelay{Relayer: r, started: make(chan struct{}), stopped: make(chan struct{})}
}

func (w *watchedRelay) Run(ctx context.Context) {
	close(w.started)
	defer close(w.stopped)
	if w.ignoreCtx != nil {
		<-w.ignoreCtx
		return
	}
	w.Relayer.Run(ctx)
}

// The server runs the relay worker from its first listener until
// Shutdown, which returns only once the worker has stopped: mail queued
// by submission goes out to the smarthost with nobody calling RunOnce.
func TestServer_relayWorkerStartStop(t *testing.T) {
	s := storetest.NewDriver(t)
	cert := storetest.Certificate(t)
	h, port := startSmarthost(t, cert.ServerTLS())
	relay := newWatched(smtpd.NewRelay(s, smtpd.RelayOptions{Host: "127.0.0.1", Port: port, TLS: "implicit",
		Username: "relay-user", Password: "relay-secret", TLSConfig: trusting(cert), Logger: testLogger(t)}))
	f := newFixture(t, fixtureOpts{relay: relay, store: s})
	waitClosed(t, relay.started, "relay worker start")

	w := f.login(t, taro, taroPW)
	w.must("MAIL FROM:<"+taro+">", 250)
	w.must("RCPT TO:<ok@remote.example>", 250)
	if c, text := w.data(msg(taro, "ok@remote.example", "hi", "x")); c != 250 {
		t.Fatalf("%d %q", c, text)
	}
	w.must("QUIT", 221)
	deadline := time.Now().Add(20 * time.Second)
	for len(h.got()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("queued mail not relayed within 20s")
		}
		time.Sleep(10 * time.Millisecond) // polling with a deadline
	}
	if err := f.srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-relay.stopped:
	default:
		t.Fatal("Shutdown returned with the relay worker still running")
	}
}

// A server never served runs no worker; a worker that does not stop
// holds Shutdown only until its context ends.
func TestServer_relayWorkerBounds(t *testing.T) {
	idle := newWatched(handRelay{})
	srv := smtpd.NewServer(storetest.NewDriver(t), nil, smtpd.Options{Relay: idle})
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-idle.started:
		t.Fatal("relay worker started without a listener")
	default:
	}

	stuck := newWatched(handRelay{})
	stuck.ignoreCtx = make(chan struct{})
	f := newFixture(t, fixtureOpts{relay: stuck})
	waitClosed(t, stuck.started, "relay worker start")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := f.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown with a stuck worker: %v, want deadline exceeded", err)
	}
	close(stuck.ignoreCtx)
	waitClosed(t, stuck.stopped, "relay worker stop")
}

// Serving many listeners at once and shutting down concurrently, from
// several goroutines, is safe (run with -race).
func TestServer_concurrentServeAndShutdown(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	var served atomic.Int32
	var wg sync.WaitGroup
	for range 4 {
		l := listen(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f.srv.Serve(l); errors.Is(err, smtpd.ErrServerClosed) {
				served.Add(1)
			}
		}()
	}
	for range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); _ = f.srv.Shutdown(context.Background()) }()
	}
	wg.Wait()
	if served.Load() != 4 {
		t.Fatalf("%d of 4 Serve calls returned ErrServerClosed", served.Load())
	}
}
