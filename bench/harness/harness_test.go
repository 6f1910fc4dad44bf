package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outreach/outreach/internal/testenv"
)

// TestSmoke runs the harness's smoke mode against the real servers, so that
// the harness cannot rot: every scenario must produce a figure, a baseline
// and a ratio, and the files must be written. It does not check the
// targets: speed is not measured in tests.
func TestSmoke(t *testing.T) {
	redisAddr, brokers := os.Getenv(testenv.RedisEnv), os.Getenv(testenv.KafkaEnv)
	if redisAddr == "" || brokers == "" {
		t.Skip("needs real servers: set " + testenv.RedisEnv + " and " + testenv.KafkaEnv)
	}
	dir := t.TempDir()
	cfg, err := parseFlags([]string{"-smoke", "-redis", redisAddr, "-kafka", brokers, "-out", dir})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	began := time.Now()
	res, err := run(ctx, cfg, testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("smoke run took %v", time.Since(began).Round(100*time.Millisecond))
	if missing := res.missingFigures(); len(missing) > 0 {
		t.Errorf("no figure for %v", missing)
	}
	if len(res.Scenarios) != len(scenarioNames) {
		t.Errorf("%d scenarios reported, want %d", len(res.Scenarios), len(scenarioNames))
	}

	data, err := os.ReadFile(filepath.Join(dir, "smoke.json"))
	if err != nil {
		t.Fatal(err)
	}
	var got results
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatalf("smoke.json: %v", err)
	}
	if len(got.Scenarios) != len(res.Scenarios) {
		t.Errorf("smoke.json has %d scenarios, want %d", len(got.Scenarios), len(res.Scenarios))
	}
	md, err := os.ReadFile(filepath.Join(dir, "smoke.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range scenarioNames {
		if !strings.Contains(string(md), "| "+name+" |") {
			t.Errorf("smoke.md has no row for %s", name)
		}
	}
	if fi, err := os.Stat(cfg.PlotFile); err != nil || fi.Size() == 0 {
		t.Errorf("plot %s: %v", cfg.PlotFile, err)
	}
}

// testWriter writes the harness's progress lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
		check   func(t *testing.T, c config)
	}{
		{name: "defaults", check: func(t *testing.T, c config) {
			if c.Customers != 100_000 || c.Events != 1_000_000 || len(c.Scenarios) != len(scenarioNames) || c.Smoke {
				t.Errorf("got %+v", c)
			}
		}},
		{name: "smoke writes beside the results", args: []string{"-smoke"}, check: func(t *testing.T, c config) {
			if !c.Smoke || c.resultName() != "smoke" || !strings.HasPrefix(c.PlotFile, "bench/results/") {
				t.Errorf("got %+v", c)
			}
		}},
		{name: "scenarios and rates", args: []string{"-scenarios", "check,history", "-rates", "100,200"}, check: func(t *testing.T, c config) {
			if !c.has("check") || c.has("scrub") || len(c.Rates) != 2 || c.Rates[1] != 200 {
				t.Errorf("got %+v", c)
			}
		}},
		{name: "unknown scenario", args: []string{"-scenarios", "check,nope"}, wantErr: `unknown scenario "nope"`},
		{name: "bad rate", args: []string{"-rates", "1,x"}, wantErr: `-rates: "x"`},
		{name: "fewer events than customers", args: []string{"-customers", "10", "-events", "5"}, wantErr: "-events (5)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseFlags(tt.args)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}
