package http

import "testing"

// TestRouteQueryReadsTheDocument checks that the query parameters of the
// routes are read from openapi.yaml.
func TestRouteQueryReadsTheDocument(t *testing.T) {
	routes := routeQuery()
	for route, want := range map[string][]string{
		"GET /v1/customers/:id/contacts": {"limit", "before"},
		"POST /v1/lists/scrub":           {"channel", "raw", "policy", "at"},
		"GET /v1/suppressions/:list":     {"customer_id", "phone"},
		"GET /followups/panel":           {"team", "owner"},
	} {
		for _, name := range want {
			if !routes[route][name] {
				t.Errorf("%s: no query parameter %s in %v", route, name, routes[route])
			}
		}
	}
	if routes["GET /followups"]["phone"] {
		t.Errorf("GET /followups takes no phone")
	}
}
