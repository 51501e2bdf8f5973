package web

import (
	"strconv"
	"strings"
)

// Lang is a page language (a BCP 47 primary tag).
type Lang string

// The languages the pages are written in.
const (
	Japanese Lang = "ja"
	English  Lang = "en"
)

// Langs lists every language, the default first.
var Langs = []Lang{Japanese, English}

// ParseLang returns the Lang of a "ja"/"en" switch value.
func ParseLang(s string) (Lang, bool) {
	switch Lang(strings.ToLower(strings.TrimSpace(s))) {
	case Japanese:
		return Japanese, true
	case English:
		return English, true
	}
	return "", false
}

// Other returns the language the switch offers.
func (l Lang) Other() Lang {
	if l == English {
		return Japanese
	}
	return English
}

// Name is the language's name in itself, for the switch.
func (l Lang) Name() string {
	if l == English {
		return "English"
	}
	return "日本語"
}

// maxLanguageRanges bounds the work on a hostile Accept-Language header.
const maxLanguageRanges = 32

// Negotiate picks the page language from an Accept-Language header
// (RFC 9110 §12.5.4): the Japanese or English range with the highest
// q-value wins, ties going to the earlier one. A header naming neither
// language gets English (a visitor who reads neither is likelier to read
// English); no header at all gets Japanese, the provider's audience.
func Negotiate(header string) Lang {
	header = strings.TrimSpace(header)
	if header == "" {
		return Japanese
	}
	best, bestQ := English, -1.0
	for i, part := range strings.Split(header, ",") {
		if i >= maxLanguageRanges {
			break
		}
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		for p := range strings.SplitSeq(params, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && f >= 0 && f <= 1 {
					q = f
				} else {
					q = 0
				}
			}
		}
		primary, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(tag)), "-")
		l, ok := ParseLang(primary)
		if !ok || q <= 0 || q <= bestQ {
			continue
		}
		best, bestQ = l, q
	}
	return best
}
