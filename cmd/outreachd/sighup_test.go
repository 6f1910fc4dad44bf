package main

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/outreach/outreach/internal/testenv"
)

// TestSighupReloadsPolicyAndKeys changes the policy and keys files of the
// running binary and sends it SIGHUP: /readyz's versions and
// outreach_config_info change, and the new keys work; invalid files keep
// the versions in force, and the error is logged.
func TestSighupReloadsPolicyAndKeys(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	start := time.Now()
	env, _, _ := testEnv(t)
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.yaml")
	write := func(file, content string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(policy, "cooldowns: {call: 10d}\n")
	keys := env["OUTREACH_API_KEYS_FILE"]
	env["OUTREACH_POLICY"] = policy
	var kvs []string
	for k, v := range env {
		kvs = append(kvs, k+"="+v)
	}
	d := testenv.StartDaemon(t, testenv.Build(t, "."), kvs...)
	before := configVersions(t, d)

	const newDialer = "dialer-key-2"
	write(policy, "cooldowns: {call: 2d}\n")
	write(keys, fmt.Sprintf("admin %x\ndialer %x\n", sha256.Sum256([]byte(adminKey)), sha256.Sum256([]byte(newDialer))))
	if err := d.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	var after map[string]string
	testenv.Eventually(t, 10*time.Second, "new versions after SIGHUP", func() bool {
		after = configVersions(t, d)
		return after["policy"] != before["policy"] && after["keys"] != before["keys"]
	})
	if after["presets"] != before["presets"] {
		t.Errorf("presets version changed from %q to %q with no presets", before["presets"], after["presets"])
	}
	check := `{"customer_id":"c1","channel":"call"}`
	if resp, body := call(t, "POST", d.URL+"/v1/check", newDialer, check); resp.StatusCode != 200 {
		t.Errorf("the new dialer key after SIGHUP: %d %s", resp.StatusCode, body)
	}
	if resp, _ := call(t, "POST", d.URL+"/v1/check", dialerKey, check); resp.StatusCode != 401 {
		t.Errorf("the removed dialer key after SIGHUP: %d, want 401", resp.StatusCode)
	}

	write(policy, "cooldowns: {call: soon}\n")
	write(keys, "dialer not-a-hash\n")
	if err := d.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "the invalid files logged", func() bool {
		return logsHave(d, "ERROR", "policy not loaded") > 0 && logsHave(d, "ERROR", "API keys not loaded") > 0
	})
	if got := configVersions(t, d); got["policy"] != after["policy"] || got["keys"] != after["keys"] {
		t.Errorf("versions after invalid files = %v, want those in force, %v", got, after)
	}
	if resp, body := call(t, "POST", d.URL+"/v1/check", newDialer, check); resp.StatusCode != 200 {
		t.Errorf("the dialer key in force after an invalid keys file: %d %s", resp.StatusCode, body)
	}
	t.Logf("versions %v, after SIGHUP %v; test took %v", before, after, time.Since(start).Round(time.Millisecond))
}

var configInfo = regexp.MustCompile(`(?m)^outreach_config_info\{(.*)\} 1$`)

// configVersions returns the versions of /readyz's body, and checks that
// /metrics shows the same in its one outreach_config_info series.
func configVersions(t *testing.T, d *testenv.Daemon) map[string]string {
	t.Helper()
	_, body := readyz(d.URL, "")
	var ready struct{ Versions map[string]string }
	if err := json.Unmarshal([]byte(body), &ready); err != nil || len(ready.Versions) != 3 {
		t.Fatalf("/readyz versions: %v in %s", err, body)
	}
	resp, err := http.Get(d.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	series := configInfo.FindAllStringSubmatch(string(b), -1)
	want := fmt.Sprintf(`keys="%s",policy="%s",presets="%s"`, ready.Versions["keys"], ready.Versions["policy"], ready.Versions["presets"])
	if len(series) != 1 || series[0][1] != want {
		t.Errorf("outreach_config_info series = %q, want one with %s", series, want)
	}
	return ready.Versions
}

// TestHealthcheckCommand runs outreachd healthcheck against a running
// outreachd, then against the same port once it has stopped.
func TestHealthcheckCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := testenv.Build(t, ".")
	d := testenv.StartDaemon(t, bin) // the embedded default
	healthcheck := func(addr string) (int, string) {
		out, err := testenv.Command(bin, []string{"OUTREACH_HTTP_ADDR=" + addr}, "healthcheck").CombinedOutput()
		code := 0
		if err != nil {
			code = -1
			if ee, ok := err.(interface{ ExitCode() int }); ok {
				code = ee.ExitCode()
			}
		}
		return code, strings.TrimSpace(string(out))
	}
	// The address as deployed: every interface, the port of the server.
	_, port, _ := net.SplitHostPort(d.Addr)
	if code, out := healthcheck("0.0.0.0:" + port); code != 0 {
		t.Errorf("healthcheck of a running outreachd: exit %d %s", code, out)
	}
	d.Stop()
	code, out := healthcheck("0.0.0.0:" + port)
	if code != 1 || !strings.Contains(out, "healthcheck:") {
		t.Errorf("healthcheck of a stopped outreachd: exit %d %q, want 1 with the reason", code, out)
	}
	if code, out := healthcheck("8080"); code != 1 || !strings.Contains(out, "OUTREACH_HTTP_ADDR") {
		t.Errorf("healthcheck with a bad address: exit %d %q, want 1 naming OUTREACH_HTTP_ADDR", code, out)
	}
	t.Logf("healthcheck of a stopped outreachd: %s", out)
}
