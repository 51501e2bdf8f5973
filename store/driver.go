package store

import (
	"context"
	"time"
)

// The role interfaces below are what the servers need from a store, one
// per consumer, so a second driver (PostgreSQL, for several nodes) only has
// to implement storage: the credential rules (Authenticator), the POP3
// adapter (popstore), smtpd and the settings page work over them
// unchanged. No interface exposes *sql.DB or SQL; addresses are accepted
// in any case and normalised by the driver (profiles.NormalizeAddress)
// unless a method says it takes a normalised one. store/storetest.Run is
// the conformance suite every driver passes.

// HostedDomains is the list of hosted domains (admin commands, DNS, HTTP).
type HostedDomains interface {
	// AddDomain adds a hosted domain (any case, U- or A-labels) and
	// returns it in A-labels; ErrExists if present or the personal domain.
	AddDomain(ctx context.Context, domain string) (string, error)
	// RemoveDomain removes one; ErrInUse while accounts exist in it,
	// ErrNotFound if it is not hosted.
	RemoveDomain(ctx context.Context, domain string) error
	// ListDomains reads the hosted domains, sorted.
	ListDomains(ctx context.Context) ([]string, error)
	// Domains is the in-memory snapshot hot paths read.
	Domains() *DomainSnapshot
	// RefreshDomains reloads the snapshot, reporting whether it changed.
	RefreshDomains(ctx context.Context) (bool, error)
	// OnDomainsChanged registers f to run after the snapshot changes.
	OnDomainsChanged(f func())
	// IsHosted implements profiles.Domains from the snapshot.
	IsHosted(ctx context.Context, domain string) (bool, error)
	// IsLocalDomain: the personal or a hosted domain (never relayed).
	IsLocalDomain(domain string) bool
}

// Accounts are the admin commands' and the settings page's account,
// app-password and two-step operations. Every credential change drops the
// verified-login cache (the account's credential generation changes).
type Accounts interface {
	AddAccount(ctx context.Context, n NewAccount) (Account, error)
	GetAccount(ctx context.Context, address string) (Account, error)
	ListAccounts(ctx context.Context) ([]Account, error)
	SetPassword(ctx context.Context, address, password string) error
	// ChangePassword is SetPassword that can also revoke every app
	// password in the same transaction (revokeApps), returning how many.
	ChangePassword(ctx context.Context, address, password string, revokeApps bool) (int64, error)
	SetTwoStep(ctx context.Context, address string, on bool) error
	CreateAppPassword(ctx context.Context, address, name string) (string, error)
	ListAppPasswords(ctx context.Context, address string) ([]AppPassword, error)
	RevokeAppPassword(ctx context.Context, address, name string) error
	EnrolTOTP(ctx context.Context, address string) (TOTPKey, error)
	NewTOTPKey(address string) (TOTPKey, error)
	ConfirmTOTP(ctx context.Context, address, secret, code string) error
	// SetQuota sets the mailbox quota in octets (0: unlimited;
	// QuotaDefault: the configured default).
	SetQuota(ctx context.Context, address string, quota int64) error
}

// POPPreferences are an account's POP settings as the admin command and
// the settings page read and change them.
type POPPreferences interface {
	GetPOP(ctx context.Context, address string) (POPSettings, error)
	SetPOP(ctx context.Context, address string, u POPUpdate) (POPSettings, error)
	// LastPOPSession is the account's last POP session as
	// RecordPOPSession left it; ok is false if there was none.
	LastPOPSession(ctx context.Context, address string) (ps POPSession, ok bool, err error)
}

// Forwarding is an account's mail forwarding (forward.go) as the admin
// command, the settings page and the MX read and change it.
type Forwarding interface {
	GetForward(ctx context.Context, address string) (Forward, error)
	SetForward(ctx context.Context, address string, u ForwardUpdate) (Forward, error)
	// ForwardByToken only reads (a confirmation page's GET);
	// ConfirmForward spends the token (its POST).
	ForwardByToken(ctx context.Context, h ForwardTokenHash) (Forward, error)
	ConfirmForward(ctx context.Context, h ForwardTokenHash) (Forward, error)
	DisableForward(ctx context.Context, address string) error
}

// MaildropEntry is one message of a POP queue: its id is the UID, stable
// across sessions and never reused.
type MaildropEntry struct {
	ID   int64
	Size int64 // octets with CRLF line endings, as RETR sends them
}

// Maildrop is what a POP3 session reads and changes, by account id (the
// id of a Login's Account).
type Maildrop interface {
	// MaildropSettings are the account's current POP settings.
	MaildropSettings(ctx context.Context, accountID int64) (POPSettings, error)
	// ListMaildrop lists the POP queue under st, oldest first: in the
	// queue, spam only with IncludeSpam, and with POPSince only mail
	// received since st.Since.
	ListMaildrop(ctx context.Context, accountID int64, st POPSettings) ([]MaildropEntry, error)
	// AppendBody appends octets [off, off+n) of a message body to dst;
	// ErrNotFound if the message is gone.
	AppendBody(ctx context.Context, accountID, id, off, n int64, dst []byte) ([]byte, error)
	// Expunge applies DELE marks in one transaction under the account's
	// current OnDelete: keep takes the messages out of the POP queue,
	// delete removes them.
	Expunge(ctx context.Context, accountID int64, ids []int64) error
	// RecordPOPSession records a session's end, replacing the previous
	// record, in one write.
	RecordPOPSession(ctx context.Context, accountID int64, ps POPSession) error
}

// Onboarding records which addresses asked a discovery format for their
// settings and whether they logged in within OnboardingWindow
// (store/onboarding.go); addresses are stored only as keyed hashes, rows
// are bounded in age and number.
type Onboarding interface {
	RecordDiscovery(ctx context.Context, address, format string, at time.Time) (bool, error)
	RecordLogin(ctx context.Context, address string, at time.Time) ([]string, error)
	SettleOnboarding(ctx context.Context, now time.Time) ([]string, error)
	OnboardingStats(ctx context.Context, since, now time.Time) ([]OnboardingCount, error)
}

// ThrottleCounters store the failed-login throttle's leaky buckets
// (ThrottleBucket) by key; the Authenticator does the arithmetic
// (throttle.go), so every driver counts alike. A driver shared by several
// nodes makes failures on any node add up to one count: keys are stored
// as keyed hashes (OnboardingKey.ThrottleKeyHash), never as raw
// addresses, and rows past their Expires are deleted as others are
// written, so their number stays bounded. The SQLite driver keeps them in
// process memory (MemoryCounters).
type ThrottleCounters interface {
	// ThrottleState reads keys' buckets, in the order of keys; a key
	// without one reads as the zero bucket.
	ThrottleState(ctx context.Context, keys []string) ([]ThrottleBucket, error)
	// UpdateThrottle reads keys' buckets, passes them to update and stores
	// what it returns (one per key, in order), as one atomic step: no
	// other update of these keys, on any node, comes between the read and
	// the write. update is pure and is called once per successful call.
	// now is the caller's clock, for the deletion of expired rows.
	UpdateThrottle(ctx context.Context, now time.Time, keys []string, update func([]ThrottleBucket) []ThrottleBucket) error
	// ClearThrottle forgets keys' buckets (a successful login).
	ClearThrottle(ctx context.Context, keys []string) error
}

// Deliverer stores incoming mail (SMTP, `skydeskd deliver`). A message
// given as a Body (Delivery.Stream, Accepted.Stream) is written in pieces
// of at most ChunkSize and read back the same way by AppendBody, so no
// whole copy of a large message is held in memory. Every delivery counts
// in the recipients' usage in the same transaction (Expunge with
// DeleteOnServer uncounts), and one that would take a mailbox over its
// quota fails with ErrOverQuota, storing nothing.
type Deliverer interface {
	Deliver(ctx context.Context, d Delivery) ([]int64, error)
	Accept(ctx context.Context, a Accepted) (uids []int64, queueID int64, err error)
	AcceptBatch(ctx context.Context, batch []Accepted) ([]AcceptResult, error)
	AccountExists(ctx context.Context, address string) (bool, error)
	// MailboxUsage is the mailbox's stored octets and effective quota.
	MailboxUsage(ctx context.Context, address string) (Usage, error)
	IsLocalDomain(domain string) bool
}

// Queue is the relay's outbound queue, shared by every node's relay on a
// shared database: a worker claims due messages for a lease, renews it
// while a delivery takes long and settles each with its outcome, which
// only the claim's holder can (store/queue_claim.go; delivery is at
// least once: a worker that dies between the smarthost's reply and
// QueueSettle leaves the message to be sent again).
type Queue interface {
	// ClaimQueue claims up to limit due, unclaimed messages (or ones whose
	// claim ended) for holder for lease, oldest first; concurrent
	// claimers never get the same message.
	ClaimQueue(ctx context.Context, now time.Time, holder string, lease time.Duration, limit int) ([]QueuedMessage, error)
	// RenewQueueClaim extends holder's claim; ok is false once lost.
	RenewQueueClaim(ctx context.Context, id int64, holder string, lease time.Duration) (ok bool, err error)
	// QueueSettle records an attempt's outcome and ends the claim, only
	// while holder has it (ErrClaimLost otherwise, nothing changed).
	QueueSettle(ctx context.Context, id int64, holder string, r QueueResult) error
	// DueQueue only looks: due messages, claimed or not.
	DueQueue(ctx context.Context, now time.Time, limit int) ([]QueuedMessage, error)
	// NextQueueAttempt is when a message is next claimable.
	NextQueueAttempt(ctx context.Context) (t time.Time, ok bool, err error)
	QueueLen(ctx context.Context) (int, error)
}

// Driver is a whole store: every role above, plus the credential storage
// the Authenticator works over, the settings screen's sessions
// (sessions.go), the POP3 maildrop leases (leases.go) and the failed-login
// throttle's counts.
type Driver interface {
	HostedDomains
	Accounts
	POPPreferences
	Forwarding
	Maildrop
	Deliverer
	Queue
	Credentials
	Sessions
	Onboarding
	Leases
	ThrottleCounters
	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	Close() error
}

var _ Driver = (*Store)(nil)
