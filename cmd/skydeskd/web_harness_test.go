package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"image"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"

	"github.com/skydesk/skydeskd/config"
	"github.com/skydesk/skydeskd/store/storetest"
)

// syncBuffer collects the app's JSON log for the test to read.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// webApp is the whole service running in-process (newApp + run): HTTP,
// HTTPS with the autoconfig service and the web pages, and POP3S.
type webApp struct {
	*app
	webURL string
	addrs  map[string]string // service name → bound address
	client *http.Client      // trusts the app's certificate
	log    *syncBuffer
}

// freeLoopbackAddr returns a 127.0.0.1 port that was free a moment ago.
// The HTTPS port must be known before start because provider.web_url (the
// QR code's base) names it; every other listener binds port 0.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// startWebApp starts the service on loopback ports (never the fixed
// --dev ports) and stops it when the test ends; tune, if given, changes
// the configuration first (such as an MX listener and a smarthost).
func startWebApp(t *testing.T, tune ...func(*config.Config)) *webApp {
	t.Helper()
	t.Setenv("SKYDESKD_TEST_FAST_HASH", "1")
	httpsAddr := freeLoopbackAddr(t)
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Listen = config.Listen{HTTP: "127.0.0.1:0", HTTPS: httpsAddr, POP3S: "127.0.0.1:0"}
	cfg.Provider.WebURL = "https://" + httpsAddr
	cfg.Log = config.Log{Level: "info", Format: "json"}
	for _, f := range tune {
		f(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	e := env{stdin: strings.NewReader(""), stdout: logs, stderr: logs, getenv: os.Getenv}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := newApp(ctx, cfg, false, e)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.run(ctx, e) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(shutdownTimeout + 5*time.Second):
			t.Error("service did not stop")
		}
		a.store.Close()
		if t.Failed() {
			t.Logf("service log:\n%s", logs.String())
		}
	})
	select {
	case <-a.ready:
	case err := <-done:
		t.Fatalf("service stopped at start: %v\n%s", err, logs.String())
	case <-time.After(30 * time.Second):
		t.Fatal("service not ready")
	}
	w := &webApp{app: a, webURL: cfg.Provider.WebURL, addrs: map[string]string{}, log: logs}
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	for sc.Scan() {
		var line struct{ Msg, Service, Addr string }
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" {
			w.addrs[line.Service] = line.Addr
		}
	}
	if w.addrs["https"] != httpsAddr {
		t.Fatalf("https listener on %q, want %q", w.addrs["https"], httpsAddr)
	}
	pool := x509.NewCertPool()
	pool.AddCert(a.cert.Leaf)
	w.client = &http.Client{Timeout: 20 * time.Second,
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: cfg.Provider.AutoconfigHost}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return w
}

// newBrowser starts headless Chromium with a fresh profile. The flags
// keep it off the network and quiet; the service certificate is
// self-signed, hence ignore-certificate-errors.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	path := storetest.RequireTool(t, "chromium")
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("ignore-certificate-errors", true),
		chromedp.Flag("lang", "en-US"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); acancel() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

// step runs browser actions with a deadline, so a missing element fails
// the test instead of hanging it.
func step(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// value runs one browser action that returns a value, with a deadline.
func value[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(sctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// screenshotDir is the git-ignored folder the README names.
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join("..", "..", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// viewports are the screenshot widths: a laptop and a phone (iPhone 14
// CSS pixels).
var viewports = []struct {
	name          string
	width, height int64
	mobile        bool
}{{"desktop", 1280, 900, false}, {"phone", 390, 844, true}}

// screenshots saves full-page PNGs of url at every viewport as
// NAME-VIEWPORT.png, then restores the desktop viewport.
func screenshots(t *testing.T, ctx context.Context, name, url string) {
	t.Helper()
	dir := screenshotDir(t)
	for _, v := range viewports {
		opts := []chromedp.EmulateViewportOption{chromedp.EmulateScale(1)}
		if v.mobile {
			opts = append(opts, chromedp.EmulateMobile)
		}
		step(t, ctx, "viewport "+v.name, chromedp.EmulateViewport(v.width, v.height, opts...), chromedp.Navigate(url),
			chromedp.WaitVisible(chromedp.CSS("main")))
		png := value(t, ctx, "screenshot", chromedp.FullScreenshot(100))
		p := filepath.Join(dir, fmt.Sprintf("%s-%s.png", name, v.name))
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	step(t, ctx, "reset viewport", chromedp.EmulateReset())
}

// readQR screenshots the page's QR code (svg.qr) as the browser draws it
// and decodes it.
func readQR(t *testing.T, ctx context.Context) string {
	t.Helper()
	// A screenshot of the element can catch it mid-layout (the clip is
	// computed before the capture): decode a fresh one a few times before
	// calling the drawn code unreadable.
	var lastErr error
	for range 3 {
		png := value(t, ctx, "QR screenshot", chromedp.ScreenshotScale(chromedp.CSS("svg.qr"), 2))
		img, _, err := image.Decode(bytes.NewReader(png))
		if err != nil {
			t.Fatal(err)
		}
		bmp, err := gozxing.NewBinaryBitmapFromImage(img)
		if err != nil {
			t.Fatal(err)
		}
		res, err := qrcode.NewQRCodeReader().Decode(bmp, nil)
		if err == nil {
			return res.GetText()
		}
		lastErr = err
	}
	t.Fatalf("decoding the QR code: %v", lastErr)
	return ""
}
