package main

import (
	"os"
	"strings"
	"testing"
)

// TestREADMEDocumentsEverySetting keeps the README's configuration table in
// step with the settings.
func TestREADMEDocumentsEverySetting(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(ConfigTable()), "\n") {
		if !strings.Contains(string(readme), line) {
			t.Errorf("README.md lacks the line:\n%s", line)
		}
	}
}
