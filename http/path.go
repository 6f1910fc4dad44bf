package http

import (
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/outreach/outreach/contact"
)

// Path ids are decoded exactly once. Go's server decodes a request path
// into URL.Path and keeps URL.RawPath only when the two differ in more than
// the default escaping, and echo routes on RawPath when set and on Path
// otherwise. So /v1/customers/a%2541 routed as customer "a%41" (and then
// "aA" after the handler unescaped it), and a lone % in "100%25" could not
// be unescaped at all. routeOnEscapedPath makes echo always route on the
// escaped path, whose segments are split at real slashes only, and
// decodePathParams unescapes each parameter once.

// routeOnEscapedPath is a pre-routing middleware.
func routeOnEscapedPath(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		u := c.Request().URL
		u.RawPath = u.EscapedPath()
		return next(c)
	}
}

// decodePathParams unescapes the path parameters of the route found, so
// that c.Param returns each one decoded once.
func decodePathParams(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		names, values := c.ParamNames(), c.ParamValues()
		decoded := make([]string, len(names))
		for i := range names {
			v, err := decodePathSegment(names[i], values[i])
			if err != nil {
				return err
			}
			decoded[i] = v
		}
		c.SetParamValues(decoded...)
		return next(c)
	}
}

// decodePathSegment unescapes one escaped path segment, the parameter name.
// It fails, with an EInvalid error naming the parameter, on a malformed
// escape and on a result that is not valid UTF-8; an id is text.
func decodePathSegment(name, raw string) (string, error) {
	v, err := url.PathUnescape(raw)
	if err != nil {
		return "", contact.Invalid(paramField(name), "is not a valid URL path segment")
	}
	if err := contact.ValidUTF8(paramField(name), v); err != nil {
		return "", err
	}
	return v, nil
}

// paramField names a path parameter as the API's errors do.
func paramField(name string) string {
	if name == "id" {
		return "customer_id"
	}
	return name
}
