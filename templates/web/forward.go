package web

// Forwarding is the settings screen's forwarding section.
type Forwarding struct {
	// Relay false: forwarding is unavailable (no smtp.smarthost).
	Relay bool
	// Target "" means forwarding is off.
	Target  string
	Keep    bool
	Pending bool   // the target has not confirmed yet
	Expires string // when the pending link stops working (FormatTime)
}

// ForwardConfirm is the confirmation link's page.
type ForwardConfirm struct {
	Base
	// State is "ask" (GET: the button), "done" (POST confirmed) or
	// "invalid" (unknown, used or expired link).
	State           string
	Token           string
	Account, Target string
}
