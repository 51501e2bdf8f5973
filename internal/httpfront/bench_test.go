package httpfront

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"testing"
)

// benchKeepAlive sends GET /hot on keep-alive connections, one per
// parallel worker, and reads each answer: a round trip over loopback,
// client included, as wrk measures it.
func benchKeepAlive(b *testing.B, addr string, tlsConf *tls.Config) {
	b.Helper()
	req := []byte("GET /hot HTTP/1.1\r\nHost: autoconfig.example.jp\r\nUser-Agent: bench\r\n\r\n")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var c net.Conn
		var err error
		if tlsConf != nil {
			c, err = tls.Dial("tcp", addr, tlsConf)
		} else {
			c, err = net.Dial("tcp", addr)
		}
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		for pb.Next() {
			if _, err := c.Write(req); err != nil {
				b.Error(err)
				return
			}
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

// BenchmarkFrontKeepAlive is the front answering from its Responder.
func BenchmarkFrontKeepAlive(b *testing.B) {
	m := testResponder()
	addr, _ := startFront(b, m, testServer(reference(m)), nil)
	benchKeepAlive(b, addr, nil)
}

// BenchmarkNetHTTPKeepAlive is the same answer from a net/http handler:
// what the front saves.
func BenchmarkNetHTTPKeepAlive(b *testing.B) {
	m := testResponder()
	addr := startNetHTTP(b, testServer(reference(m)))
	benchKeepAlive(b, addr, nil)
}

func BenchmarkFrontKeepAliveTLS(b *testing.B) {
	m := testResponder()
	serverTLS, clientTLS := testTLS(b)
	clientTLS.NextProtos = []string{"http/1.1"}
	addr, _ := startFront(b, m, testServer(reference(m)), serverTLS)
	benchKeepAlive(b, addr, clientTLS)
}

func BenchmarkNetHTTPKeepAliveTLS(b *testing.B) {
	m := testResponder()
	serverTLS, clientTLS := testTLS(b)
	clientTLS.NextProtos = []string{"http/1.1"}
	srv := testServer(reference(m))
	srv.TLSConfig = serverTLS
	l := listen(b)
	go func() { _ = srv.Serve(tls.NewListener(l, serverTLS)) }()
	b.Cleanup(func() { _ = srv.Close() })
	benchKeepAlive(b, l.Addr().String(), clientTLS)
}
