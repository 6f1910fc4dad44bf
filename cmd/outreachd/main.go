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
	"github.com/twmb/franz-go/pkg/kfake"
	"golang.org/x/net/netutil"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/contact/redis"
	"github.com/outreach/outreach/dedupe"
	"github.com/outreach/outreach/dedupe/check"
	"github.com/outreach/outreach/dedupe/insight"
	httpapi "github.com/outreach/outreach/http"
	"github.com/outreach/outreach/stream"
)

func main() {
	args := os.Args[1:]
	command := ""
	if len(args) > 0 && (args[0] == "replay" || args[0] == "healthcheck") {
		command, args = args[0], args[1:]
	}
	if command == "healthcheck" {
		os.Exit(healthcheck(os.Getenv, os.Stderr))
	}
	cfg, err := LoadConfig(args, os.Getenv, os.Stderr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "outreachd: invalid configuration:\n%v\n", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := NewLogger(os.Stderr, cfg)
	if command == "replay" {
		if err := Replay(ctx, cfg, logger); err != nil {
			logger.Error("outreachd replay: failed", "error", err)
			os.Exit(1)
		}
		return
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)

	m := NewMain(cfg, logger)
	if err := m.Run(ctx); err != nil {
		m.Logger.Error("outreachd: unable to start", "error", err)
		m.Close()
		os.Exit(1)
	}
	for done := false; !done; {
		select {
		case <-hup:
			m.Reload()
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
	store    *redis.Store
	brokers  []string
	producer *stream.Producer
	server   *http.Server
	reg      *prometheus.Registry
	info     *prometheus.GaugeVec // outreach_config_info
	policy   atomic.Pointer[dedupe.Policy]
	presets  atomic.Pointer[presetSet] // OUTREACH_POLICY_PRESETS
	keys     *httpapi.Keys             // nil: no keys
	insights *insight.Service
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
	if err := m.loadConfigFiles(); err != nil {
		return err
	}
	if m.Config.Embedded() {
		m.Logger.Warn("outreachd: running on the embedded miniredis and Kafka broker; data lives in memory and is lost at exit")
	}
	bgCtx, stopBg := context.WithCancel(context.WithoutCancel(ctx))
	m.stopBg = stopBg
	m.reg = prometheus.NewRegistry()
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.registerVersions()

	defaults, err := m.openStore(ctx, bgCtx)
	if err != nil {
		return err
	}
	if err := m.openKafka(ctx); err != nil {
		return err
	}
	m.settleEpochOrWatch(ctx, bgCtx)
	consumer, err := m.newConsumer(defaults, "", nil)
	if err != nil {
		return err
	}
	m.producer = stream.NewProducer(m.brokers, m.Config.KafkaTopics[0])
	m.closers = append(m.closers, func() error { m.close("producer", m.producer.Close); return nil })
	if m.insights, err = m.newInsights(ctx, bgCtx); err != nil { // insights.go
		return err
	}
	api := m.newAPI(defaults, consumer)
	if err := m.serve(api); err != nil {
		return err
	}
	m.runConsumer(bgCtx, consumer)
	m.Logger.Info("http listening", "addr", m.HTTPAddr)
	return nil
}

// newAPI builds the HTTP API over the check service.
func (m *Main) newAPI(defaults contact.Defaults, consumer *stream.Consumer) *httpapi.Server {
	cfg := m.Config
	ccfg := check.Config{
		Store: m.store, FollowUps: m.store, Policy: m.policy.Load, Defaults: defaults, Timeout: cfg.CheckTimeout,
		Logger: m.Logger, Metrics: check.NewMetrics(m.reg),
		AuditRequired: cfg.Audit == "required", Instance: cfg.Instance, Events: m.producer,
	}
	var decisions httpapi.DecisionReader
	if a := m.newAuditor(); a != nil {
		ccfg.Auditor = a
		decisions = &stream.AuditReader{Brokers: m.brokers, Topic: cfg.DecisionsTopic}
	}
	checks := check.New(ccfg)
	m.reg.MustRegister(newFollowUpsCollector(checks, m.Logger))
	return httpapi.New(httpapi.Config{
		Timelines: m.store,
		Producer:  m.producer,
		EventIDs:  m.store,
		Checker:   checks,
		Defaults:  defaults,
		Keys:      m.keys,
		Epoch:     m.store,
		Decisions: decisions,
		FollowUps: checks,
		Insights:  m.insights,
		Ready: []httpapi.Check{
			{Name: "redis", Role: httpapi.ReadyAPI, Check: m.store.Ping},
			{Name: "store", Role: httpapi.ReadyAPI, Check: m.store.EpochSample},
			{Name: "kafka", Role: httpapi.ReadyIngest, Check: func(ctx context.Context) error { return pingKafka(ctx, m.brokers) }},
			{Name: "consumer", Role: httpapi.ReadyIngest, Check: consumer.Healthy},
		},
		Versions: m.versions,
		Gatherer: m.reg, Registry: m.reg, MaxBody: cfg.MaxBody, Logger: m.Logger, RateLimits: cfg.RateLimits,
		Lists: httpapi.ListsConfig{Suppressions: m.store, Presets: m.presetPolicies, UploadIdle: cfg.UploadIdle,
			ScrubConcurrency: cfg.ScrubConcurrency},
	})
}

// serve listens and serves api in the background. List uploads set their
// own deadlines, as they make progress (httpapi.ListsConfig.UploadIdle);
// every other request has the server's.
func (m *Main) serve(api *httpapi.Server) error {
	cfg := m.Config
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
	}
	m.HTTPAddr = ln.Addr().String()
	ln = netutil.LimitListener(ln, cfg.HTTPMaxConns)
	m.server = &http.Server{Handler: api.Handler(), ReadHeaderTimeout: min(10*time.Second, cfg.HTTPReadTimeout),
		ReadTimeout: cfg.HTTPReadTimeout, WriteTimeout: cfg.HTTPWriteTimeout, IdleTimeout: 2 * time.Minute}
	m.goBackground(func() {
		if err := m.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.Logger.Error("http server failed", "error", err)
		}
	})
	return nil
}

// runConsumer runs consumer until Close, which stops it after the batch in
// flight.
func (m *Main) runConsumer(ctx context.Context, consumer *stream.Consumer) {
	ctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := consumer.Run(ctx); err != nil {
			m.Logger.Error("consumer stopped", "error", err)
		}
	}()
	// Close runs closers in reverse: consumer, producer, Redis.
	m.closers = append(m.closers, func() error {
		stop()
		<-done
		return nil
	})
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

// redisLogger routes go-redis's internal messages to slog.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(_ context.Context, format string, v ...any) {
	l.log.Warn(strings.TrimSpace(fmt.Sprintf(format, v...)), "component", "redis")
}
