// Package rspamdtest runs a real rspamd (Debian's rspamd package) for
// tests: its own configuration in a temporary directory, a free loopback
// port, no Redis, no controller, no network lookups, and a test rule that
// scores SpamWord into "add header". A system rspamd is never touched.
package rspamdtest

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skydesk/skydeskd/store/storetest"
)

// GTUBE is the Generic Test for Unsolicited Bulk Email: rspamd rejects
// any message whose body contains it.
const GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"

// SpamWord in a message's text adds SpamWordScore, between the add header
// (6) and reject (15) thresholds of the test configuration: such a message
// gets "add header".
const (
	SpamWord      = "skydesk-spam-test-word"
	SpamWordScore = 8.0
)

// Bounds on starting and stopping rspamd.
const (
	startTimeout = 60 * time.Second
	stopTimeout  = 20 * time.Second // rspamd waits up to 16 s for its workers
)

// Server is one running rspamd.
type Server struct {
	// URL is the normal worker's base URL (http://127.0.0.1:port).
	URL  string
	dir  string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
}

// Start runs rspamd until the test ends. Without an rspamd binary the test
// is skipped, or failed when CI=true.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := storetest.RequireTool(t, "rspamd")
	dir := t.TempDir()
	var err error
	for range 3 { // another process may take the free port first
		var s *Server
		if s, err = start(bin, dir); err == nil {
			t.Cleanup(s.Stop)
			return s
		}
	}
	t.Fatalf("starting rspamd: %v\n%s", err, tail(filepath.Join(dir, "rspamd.log")))
	return nil
}

func start(bin, dir string) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	if err := writeConfig(dir, port); err != nil {
		return nil, err
	}
	args := []string{"-f", "-c", filepath.Join(dir, "rspamd.conf"),
		"--var=DBDIR=" + dir, "--var=RUNDIR=" + dir, "--var=LOGDIR=" + dir}
	if os.Geteuid() == 0 {
		// rspamd refuses to run its workers as root otherwise.
		args = append(args, "-i")
	}
	out, err := os.Create(filepath.Join(dir, "rspamd.out"))
	if err != nil {
		return nil, err
	}
	defer out.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	// Own process group: Stop can end the workers too if the main
	// process does not.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &Server{URL: "http://127.0.0.1:" + strconv.Itoa(port), dir: dir, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(s.done) }()
	if err := s.waitReady(); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// waitReady polls /ping until rspamd answers pong, it exits, or
// startTimeout passes.
func (s *Server) waitReady() error {
	deadline := time.NewTimer(startTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{}}
	for {
		if Ping(c, s.URL) {
			return nil
		}
		select {
		case <-s.done:
			return errors.New("rspamd exited before answering /ping")
		case <-deadline.C:
			return errors.New("rspamd did not answer /ping within " + startTimeout.String())
		case <-tick.C:
		}
	}
}

// Ping reports whether the rspamd at url answers /ping.
func Ping(c *http.Client, url string) bool {
	resp, err := c.Get(url + "/ping")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64))
	return resp.StatusCode == http.StatusOK && strings.HasPrefix(string(b), "pong")
}

// Stop terminates rspamd and waits for it (bounded); safe to call twice.
func (s *Server) Stop() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(stopTimeout)
	defer t.Stop()
	select {
	case <-s.done:
	case <-t.C:
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
}

// Log returns the end of rspamd's log (for failure messages).
func (s *Server) Log() string { return tail(filepath.Join(s.dir, "rspamd.log")) }

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// writeConfig writes a self-contained configuration: nothing from
// /etc/rspamd, caches in dir (never /var/lib/rspamd), DNS pointed at a
// closed loopback port so no rule can query the network, a tiny TLD list
// (compiling the full public suffix list takes rspamd 15 s), and the
// SpamWord rule.
func writeConfig(dir string, port int) error {
	files := map[string]string{
		"tld.dat":   "com\norg\nnet\njp\nexample\ntest\n",
		"words.map": "/" + SpamWord + "/i\n",
		"rspamd.conf": `options {
  pidfile = "` + dir + `/rspamd.pid";
  hs_cache_dir = "` + dir + `";
  url_tld = "` + dir + `/tld.dat";
  local_addrs = [];
  dns { nameserver = ["127.0.0.1:1"]; timeout = 0.2s; retransmits = 0; }
}
logging { type = "file"; filename = "` + dir + `/rspamd.log"; level = "notice"; }
worker "normal" { bind_socket = "127.0.0.1:` + strconv.Itoa(port) + `"; count = 1; mime = true; }
actions { reject = 15; add_header = 6; greylist = 4; }
lua = "$RULESDIR/rspamd.lua";
modules { path = "$PLUGINSDIR"; }
multimap {
  SKYDESK_TEST_SPAM { type = "content"; filter = "text"; regexp = true;
    map = "` + dir + `/words.map"; score = ` + strconv.FormatFloat(SpamWordScore, 'f', 1, 64) + `; }
}
`,
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			return err
		}
	}
	return nil
}

func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(bytes.TrimSpace(b))
}
