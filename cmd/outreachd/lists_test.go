package main

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outreach/outreach/internal/testenv"
)

func TestListsConfig(t *testing.T) {
	for _, tt := range []struct {
		region string
		ok     bool
	}{{"", true}, {"NO", true}, {"GB", true}, {"no", false}, {"XX", false}, {"Norway", false}} {
		cfg, err := LoadConfig(nil, func(k string) string {
			return map[string]string{"OUTREACH_DEFAULT_REGION": tt.region}[k]
		}, io.Discard)
		switch {
		case tt.ok && err != nil:
			t.Errorf("region %q: %v", tt.region, err)
		case !tt.ok && (err == nil || !strings.Contains(err.Error(), "OUTREACH_DEFAULT_REGION")):
			t.Errorf("region %q: %v, want an error naming OUTREACH_DEFAULT_REGION", tt.region, err)
		case tt.ok && tt.region == "" && cfg.DefaultRegion != "NO":
			t.Errorf("default region %q, want NO", cfg.DefaultRegion)
		}
	}
}

func TestReloadPresets(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("lenient.yaml", "cooldowns: {call: 1h}\n")
	write("strict.yaml", "frequency_cap: {max: 1}\n")
	write("notes.txt", "not a preset")
	m := NewMain(Config{PolicyPresets: dir}, slog.New(slog.DiscardHandler))
	if err := m.ReloadPresets(); err != nil {
		t.Fatal(err)
	}
	if got := m.presetPolicies(); len(got) != 2 || got["lenient"] == nil || got["strict"] == nil {
		t.Fatalf("presets = %v", got)
	}

	// An invalid file keeps the presets in force, and the error names it.
	write("broken.yaml", "cooldowns:\n  call: 3x\n")
	err := m.ReloadPresets()
	if err == nil || !strings.Contains(err.Error(), "broken.yaml") || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("ReloadPresets with a broken file: %v", err)
	}
	if got := m.presetPolicies(); len(got) != 2 {
		t.Errorf("presets after a failed reload = %v", got)
	}
	os.Remove(filepath.Join(dir, "broken.yaml"))
	write("Bad Name.yaml", "{}\n")
	if err := m.ReloadPresets(); err == nil || !strings.Contains(err.Error(), "Bad Name.yaml") {
		t.Errorf("ReloadPresets with a bad name: %v", err)
	}

	// The sample in deployments loads.
	m = NewMain(Config{PolicyPresets: "../../deployments/presets"}, slog.New(slog.DiscardHandler))
	if err := m.ReloadPresets(); err != nil || m.presetPolicies()["winter-campaign"] == nil {
		t.Errorf("the sample presets: %v", err)
	}

	m = NewMain(Config{PolicyPresets: filepath.Join(dir, "missing")}, slog.New(slog.DiscardHandler))
	if err := m.ReloadPresets(); err == nil || !strings.Contains(err.Error(), "OUTREACH_POLICY_PRESETS") {
		t.Errorf("ReloadPresets of a missing directory: %v", err)
	}
	if got := m.presets.Load(); got == nil || len(got.policies) != 0 {
		t.Errorf("presets after a failed first load = %v, want none", got)
	}
}

// TestListsEndToEnd uploads a suppression list larger than the body limit
// and scrubs a list through the real binary, with a preset what-if.
func TestListsEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	env, _, _ := testEnv(t)
	presets := t.TempDir()
	if err := os.WriteFile(filepath.Join(presets, "no-cooldown.yaml"), []byte("cooldowns: {call: 0}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env["OUTREACH_POLICY_PRESETS"] = presets
	env["OUTREACH_HTTP_MAX_BODY"] = "1024"
	env["OUTREACH_DEFAULT_REGION"] = "GB"
	addr := startBinary(t, env)
	base := "http://" + addr

	at := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	if resp, b := call(t, "POST", base+"/v1/events", dialerKey,
		fmt.Sprintf(`{"id":"e1","type":"contact","customer_id":"cust-1","at":%q,"channel":"call"}`, at)); resp.StatusCode != 202 {
		t.Fatalf("POST /v1/events: %d %s", resp.StatusCode, b)
	}
	testenv.Eventually(t, 30*time.Second, "the contact in the timeline", func() bool {
		return len(getTimeline(t, addr, "cust-1").Events) == 1
	})

	var list bytes.Buffer
	list.WriteString("phone,reason\n020 7946 0018,asked us to stop\n")
	for i := range 2000 {
		fmt.Fprintf(&list, "+4479%08d,bulk\n", i)
	}
	req, _ := http.NewRequest("PUT", base+"/v1/suppressions/regulator", &list)
	req.Header.Set("Authorization", "Bearer "+adminKey)
	req.Header.Set("Content-Type", "text/csv")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"entries":2001`) {
		t.Fatalf("PUT a list over the body limit: %d %s", resp.StatusCode, b)
	}

	scrub := func(query string) ([][]string, string) {
		t.Helper()
		// Streamed both ways: the body is a pipe, read as the answer comes.
		pr, pw := io.Pipe()
		go func() {
			io.WriteString(pw, "customer_id,phone\ncust-1,\ncust-2,+44 20 7946 0018\ncust-3,\n")
			for i := range 3000 {
				fmt.Fprintf(pw, "bulk-%d,\n", i)
			}
			pw.Close()
		}()
		req, _ := http.NewRequest("POST", base+"/v1/lists/scrub?"+query, pr)
		req.Header.Set("Authorization", "Bearer "+adminKey)
		req.Header.Set("Content-Type", "text/csv")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		rows, err := csv.NewReader(resp.Body).ReadAll()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("scrub: %d %v", resp.StatusCode, err)
		}
		return rows, resp.Trailer.Get("X-Outreach-Scrub-Status")
	}
	// The calls are planned for noon in London tomorrow: the number's time
	// zone is known, and quiet hours must not depend on when the test runs.
	y, m, d := time.Now().UTC().Add(24 * time.Hour).Date()
	noon := "&at=" + url.QueryEscape(time.Date(y, m, d, 12, 0, 0, 0, time.UTC).Format(time.RFC3339))
	rows, status := scrub("channel=call" + noon)
	if len(rows) != 3004 || status != "ok" {
		t.Fatalf("%d rows, trailer %q", len(rows), status)
	}
	got := fmt.Sprint(rows[1][2:4], rows[2][2:4], rows[3][2:4])
	if got != "[false recent_contact] [false do_not_call] [true ]" {
		t.Errorf("scrub: %s", got)
	}
	rows, _ = scrub("channel=call&policy=no-cooldown" + noon)
	if got := fmt.Sprint(rows[1][2:4], rows[2][2:4]); got != "[true ] [false do_not_call]" {
		t.Errorf("scrub under the preset: %s", got)
	}
}
