package config

import (
	"errors"
	"fmt"
	"net/url"
)

// Database drivers.
const (
	// DriverSQLite is the embedded default: one file in data_dir, one node.
	DriverSQLite = "sqlite"
	// DriverPostgres is PostgreSQL, shared by any number of nodes.
	DriverPostgres = "postgres"
)

// Database chooses the store driver.
type Database struct {
	// Driver is "sqlite" (default) or "postgres".
	Driver string `yaml:"driver"`
	// URL is the PostgreSQL connection URL
	// (postgres://user@host:5432/dbname?sslmode=verify-full), only with
	// driver postgres. The password may stay out of the file: PGPASSWORD
	// and ~/.pgpass are read as libpq reads them; pool_max_conns sets the
	// pool size (default 16).
	URL string `yaml:"url"`
}

func defaultDatabase() Database { return Database{Driver: DriverSQLite} }

// validate refuses an unknown driver and a URL that cannot be meant,
// naming each key. The URL itself is not echoed: it may hold a password.
func (d Database) validate() error {
	switch d.Driver {
	case DriverSQLite:
		if d.URL != "" {
			return errors.New("database.url: only used with driver postgres (sqlite keeps its file in data_dir)")
		}
	case DriverPostgres:
		u, err := url.Parse(d.URL)
		switch {
		case d.URL == "":
			return errors.New("database.url: required with driver postgres")
		case err != nil:
			return errors.New("database.url: not a URL")
		case u.Scheme != "postgres" && u.Scheme != "postgresql":
			return errors.New("database.url: must start with postgres:// or postgresql://")
		}
	default:
		return fmt.Errorf("database.driver: %q is not sqlite or postgres", d.Driver)
	}
	return nil
}
