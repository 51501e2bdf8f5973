package main

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/skydesk/skydeskd/certs"
	"github.com/skydesk/skydeskd/store"
)

// The shared secrets: processes starting at once on one database agree on
// one value (the lock), a later one reads it, and the data directory's
// file of an earlier version is taken over, not replaced.
func TestSharedSecret(t *testing.T) {
	dir := t.TempDir()
	s, err := store.Open(t.Context(), dir, store.Options{PersonalDomain: "skydesk.jp"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	legacy := bytes.Repeat([]byte("k"), secretLen)
	if err := os.WriteFile(filepath.Join(dir, "srs-key"), append(legacy, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}

	got := make([][]byte, 4)
	var wg sync.WaitGroup
	for i := range got {
		wg.Go(func() {
			// Each its own Storage, as each node has.
			v, err := sharedSecret(t.Context(), certs.NewStorage(s.Certs()), dir, "web-secret")
			if err != nil {
				t.Error(err)
			}
			got[i] = v
		})
	}
	wg.Wait()
	for _, v := range got[1:] {
		if len(v) != secretLen || !bytes.Equal(v, got[0]) {
			t.Fatalf("concurrent first uses made different secrets: %x", got)
		}
	}
	if again, err := sharedSecret(t.Context(), certs.NewStorage(s.Certs()), t.TempDir(), "web-secret"); err != nil || !bytes.Equal(again, got[0]) {
		t.Errorf("another node's data directory: %x, %v; want the stored %x", again, err, got[0])
	}
	if _, err := os.Stat(filepath.Join(dir, "web-secret")); err == nil {
		t.Error("the secret was written to the data directory")
	}

	srs, err := sharedSecret(t.Context(), certs.NewStorage(s.Certs()), dir, "srs-key")
	if err != nil || !bytes.Equal(srs, legacy) {
		t.Errorf("srs-key with an earlier version's file: %q, %v; want the file's %q", srs, err, legacy)
	}
}
