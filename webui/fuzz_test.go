package webui

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/skydesk/skydeskd/store"
)

// FuzzWeb_Setup: any email parameter gets a 200 page, and nothing typed
// comes back as markup: the input is wrapped in a tag name no template
// uses, so a raw reflection would show "<zq".
func FuzzWeb_Setup(f *testing.F) {
	for _, s := range []string{"taro@skydesk.jp", "a@gmail.com", "<b>@x.jp", `"><svg onload=x>@skydesk.jp`, "x@bücher.example", "@", strings.Repeat("a", 400) + "@skydesk.jp"} {
		f.Add(s)
	}
	env := newWebEnv(f, store.ThrottlePolicy{})
	f.Fuzz(func(t *testing.T, email string) {
		email = "<zq" + email + ">"
		rec := httptest.NewRecorder()
		env.web.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, testWebURL+"/?email="+url.QueryEscape(email), nil))
		if rec.Code != http.StatusOK {
			t.Fatalf("status %d for %q", rec.Code, email)
		}
		if strings.Contains(strings.ToLower(rec.Body.String()), "<zq") {
			t.Fatalf("%q reflected unescaped", email)
		}
	})
}
