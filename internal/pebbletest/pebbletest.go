// Package pebbletest runs a real ACME CA for tests: Debian's pebble, with
// pebble-challtestsrv as its DNS resolver, on free loopback ports. Pebble
// validates HTTP-01 and TLS-ALPN-01 for real, on the ports the test names,
// at the addresses the test publishes in the mock DNS.
//
// Missing binaries skip the test, or fail it when CI=true (CI installs the
// pebble package, which has both).
package pebbletest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Options choose where Pebble validates.
type Options struct {
	// HTTPPort and TLSPort are the ports Pebble connects to for HTTP-01 and
	// TLS-ALPN-01: the test's own listeners.
	HTTPPort, TLSPort int
	// Validity is the lifetime of issued certificates; 0 means Pebble's
	// default.
	Validity time.Duration
}

// Server is a running Pebble and its DNS.
type Server struct {
	// DirURL is the ACME directory.
	DirURL string
	// CA trusts Pebble's own HTTPS endpoints (not the certificates it
	// issues: see Root).
	CA *x509.CertPool
	// CAFile is CA as a PEM file (acme.trusted_roots).
	CAFile string
	// DNSAddr is the mock DNS (host:port, UDP and TCP) Pebble resolves with.
	DNSAddr string

	mgmt     string // Pebble's management API base URL
	dnsMgmt  string // challtestsrv's management API base URL
	client   *http.Client
	rootOnce sync.Once
	root     []byte
	dir      string
}

// readyTimeout bounds the wait for both servers to answer.
const readyTimeout = 15 * time.Second

// Start runs pebble-challtestsrv and pebble until the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	for _, bin := range []string{"pebble", "pebble-challtestsrv"} {
		if _, err := exec.LookPath(bin); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s not installed (Debian package pebble)", bin)
			}
			t.Skipf("%s not installed (Debian package pebble)", bin)
		}
	}
	dir := t.TempDir()
	s := &Server{dir: dir}
	certFile, keyFile, pool := selfSigned(t, dir)
	s.CA, s.CAFile = pool, certFile
	s.client = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}

	dnsPort, dnsMgmtPort := FreePort(t, true), FreePort(t, false)
	s.DNSAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(dnsPort))
	s.dnsMgmt = fmt.Sprintf("http://127.0.0.1:%d", dnsMgmtPort)
	run(t, dir, nil, "pebble-challtestsrv",
		"-management", fmt.Sprintf("127.0.0.1:%d", dnsMgmtPort), "-dns01", s.DNSAddr,
		"-http01", "", "-https01", "", "-tlsalpn01", "",
		// No default answers: a name resolves only once the test adds it.
		"-defaultIPv4", "", "-defaultIPv6", "")

	acmePort, mgmtPort := FreePort(t, false), FreePort(t, false)
	s.DirURL = fmt.Sprintf("https://127.0.0.1:%d/dir", acmePort)
	s.mgmt = fmt.Sprintf("https://127.0.0.1:%d", mgmtPort)
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress":           fmt.Sprintf("127.0.0.1:%d", acmePort),
		"managementListenAddress": fmt.Sprintf("127.0.0.1:%d", mgmtPort),
		"certificate":             certFile, "privateKey": keyFile,
		"httpPort": opts.HTTPPort, "tlsPort": opts.TLSPort,
		"ocspResponderURL": "", "externalAccountBindingRequired": false,
		"certificateValidityPeriod": uint64(opts.Validity / time.Second),
	}}
	raw, _ := json.Marshal(cfg)
	cfgFile := filepath.Join(dir, "pebble-config.json")
	if err := os.WriteFile(cfgFile, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	// NOSLEEP: validate at once; NONCEREJECT=0: no random badNonce
	// retries. PEBBLE_VA_ALWAYS_VALID is deliberately not set: every
	// challenge is really validated against the test's listeners.
	run(t, dir, []string{"PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0"}, "pebble",
		"-config", cfgFile, "-dnsserver", s.DNSAddr)

	deadline := time.Now().Add(readyTimeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		errA := s.get(s.DirURL, io.Discard)
		errB := s.post("/clear-a", map[string]any{"host": "ready.invalid"})
		if errA == nil && errB == nil {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("pebble not ready after %v: %v; %v", readyTimeout, errA, errB)
		}
		<-tick.C
	}
}

// run starts a binary, logs its output when the test fails, and stops it
// at cleanup.
func run(t testing.TB, dir string, env []string, name string, args ...string) {
	t.Helper()
	var out syncBuffer
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("%s output:\n%s", name, out.String())
		}
	})
}

// AddA makes host resolve to ip in Pebble's DNS.
func (s *Server) AddA(t testing.TB, host, ip string) {
	t.Helper()
	if err := s.post("/add-a", map[string]any{"host": host, "addresses": []string{ip}}); err != nil {
		t.Fatal(err)
	}
}

// ClearA removes host's A records.
func (s *Server) ClearA(t testing.TB, host string) {
	t.Helper()
	if err := s.post("/clear-a", map[string]any{"host": host}); err != nil {
		t.Fatal(err)
	}
}

// SetCNAME makes host a CNAME to target.
func (s *Server) SetCNAME(t testing.TB, host, target string) {
	t.Helper()
	if err := s.post("/set-cname", map[string]any{"host": host, "target": target}); err != nil {
		t.Fatal(err)
	}
}

// Root returns the PEM of the root that Pebble's issued certificates chain
// to (management /roots/0).
func (s *Server) Root(t testing.TB) []byte {
	t.Helper()
	s.rootOnce.Do(func() {
		var b bytes.Buffer
		if err := s.get(s.mgmt+"/roots/0", &b); err != nil {
			t.Fatalf("fetching pebble root: %v", err)
		}
		s.root = b.Bytes()
	})
	return s.root
}

// RootFile writes Root to a file (for curl --cacert, openssl -CAfile).
func (s *Server) RootFile(t testing.TB) string {
	t.Helper()
	p := filepath.Join(s.dir, "pebble-root.pem")
	if err := os.WriteFile(p, s.Root(t), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func (s *Server) get(url string, w io.Writer) error {
	resp, err := s.client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	_, err = io.Copy(w, io.LimitReader(resp.Body, 1<<20))
	return err
}

func (s *Server) post(path string, body any) error {
	raw, _ := json.Marshal(body)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.dnsMgmt+path, bytes.NewReader(raw))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: %s", path, resp.Status)
	}
	return nil
}

// freePort returns a loopback port free for TCP (and UDP if udp).
func FreePort(t testing.TB, udp bool) int {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		if udp {
			u, err := net.ListenPacket("udp", l.Addr().String())
			if err != nil {
				l.Close()
				continue
			}
			u.Close()
		}
		l.Close()
		return port
	}
	t.Fatal("no free port")
	return 0
}

// selfSigned makes Pebble's own HTTPS certificate for 127.0.0.1.
func selfSigned(t testing.TB, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pebble test endpoint"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:        true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "pebble-https.pem"), filepath.Join(dir, "pebble-https-key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(leaf)
	return certFile, keyFile, pool
}

// syncBuffer is a bytes.Buffer safe for the two output pipes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.b.Len() > 1<<20 {
		return len(p), nil // bounded: keep the start
	}
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
