package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/outreach/outreach/internal/testenv"
)

// testConfig returns a configuration over the test Redis and Kafka, with a
// topic, group and key prefix of the test's own.
func testConfig(t *testing.T) (Config, *testenv.Redis, *testenv.Kafka) {
	t.Helper()
	r, k := testenv.NewRedis(t), testenv.NewKafka(t)
	env := map[string]string{
		"OUTREACH_HTTP_ADDR":       "127.0.0.1:0",
		"OUTREACH_REDIS_ADDR":      r.Addr,
		"OUTREACH_REDIS_PREFIX":    r.Prefix,
		"OUTREACH_KAFKA_BROKERS":   strings.Join(k.Brokers, ","),
		"OUTREACH_KAFKA_TOPICS":    k.Topic(t, "events", 3),
		"OUTREACH_KAFKA_DLQ_TOPIC": k.Topic(t, "dlq", 1),
		"OUTREACH_KAFKA_GROUP":     "g-" + testenv.Unique(t),
		"OUTREACH_MAX_EVENTS":      "100000",
	}
	cfg, err := LoadConfig(nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, r, k
}

func startMain(t *testing.T, cfg Config) *Main {
	t.Helper()
	m := NewMain(cfg, slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err := m.Run(context.Background()); err != nil {
		t.Fatalf("Run: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return m
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

type timeline struct {
	Events []struct {
		ID    string `json:"id"`
		Agent string `json:"agent"`
	} `json:"events"`
	State struct {
		Products map[string]json.RawMessage `json:"products"`
	} `json:"state"`
}

func getTimeline(t *testing.T, addr, customer string) timeline {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/v1/customers/" + customer + "/contacts?limit=1000")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tl timeline
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET timeline: %d %s", resp.StatusCode, b)
	}
	json.NewDecoder(resp.Body).Decode(&tl)
	return tl
}

func TestEndToEnd(t *testing.T) {
	cfg, _, k := testConfig(t)
	m := startMain(t, cfg)
	at := time.Now().Add(-2 * time.Hour).UTC().Format(time.RFC3339)

	// Produced with a Kafka client, as a dialer's system would.
	k.Produce(t, cfg.KafkaTopics[0], "cust-1",
		fmt.Appendf(nil, `{"id":"k1","type":"contact","customer_id":"cust-1","at":%q,"channel":"call","agent":"a.jones","team":"retention","outcome":"voicemail"}`, at),
		[]byte(`not json`))
	// And through the API.
	bought := time.Now().Add(-3 * time.Hour).UTC().Format(time.RFC3339)
	body := fmt.Sprintf(`[{"id":"p1","type":"purchase","customer_id":"cust-1","at":%q,"product":"fiber-500","price":39}]`, bought)
	resp, err := http.Post("http://"+m.HTTPAddr+"/v1/events", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 202 {
		t.Fatalf("POST /v1/events = %d, want 202", resp.StatusCode)
	}

	var tl timeline
	testenv.Eventually(t, 30*time.Second, "both events in the timeline", func() bool {
		tl = getTimeline(t, m.HTTPAddr, "cust-1")
		return len(tl.Events) == 2
	})
	if tl.Events[0].ID != "k1" || tl.Events[0].Agent != "a.jones" || tl.Events[1].ID != "p1" {
		t.Errorf("timeline = %+v", tl.Events)
	}
	if _, ok := tl.State.Products["fiber-500"]; !ok {
		t.Errorf("state has no purchase of fiber-500: %+v", tl.State)
	}

	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		resp, err := http.Get("http://" + m.HTTPAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET %s = %d %s", path, resp.StatusCode, b)
		}
	}
	testenv.Eventually(t, 10*time.Second, "metrics count the dead-lettered message", func() bool {
		resp, err := http.Get("http://" + m.HTTPAddr + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return bytes.Contains(b, []byte("outreach_events_dead_lettered_total 1"))
	})
}

// TestCrashAndReplay kills the real binary without a graceful stop in the
// middle of a stream, restarts it, and checks that every event is stored
// exactly once.
func TestCrashAndReplay(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	cfg, r, k := testConfig(t)
	bin := filepath.Join(t.TempDir(), "outreachd")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	const customers, perCustomer = 20, 250
	const total = customers * perCustomer
	base := time.Now().Add(-time.Hour)
	for c := range customers {
		id := fmt.Sprint("cust-", c)
		var values [][]byte
		for i := range perCustomer {
			values = append(values, fmt.Appendf(nil, `{"id":"%s-%d","type":"contact","customer_id":%q,"at":%q,"channel":"email"}`,
				id, i, id, base.Add(time.Duration(i)*time.Millisecond).Format(time.RFC3339Nano)))
		}
		k.Produce(t, cfg.KafkaTopics[0], id, values...)
	}

	stored := func() int64 {
		var n int64
		for c := range customers {
			n += r.Client.ZCard(context.Background(), fmt.Sprintf("%s{c:cust-%d}:c", r.Prefix, c)).Val()
		}
		return n
	}
	env := append(os.Environ(),
		"OUTREACH_HTTP_ADDR=127.0.0.1:0",
		"OUTREACH_REDIS_ADDR="+r.Addr,
		"OUTREACH_REDIS_PREFIX="+r.Prefix,
		"OUTREACH_KAFKA_BROKERS="+strings.Join(k.Brokers, ","),
		"OUTREACH_KAFKA_TOPICS="+cfg.KafkaTopics[0],
		"OUTREACH_KAFKA_DLQ_TOPIC="+cfg.DLQTopic,
		"OUTREACH_KAFKA_GROUP="+cfg.KafkaGroup,
		"OUTREACH_MAX_EVENTS=100000",
		"OUTREACH_BATCH_SIZE=20",
	)
	run := func() *exec.Cmd {
		cmd := exec.Command(bin)
		cmd.Env = env
		var logs bytes.Buffer
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cmd.Process.Kill()
			cmd.Wait()
			if t.Failed() {
				t.Logf("outreachd logs:\n%s", logs.String())
			}
		})
		return cmd
	}

	first := run()
	testenv.Eventually(t, 60*time.Second, "the first run stores some events", func() bool { return stored() >= total/10 })
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.Wait()
	atKill := stored()
	t.Logf("killed after %d of %d events", atKill, total)
	if atKill >= total {
		t.Fatalf("the first run stored all %d events before the kill; the test proves nothing", total)
	}

	run()
	testenv.Eventually(t, 60*time.Second, "every event stored after the restart", func() bool { return stored() >= total })
	time.Sleep(200 * time.Millisecond) // let any redelivered duplicates land
	if n := stored(); n != total {
		t.Errorf("stored %d events, want exactly %d", n, total)
	}
}

func TestInvalidConfigNamesTheVariable(t *testing.T) {
	env := map[string]string{
		"OUTREACH_RETENTION":     "forever",
		"OUTREACH_MAX_EVENTS":    "-5",
		"OUTREACH_HTTP_ADDR":     "8080",
		"OUTREACH_KAFKA_TOPICS":  " , ",
		"OUTREACH_LOG_LEVEL":     "loud",
		"OUTREACH_REDIS_CLUSTER": "maybe",
	}
	_, err := LoadConfig(nil, func(k string) string { return env[k] }, io.Discard)
	if err == nil {
		t.Fatal("LoadConfig accepted invalid values")
	}
	for k := range env {
		if !strings.Contains(err.Error(), k) {
			t.Errorf("error does not name %s:\n%v", k, err)
		}
	}
}

func TestConfigDefaultsAndFlags(t *testing.T) {
	cfg, err := LoadConfig([]string{"-max-events", "7"}, func(k string) string {
		return map[string]string{"OUTREACH_MAX_EVENTS": "9", "OUTREACH_RETENTION": "30d"}[k]
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MaxEvents != 7 {
		t.Errorf("MaxEvents = %d, want the flag's 7", cfg.MaxEvents)
	}
	if cfg.Retention != 30*24*time.Hour {
		t.Errorf("Retention = %v, want 30 days", cfg.Retention)
	}
	if cfg.HTTPAddr != ":8080" || cfg.KafkaTopics[0] != "outreach.events" || cfg.KafkaGroup != "outreach" ||
		cfg.DLQTopic != "outreach.events.dlq" || cfg.EmbeddedKafkaAddr != "127.0.0.1:9092" || !cfg.Embedded() {
		t.Errorf("defaults = %+v", cfg)
	}
}

func TestLogsRedactPersonalData(t *testing.T) {
	var buf bytes.Buffer
	log := NewLogger(&buf, Config{LogFormat: "json"})
	log.Info("call to +44 20 7946 0958 failed", "customer_id", "jane.doe@example.com", "error", fmt.Errorf("dial 0047912345678"), "at", "2026-11-20T10:00:00Z")
	out := buf.String()
	for _, secret := range []string{"7946", "jane.doe", "example.com", "912345678"} {
		if strings.Contains(out, secret) {
			t.Errorf("log contains %q: %s", secret, out)
		}
	}
	if !strings.Contains(out, "2026-11-20T10:00:00Z") {
		t.Errorf("log redacted a timestamp: %s", out)
	}
}
