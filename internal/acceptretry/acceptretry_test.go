package acceptretry

import (
	"errors"
	"log/slog"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

func TestTemporary(t *testing.T) {
	accept := func(e error) error {
		return &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept", e)}
	}
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{accept(syscall.EMFILE), true},
		{accept(syscall.ENFILE), true},
		{accept(syscall.ECONNABORTED), true},
		{os.ErrDeadlineExceeded, true},
		{net.ErrClosed, false},
		{accept(syscall.EBADF), false},
		{errors.New("other"), false},
	} {
		if got := Temporary(tc.err); got != tc.want {
			t.Errorf("Temporary(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	var b Backoff
	var got []time.Duration
	for range 10 {
		got = append(got, b.Next())
	}
	want := []time.Duration{5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("waits %v", got)
		}
	}
	b.Reset()
	if d := b.Next(); d != 5*time.Millisecond {
		t.Errorf("after Reset: %v", d)
	}
}

// Loop retries a temporary error, hands connections on, and ends with
// the handler's error or, once closing, with the closed error.
func TestLoop(t *testing.T) {
	l := &scripted{errs: []error{syscall.EMFILE, nil, errStop}}
	var handled int
	err := Loop(l, func() bool { return false }, nil, slog.New(slog.DiscardHandler), "test accept", func(c net.Conn) error {
		handled++
		return nil
	})
	if !errors.Is(err, errStop) || handled != 1 || l.calls != 3 {
		t.Fatalf("err %v, handled %d, accepts %d; want errStop, 1, 3", err, handled, l.calls)
	}
	l = &scripted{errs: []error{nil}}
	if err := Loop(l, func() bool { return false }, nil, slog.New(slog.DiscardHandler), "test accept", func(net.Conn) error { return errStop }); !errors.Is(err, errStop) {
		t.Fatalf("handler's error: %v", err)
	}
	l = &scripted{errs: []error{net.ErrClosed}}
	closedErr := errors.New("server closed")
	if err := Loop(l, func() bool { return true }, closedErr, slog.New(slog.DiscardHandler), "test accept", nil); err != closedErr {
		t.Fatalf("closing: %v, want the closed error", err)
	}
}

var errStop = errors.New("stop")

// scripted is a listener whose Accepts return errs in turn (nil: a
// connection).
type scripted struct {
	net.Listener
	errs  []error
	calls int
}

func (s *scripted) Accept() (net.Conn, error) {
	err := s.errs[s.calls]
	s.calls++
	if err != nil {
		return nil, err
	}
	c, _ := net.Pipe()
	return c, nil
}
