package webui

import (
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skydesk/skydeskd/store"
	"github.com/skydesk/skydeskd/store/storetest"
)

var linkRE = regexp.MustCompile(`https://setup\.example\.test/forward/confirm\?t=([A-Za-z0-9_-]+)`)

// confirmationLink reads the link out of the newest queued confirmation
// message for target.
func confirmationLink(t *testing.T, env *webEnv, target string) string {
	t.Helper()
	due, err := env.st.DueQueue(t.Context(), time.Now().Add(time.Hour), 100)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(due) - 1; i >= 0; i-- {
		m := due[i]
		if m.Rcpts[0].Address != target {
			continue
		}
		_, b64, _ := strings.Cut(string(m.Body), "\r\n\r\n")
		body, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(b64, "\r\n", ""))
		if err != nil {
			t.Fatal(err)
		}
		if l := linkRE.FindString(string(body)); l != "" {
			return l
		}
		t.Fatalf("no link in the confirmation:\n%s", body)
	}
	t.Fatalf("no confirmation queued for %s", target)
	return ""
}

func TestWeb_Forward_noRelay(t *testing.T) {
	env := newWebEnv(t, store.ThrottlePolicy{})
	storetest.AddUser(t, env.st.Driver, "taro@skydesk.jp", "correct horse")
	c := env.client()
	page := env.signIn(c, "taro@skydesk.jp", "correct horse")
	if !strings.Contains(page, `id="fwd-no-relay"`) {
		t.Fatal("the forwarding section does not say that there is no relay")
	}
	resp, _ := do(t, c, "POST", env.srv.URL+"/settings/forward?lang=en", url.Values{"csrf": {csrfOf(t, page)}, "target": {"me@example.org"}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("status %d", resp.StatusCode)
	}
	_, page = do(t, c, "GET", env.srv.URL+"/settings?lang=en", nil, nil)
	if !strings.Contains(page, "this service has no outgoing mail relay") {
		t.Errorf("refusal not shown:\n%s", page)
	}
	if _, err := env.st.GetForward(t.Context(), "taro@skydesk.jp"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("forwarding stored without a relay: %v", err)
	}
}

// The link confirms only on POST, once, and not after it expires; off
// turns forwarding off.
func TestWeb_Forward_confirm(t *testing.T) {
	env := newWebEnv(t, store.ThrottlePolicy{})
	env.clock.t = time.Now()
	env.opts.Relay = true
	var woke atomic.Int32
	env.opts.Wake = func() { woke.Add(1) }
	w, err := New(env.opts)
	if err != nil {
		t.Fatal(err)
	}
	env.serving.Store(w)
	ctx := t.Context()
	storetest.AddUser(t, env.st.Driver, "taro@skydesk.jp", "correct horse")
	c := env.client()
	token := csrfOf(t, env.signIn(c, "taro@skydesk.jp", "correct horse"))
	set := func(target, keep string) string {
		t.Helper()
		resp, body := do(t, c, "POST", env.srv.URL+"/settings/forward?lang=en", url.Values{"csrf": {token}, "target": {target}, "keep": {keep}}, nil)
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("set: %d\n%s", resp.StatusCode, body)
		}
		_, page := do(t, c, "GET", env.srv.URL+"/settings?lang=en", nil, nil)
		return page
	}
	page := set("me@example.org", "no")
	if !strings.Contains(page, "Waiting for me@example.org to confirm") || woke.Load() != 1 {
		t.Fatalf("pending not shown (woke %d):\n%s", woke.Load(), page)
	}
	link := confirmationLink(t, env, "me@example.org")
	anon := env.client() // the target's owner: not signed in
	for range 2 {        // a scanner prefetching the link confirms nothing
		// The link's host is web_url; the request goes to the test server.
		resp, body := do(t, anon, "GET", env.srv.URL+strings.TrimPrefix(link, testWebURL)+"&lang=en", nil, nil)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="fwd-confirm-button"`) {
			t.Fatalf("GET link: %d\n%s", resp.StatusCode, body)
		}
	}
	if f, _ := env.st.GetForward(ctx, "taro@skydesk.jp"); f.Confirmed {
		t.Fatal("GET confirmed the forwarding")
	}
	tok := strings.TrimPrefix(link, testWebURL+"/forward/confirm?t=")
	resp, body := do(t, anon, "POST", env.srv.URL+"/forward/confirm?lang=en", url.Values{"t": {tok}}, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="fwd-confirmed"`) {
		t.Fatalf("POST link: %d\n%s", resp.StatusCode, body)
	}
	if f, _ := env.st.GetForward(ctx, "taro@skydesk.jp"); !f.Confirmed || f.Keep {
		t.Fatalf("after POST: %+v", f)
	}
	if resp, _ := do(t, anon, "POST", env.srv.URL+"/forward/confirm", url.Values{"t": {tok}}, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("second POST: %d, want 404 (single use)", resp.StatusCode)
	}
	if page := set("me@example.org", "yes"); !strings.Contains(page, "Mail is forwarded to me@example.org") || woke.Load() != 1 {
		t.Errorf("changing keep of the confirmed target re-sent a confirmation (woke %d) or lost it", woke.Load())
	}

	env.clock.add(-(ForwardTTL + time.Hour)) // the link below is expired at once
	set("other@example.org", "yes")
	tok = strings.TrimPrefix(confirmationLink(t, env, "other@example.org"), testWebURL+"/forward/confirm?t=")
	if resp, _ := do(t, anon, "POST", env.srv.URL+"/forward/confirm", url.Values{"t": {tok}}, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("expired link: %d, want 404", resp.StatusCode)
	}

	if resp, _ := do(t, c, "POST", env.srv.URL+"/settings/forward/off", url.Values{"csrf": {token}}, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("off: %d", resp.StatusCode)
	}
	if _, err := env.st.GetForward(ctx, "taro@skydesk.jp"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("after off: %v", err)
	}
}
