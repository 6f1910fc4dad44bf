package http

import (
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/outreach/outreach/contact"
)

// refuseRepeatedQuery refuses a query parameter given more than once: no
// route takes a list in its query, and reading the first value alone would
// answer a question the client did not ask. The agent page's routes answer
// in HTML, as their other errors do.
func (s *Server) refuseRepeatedQuery(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		for name, values := range c.QueryParams() {
			if len(values) < 2 {
				continue
			}
			err := contact.Invalid(contact.Clip(name), "is given %d times; give it once", len(values))
			if p := c.Path(); p == "/" || strings.HasPrefix(p, "/customers/") || strings.HasPrefix(p, "/followups") {
				return s.renderPageError(c, err)
			}
			return err
		}
		return next(c)
	}
}
