package http

import (
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/outreach/outreach/contact"
)

// queryNames are the query parameters of the API (openapi.yaml gives each
// route its own; a test keeps the two in step). Others are ignored.
var queryNames = map[string]bool{
	"at": true, "before": true, "campaign": true, "channel": true, "currency": true, "cursor": true,
	"customer": true, "customer_id": true, "limit": true, "only": true, "owner": true, "phone": true,
	"policy": true, "price": true, "product": true, "purpose": true, "raw": true, "reason": true,
	"role": true, "since": true, "state": true, "team": true,
}

// refuseRepeatedQuery refuses a query parameter of the API given more than
// once: none takes a list, and reading the first value alone would answer
// a question the client did not ask. The pages answer in HTML, as their
// other errors do.
func (s *Server) refuseRepeatedQuery(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		for name, values := range c.QueryParams() {
			if len(values) < 2 || !queryNames[name] {
				continue
			}
			err := contact.Invalid(name, "is given %d times; give it once", len(values))
			if p := c.Path(); p == "/" || strings.HasPrefix(p, "/customers/") || strings.HasPrefix(p, "/followups") {
				return s.renderPageError(c, err)
			}
			return err
		}
		return next(c)
	}
}
