package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// FieldError names the YAML key whose value is impossible.
type FieldError struct {
	Key    string
	Reason string
}

func (e *FieldError) Error() string { return e.Key + ": " + e.Reason }

// Validate refuses impossible values (port 0, empty host, bad durations),
// naming the key. All problems are reported together.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, &FieldError{Key: key, Reason: fmt.Sprintf(format, a...)})
	}
	host := func(key, v string) {
		if err := checkHostname(v); err != nil {
			bad(key, "%v", err)
		}
	}
	port := func(key string, v int) {
		if v < 1 || v > 65535 {
			bad(key, "port %d out of range 1-65535", v)
		}
	}
	nonEmpty := func(key, v string) {
		if strings.TrimSpace(v) == "" {
			bad(key, "must not be empty")
		}
	}
	dur := func(key, v string) {
		if d, err := time.ParseDuration(v); err != nil || d <= 0 {
			bad(key, "%q is not a positive duration such as 15m", v)
		}
	}
	httpURL := func(key, v string) {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			bad(key, "%q is not an http(s) URL", v)
		}
	}

	nonEmpty("data_dir", c.DataDir)
	p := c.Provider
	host("provider.id", p.ID)
	nonEmpty("provider.name", p.Name)
	nonEmpty("provider.short_name", p.ShortName)
	host("provider.personal_domain", p.PersonalDomain)
	httpURL("provider.help_url", p.HelpURL)
	httpURL("provider.web_url", p.WebURL)
	host("provider.autoconfig_host", p.AutoconfigHost)
	host("provider.autodiscover_host", p.AutodiscoverHost)
	host("provider.pop.personal_host", p.POP.PersonalHost)
	host("provider.pop.organization_host", p.POP.OrganizationHost)
	port("provider.pop.port", p.POP.Port)
	host("provider.smtp.host", p.SMTP.Host)
	port("provider.smtp.implicit_tls_port", p.SMTP.ImplicitTLSPort)
	port("provider.smtp.starttls_port", p.SMTP.STARTTLSPort)
	// "" and "UTC" both load as UTC; "Local" would follow the host, which a
	// provider setting must not.
	if _, err := time.LoadLocation(p.TimeZone); err != nil || p.TimeZone == "" || p.TimeZone == "Local" {
		bad("provider.time_zone", "%q is not an IANA time zone name such as Asia/Tokyo", p.TimeZone)
	}

	for key, v := range map[string]string{
		"listen.http": c.Listen.HTTP, "listen.https": c.Listen.HTTPS, "listen.dns": c.Listen.DNS,
		"listen.pop3s": c.Listen.POP3S, "listen.pop3": c.Listen.POP3,
		"listen.smtps": c.Listen.SMTPS, "listen.submission": c.Listen.Submission, "listen.mx": c.Listen.MX,
	} {
		if v == "" {
			continue
		}
		if err := checkListen(v); err != nil {
			bad(key, "%v", err)
		}
	}

	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		bad("tls.cert_file", "cert_file and key_file must be given together")
	}
	for i, n := range c.TLS.ExtraNames {
		host(fmt.Sprintf("tls.extra_names[%d]", i), n)
	}

	host("smtp.hostname", c.SMTP.Hostname)
	for _, kv := range [][2]string{{"smtp.default_quota", c.SMTP.DefaultQuota}, {"smtp.max_bytes_in_flight", c.SMTP.MaxBytesInFlight}} {
		if _, err := ParseSize(kv[1]); err != nil {
			bad(kv[0], "%v", err)
		}
	}
	if v := c.SMTP.MXBytesPerMinute; v != "-1" {
		if _, err := ParseSize(v); err != nil {
			bad("smtp.mx_bytes_per_minute", "%v", err)
		}
	}
	if c.SMTP.MaxMessageSize < 1024 {
		bad("smtp.max_message_size", "%d is below the 1024-byte minimum", c.SMTP.MaxMessageSize)
	}
	// Empty: no service-wide postmaster (RFC 5321 §4.5.1 is then met only
	// by domains with an account of their own named postmaster).
	if c.SMTP.Postmaster != "" {
		if err := checkAddress(c.SMTP.Postmaster); err != nil {
			bad("smtp.postmaster", "%v", err)
		}
	}
	if sh := c.SMTP.Smarthost; sh.Host != "" {
		host("smtp.smarthost.host", sh.Host)
		port("smtp.smarthost.port", sh.Port)
		switch sh.TLS {
		case "implicit", "starttls", "none":
		default:
			bad("smtp.smarthost.tls", "%q is not implicit, starttls or none", sh.TLS)
		}
		dur("smtp.smarthost.retry_period", sh.RetryPeriod)
		dur("smtp.smarthost.claim_lease", sh.ClaimLease)
	}

	if c.Spam.RspamdURL != "" {
		httpURL("spam.rspamd_url", c.Spam.RspamdURL)
	}
	dur("spam.timeout", c.Spam.Timeout)
	switch c.Spam.OnError {
	case "accept", "tempfail":
	default:
		bad("spam.on_error", "%q is not accept or tempfail", c.Spam.OnError)
	}

	if len(c.DNS.Nameservers) == 0 {
		bad("dns.nameservers", "at least one name server is required")
	}
	for i, n := range c.DNS.Nameservers {
		host(fmt.Sprintf("dns.nameservers[%d]", i), n)
	}
	for name, addrs := range c.DNS.Addresses {
		host("dns.addresses", name)
		for _, a := range addrs {
			if _, err := netip.ParseAddr(a); err != nil {
				bad("dns.addresses."+name, "%q is not an IP address", a)
			}
		}
	}
	if c.DNS.TTL == 0 {
		bad("dns.ttl", "must be at least 1 second")
	}
	if c.DNS.MXHost != "" {
		host("dns.mx_host", c.DNS.MXHost)
	}
	if r := c.DNS.RRL; r.ResponsesPerSecond < 0 || r.ResponsesPerSecond > 1000000 {
		bad("dns.rrl.responses_per_second", "%d is not in 0..1000000 (0 turns rate limiting off)", r.ResponsesPerSecond)
	}
	if r := c.DNS.RRL; r.Slip < 0 || r.Slip > 10 {
		bad("dns.rrl.slip", "%d is not in 0..10 (0 drops every limited answer)", r.Slip)
	}
	if r := c.DNS.RRL; r.IPv4PrefixLength < 1 || r.IPv4PrefixLength > 32 {
		bad("dns.rrl.ipv4_prefix_length", "%d is not in 1..32", r.IPv4PrefixLength)
	}
	if r := c.DNS.RRL; r.IPv6PrefixLength < 1 || r.IPv6PrefixLength > 128 {
		bad("dns.rrl.ipv6_prefix_length", "%d is not in 1..128", r.IPv6PrefixLength)
	}

	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q is not debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "auto", "text", "json":
	default:
		bad("log.format", "%q is not auto, text or json", c.Log.Format)
	}

	if c.Auth.FailuresBeforeDelay < 1 {
		bad("auth.failures_before_delay", "must be at least 1")
	}
	if c.Auth.FailuresBeforeLock <= c.Auth.FailuresBeforeDelay {
		bad("auth.failures_before_lock", "must be greater than auth.failures_before_delay")
	}
	dur("auth.lock_duration", c.Auth.LockDuration)
	if c.Auth.NetworkFailuresBeforeLock < c.Auth.FailuresBeforeLock {
		bad("auth.network_failures_before_lock", "must be at least auth.failures_before_lock")
	}
	if c.Auth.IPv4Prefix < 8 || c.Auth.IPv4Prefix > 32 {
		bad("auth.ipv4_prefix", "must be 8 to 32")
	}
	if c.Auth.IPv6Prefix < 32 || c.Auth.IPv6Prefix > 128 {
		bad("auth.ipv6_prefix", "must be 32 to 128")
	}
	c.validateACME(bad)
	if err := c.Limits.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.validateProxy(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Database.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.POP.validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// checkHostname accepts an LDH host name (A-labels), at most 253 octets.
func checkHostname(v string) error {
	if v == "" {
		return errors.New("host name must not be empty")
	}
	if len(v) > 253 {
		return errors.New("host name longer than 253 octets")
	}
	for _, label := range strings.Split(strings.TrimSuffix(v, "."), ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("%q is not a valid host name", v)
		}
		for i, r := range label {
			ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
				r == '-' && i > 0 && i < len(label)-1
			if !ok {
				return fmt.Errorf("%q is not a valid host name (use A-labels for IDN)", v)
			}
		}
	}
	return nil
}

// checkAddress accepts local@domain as an account can be named
// (profiles.ParseAddress): a local part of at most 64 octets, valid UTF-8
// without controls, spaces, quotes, specials or misplaced dots, and a host
// name in A-labels with at least one dot.
func checkAddress(v string) error {
	at := strings.LastIndexByte(v, '@')
	if at < 0 {
		return fmt.Errorf("%q is not an address (local@domain)", v)
	}
	local, domain := v[:at], v[at+1:]
	switch {
	case local == "":
		return fmt.Errorf("%q: empty local part", v)
	case len(local) > 64:
		return fmt.Errorf("%q: local part longer than 64 octets", v)
	case !utf8.ValidString(local):
		return fmt.Errorf("%q: local part is not valid UTF-8", v)
	case local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, ".."):
		return fmt.Errorf("%q: misplaced dot in local part", v)
	}
	for _, r := range local {
		if r < 0x21 || r == 0x7f || (r >= 0x80 && r < 0xa0) || strings.ContainsRune(`"(),:;<>@[\]`, r) {
			return fmt.Errorf("%q: character %q not allowed in local part", v, r)
		}
	}
	if err := checkHostname(domain); err != nil {
		return fmt.Errorf("%q: domain: %w", v, err)
	}
	if !strings.Contains(domain, ".") || strings.HasSuffix(domain, ".") {
		return fmt.Errorf("%q: domain needs a dot and no trailing dot", v)
	}
	return nil
}

func checkListen(v string) error {
	h, p, err := net.SplitHostPort(v)
	if err != nil {
		return fmt.Errorf("%q is not host:port", v)
	}
	if h != "" {
		if _, err := netip.ParseAddr(h); err != nil && h != "localhost" {
			return fmt.Errorf("%q: host must be an IP address", v)
		}
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: port out of range", v)
	}
	return nil
}

// LockDurationValue returns Auth.LockDuration parsed (Validate has checked it).
func (a Auth) LockDurationValue() time.Duration {
	d, _ := time.ParseDuration(a.LockDuration)
	return d
}

// TimeoutValue returns Timeout parsed (Validate has checked it).
func (s Spam) TimeoutValue() time.Duration {
	d, _ := time.ParseDuration(s.Timeout)
	return d
}
