package store

import (
	"bytes"
	"io"
	"testing"
	"testing/iotest"
)

// FuzzCRLFReader: the streaming normalizer gives NormalizeCRLF's octets
// whatever the input and however the reads split it.
func FuzzCRLFReader(f *testing.F) {
	for _, s := range []string{"", "\r", "\n", "a\rb\nc\r\nd", "\r\r\n\n\r", "x\r"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		want := NormalizeCRLF(in)
		for _, r := range []io.Reader{CRLFReader(bytes.NewReader(in)), CRLFReader(iotest.OneByteReader(bytes.NewReader(in))),
			iotest.HalfReader(CRLFReader(iotest.DataErrReader(bytes.NewReader(in))))} {
			got, err := io.ReadAll(r)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("CRLFReader(%q) = %q, %v; want %q", in, got, err, want)
			}
		}
	})
}
