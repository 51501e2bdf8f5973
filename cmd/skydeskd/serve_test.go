package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startServe runs `skydeskd serve --config FILE` in-process with every
// listener on 127.0.0.1:0 and returns the bound addresses by service name,
// read from the "listening" log lines (no sleeps). The server stops when
// the test ends; its exit code is checked.
func startServe(t *testing.T, extraYAML string) map[string]string {
	t.Helper()
	t.Setenv("SKYDESKD_TEST_FAST_HASH", "1")
	dir := t.TempDir()
	cfg := fmt.Sprintf(`data_dir: %s
log: {format: json, level: info}
listen: {http: "127.0.0.1:0", https: "127.0.0.1:0", dns: "", pop3s: "", pop3: "", smtps: "", submission: "", mx: ""}
%s`, dir, extraYAML)
	file := filepath.Join(dir, "skydeskd.yaml")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--config", file}, env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: pw, getenv: os.Getenv})
		pw.Close()
	}()
	addrs := map[string]string{}
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		var line struct{ Msg, Service, Addr string }
		if json.Unmarshal(sc.Bytes(), &line) != nil {
			continue
		}
		if line.Msg == "listening" {
			addrs[line.Service] = line.Addr
		}
		if len(addrs) == 2 {
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != exitOK {
				t.Errorf("serve exited %d after SIGTERM-equivalent", code)
			}
		case <-time.After(shutdownTimeout + 5*time.Second):
			t.Error("serve did not shut down")
		}
	})
	if len(addrs) != 2 {
		t.Fatalf("listeners: %v", addrs)
	}
	return addrs
}

func TestServeHealthzAndMetrics(t *testing.T) {
	addrs := startServe(t, "")
	resp, err := http.Get("http://" + addrs["http"] + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok\n" {
		t.Fatalf("/healthz = %d %q", resp.StatusCode, body)
	}
	resp, err = http.Get("http://" + addrs["http"] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "go_goroutines") {
		t.Fatalf("/metrics = %d", resp.StatusCode)
	}
}

func TestServeRefusesBadConfig(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "bad.yaml")
	os.WriteFile(file, []byte("provider:\n  pop:\n    port: 0\n"), 0o600)
	var errb strings.Builder
	code := run(context.Background(), []string{"serve", "--config", file}, env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: &errb, getenv: os.Getenv})
	if code != exitRefused || !strings.Contains(errb.String(), "provider.pop.port") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
}

// TestServeHTTPFront: on both listeners, a cached autoconfig answer is
// sent by the connection front itself (internal/httpfront), everything
// else by net/http, and /metrics tells them apart.
func TestServeHTTPFront(t *testing.T) {
	addrs := startServe(t, "")
	const tb = "/mail/config-v1.1.xml?emailaddress=taro%40skydesk.jp"
	const apple = "/apple/mobileconfig?email=taro%40skydesk.jp"
	dialers := map[string]func() net.Conn{
		"http": func() net.Conn {
			c, err := net.Dial("tcp", addrs["http"])
			if err != nil {
				t.Fatal(err)
			}
			return c
		},
		"https": func() net.Conn {
			c, err := tls.Dial("tcp", addrs["https"], &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}}) //nolint:gosec // the test's self-signed cert
			if err != nil {
				t.Fatal(err)
			}
			return c
		},
	}
	// requests sends the requests on one connection and checks each
	// answer is 200 with a body (HEAD: without).
	requests := func(listener string, reqs ...string) {
		t.Helper()
		c := dialers[listener]()
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(c)
		for _, r := range reqs {
			method, target, _ := strings.Cut(r, " ")
			if _, err := io.WriteString(c, method+" "+target+" HTTP/1.1\r\nHost: autoconfig.skydesk.jp\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			req, _ := http.NewRequest(method, target, nil)
			resp, err := http.ReadResponse(br, req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || (method == "GET") != (len(body) > 0) || resp.ContentLength <= 0 {
				t.Errorf("%s %s: %d, %d bytes, Content-Length %d", listener, r, resp.StatusCode, len(body), resp.ContentLength)
			}
		}
	}
	requests("http", "GET "+tb)                               // first: built by the handler
	requests("http", "GET "+tb, "HEAD "+tb, "GET "+tb)        // then: the front
	requests("https", "GET "+apple)                           // signed by the handler
	requests("https", "GET "+apple, "GET "+tb, "HEAD "+apple) // the front

	resp, err := http.Get("http://" + addrs["http"] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`skydeskd_http_front_answers_total{listener="http"} 3`,
		`skydeskd_http_front_answers_total{listener="https"} 3`,
		`skydeskd_http_handoffs_total{listener="http"} 2`, // the first request, and this one
		`skydeskd_http_handoffs_total{listener="https"} 1`,
		`skydeskd_http_connections_total{listener="http"} 3`,
		`skydeskd_http_connections_total{listener="https"} 2`,
		// autoconfig's Observer, adapted here: the handler's and the
		// front's answers alike.
		`skydeskd_autoconfig_requests_total{client="none",format="thunderbird",outcome="ok"} 5`,
		`skydeskd_autoconfig_requests_total{client="none",format="mobileconfig",outcome="ok"} 3`,
		`skydeskd_autoconfig_signatures_total 1`,
	} {
		if !strings.Contains(string(body), want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
