package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/skydesk/skydeskd/config"
	"github.com/skydesk/skydeskd/store/storetest"
)

// TestMain runs the tests on SQLite, or, under
// storetest.DatabaseEnv=postgres, points every configuration with the
// default driver at a PostgreSQL database of its data_dir (testDatabase)
// and stops the cluster at the end.
func TestMain(m *testing.M) {
	if storetest.Postgres() {
		testDatabase = storetest.DatabaseFor
	}
	storetest.Main(m)
}

// procArgs returns the arguments for a skydeskd process, which has no
// TestMain and so no testDatabase: under storetest.DatabaseEnv=postgres, a
// configuration with the default driver (its --config file, or none) is
// replaced by a copy naming the database testDatabase gives its data_dir,
// the one the in-process admin commands on that directory use.
func procArgs(t testing.TB, args []string) []string {
	t.Helper()
	if testDatabase == nil {
		return args
	}
	var c common
	var rest []string // args without --config and --data (as the tests write them)
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "--config":
			i++
			c.configFile = args[i]
		case "--data":
			i++
			c.dataDir = args[i]
		default:
			rest = append(rest, args[i])
		}
	}
	cfg, err := c.load()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Database.Driver == config.DriverPostgres {
		return args
	}
	url, err := testDatabase(cfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	var yaml []byte
	if c.configFile != "" {
		if yaml, err = os.ReadFile(c.configFile); err != nil {
			t.Fatal(err)
		}
	}
	yaml = fmt.Appendf(yaml, "\ndatabase: {driver: postgres, url: %q}\n", url)
	file := filepath.Join(t.TempDir(), "postgres.yaml")
	if err := os.WriteFile(file, yaml, 0o600); err != nil {
		t.Fatal(err)
	}
	return append(rest, "--config", file, "--data", cfg.DataDir)
}
