package http

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestQueryNamesAreTheDocuments keeps queryNames equal to the query
// parameters that openapi.yaml gives the routes.
func TestQueryNamesAreTheDocuments(t *testing.T) {
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
	if err := yaml.Unmarshal(openapiDoc, &doc); err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, item := range doc.Paths {
		for _, node := range item {
			var params []param
			if node.Kind == yaml.SequenceNode {
				node.Decode(&params) // the path's own parameters
			} else {
				var op struct{ Parameters []param }
				node.Decode(&op)
				params = op.Parameters
			}
			for _, p := range params {
				if p.Ref != "" {
					p = doc.Components.Parameters[p.Ref[strings.LastIndex(p.Ref, "/")+1:]]
				}
				if p.In == "query" {
					documented[p.Name] = true
				}
			}
		}
	}
	if got, want := slices.Sorted(maps.Keys(queryNames)), slices.Sorted(maps.Keys(documented)); !slices.Equal(got, want) {
		t.Errorf("queryNames %v, openapi.yaml %v", got, want)
	}
}
