package config

import (
	"strings"
	"testing"
)

func TestDatabase_default(t *testing.T) {
	if d := Default().Database; d != (Database{Driver: DriverSQLite}) {
		t.Errorf("default database = %+v, want sqlite", d)
	}
	c, err := Load("../skydeskd.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Database != Default().Database {
		t.Errorf("example database %+v, want %+v", c.Database, Default().Database)
	}
}

func TestDatabase_decode(t *testing.T) {
	c := Default()
	err := Decode(strings.NewReader("database:\n  driver: postgres\n  url: postgresql://skydeskd@db.internal/skydeskd\n"), c)
	if err != nil {
		t.Fatal(err)
	}
	if c.Database.Driver != DriverPostgres || c.Database.URL != "postgresql://skydeskd@db.internal/skydeskd" {
		t.Errorf("database = %+v", c.Database)
	}
}

func TestDatabase_validationNamesTheKey(t *testing.T) {
	for _, tc := range []struct{ name, yaml, key string }{
		{"driver", "database:\n  driver: mysql\n", "database.driver"},
		{"no url", "database:\n  driver: postgres\n", "database.url"},
		{"scheme", "database:\n  driver: postgres\n  url: mysql://secret@db/x\n", "database.url"},
		{"sqlite url", "database:\n  url: postgres://db/x\n", "database.url"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Decode(strings.NewReader(tc.yaml), Default())
			if err == nil || !strings.Contains(err.Error(), tc.key) {
				t.Fatalf("error %v does not name %q", err, tc.key)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error %v shows the URL's credentials", err)
			}
		})
	}
}
