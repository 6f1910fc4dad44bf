package deployments_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// Pending lists what the deployment files use before the service has it
// (issue 9, worked on in parallel). The lead deletes each entry when it
// lands; the tests fail while an entry is still listed but already real.
var (
	// pendingMetrics are metric names, with the label names each will have.
	pendingMetrics = map[string][]string{}
	// pendingSettings are OUTREACH_* variables not yet in the README's
	// configuration table.
	pendingSettings = []string{}
)

// root is the repository's root, relative to this package.
const root = ".."

// ciInstall says how .ci/run installs each tool the tests need.
var ciInstall = map[string]string{
	"yamllint": "apt-get install -y --no-install-recommends yamllint",
	"promtool": "apt-get install -y --no-install-recommends prometheus",
	"helm":     "bash deployments/install-tools.sh",
}

// needTool returns the path of a command-line tool. Without it the test
// skips, except in CI (CI=true), where it fails.
func needTool(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	missing(t, name+" is not installed")
	return ""
}

// missing skips the test, or fails it in CI, because a tool is missing.
func missing(t *testing.T, why string) {
	t.Helper()
	tool := strings.Fields(why)[0]
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s; CI must have it: %s", why, ciInstall[tool])
	}
	t.Skipf("%s (%s installs it)", why, ciInstall[tool])
}

var settingRow = regexp.MustCompile("(?m)^\\| `(OUTREACH_[A-Z0-9_]+)` \\|")

// settings returns the OUTREACH_* variables of the README's configuration
// table, which config.go's tests keep complete.
func settings(t *testing.T) []string {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range settingRow.FindAllStringSubmatch(string(readme), -1) {
		names = append(names, m[1])
	}
	if len(names) < 10 {
		t.Fatalf("found only %d settings in README.md's configuration table: %v", len(names), names)
	}
	return names
}

// checkSettings fails the test for every name that is not a setting of
// outreachd, and for every pending setting that has become real.
func checkSettings(t *testing.T, where string, names []string) {
	t.Helper()
	known := settings(t)
	for _, p := range pendingSettings {
		if slices.Contains(known, p) {
			t.Errorf("%s is in the README now: delete it from pendingSettings in helpers_test.go", p)
		}
	}
	for _, n := range names {
		if !strings.HasPrefix(n, "OUTREACH_") {
			continue
		}
		if !slices.Contains(known, n) && !slices.Contains(pendingSettings, n) {
			t.Errorf("%s sets %s, which is not a setting of outreachd (README.md's configuration table)", where, n)
		}
	}
}

// readFile returns a file's content, relative to this package.
func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
