package web

import (
	"html/template"
	"strconv"
	"time"
)

// Base is what every page's layout needs.
type Base struct {
	Lang Lang
	// Provider is the service name shown in the header and titles.
	Provider string
	// HelpURL links the provider's own help pages ("" hides the link).
	HelpURL string
	// Nav is "setup" or "settings": the current navigation entry.
	Nav string
	// SwitchURL is the same page in the other language (a relative URL
	// carrying lang=…).
	SwitchURL string
	// Title is the catalogue key of the page title.
	Title string
	// NoIndex asks search engines not to index the page (pages for one
	// address, the settings screen).
	NoIndex bool
}

// OtherLang is the language the switch offers.
func (b Base) OtherLang() Lang { return b.Lang.Other() }

// Server is one row group of the settings table, already in display form.
type Server struct {
	Host string
	Port int
	// Security is "ssl" (implicit TLS) or "starttls": a catalogue key
	// suffix.
	Security string
}

// Setup is the setup page. With Result nil only the form shows.
type Setup struct {
	Base
	// Email is the address as typed, echoed into the form.
	Email string
	// Problem is "invalid" (not an address) or "unknown" (a domain the
	// provider does not host); "" otherwise.
	Problem string
	// Domain is the typed domain in Unicode, for the "unknown" message.
	Domain string
	Result *SetupResult
}

// SetupResult is the table, download and QR code of one address.
type SetupResult struct {
	// Address is the normalised address (A-label domain) and Display the
	// same with the domain in Unicode.
	Address, Display string
	// Kind is "personal" or "organization".
	Kind     string
	Incoming Server
	Outgoing []Server
	// ProfileURL is the relative download link; QRURL the absolute URL
	// the QR code encodes (provider.web_url + ProfileURL).
	ProfileURL, QRURL string
	// QR is an inline SVG of QRURL (see QRCode).
	QR template.HTML
}

// SignIn is the settings sign-in form.
type SignIn struct {
	Base
	CSRF  string
	Email string
	// Problem is "", "bad" (address, password or verification code: never
	// which; also a bare local part and a federated account without a
	// password, whose hints it carries for everyone), "no_authenticator"
	// (two-step on, no authenticator app registered), "locked"
	// (RetryMinutes) or "expired" (the form or session went stale).
	Problem      string
	RetryMinutes int
	// Notice is a catalogue key shown as a status ("signed_out").
	Notice string
}

// POP is the POP settings as shown.
type POP struct {
	// Access is "disabled", "all", "since" (from now on) or "since_day"
	// (from a chosen day).
	Access      string
	Since       string // formatted moment "since" was chosen
	IncludeSpam bool
	// OnDelete is "keep" or "delete".
	OnDelete string
	// Day is the chosen day (YYYY-MM-DD, the date input's value) and
	// DayText the same for reading, with "since_day"; Today bounds the
	// date input (the provider's time zone).
	Day, DayText, Today string
	// Last is the last POP session; nil if there was none.
	Last *POPLast
}

// POPLast is the last POP session: what a user checks when "my phone
// stopped getting mail".
type POPLast struct {
	At         string // formatted
	Remote     string // client IP address; "" if unknown
	Downloaded int
}

// AppPassword is one row of the app-password list.
type AppPassword struct {
	Name     string
	Created  string
	LastUsed string // "" = never
}

// Settings is the "Mail forwarding and POP/IMAP" screen.
type Settings struct {
	Base
	CSRF      string
	Address   string
	Kind      string
	TwoStep   bool
	Federated bool
	POP       POP
	Apps      []AppPassword
	// Saved lists catalogue keys describing what the last save changed.
	Saved []string
	// Error is a catalogue key for a refused form ("" = none).
	Error string
	// NewApp and NewSecret show a just-created app password, once.
	NewApp, NewSecret string
	// Setup is a two-step enrolment waiting for its confirming code (only
	// while TwoStep is off); nil shows the "turn on" button.
	Setup *TwoStepSetup
	// TwoStepNotice and TwoStepError are catalogue keys shown in the
	// two-step section ("" = none); TwoStepArg fills a %d in TwoStepError.
	TwoStepNotice, TwoStepError string
	TwoStepArg                  int
	// Mailbox is the mailbox's usage against its quota; nil hides it.
	Mailbox *Mailbox
	// Forwarding is the forwarding section (nil hides it).
	Forwarding *Forwarding
}

// Mailbox is a mailbox's stored size against its quota, as the settings
// screen states it (FormatSize).
type Mailbox struct {
	Used  string
	Quota string // "" = no limit
	// Percent of the quota used, 0–100 (0 without a limit).
	Percent int
}

// NewMailbox describes used octets of quota (0: no limit).
func NewMailbox(used, quota int64) *Mailbox {
	m := &Mailbox{Used: FormatSize(used)}
	if quota > 0 {
		m.Quota = FormatSize(quota)
		m.Percent = int(min(100, used*100/quota))
	}
	return m
}

// FormatSize renders octets in binary units (KiB, MiB, GiB), one decimal
// below 10 of a unit: the way mail clients and the admin command state
// mailbox sizes.
func FormatSize(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	v, i := float64(n)/unit, 0
	for v >= unit && i < 3 {
		v /= unit
		i++
	}
	prec := 0
	if v < 10 {
		prec = 1
	}
	return strconv.FormatFloat(v, 'f', prec, 64) + " " + [...]string{"KiB", "MiB", "GiB", "TiB"}[i]
}

// TwoStepSetup is a new authenticator secret, shown until a code of it
// confirms it.
type TwoStepSetup struct {
	// QR is an inline SVG of the otpauth:// key URI (see QRCode).
	QR template.HTML
	// Secret is the base32 secret in groups of four, for typing in.
	Secret string
}

// Reauth asks a signed-in owner whose sign-in is older than ten minutes
// for the account password again (and a code, with two-step on) before
// creating an app password or turning two-step verification off. Its form
// repeats the one that led here.
type Reauth struct {
	Base
	CSRF    string
	Address string // the signed-in account, for password managers
	// Action is "app_create" (with Name, the app password's name) or
	// "twostep_off".
	Action, Name string
	// NeedCode asks for the authenticator code (two-step on).
	NeedCode bool
	// Problem is "", "bad" (password or code: never which) or "locked"
	// (RetryMinutes).
	Problem      string
	RetryMinutes int
}

// Error is a generic error page; Message is a catalogue key.
type Error struct {
	Base
	Message string
}

// jst is the provider's time zone; pages show times in it (a fixed zone:
// the static image carries no tz database).
var jst = time.FixedZone("JST", 9*60*60)

// FormatTime renders a moment for people in l, in JST.
func FormatTime(l Lang, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	t = t.In(jst)
	if l == Japanese {
		return t.Format("2006年1月2日 15:04 MST")
	}
	return t.Format("2 Jan 2006 15:04 MST")
}

// FormatDay shows a day (YYYY-MM-DD) in the page's language; anything
// else is returned as it is.
func FormatDay(l Lang, day string) string {
	t, err := time.Parse("2006-01-02", day)
	if err != nil {
		return day
	}
	if l == Japanese {
		return t.Format("2006年1月2日")
	}
	return t.Format("2 Jan 2006")
}
