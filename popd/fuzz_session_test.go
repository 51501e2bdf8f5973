package popd_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skydesk/skydeskd/popd"
	"github.com/skydesk/skydeskd/popd/popdmem"
)

// errorCounter counts log records at level Error (a recovered panic, an
// unexpected backend error).
type errorCounter struct{ n atomic.Int64 }

func (h *errorCounter) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelError }
func (h *errorCounter) Handle(context.Context, slog.Record) error    { h.n.Add(1); return nil }
func (h *errorCounter) WithAttrs([]slog.Attr) slog.Handler           { return h }
func (h *errorCounter) WithGroup(string) slog.Handler                { return h }

// FuzzSession drives the whole state machine with arbitrary client input
// after a login: no panic, no internal error, every line CRLF-terminated,
// and the maildrop lock released when the session ends however it ends.
func FuzzSession(f *testing.F) {
	for _, s := range []string{"STAT\r\nLIST\r\nUIDL 1\r\n", "RETR 1\r\nTOP 2 0\r\nDELE 1\r\nRSET\r\n",
		"DELE 1\r\nDELE 1\r\nLIST 1\r\nQUIT\r\n", "AUTH PLAIN\r\n*\r\n", "CAPA\r\nNOOP x\r\nSTLS\r\n", "TOP 1 99999999\r\n\x00\r\n"} {
		f.Add([]byte(s))
	}
	be := popdmem.New()
	be.AddUser("taro@skydesk.jp", "pw")
	be.Deliver("taro@skydesk.jp", []byte("Subject: a\r\n\r\n.dot\r\nline\r\n"))
	be.Deliver("taro@skydesk.jp", []byte("Subject: b\r\n\r\nno final newline"))
	errs := &errorCounter{}
	srv := popd.NewServer(be, popd.Options{InsecureAuth: true, Logger: slog.New(errs), MaxLineLength: 512})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	f.Cleanup(func() { srv.Close() })

	session := func(t *testing.T, input []byte) []byte {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		go func() {
			_, _ = c.Write(input)
			_ = c.(*net.TCPConn).CloseWrite()
		}()
		out, err := io.ReadAll(c)
		if err != nil {
			t.Fatalf("reading: %v", err)
		}
		return out
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		before := errs.n.Load()
		in := append([]byte("USER taro@skydesk.jp\r\nPASS pw\r\n"), data...)
		// The server never sends DELE effects without QUIT; expunge with
		// popdmem would change later runs, so the input ends with a drop.
		if i := indexFoldASCII(in, "QUIT"); i >= 0 {
			in = in[:i]
		}
		out := session(t, in)
		if len(out) > 0 && !bytes.HasSuffix(out, []byte("\r\n")) {
			t.Fatalf("output not CRLF-terminated: %q", out)
		}
		if bytes.Contains(bytes.ReplaceAll(out, []byte("\r\n"), nil), []byte("\n")) {
			t.Fatalf("bare LF on the wire: %q", out)
		}
		if bytes.Contains(out, []byte("internal error")) || errs.n.Load() != before {
			t.Fatalf("internal error for input %q:\n%s", data, out)
		}
		// The lock is released once the server has finished the session.
		deadline := time.Now().Add(10 * time.Second)
		for {
			got := session(t, []byte("USER taro@skydesk.jp\r\nPASS pw\r\n"))
			if bytes.Contains(got, []byte("+OK logged in, 2 messages")) {
				break
			}
			if !bytes.Contains(got, []byte("[IN-USE]")) || time.Now().After(deadline) {
				t.Fatalf("login after the fuzzed session: %q", got)
			}
		}
	})
}

// indexFoldASCII is bytes.Index ignoring ASCII case, keeping offsets
// (bytes.ToUpper may change the length of invalid UTF-8).
func indexFoldASCII(b []byte, word string) int {
	for i := 0; i+len(word) <= len(b); i++ {
		if bytes.EqualFold(b[i:i+len(word)], []byte(word)) {
			return i
		}
	}
	return -1
}
