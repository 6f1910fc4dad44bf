// Command outreachd is the outreach service: it consumes contact and
// purchase events from Kafka into a Redis timeline per customer and answers
// over HTTP whether a customer may be contacted now.
//
// With no Redis or Kafka configured it runs on an embedded miniredis and an
// in-process Kafka-protocol broker, so `go run ./cmd/outreachd` is a working
// service on a fresh machine.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	_ "time/tzdata" // time zones for quiet hours, whatever the host has

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	goredis "github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"golang.org/x/net/netutil"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/contact/phone"
	"github.com/outreach/outreach/contact/redis"
	"github.com/outreach/outreach/dedupe"
	"github.com/outreach/outreach/dedupe/check"
	httpapi "github.com/outreach/outreach/http"
	"github.com/outreach/outreach/stream"
)

func main() {
	cfg, err := LoadConfig(os.Args[1:], os.Getenv, os.Stderr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "outreachd: invalid configuration:\n%v\n", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)

	m := NewMain(cfg, NewLogger(os.Stderr, cfg))
	if err := m.Run(ctx); err != nil {
		m.Logger.Error("outreachd: unable to start", "error", err)
		m.Close()
		os.Exit(1)
	}
	for done := false; !done; {
		select {
		case <-hup:
			m.ReloadPolicy()
			m.ReloadPresets()
		case <-ctx.Done():
			done = true
		}
	}
	m.Logger.Info("outreachd: stopping")
	if err := m.Close(); err != nil {
		m.Logger.Error("outreachd: unclean stop", "error", err)
		os.Exit(1)
	}
}

// Main wires outreachd together. Run starts it and Close stops it, in
// reverse order; end-to-end tests use the same wiring.
type Main struct {
	Config Config
	Logger *slog.Logger

	// Set by Run.
	HTTPAddr  string // where HTTP listens
	KafkaAddr string // where the embedded broker listens, if embedded

	mini     *miniredis.Miniredis
	fake     *kfake.Cluster
	rdb      goredis.UniversalClient
	producer *stream.Producer
	server   *http.Server
	policy   atomic.Pointer[dedupe.Policy]
	presets  atomic.Pointer[map[string]*dedupe.Policy] // OUTREACH_POLICY_PRESETS
	stopBg   context.CancelFunc
	bg       sync.WaitGroup
	closers  []func() error
}

// NewMain returns a Main for cfg that logs to logger.
func NewMain(cfg Config, logger *slog.Logger) *Main {
	return &Main{Config: cfg, Logger: logger}
}

// Run starts every component and returns once HTTP is listening. Background
// work runs until Close.
func (m *Main) Run(ctx context.Context) error {
	cfg := m.Config
	if err := m.ReloadPolicy(); err != nil {
		return err
	}
	if err := m.ReloadPresets(); err != nil {
		return err
	}
	keys, err := m.loadKeys()
	if err != nil {
		return err
	}
	if cfg.Embedded() {
		m.Logger.Warn("outreachd: running on the embedded miniredis and Kafka broker; data lives in memory and is lost at exit")
	}
	bgCtx, stopBg := context.WithCancel(context.WithoutCancel(ctx))
	m.stopBg = stopBg

	redisAddrs := cfg.RedisAddr
	if len(redisAddrs) == 0 {
		m.mini = miniredis.NewMiniRedis()
		if err := m.mini.StartAddr("127.0.0.1:0"); err != nil {
			return fmt.Errorf("start embedded redis: %w", err)
		}
		redisAddrs = []string{m.mini.Addr()}
		m.Logger.Info("embedded redis listening", "addr", m.mini.Addr())
		m.goBackground(func() { expireInRealTime(bgCtx, m.mini) })
	}
	goredis.SetLogger(redisLogger{m.Logger})
	m.rdb = goredis.NewUniversalClient(&goredis.UniversalOptions{
		Addrs: redisAddrs, Password: cfg.RedisPassword, IsClusterMode: cfg.RedisCluster,
		DialTimeout: 2 * time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second, MaxRetries: 1,
	})
	m.closers = append(m.closers, func() error { m.close("redis", m.rdb.Close); return nil })
	phones, err := phone.NewParser(cfg.DefaultRegion)
	if err != nil {
		return fmt.Errorf("OUTREACH_DEFAULT_REGION: %w", err)
	}
	defaults := contact.Defaults{Currency: cfg.DefaultCurrency, Phones: phones}
	store := redis.New(m.rdb, redis.Options{
		Prefix: cfg.RedisPrefix, Retention: cfg.Retention, MaxEvents: cfg.MaxEvents, Logger: m.Logger,
		Limits: func() contact.Limits { return m.policy.Load().Limits() },
	})
	if err := store.LoadScripts(ctx); err != nil {
		m.Logger.Warn("redis scripts not loaded; they load on first use", "error", err)
	}

	brokers := cfg.KafkaBrokers
	if len(brokers) == 0 {
		fake, err := kfake.NewCluster(
			kfake.NumBrokers(1),
			kfake.ListenFn(func(network, _ string) (net.Listener, error) { return net.Listen(network, cfg.EmbeddedKafkaAddr) }),
			kfake.AllowAutoTopicCreation(),
			kfake.DefaultNumPartitions(cfg.KafkaPartitions),
		)
		if err != nil {
			return fmt.Errorf("start embedded kafka on %s: %w", cfg.EmbeddedKafkaAddr, err)
		}
		m.fake = fake
		brokers = fake.ListenAddrs()
		m.KafkaAddr = brokers[0]
		m.Logger.Info("embedded kafka broker listening", "addr", m.KafkaAddr, "topics", cfg.KafkaTopics)
	}
	topicsCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = stream.EnsureTopics(topicsCtx, brokers, cfg.KafkaPartitions, append(append([]string{}, cfg.KafkaTopics...), cfg.DLQTopic)...)
	cancel()
	if err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	consumer, err := stream.NewConsumer(stream.ConsumerConfig{
		Brokers: brokers, Topics: cfg.KafkaTopics, Group: cfg.KafkaGroup, DLQTopic: cfg.DLQTopic,
		BatchSize: cfg.BatchSize, BatchWait: cfg.BatchWait, StopTimeout: cfg.ShutdownTimeout,
		Defaults: defaults, MaxFuture: cfg.MaxFuture, Logger: m.Logger, Metrics: stream.NewMetrics(reg),
	}, store)
	if err != nil {
		return err
	}
	m.producer = stream.NewProducer(brokers, cfg.KafkaTopics[0])
	m.closers = append(m.closers, func() error { m.close("producer", m.producer.Close); return nil })

	checks := check.New(check.Config{
		Store: store, Policy: m.policy.Load, Defaults: defaults, Logger: m.Logger, Metrics: check.NewMetrics(reg),
	})
	api := httpapi.New(httpapi.Config{
		Timelines: store,
		Producer:  m.producer,
		Checker:   checks,
		Defaults:  defaults,
		Keys:      keys,
		Ready: []httpapi.Check{
			{Name: "redis", Check: store.Ping},
			{Name: "kafka", Check: func(ctx context.Context) error { return pingKafka(ctx, brokers) }},
			{Name: "consumer", Check: func(context.Context) error { return consumer.Healthy() }},
		},
		Gatherer: reg, Registry: reg, MaxBody: cfg.MaxBody, Logger: m.Logger, RateLimits: cfg.RateLimits,
		Lists: httpapi.ListsConfig{Suppressions: store, Presets: func() map[string]*dedupe.Policy { return *m.presets.Load() },
			UploadIdle: cfg.UploadIdle, ScrubConcurrency: cfg.ScrubConcurrency},
	})
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
	}
	m.HTTPAddr = ln.Addr().String()
	ln = netutil.LimitListener(ln, cfg.HTTPMaxConns)

	consumerCtx, stopConsumer := context.WithCancel(bgCtx)
	consumerDone := make(chan struct{})
	go func() {
		defer close(consumerDone)
		if err := consumer.Run(consumerCtx); err != nil {
			m.Logger.Error("consumer stopped", "error", err)
		}
	}()
	// Close runs closers in reverse: consumer, producer, Redis.
	m.closers = append(m.closers, func() error {
		stopConsumer()
		<-consumerDone
		return nil
	})

	// List uploads set their own deadlines, as they make progress
	// (httpapi.ListsConfig.UploadIdle); every other request has these.
	m.server = &http.Server{Handler: api.Handler(), ReadHeaderTimeout: min(10*time.Second, cfg.HTTPReadTimeout),
		ReadTimeout: cfg.HTTPReadTimeout, WriteTimeout: cfg.HTTPWriteTimeout, IdleTimeout: 2 * time.Minute}
	m.goBackground(func() {
		if err := m.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.Logger.Error("http server failed", "error", err)
		}
	})
	m.Logger.Info("http listening", "addr", m.HTTPAddr)

	return nil
}

// ReloadPolicy loads the policy file, or the built-in policy without one.
// An invalid file keeps the policy in force and returns the error, which is
// also logged.
func (m *Main) ReloadPolicy() error {
	p := dedupe.DefaultPolicy()
	if f := m.Config.PolicyFile; f != "" {
		data, err := os.ReadFile(f)
		if err == nil {
			p, err = dedupe.ParsePolicy(data)
		}
		if err != nil {
			err = fmt.Errorf("OUTREACH_POLICY %s: %w", f, err)
			m.Logger.Error("policy not loaded; the previous one stays in force", "error", err)
			return err
		}
	}
	m.policy.Store(p)
	m.Logger.Info("policy loaded", "file", m.Config.PolicyFile)
	return nil
}

// ReloadPresets loads the what-if policies of OUTREACH_POLICY_PRESETS: each
// NAME.yaml file of the directory is the preset NAME. If any is invalid,
// the presets in force stay (none at start) and the error, naming the file,
// is returned and logged.
func (m *Main) ReloadPresets() error {
	presets := map[string]*dedupe.Policy{}
	dir := m.Config.PolicyPresets
	if dir != "" {
		var errs []error
		var files []string
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			errs = append(errs, fmt.Errorf("%s is not a directory", dir))
		} else if files, _ = filepath.Glob(filepath.Join(dir, "*.yaml")); len(files) == 0 {
			m.Logger.Warn("OUTREACH_POLICY_PRESETS has no .yaml files", "dir", dir)
		}
		for _, f := range files {
			name := strings.TrimSuffix(filepath.Base(f), ".yaml")
			if name == "live" || redis.ValidListName(name) != nil {
				errs = append(errs, fmt.Errorf("%s: a preset name must be 1 to 64 characters of a-z, 0-9, - and _, and not live", f))
				continue
			}
			data, err := os.ReadFile(f)
			if err == nil {
				presets[name], err = dedupe.ParsePolicy(data)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", f, err))
			}
		}
		if err := errors.Join(errs...); err != nil {
			err = fmt.Errorf("OUTREACH_POLICY_PRESETS: %w", err)
			m.Logger.Error("policy presets not loaded; the previous ones stay in force", "error", err)
			if m.presets.Load() == nil {
				m.presets.Store(&map[string]*dedupe.Policy{})
			}
			return err
		}
	}
	m.presets.Store(&presets)
	if dir != "" {
		m.Logger.Info("policy presets loaded", "dir", dir, "presets", len(presets))
	}
	return nil
}

// loadKeys reads the API keys file; nil keys serve every request.
func (m *Main) loadKeys() (*httpapi.Keys, error) {
	switch {
	case !m.Config.Auth:
		m.Logger.Warn("authentication is off (OUTREACH_AUTH=off): every request is served as an admin's")
		return nil, nil
	case m.Config.KeysFile == "":
		m.Logger.Warn("no OUTREACH_API_KEYS_FILE: the embedded default serves every request without a key")
		return nil, nil
	}
	data, err := os.ReadFile(m.Config.KeysFile)
	if err != nil {
		return nil, fmt.Errorf("OUTREACH_API_KEYS_FILE: %w", err)
	}
	keys, err := httpapi.ParseKeys(data)
	if err != nil {
		return nil, fmt.Errorf("OUTREACH_API_KEYS_FILE %s: %w", m.Config.KeysFile, err)
	}
	return keys, nil
}

// Close stops taking requests, lets the consumer finish and commit its
// batch, then closes Kafka and Redis, within ShutdownTimeout. It is safe to
// call after a failed Run.
func (m *Main) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), m.Config.ShutdownTimeout)
	defer cancel()
	var errs []error
	if m.server != nil {
		if err := m.server.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("http shutdown: %w", err))
		}
	}
	for i := len(m.closers) - 1; i >= 0; i-- {
		if err := m.closers[i](); err != nil {
			errs = append(errs, err)
		}
	}
	if m.stopBg != nil {
		m.stopBg()
	}
	m.bg.Wait()
	if m.fake != nil {
		m.fake.Close()
	}
	if m.mini != nil {
		m.mini.Close()
	}
	return errors.Join(errs...)
}

func (m *Main) goBackground(f func()) {
	m.bg.Add(1)
	go func() {
		defer m.bg.Done()
		f()
	}()
}

func (m *Main) close(what string, f func() error) {
	if err := f(); err != nil {
		m.Logger.Warn("close "+what, "error", err)
	}
}

// expireInRealTime advances miniredis's clock every second: miniredis only
// expires keys when told to.
func expireInRealTime(ctx context.Context, mini *miniredis.Miniredis) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			mini.FastForward(now.Sub(last))
			last = now
		}
	}
}

// pingKafka reports whether the brokers answer a metadata request.
func pingKafka(ctx context.Context, brokers []string) error {
	cl := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 2 * time.Second}
	if _, err := cl.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{}}); err != nil {
		return fmt.Errorf("kafka is unavailable: %w", err)
	}
	return nil
}

// redisLogger routes go-redis's internal messages to slog.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(_ context.Context, format string, v ...any) {
	l.log.Warn(strings.TrimSpace(fmt.Sprintf(format, v...)), "component", "redis")
}
