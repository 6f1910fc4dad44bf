package deployments_test

import (
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/outreach/outreach/dedupe"
)

// composeFile is the part of compose.yaml that the test checks.
type composeFile struct {
	Services map[string]composeService
	Secrets  map[string]struct{ File string }
	Volumes  map[string]any
}

type composeService struct {
	Image       string
	Command     any
	Environment map[string]string
	Volumes     []string
	Secrets     []string
	DependsOn   map[string]struct{ Condition string } `yaml:"depends_on"`
	Healthcheck *struct{ Test []string }
	Profiles    []string
	StopGrace   string   `yaml:"stop_grace_period"`
	ReadOnly    bool     `yaml:"read_only"`
	CapDrop     []string `yaml:"cap_drop"`
	Ports       []string
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	var c composeFile
	if err := yaml.Unmarshal(readFile(t, "compose.yaml"), &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCompose checks that compose.yaml runs Kafka in KRaft mode, Redis with
// AOF, and two outreachd replicas in one consumer group that start after
// the topics exist, with the policy and the keys file in place.
func TestCompose(t *testing.T) {
	c := loadCompose(t)
	kafka, redis := c.Services["kafka"], c.Services["redis"]
	if !strings.HasPrefix(kafka.Image, "apache/kafka:") || !strings.Contains(kafka.Environment["KAFKA_PROCESS_ROLES"], "controller") {
		t.Errorf("kafka: want the apache/kafka image in KRaft mode (KAFKA_PROCESS_ROLES with controller), got %s %v", kafka.Image, kafka.Environment)
	}
	if cmd := strings.Join(asStrings(redis.Command), " "); !strings.Contains(cmd, "--appendonly yes") || !strings.Contains(cmd, "noeviction") {
		t.Errorf("redis: want --appendonly yes and noeviction, got %q", cmd)
	}
	if !slices.ContainsFunc(redis.Volumes, func(v string) bool { return strings.HasSuffix(v, ":/data") }) {
		t.Errorf("redis: want a volume on /data, got %v", redis.Volumes)
	}
	topics := initTopics(t, c.Services["kafka-init"])

	replicas := outreachdServices(c)
	if len(replicas) != 2 {
		t.Fatalf("want two outreachd services, got %v", replicas)
	}
	groups := map[string]bool{}
	for _, name := range replicas {
		s := c.Services[name]
		env := s.Environment
		groups[env["OUTREACH_KAFKA_GROUP"]] = true
		checkSettings(t, name, slices.Collect(maps.Keys(env)))
		if env["OUTREACH_REDIS_ADDR"] == "" || env["OUTREACH_KAFKA_BROKERS"] == "" {
			t.Errorf("%s: want real Redis and Kafka, got %v", name, env)
		}
		if got := s.DependsOn["kafka-init"].Condition; got != "service_completed_successfully" {
			t.Errorf("%s: depends on kafka-init with %q, want service_completed_successfully", name, got)
		}
		if got := s.DependsOn["redis"].Condition; got != "service_healthy" {
			t.Errorf("%s: depends on redis with %q, want service_healthy", name, got)
		}
		if s.Healthcheck == nil || !s.ReadOnly || !slices.Equal(s.CapDrop, []string{"ALL"}) {
			t.Errorf("%s: want a healthcheck, read_only and cap_drop [ALL]", name)
		}
		checkTopics(t, name, env, topics)
		checkMounts(t, name, c, s)
		checkStopGrace(t, name, s.StopGrace, env["OUTREACH_SHUTDOWN_TIMEOUT"])
	}
	if len(groups) != 1 {
		t.Errorf("the replicas are in consumer groups %v, want one", groups)
	}
	for name, s := range c.Services {
		if s.Healthcheck == nil && name != "kafka-init" && len(s.Profiles) == 0 {
			t.Errorf("%s has no healthcheck", name)
		}
	}
	checkScrapeTargets(t, replicas)
}

// outreachdServices returns the names of the services that run outreachd.
func outreachdServices(c composeFile) []string {
	var names []string
	for name, s := range c.Services {
		if strings.Contains(s.Image, "outreachd") {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

var createTopic = regexp.MustCompile(`(?m)^\s*create (\S+) (\d+)\b`)

// initTopics returns the topics, and their partitions, that the init
// service creates.
func initTopics(t *testing.T, init composeService) map[string]int {
	t.Helper()
	topics := map[string]int{}
	for _, m := range createTopic.FindAllStringSubmatch(strings.Join(asStrings(init.Command), "\n"), -1) {
		topics[m[1]], _ = strconv.Atoi(m[2])
	}
	for _, want := range []string{"outreach.events", "outreach.events.dlq", "outreach.decisions"} {
		if topics[want] == 0 {
			t.Errorf("kafka-init does not create %s; it creates %v", want, topics)
		}
	}
	if topics["outreach.events"] != 12 {
		t.Errorf("kafka-init creates outreach.events with %d partitions, want 12", topics["outreach.events"])
	}
	if init.DependsOn["kafka"].Condition != "service_healthy" {
		t.Error("kafka-init must wait for a healthy kafka")
	}
	return topics
}

// checkTopics checks that a replica consumes the topics that kafka-init
// creates, and would create them alike.
func checkTopics(t *testing.T, name string, env map[string]string, topics map[string]int) {
	t.Helper()
	for _, topic := range append(strings.Split(env["OUTREACH_KAFKA_TOPICS"], ","), env["OUTREACH_KAFKA_DLQ_TOPIC"]) {
		if _, ok := topics[topic]; !ok {
			t.Errorf("%s uses topic %q, which kafka-init does not create", name, topic)
		}
	}
	if p := env["OUTREACH_KAFKA_PARTITIONS"]; p != strconv.Itoa(topics["outreach.events"]) {
		t.Errorf("%s: OUTREACH_KAFKA_PARTITIONS=%s, kafka-init makes %d", name, p, topics["outreach.events"])
	}
}

// checkMounts checks that the policy, the presets and the keys file that a
// replica is told to read are mounted there, and that the policy files are
// valid policies.
func checkMounts(t *testing.T, name string, c composeFile, s composeService) {
	t.Helper()
	mounts := map[string]string{} // target → source
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 {
			mounts[parts[1]] = parts[0]
		}
	}
	for _, key := range []string{"OUTREACH_POLICY", "OUTREACH_POLICY_PRESETS"} {
		src, ok := mounts[s.Environment[key]]
		if !ok {
			t.Errorf("%s: %s=%s is not mounted", name, key, s.Environment[key])
			continue
		}
		files := []string{src}
		if key == "OUTREACH_POLICY_PRESETS" {
			files, _ = filepath.Glob(filepath.Join(src, "*.yaml"))
		}
		for _, f := range files {
			if _, err := dedupe.ParsePolicy(readFile(t, f)); err != nil {
				t.Errorf("%s: %s is not a valid policy: %v", name, f, err)
			}
		}
	}
	keys := s.Environment["OUTREACH_API_KEYS_FILE"]
	secret, ok := strings.CutPrefix(keys, "/run/secrets/")
	if !ok || !slices.Contains(s.Secrets, secret) || c.Secrets[secret].File == "" {
		t.Errorf("%s: OUTREACH_API_KEYS_FILE=%s is not a secret of the service backed by a file", name, keys)
	}
	if f := c.Secrets[secret].File; f != "" && !strings.Contains(string(readFile(t, ".gitignore")), filepath.Base(f)) {
		t.Errorf("the keys file %s is not in deployments/.gitignore", f)
	}
}

// checkStopGrace checks that docker waits longer than outreachd's own
// shutdown timeout before it kills the process.
func checkStopGrace(t *testing.T, name, grace, timeout string) {
	t.Helper()
	g, err1 := time.ParseDuration(grace)
	d, err2 := time.ParseDuration(timeout)
	if err1 != nil || err2 != nil || g <= d {
		t.Errorf("%s: stop_grace_period %q must be longer than OUTREACH_SHUTDOWN_TIMEOUT %q", name, grace, timeout)
	}
}

// checkScrapeTargets checks that prometheus/prometheus.yaml scrapes every
// replica of compose.yaml.
func checkScrapeTargets(t *testing.T, replicas []string) {
	t.Helper()
	var prom struct {
		ScrapeConfigs []struct {
			JobName       string                       `yaml:"job_name"`
			StaticConfigs []struct{ Targets []string } `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(readFile(t, filepath.Join("prometheus", "prometheus.yaml")), &prom); err != nil {
		t.Fatal(err)
	}
	var targets []string
	for _, sc := range prom.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			targets = append(targets, st.Targets...)
		}
	}
	for _, r := range replicas {
		if !slices.Contains(targets, r+":8080") {
			t.Errorf("prometheus.yaml does not scrape %s:8080; it scrapes %v", r, targets)
		}
	}
}

// asStrings flattens a compose command, a string or a list, to strings.
func asStrings(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}
