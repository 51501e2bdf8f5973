package main

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// a11yScript lists accessibility faults of the current page: form
// controls without a label, buttons and images without a name, a missing
// lang, and text whose contrast with its background is below WCAG 2.2 AA
// (4.5:1; 3:1 for large text, SC 1.4.3).
const a11yScript = `(() => {
  const bad = [];
  if (!document.documentElement.lang) bad.push("html has no lang");
  document.querySelectorAll("input:not([type=hidden]), select, textarea").forEach(e => {
    if (!e.labels || e.labels.length === 0) bad.push("unlabelled control " + (e.id || e.name));
  });
  document.querySelectorAll("button, a").forEach(e => {
    if (!(e.textContent.trim() || e.getAttribute("aria-label"))) bad.push("unnamed " + e.tagName);
  });
  document.querySelectorAll("svg[role=img], img").forEach(e => {
    if (!(e.getAttribute("aria-label") || e.getAttribute("alt"))) bad.push("unnamed image");
  });
  const rgb = s => (s.match(/[\d.]+/g) || []).map(Number);
  const lum = c => { const v = c.slice(0, 3).map(x => { x /= 255; return x <= 0.03928 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4); });
    return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2]; };
  const bg = e => { for (; e; e = e.parentElement) { const c = rgb(getComputedStyle(e).backgroundColor);
    if (c.length === 3 || (c.length === 4 && c[3] === 1)) return c; } return [255, 255, 255]; };
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n; (n = walker.nextNode());) {
    if (!n.textContent.trim()) continue;
    const e = n.parentElement, st = getComputedStyle(e);
    if (st.visibility === "hidden" || st.display === "none" || e.offsetParent === null && st.position !== "fixed") continue;
    const r = e.getBoundingClientRect(); if (r.width < 2 || r.height < 2) continue;
    const a = lum(rgb(st.color)), b = lum(bg(e)), ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(st.fontSize), large = size >= 24 || (size >= 18.66 && Number(st.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5)) bad.push("contrast " + ratio.toFixed(2) + " for " + JSON.stringify(n.textContent.trim().slice(0, 30)));
  }
  return bad;
})()`

// auditPage fails the test for every accessibility fault a11yScript finds
// on url.
func auditPage(t *testing.T, ctx context.Context, url string) {
	t.Helper()
	step(t, ctx, "open "+url, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS("main")))
	auditHere(t, ctx, url)
}

// auditHere audits the page the browser shows now, without loading it
// again: for states shown once, such as the answer to a form.
func auditHere(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	for _, f := range value(t, ctx, "audit", chromedp.Evaluate[[]string](a11yScript)) {
		t.Errorf("%s: %s", what, f)
	}
}

// keyboardLookUp uses the setup page with the keyboard alone: Tab reaches
// the skip link first and then the address field; Enter submits.
func keyboardLookUp(t *testing.T, ctx context.Context, w *webApp) {
	t.Helper()
	step(t, ctx, "open setup", chromedp.Navigate(w.webURL+"/?lang=ja"), chromedp.WaitVisible(chromedp.ID("email")))
	focused := func() string {
		return value(t, ctx, "focus", chromedp.Evaluate[string](`document.activeElement.id || document.activeElement.className`))
	}
	step(t, ctx, "tab", chromedp.KeyEvent(kb.Tab))
	if f := focused(); f != "skip" {
		t.Errorf("first Tab focuses %q, want the skip link", f)
	}
	for i := 0; i < 8 && focused() != "email"; i++ {
		step(t, ctx, "tab", chromedp.KeyEvent(kb.Tab))
	}
	if f := focused(); f != "email" {
		t.Fatalf("Tab never reached the address field (at %q)", f)
	}
	step(t, ctx, "type and submit", chromedp.KeyEvent("hanako@example.co.jp"), chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible(chromedp.ID("result-h")))
	if h := value(t, ctx, "heading", chromedp.Text(chromedp.ID("result-h"))); !strings.Contains(h, "hanako@example.co.jp の設定") {
		t.Errorf("keyboard lookup shows %q", h)
	}
}
