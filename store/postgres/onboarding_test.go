package postgres_test

import (
	"sync"
	"testing"
	"time"

	"github.com/skydesk/skydeskd/store/postgres"
	"github.com/skydesk/skydeskd/store/postgres/pgtest"
)

// Several nodes recording the same discovery at once (a client asking
// every node behind a load balancer): one row, one "first", whatever the
// interleaving, because the nodes share the key and decide under the
// address's advisory lock.
func TestRecordDiscovery_nodesAtOnce(t *testing.T) {
	url := pgtest.URL(t)
	const n = 8
	nodes := make([]*postgres.Store, n)
	for i := range nodes {
		nodes[i] = open(t, url)
	}
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	for round := range 5 {
		addr := []string{"taro", "hanako", "jiro", "saburo", "shiro"}[round] + "@skydesk.jp"
		var wg sync.WaitGroup
		first := make([]bool, n)
		errs := make([]error, n)
		start := make(chan struct{})
		for i, s := range nodes {
			wg.Go(func() {
				<-start
				first[i], errs[i] = s.RecordDiscovery(t.Context(), addr, "thunderbird", at.Add(time.Duration(i)*time.Second))
			})
		}
		close(start)
		wg.Wait()
		var firsts int
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("node %d: %v", i, errs[i])
			}
			if first[i] {
				firsts++
			}
		}
		if firsts != 1 {
			t.Errorf("%s: %d nodes recorded a first discovery, want 1", addr, firsts)
		}
		var rows int
		if err := nodes[0].QueryRowForTest(t.Context(), `SELECT count(*) FROM onboarding WHERE NOT settled`).Scan(&rows); err != nil || rows != round+1 {
			t.Errorf("after %s: %d open rows (%v), want %d", addr, rows, err, round+1)
		}
	}
}
