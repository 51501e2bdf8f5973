package smtpd

import (
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// errBusy: the process-wide budget of mail in flight stayed exhausted
// (RFC 3463 X.3.1: mail system full).
var errBusy = smtpErr(452, smtp.EnhancedCode{4, 3, 1}, "Too much mail in progress, please try again later")

// inflight bounds the octets of mail received but not yet stored, over
// every listener: DATA takes octets as it spools and gives them back when
// the message is stored or refused. When the budget is exhausted a
// session waits up to wait for octets to be given back, then is refused
// with errBusy (the client retries later; nothing was stored).
type inflight struct {
	max  int64
	wait time.Duration

	mu    sync.Mutex
	used  int64
	freed chan struct{} // closed and replaced whenever octets are given back
}

func newInflight(max int64, wait time.Duration) *inflight {
	return &inflight{max: max, wait: wait, freed: make(chan struct{})}
}

// take reserves n octets, waiting up to f.wait; errBusy if they never
// become free.
func (f *inflight) take(n int64) error {
	var timer *time.Timer
	for {
		f.mu.Lock()
		if f.used+n <= f.max {
			f.used += n
			f.mu.Unlock()
			if timer != nil {
				timer.Stop()
			}
			return nil
		}
		freed := f.freed
		f.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(f.wait)
		}
		select {
		case <-freed:
		case <-timer.C:
			return errBusy
		}
	}
}

// give returns n octets.
func (f *inflight) give(n int64) {
	if n == 0 {
		return
	}
	f.mu.Lock()
	f.used -= n
	close(f.freed)
	f.freed = make(chan struct{})
	f.mu.Unlock()
}

// inUse is the octets held now.
func (f *inflight) inUse() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.used
}
