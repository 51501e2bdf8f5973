package golden

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDiff(t *testing.T) {
	for _, tc := range []struct{ want, got, diff string }{
		{"a\nb\n", "a\nb\n", ""},
		{"a\nb\n", "a\nc\n", "line 2:\nwant: \"b\"\n got: \"c\""},
		{"a\n", "a\nextra", "line 2:\nwant: \"\"\n got: \"extra\""},
	} {
		if d := Diff(tc.want, tc.got); d != tc.diff {
			t.Errorf("Diff(%q, %q) = %q, want %q", tc.want, tc.got, d, tc.diff)
		}
	}
}

// recorder captures Check's failures without failing the outer test.
type recorder struct {
	testing.TB
	failed []string
}

func (r *recorder) Helper()                        {}
func (r *recorder) Errorf(format string, a ...any) { r.failed = append(r.failed, format) }
func (r *recorder) Fatalf(format string, a ...any) { r.failed = append(r.failed, format) }

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.MkdirAll(filepath.Join("testdata", "golden"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(Path("doc.xml"), []byte("<a/>\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &recorder{TB: t}
	Check(r, "doc.xml", []byte("<a/>\n"))
	if len(r.failed) != 0 {
		t.Fatalf("equal bytes failed: %v", r.failed)
	}
	Check(r, "doc.xml", []byte("<b/>\n"))
	if len(r.failed) != 1 || !strings.Contains(r.failed[0], "differs") {
		t.Fatalf("different bytes: %v", r.failed)
	}
	Check(r, "missing.xml", nil)
	if len(r.failed) != 2 || !strings.Contains(r.failed[1], "-update") {
		t.Fatalf("missing file: %v", r.failed)
	}
}
