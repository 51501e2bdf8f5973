package templates

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestSchemaCopiesCurrent: the schemas the tests validate against are
// copies (so tests don't depend on the checkout layout); when the shared
// specs are beside the repository (../shared, as in CI), the copies must
// still equal them.
func TestSchemaCopiesCurrent(t *testing.T) {
	shared := filepath.Join("..", "..", "shared", "specs")
	if _, err := os.Stat(shared); err != nil {
		t.Skipf("no shared specs beside the repository: %v", err)
	}
	for copyName, orig := range map[string]string{
		"autoconfig.rng":              "autoconfig/autoconfig.rng",
		"TopLevel.yaml":               "apple/TopLevel.yaml",
		"CommonPayloadKeys.yaml":      "apple/CommonPayloadKeys.yaml",
		"com.apple.mail.managed.yaml": "apple/com.apple.mail.managed.yaml",
		"LICENSE-apple.txt":           "apple/LICENSE.txt",
		"LICENSE-autoconfig.md":       "autoconfig/LICENSE.md",
	} {
		a, err := os.ReadFile(filepath.Join("testdata", "schema", copyName))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(shared, orig))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("testdata/schema/%s differs from shared/specs/%s: copy it again", copyName, orig)
		}
	}
}
