package templates

import (
	"strconv"

	"github.com/beevik/etree"

	"github.com/skydesk/skydeskd/profiles"
)

// POP3 download hints rendered into <pop3> (Mozilla v1.1 format; removed
// from the IETF draft in Nov 2024 but still read by Thunderbird's
// readFromXML, REFERENCE §1.1). They match the service default "keep on
// server" (DESIGN.md §2).
const (
	tbLeaveMessagesOnServer = "true"
	tbDaysToLeave           = "14"
	tbDownloadOnBiff        = "true"
)

// Thunderbird renders config-v1.1.xml for a Profile. a is the address the
// client asked about; the zero Address renders the generic document with
// %EMAILADDRESS% as the user name.
//
// Shape (REFERENCE §1.2): one pop3 incomingServer (the kind's host only;
// Thunderbird takes the first valid section, so the other kind's host is
// never offered), then the outgoing servers in the Profile's order
// (implicit TLS 465 first, RFC 8314 §5.1, then STARTTLS 587), each with
// password-cleartext and the full address as user name, and a
// documentation link with Japanese and English descriptions. Host names
// are A-labels: Thunderbird's Sanitizer.hostname rejects U-labels.
func Thunderbird(p profiles.Profile, a profiles.Address) ([]byte, error) {
	if err := checkProfile(p); err != nil {
		return nil, err
	}
	user := login(a)
	doc := newDoc()
	root := doc.CreateElement("clientConfig")
	root.CreateAttr("version", "1.1")
	ep := root.CreateElement("emailProvider")
	ep.CreateAttr("id", providerID(p))
	text(ep, "domain", p.Domain)
	if p.Provider.Name != "" {
		text(ep, "displayName", p.Provider.Name)
	}
	if p.Provider.ShortName != "" {
		text(ep, "displayShortName", p.Provider.ShortName)
	}
	for _, s := range p.Incoming {
		in := ep.CreateElement("incomingServer")
		in.CreateAttr("type", string(s.Protocol))
		if err := tbServer(in, s, user); err != nil {
			return nil, err
		}
		if s.Protocol == profiles.POP3 {
			pop := in.CreateElement("pop3")
			text(pop, "leaveMessagesOnServer", tbLeaveMessagesOnServer)
			text(pop, "daysToLeaveMessagesOnServer", tbDaysToLeave)
			text(pop, "downloadOnBiff", tbDownloadOnBiff)
		}
	}
	for _, s := range p.Outgoing {
		out := ep.CreateElement("outgoingServer")
		out.CreateAttr("type", "smtp")
		if err := tbServer(out, s, user); err != nil {
			return nil, err
		}
	}
	if p.Provider.HelpURL != "" {
		d := ep.CreateElement("documentation")
		d.CreateAttr("url", p.Provider.HelpURL)
		text(d, "descr", "メールソフトの設定方法").CreateAttr("lang", "ja")
		text(d, "descr", "How to configure your mail client").CreateAttr("lang", "en")
	}
	return write(doc)
}

// tbServer fills the children shared by incoming and outgoing sections, in
// the order of the draft's example. The password is never rendered.
func tbServer(e *etree.Element, s profiles.Server, user string) error {
	st, err := SocketType(s.Security)
	if err != nil {
		return err
	}
	auth, err := AuthMethod(s.Auth)
	if err != nil {
		return err
	}
	text(e, "hostname", s.Host)
	text(e, "port", strconv.Itoa(s.Port))
	text(e, "socketType", st)
	text(e, "username", user)
	text(e, "authentication", auth)
	return nil
}

// providerID is the emailProvider id: the provider's own domain, which
// Thunderbird checks with Sanitizer.hostname.
func providerID(p profiles.Profile) string {
	if p.Provider.ID != "" {
		return p.Provider.ID
	}
	return p.Domain
}
