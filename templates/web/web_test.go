package web

import (
	"bytes"
	"image"
	"image/color"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"

	"github.com/skydesk/skydeskd/internal/golden"
)

func TestNegotiate(t *testing.T) {
	for _, tc := range []struct {
		header string
		want   Lang
	}{
		{"", Japanese},
		{"ja", Japanese},
		{"ja-JP,ja;q=0.9,en-US;q=0.8", Japanese},
		{"en-US,en;q=0.9,ja;q=0.8", English},
		{"en;q=0.5, ja;q=0.6", Japanese},
		{"fr-FR,fr;q=0.9", English},
		{"fr, ja;q=0.1", Japanese},
		{"ja;q=0, en", English},
		{"JA-jp", Japanese},
		{"ja;q=bogus, en;q=0.2", English},
		{strings.Repeat("fr,", 40) + "ja", English}, // ranges past the bound are ignored
	} {
		if got := Negotiate(tc.header); got != tc.want {
			t.Errorf("Negotiate(%q) = %s, want %s", tc.header, got, tc.want)
		}
	}
}

var verbRE = regexp.MustCompile(`%[sd]`)

// TestCatalogues: both languages have every key with the same arguments.
func TestCatalogues(t *testing.T) {
	cats, err := loadCatalogs()
	if err != nil {
		t.Fatal(err)
	}
	ja, en := cats[Japanese], cats[English]
	for k, v := range en {
		jv, ok := ja[k]
		if !ok {
			t.Errorf("%q missing in ja", k)
			continue
		}
		if a, b := verbRE.FindAllString(v, -1), verbRE.FindAllString(jv, -1); strings.Join(a, "") != strings.Join(b, "") {
			t.Errorf("%q: verbs %v (en) vs %v (ja)", k, a, b)
		}
		if strings.TrimSpace(jv) == "" || strings.TrimSpace(v) == "" {
			t.Errorf("%q is empty", k)
		}
	}
	for k := range ja {
		if _, ok := en[k]; !ok {
			t.Errorf("%q missing in en", k)
		}
	}
}

var segRE = regexp.MustCompile(`M(\d+) (\d+)h(\d+)v1h-\d+z`)

// rasterize draws the SVG path of QRCode at scale pixels per module.
func rasterize(t *testing.T, svg string, scale int) image.Image {
	t.Helper()
	m := regexp.MustCompile(`viewBox="0 0 (\d+) `).FindStringSubmatch(svg)
	if m == nil {
		t.Fatal("no viewBox")
	}
	n, _ := strconv.Atoi(m[1])
	img := image.NewGray(image.Rect(0, 0, n*scale, n*scale))
	for i := range img.Pix {
		img.Pix[i] = 0xff
	}
	for _, s := range segRE.FindAllStringSubmatch(svg, -1) {
		x, _ := strconv.Atoi(s[1])
		y, _ := strconv.Atoi(s[2])
		w, _ := strconv.Atoi(s[3])
		for py := y * scale; py < (y+1)*scale; py++ {
			for px := x * scale; px < (x+w)*scale; px++ {
				img.SetGray(px, py, color.Gray{})
			}
		}
	}
	return img
}

func TestQRCode(t *testing.T) {
	for _, text := range []string{
		"https://autoconfig.skydesk.jp/apple/mobileconfig?email=taro%40skydesk.jp",
		"https://127.0.0.1:8443/apple/mobileconfig?email=o%27brien%2Bx%40xn--bcher-kva.example",
	} {
		svg, err := QRCode(text, `label "with" <markup>`)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(svg), `aria-label="label &#34;with&#34; &lt;markup&gt;"`) {
			t.Errorf("label not escaped: %.200s", svg)
		}
		bmp, err := gozxing.NewBinaryBitmapFromImage(rasterize(t, string(svg), 4))
		if err != nil {
			t.Fatal(err)
		}
		res, err := qrcode.NewQRCodeReader().Decode(bmp, nil)
		if err != nil {
			t.Fatalf("decoding: %v", err)
		}
		if res.GetText() != text {
			t.Errorf("decoded %q, want %q", res.GetText(), text)
		}
	}
}

func TestAssets(t *testing.T) {
	for _, name := range []string{"site.css", "icon.svg"} {
		a, ok := LookupAsset(name)
		if !ok || len(a.Body) == 0 || a.ETag == "" {
			t.Errorf("%s missing", name)
		}
	}
	for _, name := range []string{"../web.go", "static/site.css", "web.go", ""} {
		if _, ok := LookupAsset(name); ok {
			t.Errorf("%q served", name)
		}
	}
}

func base(l Lang, nav, title string) Base {
	return Base{Lang: l, Provider: "SkyDesk Mail", HelpURL: "https://www.skydesk.jp/help/mail/client-settings",
		Nav: nav, Title: title, SwitchURL: "/?lang=" + string(l.Other())}
}

func noIndex(b Base) Base { b.NoIndex = true; return b }

// TestRender_golden renders every page in both languages with fixed data.
func TestRender_golden(t *testing.T) {
	r, err := New()
	if err != nil {
		t.Fatal(err)
	}
	when := time.Date(2026, 11, 26, 3, 4, 0, 0, time.UTC)
	for _, l := range Langs {
		qr, err := QRCode("https://autoconfig.skydesk.jp/apple/mobileconfig?email=hanako%40example.co.jp", "QR")
		if err != nil {
			t.Fatal(err)
		}
		totpQR, err := QRCode("otpauth://totp/SkyDesk%20Mail:taro@skydesk.jp?algorithm=SHA1&digits=6&issuer=SkyDesk%20Mail&period=30&secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "QR")
		if err != nil {
			t.Fatal(err)
		}
		cases := []struct {
			name string
			page Page
			data any
		}{
			{"setup-empty", SetupPage, &Setup{Base: base(l, "setup", "title_setup")}},
			{"setup-organization", SetupPage, &Setup{Base: base(l, "setup", "title_setup"), Email: "hanako@example.co.jp",
				Result: &SetupResult{Address: "hanako@example.co.jp", Display: "hanako@example.co.jp", Kind: "organization",
					Incoming:   Server{Host: "poppro.skydesk.jp", Port: 995, Security: "ssl"},
					Outgoing:   []Server{{Host: "smtp.skydesk.jp", Port: 465, Security: "ssl"}, {Host: "smtp.skydesk.jp", Port: 587, Security: "starttls"}},
					ProfileURL: "/apple/mobileconfig?email=hanako%40example.co.jp", QRURL: "https://autoconfig.skydesk.jp/apple/mobileconfig?email=hanako%40example.co.jp", QR: qr}}},
			{"setup-unknown", SetupPage, &Setup{Base: base(l, "setup", "title_setup"), Email: "a@gmail.com", Problem: "unknown", Domain: "gmail.com"}},
			{"signin-no-authenticator", SignInPage, &SignIn{Base: base(l, "settings", "title_signin"), CSRF: "tok", Email: "jiro@example.co.jp", Problem: "no_authenticator"}},
			{"signin-bad", SignInPage, &SignIn{Base: base(l, "settings", "title_signin"), CSRF: "tok", Email: "sso@example.co.jp", Problem: "bad"}},
			{"settings", SettingsPage, &Settings{Base: noIndex(base(l, "settings", "title_settings")), CSRF: "tok", Address: "taro@skydesk.jp",
				Kind: "personal", TwoStep: true, POP: POP{Access: "since", Since: FormatTime(l, when), OnDelete: "keep"},
				Apps:  []AppPassword{{Name: "iPhone <Mail>", Created: FormatTime(l, when)}, {Name: "PC", Created: FormatTime(l, when), LastUsed: FormatTime(l, when)}},
				Saved: []string{"saved_access_since", "saved_spam_exclude"}, NewApp: "PC", NewSecret: "abcd efgh ijkl mnop",
				Mailbox: NewMailbox(123<<20+456<<10, 1<<30)}},
			{"settings-pop-day", SettingsPage, &Settings{Base: noIndex(base(l, "settings", "title_settings")), CSRF: "tok", Address: "taro@skydesk.jp",
				Kind: "personal", TwoStep: true, POP: POP{Access: "since_day", Day: "2026-03-02", DayText: FormatDay(l, "2026-03-02"), Today: "2026-04-01",
					OnDelete: "keep", Last: &POPLast{At: FormatTime(l, when), Remote: "2001:db8::7", Downloaded: 3}},
				Saved: []string{"saved_access_since_day"}}},
			{"settings-pop-day-error", SettingsPage, &Settings{Base: noIndex(base(l, "settings", "title_settings")), CSRF: "tok", Address: "taro@skydesk.jp",
				Kind: "personal", TwoStep: true, POP: POP{Access: "all", Today: "2026-04-01", OnDelete: "keep", Last: &POPLast{At: FormatTime(l, when)}},
				Error: "err_pop_day"}},
			{"settings-twostep-off", SettingsPage, &Settings{Base: noIndex(base(l, "settings", "title_settings")), CSRF: "tok", Address: "taro@skydesk.jp",
				Kind: "personal", POP: POP{Access: "disabled", OnDelete: "keep"}, TwoStepNotice: "twostep_now_off"}},
			{"settings-twostep-setup", SettingsPage, &Settings{Base: noIndex(base(l, "settings", "title_settings")), CSRF: "tok", Address: "taro@skydesk.jp",
				Kind: "personal", POP: POP{Access: "disabled", OnDelete: "keep"}, TwoStepError: "err_twostep_setup_code", TwoStepArg: 4,
				Setup: &TwoStepSetup{QR: totpQR, Secret: "JBSW Y3DP EHPK 3PXP JBSW Y3DP EHPK 3PXP"}}},
			{"settings-twostep-on", SettingsPage, &Settings{Base: noIndex(base(l, "settings", "title_settings")), CSRF: "tok", Address: "taro@skydesk.jp",
				Kind: "personal", TwoStep: true, POP: POP{Access: "all", OnDelete: "keep"}, TwoStepNotice: "twostep_now_on"}},
			{"settings-twostep-locked", SettingsPage, &Settings{Base: noIndex(base(l, "settings", "title_settings")), CSRF: "tok", Address: "taro@skydesk.jp",
				Kind: "personal", TwoStep: true, POP: POP{Access: "all", OnDelete: "keep"}, TwoStepError: "err_twostep_locked", TwoStepArg: 15}},
			{"error", ErrorPage, &Error{Base: base(l, "", "title_error"), Message: "error_internal"}},
			{"reauth-app", ReauthPage, &Reauth{Base: noIndex(base(l, "settings", "title_reauth")), CSRF: "tok", Address: "taro@skydesk.jp",
				Action: "app_create", Name: "iPhone <Mail>"}},
			{"reauth-twostep-off-bad", ReauthPage, &Reauth{Base: noIndex(base(l, "settings", "title_reauth")), CSRF: "tok", Address: "taro@skydesk.jp",
				Action: "twostep_off", NeedCode: true, Problem: "bad"}},
			{"reauth-app-locked", ReauthPage, &Reauth{Base: noIndex(base(l, "settings", "title_reauth")), CSRF: "tok", Address: "taro@skydesk.jp",
				Action: "app_create", Name: "PC", NeedCode: true, Problem: "locked", RetryMinutes: 15}},
			{"settings-forward-pending", SettingsPage, &Settings{Base: noIndex(base(l, "settings", "title_settings")), CSRF: "tok", Address: "taro@skydesk.jp",
				Kind: "personal", POP: POP{Access: "all", OnDelete: "keep"}, Saved: []string{"fwd_saved_pending"},
				Forwarding: &Forwarding{Relay: true, Target: "taro@example.org", Pending: true, Expires: "2026-12-05 09:00"}}},
			{"settings-forward-norelay", SettingsPage, &Settings{Base: noIndex(base(l, "settings", "title_settings")), CSRF: "tok", Address: "taro@skydesk.jp",
				Kind: "personal", POP: POP{Access: "all", OnDelete: "keep"}, Forwarding: &Forwarding{Keep: true}}},
			{"forward-ask", ForwardConfirmPage, &ForwardConfirm{Base: noIndex(base(l, "", "fwd_confirm_title")), State: "ask", Token: "t<&>",
				Account: "taro@skydesk.jp", Target: "taro@example.org"}},
			{"forward-invalid", ForwardConfirmPage, &ForwardConfirm{Base: noIndex(base(l, "", "fwd_confirm_title")), State: "invalid"}},
		}
		for _, tc := range cases {
			t.Run(tc.name+"-"+string(l), func(t *testing.T) {
				b, err := r.Render(l, tc.page, tc.data)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.HasPrefix(b, []byte("<!doctype html>\n<html lang=\""+string(l)+"\">")) {
					t.Errorf("bad start: %.60s", b)
				}
				if bytes.Contains(b, []byte("<Mail>")) {
					t.Error("app name not escaped")
				}
				if bytes.Contains(b, []byte("%!")) {
					t.Error("a message was formatted with the wrong arguments")
				}
				golden.Check(t, tc.name+"-"+string(l)+".html", b)
			})
		}
	}
	if _, err := r.Render(English, SetupPage, &SignIn{}); err == nil {
		t.Error("rendering with the wrong data type succeeded")
	}
}

func FuzzNegotiate(f *testing.F) {
	for _, s := range []string{"", "ja", "en-US,en;q=0.9,ja;q=0.8", "ja;q=0, en", "*;q=0.1", ";;;,,,q=", "ja;q=1e309"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		if l := Negotiate(h); l != Japanese && l != English {
			t.Fatalf("Negotiate(%q) = %q", h, l)
		}
	})
}
