// Package config holds skydeskd's static settings: listeners, TLS, the data
// directory and the provider facts every client format renders (DESIGN.md §1).
//
// Domains, accounts and POP settings are dynamic and live in the store; this
// package only reads a YAML file once at start (mox's static/dynamic split).
// Unknown keys and impossible values are refused with the key's name.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
	// The zone database, embedded (~450 KB): provider.time_zone must load
	// the same on any host and in any image, with or without
	// /usr/share/zoneinfo, rather than fall back to a fixed offset that
	// only suits Asia/Tokyo.
	_ "time/tzdata"

	yaml "go.yaml.in/yaml/v3"
)

// Config is the whole static configuration. The zero value is not useful;
// start from Default.
type Config struct {
	// DataDir holds the SQLite file (database.driver sqlite), the
	// generated certificate and secrets.
	DataDir  string   `yaml:"data_dir"`
	Provider Provider `yaml:"provider"`
	Listen   Listen   `yaml:"listen"`
	TLS      TLS      `yaml:"tls"`
	SMTP     SMTP     `yaml:"smtp"`
	Spam     Spam     `yaml:"spam"`
	DNS      DNS      `yaml:"dns"`
	Log      Log      `yaml:"log"`
	Auth     Auth     `yaml:"auth"`
	ACME     ACME     `yaml:"acme"`
	Limits   Limits   `yaml:"limits"`
	// ProxyProtocol: PROXY headers from a load balancer (proxy.go).
	ProxyProtocol ProxyProtocol `yaml:"proxy_protocol"`
	Database      Database      `yaml:"database"`
	// POP: the POP3 server's own settings (pop.go).
	POP POPServer `yaml:"pop"`
}

// Provider is what every format renders: the published SkyDesk values by
// default, so another provider can run the same binary with its own.
type Provider struct {
	// ID is the provider id in Thunderbird's emailProvider and the reverse-DNS
	// root of Apple PayloadIdentifiers.
	ID        string `yaml:"id"`
	Name      string `yaml:"name"`
	ShortName string `yaml:"short_name"`
	// PersonalDomain: addresses here are "personal" accounts.
	PersonalDomain string `yaml:"personal_domain"`
	// HelpURL is linked from the Thunderbird documentation element.
	HelpURL string `yaml:"help_url"`
	// WebURL is the public base URL of the setup page (QR codes, links).
	WebURL           string `yaml:"web_url"`
	AutoconfigHost   string `yaml:"autoconfig_host"`
	AutodiscoverHost string `yaml:"autodiscover_host"`
	POP              POP    `yaml:"pop"`
	SMTP             Submit `yaml:"smtp"`
	// TimeZone is the provider's IANA time zone: a POP "from this day"
	// starts at midnight here. The binary embeds the zone database
	// (time/tzdata), so a minimal container image needs none.
	TimeZone string `yaml:"time_zone"`
}

// Location is the provider's time zone (Validate has checked the name).
func (p Provider) Location() *time.Location {
	loc, err := time.LoadLocation(p.TimeZone)
	if err != nil {
		return time.UTC
	}
	return loc
}

// POP is the advertised incoming server (995, implicit TLS, RFC 8314).
type POP struct {
	PersonalHost     string `yaml:"personal_host"`
	OrganizationHost string `yaml:"organization_host"`
	Port             int    `yaml:"port"`
}

// Submit is the advertised outgoing server: implicit TLS first, STARTTLS second.
type Submit struct {
	Host            string `yaml:"host"`
	ImplicitTLSPort int    `yaml:"implicit_tls_port"`
	STARTTLSPort    int    `yaml:"starttls_port"`
}

// Listen lists the local addresses to bind; an empty value disables that
// listener.
type Listen struct {
	HTTP       string `yaml:"http"`
	HTTPS      string `yaml:"https"`
	DNS        string `yaml:"dns"`
	POP3S      string `yaml:"pop3s"`
	POP3       string `yaml:"pop3"`
	SMTPS      string `yaml:"smtps"`
	Submission string `yaml:"submission"`
	MX         string `yaml:"mx"`
}

// TLS names certificate files. With both empty a self-signed ECDSA
// certificate is made once in the data directory and reused.
type TLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ExtraNames are added to a generated certificate's SANs.
	ExtraNames []string `yaml:"extra_names"`
}

// SMTP holds the SMTP server's own settings.
type SMTP struct {
	// Hostname is used in the greeting and Received headers.
	Hostname       string    `yaml:"hostname"`
	MaxMessageSize int64     `yaml:"max_message_size"`
	Smarthost      Smarthost `yaml:"smarthost"`
	// Postmaster is the account that receives mail for postmaster@ every
	// local domain (the personal domain and every hosted domain) that has
	// no account of its own named postmaster: RFC 5321 §4.5.1 requires
	// every domain a server delivers for to accept that mailbox. Empty
	// means no service-wide postmaster. Default: postmaster@ the personal
	// domain, following provider.personal_domain when a file changes that
	// without naming this key.
	Postmaster string `yaml:"postmaster"`
	// DefaultQuota is the mailbox quota of accounts without one of their
	// own (`skydeskd user set --quota`): a size such as 500M or 1G, 0 for
	// unlimited. Over it the MX answers 452 4.2.2 at RCPT, 552 5.2.2 at DATA.
	DefaultQuota string `yaml:"default_quota"`
	// MaxBytesInFlight bounds the octets of mail received and not yet
	// stored, over every listener (a size); DATA beyond it waits briefly,
	// then gets 452 4.3.1.
	MaxBytesInFlight string `yaml:"max_bytes_in_flight"`
	// MXMessagesPerMinute and MXBytesPerMinute bound what one client
	// network (IPv4 /32, IPv6 /64) sends the MX; -1 and "-1" turn them off.
	MXMessagesPerMinute int    `yaml:"mx_messages_per_minute"`
	MXBytesPerMinute    string `yaml:"mx_bytes_per_minute"`
}

// Smarthost relays mail for recipients outside our domains (submission
// only). An empty Host means such recipients are refused at RCPT.
type Smarthost struct {
	Host        string `yaml:"host"`
	Port        int    `yaml:"port"`
	TLS         string `yaml:"tls"` // implicit, starttls or none
	Username    string `yaml:"username"`
	Password    string `yaml:"password"`
	RetryPeriod string `yaml:"retry_period"` // Go duration; bounce after this
	// ClaimLease (Go duration) is how long a node's relay holds a queued
	// message it is sending without renewing its claim (it renews every
	// third of it): on several nodes, mail a node died sending is taken
	// over by another this long after the node's last renewal, at most.
	// Default 5m.
	ClaimLease string `yaml:"claim_lease"`
}

// Spam configures the spam filter of the MX (not submission).
type Spam struct {
	// RspamdURL is the base URL of rspamd's normal worker (such as
	// http://127.0.0.1:11333). Empty: no filter; the spam flag then comes
	// from X-Spam-* fields an upstream filter wrote. Set: every MX message
	// is checked with /checkv2 after DATA and before the reply.
	RspamdURL string `yaml:"rspamd_url"`
	// Timeout bounds one check (Go duration).
	Timeout string `yaml:"timeout"`
	// OnError is what happens when rspamd gives no answer: accept (deliver
	// as normal mail, logged and counted) or tempfail (451, senders retry).
	OnError string `yaml:"on_error"`
}

// DNS configures the authoritative server.
type DNS struct {
	// Nameservers are the NS names published at every zone apex.
	Nameservers []string `yaml:"nameservers"`
	// Addresses maps service host names to their A/AAAA addresses.
	Addresses map[string][]string `yaml:"addresses"`
	TTL       uint32              `yaml:"ttl"`
	// MXHost is the name organizations publish as MX when the bundled MX is
	// enabled.
	MXHost string `yaml:"mx_host"`
	// RRL limits UDP answers per client network (reflection and
	// amplification abuse), as BIND's rate-limit and NSD's rrl-* do.
	RRL RRL `yaml:"rrl"`
}

// RRL is response rate limiting of UDP answers; TCP is never limited, so
// a real resolver that meets the limit retries there.
type RRL struct {
	// ResponsesPerSecond per client network and answer; 0 turns RRL off.
	ResponsesPerSecond int `yaml:"responses_per_second"`
	// Slip: every Slip-th limited answer is sent truncated (TC) instead
	// of dropped; 0 drops them all.
	Slip int `yaml:"slip"`
	// IPv4PrefixLength and IPv6PrefixLength group clients into networks.
	IPv4PrefixLength int `yaml:"ipv4_prefix_length"`
	IPv6PrefixLength int `yaml:"ipv6_prefix_length"`
}

// Log configures log/slog output.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // auto, text, json
}

// Auth tunes the failed-login throttle (store.ThrottlePolicy): locks are
// per client network and per (client network, account), never per account.
type Auth struct {
	// FailuresBeforeDelay failed logins (per (network, account) or per
	// account) are free; each further one doubles the delay (max 8 s).
	FailuresBeforeDelay int `yaml:"failures_before_delay"`
	// FailuresBeforeLock failed logins of one account from one client
	// network lock that pair out for LockDuration.
	FailuresBeforeLock int    `yaml:"failures_before_lock"`
	LockDuration       string `yaml:"lock_duration"`
	// NetworkFailuresBeforeLock failed logins from one client network,
	// whatever the accounts, lock the network out for LockDuration.
	NetworkFailuresBeforeLock int `yaml:"network_failures_before_lock"`
	// IPv4Prefix and IPv6Prefix size a client network (32 and 64).
	IPv4Prefix int `yaml:"ipv4_prefix"`
	IPv6Prefix int `yaml:"ipv6_prefix"`
}

// Default returns the shipped configuration: SkyDesk's published values
// and the production ports.
func Default() *Config {
	c := &Config{
		DataDir: "/var/lib/skydeskd",
		Provider: Provider{
			ID:               "skydesk.jp",
			Name:             "SkyDesk Mail",
			ShortName:        "SkyDesk",
			PersonalDomain:   "skydesk.jp",
			HelpURL:          "https://www.skydesk.jp/help/mail/client-settings",
			WebURL:           "https://autoconfig.skydesk.jp",
			AutoconfigHost:   "autoconfig.skydesk.jp",
			AutodiscoverHost: "autodiscover.skydesk.jp",
			TimeZone:         "Asia/Tokyo",
			POP: POP{
				PersonalHost:     "pop.skydesk.jp",
				OrganizationHost: "poppro.skydesk.jp",
				Port:             995,
			},
			SMTP: Submit{Host: "smtp.skydesk.jp", ImplicitTLSPort: 465, STARTTLSPort: 587},
		},
		Listen: Listen{
			HTTP: ":80", HTTPS: ":443", DNS: ":53",
			POP3S: ":995", POP3: ":110",
			SMTPS: ":465", Submission: ":587", MX: ":25",
		},
		SMTP: SMTP{Hostname: "smtp.skydesk.jp", MaxMessageSize: 50 << 20,
			DefaultQuota: "1G", MaxBytesInFlight: "512M", MXMessagesPerMinute: 60, MXBytesPerMinute: "200M",
			Smarthost: Smarthost{TLS: "implicit", RetryPeriod: "120h", ClaimLease: "5m"}},
		Spam: Spam{Timeout: "10s", OnError: "accept"},
		DNS: DNS{
			Nameservers: []string{"ns1.skydesk.jp", "ns2.skydesk.jp"},
			TTL:         3600,
			MXHost:      "mx.skydesk.jp",
			RRL:         RRL{ResponsesPerSecond: 20, Slip: 2, IPv4PrefixLength: 24, IPv6PrefixLength: 56},
		},
		Log: Log{Level: "info", Format: "auto"},
		Auth: Auth{FailuresBeforeDelay: 3, FailuresBeforeLock: 10, LockDuration: "15m",
			NetworkFailuresBeforeLock: 100, IPv4Prefix: 32, IPv6Prefix: 64},
		ACME: defaultACME(),
	}
	c.Limits = defaultLimits()
	c.Database = defaultDatabase()
	c.SMTP.Postmaster = postmasterOf(c.Provider.PersonalDomain)
	return c
}

// postmasterOf is the default smtp.postmaster for a personal domain.
func postmasterOf(domain string) string { return "postmaster@" + domain }

// Dev returns the quick-start configuration of `serve --dev`: everything on
// 127.0.0.1 and unprivileged ports (README, DESIGN.md §6).
func Dev(dataDir string) *Config {
	c := Default()
	c.DataDir = dataDir
	c.Provider.WebURL = "https://127.0.0.1:8443"
	c.Listen = Listen{
		HTTP: "127.0.0.1:8080", HTTPS: "127.0.0.1:8443", DNS: "127.0.0.1:8053",
		POP3S: "127.0.0.1:9995", POP3: "127.0.0.1:9110",
		SMTPS: "127.0.0.1:9465", Submission: "127.0.0.1:9587", MX: "127.0.0.1:9025",
	}
	c.DNS.Addresses = map[string][]string{}
	for _, h := range c.ServiceHosts() {
		c.DNS.Addresses[h] = []string{"127.0.0.1", "::1"}
	}
	return c
}

// ServiceHosts lists the host names clients are told to connect to.
func (c *Config) ServiceHosts() []string {
	p := c.Provider
	hosts := []string{p.POP.PersonalHost, p.POP.OrganizationHost, p.SMTP.Host, p.AutoconfigHost, p.AutodiscoverHost}
	if c.DNS.MXHost != "" {
		hosts = append(hosts, c.DNS.MXHost)
	}
	return dedupe(hosts)
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// Load reads a YAML file over Default and validates the result.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	defer f.Close()
	c := Default()
	if err := Decode(io.LimitReader(f, 1<<20), c); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Decode reads YAML into c (keeping c's values for absent keys), refusing
// unknown keys, then validates.
func Decode(r io.Reader, c *Config) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("reading config: %w", err)
	}
	if len(bytes.TrimSpace(data)) > 0 {
		// The default postmaster belongs to the personal domain: a file
		// that moves the domain but leaves smtp.postmaster alone moves it
		// too, instead of naming an account no store can hold.
		follow := c.SMTP.Postmaster == postmasterOf(c.Provider.PersonalDomain)
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("parsing config: %s", nameKeys(data, err))
		}
		if follow && !hasKey(data, "smtp", "postmaster") {
			c.SMTP.Postmaster = postmasterOf(c.Provider.PersonalDomain)
		}
	}
	return c.Validate()
}

var lineRE = regexp.MustCompile(`line (\d+): `)

// nameKeys rewrites yaml's "line N: cannot unmarshal …" messages so each
// names the dotted key at that line.
func nameKeys(data []byte, err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	var root yaml.Node
	if yaml.Unmarshal(data, &root) != nil {
		return msg
	}
	return lineRE.ReplaceAllStringFunc(msg, func(m string) string {
		n, _ := strconv.Atoi(lineRE.FindStringSubmatch(m)[1])
		if key := keyAtLine(&root, n, ""); key != "" {
			return key + " (line " + strconv.Itoa(n) + "): "
		}
		return m
	})
}

// hasKey reports whether the document sets the key at path (mapping keys
// from the root).
func hasKey(data []byte, path ...string) bool {
	var root yaml.Node
	if yaml.Unmarshal(data, &root) != nil || len(root.Content) == 0 {
		return false
	}
	n := root.Content[0]
	for _, key := range path {
		if n.Kind != yaml.MappingNode {
			return false
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				next = n.Content[i+1]
			}
		}
		if next == nil {
			return false
		}
		n = next
	}
	return true
}

func keyAtLine(n *yaml.Node, line int, prefix string) string {
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for _, c := range n.Content {
			if k := keyAtLine(c, line, prefix); k != "" {
				return k
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := n.Content[i].Value
			if prefix != "" {
				key = prefix + "." + key
			}
			if n.Content[i].Line == line || n.Content[i+1].Line == line && n.Content[i+1].Kind == yaml.ScalarNode {
				return key
			}
			if k := keyAtLine(n.Content[i+1], line, key); k != "" {
				return k
			}
		}
	}
	return ""
}
