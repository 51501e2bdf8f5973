package acceptretry

import (
	"errors"
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
