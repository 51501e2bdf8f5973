package httpfront

import (
	"bufio"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// slack is how stale a deadline may be before it is set again: resetting
// a deadline takes the runtime poller's lock, and a timeout that fires a
// sixteenth early (at most a second) is still the configured one.
func slack(d time.Duration) time.Duration { return min(time.Second, d/16) }

// nextDeadline returns the deadline for a timeout d when the one last set
// (*by) is too stale to keep; ok false: keep it (or d is no limit).
func nextDeadline(by *time.Time, d time.Duration) (t time.Time, ok bool) {
	if d <= 0 {
		return time.Time{}, false
	}
	if t = time.Now().Add(d); t.Before(*by) || t.Sub(*by) > slack(d) {
		*by = t
		return t, true
	}
	return time.Time{}, false
}

func (c *conn) setReadDeadline(d time.Duration) {
	if by, ok := nextDeadline(&c.readBy, d); ok {
		_ = c.nc.SetReadDeadline(by)
	}
}

func (c *conn) setWriteDeadline(d time.Duration) {
	if by, ok := nextDeadline(&c.writeBy, d); ok {
		_ = c.nc.SetWriteDeadline(by)
	}
}

// appendAnswer adds one answer to the output buffer; readHead flushes it
// before it waits.
func (c *conn) appendAnswer(req *Request, a *Answer, closeAfter bool) {
	if c.out == nil {
		c.out = writerPool.Get().(*[]byte)
	}
	b := appendStatusLine(*c.out, a.Status)
	b = append(b, a.Header...)
	b = append(b, "Date: "...)
	b = append(b, httpDate()...)
	b = append(b, "\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(a.Body)), 10)
	if closeAfter {
		b = append(b, "\r\nConnection: close"...)
	}
	b = append(b, "\r\n\r\n"...)
	if req.Method != http.MethodHead {
		b = append(b, a.Body...)
	}
	*c.out = b
}

// flush writes the buffered answers and returns the buffer to the pool.
func (c *conn) flush() error {
	if c.out == nil {
		return nil
	}
	out := c.out
	c.out = nil
	defer func() {
		if cap(*out) <= 4*flushAt {
			*out = (*out)[:0]
			writerPool.Put(out)
		}
	}()
	if len(*out) == 0 {
		return nil
	}
	c.setWriteDeadline(c.f.srv.WriteTimeout)
	_, err := c.nc.Write(*out)
	return err
}

func appendStatusLine(b []byte, status int) []byte {
	switch status {
	case http.StatusOK:
		return append(b, "HTTP/1.1 200 OK\r\n"...)
	case http.StatusNotFound:
		return append(b, "HTTP/1.1 404 Not Found\r\n"...)
	}
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(status)...)
	return append(b, "\r\n"...)
}

// flushAt bounds the answers held for a pipelining client.
const flushAt = 16 << 10

var (
	readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, maxHead) }}
	writerPool = sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}
)

// dateCache holds the Date header value of the current second.
var dateCache atomic.Pointer[dateValue]

type dateValue struct {
	sec  int64
	text []byte
}

// httpDate returns the IMF-fixdate of now (RFC 9110 §5.6.7), formatted
// once a second.
func httpDate() []byte {
	now := time.Now()
	sec := now.Unix()
	if d := dateCache.Load(); d != nil && d.sec == sec {
		return d.text
	}
	d := &dateValue{sec: sec, text: now.UTC().AppendFormat(nil, http.TimeFormat)}
	dateCache.Store(d)
	return d.text
}
