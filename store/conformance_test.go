package store_test

import (
	"testing"

	"github.com/skydesk/skydeskd/store"
	"github.com/skydesk/skydeskd/store/storetest"
)

// The SQLite driver passes the conformance suite every driver runs.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Driver { return storetest.Empty(t) })
}
