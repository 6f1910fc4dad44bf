package main

import (
	"context"
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/contact/phone"
	"github.com/outreach/outreach/contact/redis"
	"github.com/outreach/outreach/stream"
)

// openStore connects to Redis, or starts the embedded miniredis, and builds
// the store. It returns the defaults events and requests are read with.
func (m *Main) openStore(ctx, bgCtx context.Context) (contact.Defaults, error) {
	cfg := m.Config
	addrs := cfg.RedisAddr
	if len(addrs) == 0 {
		m.mini = miniredis.NewMiniRedis()
		if err := m.mini.StartAddr("127.0.0.1:0"); err != nil {
			return contact.Defaults{}, fmt.Errorf("start embedded redis: %w", err)
		}
		addrs = []string{m.mini.Addr()}
		m.Logger.Info("embedded redis listening", "addr", m.mini.Addr())
		m.goBackground(func() { expireInRealTime(bgCtx, m.mini) })
	}
	goredis.SetLogger(redisLogger{m.Logger})
	m.rdb = newRedisClient(cfg, addrs)
	m.closers = append(m.closers, func() error { m.close("redis", m.rdb.Close); return nil })
	phones, err := phone.NewParser(cfg.DefaultRegion)
	if err != nil {
		return contact.Defaults{}, fmt.Errorf("OUTREACH_DEFAULT_REGION: %w", err)
	}
	m.store = redis.New(m.rdb, redis.Options{
		Prefix: cfg.RedisPrefix, Retention: cfg.Retention, MaxEvents: cfg.MaxEvents, Logger: m.Logger, Epoch: true,
		Limits: func() contact.Limits { return m.policy.Load().Limits() },
	})
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "outreach_events_redelivered_total",
		Help: "Events delivered again that the store held already: redeliveries after a crash, a rebalance or a retry, absorbed by idempotence.",
	}, func() float64 { return float64(m.store.Redelivered()) }))
	if err := m.store.LoadScripts(ctx); err != nil {
		m.Logger.Warn("redis scripts not loaded; they load on first use", "error", err)
	}
	return contact.Defaults{Currency: cfg.DefaultCurrency, Phones: phones}, nil
}

// newRedisClient connects to addrs. Reads obey their context's deadline, so
// that a check that must answer within OUTREACH_CHECK_TIMEOUT does, even
// against a hung server; the client's own timeouts are only a backstop for
// calls without one, long enough for a scrub's large pipelines.
func newRedisClient(cfg Config, addrs []string) goredis.UniversalClient {
	const dial, rw = 2 * time.Second, 10 * time.Second
	if !cfg.RedisCluster {
		return goredis.NewClient(&goredis.Options{
			Addr: addrs[0], Password: cfg.RedisPassword, DialTimeout: dial, ReadTimeout: rw, WriteTimeout: rw,
			MaxRetries: 1, ContextTimeoutEnabled: true,
		})
	}
	return goredis.NewClusterClient(&goredis.ClusterOptions{
		Addrs: addrs, Password: cfg.RedisPassword, DialTimeout: dial, ReadTimeout: rw, WriteTimeout: rw,
		MaxRetries: 1, ContextTimeoutEnabled: true,
		// A pipeline that meets a dead master does not reload the slot
		// map; without a short interval, checks of its slots would stay
		// unavailable for a minute after a replica took over.
		ClusterStateReloadInterval: time.Second,
	})
}

// settleEpochOrWatch settles the store epoch now if Redis answers, else in
// the background once it does.
func (m *Main) settleEpochOrWatch(ctx, bgCtx context.Context) {
	state, err := m.settleEpoch(ctx)
	switch {
	case err != nil:
		m.goBackground(func() { m.watchEpoch(bgCtx) })
	case state == redis.EpochReset:
		m.logReset()
	}
}

func (m *Main) logReset() {
	m.Logger.Error("store: Redis lost its data: checks answer unavailable until `outreachd replay` rebuilds it or an operator acknowledges the loss (POST /v1/admin/epoch)")
}

// watchEpoch settles the store epoch once Redis answers: a fresh store gets
// one; a store that lost its data while the consumer group had committed
// offsets (Redis came back empty while outreachd was down) is a reset, and
// so is one that lost part of it. A reset is logged, /readyz?role=api says
// so, and checks answer unavailable until an operator acknowledges it
// (POST /v1/admin/epoch) or outreachd replay rebuilds the store.
func (m *Main) watchEpoch(ctx context.Context) {
	for {
		state, err := m.settleEpoch(ctx)
		if err == nil {
			if state == redis.EpochReset {
				m.logReset()
			}
			return
		}
		m.Logger.Warn("store: unable to read the store epoch; trying again", "error", err)
		if !sleepCtx(ctx, 2*time.Second) {
			return
		}
	}
}

func (m *Main) settleEpoch(ctx context.Context) (redis.EpochState, error) {
	state, _, err := m.store.Epoch(ctx)
	if err != nil || state != redis.EpochFresh {
		return state, err
	}
	consumed, err := stream.GroupHasCommitted(ctx, m.brokers, m.Config.KafkaGroup, m.Config.KafkaTopics...)
	if err != nil {
		return state, err
	}
	if consumed {
		return redis.EpochReset, nil
	}
	_, err = m.store.NewEpoch(ctx)
	return redis.EpochOK, err
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

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
