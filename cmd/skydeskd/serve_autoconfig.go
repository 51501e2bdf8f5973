package main

import "net/http"

// webHandlers returns the handlers of the plain HTTP and the HTTPS
// listeners. Until the autoconfig service is wired in, both answer 404.
func (a *app) webHandlers() (plain, secure http.Handler, err error) {
	return http.NotFoundHandler(), http.NotFoundHandler(), nil
}
