package main

// smtpComponents starts the SMTP listeners (not built yet).
func (a *app) smtpComponents() ([]component, error) { return nil, nil }
