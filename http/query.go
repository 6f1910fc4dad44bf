package http

import (
	"regexp"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"
	"go.yaml.in/yaml/v3"

	"github.com/outreach/outreach/contact"
)

// refuseRepeatedQuery refuses a query parameter of the route given more
// than once: none takes a list, and reading the first value alone would
// answer a question the client did not ask. Parameters the route does not
// take are ignored, repeated or not. The pages answer in HTML, as their
// other errors do.
func (s *Server) refuseRepeatedQuery(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		known := routeQuery()[c.Request().Method+" "+c.Path()]
		for name, values := range c.QueryParams() {
			if len(values) < 2 || !known[name] {
				continue
			}
			err := contact.Invalid(name, "is given %d times; give it once", len(values))
			if p := c.Path(); p == "/" || strings.HasPrefix(p, "/customers/") || strings.HasPrefix(p, "/followups") || strings.HasPrefix(p, "/insights") {
				return s.renderPageError(c, err)
			}
			return err
		}
		return next(c)
	}
}

// routeQuery maps each route, as "GET /v1/customers/:id/contacts", to the
// query parameters that openapi.yaml gives it: the document is the
// contract. (A test checks that it reads.)
var routeQuery = sync.OnceValue(func() map[string]map[string]bool {
	type param struct {
		Ref  string `yaml:"$ref"`
		Name string `yaml:"name"`
		In   string `yaml:"in"`
	}
	var doc struct {
		Paths      map[string]map[string]yaml.Node `yaml:"paths"`
		Components struct {
			Parameters map[string]param `yaml:"parameters"`
		} `yaml:"components"`
	}
	routes := map[string]map[string]bool{}
	if err := yaml.Unmarshal(openapiDoc, &doc); err != nil {
		return routes
	}
	pathParam := regexp.MustCompile(`\{(\w+)\}`)
	for path, item := range doc.Paths {
		var shared []param
		if node, ok := item["parameters"]; ok {
			_ = node.Decode(&shared)
		}
		for method, node := range item {
			var op struct{ Parameters []param }
			if method == "parameters" || node.Decode(&op) != nil {
				continue
			}
			names := map[string]bool{}
			for _, p := range append(op.Parameters, shared...) {
				if p.Ref != "" {
					p = doc.Components.Parameters[p.Ref[strings.LastIndex(p.Ref, "/")+1:]]
				}
				if p.In == "query" {
					names[p.Name] = true
				}
			}
			routes[strings.ToUpper(method)+" "+pathParam.ReplaceAllString(path, ":$1")] = names
		}
	}
	return routes
})
