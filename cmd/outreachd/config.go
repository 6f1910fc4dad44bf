package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/contact/phone"
	"github.com/outreach/outreach/dedupe"
	httpapi "github.com/outreach/outreach/http"
)

// Config is every setting of outreachd. Each has a default, an OUTREACH_*
// environment variable and, but for secrets, a flag; flags win over the
// environment.
type Config struct {
	HTTPAddr          string
	HTTPReadTimeout   time.Duration
	HTTPWriteTimeout  time.Duration
	HTTPMaxConns      int
	UploadIdle        time.Duration // how long a list upload may make no progress
	ScrubConcurrency  int           // list scrubs at once
	MaxBody           int64
	RateLimits        httpapi.RateLimits // nil: none
	RedisAddr         []string           // empty: embedded miniredis
	RedisCluster      bool
	RedisPassword     string // from OUTREACH_REDIS_PASSWORD or OUTREACH_REDIS_PASSWORD_FILE
	RedisPasswordFile string
	RedisPrefix       string
	KafkaBrokers      []string // empty: embedded broker
	EmbeddedKafkaAddr string
	KafkaTopics       []string
	KafkaGroup        string
	DLQTopic          string
	DecisionsTopic    string
	Audit             string // best-effort, required or off
	AuditBuffer       int
	Instance          string
	Insights          bool // run the insights aggregator
	InsightsGroup     string
	KafkaPartitions   int
	BatchSize         int
	BatchWait         time.Duration
	Retention         time.Duration
	MaxEvents         int
	ShutdownTimeout   time.Duration
	LogLevel          slog.Level
	LogFormat         string
	PolicyFile        string // empty: the built-in policy
	PolicyPresets     string // directory of what-if policies for list scrubs; empty: none
	DefaultRegion     string // region of phone numbers written without a country code
	DefaultCurrency   string // currency of prices written without one
	MaxFuture         time.Duration
	CheckTimeout      time.Duration
	KeysFile          string // empty: no API keys
	Auth              bool   // false only when OUTREACH_AUTH=off
}

// setting describes one configuration value for flags, the environment and
// the documentation. A setting without a flag is a secret, since flags
// show in ps: it is read from the environment only, as it is (not
// trimmed), and never shown in an error.
type setting struct {
	env, flag, def, usage string
	set                   func(c *Config, v string) error
}

func (s setting) secret() bool { return s.flag == "" }

func settings() []setting {
	return []setting{
		{"OUTREACH_HTTP_ADDR", "http-addr", "", "HTTP listen address; empty is `:8080` with API keys or OUTREACH_AUTH=off, else `127.0.0.1:8080`; an address beyond loopback needs one of the two", func(c *Config, v string) error {
			c.HTTPAddr = v
			if v == "" {
				return nil
			}
			return checkAddr(v)
		}},
		{"OUTREACH_HTTP_READ_TIMEOUT", "http-read-timeout", "30s", "how long a request may take to send its headers and body (list uploads: see OUTREACH_HTTP_UPLOAD_IDLE_TIMEOUT)", func(c *Config, v string) (err error) {
			c.HTTPReadTimeout, err = positiveDuration(v)
			return err
		}},
		{"OUTREACH_HTTP_WRITE_TIMEOUT", "http-write-timeout", "60s", "how long a request may take from its headers to the end of its answer; at least the read timeout (list uploads: see OUTREACH_HTTP_UPLOAD_IDLE_TIMEOUT)", func(c *Config, v string) (err error) {
			c.HTTPWriteTimeout, err = positiveDuration(v)
			return err
		}},
		{"OUTREACH_HTTP_UPLOAD_IDLE_TIMEOUT", "http-upload-idle-timeout", "2m", "how long a list upload may go without progress (the next 64 KiB of the list) before it is cut", func(c *Config, v string) (err error) {
			c.UploadIdle, err = positiveDuration(v)
			return err
		}},
		{"OUTREACH_SCRUB_CONCURRENCY", "scrub-concurrency", strconv.Itoa(httpapi.DefaultScrubConcurrency), "most list scrubs run at once (each holds a few MiB); past it a scrub is answered 429 rate_limited with Retry-After", func(c *Config, v string) (err error) {
			c.ScrubConcurrency, err = positiveInt(v)
			return err
		}},
		{"OUTREACH_HTTP_MAX_CONNS", "http-max-conns", "10000", "most HTTP connections served at once; more wait to be accepted", func(c *Config, v string) (err error) {
			c.HTTPMaxConns, err = positiveInt(v)
			return err
		}},
		{"OUTREACH_HTTP_MAX_BODY", "http-max-body", "4194304", "largest request body in bytes (list uploads are streamed and exempt)", func(c *Config, v string) (err error) {
			c.MaxBody, err = positiveInt64(v)
			return err
		}},
		{"OUTREACH_RATE_LIMITS", "rate-limits", httpapi.DefaultRateLimits, "requests per second per API key, by role, as ROLE=RATE[/BURST] (the burst defaults to RATE); a role not named is not limited; `off` for none. Without keys, per client address at the admin rate. Per process: the fleet's limit is this times the replicas", func(c *Config, v string) (err error) {
			c.RateLimits, err = httpapi.ParseRateLimits(v)
			return err
		}},
		{"OUTREACH_REDIS_ADDR", "redis-addr", "", "Redis address(es), comma-separated; empty runs an embedded miniredis", func(c *Config, v string) error {
			c.RedisAddr = list(v)
			for _, a := range c.RedisAddr {
				if err := checkAddr(a); err != nil {
					return err
				}
			}
			return nil
		}},
		{"OUTREACH_REDIS_CLUSTER", "redis-cluster", "false", "treat the Redis addresses as a Redis Cluster", func(c *Config, v string) (err error) {
			c.RedisCluster, err = strconv.ParseBool(v)
			return err
		}},
		{"OUTREACH_REDIS_PASSWORD", "", "", "Redis password; environment only, as flags show in ps", func(c *Config, v string) error {
			c.RedisPassword = v
			return nil
		}},
		{"OUTREACH_REDIS_PASSWORD_FILE", "redis-password-file", "", "file holding the Redis password (one trailing newline is ignored); not with OUTREACH_REDIS_PASSWORD", func(c *Config, v string) error {
			c.RedisPasswordFile = v
			return nil
		}},
		{"OUTREACH_REDIS_PREFIX", "redis-prefix", "outreach:", "prefix of every Redis key", func(c *Config, v string) error {
			c.RedisPrefix = v
			return nonEmpty(v)
		}},
		{"OUTREACH_KAFKA_BROKERS", "kafka-brokers", "", "Kafka brokers, comma-separated; empty runs an embedded broker", func(c *Config, v string) error {
			c.KafkaBrokers = list(v)
			for _, a := range c.KafkaBrokers {
				if err := checkAddr(a); err != nil {
					return err
				}
			}
			return nil
		}},
		{"OUTREACH_EMBEDDED_KAFKA_ADDR", "embedded-kafka-addr", "127.0.0.1:9092", "where the embedded broker listens", func(c *Config, v string) error {
			c.EmbeddedKafkaAddr = v
			return checkAddr(v)
		}},
		{"OUTREACH_KAFKA_TOPICS", "kafka-topics", "outreach.events", "topics to consume, comma-separated; the first also takes POST /v1/events", func(c *Config, v string) error {
			c.KafkaTopics = list(v)
			if len(c.KafkaTopics) == 0 {
				return errors.New("at least one topic is required")
			}
			return nil
		}},
		{"OUTREACH_KAFKA_GROUP", "kafka-group", "outreach", "consumer group", func(c *Config, v string) error {
			c.KafkaGroup = v
			return nonEmpty(v)
		}},
		{"OUTREACH_KAFKA_DECISIONS_TOPIC", "kafka-decisions-topic", "outreach.decisions", "topic of the audit trail: a record of every live check, scrub and erasure", func(c *Config, v string) error {
			c.DecisionsTopic = v
			return nonEmpty(v)
		}},
		{"OUTREACH_AUDIT", "audit", "best-effort", "best-effort: records never slow or fail a check, and those Kafka cannot take are dropped and counted; required: a check that cannot be recorded answers unavailable; off", func(c *Config, v string) error {
			c.Audit = v
			if v != "best-effort" && v != "required" && v != "off" {
				return errors.New("must be best-effort, required or off")
			}
			return nil
		}},
		{"OUTREACH_AUDIT_BUFFER", "audit-buffer", "10000", "decision records held for the background writer (best-effort mode); past it they are dropped and counted", func(c *Config, v string) (err error) {
			c.AuditBuffer, err = positiveInt(v)
			return err
		}},
		{"OUTREACH_INSTANCE", "instance", "", "the name of this process in audit records; empty is the host name", func(c *Config, v string) error {
			c.Instance = v
			if v == "" {
				c.Instance, _ = os.Hostname()
			}
			return contact.ValidText("", c.Instance)
		}},
		{"OUTREACH_INSIGHTS", "insights", "on", "on: this process also runs the insights aggregator, which counts the decisions topic into Redis for GET /v1/insights, once per consumer group across replicas; off: it only answers from what others count", func(c *Config, v string) error {
			c.Insights = v == "on"
			if v != "on" && v != "off" {
				return errors.New("must be on or off")
			}
			return nil
		}},
		{"OUTREACH_INSIGHTS_GROUP", "insights-group", "outreach-insights", "consumer group of the insights aggregator on the decisions topic", func(c *Config, v string) error {
			c.InsightsGroup = v
			return nonEmpty(v)
		}},
		{"OUTREACH_KAFKA_DLQ_TOPIC", "kafka-dlq-topic", "outreach.events.dlq", "dead-letter topic", func(c *Config, v string) error {
			c.DLQTopic = v
			return nonEmpty(v)
		}},
		{"OUTREACH_KAFKA_PARTITIONS", "kafka-partitions", "6", "partitions of topics that outreachd creates at start", func(c *Config, v string) (err error) {
			c.KafkaPartitions, err = positiveInt(v)
			return err
		}},
		{"OUTREACH_BATCH_SIZE", "batch-size", "500", "most events the consumer applies in one Redis pipeline", func(c *Config, v string) (err error) {
			c.BatchSize, err = positiveInt(v)
			return err
		}},
		{"OUTREACH_BATCH_WAIT", "batch-wait", "5ms", "how long a batch waits to fill after its first event", func(c *Config, v string) (err error) {
			c.BatchWait, err = positiveDuration(v)
			return err
		}},
		{"OUTREACH_RETENTION", "retention", "400d", "age limit of the history agents see (units: ms, s, m, h, d); opt-outs and open complaints are kept however old", func(c *Config, v string) (err error) {
			c.Retention, err = positiveDuration(v)
			return err
		}},
		{"OUTREACH_MAX_EVENTS", "max-events", "1000", "count limit of stored events per customer (the history agents see; binding facts are kept apart)", func(c *Config, v string) (err error) {
			c.MaxEvents, err = positiveInt(v)
			return err
		}},
		{"OUTREACH_SHUTDOWN_TIMEOUT", "shutdown-timeout", "15s", "how long a stop may take to drain requests and the batch in flight", func(c *Config, v string) (err error) {
			c.ShutdownTimeout, err = positiveDuration(v)
			return err
		}},
		{"OUTREACH_POLICY", "policy", "", "policy YAML file (see deployments/policy.yaml); empty uses the built-in policy; reloaded on SIGHUP", func(c *Config, v string) error {
			c.PolicyFile = v
			return nil
		}},
		{"OUTREACH_POLICY_PRESETS", "policy-presets", "", "directory of NAME.yaml policies that list scrubs may use with ?policy=NAME; reloaded on SIGHUP", func(c *Config, v string) error {
			c.PolicyPresets = v
			return nil
		}},
		{"OUTREACH_DEFAULT_REGION", "default-region", phone.DefaultRegion, "region (ISO 3166 code) of phone numbers written without a country code", func(c *Config, v string) error {
			c.DefaultRegion = v
			return phone.ValidRegion(v)
		}},
		{"OUTREACH_DEFAULT_CURRENCY", "default-currency", contact.DefaultCurrency, "ISO 4217 currency of prices written without one, in events, checks and scrubs", func(c *Config, v string) error {
			c.DefaultCurrency = v
			return contact.ValidCurrency("", v)
		}},
		{"OUTREACH_CHECK_TIMEOUT", "check-timeout", "300ms", "how long a check (or a batch of checks) may read the store; after it the check answers unavailable", func(c *Config, v string) (err error) {
			c.CheckTimeout, err = positiveDuration(v)
			return err
		}},
		{"OUTREACH_MAX_FUTURE", "max-future", "5m", "how far an event's at may lie after the time its Kafka message was written; one further ahead is dead-lettered", func(c *Config, v string) (err error) {
			c.MaxFuture, err = positiveDuration(v)
			return err
		}},
		{"OUTREACH_API_KEYS_FILE", "api-keys-file", "", "API keys file, one `ROLE SHA256HEX` per line; required with real Redis or Kafka unless OUTREACH_AUTH=off", func(c *Config, v string) error {
			c.KeysFile = v
			return nil
		}},
		{"OUTREACH_AUTH", "auth", "on", "on, or off to serve every request without a key", func(c *Config, v string) error {
			c.Auth = v != "off"
			if v != "on" && v != "off" {
				return errors.New("must be on or off")
			}
			return nil
		}},
		{"OUTREACH_LOG_LEVEL", "log-level", "info", "debug, info, warn or error", func(c *Config, v string) error {
			return c.LogLevel.UnmarshalText([]byte(v))
		}},
		{"OUTREACH_LOG_FORMAT", "log-format", "json", "json or text", func(c *Config, v string) error {
			c.LogFormat = v
			if v != "json" && v != "text" {
				return errors.New("must be json or text")
			}
			return nil
		}},
	}
}

// LoadConfig builds the configuration from defaults, then the environment,
// then flags in args. Every invalid value is reported, each naming its
// variable and flag.
func LoadConfig(args []string, getenv func(string) string, usage io.Writer) (Config, error) {
	var c Config
	fs := flag.NewFlagSet("outreachd", flag.ContinueOnError)
	fs.SetOutput(usage)
	all := settings()
	values := make([]string, len(all))
	for i, s := range all {
		values[i] = s.def
		if v, ok := lookup(getenv, s.env); ok {
			values[i] = v
		}
		if s.flag != "" {
			fs.StringVar(&values[i], s.flag, values[i], fmt.Sprintf("%s (env %s, default %q)", s.usage, s.env, s.def))
		}
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	var errs []error
	for i, s := range all {
		v := values[i]
		if !s.secret() {
			v = strings.TrimSpace(v)
		}
		if err := s.set(&c, v); err != nil {
			shown := fmt.Sprintf("%q", values[i])
			if s.secret() {
				shown = "(hidden)"
			}
			errs = append(errs, fmt.Errorf("%s%s = %s: %w", s.env, flagName(s), shown, err))
		}
	}
	errs = append(errs, c.check()...)
	return c, errors.Join(errs...)
}

// check resolves the settings that depend on others and reports those
// that do not go together.
func (c *Config) check() []error {
	var errs []error
	open := c.Auth && c.KeysFile == "" // every request served without a key
	if open && !c.Embedded() {
		errs = append(errs, errors.New("OUTREACH_API_KEYS_FILE (-api-keys-file) is required with real Redis or Kafka; set OUTREACH_AUTH=off to run without authentication"))
	}
	switch {
	case c.HTTPAddr == "" && open:
		c.HTTPAddr = "127.0.0.1:8080"
	case c.HTTPAddr == "":
		c.HTTPAddr = ":8080"
	case open && !loopback(c.HTTPAddr):
		errs = append(errs, fmt.Errorf("OUTREACH_HTTP_ADDR (-http-addr) = %q listens beyond this machine without API keys: set OUTREACH_API_KEYS_FILE, "+
			"or OUTREACH_AUTH=off to serve every request without a key, or listen on 127.0.0.1", c.HTTPAddr))
	}
	if c.HTTPWriteTimeout < c.HTTPReadTimeout {
		errs = append(errs, fmt.Errorf("OUTREACH_HTTP_WRITE_TIMEOUT (-http-write-timeout) = %v is shorter than OUTREACH_HTTP_READ_TIMEOUT (-http-read-timeout) = %v: "+
			"a request read in time could not be answered", c.HTTPWriteTimeout, c.HTTPReadTimeout))
	}
	if err := c.readRedisPassword(); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// readRedisPassword reads OUTREACH_REDIS_PASSWORD_FILE, if set, dropping
// the newline that editors end a file with.
func (c *Config) readRedisPassword() error {
	if c.RedisPasswordFile == "" {
		return nil
	}
	if c.RedisPassword != "" {
		return errors.New("OUTREACH_REDIS_PASSWORD and OUTREACH_REDIS_PASSWORD_FILE (-redis-password-file) are both set; set one")
	}
	data, err := os.ReadFile(c.RedisPasswordFile)
	if err != nil {
		return fmt.Errorf("OUTREACH_REDIS_PASSWORD_FILE (-redis-password-file) = %q: %w", c.RedisPasswordFile, err)
	}
	c.RedisPassword = strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r")
	if c.RedisPassword == "" {
		return fmt.Errorf("OUTREACH_REDIS_PASSWORD_FILE (-redis-password-file) = %q: the file is empty", c.RedisPasswordFile)
	}
	return nil
}

// loopback reports whether addr listens on this machine only.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// flagName is " (-flag)" for a setting with a flag.
func flagName(s setting) string {
	if s.secret() {
		return ""
	}
	return " (-" + s.flag + ")"
}

// Embedded reports whether Redis and Kafka are the in-process ones.
func (c *Config) Embedded() bool { return len(c.RedisAddr) == 0 && len(c.KafkaBrokers) == 0 }

// ConfigTable renders the settings as a Markdown table, for the README.
func ConfigTable() string {
	var b strings.Builder
	b.WriteString("| variable | flag | default | meaning |\n|---|---|---|---|\n")
	all := settings()
	for _, s := range all {
		def := "`" + s.def + "`"
		if s.def == "" {
			def = "empty"
		}
		flag := "none"
		if !s.secret() {
			flag = "`-" + s.flag + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", s.env, flag, def, s.usage)
	}
	return b.String()
}

func lookup(getenv func(string) string, key string) (string, bool) {
	v := getenv(key)
	return v, v != ""
}

func list(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func checkAddr(v string) error {
	if _, port, err := net.SplitHostPort(v); err != nil || port == "" {
		return errors.New("must be host:port")
	}
	return nil
}

func nonEmpty(v string) error {
	if v == "" {
		return errors.New("must not be empty")
	}
	return nil
}

func positiveInt(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, errors.New("must be a positive whole number")
	}
	return n, nil
}

func positiveInt64(v string) (int64, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return 0, errors.New("must be a positive whole number")
	}
	return n, nil
}

// positiveDuration parses a Go duration, or a whole number of days such as
// "400d".
func positiveDuration(v string) (time.Duration, error) {
	d, err := dedupe.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, errors.New("must be a positive duration such as 500ms, 15s, 36h or 400d")
	}
	return d, nil
}
