package main

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/outreach/outreach/contact"
	"github.com/outreach/outreach/stream"
)

// openKafka starts the embedded broker when no brokers are configured, and
// creates the topics.
func (m *Main) openKafka(ctx context.Context) error {
	cfg := m.Config
	m.brokers = cfg.KafkaBrokers
	if len(m.brokers) == 0 {
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
		m.brokers = fake.ListenAddrs()
		m.KafkaAddr = m.brokers[0]
		m.Logger.Info("embedded kafka broker listening", "addr", m.KafkaAddr, "topics", cfg.KafkaTopics)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return stream.EnsureTopics(ctx, m.brokers, cfg.KafkaPartitions, append(append([]string{}, cfg.KafkaTopics...), cfg.DLQTopic, cfg.DecisionsTopic)...)
}

// newAuditor starts the writer of the audit trail, unless OUTREACH_AUDIT is
// off; Close flushes it.
func (m *Main) newAuditor() *stream.AuditWriter {
	cfg := m.Config
	if cfg.Audit == "off" {
		m.Logger.Warn("the audit trail is off (OUTREACH_AUDIT=off): no record of the decisions is kept")
		return nil
	}
	a := stream.NewAuditWriter(stream.AuditConfig{
		Brokers: m.brokers, Topic: cfg.DecisionsTopic, Required: cfg.Audit == "required", Buffer: cfg.AuditBuffer,
		Logger: m.Logger, Registry: m.reg,
	})
	m.closers = append(m.closers, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		m.close("audit trail", func() error { return a.Close(ctx) })
		return nil
	})
	return a
}

// newConsumer builds the consumer of the events topics, in group (the
// configured one if empty), reading up to until if it is set.
func (m *Main) newConsumer(defaults contact.Defaults, group string, until map[stream.Position]int64) (*stream.Consumer, error) {
	cfg := m.Config
	if group == "" {
		group = cfg.KafkaGroup
	}
	return stream.NewConsumer(stream.ConsumerConfig{
		Brokers: m.brokers, Topics: cfg.KafkaTopics, Group: group, DLQTopic: cfg.DLQTopic,
		BatchSize: cfg.BatchSize, BatchWait: cfg.BatchWait, StopTimeout: cfg.ShutdownTimeout, Until: until,
		Defaults: defaults, MaxFuture: cfg.MaxFuture, Logger: m.Logger, Metrics: stream.NewMetrics(m.reg),
	}, m.store)
}

// pingKafka reports whether a broker answers a metadata request.
func pingKafka(ctx context.Context, brokers []string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := stream.Ping(ctx, brokers); err != nil {
		return fmt.Errorf("kafka is unavailable: %w", err)
	}
	return nil
}
