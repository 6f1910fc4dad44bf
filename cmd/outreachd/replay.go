package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outreach/outreach/stream"
)

// Replay rebuilds the store from Kafka (outreachd replay): it reads the
// events topics from their earliest offsets, in a consumer group of its own,
// up to the offsets they have when it starts, applies every event, and then
// declares the store whole again with a new epoch, so that checks that
// answered unavailable after a reset answer again. Applying is idempotent,
// so a replay over a store that kept its data is harmless. It needs real
// Kafka and Redis: the embedded ones hold nothing to replay.
func Replay(ctx context.Context, cfg Config, logger *slog.Logger) error {
	if cfg.Embedded() {
		return fmt.Errorf("replay needs OUTREACH_REDIS_ADDR and OUTREACH_KAFKA_BROKERS: the embedded store and broker hold nothing to replay")
	}
	m := NewMain(cfg, logger)
	defer m.Close()
	if err := m.ReloadPolicy(); err != nil {
		return err
	}
	m.reg = prometheus.NewRegistry()
	defaults, err := m.openStore(ctx, ctx)
	if err != nil {
		return err
	}
	m.brokers = cfg.KafkaBrokers
	ends, err := stream.EndOffsets(ctx, m.brokers, cfg.KafkaTopics...)
	if err != nil {
		return err
	}
	var total int64
	for _, end := range ends {
		total += end
	}
	group := fmt.Sprintf("%s-replay-%d", cfg.KafkaGroup, time.Now().Unix())
	consumer, err := m.newConsumer(defaults, group, ends)
	if err != nil {
		return err
	}
	logger.Info("replay: reading the events topics from the start", "group", group, "messages", total, "partitions", len(ends))
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- consumer.Run(runCtx) }()
	err = m.awaitReplay(ctx, consumer, total)
	stop()
	if runErr := <-done; err == nil {
		err = runErr
	}
	if err != nil {
		return err
	}
	epoch, err := m.store.NewEpoch(ctx)
	if err != nil {
		return err
	}
	logger.Info("replay: done; the store is whole again", "group", group, "epoch", epoch)
	return nil
}

// awaitReplay waits for consumer to catch up, logging progress.
func (m *Main) awaitReplay(ctx context.Context, consumer *stream.Consumer, total int64) error {
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	start := time.Now()
	for {
		select {
		case <-consumer.CaughtUp():
			m.Logger.Info("replay: caught up", "messages", total, "seconds", time.Since(start).Seconds())
			return nil
		case <-ctx.Done():
			return fmt.Errorf("replay stopped before it caught up: %w", ctx.Err())
		case <-tick.C:
			m.Logger.Info("replay: in progress", "applied", consumer.Applied(), "messages", total, "seconds", time.Since(start).Seconds())
		}
	}
}
