// Package golden compares a test's output with a file under
// testdata/golden, or rewrites the file when the test binary runs with
// -update (the go/printer convention). Every document skydeskd sends has a
// golden file; this is the one helper that reads and writes them.
package golden

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// update is registered once, for every test binary that imports golden.
var update = flag.Bool("update", false, "rewrite testdata/golden files")

// Updating reports whether the test binary runs with -update.
func Updating() bool { return *update }

// Path is the golden file of name: testdata/golden/name, relative to the
// package under test.
func Path(name string) string { return filepath.Join("testdata", "golden", name) }

// Check compares got with the golden file name, or rewrites it with
// -update. A difference reports the first differing line of each side.
func Check(t testing.TB, name string, got []byte) {
	t.Helper()
	path := Path(name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run `go test -update` in this package)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run `go test -update` in this package if intended)\n%s", path, Diff(string(want), string(got)))
	}
}

// Diff describes the first line where want and got differ, with its
// number, or "" when they are equal.
func Diff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := range max(len(w), len(g)) {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return fmt.Sprintf("line %d:\nwant: %q\n got: %q", i+1, wl, gl)
		}
	}
	return ""
}
