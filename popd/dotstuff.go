package popd

import (
	"bufio"
	"bytes"
	"io"
)

// dotWriter writes a multi-line response body: a '.' at the start of a line
// is doubled (RFC 1939 §3 byte-stuffing). Bodies arrive with CRLF line
// endings already (the Session contract), so sizes listed are the octets
// sent before stuffing.
type dotWriter struct {
	w       *bufio.Writer
	bol     bool // at the beginning of a line
	written int64
}

func newDotWriter(w *bufio.Writer) *dotWriter { return &dotWriter{w: w, bol: true} }

func (d *dotWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if d.bol && p[0] == '.' {
			if err := d.w.WriteByte('.'); err != nil {
				return n - len(p), err
			}
		}
		i := bytes.IndexByte(p, '\n')
		chunk := p
		if i >= 0 {
			chunk = p[:i+1]
		}
		if _, err := d.w.Write(chunk); err != nil {
			return n - len(p), err
		}
		d.written += int64(len(chunk))
		d.bol = i >= 0
		p = p[len(chunk):]
	}
	return n, nil
}

// close ends the body: a CRLF if the last line lacked one, then ".CRLF".
func (d *dotWriter) close() error {
	if !d.bol {
		if _, err := d.w.WriteString("\r\n"); err != nil {
			return err
		}
	}
	_, err := d.w.WriteString(".\r\n")
	return err
}

// copyTop writes the header section, the blank line and then at most lines
// body lines of r to d (RFC 1939 §7 TOP). It stops reading once done.
func copyTop(d *dotWriter, r io.Reader, lines int) error {
	br := bufio.NewReaderSize(r, 4096)
	inBody := false
	for {
		if inBody && lines <= 0 {
			return nil
		}
		line, err := br.ReadSlice('\n')
		long := false
		for err == bufio.ErrBufferFull {
			long = true
			// A very long line: write it piecewise.
			if _, werr := d.Write(line); werr != nil {
				return werr
			}
			line, err = br.ReadSlice('\n')
		}
		if len(line) > 0 {
			if _, werr := d.Write(line); werr != nil {
				return werr
			}
			if inBody {
				lines--
			} else if !long && isBlankLine(line) && err == nil {
				inBody = true
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func isBlankLine(line []byte) bool {
	return len(line) == 1 && line[0] == '\n' || len(line) == 2 && line[0] == '\r' && line[1] == '\n'
}
