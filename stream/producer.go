package stream

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/outreach/outreach/contact"
)

// Producer writes events to a Kafka topic, keyed by customer id so that a
// customer's events share a partition. It is safe for concurrent use.
type Producer struct {
	w *kafka.Writer
}

// NewProducer returns a Producer writing to topic. Writes wait for every
// in-sync replica.
func NewProducer(brokers []string, topic string) *Producer {
	return &Producer{w: &kafka.Writer{
		Addr:         kafka.TCP(brokers...),
		Topic:        topic,
		Balancer:     &kafka.Murmur2Balancer{}, // the partitioner of Java clients
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: 2 * time.Millisecond,
		MaxAttempts:  3,
	}}
}

// Produce writes events, which must be valid, and returns once Kafka has
// them. On an error some may have been written; producing them all again is
// safe, as events are idempotent by id. It returns EUnavailable when Kafka
// cannot take them.
func (p *Producer) Produce(ctx context.Context, events []contact.Event) error {
	msgs := make([]kafka.Message, len(events))
	for i := range events {
		v, err := json.Marshal(&events[i])
		if err != nil {
			return fmt.Errorf("stream: unable to encode event: %w", err)
		}
		msgs[i] = kafka.Message{Key: []byte(events[i].CustomerID), Value: v}
	}
	if err := p.w.WriteMessages(ctx, msgs...); err != nil {
		if ctx.Err() != nil {
			return ctx.Err() // the caller gave up; Kafka is not at fault
		}
		return contact.Unavailable("kafka", fmt.Errorf("stream: unable to produce %d events: %w", len(events), err))
	}
	return nil
}

// Close flushes and closes the producer.
func (p *Producer) Close() error { return p.w.Close() }
