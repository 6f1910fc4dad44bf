package http_test

import (
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/outreach/outreach/contact"
	httpapi "github.com/outreach/outreach/http"
)

// TestServerKeepsTheContract covers what Schemathesis found the server
// accepting against http/openapi.yaml, or refusing within it.
func TestServerKeepsTheContract(t *testing.T) {
	t.Parallel()
	h := httpapi.New(httpapi.Config{
		Producer: &memProducer{}, Timelines: &memTimelines{}, Checker: &memChecker{facts: map[string]contact.Facts{}},
		Now: func() time.Time { return now },
	}).Handler()
	tests := []struct {
		name, method, path, contentType, body string
		status                                int
		html                                  bool
	}{
		{"a search for an id with a control character", "GET", "/?customer=c1%0A", "", "", 400, true},
		{"a search for spaces", "GET", "/?customer=%20%20", "", "", 400, true},
		{"a search with spaces around the id", "GET", "/?customer=%20c1%20", "", "", 303, false},
		{"an empty search", "GET", "/?customer=", "", "", 200, true},
		{"a repeated query parameter", "GET", "/v1/customers/c1/contacts?limit=1&limit=2", "", "", 400, false},
		{"a repeated parameter the route does not take", "GET", "/v1/customers/c1/contacts?x=1&x=2&phone=1&phone=2", "", "", 200, false},
		{"a repeated query parameter of the page", "GET", "/customers/c1/panel?before=a&before=b", "", "", 400, true},
		{"a repeated range of the insights page", "GET", "/insights/panel?range=7d&range=7d", "", "", 400, true},
		{"a repeated filter of the follow-ups page", "GET", "/followups/panel?team=a&team=b", "", "", 400, true},
		{"a currency the page's form gives without a price", "POST", "/customers/c1/check", "application/x-www-form-urlencoded", "channel=call&currency=ABC", 400, true},
		{"a known currency without a price", "POST", "/customers/c1/check", "application/x-www-form-urlencoded", "channel=call&currency=nok", 200, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			ct := rec.Header().Get("Content-Type")
			if rec.Code != tt.status || tt.html != strings.HasPrefix(ct, "text/html") && rec.Code != 303 {
				t.Errorf("%d %q: %.300s; want %d (HTML: %v)", rec.Code, ct, rec.Body, tt.status, tt.html)
			}
		})
	}
}

// TestOpenAPICurrencies keeps the document's Currency enum equal to the
// codes the server takes.
func TestOpenAPICurrencies(t *testing.T) {
	raw, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Enum []string `yaml:"enum"`
			} `yaml:"schemas"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	documented := doc.Components.Schemas["Currency"].Enum
	var taken []string
	for a := 'A'; a <= 'Z'; a++ {
		for b := 'A'; b <= 'Z'; b++ {
			for c := 'A'; c <= 'Z'; c++ {
				if code := string([]rune{a, b, c}); contact.ValidCurrency("", code) == nil {
					taken = append(taken, code)
				}
			}
		}
	}
	if want := append([]string{""}, taken...); !slices.Equal(documented, want) {
		t.Errorf("Currency enum in openapi.yaml:\n%v\nthe server takes (and \"\"):\n%v", documented, want)
	}
}

// TestOpenAPIEmptyQueryValues: the server takes a query parameter given
// empty as not given, so the contract must let every enum parameter be
// empty (allowEmptyValue, or "" in its enum). Schemathesis sent step= to
// /v1/insights, whose enum did neither, and the 200 it got broke the
// contract.
func TestOpenAPIEmptyQueryValues(t *testing.T) {
	raw, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	type param struct {
		Ref        string `yaml:"$ref"`
		Name       string `yaml:"name"`
		In         string `yaml:"in"`
		AllowEmpty bool   `yaml:"allowEmptyValue"`
		Schema     struct {
			Enum []any `yaml:"enum"`
		} `yaml:"schema"`
	}
	var doc struct {
		Paths      map[string]map[string]yaml.Node `yaml:"paths"`
		Components struct {
			Parameters map[string]param `yaml:"parameters"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	seen := 0
	for path, item := range doc.Paths {
		for method, node := range item {
			var op struct{ Parameters []param }
			if method == "parameters" {
				err = node.Decode(&op.Parameters) // shared by the path's operations
			} else {
				err = node.Decode(&op)
			}
			if err != nil {
				t.Fatalf("%s %s: %v", path, method, err)
			}
			for _, p := range op.Parameters {
				if p.Ref != "" {
					p = doc.Components.Parameters[p.Ref[strings.LastIndex(p.Ref, "/")+1:]]
				}
				if p.In != "query" || len(p.Schema.Enum) == 0 {
					continue
				}
				seen++
				if !p.AllowEmpty && !slices.Contains(p.Schema.Enum, any("")) {
					t.Errorf("%s %s: query parameter %s has an enum, but neither allowEmptyValue nor \"\" in it: the server takes %s= as not given",
						strings.ToUpper(method), path, p.Name, p.Name)
				}
			}
		}
	}
	if seen == 0 {
		t.Fatal("no enum query parameter found: the document's shape changed")
	}
}
