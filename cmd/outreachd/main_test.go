package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outreach/outreach/internal/testenv"
)

// Test API keys, one per role, and their keys file.
const (
	adminKey  = "admin-key"
	dialerKey = "dialer-key"
	agentKey  = "agent-key"
)

func keysFile(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for role, key := range map[string]string{"admin": adminKey, "dialer": dialerKey, "agent": agentKey} {
		fmt.Fprintf(&b, "%s %x\n", role, sha256.Sum256([]byte(key)))
	}
	f := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(f, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// testEnv returns the environment of an outreachd over the test Redis and
// Kafka, with a topic, group and key prefix of the test's own.
func testEnv(t *testing.T) (map[string]string, *testenv.Redis, *testenv.Kafka) {
	t.Helper()
	r, k := testenv.NewRedis(t), testenv.NewKafka(t)
	env := map[string]string{
		"OUTREACH_HTTP_ADDR":             "127.0.0.1:0",
		"OUTREACH_KAFKA_BROKERS":         strings.Join(k.Brokers, ","),
		"OUTREACH_KAFKA_TOPICS":          k.Topic(t, "events", 3),
		"OUTREACH_KAFKA_DLQ_TOPIC":       k.Topic(t, "dlq", 1),
		"OUTREACH_KAFKA_DECISIONS_TOPIC": k.Topic(t, "decisions", 3),
		"OUTREACH_KAFKA_GROUP":           "g-" + testenv.Unique(t),
		"OUTREACH_INSIGHTS_GROUP":        "i-" + testenv.Unique(t),
		"OUTREACH_MAX_EVENTS":            "100000",
		"OUTREACH_API_KEYS_FILE":         keysFile(t),
	}
	for _, kv := range r.DaemonEnv() {
		key, value, _ := strings.Cut(kv, "=")
		env[key] = value
	}
	return env, r, k
}

// testConfig returns the configuration of testEnv.
func testConfig(t *testing.T) (Config, *testenv.Redis, *testenv.Kafka) {
	t.Helper()
	env, r, k := testEnv(t)
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

// call sends a request with key and returns the response and its body.
func call(t *testing.T, method, url, key, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func getTimeline(t *testing.T, addr, customer string) timeline {
	t.Helper()
	resp, b := call(t, "GET", "http://"+addr+"/v1/customers/"+customer+"/contacts?limit=1000", agentKey, "")
	var tl timeline
	if resp.StatusCode != 200 {
		t.Fatalf("GET timeline: %d %s", resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, &tl); err != nil {
		t.Fatal(err)
	}
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
	if resp, _ := call(t, "POST", "http://"+m.HTTPAddr+"/v1/events", dialerKey, body); resp.StatusCode != 202 {
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
	// The purchase again is a redelivery; its id with other content, a 409.
	if resp, b := call(t, "POST", "http://"+m.HTTPAddr+"/v1/events", dialerKey, body); resp.StatusCode != 202 {
		t.Errorf("POST the same event again = %d %s, want 202", resp.StatusCode, b)
	}
	reused := strings.Replace(body, `"price":39`, `"price":29`, 1)
	if resp, b := call(t, "POST", "http://"+m.HTTPAddr+"/v1/events", dialerKey, reused); resp.StatusCode != 409 || !bytes.Contains(b, []byte(`"index":0`)) {
		t.Errorf("POST its id with another price = %d %s, want 409 naming index 0", resp.StatusCode, b)
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
			n += r.Client.ZCard(context.Background(), fmt.Sprintf("%s{c:cust-%d}:h", r.Prefix, c)).Val()
		}
		return n
	}
	env := append(r.DaemonEnv(),
		"OUTREACH_KAFKA_BROKERS="+strings.Join(k.Brokers, ","),
		"OUTREACH_KAFKA_TOPICS="+cfg.KafkaTopics[0],
		"OUTREACH_KAFKA_DLQ_TOPIC="+cfg.DLQTopic,
		"OUTREACH_KAFKA_GROUP="+cfg.KafkaGroup,
		"OUTREACH_MAX_EVENTS=100000",
		"OUTREACH_BATCH_SIZE=20",
		"OUTREACH_AUTH=off",
		"OUTREACH_INSIGHTS=off", // the shared default decisions topic holds every test's records
	)
	bin := testenv.Build(t, ".")

	first := testenv.StartDaemon(t, bin, env...)
	testenv.Eventually(t, 60*time.Second, "the first run stores some events", func() bool { return stored() >= total/10 })
	first.Kill()
	atKill := stored()
	t.Logf("killed after %d of %d events", atKill, total)
	if atKill >= total {
		t.Fatalf("the first run stored all %d events before the kill; the test proves nothing", total)
	}

	testenv.StartDaemon(t, bin, env...)
	testenv.Eventually(t, 60*time.Second, "every event stored after the restart", func() bool { return stored() >= total })
	time.Sleep(200 * time.Millisecond) // let any redelivered duplicates land
	if n := stored(); n != total {
		t.Errorf("stored %d events, want exactly %d", n, total)
	}
}

// startBinary runs the real outreachd with env and returns its HTTP
// address.
func startBinary(t *testing.T, env map[string]string) string {
	t.Helper()
	var kvs []string
	for k, v := range env {
		kvs = append(kvs, k+"="+v)
	}
	return testenv.StartDaemon(t, testenv.Build(t, "."), kvs...).Addr
}

type checkResult struct {
	Allowed bool `json:"allowed"`
	Reasons []struct {
		Code     string          `json:"code"`
		Message  string          `json:"message"`
		Warning  bool            `json:"warning"`
		EventID  string          `json:"event_id"`
		Agent    string          `json:"agent"`
		Team     string          `json:"team"`
		Product  string          `json:"product"`
		CaseID   string          `json:"case_id"`
		Owner    string          `json:"owner"`
		Offer    json.RawMessage `json:"offer"`
		Channel  string          `json:"channel"`
		Campaign string          `json:"campaign"`
	} `json:"reasons"`
}

// TestCheckEndToEnd drives the real binary: events go into Kafka and
// /v1/check answers with the reasons they imply.
func TestCheckEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	env, _, k := testEnv(t)
	addr := startBinary(t, env)
	topic := env["OUTREACH_KAFKA_TOPICS"]
	now := time.Now().UTC()
	ago := func(d time.Duration) string { return now.Add(-d).Format(time.RFC3339) }
	in := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339) }
	produce := func(customer string, events ...string) {
		t.Helper()
		values := make([][]byte, len(events))
		for i, e := range events {
			values[i] = []byte(e)
		}
		k.Produce(t, topic, customer, values...)
	}
	check := func(body string) checkResult {
		t.Helper()
		resp, b := call(t, "POST", "http://"+addr+"/v1/check", dialerKey, body)
		if resp.StatusCode != 200 {
			t.Fatalf("POST /v1/check %s: %d %s", body, resp.StatusCode, b)
		}
		var r checkResult
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	// waitCodes polls the check until its reason codes are want: events
	// reach the timeline asynchronously.
	waitCodes := func(body, want string) checkResult {
		t.Helper()
		var r checkResult
		testenv.Eventually(t, 30*time.Second, body+" answers "+want, func() bool {
			r = check(body)
			var got []string
			for _, x := range r.Reasons {
				got = append(got, x.Code)
			}
			return strings.Join(got, ",") == want
		})
		return r
	}

	produce("colleague", fmt.Sprintf(`{"id":"cc1","type":"contact","customer_id":"colleague","at":%q,"channel":"call","agent":"a.jones","team":"retention","outcome":"voicemail","purpose":"sales"}`, ago(2*time.Hour)))
	produce("bought", fmt.Sprintf(`{"id":"bp1","type":"purchase","customer_id":"bought","at":%q,"product":"fiber-500","price":49,"order_id":"991"}`, ago(48*time.Hour)))
	produce("mailed", fmt.Sprintf(`{"id":"mo1","type":"contact","customer_id":"mailed","at":%q,"channel":"mail","campaign":"autumn-mail","product":"fiber-500","offer":{"id":"o-39","price":39,"currency":"EUR","expires_at":%q}}`, ago(9*24*time.Hour), in(20*24*time.Hour)))
	produce("mailed-expired", fmt.Sprintf(`{"id":"me1","type":"contact","customer_id":"mailed-expired","at":%q,"channel":"mail","product":"fiber-500","offer":{"price":29,"currency":"EUR","expires_at":%q}}`, ago(40*24*time.Hour), ago(10*24*time.Hour)))
	produce("upset", fmt.Sprintf(`{"id":"x1","type":"complaint","customer_id":"upset","at":%q,"case_id":"77","owner":"b.smith","summary":"engineer never came"}`, ago(3*24*time.Hour)))
	produce("quiet", fmt.Sprintf(`{"id":"q1","type":"opt_out","customer_id":"quiet","at":%q,"channel":"call","reason":"stop calling me"}`, ago(24*time.Hour)))

	r := waitCodes(`{"customer_id":"colleague","channel":"call","agent":"b.lee"}`, "recent_contact")
	if ev := r.Reasons[0]; ev.EventID != "cc1" || ev.Agent != "a.jones" || ev.Team != "retention" || !strings.Contains(ev.Message, "a.jones") {
		t.Errorf("colleague's call evidence = %+v", ev)
	}
	waitCodes(`{"customer_id":"colleague","channel":"call","purpose":"service"}`, "")

	r = waitCodes(`{"customer_id":"bought","channel":"call","product":"fiber-500","offer":{"price":45}}`, "already_purchased")
	if ev := r.Reasons[0]; ev.EventID != "bp1" || ev.Product != "fiber-500" {
		t.Errorf("purchase evidence = %+v", ev)
	}
	waitCodes(`{"customer_id":"bought","channel":"call","product":"tv-basic"}`, "")

	r = waitCodes(`{"customer_id":"mailed","channel":"call","product":"fiber-500","offer":{"price":49,"currency":"EUR"}}`, "better_offer")
	if ev := r.Reasons[0]; ev.EventID != "mo1" || ev.Channel != "mail" || !strings.Contains(string(ev.Offer), "39") {
		t.Errorf("better offer evidence = %+v", ev)
	}
	waitCodes(`{"customer_id":"mailed","channel":"call","product":"fiber-500","offer":{"price":35,"currency":"EUR"}}`, "")
	waitCodes(`{"customer_id":"mailed-expired","channel":"call","product":"fiber-500","offer":{"price":49,"currency":"EUR"}}`, "")

	r = waitCodes(`{"customer_id":"upset","channel":"call","purpose":"sales"}`, "open_complaint")
	if ev := r.Reasons[0]; r.Allowed || ev.CaseID != "77" || ev.Owner != "b.smith" {
		t.Errorf("open complaint: allowed=%v evidence %+v", r.Allowed, ev)
	}
	r = waitCodes(`{"customer_id":"upset","channel":"call","purpose":"recovery"}`, "open_complaint")
	if !r.Allowed || !r.Reasons[0].Warning {
		t.Errorf("recovery call with an open complaint: allowed=%v warning=%v, want allowed with a warning", r.Allowed, r.Reasons[0].Warning)
	}
	produce("upset", fmt.Sprintf(`{"id":"x2","type":"complaint","customer_id":"upset","at":%q,"case_id":"77","status":"resolved","owner":"b.smith"}`, ago(time.Hour)))
	waitCodes(`{"customer_id":"upset","channel":"call","purpose":"sales"}`, "")

	r = waitCodes(`{"customer_id":"quiet","channel":"call"}`, "opted_out")
	if r.Allowed || r.Reasons[0].EventID != "q1" {
		t.Errorf("opt-out: %+v", r)
	}
	waitCodes(`{"customer_id":"quiet","channel":"email"}`, "")
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
	if cfg.HTTPAddr != "127.0.0.1:8080" || cfg.KafkaTopics[0] != "outreach.events" || cfg.KafkaGroup != "outreach" ||
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

func TestReloadPolicyKeepsTheOldOneWhenInvalid(t *testing.T) {
	file := filepath.Join(t.TempDir(), "policy.yaml")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("cooldowns: {call: 10d}\nfrequency_cap: {window: 1d}\n")
	var logs bytes.Buffer
	m := NewMain(Config{PolicyFile: file}, slog.New(slog.NewJSONHandler(&logs, nil)))
	if err := m.ReloadPolicy(); err != nil {
		t.Fatal(err)
	}
	if got := m.policy.Load().ContactWindow(); got != 10*24*time.Hour {
		t.Fatalf("contact window = %v, want the file's 10d", got)
	}

	write("cooldowns: {call: 2d}\nfrequency_cap: {window: 1d}\n")
	if err := m.ReloadPolicy(); err != nil {
		t.Fatal(err)
	}
	if got := m.policy.Load().ContactWindow(); got != 7*24*time.Hour {
		t.Fatalf("after reload: contact window = %v, want 7d (the mail and visit cooldowns)", got)
	}

	before := m.policy.Load()
	write("cooldowns: {call: soon}\n")
	err := m.ReloadPolicy()
	if err == nil || !strings.Contains(err.Error(), "line 1") || !strings.Contains(err.Error(), "OUTREACH_POLICY") {
		t.Errorf("invalid policy: %v, want an error naming the variable and line", err)
	}
	if m.policy.Load() != before {
		t.Errorf("an invalid policy replaced the one in force")
	}
	if !strings.Contains(logs.String(), "policy not loaded") {
		t.Errorf("the failed reload was not logged: %s", logs.String())
	}
}
