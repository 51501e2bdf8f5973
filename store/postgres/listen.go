package postgres

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/skydesk/skydeskd/store"
)

// domainsChannel is the NOTIFY channel of hosted-domain changes: every
// AddDomain and RemoveDomain notifies it in its transaction.
const domainsChannel = "skydeskd_domains"

// ListenerName is the application_name of the listening connection
// (pg_stat_activity), so an operator, or a test, can find it.
const ListenerName = "skydeskd-listen"

// SafetyPollInterval is the poll WatchDomains is meant to run beside the
// listener: a notification is lost only with the connection, and a
// reconnect catches up at once, so this is a last resort.
const SafetyPollInterval = 30 * time.Second

// Reconnect backoff of the listener: from the first up to the last.
const (
	listenBackoffMin = 100 * time.Millisecond
	listenBackoffMax = 5 * time.Second
)

// WatchDomains keeps the domain snapshot current until ctx ends: a
// dedicated connection LISTENs to domainsChannel and refreshes on each
// NOTIFY, so a domain added on another node (or by an admin command) is
// answered here within the notification's delivery time; interval is the
// safety-net poll beside it (SafetyPollInterval). The same connection
// LISTENs to queueChannel and runs the OnQueueChanged hooks on each of its
// notifications (one connection, dispatched by channel). A lost
// connection is reported to onErr and reconnected with backoff; each
// (re)connection refreshes once and runs the queue hooks once after
// LISTEN, so nothing committed meanwhile is missed.
func (s *Store) WatchDomains(ctx context.Context, interval time.Duration, onErr func(error)) {
	go store.PollDomains(ctx, s, interval, onErr)
	report := func(err error) {
		if ctx.Err() == nil && onErr != nil {
			onErr(err)
		}
	}
	backoff := listenBackoffMin
	for ctx.Err() == nil {
		connected, err := s.listenDomains(ctx)
		if ctx.Err() != nil {
			return
		}
		report(err)
		if connected {
			backoff = listenBackoffMin
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, listenBackoffMax)
	}
}

// listenDomains runs one listening connection, for every channel, until
// it fails or ctx ends; connected reports whether it got in sync (LISTEN,
// then a refresh).
func (s *Store) listenDomains(ctx context.Context) (connected bool, err error) {
	cfg := s.pool.Config().ConnConfig.Copy()
	cfg.RuntimeParams["application_name"] = ListenerName
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return false, fmt.Errorf("domain listener: connecting: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	// A failed refresh (the pool still on a restarted server's dead
	// connections) is retried by reconnecting: waiting here could miss
	// that change until the safety-net poll.
	handlers := map[string]func() error{
		domainsChannel: func() error {
			_, err := s.RefreshDomains(ctx)
			return err
		},
		queueChannel: func() error { s.listen.queueChanged(); return nil },
	}
	for ch := range handlers {
		if _, err := conn.Exec(ctx, "LISTEN "+ch); err != nil {
			return false, fmt.Errorf("domain listener: LISTEN %s: %w", ch, err)
		}
	}
	// Catch up after LISTEN (a change committed before it sent no
	// notification this connection hears), then follow each NOTIFY.
	for _, h := range handlers {
		if err := h(); err != nil {
			return false, err
		}
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return true, fmt.Errorf("domain listener: %w", err)
		}
		if h := handlers[n.Channel]; h != nil {
			if err := h(); err != nil {
				return true, err
			}
		}
	}
}

// listenHooks are the functions run on notifications of channels other
// than the domain list's (whose handler refreshes the snapshot).
type listenHooks struct {
	mu    sync.Mutex
	queue []func()
}

// OnQueueChanged registers f to run when mail was queued on any node (a
// NOTIFY on queueChannel, sent by the queueing transaction's commit) and
// after each (re)connection of the listener, which may have missed some;
// WatchDomains runs the listener. f must not block (a relay's Wake).
func (s *Store) OnQueueChanged(f func()) {
	s.listen.mu.Lock()
	defer s.listen.mu.Unlock()
	s.listen.queue = append(s.listen.queue, f)
}

func (h *listenHooks) queueChanged() {
	h.mu.Lock()
	fs := h.queue
	h.mu.Unlock()
	for _, f := range fs {
		f()
	}
}
