package smtpd

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/emersion/go-smtp"

	"github.com/skydesk/skydeskd/store"
)

// maxHeaderSection bounds the header section DATA keeps in memory (the
// fields checkFrom and the classifiers read, and the line ending them).
// Real header sections are a few KiB; a long Received chain stays far
// below it.
const maxHeaderSection = 1 << 20

// errHeaderTooBig: the header section does not end within
// maxHeaderSection (RFC 3463 X.3.4: message too big for the system).
var errHeaderTooBig = smtpErr(552, smtp.EnhancedCode{5, 3, 4}, "Header section too large")

// spooled is a message being received: its header section parsed in
// memory (m.raw holds it and the line that ended it), the rest in a spool
// file that is already unlinked, so a crash leaves nothing behind.
type spooled struct {
	m    message
	mem  []byte   // the rest while it is at most spoolStep octets
	file *os.File // the rest once longer (then mem is nil)
	size int64    // octets of the rest
	held int64    // octets of the in-flight budget held
}

// spoolStep is how much of the body is copied (and taken from the
// in-flight budget) at once, and the most of it kept in memory: a longer
// rest goes to a spool file.
const spoolStep = 256 << 10

var stepPool = sync.Pool{New: func() any { b := make([]byte, spoolStep); return &b }}

// spool reads DATA from r: every line ending made CRLF (store.CRLFReader),
// the header section kept (at most maxHeaderSection octets), the rest
// copied to a file in dir, taking its octets from budget as it goes. At
// most max octets are read from r (errTooBig beyond). The caller must
// close the result, also on error.
func spool(r io.Reader, max int64, dir string, budget *inflight) (sp *spooled, err error) {
	lr := &io.LimitedReader{R: r, N: max + 1}
	br := bufio.NewReaderSize(store.CRLFReader(lr), 64<<10)
	sp = &spooled{}
	hdr, err := readHeaderSection(br)
	if err != nil {
		return sp, err
	}
	sp.m = parseMessage(hdr)
	if _, err := br.Peek(1); err == io.EOF {
		return sp, overLimit(lr)
	}
	bufp := stepPool.Get().(*[]byte)
	defer stepPool.Put(bufp)
	for {
		if err := budget.take(spoolStep); err != nil {
			return sp, err
		}
		sp.held += spoolStep
		n, rerr := io.ReadFull(br, *bufp)
		if err := sp.write((*bufp)[:n], dir); err != nil {
			return sp, err
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			break
		}
		if rerr != nil {
			return sp, fmt.Errorf("reading message: %w", rerr)
		}
	}
	return sp, overLimit(lr)
}

// write adds p to the rest: in memory up to spoolStep octets, then all of
// it in the spool file.
func (sp *spooled) write(p []byte, dir string) error {
	if sp.file == nil && sp.size+int64(len(p)) <= spoolStep {
		sp.mem = append(sp.mem, p...)
		sp.size += int64(len(p))
		return nil
	}
	if sp.file == nil {
		f, err := os.CreateTemp(dir, "skydeskd-spool-*")
		if err != nil {
			return fmt.Errorf("creating spool file: %w", err)
		}
		// Unlinked at once: the open file lives on until Close.
		_ = os.Remove(f.Name())
		sp.file = f
		if _, err := f.Write(sp.mem); err != nil {
			return fmt.Errorf("writing spool file: %w", err)
		}
		sp.mem = nil
	}
	if _, err := sp.file.Write(p); err != nil {
		return fmt.Errorf("writing spool file: %w", err)
	}
	sp.size += int64(len(p))
	return nil
}

// overLimit reports errTooBig once more than the limit was read.
func overLimit(lr *io.LimitedReader) error {
	if lr.N <= 0 {
		return errTooBig
	}
	return nil
}

// readHeaderSection reads lines up to and including the one that ends the
// header section by parseMessage's rules: the blank line, or the first
// line that is neither a header field nor (after one) a continuation.
func readHeaderSection(br *bufio.Reader) ([]byte, error) {
	var hdr []byte
	seenField := false
	for {
		start := len(hdr)
		for {
			part, err := br.ReadSlice('\n')
			hdr = append(hdr, part...)
			if len(hdr) > maxHeaderSection {
				return nil, errHeaderTooBig
			}
			if err == bufio.ErrBufferFull {
				continue
			}
			if errors.Is(err, io.EOF) {
				return hdr, nil
			}
			if err != nil {
				return nil, fmt.Errorf("reading message: %w", err)
			}
			break
		}
		line := hdr[start : len(hdr)-2] // without its CRLF (CRLFReader)
		switch {
		case len(line) == 0:
			return hdr, nil
		case (line[0] == ' ' || line[0] == '\t') && seenField:
		case isField(line):
			seenField = true
		default:
			return hdr, nil
		}
	}
}

// isField reports whether line starts a header field ("name:").
func isField(line []byte) bool {
	for i, c := range line {
		if c == ':' {
			return i > 0
		}
		if c < 33 || c > 126 {
			return false
		}
	}
	return false
}

// Close releases the budget and the spool file.
func (sp *spooled) Close(budget *inflight) {
	budget.give(sp.held)
	sp.held = 0
	if sp.file != nil {
		_ = sp.file.Close()
		sp.file = nil
	}
}

// rest is what follows the header section (body), as a section reader.
func (sp *spooled) rest() *io.SectionReader {
	if sp.file == nil {
		return io.NewSectionReader(bytes.NewReader(sp.mem), 0, sp.size)
	}
	return io.NewSectionReader(sp.file, 0, sp.size)
}

// message is head followed by the rest: in memory while short, else a
// store.Body reading the spool file.
func (sp *spooled) message(head []byte) (b []byte, stream store.Body) {
	if sp.file == nil {
		return append(head, sp.mem...), nil
	}
	return nil, joined{head, sp.rest()}
}

// joined is head followed by tail, as one store.Body.
type joined struct {
	head []byte
	tail *io.SectionReader
}

var _ store.Body = joined{}

func (j joined) Size() int64 { return int64(len(j.head)) + j.tail.Size() }

func (j joined) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	if off < int64(len(j.head)) {
		n = copy(p, j.head[off:])
	}
	if n == len(p) {
		return n, nil
	}
	m, err := j.tail.ReadAt(p[n:], max(off-int64(len(j.head)), 0))
	return n + m, err
}
