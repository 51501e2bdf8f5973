// Package pgtest starts throwaway PostgreSQL clusters for tests: initdb
// into a temporary directory, pg_ctl on a free loopback port with its unix
// socket in that directory, one database per caller, and the cluster
// stopped and removed when the test ends. No system service is used.
// Cluster.Stop and Cluster.Start take the server away and bring it back
// on the same port and data, for database-outage tests.
//
// The binaries are found on PATH or under /usr/lib/postgresql/*/bin
// (Debian). Without them a test is skipped, except in CI (CI=true), where
// it fails. PostgreSQL refuses to run as root, so as root the programs run
// as the postgres user (runuser) in a directory it owns.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Cluster is a running throwaway cluster.
type Cluster struct {
	bin  string // directory of initdb, pg_ctl, postgres
	dir  string // the temporary directory: data/, the socket, the log
	port int
	run  []string // prefix that runs a program as the cluster's owner
	n    atomic.Int64

	mu      sync.Mutex
	stopped bool // by Stop, until Start
}

// startTimeout bounds pg_ctl's own readiness wait (pg_ctl -w polls the
// server until it accepts connections).
const startTimeout = 60 * time.Second

// Start initialises and starts a cluster, stopped and removed when t ends.
func Start(t testing.TB) *Cluster {
	t.Helper()
	bin, err := findBin()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL is required in CI (install postgresql-15 in .ci/run): %v", err)
		}
		t.Skipf("PostgreSQL not installed: %v", err)
	}
	c, err := start(bin)
	if err != nil {
		t.Fatalf("starting PostgreSQL: %v", err)
	}
	t.Cleanup(func() {
		if err := c.stop(); err != nil {
			t.Errorf("stopping PostgreSQL: %v", err)
		}
	})
	return c
}

// StartProcess initialises and starts a cluster that lives until the
// caller's Close: one cluster shared by a whole test process, stopped by its
// TestMain (storetest.Main). Unlike Start it never skips: the caller asked
// for PostgreSQL.
func StartProcess() (*Cluster, error) {
	bin, err := findBin()
	if err != nil {
		return nil, err
	}
	return start(bin)
}

// Close shuts a cluster of StartProcess down at once (its data is thrown
// away) and removes its directory.
func (c *Cluster) Close() error { return c.stop() }

// URL starts a cluster and returns the URL of a new, empty database in it.
func URL(t testing.TB) string {
	t.Helper()
	return Start(t).NewDatabase(t)
}

// NewDatabase creates an empty database and returns its URL.
func (c *Cluster) NewDatabase(t testing.TB) string {
	t.Helper()
	url, err := c.CreateDatabase(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return url
}

// CreateDatabase creates an empty database and returns its URL.
func (c *Cluster) CreateDatabase(ctx context.Context) (string, error) {
	name := fmt.Sprintf("t%d", c.n.Add(1))
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.url("postgres"))
	if err != nil {
		return "", fmt.Errorf("connecting to PostgreSQL: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("creating database %s: %w", name, err)
	}
	return c.url(name), nil
}

func (c *Cluster) url(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, db)
}

// findBin returns the directory holding pg_ctl and initdb.
func findBin() (string, error) {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if _, err := exec.LookPath("initdb"); err == nil {
			return filepath.Dir(p), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return version(b) - version(a) }) // newest first
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("no pg_ctl and initdb on PATH or in /usr/lib/postgresql/*/bin")
}

func version(bin string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(bin)))
	return v
}

func start(bin string) (*Cluster, error) {
	dir, err := os.MkdirTemp("", "pgtest")
	if err != nil {
		return nil, err
	}
	c := &Cluster{bin: bin, dir: dir}
	if os.Geteuid() == 0 {
		if err := c.runAsPostgres(); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	if out, err := c.cmd("initdb", "-D", c.data(), "-U", "postgres", "--auth=trust", "--no-sync",
		"--encoding=UTF8", "--locale=C").CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %w: %s", err, out)
	}
	// A port picked free can be taken before the server binds it: try a
	// few times.
	for try := 0; ; try++ {
		if c.port, err = freePort(); err != nil {
			break
		}
		if err = c.serverStart(); err == nil {
			return c, nil
		}
		if try == 2 {
			break
		}
	}
	os.RemoveAll(dir)
	return nil, err
}

// serverStart runs the server on c.port and returns once it accepts
// connections.
func (c *Cluster) serverStart() error {
	opts := strings.Join([]string{"-c listen_addresses=127.0.0.1", "-c port=" + strconv.Itoa(c.port),
		"-c unix_socket_directories=" + c.dir, "-c fsync=off", "-c synchronous_commit=off",
		"-c full_page_writes=off", "-c max_connections=300"}, " ")
	out, err := c.cmd("pg_ctl", "start", "-w", "-t", strconv.Itoa(int(startTimeout/time.Second)),
		"-D", c.data(), "-l", c.log(), "-o", opts).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl start: %w: %s; log: %s", err, out, c.logTail())
	}
	return nil
}

// Stop shuts the server down as an operator would (pg_ctl stop -m fast:
// sessions are ended with SQLSTATE 57P01 and committed work is flushed,
// so nothing acknowledged is lost even with synchronous_commit off) and
// keeps the data directory and port for Start: a database outage in a
// test. It returns once the server has exited.
func (c *Cluster) Stop(t testing.TB) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		t.Fatal("pgtest: Stop of a stopped cluster")
	}
	if out, err := c.cmd("pg_ctl", "stop", "-w", "-m", "fast", "-D", c.data()).CombinedOutput(); err != nil {
		t.Fatalf("pg_ctl stop: %v: %s", err, out)
	}
	c.stopped = true
}

// Start starts a stopped cluster again on the same port and data
// directory and returns once it accepts connections.
func (c *Cluster) Start(t testing.TB) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.stopped {
		t.Fatal("pgtest: Start of a running cluster")
	}
	if err := c.serverStart(); err != nil {
		t.Fatalf("restarting PostgreSQL on port %d: %v", c.port, err)
	}
	c.stopped = false
}

// runAsPostgres makes the cluster's programs run as the postgres user in
// a directory it owns.
func (c *Cluster) runAsPostgres() error {
	u, err := user.Lookup("postgres")
	if err != nil {
		return fmt.Errorf("running as root needs a postgres user: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(c.dir, uid, gid); err != nil {
		return err
	}
	runuser, err := exec.LookPath("runuser")
	if err != nil {
		return fmt.Errorf("running as root needs runuser: %w", err)
	}
	c.run = []string{runuser, "-u", "postgres", "--"}
	return nil
}

func (c *Cluster) cmd(prog string, args ...string) *exec.Cmd {
	argv := append(append(slices.Clone(c.run), filepath.Join(c.bin, prog)), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = c.dir
	return cmd
}

func (c *Cluster) data() string { return filepath.Join(c.dir, "data") }
func (c *Cluster) log() string  { return filepath.Join(c.dir, "server.log") }

func (c *Cluster) logTail() string {
	b, _ := os.ReadFile(c.log())
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// stop shuts the server down at once (the data is thrown away) and
// removes the directory.
func (c *Cluster) stop() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var err error
	if !c.stopped {
		if out, serr := c.cmd("pg_ctl", "stop", "-w", "-m", "immediate", "-D", c.data()).CombinedOutput(); serr != nil {
			err = fmt.Errorf("pg_ctl stop: %w: %s", serr, out)
		}
	}
	return errors.Join(err, os.RemoveAll(c.dir))
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
