package popd

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
)

func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{"USER taro@skydesk.jp\r\n", "PASS a b  c\r\n", "list 1\n", "TOP 1 10\r\n",
		"AUTH PLAIN AHRhcm8AeA==\r\n", "\r\n", " \r\n", "X\x00Y\r\n", "ÜSER x\r\n", "RETR\t1\r\n", "NOOP"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		cmd, err := parseCommand(line)
		if err != nil {
			if cmd != (command{}) {
				t.Fatalf("error %v with non-empty command %+v", err, cmd)
			}
			return
		}
		if n := len(cmd.name); n == 0 || n > maxKeyword {
			t.Fatalf("keyword length %d", n)
		}
		if cmd.name != strings.ToUpper(cmd.name) {
			t.Fatalf("keyword %q not upper case", cmd.name)
		}
		for _, c := range []byte(cmd.name + cmd.arg) {
			if c < 0x20 || c == 0x7f {
				t.Fatalf("control character %#x in %+v", c, cmd)
			}
		}
		// The parse is faithful: keyword and argument rebuild the line.
		rebuilt := cmd.name
		if strings.Contains(strings.TrimRight(string(line), "\r\n"), " ") {
			rebuilt += " " + cmd.arg
		}
		if trimmed := strings.TrimSuffix(strings.TrimSuffix(string(line), "\n"), "\r"); !strings.EqualFold(rebuilt, trimmed) {
			t.Fatalf("rebuilt %q from %q", rebuilt, trimmed)
		}
		for _, f := range fields(cmd.arg) {
			if f == "" || strings.Contains(f, " ") {
				t.Fatalf("bad field %q", f)
			}
			if n, ok := parseNumber(f); ok && n < 0 {
				t.Fatalf("negative number from %q", f)
			}
		}
	})
}

// unstuff reverses dot-stuffing: what a client does with a multi-line body.
func unstuff(b []byte) []byte {
	var out []byte
	for _, l := range bytes.SplitAfter(b, []byte("\r\n")) {
		out = append(out, bytes.TrimPrefix(l, []byte("."))...)
	}
	return out
}

func FuzzDotWriter(f *testing.F) {
	f.Add([]byte(".a\r\n..b\r\nc.\r\n.\r\n"), 3)
	f.Add([]byte("no newline"), 1)
	f.Add([]byte("\r\n.\r\n"), 2)
	f.Fuzz(func(t *testing.T, body []byte, split int) {
		// The contract: bodies arrive with CRLF line endings.
		body = bytes.ReplaceAll(bytes.ReplaceAll(body, []byte("\r"), nil), []byte("\n"), []byte("\r\n"))
		var buf bytes.Buffer
		w := bufio.NewWriter(&buf)
		d := newDotWriter(w)
		// Arbitrary write boundaries must not change the output.
		if split < 1 {
			split = 1
		}
		for p := body; len(p) > 0; {
			n := min(split, len(p))
			if _, err := d.Write(p[:n]); err != nil {
				t.Fatal(err)
			}
			p = p[n:]
		}
		if err := d.close(); err != nil {
			t.Fatal(err)
		}
		w.Flush()
		out := buf.Bytes()
		if !bytes.HasSuffix(out, []byte("\r\n.\r\n")) && !bytes.Equal(out, []byte(".\r\n")) {
			t.Fatalf("no terminator: %q", out)
		}
		payload := out[:len(out)-3]
		if bytes.Contains(append([]byte("\r\n"), payload...), []byte("\r\n.\r\n")) {
			t.Fatalf("unstuffed terminator inside the body: %q", out)
		}
		want := body
		if len(want) > 0 && !bytes.HasSuffix(want, []byte("\r\n")) {
			want = append(bytes.Clone(want), '\r', '\n')
		}
		if got := unstuff(payload); !bytes.Equal(got, want) {
			t.Fatalf("round trip: got %q, want %q", got, want)
		}
	})
}

func BenchmarkDotWriter(b *testing.B) {
	body := bytes.Repeat([]byte("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod\r\n.tempor\r\n"), 256)
	w := bufio.NewWriterSize(&discard{}, writeBufSize)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		d := newDotWriter(w)
		_, _ = d.Write(body)
		_ = d.close()
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func BenchmarkParseCommand(b *testing.B) {
	line := []byte("RETR 42\r\n")
	b.ReportAllocs()
	for b.Loop() {
		_, _ = parseCommand(line)
	}
}
