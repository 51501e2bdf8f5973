package autoconfig

import "github.com/labstack/echo/v4"

// Registrar adds routes to the service's echo instance. The web pages
// (setup page, settings screen) plug in through it, so every echo import
// stays in this package. secure is false for the plain-HTTP listener.
type Registrar interface {
	Register(e *echo.Echo, secure bool)
}
