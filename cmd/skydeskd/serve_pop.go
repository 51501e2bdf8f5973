package main

// popComponents starts the POP3 listeners (not built yet).
func (a *app) popComponents() ([]component, error) { return nil, nil }
