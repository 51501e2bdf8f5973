// Package deploy holds the files that run skydeskd as several nodes
// (compose.yaml, haproxy.cfg, the nodes' skydeskd.yaml, the systemd
// unit); its tests check them offline: the node configuration loads and
// validates, HAProxy accepts its file, the compose file agrees with both,
// and systemd accepts the unit.
package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"

	"github.com/skydesk/skydeskd/config"
)

// need finds a program, skipping the test without it (failing in CI for
// haproxy, which .ci/run installs).
func need(t *testing.T, prog string, inCI bool) string {
	t.Helper()
	p, err := exec.LookPath(prog)
	if err != nil {
		if inCI && os.Getenv("CI") == "true" {
			t.Fatalf("%s is required in CI: %v", prog, err)
		}
		t.Skipf("%s not installed", prog)
	}
	return p
}

// The nodes' file loads with the config package as serve loads it: on
// PostgreSQL, PROXY headers on every TCP listener HAProxy fronts, from
// HAProxy's address only, one certificate for both nodes.
func TestNodeConfig(t *testing.T) {
	cfg, err := config.Load("skydeskd.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Database.Driver != config.DriverPostgres || !strings.HasPrefix(cfg.Database.URL, "postgres://") {
		t.Errorf("database = %+v", cfg.Database)
	}
	for _, l := range []string{"pop3s", "smtps", "submission", "mx", "http", "https", "dns_tcp"} {
		if !cfg.ProxyProtocol.On(l) {
			t.Errorf("proxy_protocol.listeners lacks %s", l)
		}
	}
	if !slices.Equal(cfg.ProxyProtocol.Trusted, []string{haproxyAddr(t)}) {
		t.Errorf("proxy_protocol.trusted = %v, want HAProxy's compose address %s", cfg.ProxyProtocol.Trusted, haproxyAddr(t))
	}
	if cfg.TLS.CertFile == "" || cfg.Listen.POP3 != "" {
		t.Errorf("tls = %+v, listen.pop3 = %q", cfg.TLS, cfg.Listen.POP3)
	}
}

// HAProxy accepts its file, and every server gets the PROXY v2 header
// and the /readyz check.
func TestHAProxyConfig(t *testing.T) {
	bin := need(t, "haproxy", true)
	if out, err := exec.Command(bin, "-c", "-f", "haproxy.cfg").CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c: %v\n%s", err, out)
	}
	cfg := readFile(t, "haproxy.cfg")
	for _, want := range []string{"default-server send-proxy-v2 check-send-proxy check port 80", "uri /readyz", "http-check expect string ready"} {
		if !strings.Contains(cfg, want) {
			t.Errorf("haproxy.cfg lacks %q", want)
		}
	}
}

// compose is the part of compose.yaml the test reads.
type compose struct {
	Services map[string]struct {
		Build *struct {
			Context, Dockerfile string
		}
		Command  []string
		Volumes  []string
		Ports    []string
		Networks map[string]struct {
			IPv4 string `yaml:"ipv4_address"`
		}
		DependsOn map[string]struct{ Condition string } `yaml:"depends_on"`
	}
}

func readCompose(t *testing.T) compose {
	t.Helper()
	var c compose
	if err := yaml.Unmarshal([]byte(readFile(t, "compose.yaml")), &c); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	return c
}

func haproxyAddr(t *testing.T) string {
	t.Helper()
	return readCompose(t).Services["haproxy"].Networks["backend"].IPv4
}

// compose.yaml runs PostgreSQL, two nodes built from the repository's
// Dockerfile with deploy/skydeskd.yaml, and HAProxy with haproxy.cfg;
// the nodes' addresses are haproxy.cfg's servers and every frontend's
// port is published.
func TestCompose(t *testing.T) {
	c := readCompose(t)
	for _, s := range []string{"postgres", "node1", "node2", "haproxy"} {
		if _, ok := c.Services[s]; !ok {
			t.Fatalf("no service %s", s)
		}
	}
	cfg := readFile(t, "haproxy.cfg")
	for _, n := range []string{"node1", "node2"} {
		s := c.Services[n]
		if s.Build == nil {
			t.Fatalf("%s: no build", n)
		}
		if _, err := os.Stat(filepath.Join(s.Build.Context, s.Build.Dockerfile)); err != nil {
			t.Errorf("%s: %v", n, err)
		}
		if !slices.Contains(s.Volumes, "./skydeskd.yaml:/etc/skydeskd/skydeskd.yaml:ro") ||
			!slices.Equal(s.Command, []string{"serve", "--config", "/etc/skydeskd/skydeskd.yaml"}) {
			t.Errorf("%s: volumes %v, command %v", n, s.Volumes, s.Command)
		}
		if s.DependsOn["postgres"].Condition != "service_healthy" {
			t.Errorf("%s does not wait for PostgreSQL", n)
		}
		addr := s.Networks["backend"].IPv4
		if got := len(regexp.MustCompile(`(?m)^\s+server \S+ `+regexp.QuoteMeta(addr)+`:\d+$`).FindAllString(cfg, -1)); got != 7 {
			t.Errorf("%s (%s) is a server of %d backends, want 7", n, addr, got)
		}
	}
	ports := c.Services["haproxy"].Ports
	if !slices.Contains(c.Services["haproxy"].Volumes, "./haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro") {
		t.Errorf("haproxy volumes %v", c.Services["haproxy"].Volumes)
	}
	for _, m := range regexp.MustCompile(`(?m)^\s+bind :(\d+)$`).FindAllStringSubmatch(cfg, -1) {
		p := m[1]
		if p != "8404" && !slices.ContainsFunc(ports, func(s string) bool { return strings.HasPrefix(s, p+":"+p) }) {
			t.Errorf("frontend port %s not published (ports %v)", p, ports)
		}
	}
}

// systemd accepts the unit (its ExecStart pointed at a program that
// exists here), which keeps the hardening the README promises.
func TestSystemdUnit(t *testing.T) {
	unit := readFile(t, "skydeskd.service")
	for _, want := range []string{"NoNewPrivileges=yes", "ProtectSystem=strict", "ReadWritePaths=/var/lib/skydeskd",
		"AmbientCapabilities=CAP_NET_BIND_SERVICE", "Restart=on-failure", "ExecStart=/usr/local/bin/skydeskd serve"} {
		if !strings.Contains(unit, "\n"+want) {
			t.Errorf("skydeskd.service lacks %s", want)
		}
	}
	cfg, err := config.Load("skydeskd.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(unit, "ReadWritePaths="+cfg.DataDir+"\n") {
		t.Errorf("ReadWritePaths is not data_dir %s", cfg.DataDir)
	}
	bin := need(t, "systemd-analyze", false)
	tr, err := exec.LookPath("true")
	if err != nil {
		t.Skip("no true(1)")
	}
	file := filepath.Join(t.TempDir(), "skydeskd.service")
	if err := os.WriteFile(file, []byte(strings.ReplaceAll(unit, "/usr/local/bin/skydeskd", tr)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "verify", file).CombinedOutput(); err != nil {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
