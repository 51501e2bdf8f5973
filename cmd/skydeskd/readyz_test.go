package main

import (
	"database/sql"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skydesk/skydeskd/store"
	"github.com/skydesk/skydeskd/store/storetest"
)

// get answers one request through the ops mux.
func get(h http.Handler, path string) (int, string) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	b, _ := io.ReadAll(rec.Body)
	return rec.Code, string(b)
}

// /readyz is 200 while the store answers at the schema version it was
// opened at, 503 when the schema moved (a newer node's migration) and when
// the store is gone; /healthz says alive throughout.
func TestOps_readyz(t *testing.T) {
	storetest.SkipOnPostgres(t, "moves the schema through the SQLite file")
	dir := t.TempDir()
	s, err := store.Open(t.Context(), dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a := &app{store: sqliteDriver{s}, log: slog.New(slog.DiscardHandler), reg: prometheus.NewRegistry()}
	h := a.opsMux(http.NotFoundHandler())
	check := func(path string, code int, body string) {
		t.Helper()
		if c, b := get(h, path); c != code || !strings.HasPrefix(b, body) {
			t.Fatalf("%s = %d %q, want %d %q", path, c, b, code, body)
		}
	}
	check("/readyz", 200, "ready\n")
	check("/healthz", 200, "ok\n")

	// Another process migrates the database past this binary's schema.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, store.FileName))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO schema_migrations (version, applied) VALUES (9999, 0)`); err != nil {
		t.Fatal(err)
	}
	check("/readyz", 503, "not ready")
	if _, err := db.Exec(`DELETE FROM schema_migrations WHERE version = 9999`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	check("/readyz", 200, "ready\n")

	s.Close()
	check("/readyz", 503, "not ready")
	check("/healthz", 200, "ok\n")
}
